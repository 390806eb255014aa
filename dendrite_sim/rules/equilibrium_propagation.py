"""Equilibrium propagation (Scellier & Bengio 2017, Front Comput Neurosci 11:24) and contrastive
Hebbian learning as its clamped limit (Movellan 1991; Xie & Seung 2003, Neural Comput 15:441).

**Energy.** A layered network with states u_1 … u_L (u_0 ≡ x, the clamped input, whose rate is x
itself as in the network's forward pass), rates r_l = ρ_l(u_l) with ρ_l the network's own ``f``
for hidden layers and the identity for the output (the objective owns the output non-linearity:
u_L is the output pre-activation the objective reads). The energy is the continuous Hopfield
energy (Hopfield 1984; the paper's §2 model, written with the rates as variables) with the
top-down couplings of layer l scaled by a feedback gain γ (Xie & Seung 2003)::

    E(u) = Σ_{l=1..L} c_l [ Σ_i G_l(r_{l,i}) − r_lᵀ (W_l r_{l−1} + b_l) ],   c_l = γ^{l−1},
    G_l′(r) = ρ_l⁻¹(r)   (G_l(r) = ½ r² for linear units),

so −(1/c_l) ∂E/∂r_l = −u_l + W_l r_{l−1} + b_l + γ W_{l+1}ᵀ r_{l+1}: bottom-up drive, plus
top-down feedback through the *transposed forward weights* (symmetric connections; the
architecture's feedback matrices B are not used). Total energy with nudging
F = E + β c_L C(u_L), where C is the cost on the output.

**Dynamics and relaxation scheme.** The leaky-integrator dynamics du_l/dt = −(1/c_l) ∂F/∂r_l
(Hopfield's; dE/dt ≤ 0), integrated with Euler steps of size ε (``step_size``, in units of the
membrane time constant) taken layer by layer from input to output within one sweep::

    u_l ← u_l + ε (W_l r_{l−1} + b_l + γ W_{l+1}ᵀ r_{l+1} − u_l)               (hidden l < L)
    u_L ← u_L + ε (W_L r_{L−1} + b_L − β ∂C/∂u_L − u_L)                         (output)

The free phase (β = 0) starts from the network's feedforward pass, the nudged phase from the free
fixed point. **Convergence criterion:** a phase stops after the first sweep in which no state
changed by more than ``tol · |β| · γ^{L−1}`` (|β| → 1 for the clamped phase of CHL): the smallest
displacement the nudging imposes (at layer 1, per unit teaching signal, in the units of the output
pre-activation), so the relative error of the estimate below is ≈ ``tol`` whatever β, γ and depth;
or after ``max_steps`` sweeps (``self.last_steps`` and ``self.converged`` record what happened).
Everything is batched: a mini-batch relaxes as one array per layer.

**Nudging** (``nudge``): ``"teaching_signal"`` (default) — the force is −β e, e the objective's
teaching signal at the free fixed point (exact output gradient for MSE and cross-entropy, the
sampled REINFORCE estimate for reward), held fixed during the nudged phase: the cost C(u) = eᵀu
linearised at the free point, which has the same gradient there, so the β → 0 limit below is
unchanged; ``"cost"`` — the paper's F = E + β C with −β ∂C/∂u_L = −β · objective.gradient(u_L, y)
re-evaluated at the current output in every sweep (for MSE the paper's elastic force β(y − u_L)).

**Update** (∂E/∂W_l = −c_l r_l r_{l−1}ᵀ): with r⁰, r^β the free and nudged fixed points,
EP's theorem (d/dβ ∂F/∂θ |_{β=0} = dC(u⁰)/dθ) gives the descent direction ::

    ΔW_l = γ^{−(L−l)} (1/β) ⟨ r_l^β r_{l−1}^βᵀ − r_l⁰ r_{l−1}⁰ᵀ ⟩_batch,
    Δb_l = γ^{−(L−l)} (1/β) ⟨ r_l^β − r_l⁰ ⟩_batch,

equal to −∇_θ C(u⁰(θ)) as β → 0 (first-order bias in β). ``beta_sign``: ``"random"`` draws the
sign of β afresh for each mini-batch, as in the paper's experiments (the O(β) bias then averages
out; the rule is ``stochastic``); ``"positive"`` keeps β > 0; ``"symmetric"`` runs both nudged
phases and uses (1/2β)(H^{+β} − H^{−β}) (Laborieux et al. 2021, Front Neurosci 15:633674), whose
bias is O(β²).

**Which gradient.** The free fixed point obeys u_l = W_l r_{l−1} + b_l + γ W_{l+1}ᵀ r_{l+1}; as
γ → 0 it is the network's feedforward pass (``net.forward``: u_l = a_l, r_l = h_l) and the
update becomes backprop's −∇L of the very network the trainer evaluates (the γ^{−(L−l)} factors
are Xie & Seung's layer-wise learning rates that keep the vanishing top-down signal at the
gradient's scale). For γ > 0 the update is the exact gradient (β → 0) of the recurrent network
at its free fixed point, which differs from the feedforward pass by O(γ): its cosine with
backprop through ``net.forward`` falls as 1 − O(γ²) (measured on random inputs, β = 10⁻³:
30-20-10 linear 0.9997 / 0.992 / 0.96 at γ = 0.01 / 0.05 / 0.1; 64-100-10 tanh 1.000 / 0.9998 /
0.999). The default γ = 0.01 keeps the trained recurrent network and the evaluated feedforward
one close; the price of reading the network out feedforward is a loss floor of O(γ²): trained to
its own optimum on the 30-20-10 linear teacher (600 steps), the recurrent network's loss is
5·10⁻⁸ while its feedforward pass's is 0.33 / 0.022 / 0.0009 at γ = 0.02 / 0.005 / 0.001 (there
the update, ≈ 0, is orthogonal to the feedforward gradient). Numerically the nudge reaching
layer 1 is β γ^{L−1}: keep it above ~10⁻¹¹ (γ ≳ 0.005 for four hidden layers at β = 0.1).
γ = 1 (the paper's fully symmetric network) trains a recurrent network whose energy need not
be bounded below (the linear 30-20-10 network does not settle).

:class:`ContrastiveHebbian` (rule ``contrastive_hebbian``) is the clamped limit: the second
phase clamps the output to u_L = u⁰_L − e (the target itself for MSE) instead of nudging it, and
ΔW_l = γ^{−(L−l)} ⟨r_l^c r_{l−1}^cᵀ − r_l⁰ r_{l−1}⁰ᵀ⟩ (no 1/β): Movellan's CHL for γ = 1, equal
to backprop as γ → 0 (Xie & Seung 2003).
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field

_RELAX_PARAMS = {
    "feedback_gain": Field("float", 0.01, "γ: gain of the top-down couplings W_{l+1}ᵀ (Xie & Seung "
                           "2003); → 0 makes the free fixed point the feedforward pass",
                           lo=0, lo_open=True, hi=1),
    "step_size": Field("float", 1.0, "ε: Euler step of the leaky dynamics, in membrane time "
                       "constants (1: fixed-point iteration)", lo=0, lo_open=True, hi=1),
    "tol": Field("float", 1e-6, "convergence: largest state change of a sweep ≤ tol·|β|·γ^(L−1)",
                 lo=0, lo_open=True),
    "max_steps": Field("int", 200, "most sweeps per relaxation phase", lo=1),
}


class _LayeredEnergy(LearningRule):
    """Relaxation of the layered Hopfield energy shared by EP and CHL."""

    def __init__(self, feedback_gain=0.01, step_size=1.0, tol=1e-6, max_steps=200):
        self.feedback_gain, self.step_size = float(feedback_gain), float(step_size)
        self.tol, self.max_steps = float(tol), int(max_steps)
        self.last_steps: tuple = ()
        self.converged = True

    @staticmethod
    def rates(net, u: list) -> list:
        """Rates r_1 … r_L of states u_1 … u_L: ``net.f`` for hidden layers, identity at the output."""
        L = len(u)
        return [net.f(ul) if l < L - 1 else ul for l, ul in enumerate(u)]

    def relax(self, net, x, u, *, force=None, clamp=None, threshold=1e-9):
        """Relax states ``u`` (list of (batch, n_l) arrays, modified copies returned) to a fixed point.

        ``force(u_L)`` is the nudging term added to the output's drive (−β ∂C/∂u_L); ``clamp``
        fixes the output state instead. Returns ``(u, sweeps, converged)``.
        """
        W, b, g, eps = net.W, net.b, self.feedback_gain, self.step_size
        L = len(W)
        u = [ul.copy() for ul in u]
        if clamp is not None:
            u[-1] = clamp.copy()
        r = [x, *self.rates(net, u)]
        last = L - 1 if clamp is not None else L       # layers that move
        for sweep in range(1, self.max_steps + 1):
            dmax = 0.0
            for l in range(last):
                d = r[l] @ W[l].T + b[l]
                if l < L - 1:
                    d += g * (r[l + 2] @ W[l + 1])
                elif force is not None:
                    d += force(u[l])
                du = eps * (d - u[l])
                u[l] = u[l] + du
                r[l + 1] = net.f(u[l]) if l < L - 1 else u[l]
                dmax = max(dmax, float(np.abs(du).max(initial=0.0)))
            if dmax <= threshold:
                return u, sweep, True
        return u, self.max_steps, False

    def free_phase(self, net, x, threshold=1e-9):
        """The free fixed point (β = 0), started from the feedforward pass: ``(u, sweeps, converged)``."""
        return self.relax(net, x, list(net.forward(x).a), threshold=threshold)

    def readout(self, net, x):
        """The output pre-activation at the free fixed point: what the trained (recurrent) network
        answers. ``net.forward(x).out`` is its γ → 0 limit, which the trainer evaluates today."""
        L = net.n_layers
        return self.free_phase(net, x, threshold=self.tol * self.feedback_gain ** (L - 1))[0][-1]

    @staticmethod
    def hebbian(x, r_a, r_b, scale):
        """Per layer ``scale_l · (⟨r_l^a r_{l−1}^aᵀ⟩ − ⟨r_l^b r_{l−1}^bᵀ⟩)`` and the bias terms."""
        n = x.shape[0]
        ra, rb = [x, *r_a], [x, *r_b]
        return [(s * (ra[l + 1].T @ ra[l] - rb[l + 1].T @ rb[l]) / n,
                 s * (ra[l + 1] - rb[l + 1]).mean(axis=0)) for l, s in enumerate(scale)]

    def layer_scales(self, L):
        """Xie & Seung's layer-wise factors γ^{−(L−l)}, l = 1..L."""
        return [self.feedback_gain ** -(L - 1 - l) for l in range(L)]


