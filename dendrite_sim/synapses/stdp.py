"""Spike-timing-dependent plasticity: Pfister & Gerstner (2006) triplet rule, pair rule as A₃ = 0.

Pfister J-P, Gerstner W (2006) Triplets of spikes in a model of spike timing-dependent
plasticity. J Neurosci 26:9673–9682.

Traces (per neuron, not per synapse: one update per spike). Presynaptic r₁ (τ₊), r₂ (τ_x);
postsynaptic o₁ (τ₋), o₂ (τ_y). Between spikes every trace decays exactly::

    r(t + Δ) = r(t) · exp(−Δ/τ)

At a presynaptic spike of neuron i, for every synapse i → j (depression), then the traces::

    w_ij ← clip(w_ij − o₁_j(t) [A₂⁻ + A₃⁻ r₂_i(t − ε)],  w_min, w_max)
    r₁_i, r₂_i ← r + 1 (all-to-all)   or   1 (nearest-spike)

At a postsynaptic spike of neuron j, for every synapse i → j (potentiation), then the traces::

    w_ij ← clip(w_ij + r₁_i(t) [A₂⁺ + A₃⁺ o₂_j(t − ε)],  w_min, w_max)
    o₁_j, o₂_j ← o + 1 (all-to-all)   or   1 (nearest-spike)

"t − ε": the triplet factor is the neuron's own trace *before* the current spike's increment.
Weight bounds are hard (clipped after every update). The pair rule is the same model with
A₃⁺ = A₃⁻ = 0.

Order within one time step (the convention of the kernels, the reference and the tests):
(1) decay all traces to the current time; (2) depression for the presynaptic neurons that spiked
(reading post traces o₁ and their own r₂, none incremented yet); (3) potentiation for the
postsynaptic neurons that spiked (reading pre traces r₁ and their own o₂, not incremented yet);
(4) increment the traces of every neuron that spiked. A pre and a post spike in the same step
therefore do not interact (Δt = 0 contributes nothing), whichever of the two the engine
processes first.

In the engine the rule is :class:`TripletSTDP`, a synapse rule (:mod:`.plasticity`) registered
as ``"stdp"``: ``projection(..., plasticity={"rule": "stdp", "preset": "visual_all_to_all",
...})`` in Python, ``plasticity = {rule = "stdp", preset = "pair"}`` in TOML. Its hooks are the
rule's own (``on_pre`` = :data:`stdp_depress` on a presynaptic spike, ``on_post`` =
:data:`stdp_potentiate` on a postsynaptic one, ``pre_spike`` / ``post_spike`` for the trace
updates, as :func:`trace_spike`); the engine owns the loops and the exact per-step trace decay.

References for tests: :func:`stdp_weight_change` (plain-Python event-driven simulation of one
synapse), :func:`pair_weight_change` and :func:`pairing_protocol_weight_change` (closed forms for
one pair and for n pairings at frequency ρ with lag Δt — the Sjöström et al. 2001 protocol).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba.extending import register_jitable

from dendrite_sim.core.elementwise import clip, exp, select
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import check_name, number_or_time
from dendrite_sim.synapses.plasticity import SynapseRule


class STDPParams(NamedTuple):
    """Triplet STDP parameters (amplitudes dimensionless weight changes, τ in ms)."""

    A2_plus: float = 5e-10
    A3_plus: float = 6.2e-3
    A2_minus: float = 7e-3
    A3_minus: float = 2.3e-4
    tau_plus: float = 16.8    # ms, r₁
    tau_minus: float = 33.7   # ms, o₁
    tau_x: float = 101.0      # ms, r₂
    tau_y: float = 125.0      # ms, o₂
    nearest: bool = False     # False: all-to-all (traces += 1); True: nearest-spike (traces := 1)
    w_min: float = 0.0
    w_max: float = 1.0


_VISUAL_TAUS = dict(tau_plus=16.8, tau_minus=33.7)

# Pfister & Gerstner 2006 Table 4 (visual cortex, fitted to Sjöström et al. 2001), and a
# classic pair rule (Song, Miller & Abbott 2000: A₋/A₊ = 1.05, τ± = 20 ms, w in units of g_max).
PRESETS: dict[str, STDPParams] = {
    "visual_all_to_all": STDPParams(A2_plus=5e-10, A3_plus=6.2e-3, A2_minus=7e-3, A3_minus=2.3e-4,
                                    tau_x=101.0, tau_y=125.0, nearest=False, **_VISUAL_TAUS),
    # minimal model: A₃⁻ = 0, so τ_x is unused (kept at the full model's value)
    "visual_all_to_all_minimal": STDPParams(A2_plus=0.0, A3_plus=6.5e-3, A2_minus=7.1e-3, A3_minus=0.0,
                                            tau_x=101.0, tau_y=125.0, nearest=False, **_VISUAL_TAUS),
    "visual_nearest": STDPParams(A2_plus=8.8e-11, A3_plus=5.3e-2, A2_minus=6.6e-3, A3_minus=3.1e-3,
                                 tau_x=714.0, tau_y=40.0, nearest=True, **_VISUAL_TAUS),
    "visual_nearest_minimal": STDPParams(A2_plus=0.0, A3_plus=5.2e-2, A2_minus=8e-3, A3_minus=0.0,
                                         tau_x=714.0, tau_y=40.0, nearest=True, **_VISUAL_TAUS),
    "pair": STDPParams(A2_plus=5e-3, A3_plus=0.0, A2_minus=5.25e-3, A3_minus=0.0,
                       tau_plus=20.0, tau_minus=20.0, tau_x=20.0, tau_y=20.0, nearest=False),
}

_TIME_FIELDS = ("tau_plus", "tau_minus", "tau_x", "tau_y")
_AMPLITUDE_FIELDS = ("A2_plus", "A3_plus", "A2_minus", "A3_minus")


# --------------------------------------------------------------------------- elementwise kernels


@register_jitable
def trace_decay(trace, elapsed_ms, tau):
    """Exact decay over ``elapsed_ms``: trace · exp(−Δ/τ)."""
    return trace * exp(-elapsed_ms / tau)


@register_jitable
def trace_spike(trace, nearest):
    """Trace after a spike of its neuron: trace + 1 (all-to-all) or 1 (nearest-spike)."""
    return select(nearest, 0.0 * trace + 1.0, trace + 1.0)


@register_jitable
def pre_traces_decay(r1, r2, elapsed_ms, p):
    """Presynaptic traces (r₁, r₂) decayed over ``elapsed_ms`` with (τ₊, τ_x)."""
    return trace_decay(r1, elapsed_ms, p.tau_plus), trace_decay(r2, elapsed_ms, p.tau_x)


@register_jitable
def post_traces_decay(o1, o2, elapsed_ms, p):
    """Postsynaptic traces (o₁, o₂) decayed over ``elapsed_ms`` with (τ₋, τ_y)."""
    return trace_decay(o1, elapsed_ms, p.tau_minus), trace_decay(o2, elapsed_ms, p.tau_y)


# --------------------------------------------------------------------------- parameters


def make_params(base: STDPParams | None = None, key: str = "stdp", **fields) -> STDPParams:
    """``base`` (default :class:`STDPParams`) with ``fields`` replaced, validated.

    Time constants: floats in ms or strings with units; ``nearest``: bool; amplitudes ≥ 0;
    w_min ≤ w_max. Errors are :class:`ScenarioError` naming ``key.field``.
    """
    base = STDPParams() if base is None else base
    values = base._asdict()
    for name, value in fields.items():
        sub = f"{key}.{name}"
        check_name(name, STDPParams._fields, sub, "STDP parameter")
        if name == "nearest":
            if not isinstance(value, (bool, np.bool_)):
                raise ScenarioError(sub, f"expected true (nearest-spike) or false (all-to-all), got {value!r}")
            values[name] = bool(value)
        else:
            values[name] = number_or_time(value, sub, time=name in _TIME_FIELDS)
    params = STDPParams(**values)
    for name in _TIME_FIELDS:
        v = getattr(params, name)
        if not (v > 0.0 and math.isfinite(v)):
            raise ScenarioError(f"{key}.{name}", f"expected a finite time constant > 0 ms, got {v!r}")
    for name in _AMPLITUDE_FIELDS:
        v = getattr(params, name)
        if not (v >= 0.0 and math.isfinite(v)):
            raise ScenarioError(f"{key}.{name}", f"expected a finite amplitude ≥ 0, got {v!r}")
    if not params.w_min <= params.w_max:
        raise ScenarioError(f"{key}.w_max", f"expected w_max ≥ w_min = {params.w_min!r}, got {params.w_max!r}")
    return params


def preset(name: str, key: str = "stdp", **overrides) -> STDPParams:
    """The named parameter set (``visual_all_to_all``, ``visual_all_to_all_minimal``,
    ``visual_nearest``, ``visual_nearest_minimal``, ``pair``) with ``overrides`` applied."""
    check_name(name, PRESETS, f"{key}.preset", "STDP preset")
    return make_params(PRESETS[name], key=key, **overrides)


# --------------------------------------------------------------------------- the synapse rule


@register("rule", "stdp")
class TripletSTDP(SynapseRule):
    """Triplet / pair spike-timing-dependent plasticity (Pfister & Gerstner 2006), in the loop."""

    Params = STDPParams
    presets = PRESETS
    units = {name: "ms" for name in _TIME_FIELDS}
    pre_traces = {"r1": "tau_plus", "r2": "tau_x"}
    post_traces = {"o1": "tau_minus", "o2": "tau_y"}

    # Hooks are self-contained (only kernel-language primitives), so that they compile for
    # every target, Numba's CUDA one included.
    @staticmethod
    def on_pre(w, o1, r2, p):
        """Presynaptic spike: w − o₁(t)·[A₂⁻ + A₃⁻ r₂(t − ε)], clipped to [w_min, w_max]."""
        return clip(w - o1 * (p.A2_minus + p.A3_minus * r2), p.w_min, p.w_max)

    @staticmethod
    def on_post(w, r1, o2, p):
        """Postsynaptic spike: w + r₁(t)·[A₂⁺ + A₃⁺ o₂(t − ε)], clipped to [w_min, w_max]."""
        return clip(w + r1 * (p.A2_plus + p.A3_plus * o2), p.w_min, p.w_max)

    @staticmethod
    def pre_spike(r1, r2, p):
        """r₁, r₂ + 1 (all-to-all) or := 1 (nearest-spike)."""
        return select(p.nearest, 0.0 * r1 + 1.0, r1 + 1.0), select(p.nearest, 0.0 * r2 + 1.0, r2 + 1.0)

    @staticmethod
    def post_spike(o1, o2, p):
        """o₁, o₂ + 1 (all-to-all) or := 1 (nearest-spike)."""
        return select(p.nearest, 0.0 * o1 + 1.0, o1 + 1.0), select(p.nearest, 0.0 * o2 + 1.0, o2 + 1.0)

    @classmethod
    def make_params(cls, table=None, key: str = "plasticity"):
        if isinstance(table, STDPParams):
            return make_params(table, key=key)
        table = dict(table or {})
        if "preset" in table:
            return preset(table.pop("preset"), key=key, **table)
        return make_params(key=key, **table)

    @classmethod
    def validate_weights(cls, params, weights, key):
        w = weights
        if w.size and (w.min() < params.w_min or w.max() > params.w_max):
            raise ScenarioError(f"{key}.w_max", f"expected initial weights within the STDP bounds "
                                f"[{params.w_min:g}, {params.w_max:g}], got [{w.min():g}, {w.max():g}]")


#: the two weight updates under their names of the equations (the rule's hooks)
stdp_depress = TripletSTDP.on_pre
stdp_potentiate = TripletSTDP.on_post


# --------------------------------------------------------------------------- references


def stdp_weight_change(pre_times, post_times, params: STDPParams, w0: float = 0.5) -> float:
    """Δw of one synapse for the given spike times (ms), plain-Python event-driven reference.

    Follows the module's equations and within-step order (depression, potentiation, then
    trace increments at equal times); hard bounds after every update. Returns w_final − w0.
    """
    p = params
    events: dict[float, list[bool]] = {}
    for t in pre_times:
        events.setdefault(float(t), [False, False])[0] = True
    for t in post_times:
        events.setdefault(float(t), [False, False])[1] = True
    r1 = r2 = o1 = o2 = 0.0
    w = float(w0)
    t_prev = None
    for t in sorted(events):
        if t_prev is not None:
            d = t - t_prev
            r1 *= math.exp(-d / p.tau_plus)
            r2 *= math.exp(-d / p.tau_x)
            o1 *= math.exp(-d / p.tau_minus)
            o2 *= math.exp(-d / p.tau_y)
        is_pre, is_post = events[t]
        if is_pre:
            w = min(max(w - o1 * (p.A2_minus + p.A3_minus * r2), p.w_min), p.w_max)
        if is_post:
            w = min(max(w + r1 * (p.A2_plus + p.A3_plus * o2), p.w_min), p.w_max)
        if is_pre:
            r1, r2 = (1.0, 1.0) if p.nearest else (r1 + 1.0, r2 + 1.0)
        if is_post:
            o1, o2 = (1.0, 1.0) if p.nearest else (o1 + 1.0, o2 + 1.0)
        t_prev = t
    return w - float(w0)


def pair_weight_change(delta_ms: float, params: STDPParams) -> float:
    """One pre–post pair, Δt = t_post − t_pre, from rest (triplet traces are 0 then):

    Δt > 0: A₂⁺ exp(−Δt/τ₊);  Δt < 0: −A₂⁻ exp(Δt/τ₋);  Δt = 0: 0 (same-step convention).
    """
    if delta_ms > 0:
        return params.A2_plus * math.exp(-delta_ms / params.tau_plus)
    if delta_ms < 0:
        return -params.A2_minus * math.exp(delta_ms / params.tau_minus)
    return 0.0


def pairing_protocol_weight_change(params: STDPParams, delta_ms: float, rate_hz: float,
                                   n_pairs: int) -> float:
    """Δw for ``n_pairs`` pre–post pairings repeated at ``rate_hz`` with lag Δt = ``delta_ms``
    (t_post − t_pre, 0 < |Δt| < T = 1000/ρ), worked out by hand from the trace equations.

    With a = exp(−T/τ) per trace and, before the k-th pairing (k = 0, 1, …), the sum over earlier
    spikes G(a, k) = a(1 − a^k)/(1 − a) (all-to-all) or [k ≥ 1]·a (nearest-spike), and
    H(a, k) = 1 + G(a, k) (all-to-all) or 1 (nearest), the k-th pairing contributes

    Δt > 0 (pre at kT, post at kT + Δt):
        depression   −[A₂⁻ + A₃⁻ G(a_x, k)] · e^{+Δt/τ₋} G(a₋, k)
        potentiation +[A₂⁺ + A₃⁺ G(a_y, k)] · e^{−Δt/τ₊} H(a₊, k)
    Δt < 0, d = |Δt| (post at kT, pre at kT + d):
        potentiation +[A₂⁺ + A₃⁺ G(a_y, k)] · e^{+d/τ₊} G(a₊, k)
        depression   −[A₂⁻ + A₃⁻ G(a_x, k)] · e^{−d/τ₋} H(a₋, k)

    Δw is the sum over k = 0 … n − 1. Weight bounds are ignored (choose w0 and bounds so that
    they are not reached).
    """
    p = params
    period = 1000.0 / rate_hz
    d = abs(delta_ms)
    if not 0.0 < d < period:
        raise ValueError(f"need 0 < |delta_ms| < 1000/rate_hz = {period} ms, got {delta_ms}")

    def G(tau, k):
        a = math.exp(-period / tau)
        if p.nearest:
            return a if k >= 1 else 0.0
        return a * (1.0 - a**k) / (1.0 - a)

    def H(tau, k):
        return 1.0 if p.nearest else 1.0 + G(tau, k)

    total = 0.0
    for k in range(n_pairs):
        ltd_factor = p.A2_minus + p.A3_minus * G(p.tau_x, k)
        ltp_factor = p.A2_plus + p.A3_plus * G(p.tau_y, k)
        if delta_ms > 0:
            total -= ltd_factor * math.exp(d / p.tau_minus) * G(p.tau_minus, k)
            total += ltp_factor * math.exp(-d / p.tau_plus) * H(p.tau_plus, k)
        else:
            total += ltp_factor * math.exp(d / p.tau_plus) * G(p.tau_plus, k)
            total -= ltd_factor * math.exp(-d / p.tau_minus) * H(p.tau_minus, k)
    return total
