#!/usr/bin/env python
"""dendrite_sim (numba) vs Brian2 cpp_standalone (1 thread) vs Brian2's default runtime target.

One run, one machine, the same networks (issue 3, part 8):

* **CUBA-4000, COBA-4000** (Brette et al. 2007, 2 % connectivity) and **PYR-STP-4000**
  (Naud–Sprekeler pyramidal neurons, Poisson drive, Payeur STP), 1 s biological, dt 0.1 ms;
* **N scaling**: CUBA and COBA with a fixed in-degree of 80 synapses per neuron at 4k/16k/64k;
* **compile and start-up**: Brian2's code generation + g++ time (cpp_standalone) and code-object
  compilation (runtime), reported apart from the run times; our cold Numba compile and the
  time to the first step in a fresh process with a cold and a warm kernel cache (PYR-STP-4000,
  measured by ``scripts/time_to_first_step.py``);
* **profile** of our fused loop on COBA-4000 and PYR-STP-4000: the cycle counter read between the
  phases of every step (arrivals, drives, monitors, neuron update + spike collection,
  bookkeeping, propagation), in an instrumented copy of the generated loop.

The networks are built by :mod:`dendrite_sim.validation.networks` and
:mod:`dendrite_sim.validation.brian2_networks` (same discrete equations; see their docstrings).
Rates, CV of ISIs and burst fractions (after a 100 ms transient) are printed next to the times
to show that both simulators ran the same network.

Timing rules: all runs single-threaded. "s / bio s" is wall time per biological second of the
simulation loop: ours = ``Network.run`` after a one-step warm-up that compiles (or loads) the
loop; cpp_standalone = the binary's own measurement of its run loop (``Network::_last_run_time``;
compilation, process start and file I/O excluded; the wall time of the binary is listed too);
runtime = wall of ``net.run`` after a one-step warm-up that compiles the code objects, less the
wall of a one-step ``run()`` (Brian2 prepares its code objects again at every ``run()``: that
fixed cost is listed separately as overhead). Each time is the minimum over ``--repeats`` runs
(at most 2 for the runtime target). The 1-minute load average after each measurement is listed:
the machine is shared, and loaded cores inflate times (the average also counts this benchmark's
own g++ jobs: Brian2 builds with ``make -j``). Brian2's runtime start-up is with its on-disk
Cython cache as found (cold: 10–25 s per network here; warm: < 1 s). Events = synaptic events (spikes × mean
out-degree); events/s = events per wall second of the loop. Ratio = ours / Brian2.

Caveat on clocks: with OpenMP off, Brian2's ``_last_run_time`` is ``std::clock()`` — the
process's CPU time — while ours here is wall time, so on a loaded machine this script charges the
load to us alone, and separate blocks of repeats see different loads. For ratios that hold on a
noisy machine use ``scripts/bench_interleaved.py`` (pairs A B A B ..., the same kind of clock on
both sides, medians and the spread of the pairwise ratios, thread scaling against OpenMP).
``profile_phases`` runs the serial loop (``threads = 1``).

Numerical choices: our default is exact IEEE arithmetic (``fastmath=False``); a separate row
gives ``fastmath=True`` (LLVM may reorder/contract floating-point operations). Brian2's
cpp_standalone compiles with its default flags (which include ``-ffast-math``; printed).

Usage::

    python scripts/bench_vs_brian2.py                 # full run (several minutes on 2 cores)
    python scripts/bench_vs_brian2.py --quick         # 0.2 s biological, 4k/16k, one repeat
    python scripts/bench_vs_brian2.py --out runs/bench.md --repeats 5 --no-runtime
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dendrite_sim.analysis.spike_stats import summary  # noqa: E402
from dendrite_sim.engine.schedule import PHASES as SCHEDULE  # noqa: E402
from dendrite_sim.validation import networks as N  # noqa: E402

TRANSIENT_MS = 100.0
RUNTIME_REPEATS = 2         # Brian2's runtime target takes seconds per run: at most this many
LABEL = {"cuba": "CUBA", "coba": "COBA", "pyr_stp": "PYR-STP"}
TARGETS = {"numba": "dendrite_sim numba", "cpp_standalone": "Brian2 cpp_standalone (1 thread)",
           "auto": "Brian2 runtime (default target)"}
# the schedule's phases (engine/schedule.py); the generated loop marks each with "# phase k: name"
PHASES = ("0 monitor capacity check", *(f"{k} {p.name}" for k, p in enumerate(SCHEDULE, start=1)))


# --------------------------------------------------------------------------- one measurement
def stats(r: dict) -> dict:
    transient = TRANSIENT_MS if r["duration_ms"] > 2 * TRANSIENT_MS else 0.0
    return summary(r["spike_i"], r["spike_t"], r["n"], r["duration_ms"], transient)


def measure(sim: str, name: str, n: int, duration_ms: float, seed: int, repeats: int, k_in=None,
            fastmath: bool = False, bursts: bool = False) -> dict:
    """One network in one simulator: times, rates and events (a flat dict for the tables)."""
    if sim == "numba":
        r = N.run(name, n, duration_ms, seed=seed, k_in=k_in, repeats=repeats, fastmath=fastmath, bursts=bursts)
        startup = r["first_call_s"]
        wall = r["run_s"]
        extra = {"build_s": r["build_s"], "startup_s": startup}
    else:
        from dendrite_sim.validation import brian2_networks as B2

        runtime_repeats = repeats if sim == "cpp_standalone" else min(repeats, RUNTIME_REPEATS)
        r = B2.run(name, n, duration_ms, seed=seed, target=sim, k_in=k_in, repeats=runtime_repeats, n_threads=1)
        if sim == "cpp_standalone":
            wall = r["run_s_internal"]
            extra = {"build_s": r["build_s"], "compile_s": r["compile_s"], "binary_wall_s": r["run_s"]}
        else:                       # the loop: wall of run(duration) less the fixed cost of a run() call
            wall = r["run_s"] - r["overhead_s"]
            extra = {"build_s": r["build_s"], "startup_s": r["startup_s"], "overhead_s": r["overhead_s"],
                     "code_object": r["code_object"]}
    s = stats(r)
    bio_s = duration_ms / 1000.0
    events = len(r["spike_i"]) * r["n_synapses"] / n
    return {"sim": sim, "name": name, "n": n, "k_in": k_in, "fastmath": fastmath, "bursts": bursts,
            "s_per_bio_s": wall / bio_s, "events_per_s": events / wall if wall > 0 else float("nan"),
            "n_synapses": r["n_synapses"], "rate_hz": s["rate_hz"], "cv_isi": s["cv_isi"],
            "burst_fraction": s["burst_fraction"], "load_1min": os.getloadavg()[0], **extra}


# --------------------------------------------------------------------------- fresh processes
def time_to_first_step(network: str = "pyr_stp", warm_repeats: int = 3) -> dict:
    """Cold (empty kernel and Numba caches) and warm (later processes, best of ``warm_repeats``)
    time to the first step, with the engine's ``scripts/time_to_first_step.py`` (PYR-STP-4000)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import time_to_first_step as ttfs

    cwd = os.getcwd()
    os.chdir(ROOT)                                        # the child imports dendrite_sim from here
    try:
        with tempfile.TemporaryDirectory(prefix="dsim_ttfs_") as cache:
            cold = ttfs.measure(network, cache)
            warm = [ttfs.measure(network, cache) for _ in range(max(1, warm_repeats))]
    finally:
        os.chdir(cwd)
    return {"network": network, "cold": cold, "warm": min(warm, key=lambda d: d["first_step_s"]),
            "warm_all": [w["first_step_s"] for w in warm]}


