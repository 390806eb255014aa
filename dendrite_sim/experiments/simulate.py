"""Experiment ``simulate``: run a spiking network described entirely in the scenario.

Sections::

    [simulation]   dt, duration, backend ("numba" | "numpy"), fastmath, transient
    [network]      populations, projections, inputs: the engine's network spec, documented in
                   :mod:`dendrite_sim.engine.spec` (schema, memory estimate, dry build)
    [monitors]     spikes (populations; default all), state (population → variables),
                   state_neurons, every, raster_neurons, max_spikes, weights (projection →
                   interval), weight_synapses

``[network] threads`` (``"auto"`` or a number) chooses the numba loop's threads (results are
bit-identical for every choice). ``[network.ensemble]`` (``seeds``, ``vary``, ``workers``; see
:mod:`dendrite_sim.engine.ensemble`) runs independent instances of the network, one per seed
and/or per value of the varied keys, on a pool of threads: ``instances/<k>/`` holds instance k's
data files (``spikes.npz``, ``traces.npz``, ``weights.npz``), the figures show instance 0, and
metrics.json adds ``instances`` (per instance: ``seed``, ``values``, ``populations``,
``projections``) and ``ensemble`` (``n_instances``, ``seeds``, ``vary``, per population the
``rate_hz`` and ``cv_isi`` mean, std, min and max); ``populations`` is instance 0's.

``dendrite-sim check`` validates everything ``run`` would refuse: the schema of every section,
the network's estimated memory (state, synapses, delay rings, monitors for the duration)
against this machine's available memory, and a dry build of the network and its state
monitors (every population, projection and input constructed, nothing run).

Quantities carry units ("0.1 ms", "210 pA", "5 Hz"); model parameters may be numbers in the
internal units (ms, mV, pA, nS, pF, Hz) or strings with units. A projection's ``plasticity``
(e.g. ``{rule = "stdp", preset = "visual_all_to_all"}``) changes its weights during the run;
the final weights are saved.

metrics.json keys (stable): ``populations.<name>`` → ``rate_hz`` (spikes per neuron per second
after ``transient``), ``cv_isi`` (mean CV of the inter-spike intervals over neurons with ≥ 3
spikes), ``event_rate_hz``, ``burst_rate_hz``, ``burst_fraction`` (bursts / events, online
detection: event = spike after > burst_window of silence, burst = second spike within it),
``n_spikes``; ``projections.<name>`` (projections with plasticity only) → ``n_synapses``,
``w_mean_initial``, ``w_mean``, ``w_std``, ``w_min``, ``w_max``; ``n_neurons``, ``n_synapses``,
``monitor_bytes`` (memory held by monitors), ``memory_estimate_bytes`` (the check's estimate);
``timing`` (every timing number, nowhere else) → ``build_s``, ``first_step_s`` (code generation
and compilation or cache load, plus the first step), ``run_s``, ``s_per_bio_s``, ``backend``.

Figures: ``raster.png`` (spikes of up to ``raster_neurons`` neurons per population; burst
onsets marked in red), ``traces.png`` (recorded state variables). Data: ``spikes.npz``
(``<pop>_t``, ``<pop>_i``, ``<pop>_burst_t``, ``<pop>_burst_i``, ``<pop>_event_t``,
``<pop>_event_i``; times in ms), ``traces.npz`` (``<pop>_<var>``, ``<pop>_t``) and, where a
projection has plasticity or ``monitors.weights`` names it, ``weights.npz`` (``<proj>_w`` final
and ``<proj>_w0`` initial weights, ``<proj>_pre``, ``<proj>_post``: one entry per synapse;
``<proj>_trace_t`` (ms), ``<proj>_trace_w`` (times × recorded synapses) and
``<proj>_trace_synapses`` (their CSR positions) for monitored projections).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import REQUIRED, Field, validate_section
from dendrite_sim.engine import spec as netspec
from dendrite_sim.engine.backends import BACKEND_NAMES

SIMULATION = {
    "dt": Field("quantity", "0.1 ms", "time step", dimension="time", lo=0.0, lo_open=True, hi=10.0),
    "duration": Field("quantity", REQUIRED, "simulated time", dimension="time", lo=0.0, lo_open=True),
    "backend": Field("str", "numba", "numba (fused compiled loop) or numpy (reference)",
                     choices=BACKEND_NAMES),
    "fastmath": Field("bool", False, "let Numba reorder floating-point operations (faster; results "
                      "no longer bit-identical to the numpy backend)"),
    "transient": Field("quantity", "0 ms", "initial time excluded from the metrics", dimension="time", lo=0.0),
}
NETWORK = netspec.NETWORK
MONITORS = {
    "spikes": Field("str_list", None, "populations whose spikes are recorded (default all)", nullable=True),
    "state": Field("table", {}, "population → list of variables to record"),
    "state_neurons": Field("int_list", [0, 1, 2], "neurons whose variables are recorded", lo=0),
    "every": Field("quantity", "0.5 ms", "recording interval of state variables", dimension="time",
                   lo=0.0, lo_open=True),
    "raster_neurons": Field("int", 200, "neurons per population shown in the raster", lo=1),
    "max_spikes": Field("int", 50_000_000, "cap on recorded spikes per population", lo=1),
    "weights": Field("table", {}, "projection → recording interval of its weights (e.g. \"10 ms\")"),
    "weight_synapses": Field("int", 1000, "synapses per projection recorded by weights (evenly spaced in "
                             "CSR order; all if fewer)", lo=1),
}

#: Mean rate assumed for the memory estimate of spike monitors (their buffers grow with the
#: spikes, up to max_spikes records of 12 bytes each for spikes, events and bursts).
ASSUMED_RATE_HZ = 20.0
#: Scenario key of each engine key of a monitor.
_MONITOR_KEYS = {"monitors.every": "monitors.every", "monitors.neurons": "monitors.state_neurons",
                 "monitors.weights.synapses": "monitors.weight_synapses"}


def _monitors(cfg: dict) -> dict:
    return cfg.get("monitors") or validate_section({}, MONITORS, "monitors")


def _check_simulation(sim: dict) -> None:
    for key in ("duration", "transient"):
        steps = sim[key] / sim["dt"]
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
            raise ScenarioError(f"simulation.{key}", f"expected a multiple of dt = {sim['dt']:g} ms, "
                                f"got {sim[key]:g} ms")
    if sim["transient"] >= sim["duration"]:
        raise ScenarioError("simulation.transient", f"expected less than the duration ({sim['duration']:g} ms), "
                            f"got {sim['transient']:g} ms")


def _check_monitors(monitors: dict, spec: netspec.NetworkSpec, sim: dict) -> None:
    pops = spec.populations
    for k, name in enumerate(monitors["spikes"] or []):
        if name not in pops:
            raise ScenarioError(f"monitors.spikes[{k}]", f"expected a population: {', '.join(pops)}; got {name!r}")
    for name, variables in monitors["state"].items():
        key = f"monitors.state.{name}"
        if name not in pops or pops[name]["type"] != "neurons":
            raise ScenarioError(key, f"expected a population of neurons: {', '.join(spec.neuron_populations())}")
        if isinstance(variables, str):
            variables = [variables]
            monitors["state"][name] = variables
        if not isinstance(variables, list) or not variables or not all(isinstance(v, str) for v in variables):
            raise ScenarioError(key, f"expected a list of variable names, got {variables!r}")
        for v in variables:
            if v not in pops[name]["variables"]:
                raise ScenarioError(key, f"expected some of {', '.join(pops[name]['variables'])}; "
                                    f"unknown variable {v!r}")
    steps = monitors["every"] / sim["dt"]
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise ScenarioError("monitors.every", f"expected a multiple of dt = {sim['dt']:g} ms, "
                            f"got {monitors['every']:g} ms")
    _weight_intervals(monitors, spec, sim)


def _weight_intervals(monitors: dict, spec: netspec.NetworkSpec, sim: dict) -> dict[str, float]:
    """``monitors.weights`` as projection → interval (ms), validated."""
    out = {}
    for name, every in monitors["weights"].items():
        key = f"monitors.weights.{name}"
        if name not in spec.projections:
            raise ScenarioError(key, f"expected a projection: {', '.join(spec.projections) or 'none'}")
        ms = Field("quantity", dimension="time", lo=0.0, lo_open=True).validate(every, key)
        steps = ms / sim["dt"]
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps) or round(steps) < 1:
            raise ScenarioError(key, f"expected a multiple of dt = {sim['dt']:g} ms, got {ms:g} ms")
        out[name] = ms
    return out


def _state_neurons(monitors: dict, n: int) -> list[int]:
    return sorted({k for k in monitors["state_neurons"] if k < n}) or [0]


def _monitor_bytes(monitors: dict, spec: netspec.NetworkSpec, sim: dict) -> tuple[dict[str, float], float]:
    """Estimated bytes of the monitors over the whole run, by part, and the bytes of the state
    records the engine counts against its monitor budget: ``monitors.state`` (preallocated per
    run call, then concatenated: twice the records) and ``monitors.spikes`` (initial buffers, or
    the spikes at :data:`ASSUMED_RATE_HZ` with the doubling slack, at most max_spikes)."""
    n_steps = int(round(sim["duration"] / sim["dt"]))
    every = max(1, int(round(monitors["every"] / sim["dt"])))
    records = -(-n_steps // every)
    state = sum(records * len(_state_neurons(monitors, spec.populations[name]["n"])) * len(v) * 8.0
                for name, v in monitors["state"].items())
    spikes = 0.0
    names = monitors["spikes"] if monitors["spikes"] is not None else list(spec.populations)
    for name in names:
        p = spec.populations[name]
        initial = min(monitors["max_spikes"], max(1024, 4 * p["n"]))
        expected = min(float(monitors["max_spikes"]), 2.0 * p["n"] * ASSUMED_RATE_HZ * sim["duration"] / 1000.0)
        buffers = 3 if p.get("bursts", False) else 1
        spikes += 12.0 * buffers * max(initial, expected)
    weights = 0.0
    for name, ms in _weight_intervals(monitors, spec, sim).items():
        nnz = netspec.expected_synapses(spec.projections[name], spec.populations)
        weights += 8.0 * min(float(monitors["weight_synapses"]), nnz) * (n_steps // int(round(ms / sim["dt"])) + 1)
    return {"monitors.state": 2.0 * state, "monitors.spikes": spikes, "monitors.weights": 2.0 * weights}, \
        state + weights


def _monitor_budget() -> float:
    """The engine's cap on monitor memory per run (``Network(max_monitor_bytes=...)``)."""
    from dendrite_sim.engine.network import Network

    try:
        default = inspect.signature(Network).parameters["max_monitor_bytes"].default
        return float(default)
    except (KeyError, TypeError, ValueError):
        return math.inf


