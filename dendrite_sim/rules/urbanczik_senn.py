"""Urbanczik & Senn (2014) dendritic-prediction rule: synapses learn to make the dendrite predict
the soma's spiking (Neuron 81:521; the model of NEST's ``urbanczik_synapse``).

For a synapse j → i onto the dendrite of an ``urbanczik_senn`` neuron::

    V*_w = (g_L E_L + g_sp V_d) / (g_L + g_sp)         the somatic potential the dendrite predicts
    φ(V) = φ_max / (1 + k exp(β(θ − V))),   h(V) = d ln φ / dV = β k e^{β(θ−V)} / (1 + k e^{β(θ−V)})
    PSP_j(t) = Σ_{t_j} κ(t − t_j),   κ(s) = (e^{−s/τ_L} − e^{−s/τ_s}) / (τ_L − τ_s)
    PI_ij(t) = [S_i(t) − φ(V*_w,i)] · h(V*_w,i) · PSP_j(t)       S_i = Σ δ(t − t_i), the soma's spikes
    τ_Δ dΔ_ij/dt = −Δ_ij + PI_ij,          dw_ij/dt = η Δ_ij

The neuron parameters (g_L, E_L, g_sp, φ_max, k, β, θ) are the postsynaptic model's own
(``post_p``), so the rule and the neuron cannot disagree. The PSP kernel is the difference of
two presynaptic traces (τ_L = C/g_L = 10 ms, τ_s = τ_syn = 3 ms with NEST's defaults), each
decaying exactly and raised by 1 at a presynaptic spike.

Time-stepped form (one step of dt, the schedule's ``plasticity`` phase, after the neuron update;
s = 1 if the neuron spiked in this step, else 0; traces before this step's presynaptic spikes)::

    Δ ← Δ · e^{−dt/τ_Δ} + [s − φ(V*_w) dt] · h(V*_w) · PSP / τ_Δ
    w ← clip(w + η · dt · Δ,  w_min, w_max)

so that the spike term integrates δ(t − t_i) exactly and the rate term as φ dt. Weight bounds:
by default each step's new weight is clipped (``clip_total = 0``); with ``clip_total = 1`` the
bounds apply to the running total instead, w = clip(w₀ + η ∫ Δ dt, w_min, w_max), as NEST's
``urbanczik_synapse`` does — a weight driven below w_min then stays there until the unclipped
total returns. The per-synapse variable ``excess`` = (w₀ + η ∫ Δ dt) − w holds the difference
(0 when nothing was clipped). Weights are the
dendritic currents of the ``dend_exc`` / ``dend_inh`` channels (pA); Δ is in 1/(mV·ms²) (h in
1/mV, PSP in 1/ms, divided by τ_Δ), so η is in pA·mV·ms.

Rate face (:meth:`UrbanczikSennRule.update`): the rate limit ΔW = ⟨[φ(U*) − φ(V*)] h(V*) r_preᵀ⟩ on
the output layer of a rate network (V* = a_L, U* = the teacher), with its own dimensionless φ.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import clip, exp, select
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.synapses.plasticity import SynapseRule


class UrbanczikSennRuleParams(NamedTuple):
    eta: float = 5e-3           # pA·mV·ms: dw/dt = η Δ
    tau_delta: float = 100.0    # ms   low-pass filter of the plasticity induction PI
    tau_L: float = 10.0         # ms   PSP decay (membrane, C/g_L)
    tau_s: float = 3.0          # ms   PSP rise (synaptic, τ_syn)
    w_min: float = -1e9         # pA
    w_max: float = 1e9          # pA
    clip_total: float = 0.0     # 1: clip the running total (NEST), 0: clip each step


@register("rule", "urbanczik_senn")
class UrbanczikSennRule(SynapseRule):
    """Urbanczik & Senn 2014: dendritic synapses learn to predict the soma's spiking (in the loop)."""

    Params = UrbanczikSennRuleParams
    units = {"eta": "pA*mV*ms", "tau_delta": "ms", "tau_L": "ms", "tau_s": "ms", "w_min": "pA", "w_max": "pA"}
    bounds = {"eta": ">= 0", "tau_delta": "> 0", "tau_L": "> 0", "tau_s": "> 0", "clip_total": "[0, 1]"}
    pre_traces = {"psp_L": "tau_L", "psp_s": "tau_s"}
    synapse_vars = {"delta": 0.0, "excess": 0.0}
    post_params = ("g_L", "E_L", "g_sp", "phi_max", "rate_slope", "beta", "theta")
    post_model = "urbanczik_senn"

    @staticmethod
    def per_step(w, delta, excess, psp_L, psp_s, v_dend, post_spiked, post_p, p, dt):
        v_star = (post_p.g_L * post_p.E_L + post_p.g_sp * v_dend) / (post_p.g_L + post_p.g_sp)
        e = post_p.rate_slope * exp(post_p.beta * (post_p.theta - v_star))
        phi = post_p.phi_max / (1.0 + e)
        h = post_p.beta * e / (1.0 + e)
        psp = (psp_L - psp_s) / (p.tau_L - p.tau_s)
        pi = (select(post_spiked, 1.0, 0.0) - phi * dt) * h * psp
        delta_new = delta * exp(-dt / p.tau_delta) + pi / p.tau_delta
        total = select(p.clip_total > 0.5, w + excess, w) + p.eta * dt * delta_new
        w_new = clip(total, p.w_min, p.w_max)
        return w_new, delta_new, select(p.clip_total > 0.5, total - w_new, 0.0)

    # ------------------------------------------------------------------ rate face
    #: the rate face's φ(V) = φ_max / (1 + k e^{β(θ − V)}) on dimensionless pre-activations (its
    #: own scenario keys, ``[rule]``); the spiking face reads φ from the postsynaptic neuron and
    #: never sees these. Defaults: the logistic φ(V) = 1 / (1 + e^{−V}), h(V) = 1 − φ(V).
    params = {
        "phi_max": Field("float", 1.0, "rate face: φ_max of φ(V) (dimensionless)", lo=0, lo_open=True),
        "rate_slope": Field("float", 1.0, "rate face: k of φ(V)", lo=0, lo_open=True),
        "beta": Field("float", 1.0, "rate face: β of φ(V), per unit of pre-activation", lo=0, lo_open=True),
        "theta": Field("float", 0.0, "rate face: θ of φ(V), in units of pre-activation"),
    }

    def __init__(self, phi_max: float = 1.0, rate_slope: float = 1.0, beta: float = 1.0, theta: float = 0.0):
        self.phi_max, self.rate_slope, self.beta, self.theta = phi_max, rate_slope, beta, theta

    def update(self, net, x, y, objective, rng):
        """Rate face: the rate limit of the rule on the output layer of a
        :class:`~dendrite_sim.engine.rate.RateNetwork` (Urbanczik & Senn 2014, Neuron 81:521,
        eq. for PI with the spike train S replaced by its expectation φ(U*))::

            ΔW_L = ⟨ [φ(U*) − φ(V*)] · h(V*) · r_preᵀ ⟩_batch,    Δb_L = ⟨ [φ(U*) − φ(V*)] · h(V*) ⟩

        Mapping: the output pre-activation a_L plays the dendritic prediction V* = a_L; the
        presynaptic rates r_pre are the output layer's input h_{L−1}; the teacher plays the
        nudged somatic potential U* = a_L − e, with e = ``objective.teaching_signal(a_L, y)``:
        for MSE e = a_L − y, so U* = y (the target itself); for cross-entropy e = softmax(a_L)
        − onehot(y), so U* moves a_L up for the correct class and down for the others; for a
        reward objective it is the sampled REINFORCE error. φ(V) = φ_max / (1 + k e^{β(θ−V)}),
        h = d ln φ / dV = β k e^{β(θ−V)} / (1 + k e^{β(θ−V)}) (the neuron's own functions,
        :mod:`dendrite_sim.neurons.urbanczik_senn`, with this rule's dimensionless rate-face
        parameters). The update vanishes where U* = V*; since φ is increasing and h > 0 it
        has the sign of U* − V*, a positively weighted delta rule.

        Hidden layers get zero updates: the rule is local to the synapses onto one neuron's
        dendrite and has no pathway that assigns credit to earlier layers.
        """
        from dendrite_sim.neurons.urbanczik_senn import log_rate_slope, rate

        fwd = net.forward(x)
        v_star = fwd.out
        u_star = v_star - objective.teaching_signal(v_star, y, rng)
        post = (rate(u_star, self) - rate(v_star, self)) * log_rate_slope(v_star, self)
        ups = [(np.zeros_like(W), np.zeros_like(b)) for W, b in zip(net.W, net.b)]
        ups[-1] = (post.T @ fwd.h[-1] / x.shape[0], post.mean(axis=0))
        return ups

    @classmethod
    def validate_params(cls, params, key):
        from dendrite_sim.core.errors import ScenarioError

        if params.tau_L == params.tau_s:
            raise ScenarioError(f"{key}.tau_s", f"expected a PSP rise time different from tau_L = "
                                f"{params.tau_L:g} ms (the kernel divides by their difference)")
        if not params.w_min <= params.w_max:
            raise ScenarioError(f"{key}.w_max", f"expected w_max >= w_min = {params.w_min:g} pA")
