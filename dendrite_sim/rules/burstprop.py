"""Burstprop, rate face (Payeur, Guerguiev, Zenke, Richards & Naud 2021 Nat Neurosci 24:1010,
"Burst-dependent synaptic plasticity can coordinate learning in hierarchical circuits";
reference code jordan-g/Burstprop: ``layers.py`` ``HiddenLayer``/``OutputLayer``, ``train_mnist.py``
and ``mnist_demo.ipynb``).

Each unit has an event rate e (somatic, feedforward) and a burst probability p (apical,
feedback); its burst rate is b = p ⊙ e. Feedforward weights learn from the change of the burst
rate that the teaching signal causes, b_t − b, against the presynaptic event rate.

Equations (hidden layers k = 1 … L−1, output layer L; ``x`` the layer's input; Y_k the feedback
weights from layer k+1 to layer k, which are the network's ``B`` matrices, so
``feedback_angle_deg`` of ``train`` is the demo notebook's ``weight_alignment(weight, weight_fa)``
of the layer above)::

    e_k   = σ(W_k x + b_k)                                           (the network's forward pass)
    out:  p_L = p_b,   p_t,L = p_b [(t − e_L)(1 − e_L) + 1]          (output = "sigmoid")
          b_L = p_b e_L,   b_t,L = p_t,L e_L
    hid:  b_pre,k = σ(Y_k b_{k+1}) ⊙ e_k                             (recurrent input, no teaching)
          u_k   = (Y_k b_{k+1}) ⊙ (1 − e_k) − Z_k b_pre,k
          p_k   = σ(u_k),   p_t,k = σ((Y_k b_t,{k+1}) ⊙ (1 − e_k) − Z_k b_pre,k)
          b_k = p_k e_k,   b_t,k = p_t,k e_k
    Δ_k   = η_k Σ_batch (b_t,k − b_k) x_kᵀ      (η_k: hidden_lr for hidden layers, output_lr for L)
    ΔZ_k  = η_Z Σ_batch u_k b_pre,kᵀ             (Z drives u → 0: p → ½ without teaching)

The source sums over the batch (``batch_sum``; false takes the mean) and updates with momentum and
weight decay, per step::

    v_k ← μ v_k + Δ_k,     W_k ← W_k + v_k − λ W_k,     b_k ← b_k + v_k^bias      (no bias decay)
    Kolen–Pollack (feedback = "learned"): Y_k ← Y_k + v_{k+1}ᵀ − λ Y_k  (the demo's weight_fa
    gets the same velocity as the feedforward weights of its layer, so Y_k → W_{k+1}ᵀ)

**How the numbers map onto the demo** (``mnist_demo.ipynb``: 1 hidden layer of 500, batch 32,
10 epochs, ``hidden_lr`` 1.0, ``output_lr`` 0.01, ``momentum`` 0.9, ``weight_decay`` 1e-4,
``weight_fa_std`` 0.1, ``p_baseline`` 0.2, recurrent input on with ``weight_r_range`` 0.01 and
``recurrent_lr`` 1e-4): the rule owns the velocities and the per-layer learning rates; its
:meth:`update` returns the whole step μ v + Δ − λ W that the demo takes, and the trainer applies
``W += learning_rate · step`` — so a scenario sets ``training.learning_rate = 1`` to take the
demo's steps (any other value scales every step, decay, Kolen–Pollack and Z updates included).
:meth:`update` never changes the rule's state: the velocities, Y and Z advance in
:meth:`after_step`, so gradient diagnostics may call :meth:`update` freely (before training the
velocity is 0 and the step is Δ − λ W; set ``momentum = 0`` and ``weight_decay = 0`` to measure
the bare rule). Y's initial scale is the architecture's (``B`` with s.d. 1/√n_{k+1}; the demo
draws s.d. 0.1) and W's is the architecture's ``init_scale``/√fan-in (the demo: Xavier normal).

**Output unit.** ``output = "sigmoid"`` is the source's output layer: event rate σ(a_L) and
target t (the one-hot label, or the target vector), i.e. it descends ½‖σ(a_L) − t‖² whatever the
scenario's objective is (the objective still reports loss and accuracy; accuracy is the same
argmax). ``output = "objective"`` takes the teaching signal of the scenario's objective,
g = ∂L/∂a_L: e_L = ``objective.output(a_L)`` and b_t,L − b_L = −p_b g — the same formula when
L is the squared error of a sigmoid output ((p_t − p_b) e = p_b (t − e)(1 − e) e = −p_b g), and
the form to use on the rule map (its output update is then p_b × the exact descent direction).

**Other non-linearities.** σ enters the learning only through the gate (1 − e) and the factor e
of b_t − b = (p_t − p) e, whose product e (1 − e) is σ′(a). On a network whose hidden
non-linearity f is not ``sigmoid`` (the map's linear network) the rule keeps e = f(a) as the event
rate (b = p e, b_pre = σ(Y b) e) and uses the gate f′(a) and b_t − b = p_t − p, so to first order
in the teaching signal Δ_k ∝ σ′(u) (Y_k (b_t − b)_{k+1}) ⊙ f′(a_k) x_kᵀ as for the sigmoid.

**Spiking face** (:class:`BurstpropSpiking`, rule ``burstprop_spiking``; Payeur et al. 2021
Eq. 1, reference code apayeur/spikingburstprop, ``src/EBCPConnection``): an in-loop synapse
rule (:mod:`dendrite_sim.synapses.plasticity`) on a projection j → i::

    dW_ij/dt = η [B_i(t) − P̄_i(t) E_i(t)] Ẽ_j(t),      W_ij clipped to [w_min, w_max]

with E_i, B_i the postsynaptic event and burst trains (sums of δ: an event is an isolated spike
or the first spike of a burst, a burst is marked at the second spike within T_b = 16 ms of its
predecessor; :mod:`dendrite_sim.engine.bursts`), P̄_i = r_B/r_E the postsynaptic running burst
probability (exponential window ``tau_avg`` of the population, the engine's ``burst_prob``) and
Ẽ_j the presynaptic event trace, Ẽ_j ← Ẽ_j e^{−dt/τ_pre} every step and + 1 at each event of j.
Integrated exactly over the δs: at a postsynaptic event W_ij += −η P̄_i Ẽ_j, at a burst
W_ij += η Ẽ_j (a burst is also an event, so its first spike depressed and its second potentiates:
over a burst the net change is η (1 − P̄_i) Ẽ_j). P̄_i is read after this step's bookkeeping
(it includes the event that triggers the update), Ẽ_j before this step's increment. The
source's connection scales the depression by the running burst rate and the potentiation by
the running event rate (valences −B̄_i and +Ē_i), i.e. η Ē_i [B_i − P̄_i E_i] Ẽ_j: the same
rule with a learning rate proportional to the postsynaptic event rate; here η is constant, as
in the paper's equation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import clip, select
from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.synapses.plasticity import BoundedWeights, SynapseRule


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def targets(y, n_out):
    """One-hot rows for integer labels, the target vectors themselves otherwise."""
    if y.ndim == 1:
        t = np.zeros((len(y), n_out))
        t[np.arange(len(y)), y.astype(int)] = 1.0
        return t
    return y


def gate_and_factor(net, a, e):
    """(gate h, factor ε) with h ε = f′(a): (1 − e, e) for the sigmoid, (f′(a), 1) otherwise."""
    if net.nonlinearity == "sigmoid":
        return 1.0 - e, e
    return net.df(a), np.ones_like(a)


def output_bursts(mode, p_b, a_out, y, objective, rng):
    """Output event rate e_L, burst rate b_L = p_b e_L and teaching burst rate b_t,L."""
    if mode == "sigmoid":
        e = sigmoid(a_out)
        t = targets(y, a_out.shape[1])
        p_t = p_b * ((t - e) * (1.0 - e) + 1.0)
        return e, p_b * e, p_t * e
    e = objective.output(a_out)
    g = objective.teaching_signal(a_out, y, rng)
    return e, p_b * e, p_b * e - p_b * g


class MomentumRule(LearningRule):
    """Shared machinery of the burst rules: per-layer rates, momentum, weight decay and
    Kolen–Pollack feedback owned by the rule (:meth:`update` is state-free)."""

    def _setup_steps(self, net):
        self.v = [(np.zeros_like(W), np.zeros_like(b)) for W, b in zip(net.W, net.b)]
        self.pending = None

    def _burst_deltas(self, fwd, res, norm):
        """Per layer ΔW = η (b_t − b) h_preᵀ, Δb = η Σ (b_t − b), η the layer's rate × ``norm``."""
        L = len(res)
        deltas = []
        for k in range(L):
            eta = (self.output_lr if k == L - 1 else self.hidden_lr) * norm
            d = res[k]["b_t"] - res[k]["b"]
            deltas.append((eta * (d.T @ fwd.h[k]), eta * d.sum(axis=0)))
        return deltas

    def _step(self, net, deltas):
        """The step μ v + Δ − λ W per layer, and remember Δ for :meth:`after_step`."""
        if getattr(self, "v", None) is None or len(self.v) != net.n_layers:
            self._setup_steps(net)
        self.pending = deltas
        mu, lam = self.momentum, self.weight_decay
        return [(mu * vW + dW - lam * W, mu * vb + db)
                for (vW, vb), (dW, db), W in zip(self.v, deltas, net.W)]

    def _advance(self, net, lr):
        """v ← μ v + Δ; Kolen–Pollack on the feedback matrices when they are learned."""
        if self.pending is None:
            return False
        mu, lam = self.momentum, self.weight_decay
        self.v = [(mu * vW + dW, mu * vb + db) for (vW, vb), (dW, db) in zip(self.v, self.pending)]
        if net.feedback == "learned":
            for k in range(net.n_layers - 1):
                net.B[k] = net.B[k] + lr * (self.v[k + 1][0].T - lam * net.B[k])
        self.pending = None
        return True


