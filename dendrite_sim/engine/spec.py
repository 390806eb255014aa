"""The ``[network]`` spec: one schema for a spiking network written as tables, validated once.

A network is three tables of named entries (names are unique within each table)::

    [network.populations.<name>]   type = "neurons" (default): model, n, params, init, tau,
                                    channel_method, bursts, burst_window, tau_avg
                                  | "poisson": n, rate           (independent Poisson sources)
                                  | "spikes": n, times, indices  (a spike generator)
    [network.projections.<name>]   pre, post, channel, connectivity ("all_to_all",
                                    "fixed_probability" + p, "fixed_indegree" + k, "pairs" +
                                    pre_idx/post_idx), autapses, weight, delay, stp, plasticity
    [network.inputs.<name>]        type = "poisson": target, channel, n_sources, rate, weight
                                  | "current": target, compartment, bias, values, values_dt

Quantities carry units (``"0.1 ms"``, ``"210 pA"``, ``"5 Hz"``); model parameters and initial
values may be numbers in the model's own units or strings with units. Weights are currents
(pA) for current channels or conductances (nS) for conductance channels. ``stp`` is a preset
name of :mod:`dendrite_sim.synapses.stp` or a table ``{preset = ..., U = ..., tau_D = "...",
tau_F = "...", f = ..., variant = ...}``. ``plasticity`` is a registered synapse rule's name or
a table ``{rule = "...", <parameters>...}`` (e.g. ``{rule = "stdp", preset =
"visual_all_to_all"}``); it is handed unchanged to :meth:`Network.projection` (``plasticity=``),
which validates the rule's parameters.

Entry points:

* :func:`parse` — the schema: types, units, ranges, names that refer to each other, everything
  that can be judged from the tables and ``dt`` alone. Fast; builds nothing.
* :func:`estimate_memory` / :func:`check_memory` — the bytes the built network will hold
  (state arrays, synapses with their weights, indices, delays and STP/plasticity state, delay
  rings, the transient of the largest connectivity build, plus what the caller adds, e.g.
  monitors) against this machine's available memory.
* :func:`build` — the :class:`~dendrite_sim.engine.network.Network` (``dry=True``: every
  population, projection and input constructed through the same calls, with a one-synapse
  stand-in for projections of more than :data:`DRY_SYNAPSE_LIMIT` expected synapses; nothing is
  run). Errors the engine raises name its own keys (``inputs.drive.rate``); :func:`build`
  translates them into the scenario's (``network.inputs.drive.rate``).
* :func:`check` — parse, memory, dry build: what ``dendrite-sim check`` runs, so that anything
  ``run`` would refuse because of a user's value is refused before it starts.

Every problem is one :class:`~dendrite_sim.core.errors.ScenarioError` naming the scenario's key
path (``network.projections.rec.delay: expected a multiple of dt = 0.1 ms ...``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.schema import REQUIRED, Field, validate_section
from dendrite_sim.core.units import parse_quantity


# --------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class _ThreadsField(Field):
    """``threads``: ``"auto"`` or a number of threads (the numba loop; results do not depend on it)."""

    def describe(self) -> str:
        return "\"auto\" or a number of threads >= 1"

    def validate(self, value: Any, key: str) -> Any:
        if value is None or value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
            raise ScenarioError(key, f"expected \"auto\" or a number of threads in [1, 1024], got {value!r}")
        return value


NETWORK = {
    "populations": Field("table", REQUIRED, "population name → table"),
    "projections": Field("table", {}, "projection name → table"),
    "inputs": Field("table", {}, "input name → table"),
    "threads": _ThreadsField("str", None, "threads of the numba loop: \"auto\" (default: threaded for large "
                             "networks when cores are idle) or a number; results are bit-identical", nullable=True),
    "ensemble": Field("table", None, "independent instances: seeds = [...] and/or vary = {\"<dotted key>\" = "
                      "[one value per instance]}, workers (dendrite_sim.engine.ensemble)", nullable=True),
}
POP_NEURONS = {
    "type": Field("str", "neurons", choices=("neurons", "poisson", "spikes")),
    "model": Field("str", REQUIRED, "a registered neuron model"),
    "n": Field("int", REQUIRED, "number of neurons", lo=1),
    "params": Field("table", {}, "model parameters (numbers in internal units or strings with units)"),
    "init": Field("table", {}, "state variable → initial value (one, or one per neuron)"),
    "tau": Field("table", {}, "channel → decay time constant"),
    "channel_method": Field("str", "exact", "channel decay per step: exact exp(−dt/τ) or euler 1 − dt/τ",
                            choices=("exact", "euler")),
    "bursts": Field("bool", True, "track events, bursts and running rates"),
    "burst_window": Field("quantity", "16 ms", dimension="time", lo=0.0, lo_open=True),
    "tau_avg": Field("quantity", "1 s", "window of the running rates", dimension="time", lo=0.0, lo_open=True),
}
POP_POISSON = {
    "type": Field("str", REQUIRED, choices=("poisson",)),
    "n": Field("int", REQUIRED, "number of sources", lo=1),
    "rate": Field("quantity", REQUIRED, "rate of every source", dimension="frequency", lo=0.0),
}
POP_SPIKES = {
    "type": Field("str", REQUIRED, choices=("spikes",)),
    "n": Field("int", REQUIRED, "number of sources", lo=1),
    "times": Field("quantity_list", REQUIRED, "spike times", dimension="time", lo=0.0),
    "indices": Field("int_list", REQUIRED, "source of each spike", lo=0),
}
POPULATION_KINDS = {"neurons": POP_NEURONS, "poisson": POP_POISSON, "spikes": POP_SPIKES}
CONNECTIVITY = {"all_to_all": (), "fixed_probability": ("p",), "fixed_indegree": ("k",),
                "pairs": ("pre_idx", "post_idx")}
PROJECTION = {
    "pre": Field("str", REQUIRED, "presynaptic population"),
    "post": Field("str", REQUIRED, "postsynaptic population"),
    "channel": Field("str", REQUIRED, "synaptic channel of the postsynaptic model"),
    "connectivity": Field("str", "all_to_all", choices=tuple(CONNECTIVITY)),
    "p": Field("float", None, "connection probability (fixed_probability)", lo=0.0, hi=1.0, nullable=True),
    "k": Field("int", None, "inputs per neuron (fixed_indegree)", lo=0, nullable=True),
    "autapses": Field("bool", True, "allow i → i when pre = post"),
    "pre_idx": Field("int_list", None, "presynaptic indices (pairs)", lo=0, nullable=True),
    "post_idx": Field("int_list", None, "postsynaptic indices (pairs)", lo=0, nullable=True),
    "weight": Field("str", REQUIRED, "a current (\"5 pA\") or a conductance (\"2 nS\")"),
    "delay": Field("quantity", None, "transmission delay, a multiple of dt, ≥ dt (default dt: next step)",
                   dimension="time", lo=0.0, lo_open=True, nullable=True),
    "stp": Field("str", None, "short-term plasticity: a preset name or a table", nullable=True),
    "plasticity": Field("str", None, "a registered synapse rule's name or a table {rule = ..., ...}",
                        nullable=True),
}
INPUT_POISSON = {
    "type": Field("str", REQUIRED, choices=("poisson", "current")),
    "target": Field("str", REQUIRED, "population of neurons"),
    "channel": Field("str", REQUIRED, "synaptic channel"),
    "n_sources": Field("int", REQUIRED, "independent Poisson sources per neuron", lo=0),
    "rate": Field("quantity", REQUIRED, "rate of every source", dimension="frequency", lo=0.0),
    "weight": Field("str", REQUIRED, "a current (\"100 pA\") or a conductance (\"1 nS\")"),
}
INPUT_CURRENT = {
    "type": Field("str", REQUIRED, choices=("poisson", "current")),
    "target": Field("str", REQUIRED, "population of neurons"),
    "compartment": Field("str", "soma"),
    "bias": Field("quantity", "0 pA", "constant current", dimension="current"),
    "values": Field("float_list", None, "time-varying current in pA, one value per values_dt", nullable=True),
    "values_dt": Field("quantity", None, "sampling interval of values (a multiple of dt)", dimension="time",
                       lo=0.0, lo_open=True, nullable=True),
}
INPUT_KINDS = {"poisson": INPUT_POISSON, "current": INPUT_CURRENT}

#: The variables a state monitor may record besides a model's state variables and channels.
RATE_VARIABLES = ("spike_rate", "event_rate", "burst_rate", "burst_prob")

#: Keys of the engine that are not inside ``[network]``, as the default scenario keys.
OUTER_KEYS = {"dt": "simulation.dt", "backend": "simulation.backend", "fastmath": "simulation.fastmath",
              "duration": "simulation.duration"}


@dataclass
class NetworkSpec:
    """A validated ``[network]``: units resolved to internal floats (see :func:`parse`).

    ``populations``, ``projections``, ``inputs``: name → dict of the fields of the schema of its
    kind (``type`` always set). Populations of neurons also carry ``channels``,
    ``compartments`` and ``variables`` (what a state monitor may record); projections carry
    ``stp`` as :class:`~dendrite_sim.synapses.stp.STPParams` (or None) and ``plasticity`` as
    written (a name or a dict). ``dt`` (ms) is the step the values were checked against, ``key``
    the scenario key of the table.
    """

    populations: dict[str, dict]
    projections: dict[str, dict]
    inputs: dict[str, dict]
    dt: float
    key: str = "network"
    raw: dict = field(default_factory=dict, repr=False)
    threads: Any = None             # "auto" (None) or a number (the numba loop's threads)
    ensemble: dict | None = None    # dendrite_sim.engine.ensemble.parse_ensemble's result

    def neuron_populations(self) -> list[str]:
        return [n for n, p in self.populations.items() if p["type"] == "neurons"]

    def n_neurons(self) -> int:
        return sum(p["n"] for p in self.populations.values())


# --------------------------------------------------------------------------- ensembles
#: Most instances one ensemble may hold (each is a full network in memory).
MAX_INSTANCES = 4096
ENSEMBLE_KEYS = ("seeds", "vary", "workers")


def parse_ensemble(raw, network: Mapping, key: str = "network.ensemble", seed: int = 0) -> dict | None:
    """Validate a ``[network.ensemble]`` table against the ``[network]`` it belongs to.

    Returns ``None`` for no ensemble (``raw`` None or empty) or ``{"seeds": [...], "vary":
    {dotted key: [values]}, "workers": int | None, "n": B}``. Every problem is one
    :class:`ScenarioError` naming the key (``network.ensemble.seeds[2]``,
    ``network.ensemble.vary."projections.ee.weight"``)."""
    if raw is None or (isinstance(raw, Mapping) and not raw):
        return None
    if not isinstance(raw, Mapping):
        raise ScenarioError(key, f"expected a table with seeds and/or vary, got {raw!r}")
    for k in raw:
        if k not in ENSEMBLE_KEYS:
            raise ScenarioError(f"{key}.{k}", f"unknown key; allowed: {', '.join(ENSEMBLE_KEYS)}")
    seeds = raw.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds:
            raise ScenarioError(f"{key}.seeds", f"expected a non-empty list of integer seeds, got {seeds!r}")
        for i, s in enumerate(seeds):
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**63:
                raise ScenarioError(f"{key}.seeds[{i}]", f"expected an integer seed >= 0, got {s!r}")
    vary = raw.get("vary", {})
    if not isinstance(vary, Mapping):
        raise ScenarioError(f"{key}.vary", f"expected a table of dotted key → list of values, got {vary!r}")
    sizes = {}
    if seeds is not None:
        sizes["seeds"] = len(seeds)
    for path, values in vary.items():
        vkey = f'{key}.vary."{path}"'
        if not isinstance(values, list) or not values:
            raise ScenarioError(vkey, f"expected a list of values, one per instance, got {values!r}")
        _lookup(network, path, vkey)
        sizes[f'vary."{path}"'] = len(values)
    if not sizes:
        raise ScenarioError(key, "expected seeds (one instance per seed) and/or vary (values per instance)")
    n = next(iter(sizes.values()))
    for what, m in sizes.items():
        if m != n:
            first = next(iter(sizes))
            raise ScenarioError(f"{key}.{what}", f"expected {n} entries (as many as {first}), got {m}")
    if n > MAX_INSTANCES:
        raise ScenarioError(key, f"expected at most {MAX_INSTANCES} instances, got {n}")
    workers = raw.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ScenarioError(f"{key}.workers", f"expected a positive number of threads, got {workers!r}")
    return {"seeds": list(seeds) if seeds is not None else [int(seed)] * n,
            "vary": {p: list(v) for p, v in vary.items()}, "workers": workers, "n": n}


def _lookup(network: Mapping, path: str, key: str):
    """Check that dotted ``path`` names a field inside a population, projection or input."""
    parts = path.split(".") if isinstance(path, str) else []
    if len(parts) < 3 or parts[0] not in ("populations", "projections", "inputs"):
        raise ScenarioError(key, "expected a dotted key <populations|projections|inputs>.<name>.<field>[.<sub>], "
                            f"got {path!r}")
    node = network.get(parts[0], {})
    if not isinstance(node, Mapping) or parts[1] not in node:
        names = ", ".join(node) if isinstance(node, Mapping) else ""
        raise ScenarioError(key, f"expected one of the network's {parts[0]} ({names or 'none'}); got {parts[1]!r}")
    if parts[2] in ("type", "model", "pre", "post", "channel", "target", "connectivity"):
        raise ScenarioError(key, f"{parts[2]!r} changes the network's structure; expected a value "
                            "(a parameter, weight, rate, delay, initial state)")


def instance_table(network: Mapping, ensemble: dict, k: int) -> dict:
    """The ``[network]`` table of instance ``k``: ``vary``'s k-th values put at their keys, the
    ensemble key itself removed (an instance is a plain network)."""
    table = copy.deepcopy(dict(network))
    table.pop("ensemble", None)
    for path, values in ensemble["vary"].items():
        parts = path.split(".")
        node = table
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = copy.deepcopy(values[k])
    return table


# --------------------------------------------------------------------------- resolved
def _defaults(schema: Mapping[str, Field]) -> dict:
    return {k: copy.deepcopy(f.default) for k, f in schema.items() if not f.required and f.default is not None}


def resolved(network: Mapping) -> dict:
    """The ``[network]`` table as written into a run's ``config.toml``: the user's values plus
    every default — of each population (by its ``type``), projection and input, a neuron
    population's model parameters (the model's published defaults, numbers in the model's
    units) and its channels' time constants. Optional keys without a default (a projection's
    ``delay``, ``stp``, ``plasticity``) stay out. Call it on a table :func:`parse` accepted;
    it is idempotent, and the result parses to the same network."""
    out = copy.deepcopy(dict(network))
    out = {**_defaults(NETWORK), **out}
    pops = {}
    for name, raw in out["populations"].items():
        kind = raw.get("type", "neurons")
        entry = {**_defaults(POPULATION_KINDS[kind]), **raw}
        if kind == "neurons":
            cls = registry.get("neuron", raw["model"])
            entry["params"] = {**{k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                                  for k, v in cls.Params._field_defaults.items()},
                               **entry["params"]}
            entry["tau"] = {**{ch: f"{t:g} ms" for ch, t in cls.channels.items()}, **entry["tau"]}
        pops[name] = entry
    out["populations"] = pops
    out["projections"] = {name: {**_defaults(PROJECTION), **raw} for name, raw in out["projections"].items()}
    out["inputs"] = {name: {**_defaults(INPUT_KINDS[raw.get("type")]), **raw}
                     for name, raw in out["inputs"].items()}
    return out


# --------------------------------------------------------------------------- parse
def parse(network: Mapping, *, dt: float, key: str = "network") -> NetworkSpec:
    """Validate a ``[network]`` table against the schema and resolve its units.

    Raises :class:`ScenarioError` naming ``<key>.<table>.<name>.<field>`` for the first problem.
    """
    if isinstance(network, NetworkSpec):
        if network.dt == dt and network.key == key:
            return network
        network = network.raw
    network = _section(network, NETWORK, key)
    pops: dict[str, dict] = {}
    if not network["populations"]:
        raise ScenarioError(f"{key}.populations", "expected at least one population table")
    for name, raw in network["populations"].items():
        pops[name] = _population(name, raw, dt, f"{key}.populations.{name}")
    projs = {name: _projection(name, raw, pops, dt, f"{key}.projections.{name}")
             for name, raw in network["projections"].items()}
    inputs = {name: _input(name, raw, pops, dt, f"{key}.inputs.{name}")
              for name, raw in network["inputs"].items()}
    ens = None
    if network.get("ensemble"):
        ens = parse_ensemble(network["ensemble"], network, key=f"{key}.ensemble")
        for k in range(ens["n"] if ens["vary"] else 0):   # every instance must be a valid network
            try:
                parse(instance_table(network, ens, k), dt=dt, key=key)
            except ScenarioError as e:
                path = next((p for p in ens["vary"] if e.key.startswith(f"{key}.{p}")), None)
                where = f'vary."{path}"[{k}]' if path else f"vary (instance {k})"
                raise ScenarioError(f"{key}.ensemble.{where}", f"{e.expected} ({e.key})") from None
    return NetworkSpec(pops, projs, inputs, float(dt), key, raw=network, threads=network.get("threads"),
                       ensemble=ens)


def _section(raw, schema, key: str, ignore: tuple = ()) -> dict:
    """:func:`validate_section`, first refusing integers that TOML read as floats (``1e12``)."""
    if isinstance(raw, Mapping):
        for name, f in schema.items():
            value = raw.get(name)
            if f.kind == "int":
                _integral_float(value, f, f"{key}.{name}")
            elif f.kind == "int_list" and isinstance(value, list):
                for i, v in enumerate(value):
                    _integral_float(v, f, f"{key}.{name}[{i}]")
    return validate_section(raw, schema, key, ignore=ignore)


def _integral_float(value, f: Field, key: str) -> None:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        rng = f._range_text()
        raise ScenarioError(key, f"expected an integer{rng}, got {value:g}, a float (TOML reads 1e12 and "
                            f"10.0 as floats): write {int(value)}")


def _table(value, key: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ScenarioError(key, f"expected a table, got {value!r}")
    return value


def _multiple_of_dt(ms: float, dt: float, key: str, minimum: int = 0) -> int:
    steps = ms / dt
    n = int(round(steps))
    if abs(steps - n) > 1e-6 * max(1.0, abs(steps)) or n < minimum:
        least = f", at least {minimum * dt:g} ms" if minimum else ""
        raise ScenarioError(key, f"expected a multiple of dt = {dt:g} ms{least}, got {ms:g} ms")
    return n


def _weight(value, key: str, unit: str | None = None) -> float:
    """A synaptic weight: a current (pA) or a conductance (nS) — the channel's unit if it declares one."""
    dims = {"pA": ("current",), "nS": ("conductance",)}.get(unit, ("current", "conductance"))
    what = " or ".join({"current": "a current (\"5 pA\")", "conductance": "a conductance (\"2 nS\")"}[d]
                       for d in dims)
    if not isinstance(value, str):
        raise ScenarioError(key, f"expected {what} with units, got {value!r}")
    for dim in dims:
        try:
            return parse_quantity(value, dim, key)
        except ScenarioError:
            pass
    raise ScenarioError(key, f"expected {what}, got {value!r}")