@register("rule", "equilibrium_propagation")
class EquilibriumPropagation(_LayeredEnergy):
    """Equilibrium propagation: free and β-nudged relaxations of a layered Hopfield energy, Hebbian
    contrast (1/β)[r^β r^βᵀ − r⁰ r⁰ᵀ]."""

    params = {
        "beta": Field("float", 0.1, "β: nudging strength (units of the output pre-activation per "
                      "unit teaching signal)", lo=0, lo_open=True),
        "beta_sign": Field("str", "random", "sign of β: drawn per mini-batch (the paper), always "
                           "positive, or both (symmetric nudging, O(β²) bias)",
                           choices=("random", "positive", "symmetric")),
        "nudge": Field("str", "teaching_signal", "output force: −β·(teaching signal at the free "
                       "point), or −β·∂C/∂u_L at the current output (the paper's F = E + βC)",
                       choices=("teaching_signal", "cost")),
        **_RELAX_PARAMS,
    }

    def __init__(self, beta=0.1, beta_sign="random", nudge="teaching_signal", feedback_gain=0.01,
                 step_size=1.0, tol=1e-6, max_steps=200):
        super().__init__(feedback_gain, step_size, tol, max_steps)
        self.beta, self.beta_sign, self.nudge = float(beta), beta_sign, nudge
        self.stochastic = beta_sign == "random"

    def update(self, net, x, y, objective, rng):
        beta = self.beta
        if self.beta_sign == "random":
            beta = beta if rng.random() < 0.5 else -beta
        thr = self.tol * abs(beta) * self.feedback_gain ** (net.n_layers - 1)
        u0, s0, ok0 = self.free_phase(net, x, threshold=thr)
        r0 = self.rates(net, u0)
        scale = self.layer_scales(net.n_layers)
        if self.nudge == "teaching_signal":
            e = objective.teaching_signal(u0[-1], y, rng)
        else:
            e = None

        def nudged(bt):
            if e is not None:
                force = (lambda uL: -bt * e)
            else:
                force = (lambda uL: -bt * objective.gradient(uL, y))
            ub, sb, okb = self.relax(net, x, u0, force=force, threshold=thr)
            return self.rates(net, ub), sb, okb

        if self.beta_sign == "symmetric":
            (rp, sp, okp), (rm, sm, okm) = nudged(beta), nudged(-beta)
            self.last_steps, self.converged = (s0, sp, sm), ok0 and okp and okm
            return self.hebbian(x, rp, rm, [s / (2 * beta) for s in scale])
        rb, sb, okb = nudged(beta)
        self.last_steps, self.converged = (s0, sb), ok0 and okb
        return self.hebbian(x, rb, r0, [s / beta for s in scale])


@register("rule", "contrastive_hebbian")
class ContrastiveHebbian(_LayeredEnergy):
    """Contrastive Hebbian learning: free phase, then the output clamped to u⁰_L − e (the target
    for MSE); ΔW_l = γ^{−(L−l)}⟨r^c r^cᵀ − r⁰ r⁰ᵀ⟩ — equilibrium propagation's clamped limit."""

    params = dict(_RELAX_PARAMS)

    def update(self, net, x, y, objective, rng):
        thr = self.tol * self.feedback_gain ** (net.n_layers - 1)
        u0, s0, ok0 = self.free_phase(net, x, threshold=thr)
        r0 = self.rates(net, u0)
        e = objective.teaching_signal(u0[-1], y, rng)
        uc, sc, okc = self.relax(net, x, u0, clamp=u0[-1] - e, threshold=thr)
        self.last_steps, self.converged = (s0, sc), ok0 and okc
        return self.hebbian(x, self.rates(net, uc), r0, self.layer_scales(net.n_layers))
