"""A user's synapse rule in one file: Hebbian growth gated by the postsynaptic dendrite.

dw/dt = η · psp_j(t) · (V_d,i(t) − θ), w clipped to [w_min, w_max]; psp_j is the presynaptic
trace, decaying with τ_psp and raised by 1 at each presynaptic spike.
"""

from typing import NamedTuple

from dendrite_sim import register
from dendrite_sim.core.elementwise import clip
from dendrite_sim.synapses.plasticity import SynapseRule


class DendriticHebbParams(NamedTuple):
    eta: float = 0.01        # pA per (mV · ms): weight change rate
    tau_psp: float = 10.0    # ms
    theta: float = -60.0     # mV: dendritic voltage above which synapses grow
    w_min: float = 0.0       # pA
    w_max: float = 500.0     # pA


@register("rule", "dendritic_hebb")
class DendriticHebb(SynapseRule):
    """Per-step Hebbian rule driven by the postsynaptic dendritic voltage."""

    Params = DendriticHebbParams
    units = {"tau_psp": "ms", "theta": "mV", "w_min": "pA", "w_max": "pA"}
    bounds = {"eta": ">= 0", "tau_psp": "> 0"}
    pre_traces = {"psp": "tau_psp"}

    @staticmethod
    def per_step(w, psp, v_dend, p, dt):
        return clip(w + dt * p.eta * psp * (v_dend - p.theta), p.w_min, p.w_max)
