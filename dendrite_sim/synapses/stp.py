"""Tsodyks–Markram short-term plasticity: three named variants, one set of kernels.

State: utilisation ``u`` (release probability) and available resource ``x`` (fraction of
vesicles ready). Between spikes both relax exponentially; at a presynaptic spike a fraction of
the resource is released, ``release`` (the factor that multiplies the synaptic weight), and
``u`` facilitates. Internal units: ms (τ_D, τ_F, elapsed time); U, f, u, x are dimensionless.

Variants. J is the facilitation jump; u⁻, x⁻ are the values just before the
spike (after relaxation), u⁺, x⁺ just after:

``"tsodyks2"`` — Markram, Wang & Tsodyks 1998 PNAS; NEST ``tsodyks2_synapse``::

    du/dt = −u/τ_F                dx/dt = (1 − x)/τ_D            (u rests at 0)
    spike: u⁺ = u⁻ + U(1 − u⁻);  release = u⁺ x⁻;  x⁺ = x⁻ − u⁺ x⁻

    τ_F = 0 means no facilitation memory: u⁻ = 0, so u⁺ = U at every spike.

``"mongillo"`` — Mongillo, Barak & Tsodyks 2008 Science, in the update order of Brian's STP
example (Brian 1.4 ``examples/synapses/short_term_plasticity2.py``, carried into Brian2's
examples; checked with the reference search tool, and ``tests/test_stp.py`` runs Brian2 2.9 on
these equations)::

    du/dt = (U − u)/τ_F           dx/dt = (1 − x)/τ_D            (u rests at U)
    on_pre:  i += w·u·x;   x *= (1 − u);   u += U(1 − u)
    i.e.     release = u⁻ x⁻;  x⁺ = x⁻ − u⁻ x⁻;  u⁺ = u⁻ + U(1 − u⁻)

``"payeur"`` — Payeur, Guerguiev, Zenke, Richards & Naud 2021 Nat Neurosci, extended form of
auryn ``STPConnection`` (apayeur/auryn): the Mongillo order with a separate jump ``f``::

    du/dt = (U − u)/τ_F           dx/dt = (1 − x)/τ_D            (u rests at U)
    spike: release = u⁻ x⁻;  x⁺ = x⁻ − u⁻ x⁻;  u⁺ = u⁻ + f(1 − u⁻)

So ``mongillo`` is ``payeur`` with f = U. Moreover ``tsodyks2`` and ``mongillo`` (same U, τ)
release *identically for every spike train*: their utilisations are related by
u_mongillo(t) = U + (1 − U)·u_tsodyks2(t) at all times, so u⁻_mongillo = u⁺_tsodyks2 at each
spike (tested). The update order changes the numbers only through Payeur's separate jump f ≠ U;
the internal u differs, which matters for anyone reading or plotting u.

The variants differ in (a) where u rests (0 or U),
(b) whether u jumps before or after the release, (c) the jump size (U or f). One branch-free
kernel pair covers all three: the variant code selects (a)–(c) with :func:`select`, so a
projection can even mix variants per synapse. (A kernel per variant would triple the engine's
dispatch code for a saving of two ``select``s per spike.)

Between spikes the relaxation is integrated exactly, event-driven over the time since the last
spike (``elapsed_ms``; ``inf`` for a neuron that never spiked gives the resting state)::

    u(t) = u_rest + (u − u_rest) e^{−Δ/τ_F},    x(t) = 1 − (1 − x) e^{−Δ/τ_D}

Where state lives: the dynamics depend only on the presynaptic spike train, so a
projection whose synapses share parameters keeps ``(u, x, t_last)`` **per presynaptic neuron**
and calls the kernels once per presynaptic spike; every synapse of that CSR row then transmits
``w · release``. With heterogeneous parameters keep the state per synapse and pass per-synapse
parameter arrays (:func:`stack_params`) — the same kernels, elementwise.

Kernels (:func:`stp_relax`, :func:`stp_spike`, :func:`stp_rest_state`) are elementwise and
written only in the kernel language (:mod:`dendrite_sim.core.elementwise`: ``exp``, ``select``):
numpy arrays in the reference backend, scalars under ``numba.njit`` (they are also registered
with ``numba.extending.register_jitable`` so compiled code can call them directly), and CUDA
device code (``tests/test_cuda_kernels.py`` compiles them to PTX and runs them in the simulator).

Closed-form references for tests and docs: :func:`stp_train_amplitudes` (event recursion for any
spike train), :func:`stp_regular_train` (regular train: geometric closed form for u, recursion for
x) and :func:`stp_steady_state` (steady-state amplitude of a regular train).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numba.extending import register_jitable

from dendrite_sim.core.elementwise import exp, select
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.schema import check_name, number_or_time

TSODYKS2 = 0
MONGILLO = 1
PAYEUR = 2
VARIANTS = {"tsodyks2": TSODYKS2, "mongillo": MONGILLO, "payeur": PAYEUR}
VARIANT_NAMES = {code: name for name, code in VARIANTS.items()}


class STPParams(NamedTuple):
    """Tsodyks–Markram parameters (fields may be scalars, or per-synapse arrays)."""

    U: float = 0.5          # baseline utilisation (resting u for mongillo/payeur; jump for tsodyks2/mongillo)
    tau_D: float = 800.0    # ms, recovery of the resource x
    tau_F: float = 0.0      # ms, relaxation of u (0: no facilitation memory)
    f: float = 0.5          # facilitation jump (payeur only; the other variants jump by U)
    variant: int = TSODYKS2


# Presets (sources next to each). For the tsodyks2 presets f = U, so switching the variant to
# "payeur" gives the Mongillo form.
PRESETS: dict[str, STPParams] = {
    # Tsodyks, Pawelzik & Markram 1998: depressing pyramidal synapse
    "depressing": STPParams(U=0.5, tau_D=800.0, tau_F=0.0, f=0.5, variant=TSODYKS2),
    # facilitating synapse (Markram et al. 1998; Tsodyks et al. 2000)
    "facilitating": STPParams(U=0.03, tau_D=130.0, tau_F=530.0, f=0.03, variant=TSODYKS2),
    # Payeur et al. 2021: pyramidal → PV, event-rate channel (short-term depression)
    "payeur_std": STPParams(U=0.9, tau_D=20.0, tau_F=1000.0, f=0.1, variant=PAYEUR),
    # Payeur et al. 2021: pyramidal → SOM, burst-rate channel (short-term facilitation)
    "payeur_stf": STPParams(U=0.02, tau_D=100.0, tau_F=100.0, f=0.1, variant=PAYEUR),
}

_TIME_FIELDS = ("tau_D", "tau_F")
_FRACTION_FIELDS = ("U", "f")


# --------------------------------------------------------------------------- kernels


@register_jitable
def stp_rest_state(U, variant):
    """Resting state ``(u, x)`` after a long silence: u = 0 (tsodyks2) or U; x = 1."""
    u_rest = select(variant == TSODYKS2, 0.0 * U, U)
    return u_rest, 0.0 * U + 1.0


@register_jitable
def stp_relax(u, x, elapsed_ms, U, tau_D, tau_F, variant):
    """Exact relaxation of ``(u, x)`` over ``elapsed_ms`` without spikes.

    u ← u_rest + (u − u_rest)·exp(−Δ/τ_F), u_rest = 0 (tsodyks2) or U (mongillo, payeur);
    x ← 1 − (1 − x)·exp(−Δ/τ_D). A time constant of 0 means instant relaxation.
    """
    u_rest = select(variant == TSODYKS2, 0.0, U)
    has_F = tau_F > 0.0
    has_D = tau_D > 0.0
    decay_F = select(has_F, exp(-elapsed_ms / select(has_F, tau_F, 1.0)), 0.0)
    decay_D = select(has_D, exp(-elapsed_ms / select(has_D, tau_D, 1.0)), 0.0)
    u_new = u_rest + (u - u_rest) * decay_F
    x_new = 1.0 - (1.0 - x) * decay_D
    return u_new, x_new


@register_jitable
def stp_spike(u, x, U, f, variant):
    """Presynaptic spike on the relaxed state ``(u⁻, x⁻)`` → ``(release, u⁺, x⁺)``.

    J = f (payeur) or U (tsodyks2, mongillo); u⁺ = u⁻ + J(1 − u⁻);
    release = u⁺x⁻ (tsodyks2) or u⁻x⁻ (mongillo, payeur); x⁺ = x⁻ − release.
    """
    jump = select(variant == PAYEUR, f, U)
    u_plus = u + jump * (1.0 - u)
    u_used = select(variant == TSODYKS2, u_plus, u)
    release = u_used * x
    return release, u_plus, x - release


# --------------------------------------------------------------------------- parameters


def variant_code(value, key: str = "stp.variant") -> int:
    """A variant name (``"tsodyks2"``, ``"mongillo"``, ``"payeur"``) or code → its int code."""
    if isinstance(value, str):
        if value not in VARIANTS:
            raise ScenarioError(key, f"expected one of {', '.join(VARIANTS)}, got {value!r}")
        return VARIANTS[value]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and int(value) in VARIANT_NAMES:
        return int(value)
    raise ScenarioError(key, f"expected one of {', '.join(VARIANTS)}, got {value!r}")


def make_params(base: STPParams | None = None, key: str = "stp", **fields) -> STPParams:
    """``base`` (default :class:`STPParams`) with ``fields`` replaced, validated.

    Time constants are floats in ms or strings with units (``"800 ms"``); ``variant`` is a
    name or code. Unknown fields and out-of-range values raise :class:`ScenarioError`.
    """
    base = STPParams() if base is None else base
    values = base._asdict()
    for name, value in fields.items():
        sub = f"{key}.{name}"
        check_name(name, STPParams._fields, sub, "STP parameter")
        if name == "variant":
            values[name] = variant_code(value, sub)
        else:
            values[name] = number_or_time(value, sub, time=name in _TIME_FIELDS)
    params = STPParams(**values)
    for name in _FRACTION_FIELDS:
        v = getattr(params, name)
        if not 0.0 <= v <= 1.0:
            raise ScenarioError(f"{key}.{name}", f"expected a fraction in [0, 1], got {v!r}")
    for name in _TIME_FIELDS:
        v = getattr(params, name)
        if not (v >= 0.0 and math.isfinite(v)):
            raise ScenarioError(f"{key}.{name}", f"expected a finite time constant ≥ 0 ms, got {v!r}")
    return params


def preset(name: str, key: str = "stp", **overrides) -> STPParams:
    """The named preset (``depressing``, ``facilitating``, ``payeur_std``, ``payeur_stf``)
    with ``overrides`` applied, e.g. ``preset("facilitating", variant="mongillo", tau_F="1 s")``."""
    check_name(name, PRESETS, f"{key}.preset", "STP preset")
    return make_params(PRESETS[name], key=key, **overrides)


def stack_params(params: Sequence[STPParams]) -> STPParams:
    """Per-synapse parameter arrays from one :class:`STPParams` per synapse (heterogeneous STP)."""
    return STPParams(
        U=np.array([p.U for p in params], dtype=np.float64),
        tau_D=np.array([p.tau_D for p in params], dtype=np.float64),
        tau_F=np.array([p.tau_F for p in params], dtype=np.float64),
        f=np.array([p.f for p in params], dtype=np.float64),
        variant=np.array([p.variant for p in params], dtype=np.int64),
    )


def initial_state(n: int, params: STPParams) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``(u, x)`` of length ``n`` at rest (per presynaptic neuron or per synapse)."""
    u, x = stp_rest_state(np.broadcast_to(np.asarray(params.U, dtype=np.float64), (n,)),
                          np.broadcast_to(np.asarray(params.variant), (n,)))
    return np.array(u, dtype=np.float64), np.array(x, dtype=np.float64)


