"""The synapse-rule contract: plasticity as a small model whose loops the engine owns.

In the style of GeNN's weight-update models, a synapse rule is a registered class (kind
``"rule"``, so a scenario names it like any learning rule) that declares

* ``Params``: a NamedTuple of floats (or bools) with published defaults, ``units`` (pint
  spelling per field, as neuron models), ``bounds`` (physical ranges, the grammar of
  :func:`dendrite_sim.core.schema.check_bounds`)
  and ``presets`` (name → Params);
* ``pre_traces`` / ``post_traces``: trace name → name of the τ parameter. A trace lives per
  presynaptic (or postsynaptic) neuron — not per synapse — and decays exactly every step,
  ``trace ← trace · exp(−dt/τ)``; when its neuron spikes it is updated by ``pre_spike`` /
  ``post_spike`` (default ``trace + 1``);
* ``synapse_vars``: per-synapse variables besides the weight ``w`` (name → initial value);
* hooks, written only in the kernel language (:mod:`dendrite_sim.core.elementwise`):

  - ``on_pre``   — for every synapse of a presynaptic neuron that spiked this step;
  - ``on_post``  — for every synapse into a postsynaptic neuron that spiked this step;
  - ``per_step`` — for every synapse, every step (continuous-time rules that read the
    postsynaptic neuron's compartment state, e.g. Urbanczik & Senn 2014);
  - ``pre_spike`` / ``post_spike`` — the trace update of a neuron that spiked;
  - per chunk: a rule may also implement :meth:`LearningRule.local_factors` (Python, between
    chunks of the compiled loop; :mod:`dendrite_sim.engine.learning`).

**Hook arguments are matched by name.** A hook may take any of: ``w``; a name in
``synapse_vars`` (that synapse's value); a name in ``pre_traces`` (the trace of the synapse's
presynaptic neuron) or ``post_traces`` (of its postsynaptic neuron); a state variable, channel
or drive ``I_<compartment>`` of the postsynaptic neuron model (``v_dend``, ``soma_exc``...);
``post_spiked`` (whether the postsynaptic neuron spiked in this step); ``post_event`` and
``post_burst`` (whether that spike was an event — an isolated spike or the first of a burst —
or marked a burst, its second spike: the E_i(t) and B_i(t) of :mod:`dendrite_sim.engine.bursts`,
classified in this step's bookkeeping; the postsynaptic population must track bursts, as it
must for ``burst_prob``, its running burst probability P̄_i = r_B/r_E); ``post_p`` (the
postsynaptic model's parameter record; the fields the hooks read are declared in
``post_params`` and checked when the rule is attached); ``p`` (the rule's parameter record)
and ``dt`` (ms). It returns the new values of the *per-synapse*
arguments it takes (``w`` and synapse variables), in the order of its signature — one value
bare, several as a tuple. ``pre_spike(<pre traces>..., p)`` returns the new pre traces in
signature order (``post_spike`` likewise); a trace hook may also take ``event`` and ``burst``,
the classification of its neuron's spike (that side must track bursts), so that a trace can
count events only (the presynaptic event trace Ẽ_j of burstprop).

**When the hooks run** is the schedule's business (:mod:`dendrite_sim.engine.schedule`, phase
``plasticity``, after propagation, so a spike is transmitted with the weight before its own
update); **how their loops run** is the backend's (vectorised gathers in numpy, per synapse in
the compiled loop). Within the phase, per projection: (1) traces decay; (2) ``on_pre`` for the
rows of the presynaptic neurons that spiked; (3) ``on_post`` for the columns of the
postsynaptic neurons that spiked (reading the weights after (2)); (4) ``per_step``; (5) traces
of the neurons that spiked are updated. So the hooks read traces *before* this step's spikes
were added (the ε of Pfister & Gerstner 2006).

A minimal per-step rule (dendritic-voltage-gated Hebbian growth of a presynaptic trace)::

    class Params(NamedTuple):
        eta: float = 1e-3
        tau_psp: float = 10.0
        theta: float = -60.0

    @register("rule", "dendritic_hebb")
    class DendriticHebb(SynapseRule):
        '''dw/dt = η · psp_j · (V_d,i − θ).'''
        Params = Params
        units = {"eta": "1/ms", "tau_psp": "ms", "theta": "mV"}
        pre_traces = {"psp": "tau_psp"}

        @staticmethod
        def per_step(w, psp, v_dend, p, dt):
            return w + dt * p.eta * psp * (v_dend - p.theta)

and in TOML ``plasticity = {rule = "dendritic_hebb", eta = 2e-3}`` on a projection.
"""

from __future__ import annotations

import inspect
import math
from typing import ClassVar, NamedTuple

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.schema import check_bounds, check_bounds_declaration, check_name

