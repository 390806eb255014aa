"""Reward maximisation with REINFORCE and a reward-prediction-error baseline.

The output layer is a softmax policy p = softmax(a). On each trial an action k ~ p is drawn;
the reward is r = 1 when k is the correct class, else 0. The objective is the negative expected
reward, L = −E[r] = −p_y, whose exact gradient is ∂L/∂a = −p_y (onehot(y) − p).

The circuit never sees that gradient. It receives the REINFORCE estimate (Williams 1992)
ê = −(r − r̄) (onehot(k) − p), where δ = r − r̄ is the reward-prediction error against a
running baseline r̄ ← r̄ + α (mean r − r̄). E[ê] = ∂L/∂a for any baseline independent of k.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.interfaces import Objective
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.objectives import one_hot, softmax


@register("objective", "reward")
class Reward(Objective):
    """Negative expected reward of a softmax policy; teaching signal by REINFORCE with an RPE."""

    params = {
        "baseline_rate": Field("float", 0.05, "update rate α of the reward baseline r̄", lo=0, hi=1),
        "reward_correct": Field("float", 1.0, "reward for the correct action"),
        "reward_wrong": Field("float", 0.0, "reward for any other action"),
    }

    def __init__(self, baseline_rate=0.05, reward_correct=1.0, reward_wrong=0.0):
        self.baseline_rate = baseline_rate
        self.r_correct, self.r_wrong = reward_correct, reward_wrong
        self.baseline = 0.5 * (reward_correct + reward_wrong)

    def loss_per_sample(self, a_out, y):
        p = softmax(a_out)[np.arange(len(y)), y]
        return -(self.r_wrong + (self.r_correct - self.r_wrong) * p)

    def gradient(self, a_out, y):
        p = softmax(a_out)
        py = p[np.arange(len(y)), y][:, None]
        return -(self.r_correct - self.r_wrong) * py * (one_hot(y, a_out.shape[1]) - p)

    def act(self, a_out, rng):
        """Sample one action per trial from the softmax policy."""
        p = softmax(a_out)
        u = rng.random((len(p), 1))
        return np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)

    def teaching_signal(self, a_out, y, rng):
        p = softmax(a_out)
        k = self.act(a_out, rng)
        r = np.where(k == y, self.r_correct, self.r_wrong)
        rpe = r - self.baseline
        self.baseline += self.baseline_rate * (r.mean() - self.baseline)
        return -rpe[:, None] * (one_hot(k, p.shape[1]) - p)

    def predict(self, a_out):
        return a_out.argmax(axis=1)

    def output(self, a_out):
        return softmax(a_out)
