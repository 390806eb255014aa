"""Two-compartment Poisson neuron of Urbanczik & Senn 2014 (Neuron 81:521).

The model of NEST's ``pp_cond_exp_mc_urbanczik`` (soma U, dendrite V_d):

    C   dU/dt   = −g_L (U − E_L) + g_sp (V_d − U) − g_ex (U − E_ex) − g_in (U − E_in) + I_s
    C_d dV_d/dt = −g_L_d (V_d − E_L_d) + g_ps (U − V_d) + I_ex + I_in + I_d
    spikes: Poisson with rate φ(U) = φ_max / (1 + k exp(β (θ − U))), at most one per step,
            P(spike in a step) = 1 − exp(−φ(U) dt); dead time t_ref; no voltage reset.

Somatic synapses are conductances (channels ``soma_exc``, ``soma_inh`` in nS, e.g. the
teacher's nudging conductances); dendritic synapses are currents (channels ``dend_exc``,
``dend_inh`` in pA, summed with their sign: inhibitory weights are negative). NEST defaults:
C = C_d = 300 pF, g_L = g_L_d = 30 nS, g_sp 600 nS, g_ps 0 (no back-coupling, as in the paper),
E_L −70 mV, E_ex 0 mV, E_in −75 mV, τ_syn 3 ms for all four channels, t_ref 3 ms,
φ_max 0.15 /ms, k 0.5, β 1/3 per mV, θ −55 mV.

Integration: exponential Euler, the Brian2 ``exponential_euler`` scheme: each potential is
advanced exactly over dt as a linear ODE with the other potential, the conductances and the
currents held at their values at the start of the step:
    U_new = U_∞ + (U − U_∞) exp(−dt/τ_U),  τ_U = C/(g_L + g_sp + g_ex + g_in),
and likewise V_d. It is stable for any teacher conductance (forward Euler is not once
dt (g_L + g_sp + g_ex + g_in)/C > 2). NEST integrates with adaptive RKF45; both converge to the
same trajectory as dt → 0. The spike is drawn on the new U.

Randomness: ``needs_uniform = True``. The engine passes one uniform number u ∈ [0, 1) per neuron
and step; the neuron spikes when it is out of its dead time and u < 1 − exp(−φ(U) dt). Dead
time as the refractory period of :mod:`dendrite_sim.neurons.lif` (Brian2 convention: the
shortest inter-spike interval is t_ref).

For the learning rule: the dendritic prediction of the somatic potential is
V*_w = (g_L E_L + g_sp V_d)/(g_L + g_sp) (:func:`dendritic_prediction`), and
h(V) = d ln φ / dV = β k exp(β(θ − V)) / (1 + k exp(β(θ − V))) (:func:`log_rate_slope`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import exp, select
from dendrite_sim.core.registry import register
from dendrite_sim.neurons.base import NeuronModel


class UrbanczikSennParams(NamedTuple):
    C: float = 300.0         # pF   soma
    g_L: float = 30.0        # nS   soma
    E_L: float = -70.0       # mV   soma
    C_d: float = 300.0       # pF   dendrite
    g_L_d: float = 30.0      # nS   dendrite
    E_L_d: float = -70.0     # mV   dendrite
    g_sp: float = 600.0      # nS   dendrite → soma coupling
    g_ps: float = 0.0        # nS   soma → dendrite coupling (off in the paper)
    E_ex: float = 0.0        # mV   somatic excitatory reversal
    E_in: float = -75.0      # mV   somatic inhibitory reversal
    t_ref: float = 3.0       # ms   dead time
    phi_max: float = 0.15    # 1/ms
    rate_slope: float = 0.5  # k
    beta: float = 1.0 / 3.0  # 1/mV
    theta: float = -55.0     # mV


def rate(U, p):
    """φ(U) in 1/ms."""
    return p.phi_max / (1.0 + p.rate_slope * exp(p.beta * (p.theta - U)))


def log_rate_slope(U, p):
    """h(U) = d ln φ(U) / dU in 1/mV."""
    e = p.rate_slope * exp(p.beta * (p.theta - U))
    return p.beta * e / (1.0 + e)


def dendritic_prediction(V_d, p):
    """V*_w = (g_L E_L + g_sp V_d) / (g_L + g_sp): the somatic potential the dendrite predicts."""
    return (p.g_L * p.E_L + p.g_sp * V_d) / (p.g_L + p.g_sp)


@register("neuron", "urbanczik_senn")
class UrbanczikSenn(NeuronModel):
    """Two-compartment Poisson neuron (Urbanczik & Senn 2014; NEST pp_cond_exp_mc_urbanczik)."""

    state_vars = ("v_soma", "v_dend", "refractory")
    channels = {"soma_exc": 3.0, "soma_inh": 3.0, "dend_exc": 3.0, "dend_inh": 3.0}
    compartments = ("soma", "dend")
    circuit_ports = {"basal": ("dend_exc", "dend"), "teacher": ("soma_exc", "soma_inh")}
    Params = UrbanczikSennParams
    units = {"C": "pF", "g_L": "nS", "E_L": "mV", "C_d": "pF", "g_L_d": "nS", "E_L_d": "mV",
             "g_sp": "nS", "g_ps": "nS", "E_ex": "mV", "E_in": "mV", "t_ref": "ms", "phi_max": "1/ms",
             "rate_slope": "1", "beta": "1/mV", "theta": "mV", "v_soma": "mV", "v_dend": "mV",
             "refractory": "ms"}
    # the leaks are > 0: the exponential-Euler steady states divide by g_L + g_sp + ... and
    # g_L_d + g_ps
    bounds = {"C": "> 0", "g_L": "> 0", "C_d": "> 0", "g_L_d": "> 0", "g_sp": ">= 0", "g_ps": ">= 0",
              "t_ref": ">= 0", "phi_max": ">= 0", "rate_slope": ">= 0", "beta": ">= 0"}
    needs_uniform = True

    @staticmethod
    def step(U, V_d, ref, g_ex, g_in, I_ex, I_in, I_soma, I_dend, u, p, dt):
        # soma: C dU/dt = −g_tot U + (g_L E_L + g_sp V_d + g_ex E_ex + g_in E_in + I_s)
        g_tot = p.g_L + p.g_sp + g_ex + g_in
        U_inf = (p.g_L * p.E_L + p.g_sp * V_d + g_ex * p.E_ex + g_in * p.E_in + I_soma) / g_tot
        U_new = U_inf + (U - U_inf) * exp(-dt * g_tot / p.C)
        # dendrite: C_d dV_d/dt = −g_dtot V_d + (g_L_d E_L_d + g_ps U + I_ex + I_in + I_d)
        g_dtot = p.g_L_d + p.g_ps
        V_inf = (p.g_L_d * p.E_L_d + p.g_ps * U + I_ex + I_in + I_dend) / g_dtot
        V_d_new = V_inf + (V_d - V_inf) * exp(-dt * g_dtot / p.C_d)
        # Poisson spike with dead time, no reset
        ref = ref - dt
        active = ref < 0.5 * dt
        phi = p.phi_max / (1.0 + p.rate_slope * exp(p.beta * (p.theta - U_new)))
        spiked = active & (u < 1.0 - exp(-phi * dt))
        ref_new = select(spiked, p.t_ref, select(active, 0.0, ref))
        return U_new, V_d_new, ref_new, spiked

    @classmethod
    def initial_state(cls, n, p, rng):
        return {"v_soma": np.full(n, p.E_L), "v_dend": np.full(n, p.E_L_d),
                "refractory": np.zeros(n)}
