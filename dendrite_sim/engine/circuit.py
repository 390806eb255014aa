"""A described circuit (:mod:`dendrite_sim.core.circuit`) instantiated on the spiking engine,
and the presentation of one example in phases.

:class:`SpikingCircuit` builds a :class:`~dendrite_sim.engine.network.Network` from a
:class:`~dendrite_sim.core.circuit.Circuit`:

* the ``input`` population is a Poisson group; an example ``x`` (values in [0, 1]) is
  rate-coded as ``x · input_rate``;
* every other population is a group of the configured neuron model; a pathway onto
  compartment ``c`` becomes an all-to-all projection onto the model's channel for ``c`` and the
  learned bias of a population is the constant drive of its basal compartment (the model's
  ``circuit_ports``);
* an input value x ∈ [lo, hi] (``input_range``, default [0, 1]) is coded as the rate
  (x − lo)/(hi − lo) · ``input_rate``;
* the **teacher** of the output population: for each output neuron ``teacher_sources``
  Poisson sources onto its excitatory somatic conductance channel and as many onto the
  inhibitory one. During a phase with ``target = True`` a target value y sets the mean
  conductances g_E = f · g_teach and g_I = (1 − f) · g_teach, f = (y − lo)/(hi − lo) for
  ``target_range`` = [lo, hi] (default [0, 1]: Guerguiev et al. 2017, g_E = target,
  g_I = 1 − target); in the other phases the teacher is silent. The conductances pull the
  soma toward the target potential U = E_I + f (E_E − E_I) (the model's reversal potentials),
  which is where a soma that learns to predict itself from its basal dendrite ends (Sacramento
  et al. 2018), so :meth:`SpikingCircuit.decode` maps a somatic potential back to target
  space. The weight of a teacher synapse makes the mean exact in the time-stepped channel:
  ḡ = k p w / (1 − e^{−dt/τ}) for k sources spiking with probability p per step;
* a ``nudging`` pathway (one-to-one onto the soma: the SST-like interneurons of Sacramento et
  al. 2018 and the pyramids of the layer above that they learn to mimic) is a teacher of the
  same form whose target potential is the partner's somatic potential: every
  ``nudging_interval`` ms, g_E = f g_som, g_I = (1 − f) g_som with
  f = (Ū_partner − E_I)/(E_E − E_I) and Ū_partner the partner's mean somatic potential over
  the last interval (the paper's i^I = g_E(E_E − u^I) + g_I(E_I − u^I) with
  g_E = g_som (u_partner − E_I)/(E_E − E_I), g_I = −g_som (u_partner − E_E)/(E_E − E_I); the
  engine passes no potentials between neurons, so the partner's potential is sampled at this
  interval). ``nudging_conductance`` is g_som.

:meth:`SpikingCircuit.present` runs the phases of one example and returns an
:class:`ExampleRecord`: per phase, over its averaging window (the last ``duration − settle``
ms), the mean of the recorded state variables of every population, spike counts, and —
on request — the mean postsynaptic potential that each neuron's spikes cause,
PSP_j(t) = Σ_k κ(t − t_j^k − d) with κ(s) = (e^{−s/τ_L} − e^{−s/τ_s})/(τ_L − τ_s) and d the
one-step transmission delay, averaged exactly over the window (closed-form integral of κ).

Weights are exchanged as dense matrices (n_post, n_pre) (:meth:`weights`,
:meth:`add_weights`); symmetric feedback pathways are kept equal to the transpose of the
forward pathway they mirror after every change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dendrite_sim.core.circuit import Circuit, Phase
from dendrite_sim.core.errors import ScenarioError


@dataclass
class SpikingConfig:
    """How a circuit is realised with spiking neurons (the ``[spiking]`` table of ``train``)."""

    neuron: str = "guerguiev"
    params: dict = field(default_factory=dict)          # overrides for every non-input population
    output_params: dict = field(default_factory=dict)   # further overrides for the output
    dt: float = 1.0                                      # ms
    backend: str = "numba"
    input_rate: float = 200.0                            # Hz at input value 1
    teacher_sources: int = 20                            # per output neuron and channel
    teacher_rate: float = 500.0                          # Hz of a teacher source at y = 1
    teacher_conductance: float = 1.0                     # mean g_E at y = 1 (model units)
    init: str = "guerguiev"                              # "guerguiev" | "normal"
    init_scale: float = 1.0
    interneuron_params: dict = field(default_factory=dict)  # further overrides for interneurons
    nudging_conductance: float = 0.8                     # g_som of an interneuron toward its partner
    nudging_interval: float = 5.0                        # ms between updates of the nudging targets
    input_range: tuple = (0.0, 1.0)                      # input values coded at rate 0 and input_rate
    target_range: tuple = (0.0, 1.0)                     # target values at f = 0 (E_I) and 1 (E_E)
    init_state: str = "random"                           # "self_predicting": W^IP, W^PI set from W, B


@dataclass
class ConductanceTeacher:
    """Poisson sources onto a population's excitatory and inhibitory somatic conductances whose
    means are g_E = f g, g_I = (1 − f) g per neuron: they pull the soma toward the potential
    U = E_I + f (E_E − E_I)."""

    exc: object
    inh: object
    k: int
    p1: float
    E_E: float
    E_I: float

    def set_fraction(self, f: np.ndarray) -> None:
        f = np.repeat(np.clip(np.asarray(f, dtype=np.float64), 0.0, 1.0), self.k)
        self.exc.spike_prob[:] = f * self.p1
        self.inh.spike_prob[:] = (1.0 - f) * self.p1

    def silence(self) -> None:
        self.exc.spike_prob[:] = 0.0
        self.inh.spike_prob[:] = 0.0

    def fraction_of(self, U: np.ndarray) -> np.ndarray:
        """f whose target potential is U."""
        return (U - self.E_I) / (self.E_E - self.E_I)


@dataclass
class PhaseRecord:
    """Averages of one phase over its window [t0, t1) (ms)."""

    phase: Phase
    t0: float
    t1: float
    values: dict        # population → {variable → (T, n) recorded values in the window}
    spikes: dict        # population → (n,) spike counts in the window
    trains: dict        # population → (times ms, indices) of spikes since the example began
    example_start: float
    psp_cache: dict = field(default_factory=dict)

    @property
    def window(self) -> float:
        return self.t1 - self.t0

    def mean(self, pop: str, var: str) -> np.ndarray:
        """Mean of a recorded variable of ``pop`` over the window."""
        return self.values[pop][var].mean(axis=0)

    def rate(self, pop: str) -> np.ndarray:
        """Spike rate in the window (1/ms)."""
        return self.spikes[pop] / self.window

    def psp(self, pop: str, tau_L: float, tau_s: float, delay: float) -> np.ndarray:
        """Mean PSP of each neuron of ``pop`` over the window (spikes since the example began)."""
        key = (pop, tau_L, tau_s, delay)
        if key not in self.psp_cache:
            t, i = self.trains[pop]
            n = self.spikes[pop].size
            self.psp_cache[key] = mean_psp(t + delay, i, n, self.t0, self.t1, tau_L, tau_s)
        return self.psp_cache[key]


@dataclass
class ExampleRecord:
    phases: dict        # phase name → PhaseRecord
    x: np.ndarray
    target: np.ndarray | None
    traces: dict        # population → (t ms, {variable → (T, n)}) over the whole example

    def __getitem__(self, name: str) -> PhaseRecord:
        return self.phases[name]


def kernel_integral(s, tau_L: float, tau_s: float):
    """K(s) = ∫_0^s κ(u) du = [τ_L(1 − e^{−s/τ_L}) − τ_s(1 − e^{−s/τ_s})]/(τ_L − τ_s), 0 for s ≤ 0."""
    s = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
    return (tau_L * -np.expm1(-s / tau_L) - tau_s * -np.expm1(-s / tau_s)) / (tau_L - tau_s)


def mean_psp(times, idx, n: int, t0: float, t1: float, tau_L: float, tau_s: float) -> np.ndarray:
    """(1/(t1 − t0)) ∫_{t0}^{t1} Σ_k κ(t − t_k) dt for each neuron (spikes at ``times``)."""
    times = np.asarray(times, dtype=np.float64)
    contrib = kernel_integral(t1 - times, tau_L, tau_s) - kernel_integral(t0 - times, tau_L, tau_s)
    return np.bincount(np.asarray(idx, dtype=np.int64), weights=contrib, minlength=n) / (t1 - t0)


def guerguiev_init(n_post: int, n_pre: int, phi_max: float, rng: np.random.Generator,
                   fan_in: int | None = None):
    """Initial weights and biases chosen so that the somatic potentials start with mean ≈ 3 and
    s.d. ≈ 3 when presynaptic rates follow the sigmoid's linear region of slope ν = φ_max/4
    (Guerguiev et al. 2017, Methods, "weight optimization"): with N = ``fan_in`` (n_pre), V̄ = 3, σ_V = 3,
    b̄ = 0.8, σ_b = 0.001, m₂ = σ_V² + V̄²,

        W̄ = (V̄ − b̄)/(ν N V̄)
        ⟨W²⟩ = [m₂ + ν²(N − N²) W̄² V̄² − 2 N ν b̄ V̄ W̄ − b̄²] / (N ν² m₂),   σ_W = √(⟨W²⟩ − W̄²)

    and W, b uniform on [mean − 3.465 σ, mean + 3.465 σ] (the paper's spread)."""
    v_avg, v_sd, b_avg, b_sd = 3.0, 3.0, 0.8, 0.001
    nu, N = phi_max * 0.25, float(n_pre if fan_in is None else fan_in)
    m2 = v_sd ** 2 + v_avg ** 2
    w_avg = (v_avg - b_avg) / (nu * N * v_avg)
    w_m2 = (m2 + nu ** 2 * (N - N ** 2) * w_avg ** 2 * v_avg ** 2 - 2 * N * nu * b_avg * v_avg * w_avg
            - b_avg ** 2) / (N * nu ** 2 * m2)
    w_sd = math.sqrt(max(w_m2 - w_avg ** 2, 0.0))
    W = w_avg + 3.465 * w_sd * rng.uniform(-1, 1, size=(n_post, n_pre))
    b = b_avg + 3.465 * b_sd * rng.uniform(-1, 1, size=n_post)
    return W, b


class SpikingCircuit:
    """A circuit on the spiking engine: build, present examples, read and change weights."""

    def __init__(self, circuit: Circuit, cfg: SpikingConfig, rng: np.random.Generator, seed: int,
                 record_extra: dict | None = None):
        from dendrite_sim.core import registry
        from dendrite_sim.engine.network import Network

        self.circuit, self.cfg = circuit, cfg
        self.model = registry.get("neuron", cfg.neuron, "spiking.neuron")
        ports = self.model.circuit_ports
        if not ports or "teacher" not in ports:
            ok = [n for n, c in registry.available("neuron").items() if "teacher" in c.circuit_ports]
            raise ScenarioError("spiking.neuron", f"model {cfg.neuron!r} declares no circuit ports "
                                f"(compartment → channel and a teacher); expected one of {', '.join(ok)}")
        for q in circuit.pathways:
            if q.compartment == "soma" and q.kind == "nudging":
                continue                                 # through the teacher's excitatory channel
            if q.compartment not in ports:
                raise ScenarioError("spiking.neuron", f"model {cfg.neuron!r} has no {q.compartment} "
                                    f"compartment for pathway {q.name!r}; it has "
                                    f"{', '.join(k for k in ports if k != 'teacher')}")
        self.net = net = Network(dt=cfg.dt, seed=seed, backend=cfg.backend)
        self.dt = cfg.dt
        inp = circuit.input
        self.input = net.poisson_group(inp.name, inp.n, 0.0, bursts=False)
        self.params = {}
        for pop in circuit.layers()[1:] + [p for p in circuit.populations if p.role == "interneuron"]:
            params = dict(cfg.params)
            if pop.role == "output":
                params.update(cfg.output_params)
            if pop.role == "interneuron":
                params.update(cfg.interneuron_params)
            net.population(pop.name, pop.n, self.model, params=params, bursts=False)
            self.params[pop.name] = net[pop.name].params
        self._check_euler(cfg)
        # weights: forward pathways first (feedback ones may mirror them)
        self.proj, self._order = {}, {}
        init = {}
        phi_max = getattr(self.model.Params(), "phi_max", 0.2)
        for q in sorted(circuit.pathways, key=lambda q: q.kind != "feedforward"):
            n_pre, n_post = circuit.population(q.pre).n, circuit.population(q.post).n
            if q.kind == "nudging":                      # a teacher toward the partner's potential
                continue
            if q.feedback == "symmetric":
                if q.mirrors is None:
                    raise ScenarioError("architecture.feedback", f"pathway {q.name!r} has no forward "
                                        "pathway to mirror; expected random or learned feedback")
                W = init[q.mirrors][0].T.copy()
                b = None
            elif cfg.init == "guerguiev":
                # feedback Y is drawn like the forward weights of the layer above, whose fan-in
                # is the layer Y feeds (the paper's choice)
                W, b = guerguiev_init(n_post, n_pre, phi_max, rng,
                                      fan_in=n_post if q.kind == "feedback" else n_pre)
            else:
                W = rng.standard_normal((n_post, n_pre)) * cfg.init_scale / math.sqrt(n_pre)
                b = np.zeros(n_post)
            init[q.name] = (W, b)
            ch = ports[q.compartment][0]
            proj = net.projection(q.pre, q.post, ch, "all_to_all", weight=0.0, name=q.name)
            conn = proj.conn
            self._order[q.name] = (conn.indices.astype(np.int64), conn.pre_indices().astype(np.int64))
            self.proj[q.name] = proj
            self.set_weights(q.name, W, sync=False)
            if q.kind == "feedforward" and b is not None:
                net[q.post].bias[ports[q.compartment][1]][:] = b
        self.teacher = self._conductance_teacher("teacher", circuit.output.name, cfg.teacher_conductance)
        self.nudgers = {q.post: (q.pre, self._conductance_teacher(f"nudger_{q.post}", q.post,
                                                                  cfg.nudging_conductance))
                        for q in circuit.pathways if q.kind == "nudging"}
        if cfg.init_state == "self_predicting":
            self.set_self_predicting()
        self.spike_monitors = {p.name: net.spike_monitor(p.name, events=False, bursts=False)
                               for p in circuit.populations}
        self.recorded = {}
        for p in circuit.populations:
            if p.role == "input":
                continue
            names = [v for v in self.model.state_vars if v.startswith("v_")]
            names += list((record_extra or {}).get(p.name, ()))
            self.recorded[p.name] = names
        self.state_monitors = {name: net.state_monitor(name, vars_) for name, vars_ in self.recorded.items()}

    def _check_euler(self, cfg):
        """Refuse a time step above the model's stability bound (``NeuronModel.stable_dt``), with
        the teacher's somatic conductance added on the output and the nudging conductance on
        interneurons."""
        nudged = {q.post for q in self.circuit.pathways if q.kind == "nudging"}
        for name, p in self.params.items():
            extra = cfg.teacher_conductance if name == self.circuit.output.name else 0.0
            extra = cfg.nudging_conductance if name in nudged else extra
            limit = self.model.stable_dt(p, extra)
            if cfg.dt >= limit:
                raise ScenarioError("spiking.dt", f"expected dt < {limit:.3g} ms: population {name!r} "
                                    f"({self.model.registered_name}, teacher conductance {extra:g}) is "
                                    f"unstable at dt = {cfg.dt:g} ms")

    # ------------------------------------------------------------------ teacher and input
    def _conductance_teacher(self, name: str, pop: str, conductance: float) -> ConductanceTeacher:
        """``teacher_sources`` Poisson sources per neuron of ``pop`` onto each of the model's
        teacher channels (excitatory, inhibitory), weighted so that all sources of a neuron at
        full rate give the mean conductance ``conductance``."""
        cfg, n = self.cfg, self.circuit.population(pop).n
        k = int(cfg.teacher_sources)
        p1 = cfg.teacher_rate * cfg.dt / 1000.0
        if not 0 < p1 <= 1:
            raise ScenarioError("spiking.teacher_rate", f"expected a rate in (0, {1000.0 / cfg.dt:g}] Hz "
                                f"at dt = {cfg.dt:g} ms, got {cfg.teacher_rate:g}")
        pre_idx, post_idx = np.arange(n * k), np.repeat(np.arange(n), k)
        groups = []
        for sign, ch in zip(("exc", "inh"), self.model.circuit_ports["teacher"]):
            src = f"{name}_{sign}"
            self.net.poisson_group(src, n * k, 0.0, bursts=False)
            w = conductance * (1.0 - self.net[pop].decay[ch]) / (k * p1)
            self.net.projection(src, pop, ch, "pairs", weight=w, pre_idx=pre_idx, post_idx=post_idx,
                                name=f"{src}->{pop}")
            groups.append(self.net[src])
        p = self.params[pop]
        return ConductanceTeacher(groups[0], groups[1], k, p1, float(p.E_E), float(p.E_I))

    def set_input(self, x: np.ndarray) -> None:
        lo, hi = self.cfg.input_range
        f = np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
        self.input.spike_prob[:] = f * (self.cfg.input_rate * self.dt / 1000.0)

    def set_teacher(self, y: np.ndarray | None) -> None:
        """Teacher conductances for target ``y`` (in ``target_range``); ``None`` silences it."""
        if y is None:
            self.teacher.silence()
            return
        lo, hi = self.cfg.target_range
        self.teacher.set_fraction((np.asarray(y, dtype=np.float64) - lo) / (hi - lo))

    def decode(self, v_soma: np.ndarray) -> np.ndarray:
        """A somatic potential of the output as a target value: the inverse of the teacher's code,
        y = lo + (U − E_I)/(E_E − E_I) · (hi − lo)."""
        lo, hi = self.cfg.target_range
        return lo + self.teacher.fraction_of(np.asarray(v_soma, dtype=np.float64)) * (hi - lo)

    def _nudge(self, t0: float) -> None:
        """Point every interneuron's nudging teacher at its partner's mean somatic potential
        since ``t0``."""
        for partner, teacher in self.nudgers.values():
            mon = self.state_monitors[partner]
            t = mon.t
            sel = t >= t0 - 1e-9
            if sel.any():
                teacher.set_fraction(teacher.fraction_of(mon["v_soma"][sel].mean(axis=0)))

    def set_self_predicting(self) -> None:
        """Interneuron weights of the self-predicting state (Sacramento et al. 2018): each
        interneuron's basal weights and bias equal its partner pyramid's (W^IP_l = W^PP_{l+1},
        b^IP_l = b_{l+1}: same basal potential, so the same rate when the models match) and
        W^PI_l = −W^td_l, so that the interneurons cancel the top-down input on the apical
        dendrites when no target is shown."""
        for q in self.circuit.pathways:
            if q.kind != "nudging":
                continue
            l = q.post.removeprefix("inter")
            ff = next(f for f in self.circuit.feedforward() if f.post == q.pre)
            self.set_weights(f"ip{l}", self.weights(ff.name), sync=False)
            self.bias(q.post)[:] = self.bias(q.pre)
            self.set_weights(f"pi{l}", -self.weights(f"td{l}"), sync=False)

    # ------------------------------------------------------------------ weights
    def weights(self, pathway: str) -> np.ndarray:
        """Dense weights (n_post, n_pre) of a pathway (a copy)."""
        q = self.circuit.pathway(pathway)
        W = np.zeros((self.circuit.population(q.post).n, self.circuit.population(q.pre).n))
        post, pre = self._order[pathway]
        W[post, pre] = self.proj[pathway].conn.weights
        return W

    def set_weights(self, pathway: str, W: np.ndarray, sync: bool = True) -> None:
        post, pre = self._order[pathway]
        self.proj[pathway].conn.weights[:] = W[post, pre]
        if sync:
            self.sync_feedback()

    def add_weights(self, pathway: str, dW: np.ndarray) -> None:
        post, pre = self._order[pathway]
        self.proj[pathway].conn.weights[:] += dW[post, pre]

    def bias(self, pop: str) -> np.ndarray:
        """The learned bias of ``pop`` (a view: the constant drive of its basal compartment)."""
        return self.net[pop].bias[self.model.circuit_ports["basal"][1]]

    def sync_feedback(self) -> None:
        for q in self.circuit.feedback():
            if q.feedback == "symmetric":
                self.set_weights(q.name, self.weights(q.mirrors).T, sync=False)

    # ------------------------------------------------------------------ presentation
    def _run(self, duration: float) -> None:
        """Run ``duration`` ms; with interneurons, in intervals between updates of their nudging."""
        if not self.nudgers:
            self.net.run(duration)
            return
        end = self.net.t + duration
        step = self.cfg.nudging_interval
        while self.net.t < end - 1e-9:
            t0 = self.net.t
            self.net.run(min(step, end - t0))
            self._nudge(t0)

    def present(self, x: np.ndarray, target: np.ndarray | None, phases) -> ExampleRecord:
        """Run the phases of one example; averages of each phase's window."""
        for m in (*self.spike_monitors.values(), *self.state_monitors.values()):
            m.clear()
        self.set_input(x)
        start = self.net.t
        out = {}
        for ph in phases:
            self.set_teacher(target if ph.target else None)
            t_begin = self.net.t
            self._run(ph.duration)
            t0, t1 = t_begin + ph.settle, self.net.t
            values = {}
            for name, mon in self.state_monitors.items():
                t = mon.t
                sel = (t >= t0 - 1e-9) & (t < t1 - 1e-9)
                values[name] = {v: mon[v][sel] for v in mon.variables}
            spikes, trains = {}, {}
            for name, mon in self.spike_monitors.items():
                t, i = mon.t, mon.i
                sel = (t >= t0 - 1e-9) & (t < t1 - 1e-9)
                spikes[name] = np.bincount(i[sel], minlength=mon.pop.n).astype(np.float64)
                trains[name] = (t, i)
            out[ph.name] = PhaseRecord(ph, t0, t1, values, spikes, trains, start)
        self.set_teacher(None)
        traces = {name: (mon.t, {v: mon[v] for v in mon.variables}) for name, mon in self.state_monitors.items()}
        return ExampleRecord(out, np.asarray(x), None if target is None else np.asarray(target), traces)
