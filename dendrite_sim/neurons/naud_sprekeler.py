"""Two-compartment burst pyramidal neuron (Naud & Sprekeler 2018 PNAS; Payeur et al. 2021).

Soma (V_s) and apical dendrite (V_d), as implemented in apayeur/auryn
``NaudGroup.cpp`` (a reduction of Naud, Bathellier & Gerstner 2014):

    τ_s dV_s/dt  = −(V_s − E_L) + (τ_s/C_s) [ g_s f(V_d) + b_w w_s + I_s ]
    τ_d dV_d/dt  = −(V_d − E_L) + (τ_d/C_d) [ g_d f(V_d) + c_d K(t − t̂) + a_w w_d + I_d ]
    τ_ws dw_s/dt = −w_s,                 w_s ← w_s + 1 at each somatic spike
    τ_wd dw_d/dt = −w_d + (V_d − E_L)
    τ_θ dθ/dt    = −(θ − θ_0),           θ ← θ + Δθ at each somatic spike
    f(V) = 1 / (1 + exp(−(V − E_d)/D))
    V_s > θ: spike, V_s ← E_L (no refractory period: the moving threshold plays its part)

K is a box of height 1 and length 2 ms starting at each somatic spike (the backpropagating
action potential). It is the state variable ``bap``: the time left of the box, set to 2 ms at a
spike and counted down by dt; the box is on in the steps where more than half a step is left
(auryn counts int(2 ms/dt) steps the same way). I_s and I_d are the input currents (pA):
synaptic channels ``soma_exc``, ``soma_inh``, ``dend_exc``, ``dend_inh`` (currents, summed with
their sign: inhibitory weights are negative) plus the injected drive of each compartment.

Defaults (auryn NaudGroup; docs/models.md#neuron-naud_sprekeler): E_L −70 mV, τ_s 16 ms, C_s 370 pF, g_s 1300 pA,
b_w −200 pA, τ_ws 100 ms, τ_d 7 ms, C_d 170 pF, g_d 1200 pA, a_w −13 nS, τ_wd 30 ms,
c_d 2600 pA, E_d −38 mV, D 6 mV, θ_0 −50 mV, Δθ 2 mV, τ_θ 27 ms; w_d starts at 0.1 mV
(auryn's 1e-4 V).

Integration: forward Euler for V_s, V_d and w_d from the values at the start of the step
(auryn updates w_d from the new V_d: an O(dt) difference); the two linear decays w_s and θ
are integrated exactly (auryn: w_s exact, θ Euler; also O(dt)). The spike test uses the
relaxed threshold of this step.

Somatic rheobase (dendrite at rest, w_s = 0): I_rh = (C_s/τ_s)(θ_0 − E_L) − g_s f(V_d*) where
V_d* solves (V_d − E_L)(1 − τ_d a_w / C_d) = (τ_d/C_d) g_d f(V_d) — about 456 pA, within 2 %
of the rule of thumb 20 mV · C_s/τ_s = 462.5 pA. See :func:`rheobase`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import exp, select
from dendrite_sim.core.registry import register
from dendrite_sim.neurons.base import NeuronModel


class NaudSprekelerParams(NamedTuple):
    E_L: float = -70.0       # mV   rest and reset
    tau_s: float = 16.0      # ms
    C_s: float = 370.0       # pF
    g_s: float = 1300.0      # pA   dendrite → soma coupling (through f(V_d))
    b_w: float = -200.0      # pA   somatic adaptation current per unit w_s
    tau_ws: float = 100.0    # ms
    tau_d: float = 7.0       # ms
    C_d: float = 170.0       # pF
    g_d: float = 1200.0      # pA   regenerative dendritic current
    a_w: float = -13.0       # nS   dendritic adaptation (w_d in mV)
    tau_wd: float = 30.0     # ms
    c_d: float = 2600.0      # pA   backpropagating-AP current
    bap_length: float = 2.0  # ms   length of the bAP box K
    E_d: float = -38.0       # mV   half-activation of f
    D: float = 6.0           # mV   slope of f
    theta_0: float = -50.0   # mV   resting threshold
    delta_theta: float = 2.0  # mV  threshold jump per spike
    tau_theta: float = 27.0  # ms
    w_d0: float = 0.1        # mV   initial w_d (auryn)


@register("neuron", "naud_sprekeler")
class NaudSprekeler(NeuronModel):
    """Two-compartment burst pyramidal neuron (Naud & Sprekeler 2018; auryn NaudGroup)."""

    state_vars = ("v_soma", "v_dend", "w_s", "w_d", "theta", "bap")
    channels = {"soma_exc": 5.0, "soma_inh": 10.0, "dend_exc": 5.0, "dend_inh": 10.0}  # pA
    compartments = ("soma", "dend")
    Params = NaudSprekelerParams
    units = {"E_L": "mV", "tau_s": "ms", "C_s": "pF", "g_s": "pA", "b_w": "pA", "tau_ws": "ms",
             "tau_d": "ms", "C_d": "pF", "g_d": "pA", "a_w": "nS", "tau_wd": "ms", "c_d": "pA",
             "bap_length": "ms", "E_d": "mV", "D": "mV", "theta_0": "mV", "delta_theta": "mV",
             "tau_theta": "ms", "w_d0": "mV", "v_soma": "mV", "v_dend": "mV", "w_s": "1",
             "w_d": "mV", "theta": "mV", "bap": "ms"}
    bounds = {"tau_s": "> 0", "C_s": "> 0", "tau_ws": "> 0", "tau_d": "> 0", "C_d": "> 0",
              "tau_wd": "> 0", "tau_theta": "> 0", "D": "> 0", "g_s": ">= 0", "g_d": ">= 0",
              "c_d": ">= 0", "bap_length": ">= 0", "delta_theta": ">= 0"}

    @staticmethod
    def step(v_s, v_d, w_s, w_d, theta, bap, I_se, I_si, I_de, I_di, I_soma, I_dend, p, dt):
        f = 1.0 / (1.0 + exp((p.E_d - v_d) * (1.0 / p.D)))   # 1/D: loop-invariant, no division per neuron
        box_on = bap > 0.5 * dt
        K = select(box_on, 1.0, 0.0)
        I_s = p.g_s * f + p.b_w * w_s + I_se + I_si + I_soma
        I_d = p.g_d * f + p.c_d * K + p.a_w * w_d + I_de + I_di + I_dend
        v_s_new = v_s + (-(v_s - p.E_L) + (p.tau_s / p.C_s) * I_s) * (dt / p.tau_s)
        v_d_new = v_d + (-(v_d - p.E_L) + (p.tau_d / p.C_d) * I_d) * (dt / p.tau_d)
        w_d_new = w_d + (-w_d + (v_d - p.E_L)) * (dt / p.tau_wd)
        w_s_new = w_s * exp(-dt / p.tau_ws)
        theta_new = p.theta_0 + (theta - p.theta_0) * exp(-dt / p.tau_theta)
        bap_new = select(box_on, bap - dt, 0.0)
        spiked = v_s_new > theta_new
        v_s_new = select(spiked, p.E_L, v_s_new)
        w_s_new = select(spiked, w_s_new + 1.0, w_s_new)
        theta_new = select(spiked, theta_new + p.delta_theta, theta_new)
        bap_new = select(spiked, p.bap_length, bap_new)
        return v_s_new, v_d_new, w_s_new, w_d_new, theta_new, bap_new, spiked

    @classmethod
    def initial_state(cls, n, p, rng):
        return {"v_soma": np.full(n, p.E_L), "v_dend": np.full(n, p.E_L), "w_s": np.zeros(n),
                "w_d": np.full(n, p.w_d0), "theta": np.full(n, p.theta_0), "bap": np.zeros(n)}


def dendritic_rest(p: NaudSprekelerParams, I_dend: float = 0.0) -> float:
    """Steady state V_d* of the isolated dendrite with constant current ``I_dend`` (no spikes).

    Solves (V_d − E_L)(1 − τ_d a_w/C_d) = (τ_d/C_d)(g_d f(V_d) + I_dend) by bisection on the
    lowest branch (the resting one when the dendrite is bistable).
    """
    k = 1.0 - p.tau_d * p.a_w / p.C_d

    def g(v):
        f = 1.0 / (1.0 + np.exp(-(v - p.E_d) / p.D))
        return (v - p.E_L) * k - (p.tau_d / p.C_d) * (p.g_d * f + I_dend)

    lo, hi = p.E_L - 50.0, p.E_L
    while g(hi) < 0.0:           # walk up to the first sign change
        lo, hi = hi, hi + 0.5
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) < 0.0 else (lo, mid)
    return 0.5 * (lo + hi)


def rheobase(p: NaudSprekelerParams, I_dend: float = 0.0) -> float:
    """Analytic somatic rheobase (pA) from rest: (C_s/τ_s)(θ_0 − E_L) − g_s f(V_d*)."""
    f = 1.0 / (1.0 + np.exp(-(dendritic_rest(p, I_dend) - p.E_d) / p.D))
    return p.C_s / p.tau_s * (p.theta_0 - p.E_L) - p.g_s * f