def _population(name: str, raw, dt: float, key: str) -> dict:
    raw = _table(raw, key)
    kind = raw.get("type", "neurons")
    schema = POPULATION_KINDS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise ScenarioError(f"{key}.type", f"expected one of 'neurons', 'poisson', 'spikes', got {kind!r}")
    spec = _section(raw, schema, key)
    spec["type"] = kind
    n = spec["n"]
    if kind == "neurons":
        cls = registry.get("neuron", spec["model"], f"{key}.model")
        # each value in the unit the model declares (strings with units are converted); the
        # model's make_params checks names and physical ranges
        resolved = cls.make_params(spec["params"], key=f"{key}.params")
        spec["params"] = {k: getattr(resolved, k) for k in spec["params"]}
        init = {}
        for var, v in spec["init"].items():
            sub = f"{key}.init.{var}"
            if var not in cls.state_vars:
                raise ScenarioError(sub, f"expected a state variable of {spec['model']}: {', '.join(cls.state_vars)}")
            if isinstance(v, list):
                if len(v) != n:
                    raise ScenarioError(sub, f"expected one value or {n} values (one per neuron), got {len(v)}")
                init[var] = [cls.quantity(var, x, f"{sub}[{i}]") for i, x in enumerate(v)]
            else:
                init[var] = cls.quantity(var, v, sub)
        spec["init"] = init
        tau = {}
        for ch, v in spec["tau"].items():
            sub = f"{key}.tau.{ch}"
            if ch not in cls.channels:
                raise ScenarioError(sub, f"expected a channel of {spec['model']}: {', '.join(cls.channels)}")
            tau[ch] = Field("quantity", dimension="time", lo=0.0, lo_open=True).validate(v, sub)
            if spec["channel_method"] == "euler" and tau[ch] < dt:
                raise ScenarioError(sub, f"expected a time constant >= dt = {dt:g} ms with channel_method "
                                    f"= 'euler' (the factor 1 − dt/τ would be negative), got {tau[ch]:g} ms")
        if spec["channel_method"] == "euler":
            for ch, t in cls.channels.items():
                if ch not in tau and t < dt:
                    raise ScenarioError(f"{key}.channel_method", f"expected 'exact': the default τ of "
                                        f"{ch} ({t:g} ms) is below dt = {dt:g} ms")
        spec["tau"] = tau
        if spec["burst_window"] < dt:
            raise ScenarioError(f"{key}.burst_window", f"expected at least dt = {dt:g} ms, "
                                f"got {spec['burst_window']:g} ms")
        spec["channels"] = list(cls.channels)
        spec["channel_units"] = dict(getattr(cls, "channel_units", None) or {})
        spec["compartments"] = list(cls.compartments)
        spec["variables"] = [*cls.state_vars, *cls.channels, *(f"I_{c}" for c in cls.compartments),
                             *(RATE_VARIABLES if spec["bursts"] else ())]
        spec["n_state"] = len(cls.state_vars)
    elif kind == "poisson":
        if spec["rate"] * dt / 1000.0 > 1.0:
            raise ScenarioError(f"{key}.rate", f"expected a rate <= {1000.0 / dt:g} Hz (at most one spike per "
                                f"source per step of {dt:g} ms), got {spec['rate']:g} Hz")
    else:
        times, indices = spec["times"], spec["indices"]
        if len(times) != len(indices):
            raise ScenarioError(f"{key}.indices", f"expected one index per spike time ({len(times)}), "
                                f"got {len(indices)}")
        for i, j in enumerate(indices):
            if j >= n:
                raise ScenarioError(f"{key}.indices[{i}]", f"expected a source index below n = {n}, got {j}")
        if times:                   # two spikes of one source rounded to one step
            steps = np.rint(np.asarray(times) / dt).astype(np.int64)
            idx = np.asarray(indices, dtype=np.int64)
            order = np.lexsort((np.arange(idx.size), steps, idx))
            same = (np.diff(steps[order]) == 0) & (np.diff(idx[order]) == 0)
            if same.any():
                k = int(np.argmax(same))
                first, second = sorted((int(order[k]), int(order[k + 1])))
                raise ScenarioError(f"{key}.times[{second}]", f"expected at most one spike per source per step "
                                    f"of {dt:g} ms; source {indices[second]} also spikes at times[{first}]")
    return spec