def _add_monitors(net, spec: netspec.NetworkSpec, monitors: dict, sim: dict, spikes: bool = True):
    """``(spike_monitors, state_monitors, weight_monitors)`` of the scenario, added to ``net``."""
    spike_mons, state_mons, weight_mons = {}, {}, {}
    if spikes:
        for name in monitors["spikes"] if monitors["spikes"] is not None else list(spec.populations):
            with _monitor_keys("monitors.spikes"):
                spike_mons[name] = net.spike_monitor(name, max_spikes=monitors["max_spikes"])
    for name, variables in monitors["state"].items():
        neurons = _state_neurons(monitors, spec.populations[name]["n"])
        with _monitor_keys(f"monitors.state.{name}"):
            state_mons[name] = net.state_monitor(name, variables, neurons=neurons, every=monitors["every"])
    projections = _projections(net)
    for name, ms in _weight_intervals(monitors, spec, sim).items():
        nnz, cap = projections[name].conn.nnz, monitors["weight_synapses"]
        synapses = None if nnz <= cap else np.unique(np.linspace(0, nnz - 1, cap).round().astype(np.int64))
        with _monitor_keys(f"monitors.weights.{name}"):
            weight_mons[name] = net.weight_monitor(name, every=ms, synapses=synapses)
    return spike_mons, state_mons, weight_mons


