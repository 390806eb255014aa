"""Experiment ``burstprop_xor``: a spiking network of burst neurons learns XOR with burstprop.

Payeur, Guerguiev, Zenke, Richards & Naud (2021, *Nat Neurosci* 24:1010), Fig. 4; the
authors' simulation is apayeur/spikingburstprop ``sim/sim_xor.cpp`` (Auryn). The network:

* **input** ``in1``, ``in2``, **hidden** ``h1``, ``h2``, **output** ``out``: populations of
  ``network.n_pyr`` two-compartment burst neurons (:mod:`dendrite_sim.neurons.naud_sprekeler`),
  each with balanced Poisson noise on soma and dendrite (``noise``), and constant soma and
  dendrite biases (``input``, ``hidden``, ``output``);
* **feedforward** (event-rate channel): every input population → every hidden population,
  every hidden population → the output, excitatory onto ``soma_exc`` through depressing
  synapses (``payeur_std``: U = 0.9, τ_D = 20 ms, mostly one release per event), learned by
  ``burstprop_spiking``; feedforward inhibition through perisomatic-targeting interneurons
  (``pv_h`` for the hidden layer, ``pv_o`` for the output; :class:`~dendrite_sim.neurons.adex.PV`)
  driven by the same presynaptic populations through STD synapses and inhibiting ``soma_inh``;
  so an excitatory weight that falls below the inhibition it recruits acts negatively; and
  direct inhibition from the inputs onto the hidden somata (``weights.in_hid_inh``, fixed, STD),
  weak from the same side (in1 → h1, in2 → h2) and strong across (in2 → h1, in1 → h2), as the
  source's GABA input → hidden connections (0.5 / 2 × the inhibitory weight): h1 can code
  "in1 and not in2", h2 "in2 and not in1", and an output of excitatory weights reads their sum
  as XOR (without it both hidden populations are OR-like and no output weights separate);
* **feedback** (burst-rate channel): output → hidden apical dendrites (``dend_exc``) through
  facilitating synapses (``payeur_stf``: U = 0.02, f = 0.1, the second spike of a burst releases
  ≈ 5× the first), and output → dendrite-targeting interneurons ``som1``, ``som2``
  (:class:`~dendrite_sim.neurons.adex.SOM`) through STF synapses, which inhibit the dendrites
  (``dend_inh``) of ``h1`` and ``h2``. By default both hidden populations get the same
  strong excitatory and weak inhibitory feedback (``weights.fb_exc``, ``weights.som_dend``), as
  in the source's ``sim_xor.cpp`` (``w_fb_exc`` 0.12, ``w_fb_inh`` 0.03 onto both): both excite
  the output, so an output burst must raise the burst probability of both. (An earlier source
  version had the sign pattern 0.26 / 0.026 excitatory, 0.06 / 0.27 inhibitory onto hidden 1 / 2,
  which suits a hidden unit that acts negatively; set those keys to get it.)

The rule on every plastic projection j → i (:class:`~dendrite_sim.rules.burstprop.BurstpropSpiking`)::

    dW_ij/dt = η [B_i(t) − P̄_i(t) E_i(t)] Ẽ_j(t),    W_ij ∈ [0, w_max]

(B, E the postsynaptic burst and event trains, P̄ the running burst probability with window
``network.tau_avg``, Ẽ_j the presynaptic event trace with ``plasticity.tau_pre``).

Weights are written for 100 neurons per pyramidal population and 25 per interneuron population
and scaled by 100/``network.n_pyr`` (25/``network.n_inh``) of the presynaptic population, η and
w_max with them (:func:`scaled_weights`), so that a smaller network receives the same summed input.

P̄ in the rule is taken from before each postsynaptic event (``plasticity.p_bar_before_event``,
the rule's ``tau_avg``): with the engine's P̄, which includes the triggering event, every
projection potentiates without any teaching (+12 … +32 % in 12 examples, 40-neuron populations)
because the running event rate at an event is r + 1000/τ_avg, not r.

Protocol (``protocol``; the source's, shortened): a burn-in without plasticity, a test pass (each
pattern for ``protocol.test`` without plasticity or teaching), then ``protocol.examples``
examples of the four patterns in fixed order (0,0), (1,0), (0,1), (1,1). The input population
k receives the soma current ``input.on`` when x_k = 1 and ``input.off`` when x_k = 0. Each example
has a **prediction phase** (``protocol.prediction``, plasticity off): the output event rate ē
is measured over its part after ``protocol.settle``; then a **learning phase**
(``protocol.learning``, plasticity on) during which every output neuron's dendrite receives the
teaching current

    I_teach = teach_max · clip((e_target − ē) / (target_high − target_low), −1, 1),

e_target = ``protocol.target_high`` (10 Hz) for (1,0), (0,1) and ``protocol.target_low`` (2 Hz)
for (0,0), (1,1): it raises the output's burst probability when the output is too low and lowers
it when too high. The bursts it causes teach the output weights directly, and the hidden weights
through the STF feedback. (The source's teacher is per neuron, ±1 nA/(distance to the target);
here it is proportional to the population's error, bounded by ``teach_max``.) A second test pass
ends the run.

Status (measured here, the scenario's defaults: 2000 examples, 100 neurons per population):
**solved** in the seeds run, e.g. seed 1: output event rates after learning (0,0) 0.91,
(1,0) 5.7, (0,1) 5.3, (1,1) 0.64 Hz, separation 4.4 Hz (before learning 0.3 Hz); the hidden
layer learns the two detectors (in1 → h1 150 → 226 pA, in2 → h1 150 → 7 pA, h1 (1,0) 8.1 Hz,
(0,1) 0.2 Hz) and the output weights grow (150 → 380, 400 pA). docs/burstprop.md, XOR, has the
per-seed table and the diagnosis of the earlier, unsolved configuration.

Reported (metrics.json): ``rate_before`` / ``rate_after`` (per pattern, the output event rate of
the test passes, Hz), ``separation_before`` / ``separation_after`` = min(rate(1,0), rate(0,1)) −
max(rate(0,0), rate(1,1)) (Hz; > 0 solves XOR), ``separation_last_epochs`` (the same from the
prediction phases of the last ``protocol.final_epochs`` epochs), ``solved`` (separation_after ≥
``protocol.criterion``), the hidden rates per pattern, ``wall_s``, ``s_per_bio_s``, ``bio_s``.
Data ``burstprop_xor.npz``: per example the pattern, target, prediction-phase output event rate,
hidden event rates, teaching current and the summed weights of each plastic projection. Figure
``burstprop_xor.png``: output event rate per pattern over training.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.backends import BACKEND_NAMES

#: Largest network ``check`` accepts (synapses; the 100-neuron default has ≈ 35 000).
MAX_SYNAPSES = 5.0e7
PATTERNS = ((0, 0), (1, 0), (0, 1), (1, 1))
XOR = (0, 1, 1, 0)
LABELS = tuple(f"({a},{b})" for a, b in PATTERNS)
PYR = ("in1", "in2", "h1", "h2", "out")
HIDDEN = ("h1", "h2")
INPUTS = ("in1", "in2")
#: Plastic projections: hidden layer (input → hidden) and output layer (hidden → output).
HIDDEN_PROJ = tuple(f"{i}->{h}" for h in HIDDEN for i in INPUTS)
OUTPUT_PROJ = tuple(f"{h}->out" for h in HIDDEN)

_I = dict(dimension="current")
_G = dict(dimension="conductance")
_T = dict(dimension="time", lo=0, lo_open=True)


def _pair(kind_desc: str, default: list[float], dim: str, lo=None):
    return Field("quantity_list", default, kind_desc, dimension=dim, **({} if lo is None else {"lo": lo}))


@register("experiment", "burstprop_xor")
class BurstpropXOR(Experiment):
    """Spiking XOR learned by burst-dependent plasticity (Payeur et al. 2021 Fig. 4)."""

    sections = {
        "network": {
            "n_pyr": Field("int", 100, "two-compartment neurons per pyramidal population (paper: 500)", lo=1),
            "n_inh": Field("int", 25, "neurons per interneuron population (pv_h, pv_o, som1, som2)", lo=1),
            "dt": Field("quantity", "0.1 ms", "time step", dimension="time", lo=0, lo_open=True),
            "backend": Field("str", "numba", "engine backend", choices=BACKEND_NAMES),
            "tau_avg": Field("quantity", "200 ms", "window of the running burst probability P̄ "
                             "(the source's alpha: 2 s)", **_T),
        },
        "noise": {
            "sources": Field("int", 100, "Poisson noise inputs per neuron and compartment (each sign)", lo=0),
            "rate": Field("quantity", "5 Hz", "rate of each noise input", dimension="frequency", lo=0),
            "soma_weight": Field("quantity", "200 pA", "excitatory step onto the soma (inhibitory: "
                                 "−w·τ_exc/τ_inh, zero mean)", lo=0, **_I),
            "dend_weight": Field("quantity", "200 pA", "excitatory step onto the dendrite", lo=0, **_I),
        },
        "input": {
            "on": Field("quantity", "550 pA", "soma current of an input population coding 1", **_I),
            "off": Field("quantity", "-100 pA", "soma current of an input population coding 0", **_I),
            "dend": Field("quantity", "-100 pA", "dendrite current of the input populations", **_I),
        },
        "hidden": {
            "soma": _pair("soma current of h1, h2", ["0 pA", "0 pA"], "current"),
            "dend": _pair("dendrite current of h1, h2", ["0 pA", "0 pA"], "current"),
        },
        "output": {
            "soma": Field("quantity", "-150 pA", "soma current of the output", **_I),
            "dend": Field("quantity", "100 pA", "dendrite current of the output (besides teaching)", **_I),
        },
        "weights": {
            "in_hid": Field("quantity", "150 pA", "initial input → hidden weight (STD, soma_exc)", lo=0, **_I),
            "hid_out": Field("quantity", "150 pA", "initial hidden → output weight (STD, soma_exc)", lo=0, **_I),
            "p_ff": Field("float", 0.5, "connection probability of the feedforward projections", lo=0, hi=1,
                          lo_open=True),
            "pv_exc": Field("quantity", "1.1 nS", "pyramidal → PV (STD)", lo=0, **_G),
            "pv_soma": Field("quantity", "-20 pA", "PV → pyramidal soma (soma_inh)", hi=0, **_I),
            "fb_exc": _pair("output → h1, h2 dendrite (STF, dend_exc)", ["200 pA", "200 pA"], "current", lo=0),
            "som_exc": Field("quantity", "4 nS", "output → SOM (STF)", lo=0, **_G),
            "som_dend": _pair("SOM1 → h1, SOM2 → h2 dendrite (dend_inh; negative)", ["-5 pA", "-5 pA"],
                              "current"),
            "in_hid_inh": _pair("direct input → hidden soma inhibition (STD, soma_inh, fixed; ≤ 0): "
                                "[same side (in1 → h1, in2 → h2), cross (in2 → h1, in1 → h2)]",
                                ["-30 pA", "-200 pA"], "current"),
        },
        "plasticity": {
            "eta_hidden": Field("float", 15.0, "η of input → hidden (pA per unit [B − P̄E]Ẽ)", lo=0),
            "eta_output": Field("float", 10.0, "η of hidden → output", lo=0),
            "tau_pre": Field("quantity", "100 ms", "presynaptic event trace (the source: 100 ms)", **_T),
            "w_max": Field("quantity", "500 pA", "upper weight bound (lower: 0)", lo=0, lo_open=True, **_I),
            "hidden_learning": Field("bool", True, "false: input → hidden weights stay fixed (control)"),
            "p_bar_before_event": Field("bool", True, "P̄ at an event from before it (the rule's tau_avg = "
                                        "network.tau_avg); false: P̄ includes the event (biased)"),
        },
        "protocol": {
            "examples": Field("int", 2000, "training examples (paper: 2000), patterns in fixed order", lo=1),
            "prediction": Field("quantity", "800 ms", "prediction phase (plasticity off; paper 7.2 s)", **_T),
            "learning": Field("quantity", "200 ms", "learning phase (teaching on; paper 0.8 s)", **_T),
            "settle": Field("quantity", "300 ms", "start of the prediction phase left out of ē",
                            dimension="time", lo=0),
            "burn_in": Field("quantity", "1 s", "initial run without plasticity", dimension="time", lo=0),
            "test": Field("quantity", "2 s", "duration of each pattern in the test passes", **_T),
            "target_high": Field("quantity", "10 Hz", "target event rate for (1,0), (0,1)",
                                 dimension="frequency", lo=0),
            "target_low": Field("quantity", "2 Hz", "target event rate for (0,0), (1,1)",
                                dimension="frequency", lo=0),
            "teach_max": Field("quantity", "400 pA", "largest teaching current into the output dendrites",
                               lo=0, **_I),
            "final_epochs": Field("int", 25, "epochs (4 examples) averaged for separation_last_epochs", lo=1),
            "criterion": Field("quantity", "3 Hz", "separation that counts as solved",
                               dimension="frequency", lo=0),
        },
    }

    # ------------------------------------------------------------------ validation
    def validate(self, cfg):
        net, pr = cfg["network"], cfg["protocol"]
        dt = net["dt"]
        if dt > 1.0:
            raise ScenarioError("network.dt", f"expected a time step of at most 1 ms, got {dt:g} ms")
        for key, value in (("protocol.prediction", pr["prediction"]), ("protocol.learning", pr["learning"]),
                           ("protocol.settle", pr["settle"]), ("protocol.burn_in", pr["burn_in"]),
                           ("protocol.test", pr["test"])):
            ratio = value / dt
            if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
                raise ScenarioError(key, f"expected a multiple of network.dt = {dt:g} ms, got {value:g} ms")
        if pr["settle"] >= pr["prediction"]:
            raise ScenarioError("protocol.settle", f"expected less than protocol.prediction = "
                                f"{pr['prediction']:g} ms, got {pr['settle']:g} ms")
        if not pr["target_high"] > pr["target_low"]:
            raise ScenarioError("protocol.target_high", f"expected more than protocol.target_low = "
                                f"{pr['target_low']:g} Hz, got {pr['target_high']:g} Hz")
        if pr["final_epochs"] * 4 > pr["examples"]:
            raise ScenarioError("protocol.final_epochs", f"expected at most protocol.examples / 4 = "
                                f"{pr['examples'] // 4}, got {pr['final_epochs']}")
        for sec, key in (("hidden", "soma"), ("hidden", "dend"), ("weights", "fb_exc"), ("weights", "som_dend"),
                         ("weights", "in_hid_inh")):
            if len(cfg[sec][key]) != 2:
                raise ScenarioError(f"{sec}.{key}", f"expected two values (h1, h2), got {len(cfg[sec][key])}")
        for key in ("som_dend", "in_hid_inh"):
            for k, v in enumerate(cfg["weights"][key]):
                if v > 0:
                    raise ScenarioError(f"weights.{key}[{k}]", f"expected an inhibitory (≤ 0) weight, got {v:g} pA")
        w_max = cfg["plasticity"]["w_max"]
        for key in ("in_hid", "hid_out"):
            if cfg["weights"][key] > w_max:
                raise ScenarioError(f"weights.{key}", f"expected at most plasticity.w_max = {w_max:g} pA, "
                                    f"got {cfg['weights'][key]:g} pA")
        n, p_ff = net["n_pyr"], cfg["weights"]["p_ff"]
        synapses = p_ff * n * n * 6 + 4 * p_ff * n * net["n_inh"] * 2 + 3 * n * net["n_inh"]
        if synapses > MAX_SYNAPSES:
            raise ScenarioError("network.n_pyr", f"expected a network of at most {MAX_SYNAPSES:.0e} synapses; "
                                f"n_pyr = {n}, n_inh = {net['n_inh']}, p_ff = {p_ff:g} give {synapses:.2e}")
        # a dry build: every population, projection and input through the engine's own checks
        build(cfg, seed=0, dry=True)

    # ------------------------------------------------------------------ run
    def run(self, cfg, ctx):
        res = simulate(cfg, ctx.seed)
        m = res["metrics"]
        ctx.save_npz("burstprop_xor", **res["arrays"])
        fig = figure(res["arrays"], cfg, m)
        ctx.save_figure(fig, "burstprop_xor")
        return m


# --------------------------------------------------------------------------- network
def build(cfg, seed: int, dry: bool = False):
    """The network (``dry``: build only, for ``check``). Returns ``(net, plastic)`` with
    ``plastic`` = name → projection of the learned projections."""
    from dendrite_sim.engine.network import Network
    from dendrite_sim.neurons.naud_sprekeler import NaudSprekeler

    nc, nz, pl = cfg["network"], cfg["noise"], cfg["plasticity"]
    w = scaled_weights(cfg)
    tau = NaudSprekeler.channels
    with _keys():
        net = Network(dt=nc["dt"], seed=seed, backend=nc["backend"])
        for name in PYR:
            net.population(name, nc["n_pyr"], "naud_sprekeler", tau_avg=nc["tau_avg"])
            for comp, wn in (("soma", nz["soma_weight"]), ("dend", nz["dend_weight"])):
                if nz["sources"] > 0 and nz["rate"] > 0 and wn > 0:
                    exc, inh = f"{comp}_exc", f"{comp}_inh"
                    net.poisson_input(name, exc, nz["sources"], nz["rate"], wn, name=f"{name}.noise_{exc}")
                    net.poisson_input(name, inh, nz["sources"], nz["rate"], -wn * tau[exc] / tau[inh],
                                      name=f"{name}.noise_{inh}")
        for name in ("pv_h", "pv_o"):
            net.population(name, nc["n_inh"], "pv", bursts=False)
        for name in ("som1", "som2"):
            net.population(name, nc["n_inh"], "som", bursts=False)
        rule = {"rule": "burstprop_spiking", "eta": 0.0, "tau_pre": pl["tau_pre"], "w_min": 0.0,
                "w_max": pl["w_max"] * w["scale_pyr"], "tau_avg": nc["tau_avg"] if pl["p_bar_before_event"] else 0.0}
        plastic = {}
        ff = [(i, h, w["in_hid"], "pv_h") for h in HIDDEN for i in INPUTS] + \
             [(h, "out", w["hid_out"], "pv_o") for h in HIDDEN]
        for pre, post, w0, _ in ff:
            plastic[f"{pre}->{post}"] = net.projection(
                pre, post, "soma_exc", "fixed_probability", p=w["p_ff"], weight=w0, stp="payeur_std",
                plasticity=dict(rule), name=f"{pre}->{post}")
        for j, h in enumerate(HIDDEN):
            for k, pre in enumerate(INPUTS):
                wi = w["in_hid_inh"][0 if j == k else 1]
                if wi < 0:
                    net.projection(pre, h, "soma_inh", "fixed_probability", p=w["p_ff"], weight=wi,
                                   stp="payeur_std", name=f"{pre}->{h}:inh")
        for pre, pv in (("in1", "pv_h"), ("in2", "pv_h"), ("h1", "pv_o"), ("h2", "pv_o")):
            net.projection(pre, pv, "exc", "fixed_probability", p=w["p_ff"], weight=w["pv_exc"],
                           stp="payeur_std", name=f"{pre}->{pv}")
        for pv, targets in (("pv_h", HIDDEN), ("pv_o", ("out",))):
            for t in targets:
                net.projection(pv, t, "soma_inh", "all_to_all", weight=w["pv_soma"], name=f"{pv}->{t}")
        for k, h in enumerate(HIDDEN):
            if w["fb_exc"][k] > 0:
                net.projection("out", h, "dend_exc", "fixed_probability", p=w["p_ff"], weight=w["fb_exc"][k],
                               stp="payeur_stf", name=f"out->{h}:fb")
            som = f"som{k + 1}"
            net.projection("out", som, "exc", "fixed_probability", p=w["p_ff"], weight=w["som_exc"],
                           stp="payeur_stf", name=f"out->{som}")
            if w["som_dend"][k] < 0:
                net.projection(som, h, "dend_inh", "all_to_all", weight=w["som_dend"][k], name=f"{som}->{h}")
    return net, plastic


#: Population sizes the ``weights`` are written for: every weight is scaled by REF / n of its
#: presynaptic population, so that the summed input stays the same when ``network.n_pyr`` or
#: ``network.n_inh`` change.
REF_PYR, REF_INH = 100, 25


def scaled_weights(cfg) -> dict:
    """``weights`` with every synaptic weight scaled by REF_PYR/n_pyr (pyramidal presynaptic
    populations) or REF_INH/n_inh (interneurons); the rule's η and w_max scale with them."""
    w = dict(cfg["weights"])
    sp = REF_PYR / cfg["network"]["n_pyr"]
    si = REF_INH / cfg["network"]["n_inh"]
    for k in ("in_hid", "hid_out", "pv_exc", "som_exc"):
        w[k] = w[k] * sp
    w["fb_exc"] = [x * sp for x in w["fb_exc"]]
    w["in_hid_inh"] = [x * sp for x in w["in_hid_inh"]]
    w["pv_soma"] = w["pv_soma"] * si
    w["som_dend"] = [x * si for x in w["som_dend"]]
    w["scale_pyr"] = sp
    return w


