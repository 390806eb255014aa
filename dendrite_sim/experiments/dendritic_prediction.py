"""Experiment ``dendritic_prediction``: the dendrite learns to predict a somatic teacher.

Urbanczik & Senn 2014 (Neuron 81:521, Fig 1B) as NEST's ``urbanczik_synapse_example.py``
runs it (``pp_cond_exp_mc_urbanczik`` with ``urbanczik_synapse``), on our
:mod:`~dendrite_sim.neurons.urbanczik_senn` neuron with our in-loop
:mod:`~dendrite_sim.rules.urbanczik_senn` rule.

Protocol (every number from the NEST example):

* **Dendritic input**: ``protocol.n_inputs`` = 200 Poisson trains at 10 Hz, drawn once per
  seed (Bernoulli per step, p = rate · dt) into one ``protocol.pattern`` = 200 ms pattern and
  replayed ``lead_in + repetitions + lead_out`` = 2 + 100 + 2 times; every input makes one
  plastic synapse onto ``dend_exc`` (initial weight 0.3 C_m → 90 pA, bounds [0, 4.5 C_m] =
  [0, 1350] pA, delay one step).
* **Teacher**: during the 100 repetitions (not the lead-in and lead-out) the somatic
  conductances are driven towards

      g_E*(t) = ḡ_E + A_E sin(2π f t),   g_I*(t) = ḡ_I       (f = 2 / pattern = 10 Hz, t absolute)

  NEST's example does this *deterministically*: a ``spike_generator`` fires at every step with
  spike weight w_E(t) (0.018 C_m + 0.016 C_m sin ...), connection weight 10 · dt, so each step
  adds Δg = w_E(t) · 10 dt to a conductance that decays with τ_syn = 3 ms; the conductance
  then sits at g* = Δg · τ_syn / dt = 30 w_E: ḡ_E = 162 nS, A_E = 144 nS, ḡ_I = 540 nS. The
  teacher is *not* Poisson there, so it is not Poisson here. Our spike generators have a weight
  per synapse, not per spike, so the time-varying increment Δg_n = g*(t_n) dt / τ_syn is sent
  as an integer number k_n of quanta q = max Δg / (2^B − 2) (B = ``teacher.bits``), by
  error diffusion (k_n = round(C_n) − round(C_{n−1}), C_n = Σ_{m≤n} Δg_m / q: the running sum
  of what was sent never differs from the target by more than q/2), and k_n in binary on B
  sources of weights q, 2q, 4q, …: source b fires at step n when bit b of k_n is set
  (:func:`binary_teacher`). The conductance equals the exponential filter of the target
  increments to within q (≈ 0.002 nS with B = 12); ``test_dendritic_prediction`` checks it.

**Matching potential** (the teacher's target; NEST example and paper): the potential the
teacher conductances alone impose on the soma,

    U_M(t) = (g_E(t) E_E + g_I(t) E_I) / (g_E(t) + g_I(t))

computed in closed form from the *recorded* somatic conductances (``soma_exc``, ``soma_inh``),
exactly as NEST's example computes it from its recorded ``g_ex.s``, ``g_in.s``
(:func:`matching_potential`).

**Error** of repetition k: the root mean square, over the repetition's time steps, of
V*_w(t) − U_M(t), V*_w = (g_L E_L + g_sp V_d)/(g_L + g_sp) the dendritic prediction
(:func:`dendrite_sim.neurons.urbanczik_senn.dendritic_prediction`), in mV
(:func:`repetition_errors`). The same function scores NEST's traces in
``scripts/bench_urbanczik_vs_nest.py``.

**Learning rate.** NEST's synapse computes w = w_0 + η_N · 15 C_m τ_s / (g_L (τ_L − τ_s)) ·
∫ [S − φ(V*)] · 15 h(V*) · Σ(e^{−s/τ_L} − e^{−s/τ_s}) (1 − e^{−(T−t)/τ_Δ}) dt, with its
``h`` 15 × d ln φ / dV (``pp_cond_exp_mc_urbanczik::h``) and an un-normalised PSP kernel, and
C_m, g_L, τ_s of the dendrite; our rule has dw/dt = η Δ with h = d ln φ / dV and the
unit-area kernel (e^{−s/τ_L} − e^{−s/τ_s}) / (τ_L − τ_s) (:mod:`dendrite_sim.rules.urbanczik_senn`).
Both integrate the τ_Δ-filtered PI to the same ∫ PI (1 − e^{−(T−t)/τ_Δ}) dt, so
η = 225 η_N C_m τ_s / g_L (:func:`eta_from_nest`): η_N = 0.17 → η = 1147.5 pA·mV·ms.

Measured (default scenario, 3 seeds; ``scripts/bench_urbanczik_vs_nest.py``): the error falls
from 9.6 mV to 4.3 mV (2.24×; NEST 3.10 on the same patterns: 9.9 → 4.1 mV, 2.40×); our final
error is 5 % above NEST's (1 % over repetitions 51–100), in 0.28× NEST's wall time. What is
left, in both simulators: at the peaks of U_M (−48 mV) V*_w stops near −55 mV — the rule makes
φ(V*_w) match the rate the soma *fires*, and the 3 ms dead time caps it near 100 Hz, φ(−55 mV)
(with ``t_ref = 0``: 4.0 mV over repetitions 51–100, 2 seeds); in the troughs U_M reaches
−72.6 mV while V*_w ≥ E_L = −70 mV with non-negative weights (with w_min = −∞: 3.9 mV,
likewise). Weight bounds matter: NEST clips the total, w = clip(w_0 + η ∫ Δ dt), so a synapse
driven below W_min stays at 0 until the unclipped sum returns (77 of 200 weights at 0 at the
end of one seed's run); ``synapses.clip_total = true`` (the default here) does the same. Clipping
each step's weight instead (``false``; a weight at 0 rises again at the first positive Δ, 11
at 0) gives a final error 12 % above NEST's (the bench's ``--step-clipping`` column).

Seeds: for seed s of ``protocol.seeds`` the run's seed is ``child_seed(root, "seed<s>")``; its
stream ``"pattern"`` draws the input pattern and the network's own streams the somatic spikes.

metrics.json keys (stable), on the error curve averaged over seeds: ``error_first_mV`` (first
teacher repetition), ``error_last_mV`` (the final error: mean of the last
``analysis.final_repetitions`` = 10 repetitions, :func:`error_fall`), ``error_ratio_first_to_last``
(their ratio: the fall), ``error_last_single_mV`` (the last repetition alone),
``error_per_repetition_mV`` (the curve); ``per_seed`` (list of {``seed``, ``error_mV`` (curve),
``error_ratio``, ``rate_hz`` (somatic rate while the teacher is on), ``weight_mean_pA``
(final)}); ``eta``, ``seeds``, ``repetitions``, ``final_repetitions``.
Figures: ``dendritic_prediction_error.png`` (error per repetition, mean and band over seeds),
``dendritic_prediction_traces.png`` (V*_w, U_M and U in the first and last repetition, first
seed). Data: ``dendritic_prediction.npz`` (the per-seed curves).
"""

