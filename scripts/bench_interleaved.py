#!/usr/bin/env python
"""Interleaved timing of dendrite_sim (numba) and Brian2 cpp_standalone: A B A B ... (issue 11).

On a shared machine the load changes from second to second, so the minimum of two separate
blocks of runs compares two different machines. Here each network is timed in *pairs*: one run
of ours, then one run of Brian2's compiled binary, repeated ``--pairs`` times, after every
compilation is finished (our loop compiled or loaded and run once; Brian2's code generated,
built with g++ and its binary run once). Reported: the median s per biological second of each,
the ratio of the medians, and the spread of the pairwise ratios (ours / Brian2 of the same
pair): min–max and the interquartile range. The 1-minute load average before and after each
network is listed (it counts this benchmark's own process too).

* Brian2: the binary's own measurement of its run loop (``Network::_last_run_time``; process
  start and file I/O excluded) of a full run from t = 0. **Which clock** it reads matters on a
  loaded machine: with OpenMP off Brian2 measures ``std::clock()`` — the process's CPU time,
  which does not count the time the process waited for a core — and with OpenMP on
  ``omp_get_wtime()``, wall time.
* ours: ``Network.run(duration)`` (state continues from the previous pair), measured with the
  same kind of clock as the Brian2 run it is paired with: CPU time (``time.process_time``) against
  Brian2 with OpenMP off (the main table: single-threaded, as the issue's targets), wall time
  against Brian2 with OpenMP on (the thread-scaling table, where Brian2 runs with
  ``openmp_threads`` = 1 or 2). Comparing our wall time with Brian2's CPU time — what the
  earlier benchmark did — charges the machine's load to us alone.

Networks: CUBA-4000, COBA-4000, PYR-STP-4000 (2 % connectivity; the issue's targets ≤ 0.8×,
≤ 0.7×, ≤ 0.35×), and a thread-scaling table: COBA with 80 synapses per neuron at 4k/16k/64k,
ours with ``threads`` = 1 and 2 against Brian2 with the same number of OpenMP threads
(``prefs.devices.cpp_standalone.openmp_threads``; 1 = OpenMP off). Both sides run with the same
OpenMP wait settings (printed): the numba backend's default, ``GOMP_SPINCOUNT`` = 10000 (spin
briefly, then sleep; :func:`dendrite_sim.engine.backends.numba.wait_policy`), unless
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set when the script starts.

Usage::

    python scripts/bench_interleaved.py                       # all (several minutes on 2 cores)
    python scripts/bench_interleaved.py --only main --pairs 9
    python scripts/bench_interleaved.py --only scaling --sizes 4000,16000,64000 --scaling-duration 200
    python scripts/bench_interleaved.py --profile             # our per-phase profile first
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from dendrite_sim.engine.backends.numba import wait_policy  # noqa: E402

wait_policy()               # before any OpenMP runtime starts; Brian2's binary inherits it too

from dendrite_sim.analysis.spike_stats import summary  # noqa: E402
from dendrite_sim.validation import networks as N  # noqa: E402

LABEL = {"cuba": "CUBA", "coba": "COBA", "pyr_stp": "PYR-STP"}
TARGETS = {"cuba": 0.8, "coba": 0.7, "pyr_stp": 0.35}


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --------------------------------------------------------------------------- the two sides
class Ours:
    """A built network of ours, compiled and warmed; ``run()`` → seconds of one timed run."""

    def __init__(self, name, n, k_in, threads, duration_ms, seed, fastmath=False):
        self.b = N.build(name, n=n, seed=seed, k_in=k_in, fastmath=fastmath)
        self.b.net.threads = threads
        self.duration = duration_ms
        self.b.net.run(self.b.net.dt)                 # generate, compile or load the loop
        self.threads = self.b.net._backend().threads
        t0 = time.perf_counter()
        self.b.net.run(duration_ms - self.b.net.dt)   # first full span (warm-up, spikes for the rates)
        self.first_s = time.perf_counter() - t0
        self.spike_i, self.spike_t = self.b.spikes.i.copy(), self.b.spikes.t.copy()

    def run(self) -> tuple[float, float]:
        """(wall, CPU) seconds of one run."""
        t0, c0 = time.perf_counter(), time.process_time()
        self.b.net.run(self.duration)
        return time.perf_counter() - t0, time.process_time() - c0


class Brian2:
    """Brian2 cpp_standalone: code generated and compiled once; ``run()`` runs the binary and
    returns its own loop time."""

    def __init__(self, name, n, k_in, threads, duration_ms, seed, openmp=False):
        import brian2 as b2

        from dendrite_sim.validation import brian2_networks as B2

        self.b2 = b2
        b2.start_scope()
        b2.defaultclock.dt = 0.1 * b2.ms
        b2.set_device("cpp_standalone", directory=tempfile.mkdtemp(prefix="b2_inter_"), build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = int(threads) if openmp else 0
        self.clock = "wall" if openmp else "cpu"
        b2.seed(seed)
        P, objs = B2.BUILDERS[name](b2, n, B2.CONNECT_P, k_in=k_in, seed=seed)
        self.mon = b2.SpikeMonitor(P)
        net = b2.Network(*objs, self.mon)
        net.run(duration_ms * b2.ms)
        t0 = time.perf_counter()
        self.dev = b2.get_device()
        self.dev.build(run=False, compile=True, clean=True)
        self.compile_s = time.perf_counter() - t0
        self.run()                                     # warm-up (page cache, binary loaded)
        self.spike_i, self.spike_t = np.asarray(self.mon.i[:]), np.asarray(self.mon.t[:] / b2.ms)

    def run(self) -> float:
        self.dev.run()
        return float(self.dev._last_run_time)

    def close(self):
        self.b2.device.reinit()
        self.b2.set_device("runtime")


def rate(spike_i, spike_t, n, duration_ms) -> float:
    transient = 100.0 if duration_ms > 200.0 else 0.0
    return summary(spike_i, spike_t, n, duration_ms, transient)["rate_hz"]


def interleave(name, n, k_in, threads, duration_ms, pairs, seed, openmp=False) -> dict:
    """Both sides compiled, then ``pairs`` × (ours, Brian2); ours on Brian2's kind of clock."""
    load0 = load()
    theirs = Brian2(name, n, k_in, threads, duration_ms, seed, openmp=openmp)
    ours = Ours(name, n, k_in, threads, duration_ms, seed)
    walls, cpus, b = [], [], []
    try:
        for _ in range(pairs):
            w, c = ours.run()
            walls.append(w)
            cpus.append(c)
            b.append(theirs.run())
    finally:
        theirs.close()
    bio = duration_ms / 1000.0
    walls, cpus, b = np.array(walls) / bio, np.array(cpus) / bio, np.array(b) / bio
    a = cpus if theirs.clock == "cpu" else walls
    r = a / b
    q1, q3 = np.percentile(r, [25, 75])
    return {"name": name, "n": n, "k_in": k_in, "threads": threads, "threads_used": ours.threads,
            "duration_ms": duration_ms, "pairs": pairs, "ours": a, "brian2": b, "clock": theirs.clock,
            "ours_wall_med": float(np.median(walls)),
            "ours_med": float(np.median(a)), "brian2_med": float(np.median(b)),
            "ratio_of_medians": float(np.median(a) / np.median(b)), "ratio_med": float(np.median(r)),
            "ratio_min": float(r.min()), "ratio_max": float(r.max()), "ratio_q1": float(q1), "ratio_q3": float(q3),
            "rate_ours": rate(ours.spike_i, ours.spike_t, n, duration_ms),
            "rate_brian2": rate(theirs.spike_i, theirs.spike_t, n, duration_ms),
            "compile_brian2_s": theirs.compile_s, "load_before": load0, "load_after": load()}