@contextlib.contextmanager
def _keys():
    """Errors of the engine under the scenario's sections (``network.dt``, ``weights``, ...)."""
    try:
        yield
    except ScenarioError as e:
        key = e.key
        if key in ("dt", "backend"):
            raise ScenarioError(f"network.{key}", e.expected) from None
        if key.startswith("projections.") and key.endswith(".plasticity.w_max"):
            raise ScenarioError("plasticity.w_max", e.expected) from None
        for prefix, section in (("projections.", "weights"), ("populations.", "network"), ("inputs.", "noise")):
            if key.startswith(prefix):
                raise ScenarioError(section, f"{e.expected} ({key})") from None
        raise


def _set_eta(plastic: dict, cfg, on: bool) -> None:
    pl = cfg["plasticity"]
    for name, proj in plastic.items():
        hidden = name in HIDDEN_PROJ
        eta = (pl["eta_hidden"] if hidden else pl["eta_output"]) * REF_PYR / cfg["network"]["n_pyr"] if on else 0.0
        if hidden and not pl["hidden_learning"]:
            eta = 0.0
        ps = proj.plasticity
        ps.params = ps.params._replace(eta=float(eta))


def _apply_pattern(net, cfg, pattern) -> None:
    inp = cfg["input"]
    for name, x in zip(INPUTS, pattern):
        net[name].bias["soma"][:] = inp["on"] if x else inp["off"]


