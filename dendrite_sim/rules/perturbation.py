"""Shared machinery of the perturbation rules (node and weight perturbation).

Both inject Gaussian noise of s.d. ``sigma``, observe the per-sample change of the loss
ΔL = L(perturbed) − L(clean), and correlate it with the noise; ``samples`` perturbations are
averaged per update. Subclasses say where the noise goes (:meth:`PerturbationRule.accumulate`).
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.schema import Field


def perturbation_params(noise_doc: str) -> dict:
    return {
        "sigma": Field("float", 1e-3, noise_doc, lo=0, lo_open=True),
        "samples": Field("int", 1, "perturbations averaged per update", lo=1),
    }


class PerturbationRule(LearningRule):
    stochastic = True

    def __init__(self, sigma=1e-3, samples=1):
        self.sigma, self.samples = sigma, samples

    def update(self, net, x, y, objective, rng):
        clean = net.forward(x)
        L0 = objective.loss_per_sample(clean.out, y)
        acc = [(np.zeros_like(W), np.zeros_like(b)) for W, b in zip(net.W, net.b)]
        for _ in range(self.samples):
            self.accumulate(acc, net, x, y, clean, L0, objective, rng)
        return [(dW / self.samples, db / self.samples) for dW, db in acc]

    def accumulate(self, acc, net, x, y, clean, L0, objective, rng) -> None:
        """Draw one perturbation and subtract its gradient estimate from ``acc`` in place."""
        raise NotImplementedError
