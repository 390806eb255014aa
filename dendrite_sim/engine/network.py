"""Spiking network: populations, projections, inputs, monitors; time-stepped simulation.

Python API::

    net = Network(dt=0.1, seed=1, backend="numba")          # or backend="numpy" (reference)
    pyr = net.population("pyr", 4000, "naud_sprekeler", params={...}, init={...})
    net.projection("pyr", "pyr", "soma_exc", "fixed_probability", p=0.02, autapses=False,
                   weight=5.0, delay=0.1, stp="payeur_std")
    net.poisson_input("pyr", "soma_exc", n_sources=100, rate=5.0, weight=100.0)
    net.current("pyr", "soma", bias=210.0)                  # or array=..., array_dt=...
    spikes = net.spike_monitor("pyr")                       # spikes, events, bursts
    trace = net.state_monitor("pyr", ["v_soma", "v_dend"], neurons=[0, 1], every=1.0)
    net.run(1000.0)                                         # repeatable; state is kept
    spikes.t, spikes.i, spikes.burst_t, trace["v_dend"], net["pyr"].burst_prob

Units are the internal ones (ms, mV, pA, nS, Hz). Weights are in the unit of the target
channel: pA for current channels, nS for conductance channels (the model decides). Every scalar
time, rate, current and weight argument also takes a string with units, as scenarios do
(``Network(dt="0.1 ms")``, ``weight="5 pA"``, ``rate="5 Hz"``, ``delay="1 ms"``,
``net.run("1 s")``); a bad argument (``run(float("nan"))``) raises
:class:`~dendrite_sim.core.errors.ArgumentError` (a ``ValueError``) naming it.

What one time step does, and in which order, is defined once in :mod:`.schedule`; the backends
(:mod:`.backends`: ``numba``, the fused compiled loop, and ``numpy``, the readable reference)
implement its phases. Plasticity is a projection option: ``plasticity=`` names a registered
learning rule with a spiking face — a synapse rule that runs inside the loop
(:mod:`dendrite_sim.synapses.plasticity`; e.g. ``{"rule": "stdp", "preset": "pair"}``) or a rule
whose ``local_factors`` run between chunks (:mod:`.learning`, with ``eta``, ``every``,
``w_min``, ``w_max``, ``modulator``). ``weight_monitor`` records weights at intervals.

Reproducibility: every random draw (initial states, connectivity: numpy Generators from
:func:`dendrite_sim.core.rng.stream`; Poisson inputs and stochastic neurons: counter-based
streams) derives from ``seed`` and the object's name, so the same seed gives bit-identical
results on repeated runs, and the numpy and numba backends give the same spikes.

"""

from __future__ import annotations

import math
import warnings

import numpy as np

from dendrite_sim.core import registry
from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ArgumentError, ScenarioError
from dendrite_sim.core.units import parse_in_unit
from dendrite_sim.engine import bursts as B
from dendrite_sim.engine import random as R
from dendrite_sim.engine.backends import BACKEND_NAMES, backend_class
from dendrite_sim.engine.graph import (
    ArrayInput,
    ChunkRule,
    NeuronPopulation,
    PoissonInput,
    PoissonSource,
    Population,
    Projection,
    SpikeSource,
    SynapseRuleState,
)
from dendrite_sim.engine.monitors import SpikeMonitor, StateMonitor, WeightMonitor
from dendrite_sim.synapses import connectivity as C
from dendrite_sim.synapses import stp as stpmod

__all__ = ["Network", "Population", "NeuronPopulation", "PoissonSource", "SpikeSource", "Projection",
           "PoissonInput", "ArrayInput", "ChunkRule", "BACKEND_NAMES"]


def _q(value, unit: str, key: str):
    """A scalar argument given as a string with units (``"5 Hz"``) → float in ``unit``; any
    other value is returned as it is (numbers and arrays are already in ``unit``)."""
    if isinstance(value, str):
        try:
            return parse_in_unit(value, unit, key)
        except ScenarioError as exc:
            raise ArgumentError(exc.key, exc.expected) from None
    return value


