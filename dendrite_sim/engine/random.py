"""Counter-based random numbers shared by the numpy and numba backends.

Every random number the engine draws inside the run loop is a pure function of
(stream key, time step, neuron index), so both backends — numpy vectorised over neurons,
Numba one neuron at a time — draw *the same* numbers, a run can be split into chunks at any
step, and no generator state has to be carried or synchronised.

Generator (SplitMix64, Steele, Lea & Flood 2014, with Stafford's "variant 13" finaliser)::

    mix64(z) = z' ^ (z' >> 31),  z' = (z'' ^ (z'' >> 27)) · 0x94D049BB133111EB,
                                  z'' = (z ^ (z >> 30)) · 0xBF58476D1CE4E5B9   (mod 2⁶⁴)
    γ = 0x9E3779B97F4A7C15 (the golden-ratio increment)
    step key   k_n = mix64(key + n·γ)
    draw       u(n, i) = ⌊mix64(k_n + (i + 1)·γ) / 2¹¹⌋ · 2⁻⁵³  ∈ [0, 1)

so within a step the neurons read consecutive outputs of the SplitMix64 sequence seeded with
k_n (a generator that passes BigCrush), and every step starts a fresh, hashed seed. The stream
``key`` is a 64-bit value derived from the run's root seed and the stream's name
(:func:`stream_key`) with numpy's SeedSequence.

Poisson counts use one uniform per (step, neuron) and the inverse cumulative distribution,
tabulated once per input in Python (:func:`poisson_cdf`): count = #{k : cdf[k] ≤ u}; the
common case count = 0 is decided on the integer hash alone (:func:`zero_threshold`), so the
hashing loop vectorises. No
transcendental function is evaluated in the loop, so the counts are bit-identical across
backends. The table is exact to double precision for λ ≤ 700 per step.

All kernels are elementwise and usable from compiled code (``register_jitable``); in numpy they
take uint64 arrays (wrap calls in :func:`quiet`, because numpy warns on scalar uint64 overflow,
which here is the intended arithmetic modulo 2⁶⁴).
"""

from __future__ import annotations

import contextlib
import hashlib
import math

import numpy as np
from numba.extending import register_jitable

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_INV53 = 2.0 ** -53

#: Largest mean count per step that :func:`poisson_cdf` tabulates (exp(−λ) must not underflow).
MAX_LAMBDA = 700.0


@register_jitable
def mix64(z):
    """SplitMix64 finaliser (Stafford variant 13), a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@register_jitable
def step_key(key, step):
    """Key of time step ``step`` of the stream ``key`` (uint64)."""
    return mix64(key + np.uint64(step) * GOLDEN)


@register_jitable
def hash_at(skey, index):
    """The 64 random bits of neuron ``index`` under step key ``skey`` (pure integer, vectorisable)."""
    return mix64(skey + (np.uint64(index) + _ONE) * GOLDEN)


@register_jitable
def to_unit(h):
    """Uniform double in [0, 1) from 64 random bits (the top 53)."""
    return (h >> _S11) * _INV53


@register_jitable
def uniform(skey, index):
    """Uniform double in [0, 1) for neuron ``index`` under step key ``skey`` (53 random bits)."""
    return to_unit(hash_at(skey, index))


@register_jitable
def poisson_count(u, cdf):
    """Inverse-CDF Poisson count for uniform ``u``: the first k with u < cdf[k] (compiled)."""
    k = 0
    while u >= cdf[k]:
        k += 1
    return k


def zero_threshold(cdf: np.ndarray) -> np.uint64:
    """Integer form of the fast path: count = 0 ⟺ hash < T₀ (i.e. to_unit(hash) < cdf[0]).

    to_unit(h) ≥ c ⟺ ⌊h / 2¹¹⌋ ≥ ⌈c · 2⁵³⌉ ⟺ h ≥ ⌈c · 2⁵³⌉ · 2¹¹ (c · 2⁵³ is exact in binary).
    """
    m0 = math.ceil(float(cdf[0]) * 2.0**53)
    return np.uint64(min(m0 << 11, 2**64 - 1))


def poisson_count_np(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """The same count vectorised (numpy backend): #{k : cdf[k] ≤ u}."""
    return np.searchsorted(cdf, u, side="right")


@contextlib.contextmanager
def quiet():
    """Silence numpy's overflow warning for the intended uint64 wrap-around."""
    with np.errstate(over="ignore"):
        yield


def uniforms_np(key, step: int, n: int) -> np.ndarray:
    """The ``n`` uniforms of step ``step`` (numpy backend), identical to the compiled draws."""
    with quiet():
        skey = step_key(np.uint64(key), step)
        return uniform(skey, np.arange(n, dtype=np.uint64))


def stream_key(seed: int, name: str) -> np.uint64:
    """A 64-bit stream key for ``name`` under the root ``seed`` (numpy SeedSequence)."""
    tag = int.from_bytes(hashlib.sha256(("counter/" + name).encode()).digest()[:4], "little")
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(tag,))
    return np.uint64(ss.generate_state(1, np.uint64)[0])


def poisson_cdf(lam: float) -> np.ndarray:
    """Cumulative Poisson(λ) probabilities P(X ≤ k), k = 0..K, followed by a sentinel 2.0.

    Terms are added until they no longer change the sum in double precision; the sentinel
    (> any uniform) ends the compiled search. λ = 0 gives ``[2.0]`` (always zero).
    """
    if not (0.0 <= lam <= MAX_LAMBDA) or not math.isfinite(lam):
        raise ValueError(f"Poisson mean per step must be in [0, {MAX_LAMBDA}], got {lam}")
    if lam == 0.0:
        return np.array([2.0])
    term = math.exp(-lam)
    total = term
    out = [total]
    k = 0
    while True:
        k += 1
        term *= lam / k
        new = total + term
        if k > lam and new == total:
            break
        total = new
        out.append(total)
    out.append(2.0)
    return np.array(out)