# --------------------------------------------------------------------------- profile
def _rdtsc_intrinsic():
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def rdtsc(typingctx):
        def codegen(context, builder, sig, args):
            fnty = ir.FunctionType(ir.IntType(64), [])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
            return builder.call(fn, [])

        return types.int64(), codegen

    return rdtsc


def instrument(source: str) -> str:
    """The generated loop with a cycle-counter read before every phase comment (``# phase k:``).
    The channel decay is fused into the update loop, so its time counts as ``update``."""
    out, prev = [], None
    for line in source.splitlines():
        stripped = line.strip()
        if line.startswith("def run_loop("):
            line = line.replace("):", ", _prof):")
        if stripped.startswith("@njit("):
            line = line.replace("cache=True", "cache=False")
        if line == "        step = step0 + s":
            out += [line, "        _t = _rdtsc()"]
            prev = 0
            continue
        if line.startswith("        # phase "):
            k = int(stripped[len("# phase "):].split(":")[0])
            out += ["        _n = _rdtsc()", f"        _prof[{prev}] += _n - _t", "        _t = _n"]
            prev = k
        if line == "    return n_steps":
            out += ["        _n = _rdtsc()", f"        _prof[{prev}] += _n - _t"]
        out.append(line)
    return "\n".join(out)


def profile_phases(name: str, n: int = 4000, duration_ms: float = 1000.0, seed: int = 1,
                   fastmath: bool = False, k_in: int | None = None) -> dict:
    """Per-phase time of our loop on ``name`` (cycle counts scaled to the measured wall time)."""
    b = N.build(name, n=n, seed=seed, fastmath=fastmath, k_in=k_in)
    net = b.net
    net.threads = 1                                       # the instrumented copy is of the serial loop
    net.run(net.dt)                                       # prepares rings, compiles the normal loop
    backend = net._backend()
    ns = {"_rdtsc": _rdtsc_intrinsic()}
    exec(compile(instrument(backend.kernel.source), f"<instrumented {name}>", "exec"), ns)
    fn = ns["run_loop"]
    prof = np.zeros(len(PHASES), dtype=np.int64)
    args = [g() for g in backend.kernel.getters]
    fn(net.step, 1, net.dt, *args, prof)                  # compile the instrumented copy
    net.step += 1
    prof[:] = 0
    n_steps = int(round(duration_ms / net.dt))
    t0 = time.perf_counter()
    done = 0
    while done < n_steps:
        for m in net.spike_monitors:
            m.ensure_capacity()
        args = [g() for g in backend.kernel.getters]
        k = fn(net.step, n_steps - done, net.dt, *args, prof)
        net.step += k
        done += k
    wall = time.perf_counter() - t0
    total = prof.sum()
    phases = {PHASES[i]: wall * prof[i] / total for i in range(len(PHASES)) if prof[i]}
    return {"name": name, "n": n, "k_in": k_in, "wall_s": wall, "bio_s": duration_ms / 1000.0, "phases_s": phases,
            "spikes_per_step": len(b.spikes.i) / max(1, net.step)}


