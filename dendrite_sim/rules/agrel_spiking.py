"""AGREL's spiking face: a three-factor synapse rule, eligibility tag × global neuromodulator
(rule ``agrel_spiking``; Roelfsema & van Ooyen 2005, Neural Comput 17:2176; Pozzi, Bohté &
Roelfsema 2020, NeurIPS 33; the rate face is :mod:`dendrite_sim.rules.agrel`).

**The synapse (in the compiled loop).** Each synapse j → i keeps an eligibility tag e_ij, a
synapse variable, built from the coincidence of presynaptic and postsynaptic spikes and gated
by the attentional feedback that reaches the postsynaptic neuron's apical dendrite::

    de_ij/dt = −e_ij / τ_e + x_j(t) · s_i(t) · g_i(t) · S_i(t)
    x_j:  presynaptic trace,  x_j ← x_j e^{−dt/τ_pre} every step, + 1 at a spike of j
    r_i:  postsynaptic trace, r_i ← r_i e^{−dt/τ_r} every step, + 1 at a spike of i
    s_i = 1 − r̂_i / φ_max,  r̂_i = r_i (1 − e^{−dt/τ_r}) / dt         (``saturation``; else 1)
    g_i = V_A,i − θ                                                   (``apical_gate``; else 1)
    S_i(t) = Σ_k δ(t − t_i^k)   (the postsynaptic spike train)

integrated exactly over the δs: every step e ← e · e^{−dt/τ_e}, then at a postsynaptic spike
e += x_j s_i g_i, reading the traces before this step's increments (as STDP's ε). The weight does
not change in the loop.

**The modulator (between chunks, in Python).** At the end of a trial the reward-prediction
error δ is broadcast to every synapse and consumes the tags (:meth:`AGRELSpiking.deliver`)::

    w_ij ← clip(w_ij + η δ e_ij, w_min, w_max),   e_ij ← 0

δ is the rate face's modulator (:meth:`~dendrite_sim.rules.agrel.AGREL.modulator`), so the
engine's loops stay generic: the tag is a per-synapse variable of an ordinary synapse rule and
the modulator is applied to the numpy arrays that the compiled loop reads in place.

**Why this is AGREL.** For a Poisson neuron of rate λ_i = φ_max σ(C_i) (the ``guerguiev``
model) whose trace is stationary and independent of its current spike, E[S_i s_i] =
λ_i (1 − λ_i/φ_max) = φ_max σ′(C_i): the post factor is the derivative of the rate face's
non-linearity (AGREL's y_j (1 − y_j)). E[x_j] = τ_pre λ_j (presynaptic rate, the rate face's
h_j). In the feedback phase only the chosen output unit k fires (winner-take-all: a somatic drive
makes k fire at φ_max and silences the others), so the apical potential of hidden neuron i is
V_A,i ≈ Y_ik λ_k (the guerguiev apical PSP has unit area) — the attentional feedback
fb_i = B_ik of the rate face, B = Y (= Wᵀ with symmetric feedback). Hence for hidden synapses
(``apical_gate``, ``saturation``) E[e_ij] ∝ τ_pre λ_j · φ_max σ′(C_i) · B_ik: the rate face's tag
g_i h_j; for output synapses (no gate, no saturation: the chosen unit's post spikes are its
"feedback") E[e_kj] ∝ λ_j for the chosen unit and ≈ 0 for the silenced ones: onehot(k) h_jᵀ. So
E[δ e] points along the rate face's update, whose expectation over the chosen action is the
negative cross-entropy gradient (tests/test_agrel_spiking.py measures the cosine).

**A trial** (:func:`trial`, on a :class:`~dendrite_sim.engine.circuit.SpikingCircuit` of
``guerguiev`` neurons, input → hidden → K outputs, apical feedback from the outputs):

1. stimulus phase: the input is shown, the outputs respond; a = C̄ (the outputs' mean somatic
   potential over the phase's window) is the rate face's pre-activation and the action is drawn
   from its policy (AGREL: k ~ softmax(a));
2. the tags are cleared (the attentional feedback opens the tags);
3. feedback phase: the stimulus stays on; winner-take-all: a somatic drive +I_wta on the chosen
   output and −I_wta on the others (``wta_drive``, default 20: C → ±I/(g_L + g_B) ≈ ±29, rates
   φ_max and ≈ 0) so that only k fires and only k's feedback reaches the apical dendrites; the
   tags grow;
4. reward r = [k = correct action], δ = (r − p_k)/p_k, and :meth:`AGRELSpiking.deliver` on every
   plastic pathway; symmetric feedback pathways follow the forward weights.

The rule needs a postsynaptic model with an apical potential ``v_apical`` and a maximal rate
``phi_max`` (``guerguiev``); on any other population ``check`` refuses it at the projection's
``plasticity`` key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import exp, expm1, select
from dendrite_sim.core.registry import register
from dendrite_sim.synapses.plasticity import BoundedWeights, SynapseRule


class AGRELSpikingParams(NamedTuple):
    eta: float = 1.0            # weight change per unit δ · tag
    tau_pre: float = 20.0       # ms, presynaptic trace x_j
    tau_rate: float = 50.0      # ms, postsynaptic trace r_i (its rate estimate r̂_i)
    tau_e: float = 1000.0       # ms, eligibility tag decay
    theta: float = 0.0          # apical potential of no feedback (model units)
    apical_gate: bool = True    # gate the tag by V_A − θ (hidden synapses)
    saturation: bool = True     # post factor 1 − r̂/φ_max (AGREL's y (1 − y))
    w_min: float = -1.0e9
    w_max: float = 1.0e9


@register("rule", "agrel_spiking")
class AGRELSpiking(BoundedWeights, SynapseRule):
    """AGREL's spiking face: tag e_ij from pre × post × apical feedback, Δw = η δ e at the reward (module docstring)."""

    Params = AGRELSpikingParams
    units = {"tau_pre": "ms", "tau_rate": "ms", "tau_e": "ms", "theta": "mV"}
    bounds = {"eta": ">= 0", "tau_e": "> 0"}
    pre_traces = {"x_pre": "tau_pre"}
    post_traces = {"r_post": "tau_rate"}
    synapse_vars = {"tag": 0.0}
    post_params = ("phi_max",)
    post_model = "guerguiev"

    @staticmethod
    def per_step(tag, x_pre, r_post, post_spiked, v_apical, post_p, p, dt):
        """e · e^{−dt/τ_e} + [post spiked] x_j s_i g_i (module docstring)."""
        rate = r_post * (-expm1(-dt / p.tau_rate)) / dt
        sat = select(p.saturation, 1.0 - rate / post_p.phi_max, 1.0)
        gate = select(p.apical_gate, v_apical - p.theta, 1.0)
        return tag * exp(-dt / p.tau_e) + select(post_spiked, x_pre * sat * gate, 0.0)

    # ------------------------------------------------------------------ the modulator
    @staticmethod
    def tags(proj) -> np.ndarray:
        """The projection's eligibility tags (a view, CSR order)."""
        return _state(proj).synapse_vars["tag"]

    @staticmethod
    def clear(proj) -> None:
        """e ← 0 on every synapse of the projection."""
        _state(proj).synapse_vars["tag"][:] = 0.0

    @staticmethod
    def deliver(proj, delta: float) -> np.ndarray:
        """The global modulator δ reaches the projection: w ← clip(w + η δ e, w_min, w_max),
        e ← 0. Returns the weight change (CSR order)."""
        ps = _state(proj)
        p, tag, w = ps.params, ps.synapse_vars["tag"], proj.conn.weights
        new = np.clip(w + p.eta * float(delta) * tag, p.w_min, p.w_max)
        dw = new - w
        w[:] = new
        tag[:] = 0.0
        return dw


