"""XOR: the smallest problem a single layer cannot solve (Minsky & Papert 1969).

Inputs are the four corners of the unit square, target y = x₁ XOR x₂ as a class label (0/1).
``encoding = "bipolar"`` maps inputs {0, 1} → {−1, +1} (zero-mean inputs, faster to learn).
The training set holds ``repeats`` copies of the four patterns, each copy optionally jittered by
Gaussian ``noise``; the test set is the four clean patterns, so 100 % test accuracy means XOR is
solved.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.interfaces import Dataset, Task
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field

PATTERNS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
LABELS = np.array([0, 1, 1, 0])


@register("task", "xor")
class XOR(Task):
    """XOR of two binary inputs (two classes); test set = the four clean patterns."""

    params = {
        "encoding": Field("str", "bipolar", "input values: binary {0, 1} or bipolar {−1, +1}",
                          choices=("binary", "bipolar")),
        "repeats": Field("int", 1, "copies of the four patterns in the training set", lo=1),
        "noise": Field("float", 0.0, "s.d. of Gaussian jitter added to training inputs", lo=0),
    }

    def __init__(self, encoding="bipolar", repeats=1, noise=0.0):
        self.encoding, self.repeats, self.noise = encoding, repeats, noise

    def size_hint(self):
        return 4 * self.repeats, 4, 2, 2

    def dataset(self, rng):
        x = PATTERNS if self.encoding == "binary" else 2.0 * PATTERNS - 1.0
        x_train = np.tile(x, (self.repeats, 1))
        if self.noise > 0:
            x_train = x_train + self.noise * rng.standard_normal(x_train.shape)
        return Dataset(x_train=x_train, y_train=np.tile(LABELS, self.repeats),
                       x_test=x.copy(), y_test=LABELS.copy(), n_classes=2)
