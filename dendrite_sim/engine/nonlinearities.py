"""Point non-linearities f and their derivatives f′ for rate networks."""

from __future__ import annotations

import numpy as np


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # overflow-free logistic


NONLINEARITIES = {
    # name: (f, f′ expressed in the pre-activation a)
    "linear": (lambda a: a, lambda a: np.ones_like(a)),
    "tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2),
    "sigmoid": (_sigmoid, lambda a: _sigmoid(a) * (1.0 - _sigmoid(a))),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a: (a > 0).astype(a.dtype)),
    "softplus": (lambda a: np.logaddexp(0.0, a), _sigmoid),
}
