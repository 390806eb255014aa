"""Leaky integrate-and-fire neurons, current- and conductance-based.

Current-based (Brette et al. 2007 CUBA):
    τ_m dv/dt = −(v − E_L) + R (I_exc + I_inh + I_drive),   R = τ_m / C_m
Conductance-based (Brette et al. 2007 COBA):
    C_m dv/dt = −g_L (v − E_L) − g_exc (v − E_exc) − g_inh (v − E_inh) + I_drive
When v ≥ v_th: spike, v ← v_reset, clamped for t_ref.

Integration: forward Euler on v (the scheme Brian2's ``euler`` uses), with the refractory
countdown in ms. Synaptic channels decay exactly (engine).

Refractoriness follows Brian2's ``refractory=t_ref``: t_ref is counted from the step that
spiked, so v is clamped for round(t_ref/dt) − 1 further steps and the shortest inter-spike
interval is t_ref. The countdown is decremented *before* it is tested and compared with half a
step, so that rounding in ``t_ref − k·dt`` cannot add a step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import select
from dendrite_sim.core.registry import register
from dendrite_sim.neurons.base import NeuronModel


class LIFParams(NamedTuple):
    E_L: float = -60.0      # mV  (Brette et al. 2007: rest −60 mV)
    tau_m: float = 20.0     # ms
    C_m: float = 200.0      # pF  (R = 100 MΩ: τ_m / C_m = 0.1 mV/pA)
    v_th: float = -50.0     # mV
    v_reset: float = -60.0  # mV
    t_ref: float = 5.0      # ms
    E_exc: float = 0.0      # mV (conductance-based only)
    E_inh: float = -80.0    # mV (conductance-based only)


@register("neuron", "lif")
class LIF(NeuronModel):
    """Current-based leaky integrate-and-fire neuron (Brette et al. 2007 CUBA)."""

    state_vars = ("v_soma", "refractory")
    channels = {"exc": 5.0, "inh": 10.0}
    compartments = ("soma",)
    Params = LIFParams
    units = {"E_L": "mV", "tau_m": "ms", "C_m": "pF", "v_th": "mV", "v_reset": "mV", "t_ref": "ms",
             "E_exc": "mV", "E_inh": "mV", "v_soma": "mV", "refractory": "ms"}
    bounds = {"tau_m": "> 0", "C_m": "> 0", "t_ref": ">= 0"}

    @staticmethod
    def step(v, ref, I_exc, I_inh, I_drive, p, dt):
        ref = ref - dt                  # refractory time left after this step
        active = ref < 0.5 * dt
        dv = (-(v - p.E_L) + (p.tau_m / p.C_m) * (I_exc + I_inh + I_drive)) * (dt / p.tau_m)
        v_new = select(active, v + dv, v)
        spiked = v_new >= p.v_th
        v_new = select(spiked, p.v_reset, v_new)
        ref_new = select(spiked, p.t_ref, select(active, 0.0, ref))
        return v_new, ref_new, spiked

    @classmethod
    def initial_state(cls, n, p, rng):
        return {"v_soma": np.full(n, p.E_L), "refractory": np.zeros(n)}


@register("neuron", "lif_cond")
class LIFCond(LIF):
    """Conductance-based leaky integrate-and-fire neuron (Brette et al. 2007 COBA).

    Same state, parameters and initial state as :class:`LIF`; its channels are conductances (nS).
    """

    @staticmethod
    def step(v, ref, g_exc, g_inh, I_drive, p, dt):
        ref = ref - dt                  # refractory time left after this step
        active = ref < 0.5 * dt
        g_L = p.C_m / p.tau_m
        I = -g_L * (v - p.E_L) - g_exc * (v - p.E_exc) - g_inh * (v - p.E_inh) + I_drive
        v_new = select(active, v + I * (dt / p.C_m), v)
        spiked = v_new >= p.v_th
        v_new = select(spiked, p.v_reset, v_new)
        ref_new = select(spiked, p.t_ref, select(active, 0.0, ref))
        return v_new, ref_new, spiked
