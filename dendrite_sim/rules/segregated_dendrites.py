"""Segregated dendrites (Guerguiev, Lillicrap & Richards 2017 eLife 6:e22901, "Towards deep
learning with segregated dendrites"; reference code jordan-g/Segregated-Dendrite-Deep-Learning).

Hidden neurons (model ``guerguiev``) have a basal dendrite B (feedforward input), a segregated
apical dendrite A (feedback from the output through fixed random weights Y) and a soma C,
λ = φ_max σ(C). Each example is shown in a **forward phase** (input only) and a **target
phase** (the teacher's somatic conductances g_E = y, g_I = 1 − y nudge the output somata,
reversal potentials ±8); each phase lasts ``phase_duration`` ms and its last
``phase_duration − settle`` ms are averaged (bars below). At the end of each phase a hidden
neuron's apical dendrite emits a plateau potential α = σ(Ā) (Ā: mean apical potential over
the window). Weight changes at the end of the target phase, with k_B = g_B/(g_L + g_B + g_A)
and k_D = g_B/(g_L + g_B) (output neurons, no apical conductance)::

    output:  E⁰ = −(λ̄⁰_t − φ_max σ(C̄⁰_f)) · k_D φ_max σ′(C̄⁰_f)
    hidden:  E¹ = −(α¹_t − α¹_f) · k_B φ_max σ′(C̄¹_f)
    ΔW = −η P E · PSP̄_fᵀ,   Δb = −η P E,    P⁰ = 20/φ_max²,  P¹ = 20/φ_max

(optionally annealed: the k-th example's step is scaled by τ/(τ + k), τ = ``anneal_examples``;
the paper keeps it constant), where λ̄⁰_t is the mean output rate function over the target window, PSP̄_f the mean
presynaptic PSP over the forward window (the PSP kernel κ with the postsynaptic model's τ_L,
τ_s) and η the training learning rate. The output rule descends L = ½‖λ̄_t − λ_f‖² exactly;
the hidden rule replaces backprop's Wᵀ E⁰ by the plateau difference, so its update stays within
90° of backprop's (the paper reports ≈ 65–70° with spiking feedback). Rates are per ms, so P
equals the paper's at its dt of 1 ms (where its λ_max = 0.2 per step is φ_max · dt).

Faces:

* **spiking** (:meth:`SegregatedDendrites.example_update`), on a
  :class:`~dendrite_sim.engine.circuit.SpikingCircuit` of ``guerguiev`` neurons built from a
  layered architecture with feedback broadcast from the output (``feedback_route = "direct"``);
  :meth:`example_gradient` gives backprop's update of the rate network that shares the
  weights, at the same phase averages (E_bp^l = (W^{l+1})ᵀ E_bp^{l+1} · k_B φ_max σ′(C̄^l_f)),
  so ``train`` reports the angle per hidden layer;
* **rate** (:meth:`SegregatedDendrites.update`), the limit of the same rule on a layered
  :class:`~dendrite_sim.engine.rate.RateNetwork`: the forward phase is the forward pass, the
  target phase nudges the output to o_t = o_f − e (e the objective's teaching signal; the
  target itself for MSE and for softmax cross-entropy), the plateau is
  α = σ(D_l o) with the network's fixed random direct feedback D_l, and
  ΔW_l = (α_t − α_f) ⊙ f′(a_l) h_{l−1}ᵀ for hidden layers, −e h_{L−1}ᵀ for the output.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from dendrite_sim.core.circuit import Phase
from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field


def sigmoid(x):
    return expit(x)


def dsigmoid(x):
    s = sigmoid(x)
    return s * (1.0 - s)


@register("rule", "segregated_dendrites")
class SegregatedDendrites(LearningRule):
    """Guerguiev et al. 2017: apical plateaus in forward and target phases teach hidden layers."""

    params = {
        "phase_duration": Field("float", 50.0, "length of the forward and of the target phase (ms)",
                                lo=0, lo_open=True),
        "settle": Field("float", 30.0, "ms at the start of each phase not averaged (ms)", lo=0),
        "p_hidden": Field("float", 20.0, "hidden error scaling P¹ · φ_max (the paper: 20)", lo=0),
        "p_output": Field("float", 20.0, "output error scaling P⁰ · φ_max² (the paper: 20)", lo=0),
        "anneal_examples": Field("float", 0.0, "spiking face: updates scaled by τ/(τ + k) after k "
                                 "examples, τ this value (0: constant step)", lo=0),
    }

    def __init__(self, phase_duration=50.0, settle=30.0, p_hidden=20.0, p_output=20.0, anneal_examples=0.0):
        if settle >= phase_duration:
            from dendrite_sim.core.errors import ScenarioError

            raise ScenarioError("rule.settle", f"expected settle < phase_duration = {phase_duration:g} ms, "
                                f"got {settle:g}")
        self.phase_duration, self.settle = phase_duration, settle
        self.p_hidden, self.p_output = p_hidden, p_output
        self.anneal_examples = anneal_examples
        self.n_examples = 0          # examples learned so far (the annealing clock; checkpointed)

    # ------------------------------------------------------------------ spiking face
    def phases(self):
        return (Phase("forward", self.phase_duration, self.settle),
                Phase("target", self.phase_duration, self.settle, target=True))

    def _errors(self, sc, rec):
        """Per feedforward pathway: (E, presynaptic PSP̄_f, P) and the output's E⁰."""
        f, t = rec["forward"], rec["target"]
        out = sc.circuit.output.name
        ff = sc.circuit.feedforward()
        res = {}
        for q in ff:
            p = sc.params[q.post]
            Cf = f.mean(q.post, "v_soma")
            psp = f.psp(q.pre, p.tau_L, p.tau_s, sc.dt)
            if q.post == out:
                k = p.g_B / (p.g_L + p.g_B + p.g_A)
                lam_t = (p.phi_max * sigmoid(t.values[q.post]["v_soma"])).mean(axis=0)
                E = -(lam_t - p.phi_max * sigmoid(Cf)) * k * p.phi_max * dsigmoid(Cf)
                P = self.p_output / p.phi_max ** 2
            else:
                k = p.g_B / (p.g_L + p.g_B + p.g_A)
                alpha_f = sigmoid(f.mean(q.post, "v_apical"))
                alpha_t = sigmoid(t.mean(q.post, "v_apical"))
                E = -(alpha_t - alpha_f) * k * p.phi_max * dsigmoid(Cf)
                P = self.p_hidden / p.phi_max
            res[q.name] = (E, psp, P)
        return res

    def anneal(self) -> float:
        """Step factor τ/(τ + k) after k examples (1 without annealing)."""
        tau = self.anneal_examples
        return 1.0 if tau <= 0 else tau / (tau + self.n_examples)

    def example_update(self, sc, rec):
        g = self.anneal()
        self.n_examples += 1
        return {name: (-g * P * np.outer(E, psp), -g * P * E) for name, (E, psp, P) in self._errors(sc, rec).items()}

    def example_gradient(self, sc, rec):
        """Backprop through the rate network with the circuit's weights, at the phase averages."""
        f = rec["forward"]
        errs = self._errors(sc, rec)
        ff = sc.circuit.feedforward()
        E_bp = {ff[-1].name: errs[ff[-1].name][0]}
        for lo, hi in zip(ff[-2::-1], ff[:0:-1]):
            p = sc.params[lo.post]
            k = p.g_B / (p.g_L + p.g_B + p.g_A)
            Cf = f.mean(lo.post, "v_soma")
            E_bp[lo.name] = (sc.weights(hi.name).T @ E_bp[hi.name]) * k * p.phi_max * dsigmoid(Cf)
        return {name: (-errs[name][2] * np.outer(E, errs[name][1]), -errs[name][2] * E)
                for name, E in E_bp.items()}

    # ------------------------------------------------------------------ rate face
    def update(self, net, x, y, objective, rng):
        fwd = net.forward(x)
        e = objective.teaching_signal(fwd.out, y, rng)
        o_f = objective.output(fwd.out)
        o_t = o_f - e
        n = x.shape[0]
        ups = [None] * net.n_layers
        ups[-1] = (-(e.T @ fwd.h[-1]) / n, -e.mean(axis=0))
        for l in range(net.n_layers - 1):
            D = net.D[l]
            d = (sigmoid(o_t @ D.T) - sigmoid(o_f @ D.T)) * net.df(fwd.a[l])
            ups[l] = ((d.T @ fwd.h[l]) / n, d.mean(axis=0))
        return ups
