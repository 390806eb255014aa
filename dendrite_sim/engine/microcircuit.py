"""Rate dynamics of the dendritic cortical microcircuit (Sacramento, Ponte Costa, Bengio & Senn 2018
NeurIPS, "Dendritic cortical microcircuits approximate the backpropagation algorithm").

Layers k = 1..N of pyramidal cells with three compartments (basal, apical, soma); each hidden layer
k < N also holds one SST-like interneuron per pyramidal cell of layer k+1. Rates are
r_0 = x (the input is clamped), r_k = φ(u_k), r^I_k = φ(u^I_k). With the indices of the lists
below (``W[l]``, ``b[l]``: layer l+1's basal input; ``B[l]``, ``W_IP[l]``, ``b_IP[l]``, ``W_PI[l]``:
hidden layer l+1 and its interneurons):

* basal      v_B,k = W^PP_{k,k−1} r_{k−1} + b_k                       (``W[k−1]``, ``b[k−1]``)
* apical     v_A,k = W^PP_{k,k+1} r_{k+1} + W^PI_k r^I_k              (``B[k−1]``, ``W_PI[k−1]``)
* interneuron dendrite  v^I_k = W^IP_k r_k + b^IP_k                    (``W_IP[k−1]``, ``b_IP[k−1]``)

and the somatic potentials obey (C = 1; conductances in units of the membrane capacitance per unit
time)

* hidden pyramid  du_k/dt  = −g_lk u_k + g_B (v_B,k − u_k) + g_A (v_A,k − u_k)
* output pyramid  du_N/dt  = −g_lk u_N + g_B (v_B,N − u_N) + g_som (u^trgt − u_N)
  (the nudging term only while a target is shown)
* interneuron     du^I_k/dt = −g_lk u^I_k + g_D (v^I_k − u^I_k) + g_som (u_{k+1} − u^I_k)
  (always nudged by its partner pyramid of layer k+1)

The output pyramids, and the interneurons that mimic them, may use their own rate function
(``f_out``, e.g. linear); by default every cell uses φ.

Defaults g_lk 0.1, g_B 1.0, g_A 0.8, g_D 1.0, g_som 0.8 (the paper; g_D = g_B as in the authors'
code). The dendrites are instantaneous (the paper's v_B, v_A are weighted sums of rates); only the
somata have dynamics. The paper's somatic noise is left out.

**Steady state** (:func:`settle`). The learning rules of the paper act continuously; the standard
rate approximation evaluates them at the fixed point of these dynamics for each example (one learning
step per example batch). The fixed point solves, with g_P = g_lk + g_B + g_A,

    u_k = (g_B v_B,k + g_A v_A,k) / g_P,
    u_N = (g_B v_B,N + g_som u^trgt) / (g_lk + g_B + g_som)   [free: g_B v_B,N / (g_lk + g_B)],
    u^I_k = (g_D v^I_k + g_som u_{k+1}) / (g_lk + g_D + g_som).

It is found by damped Gauss–Seidel sweeps over these equations (bottom-up: each layer's pyramids,
then its interneurons), u ← u + α (u* − u), starting from the feed-forward pass (or a given state),
until the largest change max|u* − u| falls below ``tol`` (``max_iter`` sweeps at most; the final
residual is returned, and a RuntimeWarning says when the tolerance was not reached). One sweep
is exact for a purely feed-forward circuit; α < 1 damps strong top-down loops. The same equations
with dt → 0 are the continuous dynamics, integrated by forward Euler in :func:`integrate` (used for
the voltage traces).

**Self-predicting state** (:func:`self_predicting_weights`): W^PI_k = −W^PP_{k,k+1} and
W^IP_k = ρ_{k+1} W^PP_{k+1,k}, b^IP_k = ρ_{k+1} b_{k+1}, with
ρ_{k+1} = [g_B / (g_lk + g_B + g_A·[k+1 < N])] · (g_lk + g_D) / g_D: then the interneuron's
dendritic prediction v̂^I = g_D/(g_lk+g_D) v^I equals its partner's free potential, u^I_k = u_{k+1},
and without a target every apical potential vanishes (v_A = 0), so the free steady state is the
feed-forward pass r_k = φ(v̂_B,k), v̂_B,k = g_B/(g_lk+g_B+g_A) v_B,k (output: g_B/(g_lk+g_B) v_B,N).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from dendrite_sim.engine.rate import Forward, RateNetwork


@dataclass(frozen=True)
class Conductances:
    """Leak, basal, apical, interneuron-dendritic and somatic-nudging conductances (paper defaults)."""

    g_lk: float = 0.1
    g_B: float = 1.0
    g_A: float = 0.8
    g_D: float = 1.0
    g_som: float = 0.8

    @property
    def hidden_gain(self) -> float:
        """v̂_B / v_B of a hidden pyramid: g_B / (g_lk + g_B + g_A)."""
        return self.g_B / (self.g_lk + self.g_B + self.g_A)

    @property
    def output_gain(self) -> float:
        """v̂_B / v_B of an output pyramid: g_B / (g_lk + g_B)."""
        return self.g_B / (self.g_lk + self.g_B)

    @property
    def inter_gain(self) -> float:
        """v̂^I / v^I of an interneuron: g_D / (g_lk + g_D)."""
        return self.g_D / (self.g_lk + self.g_D)

    def basal_gain(self, layer: int, n_layers: int) -> float:
        """v̂_B / v_B of layer ``layer`` (0-based index into W) in a circuit of ``n_layers``."""
        return self.output_gain if layer == n_layers - 1 else self.hidden_gain


@dataclass
class CircuitState:
    """A (steady or instantaneous) state: somatic potentials and the compartments they imply.

    ``u[l]`` soma of layer l+1 (l = 0..N−1); ``u_I[l]`` interneurons of hidden layer l+1;
    ``v_B[l]``, ``v_A[l]`` (hidden layers only), ``v_I[l]``; ``r[l]`` rates of layers 0..N
    (``r[0] = x``); ``r_I[l]``; ``target`` the nudging potential (or None); ``iterations`` and
    ``residual`` of the settling (max |u* − u| of the last sweep).
    """

    u: list
    u_I: list
    v_B: list = field(default_factory=list)
    v_A: list = field(default_factory=list)
    v_I: list = field(default_factory=list)
    r: list = field(default_factory=list)
    r_I: list = field(default_factory=list)
    target: np.ndarray | None = None
    iterations: int = 0
    residual: float = 0.0

    def copy(self) -> CircuitState:
        return CircuitState(u=[a.copy() for a in self.u], u_I=[a.copy() for a in self.u_I],
                            target=self.target)


def phi_of(c, l: int):
    """Rate function of layer l (0-based index into W) and of the interneurons partnered with it:
    ``c.f`` (φ), or ``c.f_out`` for the output layer when the circuit has one."""
    f_out = getattr(c, "f_out", None)
    return f_out if (f_out is not None and l == len(c.W) - 1) else c.f


def _targets(c, g: Conductances, x, u, u_I, target, l):
    """Fixed-point value u* of layer l (0-based) given the current state (basal from layer l−1)."""
    N = len(c.W)
    r_pre = x if l == 0 else phi_of(c, l - 1)(u[l - 1])
    vB = r_pre @ c.W[l].T + c.b[l]
    if l == N - 1:
        if target is None:
            return g.g_B * vB / (g.g_lk + g.g_B)
        return (g.g_B * vB + g.g_som * target) / (g.g_lk + g.g_B + g.g_som)
    f_up = phi_of(c, l + 1)
    vA = f_up(u[l + 1]) @ c.B[l].T + f_up(u_I[l]) @ c.W_PI[l].T
    return (g.g_B * vB + g.g_A * vA) / (g.g_lk + g.g_B + g.g_A)


def _inter_targets(c, g: Conductances, u, u_I, l):
    vI = phi_of(c, l)(u[l]) @ c.W_IP[l].T + c.b_IP[l]
    return (g.g_D * vI + g.g_som * u[l + 1]) / (g.g_lk + g.g_D + g.g_som)


def feedforward_state(c, g: Conductances, x, target=None) -> CircuitState:
    """The state with v_A = 0 everywhere and each interneuron at its partner's potential (the
    free steady state of a circuit in the self-predicting state); the start of :func:`settle`."""
    N = len(c.W)
    u, r = [], x
    for l in range(N):
        vB = r @ c.W[l].T + c.b[l]
        ul = g.basal_gain(l, N) * vB
        if l == N - 1 and target is not None:
            ul = (g.g_B * vB + g.g_som * target) / (g.g_lk + g.g_B + g.g_som)
        u.append(ul)
        r = phi_of(c, l)(ul)
    return CircuitState(u=u, u_I=[u[l + 1].copy() for l in range(N - 1)], target=target)


def settle(c, g: Conductances, x, target=None, *, tol: float = 1e-6, max_iter: int = 200,
           damping: float = 1.0, start: CircuitState | None = None) -> CircuitState:
    """Steady state of the circuit ``c`` for inputs ``x`` (batch, n_in), nudged toward ``target``
    (batch, n_out) when given. ``c`` has ``W, b, B, W_IP, b_IP, W_PI`` (lists) and ``f`` (φ).
    Damped Gauss–Seidel sweeps (see the module docstring); returns the state with its
    compartments filled in, its sweep count and final residual."""
    s = start.copy() if start is not None else feedforward_state(c, g, x, target)
    s.target = target
    u, u_I = s.u, s.u_I
    N = len(c.W)
    res = np.inf
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        res = 0.0
        for l in range(N):
            new = _targets(c, g, x, u, u_I, target, l)
            d = new - u[l]
            res = max(res, float(np.max(np.abs(d))) if d.size else 0.0)
            u[l] = u[l] + damping * d
            if l >= 1:
                newI = _inter_targets(c, g, u, u_I, l - 1)
                dI = newI - u_I[l - 1]
                res = max(res, float(np.max(np.abs(dI))) if dI.size else 0.0)
                u_I[l - 1] = u_I[l - 1] + damping * dI
        if res < tol:
            break
    if not res < tol and np.isfinite(res):
        warnings.warn(f"microcircuit steady state not reached: residual {res:.3g} after {it} sweeps "
                      f"(tol {tol:g}); lower architecture.damping or raise architecture.max_iter",
                      RuntimeWarning, stacklevel=2)
    s.iterations, s.residual = it, res
    return fill(c, x, s)


def fill(c, x, s: CircuitState) -> CircuitState:
    """Compute the compartment potentials and rates implied by the somatic state ``s``."""
    N = len(c.W)
    s.r = [x] + [phi_of(c, l)(ul) for l, ul in enumerate(s.u)]
    s.r_I = [phi_of(c, l + 1)(a) for l, a in enumerate(s.u_I)]
    s.v_B = [s.r[l] @ c.W[l].T + c.b[l] for l in range(N)]
    s.v_A = [s.r[l + 2] @ c.B[l].T + s.r_I[l] @ c.W_PI[l].T for l in range(N - 1)]
    s.v_I = [s.r[l + 1] @ c.W_IP[l].T + c.b_IP[l] for l in range(N - 1)]
    return s


def residuals(c, g: Conductances, s: CircuitState) -> list:
    """du/dt of every soma at state ``s`` (pyramids of layers 1..N, then the interneurons): zero
    at a steady state."""
    N = len(c.W)
    out = []
    for l in range(N):
        if l < N - 1:
            du = -g.g_lk * s.u[l] + g.g_B * (s.v_B[l] - s.u[l]) + g.g_A * (s.v_A[l] - s.u[l])
        else:
            du = -g.g_lk * s.u[l] + g.g_B * (s.v_B[l] - s.u[l])
            if s.target is not None:
                du = du + g.g_som * (s.target - s.u[l])
        out.append(du)
    for l in range(N - 1):
        out.append(-g.g_lk * s.u_I[l] + g.g_D * (s.v_I[l] - s.u_I[l]) + g.g_som * (s.u[l + 1] - s.u_I[l]))
    return out


def integrate(c, g: Conductances, x, phases, *, dt: float = 0.05, start: CircuitState | None = None,
              record: int | None = None):
    """Forward-Euler integration of the continuous dynamics through ``phases`` — a list of
    ``(duration, target_or_None)`` — for inputs ``x`` (batch, n_in), starting from ``start`` (default:
    every soma at rest, u = 0). Returns ``(t, traces, state)``: ``traces[name]`` is a list over
    layers of arrays (steps, batch, n) for ``u``, ``v_B``, ``v_A`` (hidden layers), ``u_I``, and
    ``state`` the final state. ``record`` keeps only the first ``record`` samples of the batch."""
    N = len(c.W)
    if start is None:
        s = CircuitState(u=[np.zeros((len(x), W.shape[0])) for W in c.W],
                         u_I=[np.zeros((len(x), c.W[l + 1].shape[0])) for l in range(N - 1)])
    else:
        s = start.copy()
    k = len(x) if record is None else record
    keys = ("u", "v_B", "v_A", "u_I")
    traces = {key: [] for key in keys}
    ts = []
    t = 0.0
    for duration, target in phases:
        s.target = target
        for _ in range(int(round(duration / dt))):
            fill(c, x, s)
            ts.append(t)
            for key in keys:
                traces[key].append([a[:k].copy() for a in getattr(s, key)])
            du = residuals(c, g, s)
            s.u = [s.u[l] + dt * du[l] for l in range(N)]
            s.u_I = [s.u_I[l] + dt * du[N + l] for l in range(N - 1)]
            t += dt
    fill(c, x, s)
    out = {key: [np.stack([step[l] for step in traces[key]]) for l in range(len(traces[key][0]))]
           for key in keys} if ts else {key: [] for key in keys}
    return np.asarray(ts), out, s


def self_predicting_weights(W, b, B, g: Conductances):
    """Interneuron weights of the self-predicting state for forward weights ``W``, ``b`` and
    top-down weights ``B``: returns ``(W_IP, b_IP, W_PI)`` (see the module docstring)."""
    N = len(W)
    W_IP, b_IP, W_PI = [], [], []
    for l in range(N - 1):
        rho = g.basal_gain(l + 1, N) / g.inter_gain
        W_IP.append(rho * W[l + 1].copy())
        b_IP.append(rho * b[l + 1].copy())
        W_PI.append(-B[l].copy())
    return W_IP, b_IP, W_PI


def mean_abs_apical(s: CircuitState) -> float:
    """Mean |v_A| over the hidden pyramids of all hidden layers and the batch."""
    if not s.v_A:
        return 0.0
    return float(np.mean(np.concatenate([np.abs(a).ravel() for a in s.v_A])))


class MicrocircuitNetwork(RateNetwork):
    """A :class:`~dendrite_sim.engine.rate.RateNetwork` whose layers are microcircuits.

    ``W``, ``b``: forward pyramid-to-pyramid weights W^PP_{k,k−1} and basal biases (what the
    trainer updates); ``B[l]`` (n_{l+1}, n_{l+2}): top-down weights W^PP_{k,k+1} (fixed random,
    learned, or Wᵀ for ``feedback = "symmetric"``); ``W_IP[l]`` (n_{l+2}, n_{l+1}), ``b_IP[l]``,
    ``W_PI[l]`` (n_{l+1}, n_{l+2}): pyramid-to-interneuron and interneuron-to-pyramid weights of
    hidden layer l+1. :meth:`forward` returns the free steady state (no target): ``a[l] = u_{l+1}``,
    ``h[l] = r_l`` — so the trainer's evaluation, ``train``'s metrics and ``feedback_angles`` work
    unchanged; in the self-predicting state it is the feed-forward pass.
    """

    def __init__(self, sizes, nonlinearity: str, feedback: str, rng: np.random.Generator, *,
                 phi=None, phi_out=None, conductances: Conductances = Conductances(), init_scale: float = 1.0,
                 bias: bool = True, init_state: str = "random", tol: float = 1e-6,
                 max_iter: int = 200, damping: float = 1.0):
        super().__init__(sizes, nonlinearity, feedback, rng, init_scale=init_scale, bias=bias)
        if phi is not None:
            self.f, self.df = phi
        self.f_out, self.df_out = phi_out if phi_out is not None else (None, None)
        self.g = conductances
        self.tol, self.max_iter, self.damping = tol, max_iter, damping
        L = self.n_layers
        if init_state == "self_predicting":
            self.W_IP, self.b_IP, self.W_PI = self_predicting_weights(self.W, self.b, self.B, self.g)
        elif init_state == "random":
            self.W_IP = [rng.standard_normal((sizes[l + 2], sizes[l + 1])) * init_scale
                         / np.sqrt(sizes[l + 1]) for l in range(L - 1)]
            self.b_IP = [np.zeros(sizes[l + 2]) for l in range(L - 1)]
            self.W_PI = [rng.standard_normal((sizes[l + 1], sizes[l + 2])) / np.sqrt(sizes[l + 2])
                         for l in range(L - 1)]
        else:
            raise ValueError(f"init_state {init_state!r}")
        self.init_state = init_state

    def settle(self, x, target=None, start: CircuitState | None = None) -> CircuitState:
        """Steady state for inputs ``x``, nudged toward ``target`` when given (:func:`settle`)."""
        return settle(self, self.g, x, target, tol=self.tol, max_iter=self.max_iter,
                      damping=self.damping, start=start)

    def forward(self, x, node_noise=None) -> Forward:
        if node_noise is not None:
            raise NotImplementedError("node perturbation is not defined on the microcircuit")
        s = self.settle(x)
        return Forward(a=list(s.u), h=s.r[:-1])

    def forward_with(self, x, W, b):
        """Free steady-state output with the given forward weights (2-D weights only)."""
        if any(np.ndim(w) == 3 for w in W):
            raise NotImplementedError("per-sample weights are not defined on the microcircuit")
        view = CircuitView(W, b, self.B, self.W_IP, self.b_IP, self.W_PI, self.f, self.df, self.f_out)
        return settle(view, self.g, x, tol=self.tol, max_iter=self.max_iter,
                      damping=self.damping).u[-1]


@dataclass
class CircuitView:
    """The arrays :func:`settle` reads, gathered from anywhere (e.g. a plain RateNetwork's weights
    rescaled to potentials, plus a rule's own interneurons)."""

    W: list
    b: list
    B: list
    W_IP: list
    b_IP: list
    W_PI: list
    f: object
    df: object
    f_out: object = None