HOOKS = ("on_pre", "on_post", "per_step")
#: hook arguments with a fixed meaning: the postsynaptic neuron's spike in this step (bool) and
#: its model's parameter record (fields declared in ``post_params``)
POST_SPECIAL = ("post_spiked", "post_p", "post_event", "post_burst")
#: hook arguments that need the postsynaptic population's event/burst state
POST_BURST_ARGS = ("post_event", "post_burst", "burst_prob", "event_rate", "burst_rate", "spike_rate")
TRACE_HOOKS = ("pre_spike", "post_spike")
#: extra arguments of a trace hook: the classification of its neuron's spike in this step
TRACE_SPECIAL = ("event", "burst")


class SynapseRule(LearningRule):
    """Base of in-loop synapse rules (see the module docstring). Its spiking face is itself."""

    Params: ClassVar[type] = NamedTuple
    units: ClassVar[dict[str, str]] = {}
    bounds: ClassVar[dict[str, str]] = {}
    presets: ClassVar[dict[str, NamedTuple]] = {}
    pre_traces: ClassVar[dict[str, str]] = {}
    post_traces: ClassVar[dict[str, str]] = {}
    synapse_vars: ClassVar[dict[str, float]] = {}
    post_params: ClassVar[tuple[str, ...]] = ()      # fields of the post model's params that hooks read
    post_model: ClassVar[str | None] = None          # a neuron model that has them (docs, tests)
    on_pre = None
    on_post = None
    per_step = None
    pre_spike = None
    post_spike = None
    is_synapse_rule: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_bounds_declaration(cls, cls.bounds, cls.Params)

    # ------------------------------------------------------------------ parameters
    @classmethod
    def make_params(cls, table: dict | None = None, key: str = "plasticity"):
        """The rule's parameters from a scenario table: ``preset`` (optional) plus overrides in
        the declared units; unknown names, wrong dimensions and out-of-range values are
        :class:`ScenarioError` naming ``key.<field>``."""
        from dendrite_sim.core.units import parse_in_unit

        table = dict(table or {})
        preset = table.pop("preset", None)
        if preset is None:
            base = cls.Params()
        else:
            check_name(preset, cls.presets, f"{key}.preset", f"preset of rule {cls.registered_name!r}")
            base = cls.presets[preset]
        values = base._asdict()
        for name, value in table.items():
            check_name(name, cls.Params._fields, f"{key}.{name}", f"parameter of rule {cls.registered_name!r}")
            default = values[name]
            if isinstance(default, bool):
                if not isinstance(value, (bool, np.bool_)):
                    raise ScenarioError(f"{key}.{name}", f"expected true or false, got {value!r}")
                values[name] = bool(value)
            elif name in cls.units:
                values[name] = parse_in_unit(value, cls.units[name], f"{key}.{name}")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                values[name] = float(value)
            else:
                raise ScenarioError(f"{key}.{name}", f"expected a number, got {value!r}")
        params = cls.Params(**values)
        check_bounds(cls.bounds, cls.units, params, key)
        for kind in ("pre_traces", "post_traces"):
            for trace, tau in getattr(cls, kind).items():
                v = getattr(params, tau)
                if not (v > 0.0 and math.isfinite(v)):
                    raise ScenarioError(f"{key}.{tau}", f"expected a finite time constant > 0 ms (trace "
                                        f"{trace}), got {v!r}")
        cls.validate_params(params, key)
        return params

    @classmethod
    def validate_params(cls, params, key: str) -> None:
        """Cross-field checks of a rule (raise :class:`ScenarioError`); none by default."""

    @classmethod
    def validate_weights(cls, params, weights: np.ndarray, key: str) -> None:
        """Checks of the initial weights against the parameters (e.g. bounds); none by default."""

    # ------------------------------------------------------------------ hooks
    @classmethod
    def hooks(cls) -> dict:
        """Hook name → function, for the hooks this rule defines."""
        return {h: getattr(cls, h) for h in HOOKS + TRACE_HOOKS if getattr(cls, h) is not None}

    @classmethod
    def hook_args(cls, hook: str) -> tuple[str, ...]:
        return tuple(inspect.signature(getattr(cls, hook)).parameters)

    @classmethod
    def hook_bindings(cls, hook: str) -> tuple[tuple[str, str], ...]:
        """What each argument of synapse hook ``hook`` binds to, as ``(kind, name)`` in signature
        order: the one definition of "arguments are matched by name" that every backend follows
        (each maps a kind to its own array expression). Kinds: ``"w"``, ``"synapse_var"``,
        ``"pre_trace"``, ``"post_trace"``, ``"p"``, ``"dt"``, ``"post_p"``, ``"post_spiked"``,
        ``"post_classified"`` (name ``"event"`` or ``"burst"``: this step's classification of
        the postsynaptic spike) and ``"post_state"`` (a state variable, channel or drive of the
        postsynaptic model, or its running rates)."""
        out = []
        for a in cls.hook_args(hook):
            kind = ("w" if a == "w" else "synapse_var" if a in cls.synapse_vars else
                    "pre_trace" if a in cls.pre_traces else "post_trace" if a in cls.post_traces else
                    a if a in ("p", "dt", "post_p", "post_spiked") else
                    "post_classified" if a in ("post_event", "post_burst") else "post_state")
            out.append((kind, a[5:] if kind == "post_classified" else a))
        return tuple(out)

    @classmethod
    def hook_writes(cls, hook: str) -> tuple[str, ...]:
        """The per-synapse arguments (or traces, for trace hooks) whose new values ``hook``
        returns, in signature order."""
        args = cls.hook_args(hook)
        if hook == "pre_spike":
            return tuple(a for a in args if a in cls.pre_traces)
        if hook == "post_spike":
            return tuple(a for a in args if a in cls.post_traces)
        return tuple(a for a in args if a == "w" or a in cls.synapse_vars)

    @classmethod
    def check_hooks(cls, post_names: tuple[str, ...], key: str, post_params=None,
                    pre_names: tuple[str, ...] | None = None) -> None:
        """Every hook argument must be known, and the postsynaptic model's parameter record must
        have the fields in :attr:`post_params`: a :class:`ScenarioError` at ``key`` otherwise.
        ``post_names`` / ``pre_names`` are the populations' variable names (``burst_prob``
        among them when the population tracks events and bursts; ``pre_names`` None: not
        checked)."""
        missing = [f for f in cls.post_params if f not in getattr(post_params, "_fields", ())]
        if missing:
            raise ScenarioError(key, f"rule {cls.registered_name!r} reads the postsynaptic model's parameters "
                                f"{', '.join(missing)}; expected a postsynaptic model that has them "
                                f"(e.g. {cls.post_model})")
        synapse = {"w", *cls.synapse_vars, *cls.pre_traces, *cls.post_traces, "p", "dt", *POST_SPECIAL}
        for hook in cls.hooks():
            known = ({*cls.pre_traces, "p", *TRACE_SPECIAL} if hook == "pre_spike" else
                     {*cls.post_traces, "p", *TRACE_SPECIAL} if hook == "post_spike" else
                     synapse | set(post_names))
            tracks = {"pre_spike": None if pre_names is None else "burst_prob" in pre_names}.get(
                hook, "burst_prob" in post_names)
            side = "presynaptic" if hook == "pre_spike" else "postsynaptic"
            for a in cls.hook_args(hook):
                needs = a in TRACE_SPECIAL if hook in TRACE_HOOKS else a in POST_BURST_ARGS
                if needs and tracks is False:
                    raise ScenarioError(key, f"rule {cls.registered_name!r}: argument {a!r} of {hook} needs "
                                        f"the {side} population's events and bursts; expected a "
                                        f"population with bursts = true")
                if a not in known:
                    raise ScenarioError(key, f"rule {cls.registered_name!r}: argument {a!r} of {hook} is "
                                        f"not a weight, synapse variable, trace or variable of the "
                                        f"postsynaptic model; expected some of {', '.join(sorted(known))}")
            if hook in TRACE_HOOKS and not cls.hook_writes(hook):
                raise ScenarioError(key, f"rule {cls.registered_name!r}: {hook} takes no trace")


class BoundedWeights:
    """Mixin of synapse rules whose ``Params`` have ``w_min`` and ``w_max`` (hard weight bounds):
    ``check`` refuses ``w_min ≥ w_max`` and initial weights outside the bounds, at
    ``<key>.w_max``."""

    @classmethod
    def validate_params(cls, params, key):
        if not params.w_min < params.w_max:
            raise ScenarioError(f"{key}.w_max", f"expected w_max > w_min = {params.w_min:g}, got {params.w_max:g}")

    @classmethod
    def validate_weights(cls, params, weights, key):
        if weights.size and (weights.min() < params.w_min or weights.max() > params.w_max):
            raise ScenarioError(f"{key}.w_max", f"expected initial weights within [{params.w_min:g}, "
                                f"{params.w_max:g}], got [{weights.min():g}, {weights.max():g}]")


# --------------------------------------------------------------------------- numpy helpers
def csr_gather(ptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``ptr[r] … ptr[r + 1] − 1`` of all ``rows`` (vectorised) and the row of each."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = ptr[rows]
    counts = ptr[rows + 1] - starts
    owner = np.repeat(rows, counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + offsets, owner
