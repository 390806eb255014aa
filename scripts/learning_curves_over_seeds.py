#!/usr/bin/env python
"""Learning curves of any ``train`` scenario over seeds, with 95 % confidence bands, for one or
more variants of it; per-layer alignment angles where the runs report them.

Each (variant, seed) is an ordinary run directory under ``--out`` made by ``dendrite-sim run``
(runs already finished are reused). Writes

* ``learning_curves.png`` — test error (%) (classification) or test loss (regression) against
  epoch: mean over seeds and the 95 % confidence interval of the mean (t distribution);
* ``alignment.png`` — when the runs report angles (``alignment_angle_deg`` of the spiking
  substrate, per hidden pathway and epoch, and ``alignment_angle_per_example_deg``): mean and band;
* ``summary.md`` — the final value per seed and variant, the margin of each other variant over the
  first (per seed, mean, smallest), how often the first variant wins, and the per-example angles
  of the first and last epochs.

Usage::

    python scripts/learning_curves_over_seeds.py scenarios/digits_segregated_spiking.toml --seeds 5 \\
        --variant "one hidden layer:architecture.hidden=[100]" --variant "no hidden layer:architecture.hidden=[]" \\
        --set training.epochs=10 --out runs/segregated_depth
    python scripts/learning_curves_over_seeds.py scenarios/microcircuit_digits.toml --seeds 5 --out runs/mc_seeds

A variant is ``LABEL:KEY=VALUE[,KEY=VALUE...]`` (``--set`` syntax); ``--set`` applies to all.
Exit status 0, or 1 when ``--expect-first-wins`` is given and the first variant does not beat
every other in every seed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def band(values: np.ndarray):
    """Mean and half-width of the 95 % confidence interval of the mean over axis 0."""
    from scipy import stats

    n = values.shape[0]
    mean = np.nanmean(values, axis=0)
    if n < 2:
        return mean, np.zeros_like(mean)
    sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(n)
    return mean, sem * stats.t.ppf(0.975, n - 1)


def parse_variant(text: str) -> tuple[str, list[str]]:
    label, _, sets = text.partition(":")
    # split on commas that start a new KEY= (values such as [100, 50] contain commas)
    parts = [p.strip() for p in re.split(r",(?=\s*[A-Za-z_][\w.]*=)", sets) if p.strip()]
    return label.strip(), parts


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_") or "base"


def run(scenario: Path, out: Path, seed: int, sets: list[str]) -> dict:
    if not (out / "metrics.json").exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "dendrite_sim.cli", "run", str(scenario), "--out", str(out), "--overwrite",
               "--seed", str(seed)]
        for s in sets:
            cmd += ["--set", s]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def curve(m: dict) -> tuple[list, np.ndarray, str]:
    h = m["history"]
    if any(a is not None for a in h["test_accuracy"]):
        return h["epoch"], 100.0 * (1.0 - np.array(h["test_accuracy"], dtype=float)), "test error (%)"
    return h["epoch"], np.array(h["test_loss"], dtype=float), "test loss"


def alignment_figure(angled: dict, name: str):
    """Per hidden pathway, the angle between the spiking rule's update and backprop's (of the rate
    network sharing the weights) over training: mean over seeds with the 95 % CI band, for the
    epoch's summed update (solid) and the mean of the per-example angles (dashed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.2, 4.0))
    ax = fig.subplots()
    for label, ms in angled.items():
        for q in ms[0]["alignment_angle_deg"]:
            for key, style in (("alignment_angle_deg", "-"), ("alignment_angle_per_example_deg", "--")):
                vals = np.array([m[key][q] for m in ms], dtype=float)
                mean, hw = band(vals)
                ep = np.arange(1, vals.shape[1] + 1)
                what = "epoch's summed update" if key == "alignment_angle_deg" else "per example (mean)"
                line, = ax.plot(ep, mean, ls=style, label=f"{label}, {q}: {what}, mean of {len(ms)} seeds")
                ax.fill_between(ep, mean - hw, mean + hw, color=line.get_color(), alpha=0.2,
                                label=f"{label}, {q}: {what}, 95 % CI")
    ax.axhline(90, color="0.5", ls=":", lw=0.8, label="90° (orthogonal to backprop)")
    ax.set_ylim(0, 100)
    ax.set_xlabel("epoch")
    ax.set_ylabel("angle to backprop's update (deg)")
    ax.set_title(f"{name}: hidden-layer update vs backprop (0° = same direction)", fontsize=9)
    ax.legend(frameon=False, fontsize=6.5, loc="lower left")
    return fig


