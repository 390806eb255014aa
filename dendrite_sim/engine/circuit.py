"""A described circuit (:mod:`dendrite_sim.core.circuit`) instantiated on the spiking engine,
and the presentation of one example in phases.

:class:`SpikingCircuit` builds a :class:`~dendrite_sim.engine.network.Network` from a
:class:`~dendrite_sim.core.circuit.Circuit`:

* the ``input`` population is a Poisson group; an example ``x`` (values in [0, 1]) is
  rate-coded as ``x · input_rate``;
* every other population is a group of the configured neuron model; a pathway onto
  compartment ``c`` becomes an all-to-all projection onto the model's channel for ``c`` and the
  learned bias of a population is the constant drive of its basal compartment (the model's
  ``circuit_ports``); a ``nudging`` pathway (one-to-one onto the soma, e.g. the pyramids an
  interneuron mimics) is a fixed projection of weight ``nudging_weight`` onto the model's
  excitatory somatic conductance channel;
* the **teacher** of the output population: for each output neuron ``teacher_sources``
  Poisson sources onto its excitatory somatic conductance channel and as many onto the
  inhibitory one. During a phase with ``target = True`` a target value y ∈ [0, 1] sets the
  mean conductances g_E = y · g_teach and g_I = (1 − y) · g_teach (Guerguiev et al. 2017:
  g_E = target, g_I = 1 − target); in the other phases the teacher is silent. The weight of a
  teacher synapse makes the mean exact in the time-stepped channel:
  ḡ = k p w / (1 − e^{−dt/τ}) for k sources spiking with probability p per step.

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
    nudging_weight: float = 0.1                          # conductance jump per partner spike (nudging)


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
            if q.kind == "nudging":                      # fixed one-to-one somatic conductance
                idx = np.arange(n_post)
                proj = net.projection(q.pre, q.post, ports["teacher"][0], "pairs", weight=cfg.nudging_weight,
                                      pre_idx=idx, post_idx=idx, name=q.name)
                self._order[q.name] = (proj.conn.indices.astype(np.int64), proj.conn.pre_indices().astype(np.int64))
                self.proj[q.name] = proj
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
        self._teacher(circuit, cfg, ports["teacher"])
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
        the teacher's somatic conductance added on the output."""
        for name, p in self.params.items():
            extra = cfg.teacher_conductance if name == self.circuit.output.name else 0.0
            limit = self.model.stable_dt(p, extra)
            if cfg.dt >= limit:
                raise ScenarioError("spiking.dt", f"expected dt < {limit:.3g} ms: population {name!r} "
                                    f"({self.model.registered_name}, teacher conductance {extra:g}) is "
                                    f"unstable at dt = {cfg.dt:g} ms")

    # ------------------------------------------------------------------ teacher and input
    def _teacher(self, circuit, cfg, channels):
        out = circuit.output
        k = int(cfg.teacher_sources)
        self.teacher = {}
        pre_idx = np.arange(out.n * k)
        post_idx = np.repeat(np.arange(out.n), k)
        p1 = cfg.teacher_rate * cfg.dt / 1000.0
        if not 0 < p1 <= 1:
            raise ScenarioError("spiking.teacher_rate", f"expected a rate in (0, {1000.0 / cfg.dt:g}] Hz "
                                f"at dt = {cfg.dt:g} ms, got {cfg.teacher_rate:g}")
        for sign, ch in zip(("exc", "inh"), channels):
            name = f"teacher_{sign}"
            self.net.poisson_group(name, out.n * k, 0.0, bursts=False)
            decay = self.net[out.name].decay[ch]
            w = cfg.teacher_conductance * (1.0 - decay) / (k * p1)
            self.net.projection(name, out.name, ch, "pairs", weight=w, pre_idx=pre_idx, post_idx=post_idx,
                                name=f"{name}->{out.name}")
            self.teacher[sign] = self.net[name]
        self._p1, self._k = p1, k

    def set_input(self, x: np.ndarray) -> None:
        self.input.spike_prob[:] = np.clip(x, 0.0, 1.0) * (self.cfg.input_rate * self.dt / 1000.0)

    def set_teacher(self, y: np.ndarray | None) -> None:
        """Teacher conductances for target ``y`` (values in [0, 1]); ``None`` silences it."""
        if y is None:
            self.teacher["exc"].spike_prob[:] = 0.0
            self.teacher["inh"].spike_prob[:] = 0.0
            return
        y = np.repeat(np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0), self._k)
        self.teacher["exc"].spike_prob[:] = y * self._p1
        self.teacher["inh"].spike_prob[:] = (1.0 - y) * self._p1

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
            self.net.run(ph.duration)
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
