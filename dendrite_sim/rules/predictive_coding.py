"""Predictive coding (Whittington & Bogacz 2017, Neural Comput 29:1229, "An approximation of the
error backpropagation algorithm in a predictive coding network with local Hebbian synaptic
plasticity").

**Network.** Value nodes x_1 … x_L (x_0 ≡ the input, whose rate is the input itself as in the
network's forward pass; f(x_l) = ``net.f`` for hidden layers), predictions and error nodes ::

    μ_l = W_l f(x_{l−1}) + b_l,      ε_l = (x_l − μ_l) / σ_l²,

with variances σ_l² = ``hidden_variance`` for hidden layers and σ_L² = ``output_variance`` for the
output. The energy (negative log joint of the Gaussian model, up to constants) is
E = Σ_l ½ σ_l² ‖ε_l‖². The value nodes map onto the rate network as x_l ↔ a_l (pre-activations):
with no error anywhere, x_l = μ_l is the feedforward pass (``net.forward``).

**Output.** As in the paper's supervised setting the output value nodes are clamped to the
target, here the target of the objective's teaching signal e at the feedforward output,
t = a_L − e (the target itself for MSE, a − softmax(a) + onehot(y) for cross-entropy, the
sampled REINFORCE target for reward), so ε_L = (t − μ_L)/σ_L².

**Inference (relaxation to equilibrium).** Hidden value nodes start at their predictions
(x_l = μ_l, all hidden errors zero) and follow the paper's dynamics
ẋ_l = −∂E/∂x_l = −ε_l + f′(x_l) ⊙ W_{l+1}ᵀ ε_{l+1}, integrated with synchronous Euler steps
x_l ← x_l + η_l ẋ_l. The step of layer l is ``inference_rate`` η over a bound on that layer's
curvature, η_l = η / (1 + (σ_l²/σ_{l+1}²) ‖W_{l+1}‖₂² max f′(a_l)²) (a per-layer time constant,
computed once per mini-batch at the feedforward pass), so η ≈ 1 is stable and fast on deep
networks too (a plain step of 0.5 oscillates on a 20-15-10-5 tanh network at initialisation);
for the last hidden layer with σ_L² ≫ 1 it is ≈ η, the fixed-point iteration
x_l ← μ_l + f′(x_l) ⊙ W_{l+1}ᵀ ε_{l+1}. **Convergence criterion:** stop after the first step in
which no value node moved by more than ``tol · σ_h²/σ_L² · max|e|`` (the size of the hidden
displacement the output error causes, so ``tol`` is a relative precision), or after
``inference_steps`` steps (``self.last_steps``, ``self.converged``). Batched: the mini-batch relaxes
as one array per layer. (With ReLU units the nodes can chatter across the kink and never meet a
tight ``tol``; the step cap bounds the cost.)

**Learning** at equilibrium (the paper's Hebbian rule ΔW_l = α ε_l f(x_{l−1})ᵀ, Δb_l = α ε_l), here
scaled by σ_L² so that it is the descent direction at the gradient's scale ::

    ΔW_l = σ_L² ⟨ε_l f(x_{l−1})ᵀ⟩_batch,     Δb_l = σ_L² ⟨ε_l⟩_batch.

**Relation to backprop.** At equilibrium ε_l = f′(x_l) ⊙ W_{l+1}ᵀ ε_{l+1} exactly — backprop's
recursion, evaluated at the equilibrium values. When the output variance is large relative to the
hidden ones (the paper's condition for convergence to backprop), the output error is a weak
(soft-clamped) nudge, the hidden nodes stay at their feedforward values up to O(σ_h²/σ_L²), and
σ_L² ε_l → −δ_l = −∂L/∂a_l: the update becomes backprop's. The default σ_L² = 100 (σ_h² = 1)
gives per-layer cosines with backprop's deltas > 0.999 on random tanh networks; σ_L² = 1 is the
"hard" clamped network, which moves the hidden nodes far from their predictions (a different
rule, still learning).

The top-down pathway carries the errors through the transposed forward weights W_{l+1}ᵀ (the
paper's symmetric-connection assumption); the architecture's feedback matrices B are not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field


@dataclass
class Equilibrium:
    """The relaxed network: value nodes ``x[l]`` and errors ``eps[l]`` of layers 1..L, the presynaptic
    rates ``r[l]`` = f(x_{l−1}) (``r[0]`` the input), steps taken and whether it converged."""

    x: list
    eps: list
    r: list
    steps: int
    converged: bool


def _spectral_norm(W: np.ndarray) -> np.float64:
    """‖W‖₂; NaN for a matrix that is not finite (a diverged network), so the NaN reaches the
    metrics and the run is reported as diverged instead of failing inside the SVD."""
    return np.float64(np.linalg.norm(W, 2)) if np.all(np.isfinite(W)) else np.float64("nan")


@register("rule", "predictive_coding")
class PredictiveCoding(LearningRule):
    """Predictive coding: error units relax to equilibrium with the output clamped to the target;
    Hebbian ΔW_l = σ_L² ε_l f(x_{l−1})ᵀ."""

    params = {
        "output_variance": Field("float", 100.0, "σ_L²: variance of the output error units (large: "
                                 "weak output error, the update tends to backprop's)", lo=0, lo_open=True),
        "hidden_variance": Field("float", 1.0, "σ_l²: variance of the hidden error units",
                                 lo=0, lo_open=True),
        "inference_rate": Field("float", 1.0, "η: Euler step of the value-node dynamics, in units "
                                "of each layer's curvature bound", lo=0, lo_open=True, hi=2),
        "inference_steps": Field("int", 200, "most relaxation steps per mini-batch", lo=1),
        "tol": Field("float", 1e-6, "convergence: largest value-node change of a step, relative to "
                     "the hidden displacement σ_h²/σ_L²·max|e|", lo=0, lo_open=True),
    }

    def __init__(self, output_variance=100.0, hidden_variance=1.0, inference_rate=1.0,
                 inference_steps=200, tol=1e-6):
        self.output_variance, self.hidden_variance = float(output_variance), float(hidden_variance)
        self.inference_rate, self.inference_steps = float(inference_rate), int(inference_steps)
        self.tol = float(tol)
        self.last_steps = 0
        self.converged = True

    def _errors(self, net, x_in, xs, t):
        """Presynaptic rates r, predictions' errors ε of layers 1..L for hidden values ``xs``."""
        r = [x_in, *(net.f(v) for v in xs)]
        eps = [(xs[l] - (r[l] @ net.W[l].T + net.b[l])) / self.hidden_variance for l in range(len(xs))]
        eps.append((t - (r[-1] @ net.W[-1].T + net.b[-1])) / self.output_variance)
        return r, eps

    def relax(self, net, x, target, a=None) -> Equilibrium:
        """Relax the hidden value nodes with the output clamped to ``target`` (batch, n_out);
        ``a``: the feedforward pre-activations (computed when omitted)."""
        if a is None:
            a = net.forward(x).a
        L = net.n_layers
        xs = [v.copy() for v in a[:-1]]
        scale = float(np.abs(target - a[-1]).max(initial=0.0))
        thr = self.tol * self.hidden_variance / self.output_variance * scale
        r, eps = self._errors(net, x, xs, target)
        steps, ok = 0, True
        # per-layer Euler step: η over the curvature bound 1 + (σ_l²/σ_{l+1}²) ‖W_{l+1}‖² max f′²
        var = [self.hidden_variance] * (L - 1) + [self.output_variance]
        with np.errstate(over="ignore", invalid="ignore"):     # a diverged network: inf/NaN steps
            step = [self.inference_rate / (1.0 + var[l] / var[l + 1] * np.square(_spectral_norm(net.W[l + 1]))
                                           * np.square(np.abs(net.df(a[l])).max(initial=0.0)))
                    for l in range(L - 1)]
        if L > 1 and scale > 0:
            ok = False
            while steps < self.inference_steps:
                steps += 1
                dmax = 0.0
                for l in range(L - 1):
                    dx = step[l] * (-eps[l] + net.df(xs[l]) * (eps[l + 1] @ net.W[l + 1]))
                    xs[l] = xs[l] + dx
                    dmax = max(dmax, float(np.abs(dx).max(initial=0.0)))
                r, eps = self._errors(net, x, xs, target)
                if dmax <= thr:
                    ok = True
                    break
        return Equilibrium(x=[*xs, target], eps=eps, r=r, steps=steps, converged=ok)

    def update(self, net, x, y, objective, rng):
        fwd = net.forward(x)
        e = objective.teaching_signal(fwd.out, y, rng)
        eq = self.relax(net, x, fwd.out - e, a=fwd.a)
        self.last_steps, self.converged = eq.steps, eq.converged
        n, s = x.shape[0], self.output_variance
        return [(s * (eps.T @ r) / n, s * eps.mean(axis=0)) for eps, r in zip(eq.eps, eq.r)]