def summary_table(finals: dict, ylabel: str, n_seeds: int) -> tuple[str, int]:
    """Markdown table of the final values per seed and variant, with the margin of every other
    variant over the first (other − first: positive where the first is lower), its mean and the
    smallest margin; and how many seeds the first variant is lowest in."""
    labels = list(finals)
    others = labels[1:]
    head = [f"{lab}: final {ylabel}" for lab in labels] + [f"margin {lab} − {labels[0]}" for lab in others]
    lines = ["| seed | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    margins = {lab: [finals[lab][s] - finals[labels[0]][s] for s in range(n_seeds)] for lab in others}
    for s in range(n_seeds):
        cells = [f"{finals[lab][s]:.4g}" for lab in labels] + [f"{margins[lab][s]:+.3g}" for lab in others]
        lines.append(f"| {s + 1} | " + " | ".join(cells) + " |")
    cells = [f"{np.mean(finals[lab]):.4g}" for lab in labels] + [f"{np.mean(margins[lab]):+.3g}" for lab in others]
    lines.append("| mean | " + " | ".join(cells) + " |")
    wins = sum(all(finals[labels[0]][s] < finals[lab][s] for lab in others) for s in range(n_seeds))
    if others:
        lines.append(f"\n{labels[0]} lowest in {wins} of {n_seeds} seeds; smallest margin "
                     + ", ".join(f"{min(margins[lab]):+.3g} ({lab})" for lab in others))
    return "\n".join(lines), wins


def alignment_summary(angled: dict) -> str:
    """Per variant and hidden pathway: the per-example angle to backprop in the first and the
    last epoch and its largest value (mean over seeds, range over seeds)."""
    lines = []
    for label, ms in angled.items():
        for q in ms[0]["alignment_angle_per_example_deg"]:
            a = np.array([m["alignment_angle_per_example_deg"][q] for m in ms], dtype=float)
            s = np.array([m["alignment_angle_deg"][q] for m in ms], dtype=float)
            lines.append(f"{label}, {q}: per-example angle epoch 1 {a[:, 0].mean():.1f}° "
                         f"({a[:, 0].min():.1f}–{a[:, 0].max():.1f}), last epoch {a[:, -1].mean():.1f}° "
                         f"({a[:, -1].min():.1f}–{a[:, -1].max():.1f}), max {a.max():.1f}°; epoch's summed "
                         f"update {s[:, 0].mean():.1f}° → {s[:, -1].mean():.1f}°, max {s.max():.1f}°")
    return ("\n\n" + "\n".join(lines)) if lines else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", type=Path)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--variant", action="append", default=[], help="LABEL:KEY=VALUE[,KEY=VALUE]")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--expect-first-wins", action="store_true")
    args = ap.parse_args(argv)
    from matplotlib.figure import Figure

    out = args.out or ROOT / "runs" / f"{args.scenario.stem}_seeds"
    variants = [parse_variant(v) for v in args.variant] or [(args.scenario.stem, [])]
    results = {label: [run(args.scenario, out / f"{slug(label)}_seed{s}", s, args.set + sets)
                       for s in range(1, args.seeds + 1)] for label, sets in variants}

    fig = Figure(figsize=(5.8, 3.8))
    ax = fig.subplots()
    ylabel = "test loss"
    for label, ms in results.items():
        ep, _, ylabel = curve(ms[0])
        vals = np.array([curve(m)[1] for m in ms])
        mean, hw = band(vals)
        line, = ax.plot(ep, mean, label=f"{label} (mean of {len(ms)} seeds)")
        ax.fill_between(ep, mean - hw, mean + hw, color=line.get_color(), alpha=0.25, label=f"{label}: 95 % CI")
    if np.all(np.array([curve(m)[1] for ms in results.values() for m in ms]) > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{args.scenario.stem}: learning curves over seeds", fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    fig.savefig(out / "learning_curves.png", dpi=150, bbox_inches="tight")

    angled = {label: ms for label, ms in results.items() if ms[0].get("alignment_angle_deg")}
    if angled:
        fig = alignment_figure(angled, args.scenario.stem)
        fig.savefig(out / "alignment.png", dpi=150, bbox_inches="tight")

    labels = list(results)
    finals = {lab: [curve(m)[1][-1] for m in results[lab]] for lab in labels}
    text, wins = summary_table(finals, ylabel, args.seeds)
    text += alignment_summary(angled)
    (out / "summary.md").write_text(text + "\n")
    print(text)
    return 1 if args.expect_first_wins and len(labels) > 1 and wins < args.seeds else 0


if __name__ == "__main__":
    raise SystemExit(main())
