"""Rate substrate: batched layered networks with separate feedforward and feedback pathways.

Layer l (1..L) computes a_l = W_l h_{l−1} + b_l, h_l = f(a_l) for hidden layers; the output
pre-activation a_L is handed to the objective. Weights ``W[l]`` have shape (n_{l+1}, n_l).

Feedback pathways (used by rules that do not transport weights):
* ``B[l]`` (n_{l+1}, n_{l+2}) carries the error of layer l+2 back to hidden layer l+1 —
  for ``feedback = "symmetric"`` it is Wᵀ (kept in sync), for ``"random"`` a fixed random
  matrix (Lillicrap et al. 2016), for ``"learned"`` it starts random and is trained by the rule
  (Kolen–Pollack updates, Akrout et al. 2019).
* ``D[l]`` (n_{l+1}, n_out) projects the output error directly to hidden layer l+1
  (direct feedback alignment, Nøkland 2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dendrite_sim.engine.nonlinearities import NONLINEARITIES


@dataclass
class Forward:
    """Cached forward pass: ``a[l]`` pre-activations of layers 1..L, ``h[l]`` activities of
    layers 0..L−1 (``h[0]`` is the input), so ``a[l] = h[l] @ W[l].T + b[l]``."""

    a: list
    h: list

    @property
    def out(self) -> np.ndarray:
        return self.a[-1]


class RateNetwork:
    """A layered rate network. ``sizes = [n_in, n_hidden..., n_out]``."""

    def __init__(self, sizes, nonlinearity: str, feedback: str, rng: np.random.Generator,
                 init_scale: float = 1.0, bias: bool = True):
        self.sizes = list(sizes)
        self.nonlinearity = nonlinearity
        self.f, self.df = NONLINEARITIES[nonlinearity]
        self.feedback = feedback
        self.bias = bias
        L = len(sizes) - 1
        # scaled (He/Xavier-like) Gaussian initialisation: std = init_scale / sqrt(fan_in)
        self.W = [rng.standard_normal((sizes[i + 1], sizes[i])) * init_scale / np.sqrt(sizes[i])
                  for i in range(L)]
        self.b = [np.zeros(sizes[i + 1]) for i in range(L)]
        self.B = [rng.standard_normal((sizes[i + 1], sizes[i + 2])) / np.sqrt(sizes[i + 2])
                  for i in range(L - 1)]
        self.D = [rng.standard_normal((sizes[i + 1], sizes[-1])) / np.sqrt(sizes[-1])
                  for i in range(L - 1)]
        if feedback == "symmetric":
            self.sync_feedback()

    @classmethod
    def from_circuit(cls, circuit, nonlinearity: str, rng: np.random.Generator, init_scale: float = 1.0,
                     bias: bool = True) -> RateNetwork:
        """The rate instance of a layered circuit (:mod:`dendrite_sim.core.circuit`): layer sizes
        from its populations, the feedback mode from its feedback pathways."""
        if any(p.role == "interneuron" for p in circuit.populations):
            raise ValueError("a circuit with interneurons needs its own rate network")
        modes = {q.feedback for q in circuit.feedback()} or {"random"}
        if len(modes) > 1:
            raise ValueError(f"one feedback mode for all layers expected, got {sorted(modes)}")
        return cls(circuit.sizes, nonlinearity, modes.pop(), rng, init_scale=init_scale, bias=bias)

    @property
    def n_layers(self) -> int:
        return len(self.W)

    def sync_feedback(self) -> None:
        """For symmetric feedback, B is Wᵀ by definition."""
        if self.feedback == "symmetric":
            self.B = [W.T.copy() for W in self.W[1:]]

    def forward(self, x: np.ndarray, node_noise: list | None = None) -> Forward:
        """Batched forward pass; ``node_noise[l]`` is added to pre-activation a_{l+1}."""
        h = [x]
        a = []
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            al = h[-1] @ W.T + b
            if node_noise is not None:
                al = al + node_noise[l]
            a.append(al)
            if l < self.n_layers - 1:
                h.append(self.f(al))
        return Forward(a=a, h=h)

    def forward_with(self, x: np.ndarray, W: list, b: list) -> np.ndarray:
        """Output pre-activation with the given weights (weight perturbation); ``W[l]`` may carry a
        leading batch axis of per-sample weights."""
        h = x
        for l in range(self.n_layers):
            Wl = W[l]
            al = (np.einsum("noi,ni->no", Wl, h) if Wl.ndim == 3 else h @ Wl.T) + b[l]
            h = self.f(al) if l < self.n_layers - 1 else al
        return h

    def apply(self, updates, lr: float) -> None:
        """W += lr · dW for each layer's ``(dW, db)``."""
        for l, (dW, db) in enumerate(updates):
            self.W[l] += lr * dW
            if self.bias:
                self.b[l] += lr * db
        self.sync_feedback()

    def feedback_angles(self) -> list[float | None]:
        """Angle (degrees) between vec(B_l) and vec(W_{l+1}ᵀ) for every hidden layer l (None
        where a matrix is zero or not finite)."""
        out = []
        for B, W in zip(self.B, self.W[1:]):
            b, w = B.ravel(), W.T.ravel()
            denom = np.linalg.norm(b) * np.linalg.norm(w)
            cos = float(b @ w / denom) if denom > 0 else float("nan")
            out.append(float(np.degrees(np.arccos(min(1.0, max(-1.0, cos))))) if np.isfinite(cos) else None)
        return out

    def n_params(self) -> int:
        return sum(W.size + b.size for W, b in zip(self.W, self.b))


def backward(net: RateNetwork, fwd: Forward, e_out: np.ndarray, feedback: str = "weights"):
    """Propagate the output error ``e_out`` = ∂L/∂a_L (batch, n_out) and return the per-layer
    descent directions ``(−ΔW, −Δb)`` averaged over the batch.

    ``feedback``: ``"weights"`` (δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l), backprop),
    ``"B"`` (layer-wise feedback matrices, feedback alignment) or ``"D"`` (direct projection of
    the output error, direct feedback alignment).
    """
    n = e_out.shape[0]
    L = net.n_layers
    deltas = [None] * L
    deltas[-1] = e_out
    for l in range(L - 2, -1, -1):
        if feedback == "weights":
            back = deltas[l + 1] @ net.W[l + 1]
        elif feedback == "B":
            back = deltas[l + 1] @ net.B[l].T
        elif feedback == "D":
            back = e_out @ net.D[l].T
        else:
            raise ValueError(feedback)
        deltas[l] = back * net.df(fwd.a[l])
    return [(-(d.T @ h) / n, -d.mean(axis=0)) for d, h in zip(deltas, fwd.h)]
