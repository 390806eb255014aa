#!/usr/bin/env python
"""GPU benchmark of the ``cupy`` backend: CUBA, COBA and PYR-STP at 4k, 64k, 256k and 10⁶ neurons.

The networks are those of ``scripts/bench_vs_brian2.py`` (built by
:mod:`dendrite_sim.validation.networks`: Brette et al. 2007 CUBA/COBA with 2 % connectivity at
4k, a fixed in-degree of ``--k-in`` = 80 synapses per neuron from 64k on; Naud–Sprekeler
pyramidal neurons with Payeur STP), dt = 0.1 ms. For each: s per biological second of the loop
(wall of ``Network.run`` after a one-step warm-up that generates and compiles the kernel; the
compile time is listed apart), µs per step, the firing rate (to show that the network ran as on
the CPU) and, where ``n <= --brian2-max``, Brian2 cpp_standalone on the CPU (1 thread, via
``bench_vs_brian2.measure``) with the ratio ours / Brian2.

Batched ensemble: ``--batch`` = 64 instances of PYR-STP-4000 (seeds seed .. seed + 63), one
kernel launch per chunk for all of them (:func:`dendrite_sim.engine.backends._gpu_batch.run_batch`):
s per biological second for the whole batch (and per instance), µs per step, the kernel
compile, the mean firing rate over instances. ``--batch 0`` skips it.

Usage (a GPU machine; about 5–8 minutes for the default set, most of it Brian2 and compiles)::

    python scripts/bench_gpu.py --quick             # 0.2 s bio, 4k/64k/10^6, Brian2 at 4k only
    python scripts/bench_gpu.py --sizes 4000,65536 --networks coba --duration 1000
    python scripts/bench_gpu.py --out $OUT/bench_gpu.md

Without CuPy and a CUDA device it prints one line and exits with status 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

LABEL = {"cuba": "CUBA", "coba": "COBA", "pyr_stp": "PYR-STP"}
STEPS_PER_BIO_S = 10_000          # dt = 0.1 ms


def device_or_none() -> str | None:
    """'cupy' / 'numba' when a CUDA device is usable, else None (the simulator does not count)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0"):
        return None
    from dendrite_sim.core.errors import ScenarioError
    from dendrite_sim.engine.backends import cupy as G

    try:
        return G.availability()
    except ScenarioError:
        return None


def ours(name: str, n: int, duration_ms: float, k_in, seed: int) -> dict:
    from dendrite_sim.analysis.spike_stats import summary
    from dendrite_sim.validation import networks as N

    t0 = time.perf_counter()
    r = N.run(name, n, duration_ms, seed=seed, backend="cupy", k_in=k_in)
    total = time.perf_counter() - t0
    transient = 100.0 if duration_ms > 200.0 else 0.0
    s = summary(r["spike_i"], r["spike_t"], n, duration_ms, transient)
    sbs = r["run_s"] / (duration_ms / 1000.0)
    return {"s_per_bio_s": sbs, "us_per_step": 1e6 * sbs / STEPS_PER_BIO_S, "compile_s": r["first_call_s"],
            "build_s": r["build_s"], "rate_hz": s["rate_hz"], "n_synapses": r["n_synapses"], "total_s": total}


def batched(n_inst: int, n: int, duration_ms: float, seed: int) -> dict:
    """``n_inst`` × PYR-STP-``n`` (seeds ``seed`` ..) as one GPU batch: a first one-step run
    (generates and compiles the batched kernel), then ``duration_ms − dt`` timed."""
    import numpy as np

    from dendrite_sim.engine.backends import _gpu_batch as G
    from dendrite_sim.validation import networks as N

    t0 = time.perf_counter()
    built = [N.build("pyr_stp", n=n, seed=seed + k, backend="cupy") for k in range(n_inst)]
    nets = [b.net for b in built]
    t1 = time.perf_counter()
    dt = nets[0].dt
    G.run_batch(nets, dt)
    t2 = time.perf_counter()
    G.run_batch(nets, duration_ms - dt)
    run_s = (time.perf_counter() - t2) * duration_ms / (duration_ms - dt)
    rates = [len(b.spikes.i) / n / (duration_ms / 1000.0) for b in built]
    sbs = run_s / (duration_ms / 1000.0)
    return {"s_per_bio_s": sbs, "per_instance_s": sbs / n_inst, "us_per_step": 1e6 * sbs / STEPS_PER_BIO_S,
            "compile_s": t2 - t1, "build_s": t1 - t0, "rate_hz": float(np.mean(rates)),
            "n_synapses": sum(p.conn.nnz for p in nets[0].projections)}