@contextlib.contextmanager
def _monitor_keys(key: str):
    """Engine monitor errors under the scenario's key (``monitors.state.variables`` → ``monitors.state.<pop>``)."""
    try:
        yield
    except ScenarioError as e:
        raise ScenarioError(_MONITOR_KEYS.get(e.key, key), e.expected) from None


def build_network(spec: netspec.NetworkSpec, sim: dict, monitors: dict, seed: int):
    """``(net, spike_monitors, state_monitors, weight_monitors)``: the
    :class:`~dendrite_sim.engine.network.Network` of a parsed spec with the scenario's monitors."""
    net = netspec.build(spec, dt=sim["dt"], seed=seed, backend=sim["backend"], fastmath=sim["fastmath"])
    return (net, *_add_monitors(net, spec, monitors, sim))


def _check_runtime(spec: netspec.NetworkSpec, sim: dict) -> None:
    """Steps × neurons and the expected synaptic events against the runtime limit
    (:mod:`dendrite_sim.core.limits`; spikes at ``ASSUMED_RATE_HZ``)."""
    from dendrite_sim.core import limits

    steps = sim["duration"] / sim["dt"] * (spec.ensemble["n"] if spec.ensemble else 1)
    neurons = sum(float(p.get("n", 0)) for p in spec.populations.values())
    synapses = sum(float(netspec.expected_synapses(q, spec.populations)) for q in spec.projections.values())
    events = synapses * ASSUMED_RATE_HZ * sim["duration"] / 1000.0
    limits.check_runtime("simulation.duration", f"{steps:.3g} steps of {sim['dt']:g} ms × {neurons:.3g} neurons "
                         f"and {synapses:.3g} synapses", neuron_steps=steps * neurons, synaptic_events=events)


