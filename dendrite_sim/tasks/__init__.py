"""Tasks: what a circuit sees and what it must produce.

Procedural tasks draw their data from the ``rng`` handed to :meth:`Task.dataset` (so the root
seed fixes them): XOR, linear and non-linear teacher–student, oriented gratings. Data tasks
load local files: scikit-learn digits bundled inside the package, MNIST from a path the user
gives. Nothing is ever downloaded.
"""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, test_fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: each class contributes ``round(test_fraction · n_c)`` random
    members to the test set (at least one, and at least one left for training when n_c ≥ 2)."""
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(test_fraction * len(idx)))
        k = min(max(k, 1), max(len(idx) - 1, 1))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels in random order with every class present ⌊n/C⌋ or ⌈n/C⌉ times."""
    return rng.permutation(np.arange(n) % n_classes)