def _set_bias(net, cfg) -> None:
    net["in1"].bias["dend"][:] = cfg["input"]["dend"]
    net["in2"].bias["dend"][:] = cfg["input"]["dend"]
    for k, h in enumerate(HIDDEN):
        net[h].bias["soma"][:] = cfg["hidden"]["soma"][k]
        net[h].bias["dend"][:] = cfg["hidden"]["dend"][k]
    net["out"].bias["soma"][:] = cfg["output"]["soma"]
    net["out"].bias["dend"][:] = cfg["output"]["dend"]


class _Counter:
    """Events of some populations between two calls (from their spike monitors)."""

    def __init__(self, net, names):
        self.mons = {n: net.spike_monitor(n, bursts=False) for n in names}
        self.n = {n: net[n].n for n in names}

    def reset(self):
        for m in self.mons.values():
            m.clear()

    def rates(self, duration_ms: float) -> dict:
        return {k: m.event_t.size / self.n[k] / (duration_ms / 1000.0) for k, m in self.mons.items()}


def _test_pass(net, cfg, counter) -> dict:
    """Each pattern for ``protocol.test`` without plasticity or teaching: event rates (Hz)."""
    pr = cfg["protocol"]
    out = {}
    for p in PATTERNS:
        _apply_pattern(net, cfg, p)
        net.run(pr["settle"])
        counter.reset()
        net.run(pr["test"])
        out[p] = counter.rates(pr["test"])
    return out


