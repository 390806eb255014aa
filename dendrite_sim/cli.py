"""``dendrite-sim`` command line.

    dendrite-sim run SCENARIO.toml [--out DIR] [--seed N] [--set key=value ...]
    dendrite-sim check SCENARIO.toml [--set key=value ...]
    dendrite-sim list [KIND]       (learning rules with their substrates, e.g. [rate, spiking])

User errors print one line ``error: <key path>: <what was expected>`` and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        print(f"error: arguments: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dendrite-sim", description="Spiking and dendritic credit-assignment simulator.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a scenario")
    r.add_argument("scenario")
    r.add_argument("--out", help="output directory (default runs/<scenario>-<time>)")
    r.add_argument("--seed", type=int, help="root seed (overrides scenario.seed)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. --set training.epochs=5")
    r.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")
    c = sub.add_parser("check", help="validate a scenario without running it")
    c.add_argument("scenario")
    c.add_argument("--seed", type=int)
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    lst = sub.add_parser("list", help="list every registered part")
    lst.add_argument("kind", nargs="?", choices=registry.KINDS)
    e = sub.add_parser("export", help="export a run's data (nwb or npz)")
    e.add_argument("run_dir")
    e.add_argument("--format", choices=("nwb", "npz"), default="nwb")
    return p


def _substrates(cls) -> str:
    """``[rate, spiking]``: the substrates a learning rule runs on (its ``substrates`` attribute)."""
    subs = getattr(cls, "substrates", ())
    if isinstance(subs, str):
        subs = (subs,)
    return "[" + ", ".join(str(s) for s in subs) + "]"


def cmd_list(kind=None) -> int:
    """Every registered part, kinds in :data:`registry.KINDS` order, names sorted; a learning
    rule also shows its substrates, e.g. ``backprop  [rate]  Exact gradient ...``."""
    for k in ([kind] if kind else registry.KINDS):
        parts = registry.available(k)
        if not parts:
            continue
        print(f"{k}:")
        if k == "rule":
            subs = {name: _substrates(cls) for name, cls in parts.items()}
            width = max(len(s) for s in subs.values())
            for name, cls in parts.items():
                print(f"  {name:28s} {subs[name]:{width}s} {registry.describe(cls)}")
            continue
        for name, cls in parts.items():
            print(f"  {name:28s} {registry.describe(cls)}")
    return 0


def cmd_check(args) -> int:
    from dendrite_sim.io.scenario import load

    sc = load(args.scenario, overrides=args.set, seed=args.seed)
    print(f"ok: {args.scenario} (experiment {sc.resolved['scenario']['experiment']!r}, seed {sc.seed})")
    return 0


def cmd_run(args) -> int:
    from dendrite_sim.io import results
    from dendrite_sim.io.scenario import load

    sc = load(args.scenario, overrides=args.set, seed=args.seed)
    if args.out:
        out = Path(args.out)
        if out.exists() and any(out.iterdir()) and not args.overwrite:
            raise ScenarioError("--out", f"{str(out)!r} already holds files; choose an empty "
                                "directory or pass --overwrite")
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{Path(args.scenario).stem}-{stamp}"
        n = 1
        while out.exists():
            out = Path("runs") / f"{Path(args.scenario).stem}-{stamp}-{n}"
            n += 1
    ctx = results.RunContext(out, sc.seed)
    results.write_config(out, sc.resolved)
    results.write_provenance(out, sc.seed, sc.path)
    t0 = time.perf_counter()
    try:
        metrics = sc.experiment.run(sc.cfg, ctx)
    except (ScenarioError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug or a numerical failure: keep what was written, say where
        import traceback

        from dendrite_sim.io import atomic

        atomic.write_text(out / "error.log", traceback.format_exc())
        print(f"error: run: {type(exc).__name__}: {exc} (traceback in {out / 'error.log'}; "
              "config.toml and provenance.json are kept)", file=sys.stderr)
        return 1
    metrics = {"experiment": sc.resolved["scenario"]["experiment"], "seed": sc.seed,
               "wall_time_s": round(time.perf_counter() - t0, 3), **metrics}
    results.write_metrics(out, metrics)
    print(f"wrote {out}/ (metrics.json, timings.json, config.toml, provenance.json"
          + "".join(f", {f}" for f in ctx.figures) + ")")
    return 0


def cmd_export(args) -> int:
    from dendrite_sim.io.export import export_run

    path = export_run(args.run_dir, args.format)
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args.kind)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "export":
            return cmd_export(args)
    except ScenarioError as exc:
        print(exc.line(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted: partial outputs, if any, are kept in the run directory",
              file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
