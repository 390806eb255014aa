"""Node perturbation (Werfel, Xie & Seung 2005 Neural Comput; Williams 1992).

Every unit's pre-activation receives Gaussian noise ξ_l ~ N(0, σ²); the circuit observes the change
of the loss, ΔL = L(a + ξ) − L(a), per sample, and correlates it with its own noise:

    ĝ(a_l) = ΔL · ξ_l / σ²,    ΔW_l = −⟨ĝ(a_l) h_{l−1}ᵀ⟩,    Δb_l = −⟨ĝ(a_l)⟩

where h_{l−1} are the *unperturbed* presynaptic activities. To first order in σ,
E[ΔL ξ_l/σ²] = ∂L/∂a_l, so the estimate is unbiased for small σ; its variance grows with the
number of perturbed units. ``samples`` perturbations per trial are averaged.
"""

from __future__ import annotations

from dendrite_sim.core.registry import register
from dendrite_sim.rules.perturbation import PerturbationRule, perturbation_params


@register("rule", "node_perturbation")
class NodePerturbation(PerturbationRule):
    """Node perturbation: correlate each unit's injected noise with the change of the loss."""

    params = perturbation_params("s.d. of the pre-activation noise")

    def accumulate(self, acc, net, x, y, clean, L0, objective, rng):
        n = x.shape[0]
        xi = [rng.standard_normal((n, W.shape[0])) * self.sigma for W in net.W]
        dL = objective.loss_per_sample(net.forward(x, node_noise=xi).out, y) - L0
        for l, (dW, db) in enumerate(acc):
            g = dL[:, None] * xi[l] / self.sigma**2
            dW -= g.T @ clean.h[l] / n
            db -= g.mean(axis=0)
