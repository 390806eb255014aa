#!/usr/bin/env python
"""The fused loop of this checkout against the loop of another commit, interleaved run by run.

For each network (CUBA-4000, COBA-4000, PYR-STP-4000 of :mod:`dendrite_sim.validation.networks`,
1 s biological, dt 0.1 ms, numba backend, one thread) the two versions run alternately in fresh
processes — ours, theirs, ours, theirs ... — so that machine load affects both alike. Each
process builds the network, runs one step (compiles or loads the cached loop) and then times
``Network.run(duration)`` (wall and CPU time). Reported: each version's median s per biological
second, the median of the per-pair ratios ours / theirs and their spread (min–max), of wall time
and of CPU time (less sensitive to other processes on a shared machine), and the firing rates (both
versions must simulate the same network: rates are equal when the loops are bit-identical).

Usage::

    python scripts/bench_loop_vs_commit.py --ref HEAD~1 --repeats 7
    python scripts/bench_loop_vs_commit.py --ref 2513e5a --networks coba,pyr_stp --out runs/loop_vs.md

The other commit is checked out with ``git worktree`` into a temporary folder (removed at the
end); both versions use their own kernel cache folders.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from dendrite_sim.validation import networks as N
name, duration = sys.argv[1], float(sys.argv[2])
b = N.build(name, n=4000, seed=1)
b.net.run(b.net.dt)
t0, c0 = time.perf_counter(), time.process_time()
b.net.run(duration)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
n_spikes = len(b.spikes.i)
print(json.dumps({"s_per_bio_s": wall / (duration / 1000.0), "cpu_s_per_bio_s": cpu / (duration / 1000.0),
                  "rate_hz": n_spikes / b.pop.n / ((duration + b.net.dt) / 1000.0)}))
"""


def run_child(tree: Path, cache: Path, name: str, duration: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), DENDRITE_SIM_CACHE=str(cache), NUMBA_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(duration)], env=env, cwd=str(tree),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default="HEAD~1", help="the other commit (default HEAD~1)")
    ap.add_argument("--networks", default="cuba,coba,pyr_stp")
    ap.add_argument("--repeats", type=int, default=7, help="pairs of runs per network")
    ap.add_argument("--duration", type=float, default=1000.0, help="biological ms per run")
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dsim_ref_") as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), args.ref],
                       check=True, capture_output=True)
        commit = subprocess.run(["git", "-C", str(other), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        try:
            rows = []
            for name in args.networks.split(","):
                ours, theirs, ratios, cpu_ratios = [], [], [], []
                for who, tree in (("ours", ROOT), ("theirs", other)):      # compile both first
                    run_child(tree, Path(tmp) / f"cache_{who}", name, 1.0)
                for _ in range(args.repeats):
                    a = run_child(ROOT, Path(tmp) / "cache_ours", name, args.duration)
                    b = run_child(other, Path(tmp) / "cache_theirs", name, args.duration)
                    ours.append(a)
                    theirs.append(b)
                    ratios.append(a["s_per_bio_s"] / b["s_per_bio_s"])
                    cpu_ratios.append(a["cpu_s_per_bio_s"] / b["cpu_s_per_bio_s"])
                    print(f"{name}: ours {a['s_per_bio_s']:.4f}  {commit} {b['s_per_bio_s']:.4f}  "
                          f"ratio {ratios[-1]:.3f}", flush=True)
                rows.append((name, statistics.median(r["s_per_bio_s"] for r in ours),
                             statistics.median(r["s_per_bio_s"] for r in theirs), statistics.median(ratios),
                             min(ratios), max(ratios), statistics.median(cpu_ratios), min(cpu_ratios),
                             max(cpu_ratios), ours[0]["rate_hz"], theirs[0]["rate_hz"]))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)],
                           capture_output=True)
    lines = [f"Fused loop, this checkout vs {commit} ({args.ref}); {args.repeats} interleaved pairs, "
             f"{args.duration:g} ms biological, 4000 neurons, numba, 1 thread",
             "",
             "| network | ours s/bio s (median) | theirs s/bio s (median) | wall ratio median | wall ratio min–max | "
             "CPU ratio median | CPU ratio min–max | rate ours / theirs (Hz) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, a, b, r, lo, hi, cr, clo, chi, ra, rb in rows:
        lines.append(f"| {name} | {a:.4f} | {b:.4f} | {r:.3f} | {lo:.3f}–{hi:.3f} | {cr:.3f} | {clo:.3f}–{chi:.3f} "
                     f"| {ra:.3f} / {rb:.3f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
