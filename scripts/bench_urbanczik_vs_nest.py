"""Urbanczik–Senn dendritic prediction (paper Fig 1B): ours against NEST 3.10 on one protocol.

For each seed, interleaved run by run, the protocol of ``scenarios/urbanczik_senn_fig1.toml``
(NEST's ``pynest/examples/urbanczik_synapse_example.py``) runs

* in NEST: ``pp_cond_exp_mc_urbanczik`` with ``urbanczik_synapse`` (η_N = 0.17), the somatic
  teacher as in the example (a ``spike_generator`` per conductance firing every step, spike
  weight g*(t) dt / τ_syn, connection weight 1 = 10 · dt), the dendritic pattern through
  ``parrot_neuron`` s (delay one step each way);
* in ours: :mod:`dendrite_sim.experiments.dendritic_prediction` (η = 225 η_N C_d τ_s / g_L,d).

Both get the same frozen input pattern (drawn from the seed's ``"pattern"`` stream) and the
same teacher targets; the somatic spike trains are each simulator's own draws. Both are
scored by the same function (RMS of V*_w − U_M per repetition, U_M from the recorded somatic
conductances); the final error is the mean of the last ``analysis.final_repetitions`` (10)
repetitions and the fall is the first repetition's error over it
(:func:`~dendrite_sim.experiments.dendritic_prediction.error_fall`). Ours is timed after a
warm-up run (2 repetitions) that pays the compile cost; NEST's time includes building its
network (its models are compiled ahead of time).

Weight bounds: the scenario clips the running total, w = clip(w_0 + η ∫ Δ dt, W_min, W_max), as
NEST does (``synapses.clip_total = true``: a synapse driven to 0 stays there until the unclipped
sum comes back). ``--step-clipping`` adds a third column: our rule clipping each step's weight
instead, w ← clip(w + η dt Δ) (``clip_total = false``), where a weight at 0 rises again at the
first positive Δ.

    python scripts/bench_urbanczik_vs_nest.py [--seeds 3] [--repetitions 100] [--step-clipping] [--out PNG]
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import numpy as np

from dendrite_sim.core import rng as rngmod
from dendrite_sim.experiments import dendritic_prediction as dp
from dendrite_sim.io.scenario import load
from dendrite_sim.neurons import urbanczik_senn as US

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "urbanczik_senn_fig1.toml"
ETA_NEST = 0.17


def scenario_cfg(repetitions: int | None = None) -> dict:
    overrides = [] if repetitions is None else [f"protocol.repetitions={repetitions}",
                                                f"analysis.final_repetitions={min(10, repetitions)}"]
    return load(SCENARIO, overrides=overrides).cfg


# --------------------------------------------------------------------------- ours
def run_ours(cfg: dict, seed: int) -> dict:
    t0 = time.perf_counter()
    res = dp.run_seed(cfg, seed)
    res["wall_s"] = time.perf_counter() - t0
    return res


# --------------------------------------------------------------------------- NEST
def nest_params(p) -> dict:
    """NEST's parameter dictionary for our neuron parameters ``p`` (internal units = NEST's)."""
    return {"t_ref": p.t_ref, "g_sp": p.g_sp, "g_ps": p.g_ps, "phi_max": p.phi_max, "rate_slope": p.rate_slope,
            "beta": p.beta, "theta": p.theta,
            "soma": {"V_m": p.E_L, "C_m": p.C, "E_L": p.E_L, "g_L": p.g_L, "E_ex": p.E_ex, "E_in": p.E_in,
                     "tau_syn_ex": 3.0, "tau_syn_in": 3.0},
            "dendritic": {"V_m": p.E_L_d, "C_m": p.C_d, "E_L": p.E_L_d, "g_L": p.g_L_d,
                          "tau_syn_ex": 3.0, "tau_syn_in": 3.0}}


def run_nest(cfg: dict, seed: int) -> dict:
    """The protocol in NEST; the same analysis as ours."""
    import nest

    pc, syn, teacher = cfg["protocol"], cfg["synapses"], cfg["teacher"]
    dt, n_pat = pc["dt"], int(round(pc["pattern"] / pc["dt"]))
    reps, n_total = pc["repetitions"], pc["lead_in"] + pc["repetitions"] + pc["lead_out"]
    n_steps = n_total * n_pat
    p = US.UrbanczikSenn.make_params(cfg["model"]["neuron"])
    steps, idx = dp.input_pattern(rngmod.stream(seed, "pattern"), pc["n_inputs"], pc["input_rate"], n_pat, dt)

    t0 = time.perf_counter()
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.set(resolution=dt, rng_seed=int(seed % (2**31 - 2)) + 1, local_num_threads=1, print_time=False)
    nrn = nest.Create("pp_cond_exp_mc_urbanczik", params=nest_params(p))
    receptors = nest.GetDefaults("pp_cond_exp_mc_urbanczik")["receptor_types"]
    # dendritic pattern: spike_generator -> parrot (one step) -> urbanczik_synapse (one step);
    # our generator's spike at step s reaches the dendrite one step later, NEST's two steps
    offsets = np.arange(n_total)[:, None] * n_pat
    gens = nest.Create("spike_generator", pc["n_inputs"])
    for j in range(pc["n_inputs"]):
        s = steps[idx == j]
        times = ((s[None, :] + offsets).ravel() + 1) * dt
        gens[j].spike_times = np.round(times, 6)
    parrots = nest.Create("parrot_neuron", pc["n_inputs"])
    nest.Connect(gens, parrots, "one_to_one", syn_spec={"delay": dt})
    nest.Connect(parrots, nrn, syn_spec={
        "synapse_model": "urbanczik_synapse", "receptor_type": receptors["dendritic_exc"],
        "tau_Delta": syn["tau_delta"], "eta": ETA_NEST, "weight": syn["weight"], "Wmin": syn["w_min"],
        "Wmax": syn["w_max"], "delay": syn["delay"]})
    # teacher: one generator per conductance, a spike every step with weight g*(t) dt / tau_syn
    t = np.arange(1, n_steps) * dt
    g_e, g_i = dp.teacher_targets(t, teacher, pc["lead_in"] * pc["pattern"], (pc["lead_in"] + reps) * pc["pattern"])
    for g, receptor in ((g_e, "soma_exc"), (g_i, "soma_inh")):
        sg = nest.Create("spike_generator", params={"spike_times": np.round(t, 6), "spike_weights": g * dt / 3.0})
        nest.Connect(sg, nrn, syn_spec={"receptor_type": receptors[receptor], "weight": 1.0, "delay": dt})
    mm = nest.Create("multimeter", params={"record_from": ["V_m.s", "V_m.p", "g_ex.s", "g_in.s"], "interval": dt})
    nest.Connect(mm, nrn)
    sr = nest.Create("spike_recorder")
    nest.Connect(nrn, sr)
    t_build = time.perf_counter() - t0
    nest.Simulate(n_steps * dt + dt)
    wall = time.perf_counter() - t0

    ev = mm.events
    k = np.rint(ev["times"] / dt).astype(np.int64)
    keep = k < n_steps
    rec = {}
    for name in ("V_m.s", "V_m.p", "g_ex.s", "g_in.s"):
        a = np.full(n_steps, np.nan)
        a[k[keep]] = ev[name][keep]
        rec[name] = a
    a, b = pc["lead_in"] * n_pat, (pc["lead_in"] + reps) * n_pat
    v_star = US.dendritic_prediction(rec["V_m.p"][a:b], p)
    u_m = dp.matching_potential(rec["g_ex.s"][a:b], rec["g_in.s"][a:b], p)
    st = np.asarray(sr.events["times"])
    rate = np.count_nonzero((st >= a * dt) & (st < b * dt)) / ((b - a) * dt / 1000.0)
    w = np.asarray(nest.GetConnections(synapse_model="urbanczik_synapse").get("weight"), dtype=float)
    return {"error_mV": dp.repetition_errors(v_star, u_m, n_pat), "rate_hz": float(rate),
            "weight_mean_pA": float(w.mean()), "wall_s": wall, "build_s": t_build}


# --------------------------------------------------------------------------- report
def spread(x) -> str:
    x = np.asarray(x, dtype=float)
    return f"{x.mean():.3g} ± {x.std(ddof=1) if x.size > 1 else 0.0:.2g}"


def curves_figure(ours: np.ndarray, nest_: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    k = np.arange(1, ours.shape[1] + 1)
    for c, label, color in ((ours, "dendrite_sim", "tab:blue"), (nest_, "NEST 3.10", "tab:orange")):
        ax.fill_between(k, c.min(axis=0), c.max(axis=0), color=color, alpha=0.25)
        ax.plot(k, c.mean(axis=0), color=color, label=f"{label} (mean, range over {len(c)} seeds)")
    ax.set_yscale("log")
    ax.set_xlabel("pattern repetition (teacher on)")
    ax.set_ylabel(r"RMS($V^*_w - U_M$) (mV)")
    ax.set_title("Urbanczik–Senn Fig 1B protocol: dendritic prediction error")
    ax.legend(frameon=False)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=None, help="teacher repetitions (default: the scenario's)")
    ap.add_argument("--root-seed", type=int, default=1)
    ap.add_argument("--step-clipping", action="store_true", help="also run our rule clipping each step's weight")
    ap.add_argument("--out", default="runs/bench_urbanczik_vs_nest.png", help="figure of both curves")
    args = ap.parse_args(argv)
    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    cfg = scenario_cfg(args.repetitions)
    assert abs(cfg["synapses"]["eta"] - dp.eta_from_nest(ETA_NEST)) < 1e-9, "scenario eta is not NEST's 0.17"
    n_final = cfg["analysis"]["final_repetitions"]
    seeds = [rngmod.child_seed(args.root_seed, f"seed{s}") for s in range(args.seeds)]
    variant = None
    if args.step_clipping:
        variant = copy.deepcopy(cfg)
        variant["synapses"]["clip_total"] = False

    t0 = time.perf_counter()
    dp.run_seed(cfg, seeds[0], repetitions=2)          # warm-up: compiles (or loads) the fused loop
    warmup = time.perf_counter() - t0
    if variant:
        dp.run_seed(variant, seeds[0], repetitions=2)
    ours, theirs, clipped = [], [], []
    for seed in seeds:                                 # interleaved
        ours.append(run_ours(cfg, seed))
        theirs.append(run_nest(cfg, seed))
        if variant:
            clipped.append(run_ours(variant, seed))
        print(f"seed {seed}: ours {ours[-1]['wall_s']:.2f} s, NEST {theirs[-1]['wall_s']:.2f} s", flush=True)
    report(cfg, seeds, ours, theirs, clipped, warmup, n_final, nest.__version__)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    curves_figure(np.array([r["error_mV"] for r in ours]), np.array([r["error_mV"] for r in theirs]),
                  Path(args.out))
    print(f"figure: {args.out}")
    return 0


def report(cfg, seeds, ours, theirs, clipped, warmup, n_final, nest_version) -> None:
    """Print the curves and the table."""
    co = np.array([r["error_mV"] for r in ours])
    cn = np.array([r["error_mV"] for r in theirs])
    n = co.shape[1]
    print(f"\nNEST {nest_version}; protocol {SCENARIO.name}: {n} teacher repetitions, "
          f"{cfg['protocol']['n_inputs']} inputs, dt {cfg['protocol']['dt']:g} ms; eta ours "
          f"{cfg['synapses']['eta']:g} pA mV ms = NEST {ETA_NEST}; final error = mean of the last {n_final} "
          f"repetitions, fall = first repetition / final")
    print("\nerror per repetition, RMS(V*_w - U_M) in mV, mean over seeds")
    print(f"{'rep':>5} {'ours':>8} {'NEST':>8}")
    for k in sorted({*range(0, n, 10), n - 1}):
        print(f"{k + 1:5d} {co[:, k].mean():8.3f} {cn[:, k].mean():8.3f}")

    print(f"\n{'seed':>11} {'fall ours':>10} {'fall NEST':>10} {'final ours':>11} {'final NEST':>11} "
          f"{'final o/N':>10} {'rate o/N (Hz)':>15} {'w o/N (pA)':>15} {'wall o/N (s)':>14}")
    for s, o, t in zip(seeds, ours, theirs):
        fo, ro = dp.error_fall(o["error_mV"], n_final)
        fn, rn = dp.error_fall(t["error_mV"], n_final)
        print(f"{s:11d} {ro:10.2f} {rn:10.2f} {fo:11.3f} {fn:11.3f} {fo / fn:10.3f} "
              f"{o['rate_hz']:7.1f}/{t['rate_hz']:<7.1f} {o['weight_mean_pA']:7.1f}/{t['weight_mean_pA']:<7.1f} "
              f"{o['wall_s']:6.2f}/{t['wall_s']:<6.2f}")
    fo, ro = dp.error_fall(co.mean(axis=0), n_final)
    fn, rn = dp.error_fall(cn.mean(axis=0), n_final)
    print(f"{'mean curve':>11} {ro:10.2f} {rn:10.2f} {fo:11.3f} {fn:11.3f} {fo / fn:10.3f}")
    print(f"last repetition alone (mean of seeds): ours {co[:, -1].mean():.3f} mV, NEST {cn[:, -1].mean():.3f} mV; "
          f"second half (repetitions {n // 2 + 1}-{n}): ours {co[:, n // 2:].mean():.3f} mV, NEST "
          f"{cn[:, n // 2:].mean():.3f} mV, ratio {co[:, n // 2:].mean() / cn[:, n // 2:].mean():.3f}")
    if clipped:
        cc = np.array([r["error_mV"] for r in clipped])
        fc, rc = dp.error_fall(cc.mean(axis=0), n_final)
        print(f"ours clipping each step: fall {rc:.2f}, final {fc:.3f} mV ({fc / fn:.3f} of NEST), second half "
              f"{cc[:, n // 2:].mean():.3f} mV ({cc[:, n // 2:].mean() / cn[:, n // 2:].mean():.3f} of NEST)")
    wall_ratio = np.array([o["wall_s"] / t["wall_s"] for o, t in zip(ours, theirs)])
    build = spread([t["build_s"] for t in theirs])
    print(f"wall time per run: ours {spread([o['wall_s'] for o in ours])} s, NEST "
          f"{spread([t['wall_s'] for t in theirs])} s (of which NEST build {build} s); "
          f"ratio ours/NEST {spread(wall_ratio)} (min {wall_ratio.min():.3g}, max {wall_ratio.max():.3g})")
    print(f"ours: warm-up run (2 repetitions, compiling or loading the fused loop) {warmup:.2f} s, "
          "not in the times above")
    print(f"acceptance: error falls >= 2x: {'yes' if ro >= 2.0 else 'NO'} ({ro:.2f}x; NEST {rn:.2f}x); "
          f"final error within 25 % of NEST: {'yes' if abs(fo / fn - 1.0) <= 0.25 else 'NO'} "
          f"({100 * (fo / fn - 1):+.1f} %)")


if __name__ == "__main__":
    raise SystemExit(main())