def _projection(name: str, raw, pops: dict, dt: float, key: str) -> dict:
    raw = dict(_table(raw, key))
    if "stdp" in raw:
        raise ScenarioError(f"{key}.stdp", "unknown key; expected plasticity = \"stdp\" or plasticity = "
                            "{rule = \"stdp\", preset = \"...\", ...} (stdp was replaced by plasticity)")
    stp = raw.pop("stp", None)
    plasticity = raw.pop("plasticity", None)
    if not isinstance(raw.get("weight", ""), str):
        _weight(raw["weight"], f"{key}.weight")
    spec = _section(raw, PROJECTION, key)
    for end in ("pre", "post"):
        if spec[end] not in pops:
            raise ScenarioError(f"{key}.{end}", f"expected a population: {', '.join(pops)}; got {spec[end]!r}")
    pre, post = pops[spec["pre"]], pops[spec["post"]]
    if post["type"] != "neurons":
        raise ScenarioError(f"{key}.post", f"expected a population of neurons; {spec['post']!r} is a spike "
                            f"source ({post['type']}) and has no channels")
    if spec["channel"] not in post["channels"]:
        raise ScenarioError(f"{key}.channel", f"expected a channel of {post['model']}: "
                            f"{', '.join(post['channels'])}; got {spec['channel']!r}")
    kind = spec["connectivity"]
    needs = CONNECTIVITY[kind]
    for opt in needs:
        if spec[opt] is None:
            raise ScenarioError(f"{key}.{opt}", f"missing; expected it with {kind} connectivity")
    takes = (*needs, "autapses") if kind != "pairs" else needs
    for opt in ("p", "k", "pre_idx", "post_idx", "autapses"):
        if opt in raw and opt not in takes:
            raise ScenarioError(f"{key}.{opt}", f"expected only the options of {kind} connectivity "
                                f"({', '.join(takes) or 'none'}); {opt} belongs to another connectivity")
    n_pre, n_post = pre["n"], post["n"]
    if kind != "pairs" and not spec["autapses"] and n_pre != n_post:
        raise ScenarioError(f"{key}.autapses", f"expected true: autapses = false needs pre and post of the "
                            f"same size (got {n_pre} and {n_post})")
    if kind == "fixed_indegree":
        m = n_pre if spec["autapses"] else n_pre - 1
        if spec["k"] > m:
            raise ScenarioError(f"{key}.k", f"expected at most {m} inputs per neuron (the {n_pre} neurons of "
                                f"{spec['pre']!r}{'' if spec['autapses'] else ' without autapses'}), got {spec['k']}")
    if kind == "pairs":
        pre_idx, post_idx = spec["pre_idx"], spec["post_idx"]
        if len(pre_idx) != len(post_idx):
            raise ScenarioError(f"{key}.post_idx", f"expected one index per pre_idx ({len(pre_idx)}), "
                                f"got {len(post_idx)}")
        for opt, idx, n, pop in (("pre_idx", pre_idx, n_pre, spec["pre"]), ("post_idx", post_idx, n_post,
                                                                              spec["post"])):
            for i, j in enumerate(idx):
                if j >= n:
                    raise ScenarioError(f"{key}.{opt}[{i}]", f"expected a neuron index below {n} "
                                        f"(the size of {pop!r}), got {j}")
    spec["weight"] = _weight(spec["weight"], f"{key}.weight", post["channel_units"].get(spec["channel"]))
    if spec["delay"] is not None:
        _multiple_of_dt(spec["delay"], dt, f"{key}.delay", minimum=1)
    spec["stp"] = _stp(stp, f"{key}.stp")
    spec["plasticity"] = _plasticity(plasticity, f"{key}.plasticity")
    return spec


