"""``dendrite-sim realism PATH...``: how real do the ΔF/F traces look?

For every session in the given paths (NWB files with a ``DfOverF`` RoiResponseSeries — ours or
a real recording such as a DANDI 000037 session — or run directories, whose ``*.nwb`` files or,
without them, session folders are read) it prints, per compartment, the statistics of
:mod:`dendrite_sim.analysis.realism` (noise σ, SNR, event size, pairwise r between ROIs of
different cells, the fraction of pairs above 0.3, CASCADE ν, soma–tuft r) beside the reference
bands of the OpenScope recordings, and writes ``realism.json`` and ``realism.png``
(distributions against the bands) into ``--out`` (default: the first run directory given, else
the current directory). Exit code 0; 1 with ``--strict`` when a statistic lies outside its band.
"""

from __future__ import annotations

NAME = "realism"
HELP = "realism statistics of ΔF/F traces (NWB files or run directories) against the OpenScope reference bands"


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", help="NWB files or run directories")
    parser.add_argument("--out", default=None, help="folder for realism.json and realism.png")
    parser.add_argument("--compartment", default=None, choices=("soma", "apical"),
                        help="treat every ROI as this compartment (files without a compartment column)")
    parser.add_argument("--no-figure", action="store_true", help="skip realism.png")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a statistic is outside its band")


def collect(paths, compartment=None) -> list[dict]:
    """The ΔF/F series of ``paths`` as :func:`dendrite_sim.io.nwb.read_dff_traces` dicts."""
    from pathlib import Path

    import numpy as np

    from dendrite_sim.core.errors import ScenarioError
    from dendrite_sim.io.nwb import read_dff_traces

    out = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(p.glob("*.nwb"))
            if files:
                for f in files:
                    out.extend(read_dff_traces(f, compartment))
                continue
            from dendrite_sim.imaging.session import SyntheticSession, find_sessions

            folders = find_sessions(p)
            if not folders:
                raise ScenarioError(str(p), "expected a run directory with *.nwb files or session folders")
            for folder in folders:
                s = SyntheticSession.load(folder)
                comp = np.asarray(s.rois.compartment).astype(str) if compartment is None else \
                    np.full(s.n_rois, compartment)
                out.append({"name": f"{p.name}/{folder.name}", "dff": np.asarray(s.traces["dff"]),
                            "frame_rate": float(s.frame_rate), "compartment": comp,
                            "cell_id": np.asarray(s.rois.cell_id)})
        elif p.is_file():
            out.extend(read_dff_traces(p, compartment))
        else:
            raise ScenarioError(str(p), "expected an existing NWB file or run directory")
    return out


def report(series: list[dict]) -> tuple[list[dict], str, bool]:
    """(per-series results, the printed table, all in band)."""
    from dendrite_sim.analysis import realism as R
    from dendrite_sim.imaging.rois import COMPARTMENTS

    results, lines, ok = [], [], True
    head = f"{'session':<34} {'compartment':<11} {'n':>4}"
    for label in R.STATISTICS.values():
        head += f"  {label:>15}"
    lines.append(head)
    for s in series:
        stats = R.session_statistics(s["dff"], s["frame_rate"], s["compartment"], s["cell_id"])
        summary = R.summarise(stats)
        results.append({"name": s["name"], "frame_rate": s["frame_rate"], "summary": summary, "stats": stats})
        for comp, v in summary.items():
            row = f"{s['name'][-34:]:<34} {comp:<11} {v['n_rois']:>4}"
            for key in R.STATISTICS:
                val, flag = v.get(key), v["in_band"].get(key)
                cell = "—" if val is None else f"{val:.3f}"
                cell += {True: " ✓", False: " ✗", None: "  "}[flag]
                row += f"  {cell:>15}"
                ok &= flag is not False
            lines.append(row)
    ref = f"{'reference (OpenScope)':<34} {'':<11} {'':>4}"
    for comp in COMPARTMENTS:
        row = f"{'':<34} {comp:<11} {'':>4}"
        for key in R.STATISTICS:
            band = R.REFERENCE[comp].get(key)
            row += f"  {R.format_band(band) if band else '':>15}"
        ref += "\n" + row
    lines.append(ref)
    return results, "\n".join(lines), ok


def run(args) -> int:
    import json
    from pathlib import Path

    series = collect(args.paths, args.compartment)
    results, table, ok = report(series)
    print(table)
    out = Path(args.out) if args.out else next((Path(p) for p in args.paths if Path(p).is_dir()), Path("."))
    out.mkdir(parents=True, exist_ok=True)
    doc = {"sessions": [{"name": r["name"], "frame_rate_hz": r["frame_rate"], "compartments": r["summary"]}
                        for r in results], "all_in_band": ok}
    (out / "realism.json").write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
    print(f"wrote {out / 'realism.json'}")
    if not args.no_figure:
        import matplotlib

        matplotlib.use("Agg")
        from dendrite_sim.plotting.imaging import realism_figure

        fig = realism_figure(results)
        fig.savefig(out / "realism.png", dpi=110)
        print(f"wrote {out / 'realism.png'}")
    return 1 if args.strict and not ok else 0
