"""Backpropagation of error (Rumelhart, Hinton & Williams 1986): the exact gradient.

δ_L = ∂L/∂a_L,  δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l),  ΔW_l = −⟨δ_l h_{l−1}ᵀ⟩_batch.
Requires weight transport: the feedback pathway is the forward weights themselves.
"""

from __future__ import annotations

from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.engine.rate import backward


@register("rule", "backprop")
class Backprop(LearningRule):
    """Backpropagation: exact gradient through the transposed forward weights."""

    def update(self, net, x, y, objective, rng):
        fwd = net.forward(x)
        return backward(net, fwd, objective.teaching_signal(fwd.out, y, rng), feedback="weights")