_COMMON = {
    "p_baseline": Field("float", 0.2, "output baseline burst probability p_b (the demo: 0.2)",
                        lo=0, hi=1, lo_open=True),
    "output": Field("str", "objective", "output teaching: the source's sigmoid unit with target t, "
                    "or the objective's teaching signal (b_t − b = −p_b ∂L/∂a)",
                    choices=("sigmoid", "objective")),
    "hidden_lr": Field("float", 1.0, "learning rate η of hidden layers, inside the rule (demo: 1.0)",
                       lo=0),
    "output_lr": Field("float", 0.01, "learning rate η of the output layer, inside the rule "
                       "(demo: 0.01)", lo=0),
    "momentum": Field("float", 0.9, "momentum μ of the rule's own velocity (demo: 0.9)", lo=0, hi=1,
                      hi_open=True),
    "weight_decay": Field("float", 1e-4, "weight decay λ per step of W and of learned Y (demo: 1e-4)",
                          lo=0, hi=1),
    "batch_sum": Field("bool", True, "sum the updates over the batch (the source) instead of the mean"),
}


@register("rule", "burstprop")
class Burstprop(MomentumRule):
    """Burstprop (Payeur et al. 2021): burst-rate change b_t − b teaches; Y fixed or Kolen–Pollack, recurrent Z."""

    params = {
        **_COMMON,
        "recurrent": Field("bool", True, "recurrent input −Z b_pre on the apical dendrite (demo: on)"),
        "recurrent_init": Field("float", 0.01, "initial Z ~ U(−r, r) (demo weight_r_range: 0.01)", lo=0),
        "recurrent_lr": Field("float", 1e-4, "learning rate η_Z of Z (demo: 1e-4)", lo=0),
    }

    def __init__(self, p_baseline=0.2, output="objective", hidden_lr=1.0, output_lr=0.01,
                 momentum=0.9, weight_decay=1e-4, batch_sum=True, recurrent=True,
                 recurrent_init=0.01, recurrent_lr=1e-4):
        self.p_baseline, self.output = p_baseline, output
        self.hidden_lr, self.output_lr = hidden_lr, output_lr
        self.momentum, self.weight_decay, self.batch_sum = momentum, weight_decay, batch_sum
        self.recurrent, self.recurrent_init, self.recurrent_lr = recurrent, recurrent_init, recurrent_lr
        self.Z = None
        self.v = None

    def setup(self, net, rng):
        """Z_k ~ U(−r, r) per hidden layer (zeros without recurrence); zero velocities."""
        n = net.sizes[1:-1]
        if self.recurrent:
            self.Z = [rng.uniform(-self.recurrent_init, self.recurrent_init, (m, m)) for m in n]
        else:
            self.Z = [np.zeros((m, m)) for m in n]
        self._setup_steps(net)
        self.pending_Z = None

    def bursts(self, net, x, y, objective, rng):
        """Forward pass and every layer's (e, b, b_t) plus the hidden layers' (u, b_pre)."""
        if self.Z is None or [z.shape[0] for z in self.Z] != net.sizes[1:-1]:
            self.setup(net, np.random.default_rng(0))
        fwd = net.forward(x)
        L = net.n_layers
        e_out, b_up, bt_up = output_bursts(self.output, self.p_baseline, fwd.out, y, objective, rng)
        res = [None] * L
        res[-1] = {"e": e_out, "b": b_up, "b_t": bt_up}
        for k in range(L - 2, -1, -1):
            Y = net.B[k]
            a, e = fwd.a[k], fwd.h[k + 1]
            h, eps = gate_and_factor(net, a, e)
            fb, fb_t = b_up @ Y.T, bt_up @ Y.T
            b_pre = sigmoid(fb) * e
            rec = b_pre @ self.Z[k].T
            u = fb * h - rec
            p, p_t = sigmoid(u), sigmoid(fb_t * h - rec)
            b = p * e
            b_t = b + (p_t - p) * eps
            res[k] = {"e": e, "b": b, "b_t": b_t, "u": u, "b_pre": b_pre}
            b_up, bt_up = b, b_t
        return fwd, res

    def update(self, net, x, y, objective, rng):
        fwd, res = self.bursts(net, x, y, objective, rng)
        norm = 1.0 if self.batch_sum else 1.0 / x.shape[0]
        L = net.n_layers
        deltas = self._burst_deltas(fwd, res, norm)
        self.pending_Z = [norm * (res[k]["u"].T @ res[k]["b_pre"]) for k in range(L - 1)]
        return self._step(net, deltas)

    def after_step(self, net, lr):
        """Velocities, Kolen–Pollack Y (learned feedback) and Z: Z += lr · η_Z Σ u b_preᵀ."""
        if not self._advance(net, lr):
            return
        if self.recurrent and self.recurrent_lr > 0 and self.pending_Z is not None:
            for k, dZ in enumerate(self.pending_Z):
                self.Z[k] = self.Z[k] + lr * self.recurrent_lr * dZ
        self.pending_Z = None


