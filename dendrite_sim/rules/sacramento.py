"""Dendritic cortical microcircuit learning (Sacramento, Ponte Costa, Bengio & Senn 2018 NeurIPS,
"Dendritic cortical microcircuits approximate the backpropagation algorithm").

The circuit and its steady state are in :mod:`dendrite_sim.engine.microcircuit` (basal
v_B,k = W^PP_{k,k−1} r_{k−1} + b_k, apical v_A,k = W^PP_{k,k+1} r_{k+1} + W^PI_k r^I_k,
interneuron dendrite v^I_k = W^IP_k r_k + b^IP_k; conductances g_lk, g_B, g_A, g_D, g_som).
Each update settles the batched dynamics twice: free (no target), which gives the network's answer
u_N, then nudged, the output pulled toward the target u^trgt with conductance g_som (warm-started
from the free state). The forward and top-down rules are evaluated at the nudged steady state,
the interneuron rules at the free one (``interneuron_phase = "free"``, the forward phase of the
paper's simulations, in which the interneurons learn to predict; ``"nudged"`` evaluates them with the
target shown, where W^PI also learns to cancel the error itself), all averaged over the batch
(φ of the output layer is the architecture's ``output_nonlinearity`` where set):

* forward, pyramid-to-pyramid (returned by :meth:`update`, applied by the trainer as W += lr·ΔW):
  ΔW^PP_{k,k−1} = η_k [φ(u_k) − φ(v̂_B,k)] r_{k−1}ᵀ,  Δb_k = η_k [φ(u_k) − φ(v̂_B,k)],
  v̂_B,k = g_B/(g_lk + g_B + g_A) v_B,k (hidden), g_B/(g_lk + g_B) v_B,N (output);
* pyramid-to-interneuron: ΔW^IP_k = η_IP [φ(u^I_k) − φ(v̂^I_k)] r_kᵀ, Δb^IP_k = η_IP [φ(u^I_k) − φ(v̂^I_k)],
  v̂^I_k = g_D/(g_lk + g_D) v^I_k;
* interneuron-to-pyramid: ΔW^PI_k = η_PI (v_rest − v_A,k) r^I_kᵀ with v_rest = 0;
* top-down (optional, architecture ``feedback = "learned"``):
  ΔW^PP_{k,k+1} = η_TD [φ(u_k) − φ(v̂_TD,k)] r_{k+1}ᵀ, v̂_TD,k = W^PP_{k,k+1} r_{k+1}.

The interneuron and top-down changes are applied in :meth:`after_step` as W += lr·ΔW, like the
Kolen–Pollack step of ``feedback_alignment``; every η is a multiplier of the trainer's learning rate.

**Target.** The output is nudged toward u^trgt = u_N − e, e the objective's teaching signal at the
free output u_N: for the MSE objective u^trgt is the target itself (one-hot for classes); for
cross-entropy it is one gradient step from the answer.

**Rate approximation.** The paper integrates the continuous dynamics with plasticity always on;
here one learning step per example batch evaluates the rules at the steady state of the dynamics
(the standard rate approximation of the paper's own analysis: in the self-predicting state and for
weak nudging, the hidden update approximates backprop with the top-down weights as feedback). The
steady state is found by damped Gauss–Seidel sweeps to a tolerance (see
:func:`dendrite_sim.engine.microcircuit.settle`).

**Spiking face** (:meth:`DendriticMicrocircuit.example_update`), on a
:class:`~dendrite_sim.engine.circuit.SpikingCircuit` of rate-function neurons with basal,
apical and somatic compartments (``guerguiev``: B, A, C, rate φ(C) = φ_max σ(C), Poisson
spikes) built from the ``microcircuit`` architecture: interneurons nudged toward their partner
pyramids' somatic potentials, the output toward the target potential by the teacher. Each
example is shown in a forward phase (input only) and a target phase (teacher on), each
``phase_duration`` ms with the first ``settle`` ms not averaged (bars: window means; PSP̄ the
mean presynaptic PSP, the PSP kernel of the postsynaptic model), and the rules are the rate
rules with the potentials and rates of the window:

* forward, in the target phase: ΔW^PP = η_k [φ(C̄) − φ(k_B B̄)] PSP̄_preᵀ, Δb = η_k [φ(C̄) − φ(k_B B̄)],
  k_B = g_B/(g_L + g_B + g_A) (the basal prediction of the soma; with no apical input, as on
  the output, it is exact at the fixed point C = k_B B, so a nudged output ends at the target
  potential);
* interneurons, in the forward phase (``interneuron_phase = "free"``) or the target phase:
  ΔW^IP = η_IP [φ(C̄^I) − φ(k_B B̄^I)] PSP̄ᵀ of the pyramids below, Δb^IP likewise,
  ΔW^PI = η_PI (0 − Ā) PSP̄_Iᵀ (Ā: apical potential of the pyramids);
* top-down (``feedback = "learned"``), in the target phase: ΔW^td = η_TD [φ(C̄) − φ(W^td PSP̄_out)] PSP̄_outᵀ.

With ``interneurons = "ideal"`` the interneuron weights are reset to the self-predicting state
of the current forward weights after every example (:meth:`SpikingCircuit.set_self_predicting`).
:meth:`example_gradient` is backprop through the rate network that shares the weights, at the
same averages (E^l = (W^{l+1})ᵀ E^{l+1} · k_B φ′(C̄^l), E^N the output's error), so ``train``
reports the angle of the hidden update per layer.

**Plain networks.** On a plain :class:`~dendrite_sim.engine.rate.RateNetwork` (e.g. a ``layered``
network in the ``rule_bias_variance`` map) the rule reads the network as a microcircuit with the
paper's conductances whose free steady state is that network's forward pass: W^PP_{k,k−1} =
W_k / c_k, b^PP_k = b_k / c_k with c_k the basal gain g_B/(g_lk+g_B+g_A) (output g_B/(g_lk+g_B)), so
u_k = a_k; the forward updates are returned as c_k ΔW^PP (changes of the network's W). :meth:`setup`
creates the rule's own interneuron weights in the self-predicting state, so the map measures the
rule at its working point. The output pyramids' rates are then linear, r_N = u_N, like the plain
network's output a_L (so do the interneurons that mimic them); the hidden error is a top-down
(B) feedback-alignment-like error.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from dendrite_sim.core.circuit import Phase
from dendrite_sim.core.interfaces import LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import microcircuit as mc


def forward_updates(c, g: mc.Conductances, s: mc.CircuitState):
    """Per layer ``(ΔW^PP, Δb)`` = batch means of [φ(u) − φ(v̂_B)] r_preᵀ (rate η = 1)."""
    N = len(c.W)
    n = len(s.r[0])
    out = []
    for l in range(N):
        vhat = g.basal_gain(l, N) * s.v_B[l]
        f = mc.phi_of(c, l)
        err = f(s.u[l]) - f(vhat)
        out.append((err.T @ s.r[l] / n, err.mean(axis=0)))
    return out


def interneuron_updates(c, g: mc.Conductances, s: mc.CircuitState):
    """Per hidden layer ``(ΔW^IP, Δb^IP, ΔW^PI)`` (rates η = 1, v_rest = 0)."""
    n = len(s.r[0])
    out = []
    for l in range(len(s.u_I)):
        f = mc.phi_of(c, l + 1)
        err = f(s.u_I[l]) - f(g.inter_gain * s.v_I[l])
        dIP = err.T @ s.r[l + 1] / n
        dPI = (0.0 - s.v_A[l]).T @ s.r_I[l] / n
        out.append((dIP, err.mean(axis=0), dPI))
    return out


def topdown_updates(c, s: mc.CircuitState):
    """Per hidden layer ΔW^PP_{k,k+1} = [φ(u_k) − φ(W^PP_{k,k+1} r_{k+1})] r_{k+1}ᵀ (η = 1)."""
    n = len(s.r[0])
    out = []
    for l in range(len(s.u_I)):
        f = mc.phi_of(c, l)
        err = f(s.u[l]) - f(s.r[l + 2] @ c.B[l].T)
        out.append(err.T @ s.r[l + 2] / n)
    return out


def _identity(a):
    return a


@register("rule", "dendritic_microcircuit")
class DendriticMicrocircuit(LearningRule):
    """Sacramento et al. 2018 microcircuit plasticity at the nudged steady state (rate face)."""

    params = {
        "eta_forward": Field("float_list", [], "per-layer multipliers of the learning rate for the "
                             "forward weights W^PP_{k,k-1}, input side first (empty: all 1)", lo=0),
        "eta_ip": Field("float", 0.0, "multiplier of the learning rate for pyramid-to-interneuron "
                        "weights W^IP (0: fixed)", lo=0),
        "eta_pi": Field("float", 0.0, "multiplier of the learning rate for interneuron-to-pyramid "
                        "weights W^PI (0: fixed)", lo=0),
        "eta_topdown": Field("float", 0.0, "multiplier of the learning rate for the top-down weights "
                             "W^PP_{k,k+1} (architecture feedback = 'learned' only)", lo=0),
        "learn_hidden": Field("bool", True, "train the hidden layers' forward weights (false: the "
                              "shallow baseline, only the output layer learns)"),
        "interneuron_phase": Field("str", "free", "steady state at which W^IP and W^PI learn: 'free' "
                                   "(no target, the forward phase) or 'nudged' (with the target, like "
                                   "the forward weights)", choices=("free", "nudged")),
        "interneurons": Field("str", "learned", "'learned': interneuron weights follow their rules "
                              "(eta_ip, eta_pi); 'ideal': reset to the self-predicting state before "
                              "every update", choices=("learned", "ideal")),
        "phase_duration": Field("float", 50.0, "spiking substrate: length of the forward and of the "
                                "target phase (ms)", lo=0, lo_open=True),
        "settle": Field("float", 20.0, "spiking substrate: ms at the start of each phase not "
                        "averaged (ms)", lo=0),
    }

    def __init__(self, eta_forward=(), eta_ip=0.0, eta_pi=0.0, eta_topdown=0.0, learn_hidden=True,
                 interneuron_phase="free", interneurons="learned", phase_duration=50.0, settle=20.0):
        if settle >= phase_duration:
            from dendrite_sim.core.errors import ScenarioError

            raise ScenarioError("rule.settle", f"expected settle < phase_duration = {phase_duration:g} ms, "
                                f"got {settle:g}")
        self.phase_duration, self.settle = phase_duration, settle
        self.eta_forward = list(eta_forward)
        self.eta_ip, self.eta_pi, self.eta_topdown = eta_ip, eta_pi, eta_topdown
        self.learn_hidden, self.interneurons = learn_hidden, interneurons
        self.interneuron_phase = interneuron_phase
        self.pending = None
        self._plain = None  # (net, W_IP, b_IP, W_PI) for a plain RateNetwork

    # ------------------------------------------------------------------ the circuit seen
    def setup(self, net, rng):
        self.pending = None
        if isinstance(net, mc.MicrocircuitNetwork):
            self._plain = None
            return
        g = mc.Conductances()
        W, b = self._plain_basal(net, g)
        self._plain = (net, *mc.self_predicting_weights(W, b, net.B, g))

    @staticmethod
    def _plain_basal(net, g):
        L = net.n_layers
        return ([net.W[l] / g.basal_gain(l, L) for l in range(L)],
                [net.b[l] / g.basal_gain(l, L) for l in range(L)])

    def circuit(self, net):
        """``(view, conductances, settle keyword arguments)`` of the circuit that ``net`` is."""
        if isinstance(net, mc.MicrocircuitNetwork):
            if self.interneurons == "ideal":
                net.W_IP, net.b_IP, net.W_PI = mc.self_predicting_weights(net.W, net.b, net.B, net.g)
            return net, net.g, dict(tol=net.tol, max_iter=net.max_iter, damping=net.damping)
        if self._plain is None or self._plain[0] is not net:
            self.setup(net, None)
        g = mc.Conductances()
        W, b = self._plain_basal(net, g)
        if self.interneurons == "ideal":
            self._plain = (net, *mc.self_predicting_weights(W, b, net.B, g))
        _, W_IP, b_IP, W_PI = self._plain
        return mc.CircuitView(W, b, net.B, W_IP, b_IP, W_PI, net.f, net.df, f_out=_identity), g, {}

    def steady_states(self, net, x, y, objective, rng):
        """The free and the nudged steady state for a batch, and the circuit."""
        c, g, kw = self.circuit(net)
        free = mc.settle(c, g, x, **kw)
        u_out = free.u[-1]
        target = u_out - objective.teaching_signal(u_out, y, rng)
        nudged = mc.settle(c, g, x, target, start=free, **kw)
        return c, g, free, nudged

    def check_architecture(self, architecture):
        hidden = getattr(architecture, "hidden", None)
        if self.eta_forward and hidden is not None and len(self.eta_forward) != len(hidden) + 1:
            from dendrite_sim.core.errors import ScenarioError

            raise ScenarioError("rule.eta_forward", f"expected {len(hidden) + 1} entries (one per layer of "
                                f"the architecture's {len(hidden)} hidden + output), got {len(self.eta_forward)}")

    # ------------------------------------------------------------------ the rate face
    def update(self, net, x, y, objective, rng):
        c, g, free, s = self.steady_states(net, x, y, objective, rng)
        L = len(c.W)
        eta = self.eta_forward or [1.0] * L
        if len(eta) != L:
            raise ValueError(f"rule.eta_forward: expected {L} entries (one per layer), got {len(eta)}")
        ups = []
        for l, (dW, db) in enumerate(forward_updates(c, g, s)):
            k = eta[l] * (0.0 if (l < L - 1 and not self.learn_hidden) else 1.0)
            if not isinstance(net, mc.MicrocircuitNetwork):
                k *= g.basal_gain(l, L)  # changes of the plain network's W = c_k W^PP
            ups.append((k * dW, k * db))
        self.pending = (net, c, g, free if self.interneuron_phase == "free" else s, s)
        return ups

    def after_step(self, net, lr):
        """Apply the interneuron (η_IP, η_PI) and top-down (η_TD) changes of the last update."""
        if self.pending is None or self.pending[0] is not net:
            return
        _, c, g, s_inter, s = self.pending
        self.pending = None
        if self.interneurons == "learned" and (self.eta_ip > 0 or self.eta_pi > 0):
            for l, (dIP, dbIP, dPI) in enumerate(interneuron_updates(c, g, s_inter)):
                c.W_IP[l] += lr * self.eta_ip * dIP
                c.b_IP[l] += lr * self.eta_ip * dbIP
                c.W_PI[l] += lr * self.eta_pi * dPI
        if self.eta_topdown > 0 and net.feedback == "learned":
            for l, dB in enumerate(topdown_updates(c, s)):
                net.B[l] += lr * self.eta_topdown * dB

    def interneuron_step(self, net, x, lr):
        """One step of interneuron plasticity alone, at the free steady state (no target); returns
        that state (used by the ``self_predicting_state`` experiment)."""
        c, g, kw = self.circuit(net)
        s = mc.settle(c, g, x, **kw)
        for l, (dIP, dbIP, dPI) in enumerate(interneuron_updates(c, g, s)):
            c.W_IP[l] += lr * self.eta_ip * dIP
            c.b_IP[l] += lr * self.eta_ip * dbIP
            c.W_PI[l] += lr * self.eta_pi * dPI
        return s

    # ------------------------------------------------------------------ the spiking face
    def phases(self):
        return (Phase("forward", self.phase_duration, self.settle),
                Phase("target", self.phase_duration, self.settle, target=True))

    @staticmethod
    def _rate(p, v):
        return p.phi_max * expit(v)

    @staticmethod
    def _gain(p):
        return p.g_B / (p.g_L + p.g_B + p.g_A)

    def _output_errors(self, sc, t):
        """Per feedforward pathway: the target-phase error φ(C̄) − φ(k_B B̄) and PSP̄_pre."""
        res = {}
        for q in sc.circuit.feedforward():
            p = sc.params[q.post]
            err = self._rate(p, t.mean(q.post, "v_soma")) - self._rate(p, self._gain(p) * t.mean(q.post, "v_basal"))
            res[q.name] = (err, t.psp(q.pre, p.tau_L, p.tau_s, sc.dt))
        return res

    def example_update(self, sc, rec):
        f, t = rec["forward"], rec["target"]
        ff = sc.circuit.feedforward()
        L = len(ff)
        eta = self.eta_forward or [1.0] * L
        ups = {}
        for l, (q, (err, psp)) in enumerate(zip(ff, self._output_errors(sc, t).values())):
            k = eta[l] * (0.0 if (l < L - 1 and not self.learn_hidden) else 1.0)
            ups[q.name] = (k * np.outer(err, psp), k * err)
        s_inter = f if self.interneuron_phase == "free" else t
        for q in sc.circuit.pathways:
            if q.kind == "nudging" and self.interneurons == "learned":
                inter = q.post
                pyr = next(w.pre for w in sc.circuit.pathways if w.post == inter and w.kind == "lateral")
                l = inter.removeprefix("inter")
                p, pp = sc.params[inter], sc.params[pyr]
                err = (self._rate(p, s_inter.mean(inter, "v_soma"))
                       - self._rate(p, self._gain(p) * s_inter.mean(inter, "v_basal")))
                ups[f"ip{l}"] = (self.eta_ip * np.outer(err, s_inter.psp(pyr, p.tau_L, p.tau_s, sc.dt)),
                                 self.eta_ip * err)
                A = s_inter.mean(pyr, "v_apical")
                ups[f"pi{l}"] = (self.eta_pi * np.outer(-A, s_inter.psp(inter, pp.tau_L, pp.tau_s, sc.dt)), None)
            if q.kind == "feedback" and q.feedback == "learned" and self.eta_topdown > 0:
                p = sc.params[q.post]
                psp = t.psp(q.pre, p.tau_L, p.tau_s, sc.dt)
                err = self._rate(p, t.mean(q.post, "v_soma")) - self._rate(p, sc.weights(q.name) @ psp)
                ups[q.name] = (self.eta_topdown * np.outer(err, psp), None)
        if self.interneurons == "ideal":
            sc.set_self_predicting()
        return ups

    def example_gradient(self, sc, rec):
        """Backprop through the rate network with the circuit's weights, at the target phase's
        averages: the output's error propagated by (W^{l+1})ᵀ and k_B φ′(C̄^l)."""
        t = rec["target"]
        ff = sc.circuit.feedforward()
        errs = self._output_errors(sc, t)
        E = {ff[-1].name: errs[ff[-1].name][0]}
        for lo, hi in zip(ff[-2::-1], ff[:0:-1]):
            p = sc.params[lo.post]
            C = t.mean(lo.post, "v_soma")
            s = expit(C)
            E[lo.name] = (sc.weights(hi.name).T @ E[hi.name]) * self._gain(p) * p.phi_max * s * (1.0 - s)
        return {name: (np.outer(e, errs[name][1]), e) for name, e in E.items()}


__all__ = ["DendriticMicrocircuit", "forward_updates", "interneuron_updates", "topdown_updates"
           ]