def separation(rates) -> float:
    """min(rate(1,0), rate(0,1)) − max(rate(0,0), rate(1,1)) of four rates in PATTERNS order."""
    r = list(rates)
    return float(min(r[1], r[2]) - max(r[0], r[3]))


def simulate(cfg, seed: int) -> dict:
    """Build, train and test one realization: ``{"metrics": ..., "arrays": ...}``."""
    pr, nc = cfg["protocol"], cfg["network"]
    t_wall = time.perf_counter()
    net, plastic = build(cfg, seed)
    _set_bias(net, cfg)
    _set_eta(plastic, cfg, False)
    counter = _Counter(net, ("out", "h1", "h2"))
    _apply_pattern(net, cfg, PATTERNS[0])
    if pr["burn_in"] > 0:
        net.run(pr["burn_in"])
    before = _test_pass(net, cfg, counter)
    n_ex = pr["examples"]
    rec = {k: np.zeros(n_ex) for k in ("out", "h1", "h2", "teach")}
    wsum = {k: np.zeros(n_ex) for k in plastic}
    pattern_idx = np.arange(n_ex) % 4
    target = np.where(np.asarray(XOR)[pattern_idx] == 1, pr["target_high"], pr["target_low"])
    span = pr["target_high"] - pr["target_low"]
    out_pop = net["out"]
    dend0 = cfg["output"]["dend"]
    window = pr["prediction"] - pr["settle"]
    for k in range(n_ex):
        _apply_pattern(net, cfg, PATTERNS[pattern_idx[k]])
        _set_eta(plastic, cfg, False)
        out_pop.bias["dend"][:] = dend0
        net.run(pr["settle"])
        counter.reset()
        net.run(window)
        r = counter.rates(window)
        for name in ("out", "h1", "h2"):
            rec[name][k] = r[name]
        teach = pr["teach_max"] * min(1.0, max(-1.0, (target[k] - r["out"]) / span))
        rec["teach"][k] = teach
        out_pop.bias["dend"][:] = dend0 + teach
        _set_eta(plastic, cfg, True)
        net.run(pr["learning"])
        for name, proj in plastic.items():
            wsum[name][k] = proj.conn.weights.mean()
    _set_eta(plastic, cfg, False)
    out_pop.bias["dend"][:] = dend0
    after = _test_pass(net, cfg, counter)
    wall = time.perf_counter() - t_wall
    bio_s = net.t / 1000.0
    last = pr["final_epochs"] * 4
    last_rates = [float(rec["out"][-last:][pattern_idx[-last:] == p].mean()) for p in range(4)]
    m = {
        "rate_before": {LABELS[i]: before[p]["out"] for i, p in enumerate(PATTERNS)},
        "rate_after": {LABELS[i]: after[p]["out"] for i, p in enumerate(PATTERNS)},
        "hidden_after": {h: {LABELS[i]: after[p][h] for i, p in enumerate(PATTERNS)} for h in HIDDEN},
        "separation_before": separation(before[p]["out"] for p in PATTERNS),
        "separation_after": separation(after[p]["out"] for p in PATTERNS),
        "rate_last_epochs": dict(zip(LABELS, last_rates)),
        "separation_last_epochs": separation(last_rates),
        "wall_s": wall, "bio_s": bio_s, "s_per_bio_s": wall / bio_s,
        "examples": n_ex, "n_pyr": nc["n_pyr"], "hidden_learning": cfg["plasticity"]["hidden_learning"],
        "seed": int(seed),
    }
    m["solved"] = bool(m["separation_after"] >= pr["criterion"])
    arrays = {"example": np.arange(n_ex), "pattern": pattern_idx, "target_hz": target,
              "out_event_rate_hz": rec["out"], "h1_event_rate_hz": rec["h1"], "h2_event_rate_hz": rec["h2"],
              "teach_pA": rec["teach"],
              **{f"w_mean_{k.replace('->', '_to_')}_pA": v for k, v in wsum.items()},
              "rate_before_hz": np.array([before[p]["out"] for p in PATTERNS]),
              "rate_after_hz": np.array([after[p]["out"] for p in PATTERNS])}
    return {"metrics": m, "arrays": arrays}