def _stp(value, key: str):
    """A preset name or a table (``preset`` plus overrides, or every field) of :mod:`..synapses.stp`."""
    if value is None:
        return None
    from dendrite_sim.synapses import stp

    if isinstance(value, str):
        return stp.preset(value, key=key)
    if isinstance(value, Mapping):
        value = dict(value)
        if "preset" in value:
            return stp.preset(value.pop("preset"), key=key, **value)
        return stp.make_params(key=key, **value)
    raise ScenarioError(key, f"expected a preset name ({', '.join(stp.PRESETS)}) or a table, got {value!r}")


def _plasticity(value, key: str):
    """A rule name or a ``{rule = ..., ...}`` table, passed unchanged to the engine (which checks
    the rule and its parameters)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ScenarioError(key, "expected a registered synapse rule's name, got ''")
        return value
    if isinstance(value, Mapping):
        rule = value.get("rule")
        if rule is None:
            raise ScenarioError(f"{key}.rule", "missing; expected the name of a registered synapse rule, "
                                "e.g. {rule = \"stdp\", preset = \"visual_all_to_all\"}")
        if not isinstance(rule, str) or not rule:
            raise ScenarioError(f"{key}.rule", f"expected the name of a registered synapse rule, got {rule!r}")
        return dict(value)
    raise ScenarioError(key, f"expected a rule name or a table {{rule = \"...\", ...}}, got {value!r}")


def _input(name: str, raw, pops: dict, dt: float, key: str) -> dict:
    raw = _table(raw, key)
    kind = raw.get("type")
    if kind is None:
        raise ScenarioError(f"{key}.type", "missing; expected 'poisson' or 'current'")
    if not isinstance(kind, str) or kind not in INPUT_KINDS:
        raise ScenarioError(f"{key}.type", f"expected 'poisson' or 'current', got {kind!r}")
    if kind == "poisson" and not isinstance(raw.get("weight", ""), str):
        _weight(raw["weight"], f"{key}.weight")
    spec = _section(raw, INPUT_KINDS[kind], key)
    neurons = [n for n, p in pops.items() if p["type"] == "neurons"]
    if spec["target"] not in neurons:
        raise ScenarioError(f"{key}.target", f"expected a population of neurons: {', '.join(neurons) or 'none'}; "
                            f"got {spec['target']!r}")
    target = pops[spec["target"]]
    if kind == "poisson":
        if spec["channel"] not in target["channels"]:
            raise ScenarioError(f"{key}.channel", f"expected a channel of {target['model']}: "
                                f"{', '.join(target['channels'])}; got {spec['channel']!r}")
        spec["weight"] = _weight(spec["weight"], f"{key}.weight", target["channel_units"].get(spec["channel"]))
        _poisson_count(spec, dt, key)
    else:
        if spec["compartment"] not in target["compartments"]:
            raise ScenarioError(f"{key}.compartment", f"expected a compartment of {target['model']}: "
                                f"{', '.join(target['compartments'])}; got {spec['compartment']!r}")
        if (spec["values"] is None) != (spec["values_dt"] is None):
            missing = "values_dt" if spec["values_dt"] is None else "values"
            raise ScenarioError(f"{key}.{missing}", "missing; expected values and values_dt together")
        if spec["values_dt"] is not None:
            _multiple_of_dt(spec["values_dt"], dt, f"{key}.values_dt", minimum=1)
            if not spec["values"]:
                raise ScenarioError(f"{key}.values", "expected at least one value")
    return spec


def _poisson_count(spec: dict, dt: float, key: str) -> None:
    """Each step draws one Poisson count of mean λ = n_sources · rate · dt per neuron; the engine's
    generator takes λ ≤ MAX_LAMBDA. Blame the rate where one source alone fires more than once per
    step (rate · dt > 1), otherwise the number of sources."""
    from dendrite_sim.engine.random import MAX_LAMBDA

    n, rate = spec["n_sources"], spec["rate"]
    per_source = rate * dt / 1000.0
    lam = n * per_source
    if lam <= MAX_LAMBDA:
        return
    if per_source > 1.0:
        raise ScenarioError(f"{key}.rate", f"expected a rate <= {1000.0 / dt:g} Hz (one spike per source per "
                            f"step of {dt:g} ms); n_sources · rate · dt = {lam:g} spikes per step, at most "
                            f"{MAX_LAMBDA:g}")
    most = math.floor(MAX_LAMBDA / per_source * (1 + 1e-12))
    raise ScenarioError(f"{key}.n_sources", f"expected at most {most} sources at {rate:g} Hz (n_sources · rate · "
                        f"dt <= {MAX_LAMBDA:g} spikes per step of {dt:g} ms), got {n} ({lam:g} per step)")


# --------------------------------------------------------------------------- memory
#: Bytes per synapse held by a projection: postsynaptic index (int32), weight (float64), delay (int32).
SYNAPSE_BYTES = 4 + 8 + 4
#: Peak extra bytes per synapse while a projection's connectivity is drawn (int64 keys, pre and
#: post arrays, weight and delay broadcasts; freed before the next projection). Measured with
#: tracemalloc: about 24 (sparse fixed_probability), 16 (all_to_all) and 37 (dense
#: fixed_probability, fixed_indegree with k close to n).
BUILD_BYTES_PER_SYNAPSE = 40
#: Bytes per synapse of a projection with a plasticity rule: the postsynaptic (CSC) view
#: (cached permutation and presynaptic index, int64 copies of both, the presynaptic index per
#: synapse) plus one float64 per synapse variable of the rule (added separately).
PLASTICITY_BYTES_PER_SYNAPSE = 8 + 4 + 8 + 8 + 8
#: Bytes per neuron of every population: spike flags, indices, counts, hashes, events, bursts, rates.
NEURON_BOOKKEEPING_BYTES = 1 + 8 + 8 + 8 + 8 + 8 + 3 * 8 + 2 * 8
#: Estimates above this fraction of the available memory are refused.
MEMORY_FRACTION = 0.85
#: Projections expected to hold more synapses than this are dry-built with a one-synapse stand-in.
DRY_SYNAPSE_LIMIT = 2_000_000


def expected_synapses(q: dict, pops: dict) -> float:
    """Expected number of synapses of a parsed projection (a float: may exceed int64)."""
    n_pre, n_post = pops[q["pre"]]["n"], pops[q["post"]]["n"]
    kind = q["connectivity"]
    if kind == "pairs":
        return float(len(q["pre_idx"]))
    if kind == "fixed_indegree":
        return float(q["k"]) * n_post
    m = n_post if q["autapses"] else n_post - 1
    return (q["p"] if kind == "fixed_probability" else 1.0) * float(n_pre) * m


def estimate_memory(spec: NetworkSpec, *, extra: Mapping[str, float] | None = None,
                    backend: str = "numba") -> dict[str, float]:
    """Estimated bytes of the built network by part (scenario key → bytes) and ``"total"``.

    Populations: every state variable, channel, drive and bias (float64 per neuron), the
    bookkeeping arrays, the schedule of spike generators. Projections: :data:`SYNAPSE_BYTES` per
    expected synapse, STP state per presynaptic neuron, plasticity state
    (:data:`PLASTICITY_BYTES_PER_SYNAPSE` per synapse plus a rule's declared per-synapse
    variables) and the delay ring of each (population, channel) with incoming projections:
    (longest delay in steps + 1) × n × 8 bytes, counted with the population. The largest
    projection also counts the transient of its connectivity draw
    (:data:`BUILD_BYTES_PER_SYNAPSE`). The numpy backend adds one temporary per state array.
    ``extra``: more parts (e.g. monitors for the duration) added as given.
    """
    key = spec.key
    out: dict[str, float] = {}
    for name, p in spec.populations.items():
        n = float(p["n"])
        b = NEURON_BOOKKEEPING_BYTES * n
        if p["type"] == "neurons":
            arrays = p["n_state"] + len(p["channels"]) + 2 * len(p["compartments"])
            b += 8 * arrays * n * (2 if backend == "numpy" else 1)
        elif p["type"] == "poisson":
            b += 8 * n
        else:
            b += 16 * len(p["times"])
        out[f"{key}.populations.{name}"] = b
    rings: dict[tuple[str, str], int] = {}
    largest, largest_key = 0.0, None
    for name, q in spec.projections.items():
        nnz = expected_synapses(q, spec.populations)
        if nnz > largest:
            largest, largest_key = nnz, f"{key}.projections.{name}"
        b = SYNAPSE_BYTES * nnz
        if q["stp"] is not None:
            b += 24 * spec.populations[q["pre"]]["n"]
        if q["plasticity"] is not None:
            syn_vars, pre_traces, post_traces = _rule_sizes(q["plasticity"])
            b += (PLASTICITY_BYTES_PER_SYNAPSE + 8 * syn_vars) * nnz
            b += 8.0 * (pre_traces * spec.populations[q["pre"]]["n"] + post_traces * spec.populations[q["post"]]["n"])
        out[f"{key}.projections.{name}"] = b
        steps = 1 if q["delay"] is None else int(round(q["delay"] / spec.dt))
        ring = (q["post"], q["channel"])
        rings[ring] = max(rings.get(ring, 1), steps)
    for (post, _channel), steps in rings.items():
        out[f"{key}.populations.{post}"] += 8.0 * (steps + 1) * spec.populations[post]["n"]
    for name, i in spec.inputs.items():
        if i["type"] == "current" and i["values"] is not None:
            out[f"{key}.inputs.{name}"] = 8.0 * len(i["values"])
    if largest_key is not None:         # the transient of drawing the largest connectivity
        out[largest_key] += BUILD_BYTES_PER_SYNAPSE * largest
    for k, v in (extra or {}).items():
        out[k] = out.get(k, 0.0) + float(v)
    out["total"] = float(sum(out.values()))
    return out


def _rule_sizes(plasticity) -> tuple[int, int, int]:
    """(per-synapse variables, presynaptic traces, postsynaptic traces) a registered synapse rule
    declares; (0, 2, 2) where the rule is unknown here (the engine refuses it at the dry build)."""
    name = plasticity if isinstance(plasticity, str) else plasticity.get("rule")
    try:
        cls = registry.available("rule").get(name)
    except Exception:               # a registry that can't list rules: assume a pair rule
        cls = None
    if cls is None:
        return 0, 2, 2
    return tuple(len(getattr(cls, attr, None) or ()) for attr in ("synapse_vars", "pre_traces", "post_traces"))


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable (or physical pages free), bounded by a
    cgroup v2/v1 limit when one is set; ``DENDRITE_SIM_MEMORY`` (bytes, or with a K/M/G/T suffix)
    overrides. None where nothing can be read."""
    env = os.environ.get("DENDRITE_SIM_MEMORY")
    if env:
        return _bytes_from_text(env)
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_path) as f:
                limit = f.read().strip()
            with open(usage_path) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            avail = min(avail, max(0, int(limit) - usage))
    return avail


