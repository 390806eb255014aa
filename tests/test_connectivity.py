"""CSR connectivity builders: exact structure, statistics against the binomial law, CSC view."""

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.synapses import connectivity as C


def _pairs_of(c):
    return np.stack([c.pre_indices(), c.indices], axis=1)


def _assert_rows_sorted_distinct(c):
    pre = c.pre_indices().astype(np.int64)
    key = pre * c.n_post + c.indices
    assert np.all(np.diff(key) > 0), "synapses must be sorted by (pre, post) without duplicates"


def test_all_to_all_structure():
    c = C.all_to_all(3, 4, weight=2.0, delay=3)
    assert c.nnz == 12
    np.testing.assert_array_equal(c.indptr, [0, 4, 8, 12])
    np.testing.assert_array_equal(c.indices, np.tile(np.arange(4), 3))
    assert np.all(c.weights == 2.0) and np.all(c.delays == 3)
    c = C.all_to_all(5, 5, autapses=False)
    assert c.nnz == 20
    assert not np.any(c.pre_indices() == c.indices)
    _assert_rows_sorted_distinct(c)


@pytest.mark.parametrize("n,p", [(400, 0.05), (3000, 0.002)])   # dense-mask and sparse paths
def test_fixed_probability_binomial(n, p, monkeypatch):
    if n == 3000:
        monkeypatch.setattr(C, "_DENSE_LIMIT", 1000)           # force the sparse sampler
    rng = np.random.default_rng(3)
    c = C.fixed_probability(n, n, p, rng, autapses=False)
    m = n - 1
    mean, sd = n * m * p, np.sqrt(n * m * p * (1 - p))
    assert abs(c.nnz - mean) < 5 * sd
    assert not np.any(c.pre_indices() == c.indices)
    _assert_rows_sorted_distinct(c)
    # out-degrees ~ Binomial(m, p): variance close to m p (1 - p)
    out = c.out_degree()
    assert abs(out.var() / (m * p * (1 - p)) - 1.0) < 0.2
    # targets uniform: the neuron itself is excluded, neighbours are not
    assert np.sum(c.indices == (c.pre_indices() + 1) % n) > 0


def test_fixed_probability_autapses_and_extremes():
    rng = np.random.default_rng(0)
    c = C.fixed_probability(50, 50, 1.0, rng, autapses=True)
    assert c.nnz == 2500
    assert C.fixed_probability(50, 50, 0.0, rng).nnz == 0
    c = C.fixed_probability(50, 50, 1.0, rng, autapses=False)
    assert c.nnz == 2450


@pytest.mark.parametrize("k", [3, 40])   # rejection sampler and dense argpartition path
def test_fixed_indegree_exact(k):
    rng = np.random.default_rng(5)
    c = C.fixed_indegree(60, 50, k, rng, autapses=True)
    np.testing.assert_array_equal(c.in_degree(), np.full(50, k))
    _assert_rows_sorted_distinct(c)
    c = C.fixed_indegree(50, 50, k, rng, autapses=False)
    np.testing.assert_array_equal(c.in_degree(), np.full(50, k))
    assert not np.any(c.pre_indices() == c.indices)
    _assert_rows_sorted_distinct(c)


def test_fixed_indegree_uniform_sources():
    rng = np.random.default_rng(7)
    c = C.fixed_indegree(100, 2000, 10, rng)
    counts = np.bincount(c.pre_indices(), minlength=100)     # expected 200 each
    chi2 = np.sum((counts - 200.0) ** 2 / 200.0)
    assert chi2 < 99 + 5 * np.sqrt(2 * 99)


def test_pairs_reorders_weights_and_keeps_duplicates():
    pre = [2, 0, 2, 1, 0]
    post = [1, 3, 0, 2, 3]
    w = [1.0, 2.0, 3.0, 4.0, 5.0]
    c = C.pairs(3, 4, pre, post, weight=w, delay=[1, 2, 3, 4, 5])
    np.testing.assert_array_equal(c.indptr, [0, 2, 3, 5])
    np.testing.assert_array_equal(c.indices, [3, 3, 2, 0, 1])
    np.testing.assert_array_equal(c.weights, [2.0, 5.0, 4.0, 3.0, 1.0])
    np.testing.assert_array_equal(c.delays, [2, 5, 4, 3, 1])
    W = c.to_dense()
    assert W[3, 0] == 7.0 and W[0, 2] == 3.0 and W.sum() == 15.0


def test_csc_permutation():
    rng = np.random.default_rng(1)
    c = C.fixed_probability(30, 20, 0.3, rng)
    c = c.with_values(weight=rng.standard_normal(c.nnz))
    col_ptr, pre, perm = c.csc()
    assert np.all(np.diff(c.indices[perm]) >= 0)
    np.testing.assert_array_equal(pre, c.pre_indices()[perm])
    for i in range(20):
        sl = slice(col_ptr[i], col_ptr[i + 1])
        np.testing.assert_array_equal(c.indices[perm[sl]], i)
        # column i's weights equal the dense matrix's row i
        W = c.to_dense()
        np.testing.assert_allclose(np.bincount(pre[sl], c.weights[perm[sl]], minlength=30), W[i])


def test_same_seed_same_structure():
    a = C.fixed_probability(500, 500, 0.01, np.random.default_rng(9), autapses=False)
    b = C.fixed_probability(500, 500, 0.01, np.random.default_rng(9), autapses=False)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)


def test_large_sparse_build():
    """64k neurons × 80 synapses each builds vectorised (about a second; timed in the report)."""
    c = C.fixed_indegree(64000, 64000, 80, np.random.default_rng(2), autapses=False)
    assert c.nnz == 64000 * 80
    assert c.in_degree().min() == 80 == c.in_degree().max()


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ScenarioError, match="probability"):
        C.fixed_probability(10, 10, 1.5, rng)
    with pytest.raises(ScenarioError, match="autapses"):
        C.fixed_probability(10, 12, 0.1, rng, autapses=False)
    with pytest.raises(ScenarioError) as e:
        C.fixed_indegree(10, 10, 10, rng, autapses=False)
    assert e.value.key == "k"
    with pytest.raises(ScenarioError) as e:
        C.pairs(3, 3, [0, 5], [1, 1])
    assert e.value.key == "pre"