def check(cfg: dict, seed: int = 0, dry: bool = True) -> tuple[netspec.NetworkSpec, dict]:
    """Everything ``run`` refuses, refused before anything is built: the sections, then the
    memory estimate (network and monitors for the duration), then (``dry``) a dry build of the
    network and its state monitors. Returns the parsed spec and the memory estimate."""
    sim = cfg["simulation"]
    monitors = _monitors(cfg)
    _check_simulation(sim)
    spec = netspec.parse(cfg["network"], dt=sim["dt"])
    _check_monitors(monitors, spec, sim)
    extra, state_bytes = _monitor_bytes(monitors, spec, sim)
    budget = _monitor_budget()
    if state_bytes > budget:
        raise ScenarioError("monitors", f"expected state and weight monitors within the "
                            f"{netspec.format_bytes(budget)} budget; recording would need "
                            f"{netspec.format_bytes(state_bytes)}: record fewer neurons, variables or synapses, "
                            "or decimate (every)")
    estimate = netspec.estimate_memory(spec, extra=extra, backend=sim["backend"])
    if spec.ensemble:                                   # every instance holds its own network and monitors
        estimate = {k: v * spec.ensemble["n"] for k, v in estimate.items()}
    netspec.check_memory(estimate, key="network")
    _check_runtime(spec, sim)
    if not dry:
        return spec, estimate
    _, net = netspec.check(spec, dt=sim["dt"], seed=seed, backend=sim["backend"], fastmath=sim["fastmath"],
                           available=2**62)           # memory was checked above, with the monitors
    _add_monitors(net, spec, monitors, sim, spikes=False)
    return spec, estimate


