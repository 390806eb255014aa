"""Experiment ``simulate``: run a spiking network described entirely in the scenario.

Sections::

    [simulation]   dt, duration, backend ("numba" | "numpy"), fastmath, transient
    [network.populations.<name>]   type = "neurons" (model, n, params, init, tau, channel_method,
                                    bursts, burst_window, tau_avg) | "poisson" (n, rate)
                                    | "spikes" (n, times, indices)
    [network.projections.<name>]   pre, post, channel, connectivity ("all_to_all",
                                    "fixed_probability" + p, "fixed_indegree" + k, "pairs" +
                                    pre_idx/post_idx), autapses, weight, delay, stp
    [network.inputs.<name>]        type = "poisson" (target, channel, n_sources, rate, weight)
                                    | "current" (target, compartment, bias, values, values_dt)
    [monitors]     spikes (populations; default all), state (population → variables),
                   state_neurons, every, raster_neurons, max_spikes

Quantities carry units ("0.1 ms", "210 pA", "5 Hz"); model parameters may be numbers in the
internal units (ms, mV, pA, nS, pF, Hz) or strings with units. Weights are currents (pA) for
current channels or conductances (nS) for conductance channels. ``stp`` is a preset name
(``depressing``, ``facilitating``, ``payeur_std``, ``payeur_stf``) or a table
``{preset = ..., U = ..., tau_D = "...", tau_F = "...", f = ..., variant = ...}``.

metrics.json keys (stable): ``populations.<name>`` → ``rate_hz`` (spikes per neuron per second
after ``transient``), ``cv_isi`` (mean CV of the inter-spike intervals over neurons with ≥ 3
spikes), ``event_rate_hz``, ``burst_rate_hz``, ``burst_fraction`` (bursts / events, online
detection: event = spike after > burst_window of silence, burst = second spike within it),
``n_spikes``; ``n_neurons``, ``n_synapses``, ``monitor_bytes`` (memory held by monitors),
``timing`` → ``build_s``, ``first_step_s`` (code generation and compilation or cache load,
plus the first step), ``run_s``, ``s_per_bio_s``, ``backend``.

Figures: ``raster.png`` (spikes of up to ``raster_neurons`` neurons per population; burst
onsets marked in red), ``traces.png`` (recorded state variables). Data: ``spikes.npz``
(``<pop>_t``, ``<pop>_i``, ``<pop>_burst_t``, ``<pop>_burst_i``, ``<pop>_event_t``,
``<pop>_event_i``; times in ms) and ``traces.npz`` (``<pop>_<var>``, ``<pop>_t``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import REQUIRED, Field, validate_section
from dendrite_sim.core.units import parse_quantity

SIMULATION = {
    "dt": Field("quantity", "0.1 ms", "time step", dimension="time", lo=0.0, lo_open=True, hi=10.0),
    "duration": Field("quantity", REQUIRED, "simulated time", dimension="time", lo=0.0, lo_open=True),
    "backend": Field("str", "numba", "numba (fused compiled loop) or numpy (reference)",
                     choices=("numba", "numpy")),
    "fastmath": Field("bool", False, "let Numba reorder floating-point operations (faster; results "
                      "no longer bit-identical to the numpy backend)"),
    "transient": Field("quantity", "0 ms", "initial time excluded from the metrics", dimension="time", lo=0.0),
}
NETWORK = {
    "populations": Field("table", REQUIRED, "population name → table"),
    "projections": Field("table", {}, "projection name → table"),
    "inputs": Field("table", {}, "input name → table"),
}
MONITORS = {
    "spikes": Field("str_list", None, "populations whose spikes are recorded (default all)", nullable=True),
    "state": Field("table", {}, "population → list of variables to record"),
    "state_neurons": Field("int_list", [0, 1, 2], "neurons whose variables are recorded", lo=0),
    "every": Field("quantity", "0.5 ms", "recording interval of state variables", dimension="time",
                   lo=0.0, lo_open=True),
    "raster_neurons": Field("int", 200, "neurons per population shown in the raster", lo=1),
    "max_spikes": Field("int", 50_000_000, "cap on recorded spikes per population", lo=1),
}

POP_NEURONS = {
    "type": Field("str", "neurons", choices=("neurons", "poisson", "spikes")),
    "model": Field("str", REQUIRED, "a registered neuron model"),
    "n": Field("int", REQUIRED, "number of neurons", lo=1),
    "params": Field("table", {}, "model parameters (numbers in internal units or strings with units)"),
    "init": Field("table", {}, "state variable → initial value"),
    "tau": Field("table", {}, "channel → decay time constant"),
    "channel_method": Field("str", "exact", "channel decay per step: exact exp(−dt/τ) or euler 1 − dt/τ",
                            choices=("exact", "euler")),
    "bursts": Field("bool", True, "track events, bursts and running rates"),
    "burst_window": Field("quantity", "16 ms", dimension="time", lo=0.0, lo_open=True),
    "tau_avg": Field("quantity", "1 s", "window of the running rates", dimension="time", lo=0.0, lo_open=True),
}
POP_POISSON = {
    "type": Field("str", REQUIRED, choices=("poisson",)),
    "n": Field("int", REQUIRED, lo=1),
    "rate": Field("quantity", REQUIRED, dimension="frequency", lo=0.0),
}
POP_SPIKES = {
    "type": Field("str", REQUIRED, choices=("spikes",)),
    "n": Field("int", REQUIRED, lo=1),
    "times": Field("quantity_list", REQUIRED, dimension="time", lo=0.0),
    "indices": Field("int_list", REQUIRED, lo=0),
}
PROJECTION = {
    "pre": Field("str", REQUIRED, "presynaptic population"),
    "post": Field("str", REQUIRED, "postsynaptic population"),
    "channel": Field("str", REQUIRED, "synaptic channel of the postsynaptic model"),
    "connectivity": Field("str", "all_to_all",
                          choices=("all_to_all", "fixed_probability", "fixed_indegree", "pairs")),
    "p": Field("float", None, "connection probability (fixed_probability)", lo=0.0, hi=1.0, nullable=True),
    "k": Field("int", None, "inputs per neuron (fixed_indegree)", lo=0, nullable=True),
    "autapses": Field("bool", True, "allow i → i when pre = post"),
    "pre_idx": Field("int_list", None, "presynaptic indices (pairs)", lo=0, nullable=True),
    "post_idx": Field("int_list", None, "postsynaptic indices (pairs)", lo=0, nullable=True),
    "weight": Field("str", REQUIRED, "a current (\"5 pA\") or a conductance (\"2 nS\")"),
    "delay": Field("quantity", None, "transmission delay, ≥ dt (default dt: next step)",
                   dimension="time", lo=0.0, lo_open=True, nullable=True),
    "stp": Field("str", None, "short-term plasticity preset (or a table, see the docs)", nullable=True),
    "stdp": Field("str", None, "spike-timing-dependent plasticity preset (or a table)", nullable=True),
}
INPUT_POISSON = {
    "type": Field("str", REQUIRED, choices=("poisson", "current")),
    "target": Field("str", REQUIRED, "population"),
    "channel": Field("str", REQUIRED, "synaptic channel"),
    "n_sources": Field("int", REQUIRED, "independent Poisson sources per neuron", lo=0),
    "rate": Field("quantity", REQUIRED, dimension="frequency", lo=0.0),
    "weight": Field("str", REQUIRED, "a current (\"100 pA\") or a conductance (\"1 nS\")"),
}
INPUT_CURRENT = {
    "type": Field("str", REQUIRED, choices=("poisson", "current")),
    "target": Field("str", REQUIRED, "population"),
    "compartment": Field("str", "soma"),
    "bias": Field("quantity", "0 pA", "constant current", dimension="current"),
    "values": Field("float_list", None, "time-varying current in pA, one value per values_dt", nullable=True),
    "values_dt": Field("quantity", None, "sampling interval of values", dimension="time", lo=0.0,
                       lo_open=True, nullable=True),
}


def _weight(value, key) -> float:
    """A synaptic weight: current (pA) or conductance (nS)."""
    if not isinstance(value, str):
        raise ScenarioError(key, f"expected a current (\"5 pA\") or a conductance (\"2 nS\") with units, got {value!r}")
    try:
        return parse_quantity(value, "current", key)
    except ScenarioError:
        pass
    try:
        return parse_quantity(value, "conductance", key)
    except ScenarioError:
        raise ScenarioError(key, f"expected a current (\"5 pA\") or a conductance (\"2 nS\"), got {value!r}") from None


def _table(value, key) -> Mapping:
    if not isinstance(value, Mapping):
        raise ScenarioError(key, f"expected a table, got {value!r}")
    return value


def parse_network(network: dict, dt: float) -> dict:
    """Validate ``[network]`` and resolve units; the result drives :func:`build_network`."""
    pops, projs, inputs = {}, {}, {}
    if not network["populations"]:
        raise ScenarioError("network.populations", "expected at least one population table")
    for name, raw in network["populations"].items():
        key = f"network.populations.{name}"
        raw = _table(raw, key)
        kind = raw.get("type", "neurons")
        schema = {"neurons": POP_NEURONS, "poisson": POP_POISSON, "spikes": POP_SPIKES}.get(kind)
        if schema is None:
            raise ScenarioError(f"{key}.type", f"expected one of 'neurons', 'poisson', 'spikes', got {kind!r}")
        spec = validate_section(raw, schema, key)
        spec["type"] = kind
        if kind == "neurons":
            cls = registry.get("neuron", spec["model"], f"{key}.model")
            # each value in the unit the model declares (strings with units are converted)
            resolved = cls.make_params(spec["params"], key=f"{key}.params")
            spec["params"] = {k: getattr(resolved, k) for k in spec["params"]}
            init = {}
            for var, v in spec["init"].items():
                if var not in cls.state_vars:
                    raise ScenarioError(f"{key}.init.{var}", f"expected a state variable of {spec['model']}: "
                                        f"{', '.join(cls.state_vars)}")
                init[var] = ([cls.quantity(var, x, f"{key}.init.{var}") for x in v] if isinstance(v, list)
                             else cls.quantity(var, v, f"{key}.init.{var}"))
            spec["init"] = init
            tau = {}
            for ch, v in spec["tau"].items():
                if ch not in cls.channels:
                    raise ScenarioError(f"{key}.tau.{ch}", f"expected a channel of {spec['model']}: "
                                        f"{', '.join(cls.channels)}")
                tau[ch] = parse_quantity(v, "time", f"{key}.tau.{ch}")
            spec["tau"] = tau
            spec["channels"] = list(cls.channels)
            spec["compartments"] = list(cls.compartments)
            spec["variables"] = [*cls.state_vars, *cls.channels, *(f"I_{c}" for c in cls.compartments),
                                 *(["spike_rate", "event_rate", "burst_rate", "burst_prob"] if spec["bursts"] else [])]
        elif kind == "spikes":
            if len(spec["times"]) != len(spec["indices"]):
                raise ScenarioError(f"{key}.indices", f"expected one index per spike time ({len(spec['times'])})")
            if spec["indices"] and max(spec["indices"]) >= spec["n"]:
                raise ScenarioError(f"{key}.indices", f"expected indices below n = {spec['n']}")
        pops[name] = spec
    for name, raw in network["projections"].items():
        key = f"network.projections.{name}"
        raw = dict(_table(raw, key))
        stp = raw.pop("stp", None)
        stdp = raw.pop("stdp", None)
        spec = validate_section(raw, PROJECTION, key)
        for end in ("pre", "post"):
            if spec[end] not in pops:
                raise ScenarioError(f"{key}.{end}", f"expected a population: {', '.join(pops)}; got {spec[end]!r}")
        post = pops[spec["post"]]
        if post["type"] != "neurons":
            raise ScenarioError(f"{key}.post", f"population {spec['post']!r} is a spike source, not neurons")
        if spec["channel"] not in post["channels"]:
            raise ScenarioError(f"{key}.channel", f"expected a channel of {post['model']}: "
                                f"{', '.join(post['channels'])}; got {spec['channel']!r}")
        need = {"fixed_probability": ("p",), "fixed_indegree": ("k",), "pairs": ("pre_idx", "post_idx")}
        for opt in need.get(spec["connectivity"], ()):
            if spec[opt] is None:
                raise ScenarioError(f"{key}.{opt}", f"missing; {spec['connectivity']} connectivity needs it")
        if not spec["autapses"] and pops[spec["pre"]]["n"] != post["n"]:
            raise ScenarioError(f"{key}.autapses", "autapses = false needs pre and post of the same size")
        spec["weight"] = _weight(spec["weight"], f"{key}.weight")
        if spec["delay"] is not None:
            steps = spec["delay"] / dt
            if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
                raise ScenarioError(f"{key}.delay", f"expected a multiple of dt = {dt:g} ms, at least dt")
        spec["stp"] = _plasticity("stp", stp, f"{key}.stp")
        spec["stdp"] = _plasticity("stdp", stdp, f"{key}.stdp")
        projs[name] = spec
    for name, raw in network["inputs"].items():
        key = f"network.inputs.{name}"
        raw = _table(raw, key)
        kind = raw.get("type")
        if kind not in ("poisson", "current"):
            raise ScenarioError(f"{key}.type", f"expected 'poisson' or 'current', got {kind!r}")
        spec = validate_section(raw, INPUT_POISSON if kind == "poisson" else INPUT_CURRENT, key)
        if spec["target"] not in pops or pops[spec["target"]]["type"] != "neurons":
            raise ScenarioError(f"{key}.target", f"expected a population of neurons: "
                                f"{', '.join(n for n, p in pops.items() if p['type'] == 'neurons')}")
        target = pops[spec["target"]]
        if kind == "poisson":
            if spec["channel"] not in target["channels"]:
                raise ScenarioError(f"{key}.channel", f"expected a channel of {target['model']}: "
                                    f"{', '.join(target['channels'])}; got {spec['channel']!r}")
            spec["weight"] = _weight(spec["weight"], f"{key}.weight")
        else:
            if spec["compartment"] not in target["compartments"]:
                raise ScenarioError(f"{key}.compartment", f"expected a compartment of {target['model']}: "
                                    f"{', '.join(target['compartments'])}; got {spec['compartment']!r}")
            if (spec["values"] is None) != (spec["values_dt"] is None):
                raise ScenarioError(f"{key}.values_dt", "values and values_dt go together")
        inputs[name] = spec
    return {"populations": pops, "projections": projs, "inputs": inputs}


def _plasticity(kind: str, value, key):
    """A preset name or a table (``preset`` plus overrides, or every field) of the ``stp`` or
    ``stdp`` module, validated there."""
    if value is None:
        return None
    import importlib

    mod = importlib.import_module(f"dendrite_sim.synapses.{kind}")
    if isinstance(value, str):
        return mod.preset(value, key=key)
    if isinstance(value, Mapping):
        value = dict(value)
        if "preset" in value:
            return mod.preset(value.pop("preset"), key=key, **value)
        return mod.make_params(key=key, **value)
    raise ScenarioError(key, f"expected a preset name or a table, got {value!r}")


def build_network(spec: dict, sim: dict, monitors: dict, seed: int):
    """A :class:`~dendrite_sim.engine.network.Network` with monitors from a parsed spec."""
    from dendrite_sim.engine.network import Network

    net = Network(dt=sim["dt"], seed=seed, backend=sim["backend"], fastmath=sim["fastmath"])
    for name, p in spec["populations"].items():
        if p["type"] == "neurons":
            net.population(name, p["n"], p["model"], params=p["params"], init=p["init"], tau=p["tau"],
                           channel_method=p["channel_method"], bursts=p["bursts"],
                           burst_window=p["burst_window"], tau_avg=p["tau_avg"])
        elif p["type"] == "poisson":
            net.poisson_group(name, p["n"], p["rate"])
        else:
            net.spike_generator(name, p["n"], p["times"], p["indices"])
    for name, q in spec["projections"].items():
        kw = {k: q[k] for k in ("p", "k", "pre_idx", "post_idx") if q[k] is not None}
        if q["connectivity"] != "pairs":
            kw["autapses"] = q["autapses"]
        net.projection(q["pre"], q["post"], q["channel"], q["connectivity"], weight=q["weight"],
                       delay=q["delay"], stp=q["stp"], stdp=q["stdp"], name=name, **kw)
    for name, i in spec["inputs"].items():
        if i["type"] == "poisson":
            net.poisson_input(i["target"], i["channel"], i["n_sources"], i["rate"], i["weight"], name=name)
        else:
            net.current(i["target"], i["compartment"], bias=i["bias"],
                        array=None if i["values"] is None else np.asarray(i["values"], dtype=float),
                        array_dt=i["values_dt"], name=name)
    spike_mons = {}
    for name in monitors["spikes"] if monitors["spikes"] is not None else list(spec["populations"]):
        spike_mons[name] = net.spike_monitor(name, max_spikes=monitors["max_spikes"])
    state_mons = {}
    for name, variables in monitors["state"].items():
        n = spec["populations"][name]["n"]
        neurons = [k for k in monitors["state_neurons"] if k < n] or [0]
        state_mons[name] = net.state_monitor(name, variables, neurons=neurons, every=monitors["every"])
    return net, spike_mons, state_mons


def _check_monitors(monitors: dict, spec: dict, sim: dict) -> None:
    pops = spec["populations"]
    for k, name in enumerate(monitors["spikes"] or []):
        if name not in pops:
            raise ScenarioError(f"monitors.spikes[{k}]", f"expected a population: {', '.join(pops)}; got {name!r}")
    for name, variables in monitors["state"].items():
        key = f"monitors.state.{name}"
        if name not in pops or pops[name]["type"] != "neurons":
            raise ScenarioError(key, f"expected a population of neurons: "
                                f"{', '.join(n for n, p in pops.items() if p['type'] == 'neurons')}")
        if isinstance(variables, str):
            variables = [variables]
            monitors["state"][name] = variables
        if not isinstance(variables, list) or not variables:
            raise ScenarioError(key, "expected a list of variable names")
        for v in variables:
            if v not in pops[name]["variables"]:
                raise ScenarioError(key, f"unknown variable {v!r}; expected some of "
                                    f"{', '.join(pops[name]['variables'])}")
    steps = monitors["every"] / sim["dt"]
    if abs(steps - round(steps)) > 1e-6:
        raise ScenarioError("monitors.every", f"expected a multiple of dt = {sim['dt']:g} ms")
    for key in ("duration", "transient"):
        steps = sim[key] / sim["dt"]
        if abs(steps - round(steps)) > 1e-6:
            raise ScenarioError(f"simulation.{key}", f"expected a multiple of dt = {sim['dt']:g} ms")
    if sim["transient"] >= sim["duration"]:
        raise ScenarioError("simulation.transient", "expected less than the duration")


@register("experiment", "simulate")
class Simulate(Experiment):
    """Run a spiking network described in the scenario (populations, projections, inputs, monitors)."""

    sections = {"simulation": SIMULATION, "network": NETWORK, "monitors": MONITORS}

    def validate(self, cfg: dict) -> None:
        sim = cfg["simulation"]
        spec = parse_network(cfg["network"], sim["dt"])
        _check_monitors(cfg.get("monitors") or validate_section({}, MONITORS, "monitors"), spec, sim)

    def run(self, cfg: dict, ctx) -> dict:
        sim = cfg["simulation"]
        monitors = cfg.get("monitors") or validate_section({}, MONITORS, "monitors")
        spec = parse_network(cfg["network"], sim["dt"])
        _check_monitors(monitors, spec, sim)
        t0 = time.perf_counter()
        net, spike_mons, state_mons = build_network(spec, sim, monitors, ctx.seed)
        t1 = time.perf_counter()
        net.run(sim["dt"])                                   # compile (or load) and first step
        t2 = time.perf_counter()
        remaining = sim["duration"] - sim["dt"]
        n_chunks = max(1, min(100, int(remaining // 100.0)))
        chunk_steps = int(round(remaining / sim["dt"])) // n_chunks
        steps_left = int(round(remaining / sim["dt"]))
        for _ in ctx.progress(range(n_chunks), total=n_chunks, desc="simulate"):
            k = steps_left if _ == n_chunks - 1 else chunk_steps
            if k:
                net.run(k * sim["dt"])
            steps_left -= k
        t3 = time.perf_counter()
        metrics = {"populations": population_metrics(net, spike_mons, sim), "timing": {
            "backend": sim["backend"], "build_s": round(t1 - t0, 4), "first_step_s": round(t2 - t1, 4),
            "run_s": round(t3 - t2, 4), "s_per_bio_s": round((t3 - t2) / (remaining / 1000.0), 4)
            if remaining > 0 else None},
            "n_neurons": int(sum(p.n for p in net.pops.values())),
            "n_synapses": int(sum(p.conn.nnz for p in net.projections)),
            "monitor_bytes": int(net.memory_report()["total"])}
        spikes = {}
        for name, m in spike_mons.items():
            spikes.update({f"{name}_t": m.t, f"{name}_i": m.i, f"{name}_event_t": m.event_t,
                           f"{name}_event_i": m.event_i, f"{name}_burst_t": m.burst_t, f"{name}_burst_i": m.burst_i})
        ctx.save_npz("spikes", **spikes)
        if state_mons:
            traces = {}
            for name, m in state_mons.items():
                traces[f"{name}_t"] = m.t
                traces[f"{name}_neurons"] = m.idx
                for v in m.variables:
                    traces[f"{name}_{v}"] = m[v]
            ctx.save_npz("traces", **traces)
            ctx.save_figure(traces_figure(state_mons), "traces")
        if spike_mons:
            ctx.save_figure(raster_figure(spike_mons, monitors["raster_neurons"], sim["duration"]), "raster")
        return metrics


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

    fig = Figure(figsize=(8.0, 1.2 + 1.8 * len(spike_mons)))
    axes = fig.subplots(len(spike_mons), 1, squeeze=False)[:, 0]
    for ax, (name, m) in zip(axes, spike_mons.items()):
        sel = m.i < max_neurons
        ax.plot(m.t[sel], m.i[sel], ".k", ms=1.5, mew=0, rasterized=True)
        if m.record_bursts:
            bsel = m.burst_i < max_neurons
            ax.plot(m.burst_t[bsel], m.burst_i[bsel], "|r", ms=4, label="burst")
            ax.legend(loc="upper right", frameon=False, fontsize=8)
        ax.set_xlim(0, duration)
        ax.set_ylim(-0.5, min(max_neurons, m.pop.n) - 0.5)
        ax.set_ylabel(f"{name}\nneuron")
    axes[-1].set_xlabel("time (ms)")
    return fig


def traces_figure(state_mons: dict):
    """Recorded variables of the first recorded neurons, one panel per (population, variable)."""
    from matplotlib.figure import Figure

    panels = [(name, m, v) for name, m in state_mons.items() for v in m.variables]
    fig = Figure(figsize=(8.0, 1.0 + 1.6 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (name, m, v) in zip(axes, panels):
        values = m[v]
        for k in range(min(3, values.shape[1])):
            ax.plot(m.t, values[:, k], lw=0.8, label=f"neuron {m.idx[k]}")
        ax.set_ylabel(f"{name}\n{v}")
    axes[0].legend(loc="upper right", frameon=False, fontsize=8)
    axes[-1].set_xlabel("time (ms)")
    return fig