def _state(proj):
    ps = proj.plasticity
    if ps is None or not issubclass(ps.rule, AGRELSpiking):
        raise ValueError(f"projection {proj.name!r} has no agrel_spiking rule")
    return ps


# --------------------------------------------------------------------------- a trial on a circuit
#: default parameters of the hidden (apical-gated, saturating) and output (plain Hebbian) pathways
HIDDEN_DEFAULTS = {"apical_gate": True, "saturation": True}
OUTPUT_DEFAULTS = {"apical_gate": False, "saturation": False}


#: somatic drive (model units per ms) of the winner-take-all in the feedback phase: +I on the chosen
#: output, −I on the others (C → ±I/(g_L + g_B) without input: rate φ_max and 0)
WTA_DRIVE = 20.0


def attach(sc, hidden: dict | None = None, output: dict | None = None,
           keys: tuple[str, str] = ("plasticity.hidden", "plasticity.output")) -> list[str]:
    """Bind ``agrel_spiking`` to every feedforward pathway of the spiking circuit ``sc``: the
    output pathway with ``output`` (over :data:`OUTPUT_DEFAULTS`), the others with ``hidden``
    (over :data:`HIDDEN_DEFAULTS`); a bad parameter is a :class:`ScenarioError` at ``keys``
    (hidden, output). Returns the plastic pathways' names."""
    ff = sc.circuit.feedforward()
    names = []
    for q in ff:
        last = q is ff[-1]
        table = {**OUTPUT_DEFAULTS, **(output or {})} if last else {**HIDDEN_DEFAULTS, **(hidden or {})}
        sc.net.attach_plasticity(sc.proj[q.name], {"rule": "agrel_spiking", **table}, keys[int(last)])
        names.append(q.name)
    return names


