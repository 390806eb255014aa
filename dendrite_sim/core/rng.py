"""Random streams from one root seed.

Every run has one root seed. Independent streams are spawned from a
:class:`numpy.random.SeedSequence` by name, so adding a stream never changes another one's
numbers, and the same seed gives bit-identical results.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """A generator for the named purpose (``"task"``, ``"init"``, ``"rule"``...) under ``seed``."""
    tag = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(tag,)))


def child_seed(seed: int, name: str) -> int:
    """An integer seed derived from ``seed`` for ``name`` (for kernels that take an int seed)."""
    return int(stream(seed, name).integers(0, 2**31 - 1))
