"""RDD feedback learning (Guerguiev, Kording & Richards 2020, ICLR, "Spike-based causal inference
for weight alignment").

Forward weights learn as in feedback alignment, δ_l = (B_l δ_{l+1}) ⊙ f′(a_l), ΔW_l = −⟨δ_l h_{l−1}ᵀ⟩;
the feedback matrices B_l are trained so that they come to equal each neuron's *causal effect* on
the layer above, estimated from its own spikes by a regression discontinuity design.

**Probe (spiking noise).** Between updates every hidden unit j of layer l is driven by its
pre-activation plus noise, z_j = a_j + σ ξ_j, with ξ correlated across the layer (correlation ρ:
ξ = √ρ c + √(1−ρ) η, c shared) — the confound that makes naive correlations wrong. The unit fires
when its drive crosses threshold, s_j = H(z_j − θ), and the layer above receives the noisy rate
plus the spike::

    u_{l+1} = W_{l+1} (f(z) + s) + b_{l+1}

so the true causal effect of unit j's spike on unit i above is W_{l+1, ij}.

**Regression discontinuity.** On the trials where unit j was near threshold, |z_j − θ| < w
(``window``, in s.d. of the noise: w = window · σ), fit each downstream response with a separate
line on each side of threshold (Guerguiev et al. 2020, eq. 5; Imbens & Lemieux 2008)::

    u_i ≈ γ_0 + γ_1 (z_j − θ) + s_j [β_ij + γ_2 (z_j − θ)]

β_ij, the jump at threshold, estimates the causal effect; everything smooth in z_j (the unit's
own rate f(z_j) and every correlated neighbour's rate and spikes) is absorbed by the lines. The
naive estimate — the difference of mean responses with and without a spike over all trials —
also carries the neighbours' correlated spikes (:func:`naive_effect`).

**Feedback update.** Each training step presents its mini-batch ``probe_trials`` times with
probe noise; the regressions' sufficient statistics (G = Σ XᵀX, H = Σ Xᵀu per unit) are
accumulated with forgetting rate λ (``memory``), G ← (1 − λ) G + G_step, so β̂_l (n_{l+1}, n_l)
is the fit over the last ≈ 1/λ steps and tracks the forward weights as they learn. The feedback
matrix then descends ½‖B_l − β̂_lᵀ‖² (the paper's alignment term): B_l ← B_l + η_B (β̂_lᵀ − B_l).
B comes to track W_{l+1}ᵀ, so the forward update approaches backprop's (measured on digits,
64-100-10 tanh, 10 epochs: angle between B and W_2ᵀ 19° against 48° for fixed random feedback).
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.rate import backward


def probe(f, W_next, b_next, a, rng, sigma, rho, theta):
    """One round of spiking noise on a layer with pre-activations ``a`` (trials, n).

    Returns the drives z, spikes s = H(z − θ) and downstream responses
    u = (f(z) + s) W_nextᵀ + b_next (trials, n_next)."""
    shared = rng.standard_normal((a.shape[0], 1))
    xi = np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * rng.standard_normal(a.shape)
    z = a + sigma * xi
    s = (z > theta).astype(float)
    return z, s, (f(z) + s) @ W_next.T + b_next


def rdd_statistics(z, s, u, theta, window):
    """Sufficient statistics of the per-unit discontinuity regressions.

    For unit j the design rows are X = [1, d, s_j, s_j d] (d = z_j − θ) on the trials with
    |d| < window; returns G (n, 4, 4) = Σ XᵀX and H (n, 4, m) = Σ Xᵀu, which add over batches."""
    d = z - theta
    near = (np.abs(d) < window).astype(float)
    X = np.stack([near, near * d, near * s, near * s * d], axis=2)          # (trials, n, 4)
    return np.einsum("tnp,tnq->npq", X, X), np.einsum("tnp,tm->npm", X, u)


def rdd_solve(G, H, min_trials=3):
    """β (m, n): the jump coefficient of each unit's regression from statistics ``G``, ``H``
    (NaN where a side of threshold has fewer than ``min_trials`` weight)."""
    on, total = G[:, 2, 2], G[:, 0, 0]
    ok = (on >= min_trials) & (total - on >= min_trials)
    beta = np.full((H.shape[2], G.shape[0]), np.nan)
    if ok.any():
        coef = np.linalg.solve(G[ok] + 1e-9 * np.eye(4), H[ok])              # (n_ok, 4, m)
        beta[:, ok] = coef[:, 2, :].T
    return beta


def rdd_effect(z, s, u, theta, window):
    """Regression-discontinuity estimate of each unit's causal effect on each response.

    ``z``, ``s``: drives and spikes (trials, n); ``u``: responses (trials, m). For unit j, the
    trials with |z_j − θ| < window are fitted by u ≈ γ0 + γ1 d + s (β + γ2 d), d = z_j − θ, and β
    is returned as column j of an (m, n) matrix (NaN where a side of threshold has < 3 trials).
    """
    return rdd_solve(*rdd_statistics(z, s, u, theta, window))


def naive_effect(s, u):
    """Mean response with a spike minus without, over all trials (confounded), (m, n)."""
    on = s.sum(axis=0)
    off = len(s) - on
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((u.T @ s) / on - (u.T @ (1 - s)) / off)


@register("rule", "rdd")
class RDDFeedback(LearningRule):
    """Feedback alignment whose feedback weights learn each neuron's causal effect by RDD."""

    # the forward update is deterministic given B; the probe's draws only move B (after_step)
    stochastic = False
    params = {
        "sigma": Field("float", 1.0, "s.d. σ of the probe noise on the pre-activations", lo=0, lo_open=True),
        "correlation": Field("float", 0.5, "correlation ρ of the probe noise across a layer", lo=0, hi=1,
                             hi_open=True),
        "threshold": Field("float", 0.0, "spike threshold θ on the drive z = a + σξ"),
        "window": Field("float", 1.0, "near-threshold window, in units of σ", lo=0, lo_open=True),
        "probe_trials": Field("int", 8, "noisy presentations of each mini-batch for the estimate", lo=1),
        "memory": Field("float", 0.002, "forgetting rate λ of the regression statistics per step "
                        "(G ← (1 − λ) G + G_step)", lo=0, hi=1, lo_open=True),
        "feedback_lr": Field("float", 0.05, "η_B: B ← B + η_B (β̂ᵀ − B) per training step", lo=0, hi=1),
    }

    def __init__(self, sigma=1.0, correlation=0.5, threshold=0.0, window=1.0, probe_trials=8,
                 memory=0.002, feedback_lr=0.05):
        self.sigma, self.rho, self.theta = sigma, correlation, threshold
        self.window, self.probe_trials = window, probe_trials
        self.memory, self.feedback_lr = memory, feedback_lr
        self.stats = None

    def check_architecture(self, architecture):
        if getattr(architecture, "feedback", None) == "symmetric":
            raise ScenarioError("architecture.feedback", "rule 'rdd' learns its own feedback matrices; "
                                "expected feedback = 'random' (their initial state), got 'symmetric'")

    def setup(self, net, rng):
        self.stats = None

    def probe_statistics(self, net, x, rng) -> list[tuple[np.ndarray, np.ndarray]]:
        """(G, H) of every hidden layer from ``probe_trials`` noisy presentations of ``x``."""
        fwd = net.forward(np.repeat(x, self.probe_trials, axis=0))
        out = []
        for l in range(net.n_layers - 1):
            z, s, u = probe(net.f, net.W[l + 1], net.b[l + 1], fwd.a[l], rng, self.sigma, self.rho, self.theta)
            out.append(rdd_statistics(z, s, u, self.theta, self.window * self.sigma))
        return out

    def estimate(self) -> list[np.ndarray]:
        """β̂_l (n_{l+1}, n_l) for every hidden layer, from the statistics accumulated so far."""
        return [rdd_solve(G, H) for G, H in self.stats]

    def update(self, net, x, y, objective, rng):
        fwd = net.forward(x)
        ups = backward(net, fwd, objective.teaching_signal(fwd.out, y, rng), feedback="B")
        if net.feedback != "symmetric" and self.feedback_lr > 0:
            new = self.probe_statistics(net, x, rng)
            keep = 1.0 - self.memory
            fresh = self.stats is None or [G.shape for G, _ in self.stats] != [G.shape for G, _ in new]
            self.stats = new if fresh else [
                (keep * G + Gn, keep * H + Hn) for (G, H), (Gn, Hn) in zip(self.stats, new)]
            self.pending = True
        return ups

    def after_step(self, net, lr):
        """B_l ← B_l + η_B (β̂_lᵀ − B_l), for the units whose estimate exists."""
        if not getattr(self, "pending", False):
            return
        for l, beta in enumerate(self.estimate()):
            bt = beta.T
            ok = ~np.isnan(bt)
            net.B[l][ok] += self.feedback_lr * (bt[ok] - net.B[l][ok])
        self.pending = False
