"""Weight perturbation (Jabri & Flower 1992; Werfel, Xie & Seung 2005).

All weights and biases are perturbed at once, ξ ~ N(0, σ²); the batch loss change
ΔL = L(W + ξ) − L(W) is correlated with the perturbation: ΔW = −ΔL ξ / σ². Unbiased to first order
in σ; its variance grows with the number of weights, so it exceeds node perturbation's.
Each sample of the batch gets its own perturbation (one trial = one stimulus), and ``samples``
perturbations per trial are averaged.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.registry import register
from dendrite_sim.rules.perturbation import PerturbationRule, perturbation_params


@register("rule", "weight_perturbation")
class WeightPerturbation(PerturbationRule):
    """Weight perturbation: correlate random weight changes with the change of the loss."""

    params = perturbation_params("s.d. of the weight noise")

    def accumulate(self, acc, net, x, y, clean, L0, objective, rng):
        n = x.shape[0]
        xiW = [rng.standard_normal((n, *W.shape)) * self.sigma for W in net.W]
        xib = [rng.standard_normal((n, *b.shape)) * self.sigma for b in net.b]
        out = net.forward_with(x, [W + e for W, e in zip(net.W, xiW)], [b + e for b, e in zip(net.b, xib)])
        dL = objective.loss_per_sample(out, y) - L0
        for l, (dW, db) in enumerate(acc):
            dW -= np.einsum("n,nij->ij", dL, xiW[l]) / (n * self.sigma**2)
            db -= (dL[:, None] * xib[l]).mean(axis=0) / self.sigma**2