def pathway_params(table: dict | None, output: bool, key: str):
    """The parameters :func:`attach` gives a pathway (validated; :class:`ScenarioError` at ``key``)."""
    return AGRELSpiking.make_params({**(OUTPUT_DEFAULTS if output else HIDDEN_DEFAULTS), **(table or {})}, key)


@dataclass
class Trial:
    """One trial of :func:`trial`."""

    stimulus: object        # PhaseRecord of the stimulus phase
    feedback: object        # PhaseRecord of the feedback phase
    records: tuple          # the two ExampleRecords (whole-phase traces)
    a_out: np.ndarray       # outputs' mean somatic potential (the policy's pre-activation)
    pi: np.ndarray          # action probabilities
    action: int
    reward: float
    delta: float
    tags: dict              # pathway → dense (n_post, n_pre) tags at the end of the feedback phase
    dw: dict                # pathway → dense weight change (zeros when not learning)


def trial(sc, x, correct: int, policy, rng: np.random.Generator, stimulus_phase, feedback_phase,
          learn: bool = True, wta_drive: float = WTA_DRIVE) -> Trial:
    """Present ``x`` in a stimulus phase, choose an action with ``policy`` (an
    :class:`~dendrite_sim.rules.agrel.AGREL`: its policy and modulator), show the chosen unit's
    feedback in the feedback phase and, with ``learn``, deliver δ to the plastic pathways
    (module docstring). Without ``learn`` the tags are formed and discarded."""
    from dendrite_sim.rules.agrel import sample_actions

    out = sc.circuit.output.name
    full_s = sc.present(x, None, (stimulus_phase,))
    rec_s = full_s[stimulus_phase.name]
    a = rec_s.mean(out, "v_soma")[None, :]
    pi = policy.policy(a)
    k = int(sample_actions(pi, rng)[0])
    y = np.array([int(correct)])
    delta = float(policy.modulator(a, pi, np.array([k]), y, None, rng)[0])
    plastic = [q.name for q in sc.circuit.feedforward()
               if getattr(sc.proj[q.name].plasticity, "rule", None) is AGRELSpiking]
    for q in plastic:
        AGRELSpiking.clear(sc.proj[q])
    soma = sc.net[out].bias["soma"]
    soma[:] = -wta_drive
    soma[k] = wta_drive
    full_f = sc.present(x, None, (feedback_phase,))
    rec_f = full_f[feedback_phase.name]
    soma[:] = 0.0
    tags, dw = {}, {}
    for q in plastic:
        post, pre = sc._order[q]
        tags[q], dw[q] = np.zeros_like(sc.weights(q)), np.zeros_like(sc.weights(q))
        tags[q][post, pre] = AGRELSpiking.tags(sc.proj[q])
        if learn:
            dw[q][post, pre] = AGRELSpiking.deliver(sc.proj[q], delta)
        else:
            AGRELSpiking.clear(sc.proj[q])
    if learn:
        sc.sync_feedback()
    return Trial(rec_s, rec_f, (full_s, full_f), a[0], pi[0], k, float(k == correct), delta, tags, dw)


def expected_tags(sc, x_rate: np.ndarray, rec_s, pi: np.ndarray, correct: int, policy) -> dict:
    """The rate face's expected update (over the chosen action) at the spiking circuit's
    stimulus-phase averages, per plastic pathway (dense): hidden
    Σ_k π_k δ_k (σ′(C̄) ⊙ Y[:, k]) x_rateᵀ and output Σ_k π_k δ_k onehot(k) λ̄_hiddenᵀ — the
    reference the expected spiking update is compared with (λ̄: the hidden rates in the window)."""
    out = sc.circuit.output.name
    a = rec_s.mean(out, "v_soma")[None, :]
    K = a.shape[1]
    ff = sc.circuit.feedforward()
    fb = next(q for q in sc.circuit.feedback() if q.pre == out)
    Y = sc.weights(fb.name)                                  # (n_hidden, K)
    hid = ff[0].post
    c = rec_s.mean(hid, "v_soma")
    s = 1.0 / (1.0 + np.exp(-c))
    d = s * (1.0 - s)
    e = np.zeros(K)
    for k in range(K):
        dk = float(policy.modulator(a, pi[None, :], np.array([k]), np.array([int(correct)]), None, None)[0])
        e[k] = pi[k] * dk
    g = d * (Y @ e)
    return {ff[0].name: np.outer(g, x_rate), ff[-1].name: np.outer(e, rec_s.rate(hid))}
