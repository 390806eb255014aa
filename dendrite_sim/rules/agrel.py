"""Attention-gated reinforcement learning: AGREL (Roelfsema & van Ooyen 2005, Neural Comput
17:2176) and Q-AGREL (Pozzi, Bohté & Roelfsema 2020, NeurIPS 33).

A trial has two factors that every synapse can see, and nothing else:

1. **Action selection.** The output layer (pre-activation a, one unit per action) picks one
   action k per trial. AGREL: Boltzmann (softmax) sampling, k ~ p = softmax(a). Q-AGREL: the
   outputs are action values Q = a; ε-greedy choice, π_k = (1 − ε)[k = argmax Q] + ε / K.
2. **Global modulator** — the reward-prediction error δ, broadcast to every synapse after the
   reward r ∈ {0, 1} (r = 1 when k is the correct class)::

       AGREL:    δ = (r − p_k) / p_k      (= (1 − p_k)/p_k when rewarded, −1 otherwise)
       Q-AGREL:  δ = r − Q_k

3. **Attentional feedback tag.** Only the chosen output unit sends feedback. Its feedback
   reaches hidden unit j as fb_j = Σ_i B_ji g_i through the feedback pathway (the chosen unit's
   column at the last hidden layer; deeper layers receive the gated feedback of the layer
   above): g_L = onehot(k), g_l = (B_l g_{l+1}) ⊙ f′(a_l), with B = Wᵀ (``feedback =
   "reciprocal"``: the papers' reciprocal, equally trained feedback) or the architecture's
   feedback matrices (``"architecture"``: fixed random ones give attention-gated FA). The
   synapse's tag is g_l h_{l−1}ᵀ and the update is tag × modulator::

       ΔW_l = ⟨ δ g_l h_{l−1}ᵀ ⟩,   Δb_l = ⟨ δ g_l ⟩

   i.e. the circuit's output error is −δ onehot(k), sent back through the feedback pathway
   (:func:`dendrite_sim.engine.rate.backward`).

**Expected update.** AGREL: E_k[δ onehot(k)] = Σ_k p_k (r_k − p_k)/p_k onehot(k) = onehot(y) − p
= −∂L_CE/∂a, so with symmetric feedback the expected update is exactly the negative
cross-entropy gradient (Roelfsema & van Ooyen 2005, eq. 14); the single-trial update is unbiased,
its variance comes from the sampled action. Q-AGREL: E_k[δ onehot(k)] = π ⊙ (onehot(y) − Q), the
negative gradient of the policy-weighted squared value error ½ Σ_k π_k (r_k − Q_k)² with π held
fixed (Pozzi et al. 2020, Sec. 3).

**Targets that are not class labels** (regression, e.g. the rule map's linear teacher): there is
no reward to earn, so the chosen unit's modulator is its own teaching signal e_k (the objective's
error at the output) importance-weighted by the chance of choosing it, δ = −e_k / π_k — for
cross-entropy this is AGREL's δ above, term for term, and E_k[δ onehot(k)] = −e for any
objective. AGREL's policy is then uniform, π_k = 1/K (a softmax of regression outputs can give
a unit a vanishing chance and the modulator an unbounded weight); Q-AGREL needs rewards and
refuses such targets.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.rate import backward
from dendrite_sim.objectives import one_hot, softmax


def boltzmann_policy(a_out: np.ndarray) -> np.ndarray:
    """AGREL's action probabilities p = softmax(a) (batch, K)."""
    return softmax(a_out)


def epsilon_greedy_policy(a_out: np.ndarray, epsilon: float) -> np.ndarray:
    """Q-AGREL's action probabilities π_k = (1 − ε)[k = argmax a] + ε / K (batch, K)."""
    K = a_out.shape[1]
    return (1.0 - epsilon) * one_hot(a_out.argmax(axis=1), K) + epsilon / K


def sample_actions(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of the policy ``pi`` (batch, K)."""
    u = rng.random((len(pi), 1))
    return np.minimum((np.cumsum(pi, axis=1) < u).sum(axis=1), pi.shape[1] - 1)


def is_labels(y: np.ndarray) -> bool:
    return y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


@register("rule", "agrel")
class AGREL(LearningRule):
    """AGREL / Q-AGREL: chosen action, reward-prediction error × feedback tag of the chosen unit."""

    stochastic = True
    params = {
        "variant": Field("str", "agrel", "'agrel': softmax choice, δ = (r − p_k)/p_k "
                         "(Roelfsema & van Ooyen 2005); 'q_agrel': ε-greedy on action values, "
                         "δ = r − Q_k (Pozzi et al. 2020)", choices=("agrel", "q_agrel")),
        "epsilon": Field("float", 0.05, "exploration rate ε of Q-AGREL's ε-greedy choice",
                         lo=0, hi=1),
        "feedback": Field("str", "reciprocal", "'reciprocal': tags through Wᵀ (the papers' "
                          "reciprocal feedback, trained alike); 'architecture': through the "
                          "architecture's feedback matrices B (Wᵀ when symmetric, else fixed random)",
                          choices=("reciprocal", "architecture")),
    }

    def __init__(self, variant="agrel", epsilon=0.05, feedback="reciprocal"):
        self.variant, self.epsilon, self.feedback = variant, epsilon, feedback

    def policy(self, a_out: np.ndarray, labels: bool = True) -> np.ndarray:
        """Action probabilities (batch, K); uniform for targets that are not class labels."""
        if not labels:
            return np.full(a_out.shape, 1.0 / a_out.shape[1])
        if self.variant == "agrel":
            return boltzmann_policy(a_out)
        return epsilon_greedy_policy(a_out, self.epsilon)

    def modulator(self, a_out, pi, k, y, objective, rng) -> np.ndarray:
        """The reward-prediction error δ of each trial's chosen action ``k`` (batch,)."""
        idx = np.arange(len(k))
        if is_labels(y):
            r = (k == y).astype(float)
            if self.variant == "agrel":
                return (r - pi[idx, k]) / pi[idx, k]
            return r - a_out[idx, k]
        if self.variant == "q_agrel":
            raise ScenarioError("rule.variant", "'q_agrel' learns from rewards for class labels; "
                                "this task has real-valued targets — expected variant = 'agrel'")
        e = objective.teaching_signal(a_out, y, rng)
        return -e[idx, k] / pi[idx, k]

    def update(self, net, x, y, objective, rng):
        fwd = net.forward(x)
        pi = self.policy(fwd.out, is_labels(y))
        k = sample_actions(pi, rng)
        delta = self.modulator(fwd.out, pi, k, y, objective, rng)
        e_out = -delta[:, None] * one_hot(k, fwd.out.shape[1])
        via = "B" if self.feedback == "architecture" and net.feedback != "symmetric" else "weights"
        return backward(net, fwd, e_out, feedback=via)