from __future__ import annotations

import math

import numpy as np

from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.backends import BACKEND_NAMES
from dendrite_sim.neurons import urbanczik_senn as US
from dendrite_sim.rules.urbanczik_senn import UrbanczikSennRule

POP = "pyr"
#: rule parameter → scenario key (``synapses.*``)
RULE_KEYS = {"eta": "eta", "tau_delta": "tau_delta", "w_min": "w_min", "w_max": "w_max",
             "clip_total": "clip_total"}


def rule_params(syn: dict) -> dict:
    """The ``urbanczik_senn`` rule's parameters from the ``[synapses]`` table."""
    return {k: float(syn[v]) for k, v in RULE_KEYS.items()}


# --------------------------------------------------------------------------- pieces
def eta_from_nest(eta_nest: float, C_d: float = 300.0, g_L_d: float = 30.0, tau_s: float = 3.0) -> float:
    """Our η (pA·mV·ms) for NEST's ``urbanczik_synapse`` η_N: η = 15² η_N C_d τ_s / g_L,d
    (module docstring; C_d pF, g_L,d nS, τ_s ms of the dendrite)."""
    return 225.0 * eta_nest * C_d * tau_s / g_L_d


def input_pattern(rng: np.random.Generator, n_inputs: int, rate_hz: float, pattern_steps: int,
                  dt: float) -> tuple[np.ndarray, np.ndarray]:
    """One frozen pattern: ``(steps, indices)`` of n independent Poisson trains (Bernoulli per
    step with p = rate · dt), time-ordered."""
    spikes = rng.random((pattern_steps, n_inputs)) < rate_hz * dt / 1000.0
    steps, idx = np.nonzero(spikes)
    return steps.astype(np.int64), idx.astype(np.int64)


