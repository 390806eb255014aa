"""Orientation discrimination with procedurally drawn sinusoidal gratings.

Each image (``size`` × ``size`` pixels, coordinates centred on the image, in pixels) is

    I(u, v) = c · sin(2π k (u cos θ + v sin θ) + φ) + σ_n ξ(u, v),

with θ = θ_class + Δθ, Δθ ~ U(−jitter, +jitter); spatial frequency k = k₀ (1 + ε),
ε ~ U(−frequency_jitter, +frequency_jitter) (cycles per pixel); phase φ ~ U(0, 2π); contrast
c ~ U(contrast_min, contrast_max); pixel noise ξ ~ N(0, 1). Labels are the index of θ_class in
``orientations`` (default 45° vs 135°, labels 0/1), balanced in both sets.

Because the phase is random, the mean image of every class is zero: the classes cannot be
told apart by a linear template of the pixels, and the network must build phase-invariant
(energy-like) features in its hidden layer, as complex cells do.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Dataset, Task
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.tasks import balanced_labels


def draw_gratings(labels: np.ndarray, rng: np.random.Generator, *, size: int, orientations,
                  orientation_jitter: float, spatial_frequency: float, frequency_jitter: float,
                  contrast_min: float, contrast_max: float, noise: float) -> np.ndarray:
    """Images (n, size·size) for class ``labels``; angles in degrees, frequency in cycles/pixel."""
    n = len(labels)
    theta = np.deg2rad(np.asarray(orientations, dtype=float)[labels]
                       + rng.uniform(-orientation_jitter, orientation_jitter, n))
    k = spatial_frequency * (1.0 + rng.uniform(-frequency_jitter, frequency_jitter, n))
    phase = rng.uniform(0.0, 2.0 * np.pi, n)
    contrast = rng.uniform(contrast_min, contrast_max, n)
    coord = np.arange(size) - (size - 1) / 2.0
    v, u = np.meshgrid(coord, coord, indexing="ij")           # v: rows, u: columns
    proj = (np.cos(theta)[:, None, None] * u + np.sin(theta)[:, None, None] * v)
    img = contrast[:, None, None] * np.sin(2.0 * np.pi * k[:, None, None] * proj + phase[:, None, None])
    img = img + noise * rng.standard_normal(img.shape)
    return img.reshape(n, size * size)


@register("task", "gratings")
class Gratings(Task):
    """Orientation discrimination of noisy sinusoidal gratings (default 45° vs 135°)."""

    params = {
        "size": Field("int", 16, "image side in pixels", lo=2),
        "orientations": Field("float_list", [45.0, 135.0], "class orientations in degrees", min_len=2),
        "orientation_jitter": Field("float", 5.0, "half-width of the uniform orientation jitter, degrees",
                                    lo=0),
        "spatial_frequency": Field("float", 0.15, "mean spatial frequency, cycles per pixel",
                                   lo=0, hi=0.5, lo_open=True),
        "frequency_jitter": Field("float", 0.2, "relative half-width of the frequency jitter",
                                  lo=0, hi=1, hi_open=True),
        "contrast_min": Field("float", 0.5, "lowest grating amplitude", lo=0),
        "contrast_max": Field("float", 1.0, "highest grating amplitude", lo=0),
        "noise": Field("float", 1.0, "s.d. of the Gaussian pixel noise", lo=0),
        "n_train": Field("int", 2000, "training images", lo=2),
        "n_test": Field("int", 1000, "test images", lo=2),
    }

    def __init__(self, size=16, orientations=(45.0, 135.0), orientation_jitter=5.0,
                 spatial_frequency=0.15, frequency_jitter=0.2, contrast_min=0.5, contrast_max=1.0,
                 noise=1.0, n_train=2000, n_test=1000):
        if contrast_max < contrast_min:
            raise ScenarioError("task.contrast_max",
                                f"expected a value >= contrast_min ({contrast_min:g}), got {contrast_max:g}")
        self.size, self.orientations = size, list(orientations)
        self.orientation_jitter, self.noise = orientation_jitter, noise
        self.spatial_frequency, self.frequency_jitter = spatial_frequency, frequency_jitter
        self.contrast_min, self.contrast_max = contrast_min, contrast_max
        self.n_train, self.n_test = n_train, n_test

    def size_hint(self):
        return self.n_train, self.n_test, self.size * self.size, len(self.orientations)

    def dataset(self, rng):
        n_classes = len(self.orientations)
        kw = dict(size=self.size, orientations=self.orientations,
                  orientation_jitter=self.orientation_jitter, spatial_frequency=self.spatial_frequency,
                  frequency_jitter=self.frequency_jitter, contrast_min=self.contrast_min,
                  contrast_max=self.contrast_max, noise=self.noise)
        y_train = balanced_labels(self.n_train, n_classes, rng)
        y_test = balanced_labels(self.n_test, n_classes, rng)
        x_train = draw_gratings(y_train, rng, **kw)
        x_test = draw_gratings(y_test, rng, **kw)
        return Dataset(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                       n_classes=n_classes)
