"""BurstCCN, rate face (Greedy, Zhu, Payeur, Naud, Sacramento & Costa 2022 NeurIPS,
"Single-phase deep learning in cortico-cortical networks"; reference code neuralml/BurstCCN:
``modules/layers_burstccn.py`` ``BurstCCNHiddenLayer``/``BurstCCNOutputLayer``,
``modules/networks_burstccn.py`` and ``Training BurstCCN on MNIST.ipynb``).

A single phase: the output's teaching signal changes its burst rate, and every hidden layer's
apical dendrite receives the burst rate of the layer above through Y (excitatory) and its event
rate through Q (inhibitory, via interneurons). With Q = p_b Y the two cancel when nothing is
taught, so the apical potential u is the teaching part of the feedback alone (layer k's
feedback matrices Y_k = the network's ``B[k]``, Q_k owned by the rule)::

    e_k   = σ(W_k x + b_k)                                        (the network's forward pass)
    out:  p_t,L = p_b [(t − e_L)(1 − e_L) + 1],  b_L = p_b e_L,  b_t,L = p_t,L e_L   (output = "sigmoid")
    hid:  u_k   = Y_k b_t,{k+1} − Q_k e_{k+1}
          p_t,k = σ(4 u_k ⊙ (1 − e_k)),   b_k = p_b e_k,   b_t,k = p_t,k e_k
    ΔW_k  = η ⟨(b_t,k − b_k) x_kᵀ⟩_batch,   Δb_k = η ⟨b_t,k − b_k⟩
    ΔQ_k  = η_Q ⟨u_k e_{k+1}ᵀ⟩_batch       (Q learns to cancel Y's event-rate part: u → 0)
    Q_k(0) = p_b Y_k                         (the source's Q_mode = "symmetric_init")

The factor 4 = 1/σ′(0) makes p_t − p_b ≈ u (1 − e), so b_t − b ≈ u ⊙ σ′(a): feedback
alignment's error, carried by bursts. p_b must be ½ for u = 0 to give p_t = p_b (the source
asserts it). The source's MNIST notebook: 3 hidden layers of 500, batch 32, η = 0.3 for every
layer, η_Q = 0.000731, no momentum, no weight decay, updates averaged over the batch, Y fixed
random (s.d. 0.5). Those are this rule's defaults (momentum, decay and batch sum are there for
comparison with burstprop and work as in :mod:`dendrite_sim.rules.burstprop`: the rule returns its
whole step, so a scenario sets ``training.learning_rate = 1``; the rule's state advances only in
:meth:`after_step`). Y's scale is the architecture's (s.d. 1/√n_{k+1}).

Feedback modes (the architecture's ``feedback``): ``"random"`` Y fixed (the source's default);
``"learned"`` Kolen–Pollack on Y as in burstprop (Y ← Y + v_{k+1}ᵀ − λ Y; not in the BurstCCN
source, whose own Y rule is off by default), Q taking p_b × each step of Y (so Q = p_b Y keeps
cancelling; Q's own η_Q is far too slow to track a moving Y) besides its own learning; ``"symmetric"`` Y = Wᵀ (the
network keeps it) and Q tied to p_b Y (the source's ``Y_mode = Q_mode = "tied"``).

``output = "objective"`` (default) replaces the sigmoid output unit by the scenario's objective:
e_L = ``objective.output(a_L)``, b_t,L − b_L = −p_b ∂L/∂a_L (the same when L is the squared
error of a sigmoid output). On a network whose hidden non-linearity is not ``sigmoid`` the
gate (1 − e) and the factor e of b_t − b = (p_t − p_b) e (product σ′(a)) become f′(a) and 1:
p_t = σ(4 u ⊙ f′(a)), b_t − b = p_t − p_b, with the event rate e = f(a) still sent up
(see :mod:`dendrite_sim.rules.burstprop`).
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.rules.burstprop import _COMMON, MomentumRule, gate_and_factor, output_bursts, sigmoid


@register("rule", "burstccn")
class BurstCCN(MomentumRule):
    """BurstCCN (Greedy et al. 2022): single-phase bursts, apical u = Y b_t − Q e, Q learned to cancel."""

    params = {
        **_COMMON,
        "p_baseline": Field("float", 0.5, "baseline burst probability p_b (the source: 0.5)",
                            lo=0, hi=1, lo_open=True, hi_open=True),
        "hidden_lr": Field("float", 0.3, "learning rate η of hidden layers, inside the rule (source: 0.3)",
                           lo=0),
        "output_lr": Field("float", 0.3, "learning rate η of the output layer, inside the rule "
                           "(source: 0.3)", lo=0),
        "momentum": Field("float", 0.0, "momentum μ of the rule's own velocity (source: 0)", lo=0, hi=1,
                          hi_open=True),
        "weight_decay": Field("float", 0.0, "weight decay λ per step of W and of learned Y (source: 0)",
                              lo=0, hi=1),
        "batch_sum": Field("bool", False, "sum the updates over the batch instead of the mean (source: "
                           "mean)"),
        "q_lr": Field("float", 0.000731, "learning rate η_Q of Q (source: 0.000731)", lo=0),
    }

    def __init__(self, p_baseline=0.5, output="objective", hidden_lr=0.3, output_lr=0.3, momentum=0.0,
                 weight_decay=0.0, batch_sum=False, q_lr=0.000731):
        self.p_baseline, self.output = p_baseline, output
        self.hidden_lr, self.output_lr = hidden_lr, output_lr
        self.momentum, self.weight_decay, self.batch_sum = momentum, weight_decay, batch_sum
        self.q_lr = q_lr
        self.Q = None
        self.v = None

    def setup(self, net, rng):
        """Q_k = p_b Y_k (u = 0 without teaching); zero velocities."""
        self.Q = [self.p_baseline * B.copy() for B in net.B]
        self._setup_steps(net)
        self.pending_Q = None

    def bursts(self, net, x, y, objective, rng):
        """Forward pass and every layer's (e, b, b_t) plus the hidden layers' apical u."""
        if self.Q is None or [q.shape for q in self.Q] != [B.shape for B in net.B]:
            self.setup(net, np.random.default_rng(0))
        fwd = net.forward(x)
        L = net.n_layers
        e_up, b_up, bt_up = output_bursts(self.output, self.p_baseline, fwd.out, y, objective, rng)
        res = [None] * L
        res[-1] = {"e": e_up, "b": b_up, "b_t": bt_up}
        for k in range(L - 2, -1, -1):
            a, e = fwd.a[k], fwd.h[k + 1]
            h, eps = gate_and_factor(net, a, e)
            u = bt_up @ net.B[k].T - e_up @ self.Q[k].T
            p_t = sigmoid(4.0 * u * h)
            b = self.p_baseline * e
            b_t = b + (p_t - self.p_baseline) * eps
            res[k] = {"e": e, "b": b, "b_t": b_t, "u": u, "e_up": e_up}
            e_up, b_up, bt_up = e, b, b_t
        return fwd, res

    def update(self, net, x, y, objective, rng):
        fwd, res = self.bursts(net, x, y, objective, rng)
        norm = 1.0 if self.batch_sum else 1.0 / x.shape[0]
        L = net.n_layers
        deltas = self._burst_deltas(fwd, res, norm)
        self.pending_Q = [norm * (res[k]["u"].T @ res[k]["e_up"]) for k in range(L - 1)]
        return self._step(net, deltas)

    def after_step(self, net, lr):
        """Velocities, Kolen–Pollack Y (learned feedback; Q takes p_b × Y's step) and
        Q += lr · η_Q ⟨u e_upᵀ⟩ (Q = p_b Y for symmetric feedback)."""
        B_old = [B.copy() for B in net.B] if net.feedback == "learned" else None
        if not self._advance(net, lr):
            return
        if B_old is not None:   # Q takes p_b × Y's Kolen–Pollack step: the cancellation survives
            self.Q = [Q + self.p_baseline * (B - Bo) for Q, B, Bo in zip(self.Q, net.B, B_old)]
        if net.feedback == "symmetric":
            self.Q = [self.p_baseline * B.copy() for B in net.B]
        elif self.q_lr > 0 and self.pending_Q is not None:
            for k, dQ in enumerate(self.pending_Q):
                self.Q[k] = self.Q[k] + lr * self.q_lr * dQ
        self.pending_Q = None