def _bytes_from_text(text: str) -> int | None:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1:], 1)
    try:
        return int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        return None


def format_bytes(n: float) -> str:
    """``7.3 TiB``, ``21 GiB``, ``512 B``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    k = 0
    while n >= 1024 and k < len(units) - 1:
        n /= 1024.0
        k += 1
    return f"{n:.0f} {units[k]}" if n >= 10 or k == 0 else f"{n:.1f} {units[k]}"


def check_memory(estimate: Mapping[str, float], *, key: str = "network", available: int | None = None) -> None:
    """Refuse an :func:`estimate_memory` above :data:`MEMORY_FRACTION` of the available memory."""
    if available is None:
        available = available_memory()
    if available is None:
        return
    total = estimate["total"]
    if total <= MEMORY_FRACTION * available:
        return
    part, most = max(((k, v) for k, v in estimate.items() if k != "total"), key=lambda kv: kv[1])
    raise ScenarioError(key, f"needs an estimated {format_bytes(total)} of memory (largest part {part}: "
                        f"{format_bytes(most)}); this machine has {format_bytes(available)} available; expected "
                        f"at most {format_bytes(MEMORY_FRACTION * available)}")


# --------------------------------------------------------------------------- build
@contextlib.contextmanager
def scenario_keys(key: str = "network", outer: Mapping[str, str] | None = None,
                  component: str | None = None, rename: Mapping[str, str] | None = None) -> Iterator[None]:
    """Re-raise the engine's :class:`ScenarioError` under the scenario's key path.

    ``populations.pyr.n`` → ``<key>.populations.pyr.n``; a key of ``outer`` (``dt``,
    ``backend``, ...) → its scenario key; ``rename`` maps the engine's field names right under
    the component to the scenario's (``inputs.dend.array_dt`` → ``network.inputs.dend.values_dt``);
    anything else (an engine key outside ``component``) → ``component`` (the table being built),
    the engine's key kept in the message.
    """
    try:
        yield
    except ScenarioError as e:
        raise ScenarioError(*_translate(e.key, e.expected, key, outer, component, rename)) from None


def _translate(ekey: str, expected: str, key: str, outer, component, rename) -> tuple[str, str]:
    outer = OUTER_KEYS if outer is None else outer
    if ekey.split(".")[0] in ("populations", "projections", "inputs") and ekey.count(".") >= 1:
        parts = ekey.split(".")
        scen = f"{key}.{ekey}"
        if component is None or scen == component or scen.startswith(component + "."):
            if rename and len(parts) >= 3 and parts[2] in rename:
                parts[2] = rename[parts[2]]
                scen = f"{key}." + ".".join(parts)
            return scen, expected
    if ekey in outer:
        return outer[ekey], expected
    if ekey.startswith(key + ".") or ekey == key:
        return ekey, expected
    return (component or key), f"{expected} ({ekey})"


def build(network, *, dt: float, seed: int = 0, backend: str = "numba", fastmath: bool = False,
          key: str = "network", outer: Mapping[str, str] | None = None, dry: bool = False,
          **network_kwargs: Any):
    """The :class:`~dendrite_sim.engine.network.Network` of a ``[network]`` table (or a
    :class:`NetworkSpec` from :func:`parse`), with every population, projection and input.

    ``dt`` (ms), ``seed``, ``backend``, ``fastmath`` and ``network_kwargs`` (e.g.
    ``max_monitor_bytes``) go to :class:`Network`; ``outer`` maps the engine's keys of those
    arguments to scenario keys (default :data:`OUTER_KEYS`). ``dry=True`` replaces the
    connectivity of projections of more than :data:`DRY_SYNAPSE_LIMIT` expected synapses by one
    synapse with the same weight and delay (every other check runs unchanged); such a network is
    for validation only. Monitors are the caller's: ``net.spike_monitor``, ``net.state_monitor``.
    """
    from dendrite_sim.engine.network import Network
    from dendrite_sim.synapses import connectivity as C

    spec = parse(network, dt=dt, key=key)
    if spec.threads is not None and "threads" not in network_kwargs:
        network_kwargs["threads"] = spec.threads
    with scenario_keys(key, {**(OUTER_KEYS if outer is None else outer), "threads": f"{key}.threads"}):
        net = Network(dt=dt, seed=seed, backend=backend, fastmath=fastmath, **network_kwargs)
    for name, p in spec.populations.items():
        with scenario_keys(key, outer, component=f"{key}.populations.{name}"):
            if p["type"] == "neurons":
                net.population(name, p["n"], p["model"], params=p["params"],
                               init={v: np.asarray(x, dtype=float) for v, x in p["init"].items()},
                               tau=p["tau"], channel_method=p["channel_method"], bursts=p["bursts"],
                               burst_window=p["burst_window"], tau_avg=p["tau_avg"])
            elif p["type"] == "poisson":
                net.poisson_group(name, p["n"], p["rate"])
            else:
                net.spike_generator(name, p["n"], p["times"], p["indices"])
    for name, q in spec.projections.items():
        comp = f"{key}.projections.{name}"
        kw = {k: q[k] for k in ("p", "k", "pre_idx", "post_idx") if q[k] is not None}
        if q["connectivity"] != "pairs":
            kw["autapses"] = q["autapses"]
        connectivity = q["connectivity"]
        if dry and expected_synapses(q, spec.populations) > DRY_SYNAPSE_LIMIT:
            n_pre, n_post = spec.populations[q["pre"]]["n"], spec.populations[q["post"]]["n"]
            connectivity, kw = C.from_coo(n_pre, n_post, [0], [min(1, n_post - 1)]), {}
        if q["plasticity"] is not None:
            kw["plasticity"] = q["plasticity"] if isinstance(q["plasticity"], str) else dict(q["plasticity"])
        rename = {"pre": "pre_idx", "post": "post_idx", "pairs": "post_idx"} if q["connectivity"] == "pairs" else None
        with scenario_keys(key, outer, component=comp, rename=rename):
            net.projection(q["pre"], q["post"], q["channel"], connectivity, weight=q["weight"],
                           delay=q["delay"], stp=q["stp"], name=name, **kw)
    for name, i in spec.inputs.items():
        comp = f"{key}.inputs.{name}"
        with scenario_keys(key, outer, component=comp, rename={"array": "values", "array_dt": "values_dt"}):
            if i["type"] == "poisson":
                net.poisson_input(i["target"], i["channel"], i["n_sources"], i["rate"], i["weight"], name=name)
            else:
                net.current(i["target"], i["compartment"], bias=i["bias"],
                            array=None if i["values"] is None else np.asarray(i["values"], dtype=float),
                            array_dt=i["values_dt"], name=name)
    return net


def check(network, *, dt: float, seed: int = 0, backend: str = "numba", fastmath: bool = False,
          key: str = "network", outer: Mapping[str, str] | None = None,
          extra_bytes: Mapping[str, float] | None = None, available: int | None = None,
          **network_kwargs: Any):
    """Everything ``run`` would refuse, refused now: :func:`parse`, :func:`estimate_memory`
    (plus ``extra_bytes``, e.g. monitors) against :func:`available_memory` (or ``available``),
    then a dry :func:`build`. Returns ``(spec, net)``; ``net`` is for validation only (add the
    caller's monitors to it to check them; don't run it)."""
    spec = parse(network, dt=dt, key=key)
    check_memory(estimate_memory(spec, extra=extra_bytes, backend=backend), key=key, available=available)
    net = build(spec, dt=dt, seed=seed, backend=backend, fastmath=fastmath, key=key, outer=outer, dry=True,
                **network_kwargs)
    return spec, net


def generated_key(key: str, expected: str, fields: dict, prefixes: dict,
                  where: str = "the generated network") -> tuple[str, str]:
    """``(key, expected)`` of an error in a ``[network]`` table that an experiment generated from
    its own parameters, as the experiment's scenario key: ``fields`` maps exact generated keys to
    scenario keys; ``prefixes`` maps a generated prefix to the scenario key that owns it (a
    prefix ending in ``.params`` keeps the parameter's name: ``….params.C_s`` → ``<target>.C_s``).
    Keys outside the generated network are returned unchanged."""
    if not key.startswith(("network.populations", "network.projections", "network.inputs")):
        return key, expected                    # already a scenario key (network.dt, ...)
    base = key.split("[", 1)[0]
    if base in fields:
        return fields[base], expected
    for prefix in sorted(prefixes, key=len, reverse=True):
        if key == prefix or key.startswith(prefix + "."):
            target = prefixes[prefix]
            if prefix.endswith(".params") and key != prefix:
                return target + key[len(prefix):], expected
            return target, f"{expected} (in {where}: {key})"
    return "network", f"{expected} (in {where}: {key})"
