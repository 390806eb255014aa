"""Events, bursts and their running rates, detected online per neuron.

Definitions (Naud & Sprekeler 2018 PNAS; Payeur et al. 2021 Nat Neurosci), with the burst
window T_b = 16 ms by default and all times counted in integer steps (exact comparisons):

* an **event** is a spike that follows more than T_b of silence (or the neuron's first spike):
  isolated spikes and the first spike of every burst;
* a **burst** is marked at the *second* spike of an event, when it comes within T_b of the
  previous spike; further spikes within T_b of their predecessor belong to the same burst and
  mark nothing new. So every burst is also one event, and ``bursts / events`` is the burst
  fraction (the burst probability P).

Online state per neuron: the step of the last spike ``last_step`` and the number of spikes in
the current event ``n_in_event``. At a spike at step n (:func:`classify_spike`)::

    gap = n − last_step
    event  = gap > T_b / dt
    burst  = gap ≤ T_b / dt  and  n_in_event = 1
    n_in_event ← 1 if event else n_in_event + 1;   last_step ← n

Running rates (exponential window τ_avg, Hz), updated every step after the decay::

    r ← r · exp(−dt/τ_avg) + (1000/τ_avg) · [a spike / event / burst at this step]

for the spike rate r_S, event rate r_E and burst rate r_B; a neuron firing regularly at ν Hz
has r_S → ν (time average). The burst probability is P̄ = r_B / r_E (0 while r_E = 0)
(:func:`burst_probability`). These are the factors of burst-dependent plasticity (Payeur et al.
2021: dW/dt ∝ [B(t) − P̄ E(t)] Ẽ_pre).

:func:`detect` is the offline reference on a whole spike train (used by the tests and by
analysis of recorded spikes).

After the bookkeeping of step n, :func:`event_now` and :func:`burst_now` tell from the same
state (``last_step == n`` and ``n_in_event`` = 1 or 2) whether the neuron's spike at n was an
event or marked a burst: the E_i(t) and B_i(t) that synapse rules read (no extra per-step
arrays; the plasticity phase runs after the bookkeeping).
"""

from __future__ import annotations

import math

import numpy as np
from numba.extending import register_jitable

from dendrite_sim.core.elementwise import select

#: ``last_step`` of a neuron that has not spiked yet (a gap longer than any window).
NEVER = -(2 ** 40)


@register_jitable
def classify_spike(step, last_step, n_in_event, window_steps):
    """A spike at ``step``: ``(is_event, is_burst, new n_in_event)`` (elementwise)."""
    gap = step - last_step
    is_event = gap > window_steps
    is_burst = (gap <= window_steps) & (n_in_event == 1)
    return is_event, is_burst, select(is_event, 1, n_in_event + 1)


@register_jitable
def event_now(step, last_step, n_in_event):
    """Whether a neuron's spike at ``step`` (if any) was an event, read after the bookkeeping
    of that step: its last spike is now and it is the first of its event (elementwise)."""
    return (last_step == step) & (n_in_event == 1)


@register_jitable
def burst_now(step, last_step, n_in_event):
    """Whether a neuron's spike at ``step`` (if any) marked a burst — the second spike of an
    event — read after the bookkeeping of that step (elementwise)."""
    return (last_step == step) & (n_in_event == 2)


@register_jitable
def burst_probability(burst_rate, event_rate):
    """P̄ = r_B / r_E, and 0 where r_E = 0 (elementwise)."""
    has = event_rate > 0.0
    return select(has, burst_rate / select(has, event_rate, 1.0), 0.0)


def window_steps(window_ms: float, dt: float) -> int:
    """The burst window in whole steps (16 ms at dt = 0.1 ms → 160)."""
    return int(round(window_ms / dt))


def rate_decay(tau_avg_ms: float, dt: float) -> tuple[float, float]:
    """Per-step decay factor exp(−dt/τ) and the increment 1000/τ (Hz) of the running rates."""
    return math.exp(-dt / tau_avg_ms), 1000.0 / tau_avg_ms


def detect(steps, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Offline reference for one neuron: boolean (event, burst) marks of each spike.

    ``steps`` are the spike steps (sorted; any integer time base) and ``window`` the burst
    window in the same unit.
    """
    steps = np.asarray(steps)
    ev = np.zeros(steps.size, dtype=bool)
    bu = np.zeros(steps.size, dtype=bool)
    last = None
    in_event = 0
    for k, s in enumerate(steps):
        if last is None or s - last > window:
            ev[k] = True
            in_event = 1
        else:
            in_event += 1
            bu[k] = in_event == 2
        last = s
    return ev, bu


def detect_population(steps, indices, window: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`detect` applied per neuron to a population's spikes (any order of records)."""
    steps = np.asarray(steps)
    indices = np.asarray(indices)
    ev = np.zeros(steps.size, dtype=bool)
    bu = np.zeros(steps.size, dtype=bool)
    order = np.lexsort((steps, indices))
    bounds = np.flatnonzero(np.diff(indices[order])) + 1
    for group in np.split(order, bounds):
        if group.size:
            e, b = detect(steps[group], window)
            ev[group] = e
            bu[group] = b
    return ev, bu