# --------------------------------------------------------------------------- closed forms


def stp_train_amplitudes(params: STPParams, spike_times) -> np.ndarray:
    """Release (amplitude factor) at each spike of ``spike_times`` (ms, sorted), starting at rest.

    Plain-Python event recursion, written per variant without the kernels (test reference)::

        Δ_n = t_n − t_{n−1};  e_F = exp(−Δ_n/τ_F) (0 if τ_F = 0);  e_D = exp(−Δ_n/τ_D)
        tsodyks2:  u⁻_n = u⁺_{n−1} e_F;            u⁺_n = u⁻_n + U(1 − u⁻_n);  A_n = u⁺_n x⁻_n
        mongillo:  u⁻_n = U + (u⁺_{n−1} − U) e_F;  A_n = u⁻_n x⁻_n;  u⁺_n = u⁻_n + U(1 − u⁻_n)
        payeur:    as mongillo with jump f
        x⁻_n = 1 − (1 − x⁺_{n−1}) e_D;   x⁺_n = x⁻_n − A_n
    """
    U, tau_D, tau_F, f = float(params.U), float(params.tau_D), float(params.tau_F), float(params.f)
    variant = int(params.variant)
    u = 0.0 if variant == TSODYKS2 else U
    x = 1.0
    out = []
    t_last = None
    for t in spike_times:
        t = float(t)
        if t_last is not None:
            delta = t - t_last
            e_F = math.exp(-delta / tau_F) if tau_F > 0.0 else 0.0
            e_D = math.exp(-delta / tau_D) if tau_D > 0.0 else 0.0
            if variant == TSODYKS2:
                u = u * e_F
            else:
                u = U + (u - U) * e_F
            x = 1.0 - (1.0 - x) * e_D
        if variant == TSODYKS2:
            u = u + U * (1.0 - u)
            release = u * x
            x = x - release
        else:
            jump = U if variant == MONGILLO else f
            release = u * x
            x = x - release
            u = u + jump * (1.0 - u)
        out.append(release)
        t_last = t
    return np.array(out)