@register("experiment", "simulate")
class Simulate(Experiment):
    """Run a spiking network described in the scenario (populations, projections, inputs, monitors)."""

    sections = {"simulation": SIMULATION, "network": NETWORK, "monitors": MONITORS}
    #: config.toml shows the defaults applied inside [network] too (every population,
    #: projection and input; model parameters and channel time constants)
    resolvers = {"network": netspec.resolved}

    def validate(self, cfg: dict) -> None:
        check(cfg)

    def run(self, cfg: dict, ctx) -> dict:
        sim = cfg["simulation"]
        monitors = _monitors(cfg)
        spec, estimate = check(cfg, ctx.seed, dry=False)   # load() ran the dry build
        if spec.ensemble:
            return run_ensemble(spec, sim, monitors, estimate, ctx)
        t0 = time.perf_counter()
        net, spike_mons, state_mons, weight_mons = build_network(spec, sim, monitors, ctx.seed)
        plastic = {name: p for name, p in _projections(net).items() if spec.projections[name]["plasticity"]}
        w0 = {name: p.conn.weights.copy() for name, p in plastic.items()}
        t1 = time.perf_counter()
        net.run(sim["dt"])                                   # compile (or load) and first step
        t2 = time.perf_counter()
        remaining = sim["duration"] - sim["dt"]
        steps_left = int(round(remaining / sim["dt"]))
        n_chunks = max(1, min(100, int(remaining // 100.0)))
        chunk_steps = steps_left // n_chunks
        for _ in ctx.progress(range(n_chunks), total=n_chunks, desc="simulate"):
            k = steps_left if _ == n_chunks - 1 else chunk_steps
            if k:
                net.run(k * sim["dt"])
            steps_left -= k
        t3 = time.perf_counter()
        metrics = {"populations": population_metrics(net, spike_mons, sim),
                   "n_neurons": int(sum(p.n for p in net.pops.values())),
                   "n_synapses": int(sum(p.conn.nnz for p in net.projections)),
                   "monitor_bytes": int(net.memory_report()["total"]),
                   "memory_estimate_bytes": int(estimate["total"]),
                   "timing": {"backend": sim["backend"], "build_s": round(t1 - t0, 4),
                              "first_step_s": round(t2 - t1, 4), "run_s": round(t3 - t2, 4),
                              "s_per_bio_s": round((t3 - t2) / (remaining / 1000.0), 4) if remaining > 0 else None}}
        if plastic:
            metrics["projections"] = {name: weight_metrics(w0[name], p.conn.weights) for name, p in plastic.items()}
        _save_outputs(ctx, "", spike_mons, state_mons, weight_mons, plastic, w0, monitors, sim)
        return metrics


def run_ensemble(spec: netspec.NetworkSpec, sim: dict, monitors: dict, estimate: dict, ctx) -> dict:
    """``[network.ensemble]``: every instance built and run as the scenario alone would run it
    (its seed, its ``vary`` values), the instances on a pool of threads
    (:mod:`dendrite_sim.engine.ensemble`). Run directory: ``instances/<k>/`` (k = 000, 001, ...)
    holds instance k's ``spikes.npz`` (and ``traces.npz``, ``weights.npz`` where recorded);
    ``raster.png`` / ``traces.png`` show instance 0. metrics.json: ``populations`` (instance 0, as
    a single run), ``instances`` (per instance: ``seed``, ``values``, ``populations``,
    ``projections``), ``ensemble`` (``n_instances``, ``seeds``, ``vary``: the varied keys, and
    per population the ``rate_hz``/``cv_isi`` mean, std, min, max over instances)."""
    from dendrite_sim.engine import ensemble as ensmod

    ens = spec.ensemble
    t0 = time.perf_counter()
    built = []
    for k, seed in enumerate(ens["seeds"]):
        spec_k = netspec.parse(ensmod.instance_table(spec.raw, ens, k), dt=sim["dt"])
        net, spike_mons, state_mons, weight_mons = build_network(spec_k, sim, monitors, seed)
        net.threads = 1                                      # parallel across instances
        plastic = {name: p for name, p in _projections(net).items() if spec_k.projections[name]["plasticity"]}
        built.append((net, spike_mons, state_mons, weight_mons, plastic,
                      {name: p.conn.weights.copy() for name, p in plastic.items()}))
    nets = [b[0] for b in built]
    t1 = time.perf_counter()
    ensmod.run_all(nets, sim["dt"], ens["workers"])         # compile (or load) and first step
    t2 = time.perf_counter()
    remaining = sim["duration"] - sim["dt"]
    if remaining > 1e-9:
        ensmod.run_all(nets, remaining, ens["workers"])
    t3 = time.perf_counter()
    instances = []
    for k, (net, spike_mons, state_mons, weight_mons, plastic, w0) in enumerate(built):
        folder = ctx.out / "instances" / f"{k:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        entry = {"seed": int(ens["seeds"][k]), "values": {p: v[k] for p, v in ens["vary"].items()},
                 "populations": population_metrics(net, spike_mons, sim)}
        if plastic:
            entry["projections"] = {name: weight_metrics(w0[name], p.conn.weights) for name, p in plastic.items()}
        instances.append(entry)
        _save_outputs(ctx, f"instances/{k:03d}/", spike_mons, state_mons, weight_mons, plastic, w0,
                      monitors, sim, figures=(k == 0))
    pops = {name: {m: ensmod.summary([inst["populations"][name].get(m) for inst in instances])
                   for m in ("rate_hz", "cv_isi")} for name in instances[0]["populations"]}
    net0 = nets[0]
    return {"populations": instances[0]["populations"], "instances": instances,
            "ensemble": {"n_instances": len(nets), "seeds": [int(s) for s in ens["seeds"]],
                         "vary": list(ens["vary"]), "populations": pops},
            "n_neurons": int(sum(p.n for p in net0.pops.values())),
            "n_synapses": int(sum(p.conn.nnz for p in net0.projections)),
            "monitor_bytes": int(sum(n.memory_report()["total"] for n in nets)),
            "memory_estimate_bytes": int(estimate["total"]),
            "timing": {"backend": sim["backend"], "build_s": round(t1 - t0, 4), "first_step_s": round(t2 - t1, 4),
                       "run_s": round(t3 - t2, 4), "instances": len(nets),
                       "workers": int(ens["workers"] or 0) or None,
                       "s_per_bio_s": round((t3 - t2) / (remaining / 1000.0), 4) if remaining > 0 else None}}


def _save_outputs(ctx, prefix: str, spike_mons, state_mons, weight_mons, plastic, w0, monitors, sim,
                  figures: bool = True) -> None:
    """One network's data files (``<prefix>spikes.npz``, ``traces.npz``, ``weights.npz``) and,
    with ``figures``, the run's ``raster.png`` / ``traces.png``."""
    weights = {}
    for name, p in plastic.items():
        weights.update({f"{name}_w": p.conn.weights, f"{name}_w0": w0[name],
                        f"{name}_pre": p.conn.pre_indices(), f"{name}_post": p.conn.indices})
    for name, m in weight_mons.items():
        weights.update({f"{name}_trace_t": m.t, f"{name}_trace_w": m.w, f"{name}_trace_synapses": m.synapses})
    if weights:
        ctx.save_npz(f"{prefix}weights", **weights)
    spikes = {}
    for name, m in spike_mons.items():
        spikes.update({f"{name}_t": m.t, f"{name}_i": m.i, f"{name}_event_t": m.event_t,
                       f"{name}_event_i": m.event_i, f"{name}_burst_t": m.burst_t, f"{name}_burst_i": m.burst_i})
    ctx.save_npz(f"{prefix}spikes", **spikes)
    if state_mons:
        traces = {}
        for name, m in state_mons.items():
            traces[f"{name}_t"] = m.t
            traces[f"{name}_neurons"] = m.idx
            for v in m.variables:
                traces[f"{name}_{v}"] = m[v]
        ctx.save_npz(f"{prefix}traces", **traces)
        if figures:
            ctx.save_figure(traces_figure(state_mons), "traces")
    if spike_mons and figures:
        ctx.save_figure(raster_figure(spike_mons, monitors["raster_neurons"], sim["duration"]), "raster")


def _projections(net) -> dict:
    """The network's projections by name."""
    return {p.name: p for p in net.projections}


def weight_metrics(w0: np.ndarray, w: np.ndarray) -> dict:
    """Summary of a plastic projection's weights before and after the run."""
    if w.size == 0:
        return {"n_synapses": 0}
    return {"n_synapses": int(w.size), "w_mean_initial": float(np.mean(w0)), "w_mean": float(np.mean(w)),
            "w_std": float(np.std(w)), "w_min": float(np.min(w)), "w_max": float(np.max(w))}


def population_metrics(net, spike_mons: dict, sim: dict) -> dict:
    """Rates, CV of ISIs, events, bursts per population (after the transient)."""
    from dendrite_sim.analysis.spike_stats import cv_isi

    span_s = (sim["duration"] - sim["transient"]) / 1000.0
    out = {}
    for name, pop in net.pops.items():
        m = spike_mons.get(name)
        if m is not None and not m.truncated:
            keep = m.t >= sim["transient"]
            n_spikes = int(keep.sum())
            trains = _trains(m.t[keep], m.i[keep], pop.n)
            cv = cv_isi(trains)
            n_events = int(np.sum(m.event_t >= sim["transient"])) if m.record_events else None
            n_bursts = int(np.sum(m.burst_t >= sim["transient"])) if m.record_bursts else None
        else:                       # no (complete) record: whole-run counts
            n_spikes = int(pop.spike_count.sum())
            cv = None
            n_events = int(pop.event_count.sum()) if pop.track_bursts else None
            n_bursts = int(pop.burst_count.sum()) if pop.track_bursts else None
            span_s = sim["duration"] / 1000.0
        entry = {"n": pop.n, "n_spikes": n_spikes, "rate_hz": n_spikes / pop.n / span_s,
                 "cv_isi": None if cv is None or not np.isfinite(cv) else float(cv)}
        if n_events is not None:
            entry.update(event_rate_hz=n_events / pop.n / span_s, burst_rate_hz=n_bursts / pop.n / span_s,
                         burst_fraction=n_bursts / n_events if n_events else None)
        out[name] = entry
    return out


def _trains(t, i, n):
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    bounds = np.searchsorted(i, np.arange(n + 1))
    return [t[bounds[k]:bounds[k + 1]] for k in range(n)]


def raster_figure(spike_mons: dict, max_neurons: int, duration: float):
    """Spikes (black) and burst onsets (red) of up to ``max_neurons`` neurons per population."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8.0, 1.2 + 1.8 * len(spike_mons)))
    axes = fig.subplots(len(spike_mons), 1, squeeze=False)[:, 0]
    any_bursts = False
    for ax, (name, m) in zip(axes, spike_mons.items()):
        sel = m.i < max_neurons
        ax.plot(m.t[sel], m.i[sel], "|k", ms=3, mew=0.6, rasterized=True, label="spike")
        bsel = m.burst_i < max_neurons if m.record_bursts else np.zeros(0, dtype=bool)
        if bsel.any():                           # a burst legend only where bursts are drawn
            any_bursts = True
            ax.plot(m.burst_t[bsel], m.burst_i[bsel], "|r", ms=6, mew=1.0, label="burst onset")
            ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=8)
        ax.set_xlim(0, duration)
        ax.set_ylim(-0.5, min(max_neurons, m.pop.n) - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{name}\nneuron")
    axes[-1].set_xlabel("time (ms)")
    fig.suptitle(f"Spikes of the first {max_neurons} neurons per population"
                 + (" (red: burst onsets)" if any_bursts else ""))
    return fig


def traces_figure(state_mons: dict):
    """Recorded variables of the first recorded neurons, one panel per (population, variable)."""
    from matplotlib.figure import Figure

    panels = [(name, m, v) for name, m in state_mons.items() for v in m.variables]
    fig = Figure(figsize=(8.0, 1.0 + 1.6 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    for row, (ax, (name, m, v)) in enumerate(zip(axes, panels)):
        values = m[v]
        for k in range(min(3, values.shape[1])):      # colour k = neuron k in every panel: one legend
            ax.plot(m.t, values[:, k], lw=0.8, color=f"C{k}", label=f"neuron {m.idx[k]}" if row == 0 else None)
        unit = getattr(getattr(m.pop, "model", None), "units", {}).get(v)
        ax.set_ylabel(f"{name}\n{v}" + (f" ({unit})" if unit and unit != "1" else ""))
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=8)
    axes[-1].set_xlabel("time (ms)")
    fig.suptitle("Recorded variables of the first recorded neurons")
    return fig