def brian2(name: str, n: int, duration_ms: float, k_in, seed: int) -> dict | None:
    try:
        import bench_vs_brian2 as BV

        r = BV.measure("cpp_standalone", name, n, duration_ms, seed, 1, k_in=k_in)
        return {"s_per_bio_s": r["s_per_bio_s"], "rate_hz": r["rate_hz"]}
    except Exception as exc:  # Brian2 missing or failing: the GPU figures still stand
        print(f"  Brian2 {name}-{n}: not measured ({type(exc).__name__}: {str(exc)[:120]})", flush=True)
        return None


def fmt(x, spec=".3g") -> str:
    return "—" if x is None else format(x, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="0.2 s biological, sizes 4k/64k/10^6, Brian2 at 4k only")
    ap.add_argument("--duration", type=float, default=None, help="biological ms per run (default 1000; quick 200)")
    ap.add_argument("--sizes", default=None, help="comma-separated sizes (default 4000,65536,262144,1000000)")
    ap.add_argument("--networks", default="cuba,coba,pyr_stp")
    ap.add_argument("--k-in", type=int, default=80, help="synapses per neuron for sizes above 4000")
    ap.add_argument("--brian2-max", type=int, default=None,
                    help="largest size run in Brian2 (default 65536; quick 4000)")
    ap.add_argument("--no-brian2", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64, help="instances of the batched PYR-STP-4000 case (0: skip)")
    ap.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = ap.parse_args(argv)

    dev = device_or_none()
    if dev is None:
        print('bench_gpu: no CUDA device (backend "cupy" needs CuPy with a device, or numba-cuda with a driver); '
              "nothing measured")
        return 0
    duration = args.duration or (200.0 if args.quick else 1000.0)
    sizes = [int(s) for s in (args.sizes or ("4000,65536,1000000" if args.quick else
                                             "4000,65536,262144,1000000")).split(",")]
    b2_max = 0 if args.no_brian2 else (args.brian2_max if args.brian2_max is not None else
                                       (4000 if args.quick else 65536))
    from numba import cuda

    gpu = cuda.get_current_device().name
    gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    print(f"# bench_gpu: {gpu} via {dev}; {duration:g} ms biological, dt 0.1 ms", flush=True)
    rows = []
    for name in args.networks.split(","):
        for n in sizes:
            k_in = None if n <= 4000 else args.k_in
            r = ours(name, n, duration, k_in, args.seed)
            b = brian2(name, n, duration, k_in, args.seed) if n <= b2_max else None
            ratio = r["s_per_bio_s"] / b["s_per_bio_s"] if b else None
            row = [f"{LABEL[name]}-{n}", f"{r['n_synapses']:.3g}", fmt(r["s_per_bio_s"]), fmt(r["us_per_step"]),
                   fmt(r["compile_s"]), fmt(r["rate_hz"]), fmt(b and b["s_per_bio_s"]), fmt(b and b["rate_hz"]),
                   fmt(ratio)]
            rows.append(row)
            print("  " + " | ".join(row), flush=True)
    header = ["network", "synapses", "GPU s/bio-s", "µs/step", "compile s", "rate Hz", "Brian2 cpp s/bio-s",
              "Brian2 rate Hz", "GPU / Brian2"]
    lines = [f"GPU: {gpu} ({dev}); {duration:g} ms biological per run; Brian2 cpp_standalone 1 thread on the CPU", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if args.batch:
        r = batched(args.batch, 4000, duration, args.seed)
        head = ["batch", "synapses per instance", "GPU s/bio-s (batch)", "s/bio-s per instance", "µs/step",
                "compile s", "mean rate Hz"]
        row = [f"{args.batch} × PYR-STP-4000", f"{r['n_synapses']:.3g}", fmt(r["s_per_bio_s"]),
               fmt(r["per_instance_s"]), fmt(r["us_per_step"]), fmt(r["compile_s"]), fmt(r["rate_hz"])]
        print("  " + " | ".join(row), flush=True)
        lines += ["", f"Batched ensemble (one kernel launch per chunk for all {args.batch} instances; "
                  "target ≤ 1.5 s/bio-s for 64 × PYR-STP-4000):", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(row) + " |"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