# --------------------------------------------------------------------------- network
class Network:
    """A spiking network (see the module docstring)."""

    def __init__(self, dt: float = 0.1, seed: int = 0, backend: str = "numba", fastmath: bool = False,
                 max_monitor_bytes: float = 2 * 1024**3, threads: int | str = "auto"):
        dt = _q(dt, "ms", "dt")
        if isinstance(dt, bool) or not (isinstance(dt, (int, float)) and 0 < dt <= 10):
            raise ScenarioError("dt", f"expected a time step in (0, 10] ms, got {dt!r}")
        if backend not in BACKEND_NAMES:
            raise ScenarioError("backend", f"expected one of {', '.join(BACKEND_NAMES)}, got {backend!r}")
        check = getattr(backend_class(backend), "check_available", None)
        if check is not None:                   # e.g. cupy: a device or the CUDA simulator
            check()
        self.dt = float(dt)
        self.seed = int(seed)
        self.backend = backend
        self.fastmath = bool(fastmath)
        # threads of the numba loop: "auto" (threaded only for large networks) or a number
        # (1: the serial loop); results are bit-identical for every choice
        if threads != "auto" and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                  or not 1 <= threads <= 1024):
            raise ScenarioError("threads", f"expected \"auto\" or a number of threads in [1, 1024], got {threads!r}")
        self.threads = threads if threads == "auto" else int(threads)
        self.max_monitor_bytes = float(max_monitor_bytes)
        self.step = 0
        self.pops: dict[str, Population] = {}
        self.projections: list[Projection] = []
        self.poisson_inputs: list[PoissonInput] = []
        self.array_inputs: list[ArrayInput] = []
        self.spike_monitors: list[SpikeMonitor] = []
        self.state_monitors: list[StateMonitor] = []
        self.weight_monitors: list[WeightMonitor] = []
        self.plasticity: list[ChunkRule] = []
        self._names: dict[str, set[str]] = {"populations": set(), "projections": set(), "inputs": set()}
        self._backend_obj = None
        self._structure_version = 0
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ helpers
    @property
    def t(self) -> float:
        """Current time in ms (steps simulated × dt)."""
        return self.step * self.dt

    def __getitem__(self, name: str) -> Population:
        return self.pops[name]

    def _rng(self, name: str) -> np.random.Generator:
        return rngmod.stream(self.seed, name)

    def _unique(self, name: str, key: str) -> str:
        """Names are unique among populations, among projections and among inputs."""
        if not isinstance(name, str) or not name:
            raise ScenarioError(key, f"expected a non-empty name, got {name!r}")
        kind = key.split(".")[0]
        if name in self._names[kind]:
            raise ScenarioError(key, f"the name {name!r} is already used by another of the network's {kind}")
        self._names[kind].add(name)
        return name

    def _changed(self):
        self._structure_version += 1

    def _pop(self, name, key: str) -> Population:
        if isinstance(name, Population):
            return name
        if name not in self.pops:
            raise ScenarioError(key, f"unknown population {name!r}; populations: {', '.join(self.pops) or 'none'}")
        return self.pops[name]

    def _steps(self, ms: float, key: str, minimum: int = 0) -> int:
        ms = _q(ms, "ms", key)
        if isinstance(ms, bool) or not isinstance(ms, (int, float, np.integer, np.floating)) or not math.isfinite(ms):
            raise ArgumentError(key, f"expected a finite time in ms (a number or a string such as \"10 ms\"), "
                                f"got {ms!r}")
        n = int(round(ms / self.dt))
        if abs(n * self.dt - ms) > 1e-6 * max(1.0, abs(ms)) or n < minimum:
            raise ArgumentError(key, f"expected a multiple of dt = {self.dt:g} ms of at least "
                                f"{minimum * self.dt:g} ms, got {ms:g} ms")
        return n

    def _new_pop(self, name, n, cls, key, **fields) -> Population:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ScenarioError(f"{key}.n", f"expected a positive number of neurons, got {n!r}")
        pop = cls(name=self._unique(name, "populations.name"), n=int(n), index=len(self.pops), **fields)
        self.pops[name] = pop
        self._changed()
        return pop

    def _init_bursts(self, pop: Population, track: bool, window_ms: float, tau_avg_ms: float, key: str):
        window_ms = _q(window_ms, "ms", f"{key}.burst_window")
        tau_avg_ms = _q(tau_avg_ms, "ms", f"{key}.tau_avg")
        if not (window_ms > 0):
            raise ScenarioError(f"{key}.burst_window", f"expected a positive time, got {window_ms!r}")
        if not (tau_avg_ms > 0):
            raise ScenarioError(f"{key}.tau_avg", f"expected a positive time, got {tau_avg_ms!r}")
        pop.init_bursts(track, B.window_steps(window_ms, self.dt), *B.rate_decay(tau_avg_ms, self.dt))

    # ------------------------------------------------------------------ populations
    def population(self, name: str, n: int, model, params: dict | None = None, init: dict | None = None,
                   tau: dict | None = None, channel_method: str = "exact", bursts: bool = True,
                   burst_window: float = 16.0, tau_avg: float = 1000.0) -> Population:
        """Add ``n`` neurons of a registered ``model`` (name or class).

        ``params``: overrides of the model's published defaults (internal units);
        ``init``: state variable → scalar or (n,) array replacing the model's initial state;
        ``tau``: channel → decay time constant (ms) replacing the model's default;
        ``channel_method``: ``"exact"`` (channel × exp(−dt/τ) per step, the default) or
        ``"euler"`` (× (1 − dt/τ), what Brian2's ``method="euler"`` does to the same equation:
        about dt/2τ less charge per synaptic event);
        ``bursts``: track events/bursts and running rates (window ``burst_window`` ms,
        exponential average ``tau_avg`` ms).
        """
        key = f"populations.{name}"
        cls = registry.get("neuron", model, f"{key}.model") if isinstance(model, str) else model
        pop = self._new_pop(name, n, NeuronPopulation, key)
        pop.model = cls
        pop.params = cls.make_params(params or {}, key=f"{key}.params")
        state = cls.initial_state(pop.n, pop.params, self._rng(f"init/{name}"))
        for var in cls.state_vars:
            pop.state[var] = np.array(np.broadcast_to(np.asarray(state[var], dtype=np.float64), (pop.n,)))
        for var, value in (init or {}).items():
            if var not in pop.state:
                raise ScenarioError(f"{key}.init.{var}", f"unknown state variable of {cls.registered_name}; "
                                    f"expected one of {', '.join(cls.state_vars)}")
            pop.state[var][:] = self._per_neuron(value, pop.n, f"{key}.init.{var}")
        taus = dict(cls.channels)
        for ch, value in (tau or {}).items():
            value = _q(value, "ms", f"{key}.tau.{ch}")
            if ch not in taus:
                raise ScenarioError(f"{key}.tau.{ch}", f"unknown channel; expected one of {', '.join(taus)}")
            if not (isinstance(value, (int, float)) and value > 0):
                raise ScenarioError(f"{key}.tau.{ch}", f"expected a positive time constant, got {value!r}")
            taus[ch] = float(value)
        if channel_method not in ("exact", "euler"):
            raise ScenarioError(f"{key}.channel_method", f"expected 'exact' or 'euler', got {channel_method!r}")
        for ch, t in taus.items():
            pop.channels[ch] = np.zeros(pop.n)
            pop.tau[ch] = t
            pop.decay[ch] = math.exp(-self.dt / t) if channel_method == "exact" else 1.0 - self.dt / t
        for comp in cls.compartments:
            pop.bias[comp] = np.zeros(pop.n)
            pop.drives[comp] = np.zeros(pop.n)
        if getattr(cls, "needs_uniform", False):
            pop.uniform_key = R.stream_key(self.seed, f"uniform/{name}")
        self._init_bursts(pop, bursts, burst_window, tau_avg, key)
        return pop

    def poisson_group(self, name: str, n: int, rate, bursts: bool = False, burst_window: float = 16.0,
                      tau_avg: float = 1000.0) -> Population:
        """``n`` independent Poisson spike sources at ``rate`` Hz (scalar or per neuron).

        Each step a source spikes with probability rate·dt (one counter-based uniform per
        source per step, as Brian2's PoissonGroup).
        """
        key = f"populations.{name}"
        pop = self._new_pop(name, n, PoissonSource, key)
        rate = self._per_neuron(_q(rate, "Hz", f"{key}.rate"), pop.n, f"{key}.rate")
        if np.any(rate < 0) or np.any(rate * self.dt / 1000.0 > 1.0):
            raise ScenarioError(f"{key}.rate", f"expected rates in [0, {1000.0 / self.dt:g}] Hz")
        pop.spike_prob = rate * (self.dt / 1000.0)
        pop.gen_key = R.stream_key(self.seed, f"poisson_group/{name}")
        self._init_bursts(pop, bursts, burst_window, tau_avg, key)
        return pop

    def spike_generator(self, name: str, n: int, times, indices, bursts: bool = False,
                        burst_window: float = 16.0, tau_avg: float = 1000.0) -> Population:
        """``n`` sources that emit the given spikes: ``times`` (ms), ``indices`` (source).

        Times are rounded to the nearest step; a source may spike at most once per step.
        """
        key = f"populations.{name}"
        times = np.asarray(times, dtype=np.float64).ravel()
        indices = np.asarray(indices).ravel()
        if times.shape != indices.shape:
            raise ScenarioError(f"{key}.indices", f"expected one index per spike time ({times.size}), "
                                f"got {indices.size}")
        pop = self._new_pop(name, n, SpikeSource, key)
        if indices.size and (not np.issubdtype(indices.dtype, np.integer) or indices.min() < 0
                             or indices.max() >= pop.n):
            raise ScenarioError(f"{key}.indices", f"expected integer indices in [0, {pop.n})")
        if times.size and (not np.all(np.isfinite(times)) or times.min() < 0):
            raise ScenarioError(f"{key}.times", "expected finite spike times >= 0 ms")
        steps = np.rint(times / self.dt).astype(np.int64)
        order = np.lexsort((indices, steps))
        steps, idx = steps[order], indices[order].astype(np.int64)
        if np.any((np.diff(steps) == 0) & (np.diff(idx) == 0)):
            raise ScenarioError(f"{key}.times", f"a source spikes twice in one step of {self.dt:g} ms")
        pop.sched_steps, pop.sched_idx = steps, idx
        pop.sched_ptr = np.zeros(1, dtype=np.int64)
        self._init_bursts(pop, bursts, burst_window, tau_avg, key)
        return pop

    @staticmethod
    def _per_neuron(value, n, key) -> np.ndarray:
        a = np.asarray(value, dtype=np.float64)
        if a.ndim == 0:
            a = np.full(n, float(a))
        if a.shape != (n,) or not np.all(np.isfinite(a)):
            raise ScenarioError(key, f"expected a number or {n} finite numbers, got shape {a.shape}")
        return a

    # ------------------------------------------------------------------ projections
    def projection(self, pre, post, channel: str, connectivity="all_to_all", weight=1.0, delay=None,
                   stp=None, plasticity=None, name: str | None = None, **conn_kwargs) -> Projection:
        """Connect population ``pre`` to ``channel`` of population ``post``.

        ``connectivity``: a :class:`~dendrite_sim.synapses.connectivity.Connectivity` or a
        builder name (``all_to_all``, ``fixed_probability`` with ``p``, ``fixed_indegree``
        with ``k``, ``pairs`` with ``pre_idx``/``post_idx``; ``autapses`` where relevant).
        ``weight``: scalar or per-synapse array (CSR order); ``delay``: ms (scalar or
        per-synapse array), at least one step (default: one step). ``stp``: None, a preset
        name, an :class:`~dendrite_sim.synapses.stp.STPParams`, or a dict
        ``{"preset": ..., **overrides}`` / ``{U, tau_D, tau_F, f, variant}``. A field given as
        an array of one value per synapse (CSR order) makes the projection heterogeneous: its
        (u, x) state is then kept per synapse; otherwise per presynaptic neuron, since it
        depends only on the presynaptic spike train (one update per spike, not per synapse).
        ``plasticity``: None, a registered rule name, or a table ``{"rule": name, **params}``
        naming a learning rule with a spiking face: a synapse rule (its parameters, e.g.
        ``{"rule": "stdp", "preset": "visual_all_to_all", "w_max": 2.0}``, run inside the loop;
        phase 9 of :mod:`.schedule`) or a rule with ``local_factors`` (table keys ``eta``,
        ``every`` (ms), ``w_min``, ``w_max``, ``modulator`` and the rule's own parameters;
        applied between chunks, :mod:`.learning`).
        """
        pre_p = self._pop(pre, "projections.pre")
        post_p = self._pop(post, "projections.post")
        name = self._unique(name or f"{pre_p.name}->{post_p.name}:{channel}", "projections.name")
        key = f"projections.{name}"
        if not post_p.is_model:
            raise ScenarioError(f"{key}.post", f"population {post_p.name!r} is a spike source; it has no channels")
        if channel not in post_p.channels:
            raise ScenarioError(f"{key}.channel", f"expected a channel of {post_p.model.registered_name}: "
                                f"{', '.join(post_p.channels)}; got {channel!r}")
        if isinstance(connectivity, C.Connectivity):
            conn = connectivity
            if (conn.n_pre, conn.n_post) != (pre_p.n, post_p.n):
                raise ScenarioError(f"{key}.connectivity", f"expected a {pre_p.n} × {post_p.n} "
                                    f"connectivity, got {conn.n_pre} × {conn.n_post}")
            conn = conn.with_values()
        else:
            conn = self._build_conn(connectivity, pre_p, post_p, conn_kwargs, key, name)
        w = np.asarray(self._weight(weight, post_p, channel, f"{key}.weight"), dtype=np.float64)
        if w.ndim and w.shape != (conn.nnz,) or not np.all(np.isfinite(w)):
            raise ScenarioError(f"{key}.weight", f"expected a finite number or {conn.nnz} numbers (one per synapse)")
        conn.weights = np.array(np.broadcast_to(w, (conn.nnz,)), dtype=np.float64)
        d_ms = self.dt if delay is None else _q(delay, "ms", f"{key}.delay")
        d = np.asarray(d_ms, dtype=np.float64)
        if d.ndim and d.shape != (conn.nnz,):
            raise ScenarioError(f"{key}.delay", f"expected a time or {conn.nnz} times (one per synapse)")
        steps = np.rint(d / self.dt)
        if np.any(steps < 1) or np.any(np.abs(steps * self.dt - d) > 1e-6 * np.maximum(1.0, d)):
            raise ScenarioError(f"{key}.delay", f"expected delays that are multiples of dt = {self.dt:g} ms "
                                f"and at least one step; got {d_ms}")
        conn.delays = np.array(np.broadcast_to(steps.astype(C.DELAY), (conn.nnz,)))
        proj = Projection(name=name, pre=pre_p, post=post_p, channel=channel, conn=conn)
        if stp is not None:
            proj.stp, proj.stp_per_synapse = self._stp_params(stp, f"{key}.stp", conn.nnz)
            u, x = stpmod.initial_state(conn.nnz if proj.stp_per_synapse else pre_p.n, proj.stp)
            proj.stp_u, proj.stp_x = u, x
            proj.stp_last = np.full(pre_p.n, B.NEVER, dtype=np.int64)
        if plasticity is not None:                  # before appending: a refused rule adds nothing
            self._attach_plasticity(proj, plasticity, f"{key}.plasticity")
        self.projections.append(proj)
        self._changed()
        return proj

    @staticmethod
    def _weight(weight, post: Population, channel: str, key: str):
        """A weight given as a string with units → float in the channel's unit (pA for current
        channels, nS for conductance channels; either where the model does not say)."""
        if not isinstance(weight, str):
            return weight
        unit = (getattr(post.model, "channel_units", None) or {}).get(channel)
        for u in ((unit,) if unit else ("pA", "nS")):
            try:
                return parse_in_unit(weight, u, key)
            except ScenarioError:
                pass
        want = {"pA": "a current (\"5 pA\")", "nS": "a conductance (\"2 nS\")"}
        raise ArgumentError(key, f"expected {want.get(unit, 'a current or a conductance')} for channel "
                            f"{channel!r}, got {weight!r}")

    _CHUNK_KEYS = ("eta", "every", "w_min", "w_max", "modulator")

    def attach_plasticity(self, proj: Projection, spec, key: str = "plasticity") -> None:
        """Bind a learning rule to a projection already in this network: ``spec`` is what
        :meth:`projection`'s ``plasticity`` takes (a rule name, or a table with ``rule`` and its
        parameters); a bad rule or parameter is a :class:`ScenarioError` at ``key``."""
        if not any(p is proj for p in self.projections):
            raise ScenarioError(key, f"expected a projection of this network, got {proj!r}")
        self._attach_plasticity(proj, spec, key)
        self._changed()

    def _attach_plasticity(self, proj: Projection, spec, key: str) -> None:
        """Bind the rule named by ``spec`` to ``proj`` (see :meth:`projection`)."""
        from dendrite_sim.core.interfaces import require_substrate

        if isinstance(spec, str):
            spec = {"rule": spec}
        if not isinstance(spec, dict) or "rule" not in spec:
            raise ScenarioError(key, f"expected a rule name or a table with 'rule', got {spec!r}")
        table = dict(spec)
        name = table.pop("rule")
        cls = registry.get("rule", name, f"{key}.rule") if isinstance(name, str) else name
        require_substrate(cls, "spiking", f"{key}.rule")
        if getattr(cls, "is_synapse_rule", False):
            self._bind_synapse_rule(proj, cls, table, key)
            return
        chunk = {k: table.pop(k) for k in self._CHUNK_KEYS if k in table}
        rule = registry.build("rule", {"name": cls.registered_name, **table}, key)
        every = chunk.get("every", 10.0)
        if isinstance(every, str):
            from dendrite_sim.core.units import parse_in_unit

            every = parse_in_unit(every, "ms", f"{key}.every")
        self.plasticity_hook(proj, rule, eta=chunk.get("eta", 1.0), every=every, modulator=chunk.get("modulator"),
                             w_min=chunk.get("w_min", -np.inf), w_max=chunk.get("w_max", np.inf), key=key)

    def _bind_synapse_rule(self, proj: Projection, rule, table: dict, key: str) -> None:
        if proj.plasticity is not None:
            raise ScenarioError(key, "expected at most one synapse rule per projection")
        params = rule.make_params(table, key=key)
        rule.check_hooks(tuple(proj.post.variable_names()), key, post_params=proj.post.params,
                         pre_names=tuple(proj.pre.variable_names()))
        rule.validate_weights(params, proj.conn.weights, key)
        pre_tr = {t: np.zeros(proj.pre.n) for t in rule.pre_traces}
        post_tr = {t: np.zeros(proj.post.n) for t in rule.post_traces}
        csc = None
        if rule.on_post is not None:
            col_ptr, _pre, perm = proj.conn.csc()
            csc = (col_ptr, perm.astype(np.int64), proj.conn.pre_indices().astype(np.int64))
        proj.plasticity = SynapseRuleState(
            rule=rule, params=params, pre_traces=pre_tr, post_traces=post_tr,
            pre_decay={t: math.exp(-self.dt / getattr(params, tau)) for t, tau in rule.pre_traces.items()},
            post_decay={t: math.exp(-self.dt / getattr(params, tau)) for t, tau in rule.post_traces.items()},
            synapse_vars={v: np.full(proj.conn.nnz, float(init)) for v, init in rule.synapse_vars.items()},
            csc=csc, syn_pre=proj.conn.pre_indices().astype(np.int64))
        self._changed()

    _CONN_OPTIONS = {"all_to_all": ("autapses",), "fixed_probability": ("p", "autapses"),
                     "fixed_indegree": ("k", "autapses"), "pairs": ("pre_idx", "post_idx")}

    def _build_conn(self, kind, pre, post, kw, key, name) -> C.Connectivity:
        if kind not in self._CONN_OPTIONS:
            raise ScenarioError(f"{key}.connectivity", f"expected one of {', '.join(self._CONN_OPTIONS)}, "
                                f"got {kind!r}")
        allowed = self._CONN_OPTIONS[kind]
        for opt in kw:
            if opt not in allowed:
                raise ScenarioError(f"{key}.{opt}", f"unknown option of {kind} connectivity; "
                                    f"allowed: {', '.join(allowed)}")
        required = {"fixed_probability": ("p",), "fixed_indegree": ("k",),
                    "pairs": ("pre_idx", "post_idx")}.get(kind, ())
        for opt in required:
            if opt not in kw:
                raise ScenarioError(f"{key}.{opt}", f"missing; {kind} connectivity needs {', '.join(required)}")
        rng = self._rng(f"connectivity/{name}")
        autapses = kw.get("autapses", True)
        try:
            if kind == "all_to_all":
                return C.all_to_all(pre.n, post.n, autapses=autapses)
            if kind == "fixed_probability":
                return C.fixed_probability(pre.n, post.n, kw["p"], rng, autapses=autapses)
            if kind == "fixed_indegree":
                return C.fixed_indegree(pre.n, post.n, kw["k"], rng, autapses=autapses)
            return C.pairs(pre.n, post.n, kw["pre_idx"], kw["post_idx"])
        except ScenarioError as e:
            raise ScenarioError(f"{key}.{e.key}", e.expected) from None

    @staticmethod
    def _stp_params(stp, key, nnz: int) -> tuple[stpmod.STPParams, bool]:
        """(parameters, per_synapse): shared scalars, or per-synapse arrays of length ``nnz``."""
        if isinstance(stp, stpmod.STPParams):
            stp = stp._asdict()
        elif isinstance(stp, str):
            return stpmod.preset(stp, key=key), False
        if isinstance(stp, dict):
            stp = dict(stp)
            arrays = {k: v for k, v in stp.items() if np.ndim(v) > 0}
            scalars = {k: v for k, v in stp.items() if k not in arrays and k != "preset"}
            base = (stpmod.preset(stp["preset"], key=key, **scalars) if "preset" in stp
                    else stpmod.make_params(key=key, **scalars))
            if not arrays:
                return base, False
            fields = {}
            for name in stpmod.STPParams._fields:
                if name not in arrays:
                    value = getattr(base, name)
                    fields[name] = np.full(nnz, value, dtype=np.int64 if name == "variant" else np.float64)
                    continue
                values = np.asarray(arrays.pop(name))
                if values.shape != (nnz,):
                    raise ScenarioError(f"{key}.{name}", f"expected a scalar or {nnz} values (one per "
                                        f"synapse, CSR order), got shape {values.shape}")
                # validate every distinct value with the scalar rules
                for v in np.unique(values):
                    stpmod.make_params(base, key=key, **{name: v.item()})
                fields[name] = values.astype(np.int64 if name == "variant" else np.float64)
            if arrays:
                bad = next(iter(arrays))
                raise ScenarioError(f"{key}.{bad}", f"unknown STP parameter; allowed: "
                                    f"{', '.join(stpmod.STPParams._fields)}")
            return stpmod.STPParams(**fields), True
        raise ScenarioError(key, f"expected a preset name ({', '.join(stpmod.PRESETS)}) or a table, got {stp!r}")

    # ------------------------------------------------------------------ inputs
    def poisson_input(self, pop, channel: str, n_sources: int, rate: float, weight: float,
                      name: str | None = None) -> PoissonInput:
        """Independent Poisson drive per neuron: ``n_sources`` inputs at ``rate`` Hz, each
        spike adding ``weight`` to ``channel``; drawn as one Poisson(n_sources·rate·dt) count
        per neuron per step."""
        p = self._pop(pop, "inputs.target")
        name = self._unique(name or f"poisson:{p.name}:{channel}", "inputs.name")
        key = f"inputs.{name}"
        if not p.is_model or channel not in p.channels:
            raise ScenarioError(f"{key}.channel", f"expected a channel of population {p.name!r}: "
                                f"{', '.join(p.channels) or 'none (spike source)'}; got {channel!r}")
        rate = _q(rate, "Hz", f"{key}.rate")
        weight = self._weight(weight, p, channel, f"{key}.weight")
        if isinstance(n_sources, bool) or not isinstance(n_sources, (int, np.integer)) or n_sources < 0:
            raise ScenarioError(f"{key}.n_sources", f"expected a non-negative integer, got {n_sources!r}")
        if isinstance(rate, bool) or not (isinstance(rate, (int, float)) and rate >= 0 and math.isfinite(rate)):
            raise ScenarioError(f"{key}.rate", f"expected a finite rate >= 0 Hz, got {rate!r}")
        lam = n_sources * rate * self.dt / 1000.0
        if lam > R.MAX_LAMBDA:
            raise ScenarioError(f"{key}.rate", f"n_sources · rate · dt = {lam:g} spikes per step; "
                                f"at most {R.MAX_LAMBDA:g}")
        inp = PoissonInput(name=name, pop=p, channel=channel, n_sources=int(n_sources), rate=float(rate),
                           weight=float(weight), cdf=R.poisson_cdf(lam), key=R.stream_key(self.seed, f"poisson/{name}"))
        self.poisson_inputs.append(inp)
        self._changed()
        return inp

    def current(self, pop, compartment: str = "soma", bias=0.0, array=None, array_dt: float | None = None,
                name: str | None = None):
        """Inject current (pA) into ``compartment``: a constant ``bias`` (scalar or per neuron)
        and/or a time-varying ``array`` of shape (T,) (same for all neurons) or (T, n), one
        sample per ``array_dt`` ms (a multiple of dt) from t = 0, zero after its end."""
        p = self._pop(pop, "inputs.target")
        key = f"inputs.{name or 'current'}"
        if not p.is_model or compartment not in p.bias:
            raise ScenarioError(f"{key}.compartment", f"expected a compartment of population {p.name!r}: "
                                f"{', '.join(p.bias) or 'none (spike source)'}; got {compartment!r}")
        p.bias[compartment] += self._per_neuron(_q(bias, "pA", f"{key}.bias"), p.n, f"{key}.bias")
        if array is None:
            return None
        values = np.ascontiguousarray(array, dtype=np.float64)
        bad_shape = values.ndim not in (1, 2) or (values.ndim == 2 and values.shape[1] != p.n)
        if bad_shape or not np.all(np.isfinite(values)):
            raise ScenarioError(f"{key}.array", f"expected finite values of shape (T,) or (T, {p.n}), "
                                f"got {values.shape}")
        ratio = self._steps(self.dt if array_dt is None else array_dt, f"{key}.array_dt", minimum=1)
        inp = ArrayInput(name=self._unique(name or f"array:{p.name}:{compartment}:{len(self.array_inputs)}",
                                           "inputs.name"), pop=p, compartment=compartment, values=values, ratio=ratio)
        self.array_inputs.append(inp)
        self._changed()
        return inp

    # ------------------------------------------------------------------ monitors
    def spike_monitor(self, pop, neurons=None, events: bool = True, bursts: bool = True,
                      max_spikes: int = 50_000_000) -> SpikeMonitor:
        """Record spikes (and events and bursts, where tracked) of ``neurons`` (default all).

        Buffers grow as needed up to ``max_spikes`` records each (12 bytes per record); beyond
        that recording stops and the monitor reports ``truncated``.
        """
        p = self._pop(pop, "monitors.spikes")
        mask = np.zeros(p.n, dtype=np.bool_)
        if neurons is None:
            mask[:] = True
        else:
            mask[self._indices(neurons, p, "monitors.neurons")] = True
        mon = SpikeMonitor(p, mask, events and p.track_bursts, bursts and p.track_bursts, int(max_spikes),
                           self.dt)
        self.spike_monitors.append(mon)
        self._changed()
        return mon

    def state_monitor(self, pop, variables, neurons=None, every: float | None = None) -> StateMonitor:
        """Record ``variables`` (state variables, channels, drives ``I_<compartment>``,
        ``spike_rate``/``event_rate``/``burst_rate``/``burst_prob``) of ``neurons`` every
        ``every`` ms (default: every step). Values are those at the start of each recorded
        step (after arrivals)."""
        p = self._pop(pop, "monitors.state")
        if isinstance(variables, str):
            variables = [variables]
        names = p.variable_names()
        for v in variables:
            if v not in names:
                raise ScenarioError("monitors.state.variables", f"unknown variable {v!r} of population "
                                    f"{p.name!r}; expected some of {', '.join(names)}")
        idx = np.arange(p.n) if neurons is None else self._indices(neurons, p, "monitors.neurons")
        every_steps = 1 if every is None else self._steps(every, "monitors.every", minimum=1)
        mon = StateMonitor(p, list(variables), idx.astype(np.int64), every_steps, self.dt)
        self.state_monitors.append(mon)
        self._changed()
        return mon

    @staticmethod
    def _indices(neurons, pop, key) -> np.ndarray:
        idx = np.asarray(neurons).ravel()
        if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= pop.n:
            raise ScenarioError(key, f"expected neuron indices in [0, {pop.n}) of {pop.name!r}")
        return np.unique(idx).astype(np.int64)

    def memory_report(self, duration: float = 0.0) -> dict:
        """Bytes held by each monitor now, and what state monitors need for ``duration`` more ms."""
        out = {}
        for m in self.spike_monitors:
            out[m.label] = m.memory_bytes()
        for m in [*self.state_monitors, *self.weight_monitors]:
            out[m.label] = m.memory_bytes() + m.bytes_for(self.step, self._steps_for(duration))
        out["total"] = sum(out.values())
        return out

    def _steps_for(self, duration: float) -> int:
        return int(round(duration / self.dt)) if duration else 0

    # ------------------------------------------------------------------ learning
    def plasticity_hook(self, projection, rule, eta: float = 1.0, every: float = 10.0, modulator=None,
                        w_min: float = -np.inf, w_max: float = np.inf, key: str = "plasticity") -> ChunkRule:
        """Let ``rule`` (a :class:`~dendrite_sim.core.interfaces.LearningRule` with
        ``local_factors``) change the weights of ``projection`` every ``every`` ms: see
        :mod:`dendrite_sim.engine.learning`."""
        proj = projection if isinstance(projection, Projection) else self._projection(projection)
        from dendrite_sim.engine import learning

        for name, v in (("eta", eta), ("w_min", w_min), ("w_max", w_max)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise ScenarioError(f"{key}.{name}", f"expected a number, got {v!r}")
        if not w_min <= w_max:
            raise ScenarioError(f"{key}.w_max", f"expected w_max >= w_min = {w_min!r}, got {w_max!r}")
        every = _q(every, "ms", f"{key}.every")
        if not (isinstance(every, (int, float)) and every > 0):
            raise ScenarioError(f"{key}.every", f"expected a positive interval, got {every!r}")
        hook = ChunkRule(proj, rule, float(eta), self._steps(every, f"{key}.every", minimum=1),
                         modulator, float(w_min), float(w_max))
        learning.start_interval(self, hook)
        self.plasticity.append(hook)
        return hook

    def weight_monitor(self, projection, every: float, synapses=None) -> WeightMonitor:
        """Record the weights of ``projection`` (all synapses, or the CSR positions
        ``synapses``) every ``every`` ms, at t = 0, every, 2·every, ... (between chunks of the
        loop, so recording costs one copy per interval, not per step)."""
        proj = projection if isinstance(projection, Projection) else self._projection(projection, "monitors.weights")
        if synapses is None:
            idx = np.arange(proj.conn.nnz, dtype=np.int64)
        else:
            idx = np.unique(np.asarray(synapses).ravel())
            if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= proj.conn.nnz:
                raise ScenarioError("monitors.weights.synapses", f"expected synapse positions in "
                                    f"[0, {proj.conn.nnz}) of {proj.name!r}")
        mon = WeightMonitor(proj, idx.astype(np.int64), self._steps(every, "monitors.weights.every", minimum=1),
                            self.dt)
        mon.record_due(self.step)
        self.weight_monitors.append(mon)
        return mon

    def _projection(self, name, key: str = "plasticity.projection") -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise ScenarioError(key, f"unknown projection {name!r}; projections: "
                            f"{', '.join(p.name for p in self.projections) or 'none'}")

    # ------------------------------------------------------------------ running
    def _prepare(self):
        """Allocate the delay rings (keeping pending arrivals) before a run."""
        need: dict[tuple[int, str], int] = {}
        for proj in self.projections:
            k = (proj.post.index, proj.channel)
            dmax = int(proj.conn.delays.max()) if proj.conn.nnz else 1
            need[k] = max(need.get(k, 1), dmax)
        for pop in self.pops.values():
            for ch in list(getattr(pop, "rings", ())):
                if (pop.index, ch) not in need:
                    del pop.rings[ch]
        for (pi, ch), dmax in need.items():
            pop = next(p for p in self.pops.values() if p.index == pi)
            L = dmax + 1
            old = pop.rings.get(ch)
            if old is None or old.shape[0] < L:
                ring = np.zeros((L, pop.n))
                if old is not None:                 # move pending arrivals to their new slots
                    for d in range(old.shape[0]):
                        ring[(self.step + d) % L] = old[(self.step + d) % old.shape[0]]
                pop.rings[ch] = ring

    def _backend(self):
        if self._backend_obj is None or self._backend_obj.version != self._structure_version:
            Impl = backend_class(self.backend)
            self._prepare()
            self._backend_obj = Impl(self)
            self._backend_obj.version = self._structure_version
        return self._backend_obj

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}: {p.n}" + (f" {p.model.registered_name}" if getattr(p, "model", None) else
                                                f" {type(p).__name__}") for p in self.pops.values())
        return (f"Network(dt={self.dt:g} ms, t={self.t:g} ms, backend={self.backend!r}, seed={self.seed}, "
                f"populations=[{pops}], projections={len(self.projections)}, "
                f"inputs={len(self.poisson_inputs) + len(self.array_inputs)}, "
                f"monitors={len(self.spike_monitors) + len(self.state_monitors) + len(self.weight_monitors)})")

    def _check_finite(self) -> None:
        """Stop with a :class:`~dendrite_sim.core.errors.DivergenceError` naming the population,
        the variable, a neuron and the time when a state variable or channel became NaN or
        infinite (checked once per ``run`` call, after the steps)."""
        from dendrite_sim.core.errors import DivergenceError

        for pop in self.pops.values():
            if not pop.is_model:
                continue
            for name, arr in (*pop.state.items(), *pop.channels.items()):
                if not np.isfinite(arr).all():
                    i = int(np.flatnonzero(~np.isfinite(arr))[0])
                    what = "NaN" if np.isnan(arr[i]) else "infinite"
                    raise DivergenceError(f"populations.{pop.name}.{name}",
                                          f"diverged: became {what} (neuron {i}) by t = {self.t:.6g} ms; "
                                          "expected finite values (a smaller dt, weaker weights or "
                                          "slower plasticity usually help)")

    def run(self, duration: float | str) -> Network:
        """Advance the network by ``duration`` ms (a multiple of dt, or a string such as
        ``"1 s"``); state carries over. A non-finite, negative or misaligned duration raises
        :class:`~dendrite_sim.core.errors.ArgumentError` naming ``duration``."""
        n_steps = self._steps(duration, "duration")
        if n_steps == 0:
            return self
        need = self.memory_report(duration)["total"]
        if need > self.max_monitor_bytes:
            raise ScenarioError("monitors", f"recording would need {need / 2**20:.0f} MiB, more than the "
                                f"{self.max_monitor_bytes / 2**20:.0f} MiB budget; record fewer neurons or "
                                "variables, or decimate (every)")
        backend = self._backend()
        for m in self.state_monitors:
            m.allocate(self.step, n_steps)
        from dendrite_sim.engine import learning

        end = self.step + n_steps
        while self.step < end:
            stop = learning.next_boundary(self, end)
            while self.step < stop:
                for m in self.spike_monitors:
                    m.ensure_capacity(self.step)
                done = backend.run_steps(self.step, stop - self.step)
                self.step += done
            learning.apply_due(self)
            for m in self.weight_monitors:
                m.record_due(self.step)
        for m in self.state_monitors:
            m.finish()
        self._check_finite()
        for m in self.spike_monitors:
            if m.truncated and not m.warned:
                warnings.warn(f"spike monitor {m.label} reached max_spikes; later spikes are not recorded",
                              stacklevel=2)
                m.warned = True
        return self
