"""Covariance rule (Sejnowski 1977): weights follow the covariance of pre- and postsynaptic activity.

For a synapse j → i and K samples k of a presynaptic factor x_j(k) (a rate) and a
postsynaptic factor y_i(k) (a rate, a burst rate ...)::

    Δw_ij = η · Cov_k[x_j(k), y_i(k)] = η · (1/K) Σ_k (y_i(k) − ȳ_i) x_j(k),
    w_ij ← clip(w_ij + Δw_ij, w_min, w_max)

Co-active pairs grow, anti-correlated pairs shrink, and uncorrelated firing leaves the weight
unchanged on average (unlike plain Hebbian x·y growth). ``sign = "anti_hebbian"`` gives the
anti-Hebbian form used for inhibitory synapses (co-activity makes them more negative).

Spiking face, per chunk (:mod:`dendrite_sim.engine.learning`): each chunk is one sample; its
spike counts divided by its length are the rates x(k), y(k), and the means are running
exponential averages over ``tau_mean`` ms (ȳ_i(k) = ȳ_i(k−1) + (y_i(k) − ȳ_i(k−1))·Δt/τ,
updated after the sample is used), so the online update Σ_k (y(k) − ȳ(k−1)) x(k) tracks the
covariance without knowing the whole session in advance. ``post_factor = "bursts"`` uses burst
counts instead of spike counts (apical, burst-coded credit). Between sessions,
:meth:`Covariance.batch` applies the exact K-sample formula above to recorded factors (what
:func:`dendrite_sim.architectures.openscope_circuit.consolidate` does each night).
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.interfaces import LearningRule, LocalFactors
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field


@register("rule", "covariance")
class Covariance(LearningRule):
    """Covariance rule (Sejnowski 1977): Δw ∝ Cov[pre rate, post rate or burst rate]."""

    params = {
        "post_factor": Field("str", "spikes", "postsynaptic factor: spike or burst counts",
                             choices=("spikes", "bursts")),
        "tau_mean": Field("quantity", "1 s", "time constant of the running means", dimension="time",
                          lo=0.0, lo_open=True),
        "sign": Field("str", "hebbian", "hebbian (+Cov) or anti_hebbian (−Cov)", choices=("hebbian", "anti_hebbian")),
    }

    def __init__(self, post_factor: str = "spikes", tau_mean=1000.0, sign: str = "hebbian"):
        from dendrite_sim.core.units import parse_in_unit

        self.post_factor = post_factor
        self.tau_mean = parse_in_unit(tau_mean, "ms", "rule.tau_mean") if isinstance(tau_mean, str) else float(tau_mean)
        self.sign = -1.0 if sign == "anti_hebbian" else 1.0
        self._mean_pre: np.ndarray | None = None
        self._mean_post: np.ndarray | None = None

    # ------------------------------------------------------------------ spiking face (per chunk)
    def local_factors(self, state) -> LocalFactors:
        seconds = state.elapsed / 1000.0
        x = state.pre.spikes / seconds                              # Hz
        counts = state.post.bursts if self.post_factor == "bursts" else state.post.spikes
        if counts is None:
            raise ValueError("post_factor='bursts' needs a postsynaptic population that tracks bursts")
        y = counts / seconds
        if self._mean_post is None:
            self._mean_pre, self._mean_post = x.astype(float), y.astype(float)
        post = self.sign * (y - self._mean_post)
        a = min(1.0, state.elapsed / self.tau_mean)
        self._mean_pre = self._mean_pre + (x - self._mean_pre) * a
        self._mean_post = self._mean_post + (y - self._mean_post) * a
        return LocalFactors(pre=x, post=post, modulator=state.modulator)

    # ------------------------------------------------------------------ between sessions
    @staticmethod
    def covariance(conn, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cov_k[x_j(k), y_i(k)] for every synapse j → i of ``conn`` (CSR order).

        ``x``: (K, n_pre) presynaptic factors, ``y``: (K, n_post) postsynaptic factors.
        """
        if x.shape[0] == 0:
            return np.zeros(conn.nnz)
        cov = (y - y.mean(axis=0)).T @ x / x.shape[0]          # (n_post, n_pre)
        return cov[conn.indices, conn.pre_indices()]

    @classmethod
    def batch(cls, conn, x: np.ndarray, y: np.ndarray, eta: float, w_min: float, w_max: float,
              sign: float = 1.0) -> None:
        """w ← clip(w + sign · η · Cov[x, y], w_min, w_max) in place, from K recorded samples."""
        np.clip(conn.weights + sign * eta * cls.covariance(conn, x, y), w_min, w_max, out=conn.weights)