def teacher_targets(t_ms: np.ndarray, teacher: dict, t_on: float, t_off: float) -> tuple[np.ndarray, np.ndarray]:
    """g_E*(t) = ḡ_E + A_E sin(2π f t), g_I*(t) = ḡ_I inside [t_on, t_off), 0 outside (nS)."""
    on = (t_ms >= t_on) & (t_ms < t_off)
    w = 2.0 * math.pi * teacher["frequency"] / 1000.0
    g_e = np.where(on, teacher["g_exc_mean"] + teacher["g_exc_amplitude"] * np.sin(w * t_ms), 0.0)
    g_i = np.where(on, teacher["g_inh"], 0.0)
    return g_e, g_i


def binary_teacher(increments: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Send per-step increments Δg_n ≥ 0 through ``bits`` sources of weights q·2^b.

    q = max Δg / (2^bits − 2); k_n = round(C_n) − round(C_{n−1}) with C_n = Σ_{m≤n} Δg_m / q
    (error diffusion: |Σ_{m≤n} (k_m q − Δg_m)| ≤ q/2 for all n); source b fires at step n when
    bit b of k_n is set. Returns ``(steps, sources, weights)``: spikes and the source weights.
    """
    top = float(np.max(increments)) if increments.size else 0.0
    q = top / (2 ** bits - 2) if top > 0 else 1.0
    cum = np.rint(np.cumsum(increments / q))
    k = np.diff(np.concatenate([[0.0], cum])).astype(np.int64)
    bit_set = (k[:, None] >> np.arange(bits)[None, :]) & 1
    steps, sources = np.nonzero(bit_set)
    return steps.astype(np.int64), sources.astype(np.int64), q * 2.0 ** np.arange(bits)


def matching_potential(g_e, g_i, p) -> np.ndarray:
    """U_M = (g_E E_E + g_I E_I) / (g_E + g_I) (mV); NaN where both conductances are 0."""
    g_e, g_i = np.asarray(g_e, dtype=float), np.asarray(g_i, dtype=float)
    tot = g_e + g_i
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, (g_e * p.E_ex + g_i * p.E_in) / np.where(tot > 0, tot, 1.0), np.nan)


def repetition_errors(v_star: np.ndarray, u_m: np.ndarray, steps_per_rep: int) -> np.ndarray:
    """RMS of V*_w − U_M per repetition (mV), over the samples where U_M is defined; the
    arrays hold whole repetitions (length a multiple of ``steps_per_rep``)."""
    d = (np.asarray(v_star) - np.asarray(u_m)).reshape(-1, steps_per_rep)
    return np.sqrt(np.nanmean(d ** 2, axis=1))


def error_fall(errors, final_repetitions: int) -> tuple[float, float]:
    """(final error, fall): the mean error of the last ``final_repetitions`` repetitions, and
    the first repetition's error over it (the last repetitions' errors fluctuate by ±1 mV from
    one repetition to the next, so one repetition alone is a noisy end point)."""
    errors = np.asarray(errors, dtype=float)
    final = float(errors[-final_repetitions:].mean())
    return final, float(errors[0] / final)


def _check_multiple(value: float, dt: float, key: str, minimum: int = 1) -> int:
    n = int(round(value / dt))
    if abs(n * dt - value) > 1e-6 * max(1.0, value) or n < minimum:
        raise ScenarioError(key, f"expected a multiple of protocol.dt = {dt:g} ms of at least "
                            f"{minimum * dt:g} ms, got {value:g} ms")
    return n


# --------------------------------------------------------------------------- one run
def build(cfg: dict, seed: int, repetitions: int | None = None, rule: str = "urbanczik_senn"):
    """The network of one seed: ``(net, projection, monitor, info)``. ``repetitions`` replaces
    ``protocol.repetitions`` (e.g. a short warm-up run); ``rule`` names the synapse rule of the
    dendritic synapses (a variant with the same parameters, for diagnosis)."""
    from dendrite_sim.engine.network import Network

    pc, syn, teacher = cfg["protocol"], cfg["synapses"], cfg["teacher"]
    dt = pc["dt"]
    reps = pc["repetitions"] if repetitions is None else repetitions
    n_pat = int(round(pc["pattern"] / dt))
    n_total = pc["lead_in"] + reps + pc["lead_out"]
    steps, idx = input_pattern(rngmod.stream(seed, "pattern"), pc["n_inputs"], pc["input_rate"], n_pat, dt)

    net = Network(dt=dt, seed=seed, backend=pc["backend"])
    rep_offsets = np.repeat(np.arange(n_total, dtype=np.int64) * n_pat, steps.size)
    net.spike_generator("inputs", pc["n_inputs"], (np.tile(steps, n_total) + rep_offsets) * dt,
                        np.tile(idx, n_total))
    pyr = net.population(POP, 1, "urbanczik_senn", params=cfg["model"]["neuron"], bursts=False)
    plasticity = {"rule": rule, **rule_params(syn)}
    proj = net.projection("inputs", POP, "dend_exc", "all_to_all", weight=syn["weight"],
                          delay=syn["delay"], plasticity=plasticity, name="dendritic")

    # teacher: the target conductances' per-step increments, sent as binary-weighted spikes
    n_steps = n_total * n_pat
    t = np.arange(n_steps) * dt
    t_on, t_off = pc["lead_in"] * pc["pattern"], (pc["lead_in"] + reps) * pc["pattern"]
    g_e, g_i = teacher_targets(t, teacher, t_on, t_off)
    for name, g, channel in (("teacher_exc", g_e, "soma_exc"), ("teacher_inh", g_i, "soma_inh")):
        inc = g * dt / pyr.tau[channel]
        s, src, w = binary_teacher(inc, teacher["bits"])
        net.spike_generator(name, teacher["bits"], s * dt, src)
        net.projection(name, POP, channel, "all_to_all", weight=w, delay=dt, name=name)
    mon = net.state_monitor(POP, ["v_soma", "v_dend", "soma_exc", "soma_inh"])
    spikes = net.spike_monitor(POP, events=False, bursts=False)
    info = {"n_pat": n_pat, "n_steps": n_steps, "lead_in": pc["lead_in"], "reps": reps,
            "duration": n_steps * dt, "spikes": spikes}
    return net, proj, mon, info


def analyse(cfg: dict, net, proj, mon, info) -> dict:
    """Per-repetition errors and the first/last repetition's traces of one finished run."""
    p = net[POP].params
    n_pat, a = info["n_pat"], info["lead_in"] * info["n_pat"]
    b = a + info["reps"] * n_pat
    v_star = US.dendritic_prediction(np.asarray(mon["v_dend"])[a:b, 0], p)
    u_m = matching_potential(np.asarray(mon["soma_exc"])[a:b, 0], np.asarray(mon["soma_inh"])[a:b, 0], p)
    u = np.asarray(mon["v_soma"])[a:b, 0]
    err = repetition_errors(v_star, u_m, n_pat)
    st = np.asarray(info["spikes"].t)
    t0, t1 = a * cfg["protocol"]["dt"], b * cfg["protocol"]["dt"]
    rate = np.count_nonzero((st >= t0) & (st < t1)) / ((t1 - t0) / 1000.0)
    first, last = slice(0, n_pat), slice(b - a - n_pat, b - a)
    traces = {f"{k}_{w}": v[s] for w, s in (("first", first), ("last", last))
              for k, v in (("v_star", v_star), ("u_m", u_m), ("u", u))}
    return {"error_mV": err, "rate_hz": float(rate), "weight_mean_pA": float(proj.conn.weights.mean()),
            "traces": traces}


