"""Weight perturbation (Jabri & Flower 1992; Werfel, Xie & Seung 2005).

All weights and biases are perturbed at once, ξ ~ N(0, σ²); the batch loss change
ΔL = L(W + ξ) − L(W) is correlated with the perturbation: ΔW = −ΔL ξ / σ². Unbiased to first order
in σ; its variance grows with the number of weights, so it exceeds node perturbation's.
Each sample of the batch gets its own perturbation (one trial = one stimulus), and ``samples``
perturbations per trial are averaged.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field


@register("rule", "weight_perturbation")
class WeightPerturbation(LearningRule):
    """Weight perturbation: correlate random weight changes with the change of the loss."""

    stochastic = True
    params = {
        "sigma": Field("float", 1e-3, "s.d. of the weight noise", lo=0, lo_open=True),
        "samples": Field("int", 1, "perturbations averaged per update", lo=1),
    }

    def __init__(self, sigma=1e-3, samples=1):
        self.sigma, self.samples = sigma, samples

    def update(self, net, x, y, objective, rng):
        n = x.shape[0]
        L0 = objective.loss_per_sample(net.forward(x).out, y)
        acc = [(np.zeros_like(W), np.zeros_like(b)) for W, b in zip(net.W, net.b)]
        for _ in range(self.samples):
            xiW = [rng.standard_normal((n, *W.shape)) * self.sigma for W in net.W]
            xib = [rng.standard_normal((n, *b.shape)) * self.sigma for b in net.b]
            out = net.forward_with(x, [W + e for W, e in zip(net.W, xiW)],
                                   [b + e for b, e in zip(net.b, xib)])
            dL = objective.loss_per_sample(out, y) - L0
            for l, (dW, db) in enumerate(acc):
                dW -= np.einsum("n,nij->ij", dL, xiW[l]) / (n * self.sigma**2)
                db -= (dL[:, None] * xib[l]).mean(axis=0) / self.sigma**2
        return [(dW / self.samples, db / self.samples) for dW, db in acc]