# --------------------------------------------------------------------------- figure
def figure(arrays, cfg, metrics):
    """Output event rate per pattern over training (prediction phases), smoothed over epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pr = cfg["protocol"]
    fig, ax = plt.subplots(figsize=(7, 4))
    pattern, rate = arrays["pattern"], arrays["out_event_rate_hz"]
    colors = ("tab:blue", "tab:red", "tab:orange", "tab:green")
    for p in range(4):
        sel = pattern == p
        ex = arrays["example"][sel]
        r = rate[sel]
        k = max(1, min(10, r.size // 10))
        smooth = np.convolve(r, np.ones(k) / k, mode="valid")
        ax.plot(ex, r, ".", color=colors[p], alpha=0.2, ms=2)
        ax.plot(ex[k - 1:], smooth, color=colors[p], label=f"{LABELS[p]} → {XOR[p]}")
    ax.axhline(pr["target_high"], color="k", ls="--", lw=0.8)
    ax.axhline(pr["target_low"], color="k", ls=":", lw=0.8)
    ax.set_xlabel("training example")
    ax.set_ylabel("output event rate (Hz)")
    ax.set_title(f"Spiking burstprop XOR (seed {metrics['seed']}): separation after "
                 f"{metrics['separation_after']:.1f} Hz")
    ax.legend(title="pattern → XOR", fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- credit signs
def feedback_probe(cfg, seed: int, pattern=(1, 0), teach=(0.0, 400.0, -400.0), settle: float = 500.0,
                   duration: float = 1000.0) -> dict:
    """The sign of the credit each hidden population receives: with plasticity off and the
    input ``pattern``, the output dendrite gets each current of ``teach`` (pA, on top of
    ``output.dend``) for ``settle`` + ``duration`` ms; returns ``{teach: {pop: (event rate Hz,
    burst fraction)}}`` of ``h1``, ``h2``, ``out`` over the ``duration``. Through the STF feedback
    a depolarising teacher raises the burst fraction of ``h1`` (direct excitation) and lowers that
    of ``h2`` (SOM2 inhibition)."""
    net, plastic = build(cfg, seed)
    _set_bias(net, cfg)
    _set_eta(plastic, cfg, False)
    mons = {k: net.spike_monitor(k) for k in ("h1", "h2", "out")}
    _apply_pattern(net, cfg, pattern)
    out = {}
    for t in teach:
        net["out"].bias["dend"][:] = cfg["output"]["dend"] + t
        net.run(settle)
        for m in mons.values():
            m.clear()
        net.run(duration)
        out[t] = {k: (m.event_t.size / net[k].n / (duration / 1000.0), m.burst_t.size / max(m.event_t.size, 1))
                  for k, m in mons.items()}
    return out
