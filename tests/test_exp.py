"""The kernel language's ``exp`` (dendrite_sim.core.elementwise.exp): accuracy against the C
library, special values, numpy and compiled Numba giving the same bits, and vectorisation."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from dendrite_sim.core import elementwise as E
from dendrite_sim.engine.backends.numpy import LibmArray


@njit(error_model="numpy")
def _compiled(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = E.exp(x[i])
    return out


def _points(n: int = 400_000) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate([rng.uniform(E.EXP_MIN, E.EXP_MAX, n), rng.uniform(-2.0, 2.0, n),
                           rng.uniform(-1e-8, 1e-8, n // 10), rng.uniform(-745.2, -708.0, n // 10),
                           np.arange(-1075, 1025) * np.log(2.0)])


def test_within_one_ulp_of_the_c_library_over_the_whole_range():
    x = _points()
    y, ref = E.exp(x), np.exp(x)
    ok = np.isfinite(ref) & (ref > 0)
    ulp = np.abs(y[ok] - ref[ok]) / np.spacing(ref[ok])
    assert ulp.max() <= 1.0
    assert np.mean(ulp == 0) > 0.85          # most results are the C library's own


@pytest.mark.parametrize("x, want", [(0.0, 1.0), (-0.0, 1.0), (1.0, np.e), (np.inf, np.inf), (-np.inf, 0.0),
                                     (710.0, np.inf), (E.EXP_MAX, np.exp(E.EXP_MAX)), (-746.0, 0.0),
                                     (-745.0, np.exp(-745.0)), (-740.0, np.exp(-740.0)), (1e-300, 1.0)])
def test_special_values(x, want):
    for got in (E.exp(x), _compiled(np.array([x]))[0]):
        assert got == want or abs(got - want) <= np.spacing(want)


def test_nan_gives_nan_and_scalars_stay_scalars():
    assert np.isnan(E.exp(np.nan)) and np.isnan(_compiled(np.array([np.nan]))[0])
    assert isinstance(E.exp(0.5), np.floating)
    assert isinstance(E.exp(np.zeros(3).view(LibmArray)), LibmArray)   # the reference backend's arrays


def test_numpy_and_compiled_numba_give_the_same_bits():
    x = _points(200_000)
    with np.errstate(over="ignore"):
        a = E.exp(x)
    b = _compiled(x)
    assert np.array_equal(a.view(np.int64), b.view(np.int64))


def test_compiled_loop_vectorises():
    ir = next(iter(_compiled.inspect_llvm().values()))
    assert "llvm.floor.v" in ir              # the floor of range reduction, on vectors
    assert "@exp(" not in ir and "llvm.exp" not in ir