# --------------------------------------------------------------------------- output
def fmt(x, spec=".3g"):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return format(x, spec)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def group_rows(results: list[dict]) -> list[list[str]]:
    """One row per (network, simulator), with the ratio to Brian2 cpp_standalone and runtime."""
    rows = []
    keyed = {}
    for r in results:
        keyed.setdefault((r["name"], r["n"], r["k_in"]), {})[(r["sim"], r["fastmath"], r["bursts"])] = r
    for (name, n, k_in), sims in keyed.items():
        ref_cpp = sims.get(("cpp_standalone", False, False))
        ref_rt = sims.get(("auto", False, False))
        net = f"{LABEL[name]}-{n}" + (f" (k_in {k_in})" if k_in else "")
        for (sim, fm, bu), r in sims.items():
            label = TARGETS[sim] + (" fastmath" if fm else "") + (" +online bursts" if bu else "")
            ratio_cpp = r["s_per_bio_s"] / ref_cpp["s_per_bio_s"] if ref_cpp and sim == "numba" else None
            ratio_rt = r["s_per_bio_s"] / ref_rt["s_per_bio_s"] if ref_rt and sim == "numba" else None
            fixed = r.get("compile_s", r.get("startup_s"))
            rows.append([net, label, fmt(r["s_per_bio_s"], ".4f"), fmt(r["events_per_s"], ".3g"),
                         fmt(r["rate_hz"], ".2f"), fmt(r["cv_isi"], ".3f"),
                         fmt(r["burst_fraction"], ".3f") if name == "pyr_stp" else "–",
                         fmt(ratio_cpp, ".2f"), fmt(ratio_rt, ".2f"), fmt(fixed, ".2f"),
                         fmt(r.get("overhead_s", r.get("binary_wall_s")), ".3f"), fmt(r["load_1min"], ".1f")])
    return rows


HEADER = ["network", "simulator", "s / bio s", "events / s", "rate (Hz)", "CV ISI", "burst frac.",
          "× cpp", "× runtime", "compile / startup (s)", "overhead / binary wall (s)", "load"]


