"""Softmax cross-entropy."""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.interfaces import Objective
from dendrite_sim.core.registry import register
from dendrite_sim.objectives import one_hot, softmax


@register("objective", "cross_entropy")
class CrossEntropy(Objective):
    """Softmax cross-entropy: L = −log p_y, p = softmax(a); ∂L/∂a = p − onehot(y)."""

    def loss_per_sample(self, a_out, y):
        z = a_out - a_out.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y]

    def gradient(self, a_out, y):
        return softmax(a_out) - one_hot(y, a_out.shape[1])

    def predict(self, a_out):
        return a_out.argmax(axis=1)

    def output(self, a_out):
        return softmax(a_out)
