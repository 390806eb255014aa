"""Handwritten digits, 8×8 pixels (the UCI optical-recognition set as scikit-learn ships it).

1797 images, 10 classes (≈ 180 each), bundled inside the package as
``dendrite_sim/data/digits.npz`` (written by ``scripts/make_digits_npz.py``), so no download and no
scikit-learn import at run time. Pixels 0–16 are scaled to [0, 1]. The train/test split is
stratified (each class gives the same fraction to the test set) and drawn from the task rng.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from dendrite_sim.core.interfaces import Dataset, Task
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.tasks import stratified_split


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits: images (1797, 64) float in [0, 1], labels (1797,) int."""
    with resources.files("dendrite_sim").joinpath("data/digits.npz").open("rb") as fh:
        with np.load(fh) as z:
            images, labels = z["images"], z["labels"]
    return images.astype(np.float64) / 16.0, labels.astype(np.int64)


@register("task", "digits")
class Digits(Task):
    """scikit-learn digits (8×8, 10 classes, bundled); stratified random train/test split."""

    params = {
        "test_fraction": Field("float", 0.25, "fraction of each class held out for testing",
                               lo=0, hi=1, lo_open=True, hi_open=True),
    }

    def __init__(self, test_fraction=0.25):
        self.test_fraction = test_fraction

    def size_hint(self):
        n_test = int(round(1797 * self.test_fraction))
        return 1797 - n_test, n_test, 64, 10

    def dataset(self, rng):
        x, y = load_digits_arrays()
        tr, te = stratified_split(y, self.test_fraction, rng)
        return Dataset(x_train=x[tr], y_train=y[tr], x_test=x[te], y_test=y[te], n_classes=10)