def run_seed(cfg: dict, seed: int, repetitions: int | None = None, rule: str = "urbanczik_senn") -> dict:
    """Build, run and analyse one seed."""
    net, proj, mon, info = build(cfg, seed, repetitions, rule)
    net.run(info["duration"])
    return analyse(cfg, net, proj, mon, info)


# --------------------------------------------------------------------------- figures
def error_figure(curves: np.ndarray, title: str):
    """Error per repetition: mean over seeds and the band min–max."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    k = np.arange(1, curves.shape[1] + 1)
    ax.fill_between(k, curves.min(axis=0), curves.max(axis=0), alpha=0.3, label=f"range over {len(curves)} seeds")
    ax.plot(k, curves.mean(axis=0), label="mean over seeds")
    ax.set_yscale("log")
    ax.set_xlabel("pattern repetition")
    ax.set_ylabel(r"RMS($V^*_w - U_M$) (mV)")
    ax.set_title(title)
    ax.legend(frameon=False)
    return fig


def traces_figure(traces: dict, dt: float):
    """V*_w, U_M and U in the first and in the last teacher repetition."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, which in zip(axes, ("first", "last")):
        t = np.arange(traces[f"u_{which}"].size) * dt
        ax.plot(t, traces[f"u_{which}"], color="0.6", lw=0.8, label="$U$ (soma)")
        ax.plot(t, traces[f"u_m_{which}"], color="tab:red", label="$U_M$ (teacher's matching potential)")
        ax.plot(t, traces[f"v_star_{which}"], color="tab:blue", ls="--", label=r"$V^*_w$ (dendritic prediction)")
        ax.set_xlabel("time in the pattern (ms)")
        ax.set_title(f"{which} teacher repetition")
    axes[0].set_ylabel("potential (mV)")
    handles, labels = axes[0].get_legend_handles_labels()     # one legend below both panels
    fig.legend(handles, labels, frameon=False, fontsize=8, loc="lower center", ncol=3)
    fig.subplots_adjust(bottom=0.25, top=0.84)
    fig.suptitle("Dendritic prediction vs the teacher's matching potential (first seed)")
    return fig


