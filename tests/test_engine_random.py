"""Counter-based RNG: reference SplitMix64 values, uniformity, independence, Poisson law,
and numpy == numba bit for bit."""

import math

import numba
import numpy as np
import pytest

from dendrite_sim.engine import random as R

MASK = (1 << 64) - 1


def _mix64_ref(z: int) -> int:
    """Textbook SplitMix64 finaliser with Python integers."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_mix64_matches_reference_splitmix64():
    # the SplitMix64 sequence seeded with 0: outputs mix64(k·γ), k = 1, 2, ...
    seq = [_mix64_ref((k * 0x9E3779B97F4A7C15) & MASK) for k in (1, 2, 3)]
    assert seq[0] == 0xE220A8397B1DCDAF          # published first output of splitmix64(0)
    with R.quiet():
        ours = R.mix64(np.arange(1, 4, dtype=np.uint64) * R.GOLDEN)
    assert [int(v) for v in ours] == seq


@numba.njit(cache=True)
def _draw_nb(key, step0, n_steps, n):
    out = np.empty((n_steps, n))
    for s in range(n_steps):
        k = R.step_key(key, step0 + s)
        for i in range(n):
            out[s, i] = R.uniform(k, i)
    return out


@numba.njit(cache=True)
def _poisson_nb(key, n_steps, n, cdf):
    out = np.empty((n_steps, n), dtype=np.int64)
    for s in range(n_steps):
        k = R.step_key(key, s)
        for i in range(n):
            out[s, i] = R.poisson_count(R.uniform(k, i), cdf)
    return out


@pytest.fixture(scope="module")
def draws():
    key = R.stream_key(12345, "test")
    return key, np.stack([R.uniforms_np(key, s, 2000) for s in range(500)])   # 10⁶ draws


def test_numpy_equals_numba_bitwise(draws):
    key, u = draws
    np.testing.assert_array_equal(_draw_nb(key, 0, 500, 2000), u)
    # chunking does not matter: the draw depends only on (key, step, index)
    np.testing.assert_array_equal(_draw_nb(key, 250, 10, 2000), u[250:260])


def test_uniformity(draws):
    _, u = draws
    x = np.sort(u.ravel())
    n = x.size
    assert 0.0 <= x[0] and x[-1] < 1.0
    ks = np.max(np.maximum(np.arange(1, n + 1) / n - x, x - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n)                       # KS test at α = 0.001
    assert abs(x.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    counts = np.bincount((x * 100).astype(int), minlength=100)
    chi2 = np.sum((counts - n / 100) ** 2 / (n / 100))
    assert chi2 < 99 + 5 * math.sqrt(2 * 99)


def test_independence(draws):
    _, u = draws
    z = u - 0.5
    n = z.size
    lim = 5 / math.sqrt(n)
    assert abs(np.mean(z[:, 1:] * z[:, :-1]) * 12) < lim * 1.5     # neighbouring neurons
    assert abs(np.mean(z[1:] * z[:-1]) * 12) < lim * 1.5           # successive steps
    # 2-D uniformity of neighbouring pairs (10 × 10 cells)
    a = (u[:, 0::2] * 10).astype(int).ravel()
    b = (u[:, 1::2] * 10).astype(int).ravel()
    counts = np.bincount(a * 10 + b, minlength=100)
    e = a.size / 100
    assert np.sum((counts - e) ** 2 / e) < 99 + 5 * math.sqrt(2 * 99)
    # two streams of the same seed are uncorrelated
    other = np.stack([R.uniforms_np(R.stream_key(12345, "other"), s, 2000) for s in range(100)])
    assert abs(np.mean((other - 0.5) * z[:100]) * 12) < 5 / math.sqrt(other.size)


def test_stream_keys_differ():
    keys = {int(R.stream_key(s, name)) for s in range(5) for name in ("a", "b", "c")}
    assert len(keys) == 15


@pytest.mark.parametrize("lam", [0.05, 2.5])
def test_poisson_counts(lam):
    cdf = R.poisson_cdf(lam)
    key = R.stream_key(3, "poisson")
    counts = _poisson_nb(key, 200, 1000, cdf)
    n = counts.size
    assert abs(counts.mean() - lam) < 5 * math.sqrt(lam / n)
    assert abs(counts.var() / lam - 1.0) < 5 * math.sqrt(2.0 / n) + 0.01
    # frequencies against the Poisson law
    kmax = int(lam + 6 * math.sqrt(lam) + 3)
    obs = np.bincount(counts.ravel(), minlength=kmax + 1)[: kmax + 1]
    exp = np.array([n * math.exp(-lam) * lam**k / math.factorial(k) for k in range(kmax + 1)])
    ok = exp > 20
    assert np.sum((obs[ok] - exp[ok]) ** 2 / exp[ok]) < ok.sum() + 5 * math.sqrt(2 * ok.sum())
    # the numpy search gives the same counts
    u = np.stack([R.uniforms_np(key, s, 1000) for s in range(200)])
    np.testing.assert_array_equal(R.poisson_count_np(u, cdf), counts)


def test_poisson_cdf_table():
    cdf = R.poisson_cdf(1.0)
    assert cdf[0] == math.exp(-1.0) and cdf[-1] == 2.0
    assert np.all(np.diff(cdf) >= 0) and cdf[-2] <= 1.0 and cdf[-2] > 1 - 1e-15
    np.testing.assert_array_equal(R.poisson_cdf(0.0), [2.0])
    with pytest.raises(ValueError):
        R.poisson_cdf(1e4)
