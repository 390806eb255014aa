"""Mean squared error."""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.interfaces import Objective
from dendrite_sim.core.registry import register
from dendrite_sim.objectives import one_hot


@register("objective", "mse")
class MeanSquaredError(Objective):
    """Squared error L = ½‖a − y‖² on a linear output (one-hot y for classes); ∂L/∂a = a − y."""

    def _target(self, a_out, y):
        return one_hot(y, a_out.shape[1]) if y.ndim == 1 else y

    def loss_per_sample(self, a_out, y):
        return 0.5 * np.sum((a_out - self._target(a_out, y)) ** 2, axis=1)

    def gradient(self, a_out, y):
        return a_out - self._target(a_out, y)

    def predict(self, a_out):
        return a_out.argmax(axis=1) if a_out.shape[1] > 1 else a_out