class BurstpropSpikingParams(NamedTuple):
    eta: float = 0.1          # weight units per event of Ẽ_j (per unit [B − P̄ E])
    tau_pre: float = 20.0     # ms, presynaptic event trace Ẽ_j (the source's tau_pre: 20 ms)
    w_min: float = 0.0
    w_max: float = 1.0e9
    tau_avg: float = 0.0      # ms; > 0: P̄ without the triggering event (set to the post's tau_avg)


@register("rule", "burstprop_spiking")
class BurstpropSpiking(BoundedWeights, SynapseRule):
    """Burstprop's spiking face: dW_ij/dt = η [B_i − P̄_i E_i] Ẽ_j (module docstring)."""

    Params = BurstpropSpikingParams
    units = {"tau_pre": "ms", "tau_avg": "ms"}
    bounds = {"eta": ">= 0", "tau_avg": ">= 0"}
    pre_traces = {"E_pre": "tau_pre"}

    @staticmethod
    def on_post(w, E_pre, post_event, post_burst, burst_prob, event_rate, burst_rate, p):
        """A postsynaptic spike: w + η ([burst] − P̄ [event]) Ẽ_j, clipped to [w_min, w_max].

        ``tau_avg`` = 0 (default): P̄ = ``burst_prob``, which includes the triggering event.
        ``tau_avg`` > 0 (the postsynaptic population's window): P̄ = r_B / (r_E − 1000/τ_avg) at
        an event, the estimate from before it. Why: at an event the running event rate has just
        jumped by 1000/τ_avg, so its mean there is r + 1000/τ_avg and the including estimate
        averages P·r/(r + 1000/τ_avg) instead of P — with τ_avg = 200 ms and r = 6 Hz only
        0.55 P, a potentiation bias η (1 − 0.55) P E Ẽ on every synapse (burstprop_xor).
        """
        ev = select(post_event, 1.0, 0.0)
        on = p.tau_avg > 0.0
        inc = select(on, 1000.0 / (p.tau_avg + select(on, 0.0, 1.0)), 0.0)
        r_e = event_rate - inc * ev
        before = select(r_e > 1e-12, burst_rate / select(r_e > 1e-12, r_e, 1.0), 0.0)
        p_bar = select(on, before, burst_prob)
        valence = select(post_burst, 1.0, 0.0) - p_bar * ev
        return clip(w + p.eta * valence * E_pre, p.w_min, p.w_max)

    @staticmethod
    def pre_spike(E_pre, event, p):
        """Ẽ_j + 1 at an event of j (isolated spike or first of a burst), unchanged otherwise."""
        return E_pre + select(event, 1.0, 0.0)