def environment() -> dict:
    import brian2
    import numba

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "brian2": brian2.__version__,
            "brian2_cpp_flags": " ".join(brian2.prefs.codegen.cpp.extra_compile_args_gcc),
            "commit": git("rev-parse", "--short", "HEAD"),
            "engine_dirty": git("status", "--porcelain", "dendrite_sim/engine", "dendrite_sim/neurons",
                                "dendrite_sim/synapses") or "clean"}


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="0.2 s biological, sizes 4k/16k, one repeat")
    ap.add_argument("--duration", type=float, default=None, help="biological time per run in ms (default 1000)")
    ap.add_argument("--sizes", default=None, help="N-scaling sizes, comma-separated (default 4000,16000,64000)")
    ap.add_argument("--k-in", type=int, default=80, help="synapses per neuron in the N-scaling study")
    ap.add_argument("--repeats", type=int, default=None, help="timed repetitions, minimum reported (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="runs/bench_results.md", help="markdown file to write")
    ap.add_argument("--no-runtime", action="store_true", help="skip Brian2's runtime target")
    ap.add_argument("--no-scaling", action="store_true", help="skip the N-scaling study")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-phase profile")
    ap.add_argument("--networks", default="cuba,coba,pyr_stp", help="main networks, comma-separated")
    args = ap.parse_args(argv)

    import brian2

    brian2.BrianLogger.log_level_error()
    duration = args.duration or (200.0 if args.quick else 1000.0)
    sizes = [int(s) for s in (args.sizes or ("4000,16000" if args.quick else "4000,16000,64000")).split(",")]
    repeats = args.repeats or (1 if args.quick else 5)
    sims = ["numba", "cpp_standalone"] + ([] if args.no_runtime else ["auto"])
    env = environment()
    load_start = load()
    t_start = time.perf_counter()
    print(f"# bench_vs_brian2: {duration:g} ms biological, dt 0.1 ms, repeats {repeats}, load {load_start}",
          flush=True)

    def log(r):
        print(f"  {LABEL[r['name']]}-{r['n']}{' k_in ' + str(r['k_in']) if r['k_in'] else ''} "
              f"{TARGETS[r['sim']]}{' fastmath' if r['fastmath'] else ''}{' +bursts' if r['bursts'] else ''}: "
              f"{r['s_per_bio_s']:.4f} s/bio s, {r['rate_hz']:.2f} Hz, CV {r['cv_isi']:.3f}, "
              f"bursts {r['burst_fraction']:.3f}  (load {load()})", flush=True)

    # ---- compile and start-up (first: the cold compile must not find a warm cache)
    print("time to first step (fresh processes, PYR-STP-4000)...", flush=True)
    ttfs = time_to_first_step("pyr_stp")
    print(f"  cold {ttfs['cold']['first_step_s']:.3f} s, warm {ttfs['warm_all']} s", flush=True)

    # ---- main networks
    main_results = []
    for name in args.networks.split(","):
        for sim in sims:
            r = measure(sim, name, 4000, duration, args.seed, repeats)
            log(r)
            main_results.append(r)
        if name in ("coba", "pyr_stp"):
            r = measure("numba", name, 4000, duration, args.seed, repeats, fastmath=True)
            log(r)
            main_results.append(r)
        if name == "pyr_stp":
            r = measure("numba", name, 4000, duration, args.seed, repeats, bursts=True)
            log(r)
            main_results.append(r)

    # ---- N scaling
    scaling = []
    if not args.no_scaling:
        for name in ("cuba", "coba"):
            for n in sizes:
                for sim in sims:
                    r = measure(sim, name, n, duration, args.seed, repeats, k_in=args.k_in)
                    log(r)
                    scaling.append(r)

    # ---- profile
    profiles = []
    if not args.no_profile:
        for name in ("coba", "pyr_stp"):
            profiles.append(profile_phases(name, 4000, duration, args.seed))
        if not args.no_scaling:                           # where the time goes as N grows
            profiles.append(profile_phases("coba", max(sizes), duration, args.seed, k_in=args.k_in))
    load_end = load()

    # ---- targets
    def ratio(name, fastmath=False):
        ours = next((r for r in main_results if r["name"] == name and r["sim"] == "numba"
                     and r["fastmath"] == fastmath and not r["bursts"]), None)
        cpp = next((r for r in main_results if r["name"] == name and r["sim"] == "cpp_standalone"), None)
        return ours["s_per_bio_s"] / cpp["s_per_bio_s"] if ours and cpp else float("nan")

    targets = [("COBA-4000: numba / cpp_standalone", ratio("coba"), 0.7),
               ("PYR-STP-4000: numba / cpp_standalone", ratio("pyr_stp"), 0.5),
               ("time to first step, warm cache, fresh process (s)", ttfs["warm"]["first_step_s"], 0.5)]

    # ---- report
    md = [f"# dendrite_sim vs Brian2 — {time.strftime('%Y-%m-%d %H:%M')}", "",
          f"Machine: {env['cpu']}, {env['cores']} cores; Python {env['python']}, numpy {env['numpy']}, "
          f"numba {env['numba']}, Brian2 {env['brian2']}; commit {env['commit']}; engine files: "
          f"{env['engine_dirty'].replace(chr(10), '; ')}.",
          f"Load average (1, 5, 15 min) at start {load_start}, at end {load_end}; "
          f"wall time of the benchmark {time.perf_counter() - t_start:.0f} s.",
          f"Biological time {duration:g} ms per run, dt 0.1 ms, minimum of {repeats} timed runs; "
          f"Brian2 cpp_standalone: OpenMP off (1 thread), flags `{env['brian2_cpp_flags']}`; "
          f"rates/CV/bursts after a {TRANSIENT_MS:g} ms transient.", "",
          "## Targets", "",
          md_table(["target", "measured", "required", "met"],
                   [[t, fmt(v, ".3f"), f"≤ {lim}", "yes" if v <= lim else "**no**"] for t, v, lim in targets]),
          "", "## CUBA, COBA, PYR-STP (4000 neurons, 2 % connectivity)", "",
          md_table(HEADER, group_rows(main_results))]
    if scaling:
        md += ["", f"## N scaling ({args.k_in} synapses per neuron, fixed in-degree)", "",
               md_table(HEADER, group_rows(scaling))]
    md += ["", f"## Compile and start-up (ours: {LABEL[ttfs['network']]}-4000, fresh processes; "
           f"warm first steps {', '.join(f'{x:.3f}' for x in ttfs['warm_all'])} s)", "",
           md_table(["what", "seconds"], [
               ["ours: cold compile + first step (empty caches, fresh process)",
                fmt(ttfs["cold"]["first_step_s"], ".2f")],
               ["ours: first step, warm cache, fresh process (codegen + cache load + 1 step)",
                fmt(ttfs["warm"]["first_step_s"], ".3f")],
               ["ours: import numpy, numba, dendrite_sim.engine.network (fresh process, warm)",
                fmt(ttfs["warm"]["import_s"], ".3f")],
               ["ours: build PYR-STP-4000 (fresh process, warm)", fmt(ttfs["warm"]["build_s"], ".3f")],
               ["ours: import + build + first step (fresh process, warm)", fmt(ttfs["warm"]["total_s"], ".3f")],
               ["ours: spawn to exit of that process (interpreter start included, warm)",
                fmt(ttfs["warm"]["wall_s"], ".3f")],
               *[[f"Brian2 cpp_standalone codegen + g++: {LABEL[r['name']]}-{r['n']}", fmt(r["compile_s"], ".1f")]
                 for r in main_results if r["sim"] == "cpp_standalone"],
               *[[f"Brian2 runtime first run (code objects; {r.get('code_object', '?')}): {LABEL[r['name']]}-{r['n']}",
                  fmt(r["startup_s"], ".1f")] for r in main_results if r["sim"] == "auto"]])]
    if profiles:
        md += ["", "## Where our loop spends its time", "",
               "Cycle counter read between the phases of each step in an instrumented copy of the generated "
               "loop (same code otherwise); seconds per biological second.", ""]
        names = list(PHASES)
        md.append(md_table(["phase"] + [f"{LABEL[p['name']]}-{p['n']}" + (f" (k_in {p['k_in']})" if p["k_in"] else "")
                                        for p in profiles],
                           [[ph] + [fmt(p["phases_s"].get(ph, 0.0) / p["bio_s"], ".4f") for p in profiles]
                            for ph in names]
                           + [["total (instrumented)"] + [fmt(p["wall_s"] / p["bio_s"], ".4f") for p in profiles]]))
    text = "\n".join(md) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from dendrite_sim.io.atomic import write_text

    write_text(out, text)
    print()
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
