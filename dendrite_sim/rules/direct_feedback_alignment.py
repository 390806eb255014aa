"""Direct feedback alignment (Nøkland 2016 NeurIPS).

Each hidden layer receives the output error through its own fixed random matrix D_l:
δ_l = (D_l δ_L) ⊙ f′(a_l), ΔW_l = −⟨δ_l h_{l−1}ᵀ⟩. No error passes between hidden layers.
"""

from __future__ import annotations

from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.engine.rate import backward


@register("rule", "direct_feedback_alignment")
class DirectFeedbackAlignment(LearningRule):
    """Direct feedback alignment: the output error reaches every hidden layer by fixed random D."""

    def update(self, net, x, y, objective, rng):
        fwd = net.forward(x)
        return backward(net, fwd, objective.teaching_signal(fwd.out, y, rng), feedback="D")
