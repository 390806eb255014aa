"""Synaptic connectivity in CSR form, by presynaptic neuron.

A projection's synapses are stored as compressed sparse rows indexed by the presynaptic
neuron ``j``: the synapses of ``j`` are ``indptr[j] : indptr[j + 1]``; for each synapse ``k``
``indices[k]`` is its postsynaptic neuron, ``weights[k]`` its weight (pA for current channels,
nS for conductance channels) and ``delays[k]`` its transmission delay in **integer time steps**
(≥ 1: a spike emitted at step n arrives at step n + delay). Spike propagation then walks only
the rows of neurons that spiked. Within a row the postsynaptic indices are sorted.

For postsynaptic access (e.g. STDP on post spikes) :meth:`Connectivity.csc` gives, on demand,
the column pointer, the presynaptic neuron of each synapse in column order and the permutation
from column order to the CSR synapse index.

Builders (vectorised numpy from a :class:`numpy.random.Generator`; 64k neurons × 80 synapses
take about a second):

* :func:`all_to_all` — every pair (optionally without autapses i → i);
* :func:`fixed_probability` — each pair independently with probability p (Bernoulli; exact:
  per presynaptic neuron a Binomial count, then that many distinct targets drawn uniformly);
* :func:`fixed_indegree` — each postsynaptic neuron receives exactly k distinct inputs;
* :func:`pairs` — explicit (pre, post) lists (duplicates are separate synapses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dendrite_sim.core.errors import ScenarioError

INDEX = np.int32
PTR = np.int64
DELAY = np.int32

#: Above this many candidate pairs, fixed_probability samples sparsely instead of drawing a mask.
_DENSE_LIMIT = 1 << 16   # above this, sparse draws (binomial counts + distinct keys) are faster


@dataclass
class Connectivity:
    """CSR synapses of one projection (see the module docstring)."""

    n_pre: int
    n_post: int
    indptr: np.ndarray                 # (n_pre + 1,) int64
    indices: np.ndarray                # (nnz,) int32, postsynaptic neuron
    weights: np.ndarray                # (nnz,) float64
    delays: np.ndarray                 # (nnz,) int32, in steps (>= 1)
    _csc: tuple | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.indptr = np.ascontiguousarray(self.indptr, dtype=PTR)
        self.indices = np.ascontiguousarray(self.indices, dtype=INDEX)
        nnz = self.indices.size
        # own, writeable, contiguous copies (weights change under plasticity)
        self.weights = np.array(np.broadcast_to(np.asarray(self.weights, dtype=np.float64), (nnz,)))
        self.delays = np.array(np.broadcast_to(np.asarray(self.delays, dtype=DELAY), (nnz,)))
        if self.indptr.shape != (self.n_pre + 1,) or self.indptr[0] != 0 or self.indptr[-1] != nnz:
            raise ValueError("indptr must have n_pre + 1 entries from 0 to nnz")
        if nnz and (self.indices.min() < 0 or self.indices.max() >= self.n_post):
            raise ValueError("postsynaptic index out of range")

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def pre_indices(self) -> np.ndarray:
        """The presynaptic neuron of every synapse, in CSR order."""
        return np.repeat(np.arange(self.n_pre, dtype=INDEX), np.diff(self.indptr))

    def in_degree(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_post)

    def out_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def csc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(col_indptr, pre, perm)``: synapses grouped by postsynaptic neuron.

        Column ``i`` holds CSC positions ``col_indptr[i]:col_indptr[i+1]``; ``pre[c]`` is the
        presynaptic neuron and ``perm[c]`` the CSR synapse index of CSC position ``c``
        (so ``weights[perm]`` is the weight vector in column order). Computed once, cached.
        """
        if self._csc is None:
            perm = np.argsort(self.indices, kind="stable").astype(PTR)
            col_indptr = np.zeros(self.n_post + 1, dtype=PTR)
            np.cumsum(self.in_degree(), out=col_indptr[1:])
            self._csc = (col_indptr, self.pre_indices()[perm], perm)
        return self._csc

    def to_dense(self) -> np.ndarray:
        """Summed weight matrix W[post, pre] (for tests and small networks)."""
        W = np.zeros((self.n_post, self.n_pre))
        np.add.at(W, (self.indices, self.pre_indices()), self.weights)
        return W

    def with_values(self, weight=None, delay=None) -> Connectivity:
        """A copy with new weights and/or delays (scalars or per-synapse arrays in CSR order)."""
        return Connectivity(self.n_pre, self.n_post, self.indptr.copy(), self.indices.copy(),
                            self.weights.copy() if weight is None else weight,
                            self.delays.copy() if delay is None else delay)