def _regular_train_u_map(params: STPParams, rate_hz: float) -> tuple[float, float, float, float]:
    """Affine map of the utilisation used at release, u_{n+1} = a + b·u_n, for a regular train.

    tsodyks2 (u used = u⁺):  u⁺_{n+1} = U + (1 − U) e_F u⁺_n         → a = U,  b = (1 − U) e_F
    mongillo/payeur (u⁻):    u⁻_{n+1} = U(1 − e_F) + J e_F + (1 − J) e_F u⁻_n
    Returns (a, b, e_D, u_0) with u_0 = U (the first spike from rest uses U in every variant).
    """
    period = 1000.0 / rate_hz
    U, f = float(params.U), float(params.f)
    tau_D, tau_F = float(params.tau_D), float(params.tau_F)
    e_F = math.exp(-period / tau_F) if tau_F > 0.0 else 0.0
    e_D = math.exp(-period / tau_D) if tau_D > 0.0 else 0.0
    variant = int(params.variant)
    if variant == TSODYKS2:
        a, b = U, (1.0 - U) * e_F
    else:
        jump = U if variant == MONGILLO else f
        a, b = U * (1.0 - e_F) + jump * e_F, (1.0 - jump) * e_F
    return a, b, e_D, U


def stp_regular_train(params: STPParams, rate_hz: float, n_spikes: int) -> np.ndarray:
    """Amplitudes A_n, n = 0..n_spikes−1, of a regular train at ``rate_hz`` starting at rest.

    The utilisation at release follows the affine map u_{n+1} = a + b·u_n
    (see :func:`_regular_train_u_map`), solved in closed form::

        u_n = u_∞ + (U − u_∞) bⁿ,   u_∞ = a / (1 − b)

    and the resource the linear recursion x_0 = 1, x_{n+1} = (1 − e_D) + e_D (1 − u_n) x_n;
    A_n = u_n x_n.
    """
    a, b, e_D, u0 = _regular_train_u_map(params, rate_hz)
    u_inf = a / (1.0 - b)
    amplitudes = np.empty(n_spikes)
    x = 1.0
    for n in range(n_spikes):
        u_n = u_inf + (u0 - u_inf) * b**n
        amplitudes[n] = u_n * x
        x = (1.0 - e_D) + e_D * (1.0 - u_n) * x
    return amplitudes


def stp_steady_state(params: STPParams, rate_hz: float) -> tuple[float, float, float]:
    """Steady state of a regular train at ``rate_hz``: ``(release, u, x)`` just before a spike.

    u_∞ = a / (1 − b) (the utilisation used at release, :func:`_regular_train_u_map`);
    x_∞ = (1 − e_D) / (1 − e_D (1 − u_∞));  release_∞ = u_∞ x_∞.
    E.g. tsodyks2 with τ_F = 0: u_∞ = U, A_∞ = U (1 − e_D) / (1 − (1 − U) e_D)
    (Tsodyks & Markram 1997).
    """
    a, b, e_D, _ = _regular_train_u_map(params, rate_hz)
    u_inf = a / (1.0 - b)
    x_inf = (1.0 - e_D) / (1.0 - e_D * (1.0 - u_inf))
    return u_inf * x_inf, u_inf, x_inf
