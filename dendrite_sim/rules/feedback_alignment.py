"""Feedback alignment (Lillicrap, Cownden, Tweed & Akerman 2016 Nat Commun 7:13276).

δ_l = (B_l δ_{l+1}) ⊙ f′(a_l) with a fixed random feedback matrix B_l in place of W_{l+1}ᵀ;
ΔW_l = −⟨δ_l h_{l−1}ᵀ⟩. The forward weights come to align with Bᵀ, so the update's angle to the
gradient falls well below 90° during training.

With a learned feedback pathway (architecture ``feedback = "learned"``) B follows the
Kolen–Pollack update (Akrout et al. 2019 NeurIPS): ΔB_l = ΔW_{l+1}ᵀ, with both W and B decaying by
``decay``, which drives B → Wᵀ.
"""

from __future__ import annotations

from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.rate import backward


@register("rule", "feedback_alignment")
class FeedbackAlignment(LearningRule):
    """Feedback alignment: errors sent back through the architecture's feedback matrices B."""

    params = {
        "decay": Field("float", 0.0, "Kolen–Pollack weight decay per update (learned feedback only)",
                       lo=0, hi=1),
    }

    def __init__(self, decay=0.0):
        self.decay = decay

    def update(self, net, x, y, objective, rng):
        fwd = net.forward(x)
        ups = backward(net, fwd, objective.teaching_signal(fwd.out, y, rng), feedback="B")
        if net.feedback == "learned":
            self.pending_feedback = [ups[l + 1][0].T for l in range(net.n_layers - 1)]
        return ups

    def after_step(self, net, lr):
        """Kolen–Pollack: B_l ← (1 − decay) B_l + lr · ΔW_{l+1}ᵀ (learned feedback only)."""
        if net.feedback == "learned" and getattr(self, "pending_feedback", None) is not None:
            for l, dB in enumerate(self.pending_feedback):
                net.B[l] = (1.0 - self.decay) * net.B[l] + lr * dB
            for W in net.W:
                W *= 1.0 - self.decay
            self.pending_feedback = None
