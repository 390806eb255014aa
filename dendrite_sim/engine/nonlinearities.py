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


def soft_relu(gamma: float = 1.0, beta: float = 1.0, theta: float = 0.0):
    """The soft rectifier of Sacramento et al. (2018 NeurIPS, supplementary):
    φ(u) = γ log(1 + exp(β(u − θ))), φ′(u) = γβ σ(β(u − θ)); returns ``(φ, φ′)``.

    γ = β = 1, θ = 0 is ``softplus``; the paper's teacher uses γ = 0.1, β = 1, θ = 3.
    """

    def f(a):
        return gamma * np.logaddexp(0.0, beta * (a - theta))

    def df(a):
        return gamma * beta * _sigmoid(beta * (a - theta))

    return f, df


# the paper's soft rectifier with its published parameters (γ 0.1, β 1, θ 3)
NONLINEARITIES["soft_relu"] = soft_relu(0.1, 1.0, 3.0)