# --------------------------------------------------------------------------- experiment
@register("experiment", "dendritic_prediction")
class DendriticPrediction(Experiment):
    """The dendrite learns to predict the somatic teacher's matching potential (Urbanczik & Senn
    2014 Fig 1B, NEST's urbanczik_synapse_example)."""

    sections = {
        "protocol": {
            "n_inputs": Field("int", 200, "dendritic Poisson inputs (one plastic synapse each)", lo=1),
            "input_rate": Field("quantity", "10 Hz", "rate of each input", dimension="frequency", lo=0),
            "pattern": Field("quantity", "200 ms", "duration of the frozen input pattern", dimension="time",
                             lo=0, lo_open=True),
            "repetitions": Field("int", 100, "pattern repetitions with the teacher on", lo=2),
            "lead_in": Field("int", 2, "repetitions before the teacher starts", lo=0),
            "lead_out": Field("int", 2, "repetitions after the teacher stops", lo=0),
            "dt": Field("quantity", "0.1 ms", "time step", dimension="time", lo=0, lo_open=True, hi=10),
            "backend": Field("str", "numba", "engine backend", choices=BACKEND_NAMES),
            "seeds": Field("int", 3, "independent input patterns and somatic spike trains", lo=1),
        },
        "model": {
            "neuron": Field("table", {}, "overrides of the urbanczik_senn parameters (defaults: NEST's)"),
        },
        "synapses": {
            "weight": Field("quantity", "90 pA", "initial dendritic weight (NEST: 0.3 C_m)", dimension="current"),
            "w_min": Field("quantity", "0 pA", "lower weight bound (NEST Wmin)", dimension="current"),
            "w_max": Field("quantity", "1350 pA", "upper weight bound (NEST Wmax = 4.5 C_m)", dimension="current"),
            "eta": Field("float", 1147.5, "learning rate in pA·mV·ms (= 225 η_NEST C_d τ_s / g_L,d; "
                         "NEST η = 0.17)", lo=0),
            "tau_delta": Field("quantity", "100 ms", "τ_Δ, low-pass filter of PI", dimension="time",
                               lo=0, lo_open=True),
            "delay": Field("quantity", "0.1 ms", "synaptic delay (a multiple of dt)", dimension="time", lo=0,
                           lo_open=True),
            "clip_total": Field("bool", True, "bounds on the running total w₀ + η∫Δ (NEST's "
                                "urbanczik_synapse) rather than on each step's weight"),
        },
        "analysis": {
            "final_repetitions": Field("int", 10, "last repetitions averaged into the final error", lo=1),
        },
        "teacher": {
            "g_exc_mean": Field("quantity", "162 nS", "ḡ_E: mean excitatory teacher conductance",
                                dimension="conductance", lo=0),
            "g_exc_amplitude": Field("quantity", "144 nS", "A_E: its sinusoidal amplitude",
                                     dimension="conductance", lo=0),
            "g_inh": Field("quantity", "540 nS", "ḡ_I: constant inhibitory teacher conductance",
                           dimension="conductance", lo=0),
            "frequency": Field("quantity", "10 Hz", "f of the excitatory modulation", dimension="frequency", lo=0),
            "bits": Field("int", 12, "binary-weighted sources per teacher channel (quantum max Δg/(2^bits − 2))",
                          lo=2, hi=30),
        },
    }

    def validate(self, cfg):
        pc, syn, teacher = cfg["protocol"], cfg["synapses"], cfg["teacher"]
        dt = pc["dt"]
        from dendrite_sim.core import limits

        reps = pc["lead_in"] + pc["repetitions"] + pc["lead_out"]
        steps = reps * pc["pattern"] / dt * pc["seeds"]
        limits.check_runtime("protocol.repetitions", f"{pc['seeds']} seeds × {reps:g} repetitions of "
                             f"{pc['pattern'] / dt:g} steps × {pc['n_inputs']} synapses",
                             neuron_steps=steps * (2 * teacher["bits"] + 1), synaptic_events=steps * pc["n_inputs"])
        params = US.UrbanczikSenn.make_params(cfg["model"]["neuron"], key="model.neuron")
        _check_multiple(pc["pattern"], dt, "protocol.pattern")
        _check_multiple(syn["delay"], dt, "synapses.delay")
        if pc["input_rate"] * dt / 1000.0 > 1.0:
            raise ScenarioError("protocol.input_rate", f"expected at most {1000.0 / dt:g} Hz (one spike per step)")
        if teacher["g_exc_amplitude"] > teacher["g_exc_mean"]:
            raise ScenarioError("teacher.g_exc_amplitude", f"expected at most teacher.g_exc_mean = "
                                f"{teacher['g_exc_mean']:g} nS (a conductance is >= 0)")
        if teacher["g_exc_mean"] + teacher["g_inh"] <= 0:
            raise ScenarioError("teacher.g_inh", "expected a teacher: g_exc_mean + g_inh > 0 nS")
        rule = rule_params(syn)
        try:
            UrbanczikSennRule.make_params(rule, key="synapses")
        except ScenarioError as e:
            field = e.key.split(".")[-1]
            raise ScenarioError(f"synapses.{RULE_KEYS.get(field, field)}", e.expected) from None
        if cfg["analysis"]["final_repetitions"] > pc["repetitions"]:
            raise ScenarioError("analysis.final_repetitions", f"expected at most protocol.repetitions = "
                                f"{pc['repetitions']}, got {cfg['analysis']['final_repetitions']}")
        if not syn["w_min"] <= syn["weight"] <= syn["w_max"]:
            raise ScenarioError("synapses.weight", f"expected an initial weight in [w_min, w_max] = "
                                f"[{syn['w_min']:g}, {syn['w_max']:g}] pA, got {syn['weight']:g} pA")
        del params

    def run(self, cfg, ctx):
        pc = cfg["protocol"]
        seeds = [rngmod.child_seed(ctx.seed, f"seed{s}") for s in range(pc["seeds"])]
        results = []
        for seed in ctx.progress(seeds, total=len(seeds), desc="seeds"):
            with ctx.timer("run_s"):
                results.append(run_seed(cfg, seed))
        curves = np.array([r["error_mV"] for r in results])
        mean = curves.mean(axis=0)
        n_final = cfg["analysis"]["final_repetitions"]
        final, ratio = error_fall(mean, n_final)
        metrics = {
            "error_ratio_first_to_last": ratio,
            "error_first_mV": float(mean[0]), "error_last_mV": final,
            "error_last_single_mV": float(mean[-1]),
            "error_per_repetition_mV": mean.tolist(),
            "per_seed": [{"seed": s, "error_mV": r["error_mV"].tolist(),
                          "error_ratio": error_fall(r["error_mV"], n_final)[1],
                          "rate_hz": r["rate_hz"], "weight_mean_pA": r["weight_mean_pA"]}
                         for s, r in zip(seeds, results)],
            "eta": cfg["synapses"]["eta"], "seeds": pc["seeds"], "repetitions": pc["repetitions"],
            "final_repetitions": n_final,
        }
        ctx.save_npz("dendritic_prediction", error_mV=curves, seeds=np.array(seeds),
                     **{k: v for k, v in results[0]["traces"].items()})
        ctx.save_figure(error_figure(curves, f"Urbanczik–Senn: dendritic prediction error "
                                     f"(falls {ratio:.1f}×)"), "dendritic_prediction_error")
        ctx.save_figure(traces_figure(results[0]["traces"], pc["dt"]), "dendritic_prediction_traces")
        return metrics
