"""Three-compartment pyramidal neuron with segregated dendrites (Guerguiev, Lillicrap & Richards
2017 eLife); reference code jordan-g/Segregated-Dendrite-Deep-Learning.

Basal dendrite B, apical dendrite A, soma C, in the paper's dimensionless units (conductances in
1/ms, potentials in the paper's voltage units, read as mV):

    B(t) = Σ_j W_j Σ_k κ(t − t_j^k) + b,    A(t) = Σ_j Y_j Σ_k κ(t − t_j^k) + c
    κ(t) = (exp(−t/τ_L) − exp(−t/τ_s)) / (τ_L − τ_s)       (PSP kernel, τ_L 10 ms, τ_s 3 ms)
    dC/dt = −g_L C + g_B (B − C) + g_A (A − C) + g_E (E_E − C) + g_I (E_I − C) + I_soma
    rate λ = φ_max σ(C),  Poisson spikes;  no reset, no refractory period
    plateau potential at the end of a phase: α = σ(Ā), Ā = mean of A over the phase

Here the kernel is produced by two first-order filters: the channel ``basal`` (``apical``) is a
synaptic trace x that jumps by the weight W_j at a presynaptic spike and decays with τ_s (the
engine's channel, default 3 ms); the compartment potential low-pass filters it,

    τ_L dB/dt = −B + b + x/τ_s,

so that one spike of weight W gives exactly B(t) − b = W κ(t) in continuous time (when the
channel's τ equals ``tau_s``). The compartment drives ``basal`` and ``apical`` (pA in the engine)
enter as the biases b and c (1 pA of drive = 1 unit of potential; a constant drive is exactly the
bias, a time-varying one is low-pass filtered with τ_L like the PSPs); the drive ``soma`` is a
current into a unit capacitance (dC/dt += I_soma).

Output units of the paper use the same soma without an apical compartment (g_A = 0) and are
nudged by teaching conductances g_E, g_I with reversal potentials E_E = 8, E_I = −8: these are
the channels ``soma_exc`` and ``soma_inh`` (dimensionless conductances in 1/ms, τ 3 ms).
Defaults: g_L = 1/τ_L = 0.1, g_B = 0.6, g_A = 0 (isolated apical dendrite; the paper's variant
with attenuated apical conductance uses 0.05), φ_max = 0.2 /ms.

The apical plateau: the state ``apical_integral`` accumulates ∫A dt, so an experiment reads it at
the start and end of a phase and gets α = :func:`plateau` (start, end, duration) — the engine
needs no notion of phases.

Integration: forward Euler for B, A and C from the values at the start of the step (the
reference code's scheme, there with dt = 1 ms; here any dt). Spikes: ``needs_uniform = True``;
a neuron spikes when u < 1 − exp(−λ dt), λ from the new C — the probability that a Poisson
process of rate λ fires at least once in the step (the reference draws a Poisson count per 1 ms
step, which can exceed 1; at dt = 0.1 ms, λ dt ≤ 0.02 and the two agree to 1 %).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import exp
from dendrite_sim.core.registry import register
from dendrite_sim.neurons.base import NeuronModel


class GuerguievParams(NamedTuple):
    g_L: float = 0.1         # 1/ms   leak (1/τ_L)
    g_B: float = 0.6         # 1/ms   basal → soma
    g_A: float = 0.0         # 1/ms   apical → soma (0: segregated apical dendrite)
    tau_L: float = 10.0      # ms     dendritic leak time constant of the PSP kernel
    tau_s: float = 3.0       # ms     synaptic time constant (= the channels' τ)
    phi_max: float = 0.2     # 1/ms   maximal rate
    E_E: float = 8.0         # teaching excitatory reversal (output units)
    E_I: float = -8.0        # teaching inhibitory reversal (output units)


def sigmoid(x):
    return 1.0 / (1.0 + exp(-x))


def kappa(t, p: GuerguievParams | None = None):
    """The PSP kernel κ(t) = (e^{−t/τ_L} − e^{−t/τ_s}) / (τ_L − τ_s), zero for t < 0."""
    p = p or GuerguievParams()
    t = np.asarray(t, float)
    k = (np.exp(-t / p.tau_L) - np.exp(-t / p.tau_s)) / (p.tau_L - p.tau_s)
    return np.where(t >= 0.0, k, 0.0)


def plateau(integral_start, integral_end, duration):
    """Plateau potential α = σ(mean apical potential) over a phase of ``duration`` ms."""
    return sigmoid((np.asarray(integral_end) - np.asarray(integral_start)) / duration)


@register("neuron", "guerguiev")
class Guerguiev(NeuronModel):
    """Three-compartment basal/soma/apical neuron with apical plateaus (Guerguiev et al. 2017)."""

    state_vars = ("v_basal", "v_apical", "v_soma", "apical_integral")
    channels = {"basal": 3.0, "apical": 3.0, "soma_exc": 3.0, "soma_inh": 3.0}
    compartments = ("basal", "soma", "apical")
    Params = GuerguievParams
    units = {"g_L": "1/ms", "g_B": "1/ms", "g_A": "1/ms", "tau_L": "ms", "tau_s": "ms",
             "phi_max": "1/ms", "E_E": "1", "E_I": "1", "v_basal": "1", "v_apical": "1", "v_soma": "1",
             "apical_integral": "1"}
    bounds = {"g_L": ">= 0", "g_B": ">= 0", "g_A": ">= 0", "tau_L": "> 0", "tau_s": "> 0",
              "phi_max": ">= 0"}
    needs_uniform = True
    circuit_ports = {"basal": ("basal", "basal"), "apical": ("apical", "apical"),
                     "teacher": ("soma_exc", "soma_inh")}

    @staticmethod
    def step(B, A, C, A_int, x_B, x_A, g_E, g_I, b, I_soma, c, u, p, dt):
        B_new = B + (-B + b + x_B / p.tau_s) * (dt / p.tau_L)
        A_new = A + (-A + c + x_A / p.tau_s) * (dt / p.tau_L)
        dC = (-p.g_L * C + p.g_B * (B - C) + p.g_A * (A - C) + g_E * (p.E_E - C)
              + g_I * (p.E_I - C) + I_soma)
        C_new = C + dC * dt
        A_int_new = A_int + A * dt
        lam = p.phi_max / (1.0 + exp(-C_new))
        spiked = u < 1.0 - exp(-lam * dt)
        return B_new, A_new, C_new, A_int_new, spiked

    @classmethod
    def stable_dt(cls, p, extra_soma_conductance=0.0):
        """Forward Euler of C is stable while dt (g_L + g_B + g_A + g_E + g_I) < 2."""
        return 2.0 / (p.g_L + p.g_B + p.g_A + extra_soma_conductance)

    @classmethod
    def initial_state(cls, n, p, rng):
        z = np.zeros(n)
        return {"v_basal": z.copy(), "v_apical": z.copy(), "v_soma": z.copy(),
                "apical_integral": z.copy()}