# --------------------------------------------------------------------------- output
def row(r) -> list[str]:
    net = f"{LABEL[r['name']]}-{r['n']}" + (f" (k_in {r['k_in']})" if r["k_in"] else "")
    return [net, str(r["threads"]), r["clock"], f"{r['ours_med']:.4f}", f"{r['ours_wall_med']:.4f}",
            f"{r['brian2_med']:.4f}", f"{r['ratio_med']:.2f}",
            f"{r['ratio_min']:.2f}–{r['ratio_max']:.2f}", f"{r['ratio_q1']:.2f}–{r['ratio_q3']:.2f}",
            f"{r['rate_ours']:.2f} / {r['rate_brian2']:.2f}", str(r["pairs"]), r["load_before"].split()[0],
            r["load_after"].split()[0]]


HEADER = ["network", "threads", "clock", "ours s/bio s (median)", "ours wall", "Brian2 cpp s/bio s (median)",
          "ratio (median of pairs)",
          "pair ratios min–max", "IQR", "rate Hz ours / Brian2", "pairs", "load before", "load after"]


def md_table(header, rows) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
                      *["| " + " | ".join(r) + " |" for r in rows]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("main", "scaling", "all"), default="all")
    ap.add_argument("--pairs", type=int, default=9)
    ap.add_argument("--duration", type=float, default=1000.0, help="ms per run, main networks")
    ap.add_argument("--networks", default="coba,cuba,pyr_stp")
    ap.add_argument("--sizes", default="4000,16000,64000")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--scaling-duration", type=float, default=300.0, help="ms per run, scaling study")
    ap.add_argument("--scaling-pairs", type=int, default=5)
    ap.add_argument("--k-in", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="our per-phase profile of the main networks first")
    ap.add_argument("--out", default="runs/bench_interleaved.md")
    args = ap.parse_args(argv)

    import brian2
    import numba

    brian2.BrianLogger.log_level_error()
    md = [f"# Interleaved benchmark — {time.strftime('%Y-%m-%d %H:%M')}", "",
          f"{os.cpu_count()} cores; numba {numba.__version__}, Brian2 {brian2.__version__}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}; "
          f"load at start {load()}; seed {args.seed}.", ""]
    print("\n".join(md), flush=True)
    if args.profile:
        import bench_vs_brian2 as BV

        prof = [BV.profile_phases(name, 4000, 500.0, args.seed) for name in args.networks.split(",")]
        md += ["## Our loop's phases (s per biological second, 4000 neurons, serial loop)", "",
               md_table(["phase"] + [LABEL[p["name"]] for p in prof],
                        [[ph] + [f"{p['phases_s'].get(ph, 0.0) / p['bio_s']:.4f}" for p in prof] for ph in BV.PHASES]
                        + [["total"] + [f"{p['wall_s'] / p['bio_s']:.4f}" for p in prof]]), ""]
        print("\n".join(md[-4:]), flush=True)
    results = []
    if args.only in ("main", "all"):
        md += [f"## Main networks (4000 neurons, 2 % connectivity, {args.duration:g} ms per run, 1 thread; "
               "Brian2 OpenMP off, both on CPU time)", ""]
        rows = []
        for name in args.networks.split(","):
            r = interleave(name, 4000, None, 1, args.duration, args.pairs, args.seed)
            results.append(r)
            rows.append(row(r) + [f"≤ {TARGETS[name]}", "yes" if r["ratio_med"] <= TARGETS[name] else "**no**"])
            print("  " + " | ".join(rows[-1]), flush=True)
        md += [md_table(HEADER + ["target", "met"], rows), ""]
    if args.only in ("scaling", "all"):
        md += [f"## Thread scaling: COBA, {args.k_in} synapses per neuron, {args.scaling_duration:g} ms per run; "
               "Brian2 with the same number of OpenMP threads (OpenMP on), both on wall time", ""]
        rows = []
        for n in [int(s) for s in args.sizes.split(",")]:
            for th in [int(t) for t in args.threads.split(",")]:
                r = interleave("coba", n, args.k_in, th, args.scaling_duration, args.scaling_pairs, args.seed,
                               openmp=True)
                results.append(r)
                rows.append(row(r))
                print("  " + " | ".join(rows[-1]), flush=True)
        md += [md_table(HEADER, rows), ""]
    md.append(f"Load at end {load()}.")
    text = "\n".join(md) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from dendrite_sim.io.atomic import write_text

    write_text(out, text)
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