# --------------------------------------------------------------------------- helpers
def _check_sizes(n_pre, n_post):
    for name, n in (("n_pre", n_pre), ("n_post", n_post)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ScenarioError(name, f"expected a positive integer, got {n!r}")


def _check_autapses(n_pre, n_post, autapses):
    if not autapses and n_pre != n_post:
        raise ScenarioError("autapses", f"autapses = false needs pre and post of the same size "
                            f"(got {n_pre} and {n_post})")


def from_coo(n_pre: int, n_post: int, pre, post, weight=1.0, delay=1) -> Connectivity:
    """CSR from (pre, post) pairs; synapses sorted by (pre, post), stable for duplicates.

    ``weight``/``delay`` may be scalars or arrays aligned with the pairs (they are reordered).
    """
    pre = np.asarray(pre, dtype=np.int64)
    post = np.asarray(post, dtype=np.int64)
    order = np.lexsort((post, pre))
    counts = np.bincount(pre, minlength=n_pre)
    indptr = np.zeros(n_pre + 1, dtype=PTR)
    np.cumsum(counts, out=indptr[1:])
    w = np.asarray(weight, dtype=np.float64)
    d = np.asarray(delay)
    return Connectivity(n_pre, n_post, indptr, post[order],
                        w[order] if w.ndim else w, d[order] if d.ndim else d)


def _from_sorted(n_pre: int, n_post: int, pre, post, weight=1.0, delay=1) -> Connectivity:
    """CSR from pairs already sorted by (pre, post) (the builders' fast path)."""
    indptr = np.zeros(n_pre + 1, dtype=PTR)
    np.cumsum(np.bincount(pre, minlength=n_pre), out=indptr[1:])
    return Connectivity(n_pre, n_post, indptr, post, weight, delay)


def _distinct_keys(counts: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """For row r draw ``counts[r]`` distinct integers c uniformly from [0, m); returns the
    sorted keys ``r * m + c``.

    Vectorised rejection: draw all values, sort, and redraw only the duplicates within a row
    until none is left. Efficient while counts[r] ≪ m.
    """
    rows = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    keys = rows * m + rng.integers(0, m, size=rows.size, dtype=np.int64)
    while True:
        keys.sort()
        dup = np.flatnonzero(keys[1:] == keys[:-1]) + 1
        if dup.size == 0:
            return keys
        keys[dup] = (keys[dup] // m) * m + rng.integers(0, m, size=dup.size, dtype=np.int64)


def _distinct_dense(n_rows: int, m: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """k distinct values of [0, m) per row by partial argsort of random keys (k close to m)."""
    block = max(1, (1 << 22) // max(m, 1))
    rows, cols = [], []
    for start in range(0, n_rows, block):
        b = min(block, n_rows - start)
        keys = rng.random((b, m))
        pick = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (b, 1))
        pick.sort(axis=1)
        rows.append(np.repeat(np.arange(start, start + b, dtype=np.int64), k))
        cols.append(pick.ravel().astype(np.int64))
    return np.concatenate(rows), np.concatenate(cols)


# --------------------------------------------------------------------------- builders
def all_to_all(n_pre: int, n_post: int, autapses: bool = True, weight=1.0, delay=1) -> Connectivity:
    """Every presynaptic neuron to every postsynaptic neuron (without i → i if not autapses)."""
    _check_sizes(n_pre, n_post)
    _check_autapses(n_pre, n_post, autapses)
    pre = np.repeat(np.arange(n_pre, dtype=np.int64), n_post)
    post = np.tile(np.arange(n_post, dtype=np.int64), n_pre)
    if not autapses:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return _from_sorted(n_pre, n_post, pre, post, weight, delay)


def fixed_probability(n_pre: int, n_post: int, p: float, rng: np.random.Generator,
                      autapses: bool = True, weight=1.0, delay=1) -> Connectivity:
    """Each (pre, post) pair connected independently with probability ``p``."""
    _check_sizes(n_pre, n_post)
    _check_autapses(n_pre, n_post, autapses)
    if not (0.0 <= p <= 1.0):
        raise ScenarioError("p", f"expected a probability in [0, 1], got {p!r}")
    m = n_post if autapses else n_post - 1       # candidate targets per presynaptic neuron
    if m == 0 or p == 0.0:
        return from_coo(n_pre, n_post, [], [], weight, delay)
    if n_pre * m <= _DENSE_LIMIT or p > 0.1:
        block = max(1, (1 << 22) // m)
        pres, posts = [], []
        for start in range(0, n_pre, block):
            b = min(block, n_pre - start)
            r, c = np.nonzero(rng.random((b, m)) < p)
            pres.append(r + start)
            posts.append(c)
        pre = np.concatenate(pres).astype(np.int64)
        post = np.concatenate(posts).astype(np.int64)
    else:
        keys = _distinct_keys(rng.binomial(m, p, size=n_pre), m, rng)
        pre, post = keys // m, keys % m
    if not autapses:                               # candidates skip the neuron itself
        post = post + (post >= pre)
    return _from_sorted(n_pre, n_post, pre, post, weight, delay)


def fixed_indegree(n_pre: int, n_post: int, k: int, rng: np.random.Generator,
                   autapses: bool = True, weight=1.0, delay=1) -> Connectivity:
    """Each postsynaptic neuron receives exactly ``k`` distinct presynaptic neurons."""
    _check_sizes(n_pre, n_post)
    _check_autapses(n_pre, n_post, autapses)
    m = n_pre if autapses else n_pre - 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= m:
        raise ScenarioError("k", f"expected an integer in [0, {m}], got {k!r}")
    if k == 0:
        return from_coo(n_pre, n_post, [], [], weight, delay)
    if 4 * k > m:
        post, pre = _distinct_dense(n_post, m, int(k), rng)
    else:
        keys = _distinct_keys(np.full(n_post, k, dtype=np.int64), m, rng)
        post, pre = keys // m, keys % m
    if not autapses:
        pre = pre + (pre >= post)
    keys = pre * n_post + post                     # re-sort by (pre, post)
    keys.sort()
    return _from_sorted(n_pre, n_post, keys // n_post, keys % n_post, weight, delay)


def pairs(n_pre: int, n_post: int, pre, post, weight=1.0, delay=1) -> Connectivity:
    """Explicit synapses ``pre[s] → post[s]``; weight/delay scalars or aligned with the pairs."""
    _check_sizes(n_pre, n_post)
    pre = np.asarray(pre)
    post = np.asarray(post)
    if pre.shape != post.shape or pre.ndim != 1:
        raise ScenarioError("pairs", f"expected pre and post lists of equal length, got {pre.shape} "
                            f"and {post.shape}")
    for name, a, n in (("pre", pre, n_pre), ("post", post, n_post)):
        if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= n):
            raise ScenarioError(name, f"expected integer neuron indices in [0, {n}), got "
                                f"values from {a.min()} to {a.max()}")
    for name, v in (("weight", weight), ("delay", delay)):
        if np.ndim(v) and np.shape(v) != pre.shape:
            raise ScenarioError(name, f"expected a scalar or one value per pair ({pre.size}), "
                                f"got shape {np.shape(v)}")
    return from_coo(n_pre, n_post, pre, post, weight, delay)


BUILDERS = {"all_to_all": all_to_all, "fixed_probability": fixed_probability,
            "fixed_indegree": fixed_indegree, "pairs": pairs}
