"""Gradient diagnostics for any learning rule (Richards et al. 2019 Figs 2 and 3).

For a network, a pool of samples (x, y) and an objective, let g = −∇L be the exact descent
direction on the pool (backprop through the forward weights). A rule's update Δ is a random
variable: over the mini-batch it sees and over its own noise (perturbations, sampled rewards).

* **mean update** m = E[Δ]. The rules here average per-sample updates, so the expectation over
  uniformly drawn mini-batches equals the rule's update on the whole pool; for stochastic rules it
  is further averaged over ``draws`` independent calls on the pool.
* **cosine** cos(m, g) and **angle_deg** = arccos(cos).
* **bias** = min_{s ≥ 0} ‖s m − g‖² / ‖g‖² = 1 − max(cos, 0)²: the squared relative error of the
  best rescaling of the mean update — scale-free, so rules with arbitrary step sizes (feedback
  alignment) sit on one map with unbiased estimators; 0 only when E[Δ] ∥ g.
  **bias_raw** = ‖m − g‖² / ‖g‖² is the unscaled version (meaningful for rules that estimate the
  gradient at its own scale: backprop, node and weight perturbation).
* **variance** = tr Cov[Δ_b] / ‖m‖² for updates Δ_b on mini-batches of size ``batch_size``: the
  inverse signal-to-noise ratio of one update, again scale-free; undefined (``None``) for a part
  the rule never changes (m = 0, e.g. the hidden layers under a single-layer rule).
* **Fig 3 decomposition** of the mean update into the part along ĝ = g/‖g‖, Δ∥ = ⟨m, ĝ⟩ĝ, and the
  orthogonal rest Δ⊥: the fraction of ‖m‖² along the gradient and the loss change per unit step
  along each part (only Δ∥ changes the loss to first order).

Every quantity is given for the whole parameter vector and per layer (weights of layer l).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dendrite_sim.engine.rate import backward


def descent_direction(net, x, y, objective):
    """Exact −∇L per layer as ``[(dW, db), ...]`` (backprop through W, exact output gradient)."""
    fwd = net.forward(x)
    return backward(net, fwd, objective.gradient(fwd.out, y), feedback="weights")


def flat(updates, layer: int | None = None) -> np.ndarray:
    """Concatenate ``[(dW, db), ...]`` into one vector (or one layer's weights and bias)."""
    parts = updates if layer is None else [updates[layer]]
    return np.concatenate([np.concatenate([dW.ravel(), db.ravel()]) for dW, db in parts])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


@dataclass
class EstimatorStats:
    cosine: float
    angle_deg: float
    bias: float
    bias_raw: float
    variance: float | None
    parallel_fraction: float

    def as_dict(self):
        return {k: None if v is None else float(v) for k, v in self.__dict__.items()}


def _stats(m: np.ndarray, g: np.ndarray, tr_cov: float) -> EstimatorStats:
    c = cosine(m, g)
    gg = float(g @ g)
    mm = float(m @ m)
    return EstimatorStats(
        cosine=c,
        angle_deg=float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))),
        bias=max(0.0, 1.0 - max(c, 0.0) ** 2),
        bias_raw=float((m - g) @ (m - g) / gg) if gg > 0 else float("nan"),
        variance=None if mm == 0 else tr_cov / mm,   # NaN (diverged) stays NaN
        parallel_fraction=c * c,
    )


def mean_update(rule, net, x, y, objective, rng, draws: int):
    """E[Δ] on the pool: one call for deterministic rules, the mean of ``draws`` calls otherwise."""
    k = draws if rule.stochastic else 1
    acc = None
    for _ in range(k):
        u = rule.update(net, x, y, objective, rng)
        acc = u if acc is None else [(a + dW, b + db) for (a, b), (dW, db) in zip(acc, u)]
    return [(a / k, b / k) for a, b in acc]


def minibatch_updates(rule, net, x, y, objective, rng, batch_size: int, n_batches: int):
    """Updates on ``n_batches`` mini-batches drawn uniformly without replacement from the pool."""
    out = []
    for _ in range(n_batches):
        idx = rng.choice(len(x), size=min(batch_size, len(x)), replace=False)
        out.append(rule.update(net, x[idx], y[idx], objective, rng))
    return out


def estimator_report(rule, net, x, y, objective, rng, *, draws: int = 50, batch_size: int = 32,
                     n_batches: int = 100) -> dict:
    """Bias / variance / angle of ``rule`` as an estimator of −∇L, whole network and per layer."""
    rule.setup(net, rng)
    g_upd = descent_direction(net, x, y, objective)
    m_upd = mean_update(rule, net, x, y, objective, rng, draws)
    batches = minibatch_updates(rule, net, x, y, objective, rng, batch_size, n_batches)
    report = {}
    for layer in [None, *range(net.n_layers)]:
        g, m = flat(g_upd, layer), flat(m_upd, layer)
        B = np.stack([flat(u, layer) for u in batches])
        tr_cov = float(np.sum(B.var(axis=0, ddof=1)))
        s = _stats(m, g, tr_cov).as_dict()
        if layer is None:
            report.update(s)
        else:
            report.setdefault("layers", []).append(s)
    report["decomposition"] = decomposition(net, x, y, objective, m_upd, g_upd)
    return report


def decomposition(net, x, y, objective, m_upd, g_upd, step: float = 1e-4) -> dict:
    """Richards et al. Fig 3: split the update into the part along the gradient and the rest.

    Returns the fraction of ‖m‖² along ĝ and the loss change per unit step length along Δ∥ and Δ⊥
    (finite differences with a step of ``step`` in parameter norm).
    """
    g, m = flat(g_upd), flat(m_upd)
    gh = g / np.linalg.norm(g)
    par = (m @ gh) * gh
    orth = m - par
    L0 = objective.loss(net.forward(x).out, y)

    def slope(direction):
        n = np.linalg.norm(direction)
        if n <= 1e-9 * np.linalg.norm(m):  # numerically absent part: no slope to measure
            return 0.0
        return (_loss_at(net, x, y, objective, direction * (step / n)) - L0) / step

    mm = float(m @ m)
    return {"parallel_fraction": float(par @ par / mm) if mm else 0.0,
            "orthogonal_fraction": float(orth @ orth / mm) if mm else 0.0,
            "loss_slope_parallel": float(slope(par)), "loss_slope_orthogonal": float(slope(orth)),
            "loss_slope_gradient": float(slope(g))}


def _loss_at(net, x, y, objective, delta_flat):
    W = [w.copy() for w in net.W]
    b = [v.copy() for v in net.b]
    i = 0
    for l in range(net.n_layers):
        nW, nb = W[l].size, b[l].size
        W[l] += delta_flat[i:i + nW].reshape(W[l].shape)
        b[l] += delta_flat[i + nW:i + nW + nb]
        i += nW + nb
    return objective.loss(net.forward_with(x, W, b), y)


def alignment_angle(rule, net, x, y, objective, rng) -> list[float]:
    """Per-layer angle (degrees) between the rule's update on (x, y) and −∇L."""
    u = rule.update(net, x, y, objective, rng)
    g = descent_direction(net, x, y, objective)
    return [float(np.degrees(np.arccos(np.clip(cosine(flat(u, l), flat(g, l)), -1, 1))))
            for l in range(net.n_layers)]
