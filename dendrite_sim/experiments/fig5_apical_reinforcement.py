"""Experiment ``apical_reinforcement``: Richards et al. (2019) Fig 5 — show two stimuli, reinforce
one, and measure how the apical activity of neurons tuned to each stimulus changes with learning.

Prediction (Richards et al. 2019, Fig 5; docs/apical_reinforcement.md): in dendritic-error models
apical activity rises in neurons tuned to the reinforced stimulus and falls in neurons tuned to
the other; in attention-gated models the units that feed the chosen output are tagged and the
reward-prediction error sets the sign of their plasticity.

**Stimuli.** Two oriented stimuli (``stimulus.orientations``, default 45° and 135°; the first,
``stimulus.reinforced = 0``, is reinforced) seen by ``n_inputs`` orientation-tuned input neurons
with preferred orientations θ_i evenly spaced over 180°:
x_i(θ) = exp(κ [cos 2(θ − θ_i) − 1]) ∈ (0, 1], θ jittered per trial by U(−jitter, jitter).

**Models.** Every rule listed under ``[[rules]]`` is run on the same stimuli and protocol:

* a rule with a per-example spiking face (``segregated_dendrites``, Guerguiev et al. 2017) on
  the **spiking** substrate: a 1-hidden-layer circuit (``n_inputs`` → ``model.hidden``
  two-compartment-plus-soma ``guerguiev`` pyramids → one output "reward" neuron) with apical
  feedback broadcast from the output (``model.feedback``: ``symmetric`` or fixed ``random``).
  A trial is the rule's phases: a forward (stimulus) phase, then a target (reward) phase in
  which the teacher nudges the output toward the reward, y = 1 after the reinforced stimulus and
  y = 0 after the other; then ``protocol.grey`` ms without input. The output bias is set once,
  before the first session, so that the naive output sits at φ_max/2 on average over the two
  stimuli (a naive animal's reward expectation of one half).
* a rule with only a rate face (``agrel``, Roelfsema & van Ooyen 2005) on the **rate**
  substrate: a ``n_inputs`` → ``model.hidden`` (sigmoid) → 2 network whose two actions are
  *go* and *no-go*; the correct action is go for the reinforced stimulus and no-go for the
  other, and the chosen correct action is rewarded (AGREL's go/no-go form: a correct rejection is
  rewarded too). The apical signal of hidden unit j on a trial is the attentional feedback of
  the chosen output unit k, fb_j = B_jk (B = Wᵀ for symmetric feedback), and its tag the gated
  feedback fb_j f′(a_j). Imaged as neurons (:meth:`RateModel.imaging_truth`): Poisson spikes at
  h_j · ``analysis.rate_peak`` in a stimulus and a feedback window (``model.agrel_phase_duration``
  each) and an apical plateau over the feedback window where fb_j > ``analysis.rate_plateau_threshold``.
* AGREL's spiking face (``agrel_spiking``, :mod:`dendrite_sim.rules.agrel_spiking`) on the
  **spiking** substrate: ``n_inputs`` → ``model.hidden`` ``guerguiev`` pyramids → 2 output
  neurons (go, no-go), apical feedback from the outputs (``model.feedback``), the rule on both
  feedforward pathways (``model.agrel_hidden``: tag gated by the apical potential, post factor
  1 − r̂/φ_max; ``model.agrel_output``: the chosen unit's plain Hebbian tag). A trial is a
  stimulus phase (action k ~ softmax of the outputs' mean somatic potentials, after the same
  bias calibration as the dendritic model: naive mean potential 0 over the two stimuli) and a
  feedback phase (``model.agrel_wta_drive``: only k fires and feeds back), then δ = (r − p_k)/p_k
  reaches the tags; in sessions the tags are discarded (weights frozen). Rewards as for the rate
  model.

**Protocol** (per seed, ``protocol.n_seeds`` seeds from named streams): a *before* session of
``protocol.session_trials`` trials per stimulus (alternating, weights frozen), ``protocol.training_trials``
learning trials (stimulus drawn at random), an *after* session like the first.

**Measures** per neuron and session trial (dendritic spiking model): mean apical potential v_apical over
the stimulus (forward) window and over the reward (target) window; the plateau potential
α = σ(Ā) (Guerguiev et al.'s plateau, a probability-like quantity in (0, 1)); and the synthetic
ΔF/F of the neuron's apical ROIs through the imaging forward model
(:func:`dendrite_sim.imaging.simulate_session`): ground-truth spikes (Poisson, no bursts: the
``guerguiev`` model has no BAC firing, so no spike is flagged as a burst) and dendritic plateaus
where v_apical > ``analysis.plateau_threshold`` for ≥ ``analysis.plateau_min_duration``; the
response to a trial is the mean ΔF/F in [onset, onset + ``analysis.response_window``) minus the
mean over ``analysis.baseline_window`` before it (:func:`~dendrite_sim.analysis.imaging_responses.frame_responses`).
Each neuron's preferred stimulus is the one with the larger mean somatic spike rate in the
before session (``analysis.tuning_from = "before"``) or the after session. Per group (tuned to the
reinforced / to the other stimulus) the change after − before of each neuron's mean over the
selected trials (``analysis.trials``: ``reinforced`` — trials of the reinforced stimulus —,
``preferred``, ``other``, ``all``) is summarised by :func:`dendrite_sim.analysis.apical_change.group_change`
(mean, bootstrap 95 % CI over the neurons of all seeds, sign-flip p of zero change, permutation
p of the group difference). The spiking AGREL model records v_apical over the stimulus and the
feedback window, the plateau σ(Ā) of the feedback window and ΔF/F alike; the rate model the
feedback, the tag and ΔF/F. Hidden neurons' preferred stimulus: the larger mean rate (spiking:
stimulus window; rate: h) in the before session.

metrics.json keys (stable)::

    models.<rule>.{substrate, n_neurons, n_seeds,
        output.{before, after}.{reinforced, other}      (output rate Hz / P(go))
        measures.<measure>.<selection>.{reinforced, other}.{n, mean_before, mean_after,
            mean_change, ci_low, ci_high, p_zero_change}, .difference, .p_difference}
        per_seed.<measure>.{reinforced, other}           (mean change per seed)
    primary.{trials, tuning_from}
    files.{sessions[], nwb[], npz}

(measures: dendritic spiking ``v_apical_stimulus``, ``v_apical_reward``, ``plateau_stimulus``,
``dff_apical``; spiking AGREL ``v_apical_stimulus``, ``v_apical_feedback``, ``plateau_feedback``,
``dff_apical``; rate AGREL ``apical_feedback``, ``tag``, ``dff_apical``; output: rate Hz of the
dendritic model, P(go) of the AGRELs; selections: ``reinforced``, ``preferred``,
``other``, ``all``; the statistics are computed with tuning from ``analysis.tuning_from``.)

Files: ``apical_change.png`` (per-group change with 95 % CIs, per model and measure, for the
primary trial selection; before/after distributions), ``session-<rule>-{before,after}`` imaging
folders and ``.nwb`` files of the first seed of every model (trials table: stimulus,
orientation, reinforced, reward — for the AGRELs whether the sampled choice was rewarded),
``apical_change.npz`` (per-neuron before/after means, groups, seed of every model and measure).
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np

from dendrite_sim.analysis.apical_change import SELECTIONS, group_change, preferred_stimulus, trial_mean
from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment, LearningRule
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.backends import BACKEND_NAMES
from dendrite_sim.imaging.config import IMAGING_SCHEMA, ImagingParams

STIMULUS_SCHEMA = {
    "orientations": Field("float_list", [45.0, 135.0], "the two stimulus orientations (degrees)",
                          min_len=2),
    "reinforced": Field("int", 0, "index of the reinforced stimulus in orientations", lo=0, hi=1),
    "n_inputs": Field("int", 40, "orientation-tuned input neurons", lo=2),
    "kappa": Field("float", 3.0, "input tuning concentration κ", lo=0, lo_open=True),
    "jitter": Field("float", 5.0, "half-width of the per-trial orientation jitter (degrees)", lo=0),
}

PROTOCOL_SCHEMA = {
    "session_trials": Field("int", 20, "trials per stimulus in each imaging session", lo=2),
    "training_trials": Field("int", 300, "learning trials between the sessions", lo=0),
    "n_seeds": Field("int", 3, "independent circuits (seeds)", lo=1),
    "grey": Field("quantity", "1000 ms", "inter-trial interval without input (spiking sessions)",
                  dimension="time", lo=0),
}

MODEL_SCHEMA = {
    "hidden": Field("int", 100, "hidden pyramidal neurons", lo=2),
    "feedback": Field("str", "symmetric", "feedback onto the apical dendrites: the transpose of the "
                      "output weights, or fixed random", choices=("symmetric", "random")),
    "learning_rate": Field("float", 0.3, "spiking model: W += learning_rate · ΔW", lo=0, lo_open=True),
    "rate_learning_rate": Field("float", 0.05, "rate model: W += rate_learning_rate · ΔW (AGREL's "
                                 "δ = (r − p)/p is unbounded: larger steps can diverge)", lo=0, lo_open=True),
    "dt": Field("quantity", "1 ms", "spiking time step", dimension="time", lo=0, lo_open=True),
    "input_rate": Field("quantity", "200 Hz", "input rate at x = 1", dimension="frequency", lo=0, lo_open=True),
    "init_scale": Field("float", 20.0, "spiking weights: std × √fan-in", lo=0, lo_open=True),
    "rate_init_scale": Field("float", 1.0, "rate weights: std × √fan-in", lo=0, lo_open=True),
    "backend": Field("str", "numba", "engine backend", choices=BACKEND_NAMES),
    "agrel_phase_duration": Field("quantity", "300 ms", "AGREL trials: length of the stimulus and of the "
                                  "feedback phase (spiking model; the rate model's imaging timeline)",
                                  dimension="time", lo=0, lo_open=True),
    "agrel_settle": Field("quantity", "50 ms", "AGREL trials: start of each phase not averaged",
                          dimension="time", lo=0),
    "agrel_wta_drive": Field("float", 20.0, "spiking AGREL: somatic drive ±I of the winner-take-all in the "
                             "feedback phase (+ chosen output, − the other)", lo=0, lo_open=True),
    "agrel_hidden": Field("table", {}, "spiking AGREL: agrel_spiking parameters of the input → hidden "
                          "pathway (over eta = 0.01, apical_gate = saturation = true)"),
    "agrel_output": Field("table", {}, "spiking AGREL: agrel_spiking parameters of the hidden → output "
                          "pathway (over eta = 0.005, apical_gate = saturation = false)"),
}

ANALYSIS_SCHEMA = {
    "trials": Field("str", "reinforced", "trials a neuron's mean is taken over (figure and primary)",
                    choices=SELECTIONS),
    "tuning_from": Field("str", "before", "session that defines each neuron's preferred stimulus",
                         choices=("before", "after")),
    "n_boot": Field("int", 10000, "bootstrap resamples", lo=100),
    "n_perm": Field("int", 10000, "permutations", lo=100),
    "plateau_threshold": Field("float", 0.5, "apical potential above which the tuft is in a plateau "
                               "(model units)"),
    "plateau_min_duration": Field("quantity", "20 ms", "shortest imaged plateau", dimension="time", lo=0),
    "response_window": Field("quantity", "0.5 s", "ΔF/F response window after a trial's onset",
                             dimension="time", lo=0, lo_open=True),
    "baseline_window": Field("quantity", "0.5 s", "ΔF/F baseline window before a trial's onset",
                             dimension="time", lo=0, lo_open=True),
    "export": Field("str", "nwb", "export of the first seed's imaging sessions", choices=("nwb", "npz", "none")),
    "rate_plateau_threshold": Field("float", 0.1, "rate AGREL imaging: attentional feedback fb_j above which "
                                    "the tuft is in a plateau during the feedback window (model units)"),
    "rate_peak": Field("quantity", "50 Hz", "rate AGREL imaging: spike rate of a hidden unit at activity 1",
                       dimension="frequency", lo=0),
}


def input_pattern(theta, n_inputs: int, kappa: float) -> np.ndarray:
    """Rates in (0, 1] of orientation-tuned inputs: x_i = exp(κ [cos 2(θ − θ_i) − 1])."""
    pref = np.arange(n_inputs) * 180.0 / n_inputs
    th = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    return np.exp(kappa * (np.cos(np.deg2rad(2.0 * (th[:, None] - pref[None, :]))) - 1.0))


def session_order(n_per_stimulus: int) -> np.ndarray:
    """Alternating stimulus indices 0, 1, 0, 1, ..."""
    return np.tile([0, 1], n_per_stimulus)


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def spiking_face(rule) -> bool:
    return type(rule).example_update is not LearningRule.example_update


# --------------------------------------------------------------------------- spiking model
def _guerguiev_circuit(cfg, seed: int, n_out: int):
    """``n_inputs`` → ``model.hidden`` → ``n_out`` ``guerguiev`` pyramids with apical feedback
    from the output: the described circuit and its :class:`SpikingCircuit` (both spiking models)."""
    from dendrite_sim.core.circuit import layered_circuit
    from dendrite_sim.engine.circuit import SpikingCircuit, SpikingConfig

    st, m = cfg["stimulus"], cfg["model"]
    circuit = layered_circuit([st["n_inputs"], m["hidden"], n_out], m["feedback"], "direct")
    scfg = SpikingConfig(neuron="guerguiev", dt=m["dt"], backend=m["backend"], input_rate=m["input_rate"],
                         init="normal", init_scale=m["init_scale"])
    return circuit, SpikingCircuit(circuit, scfg, rngmod.stream(seed, "init"), seed=rngmod.child_seed(seed, "network"))


class SpikingModel:
    """The dendritic-error circuit on the spiking substrate (see the module docstring)."""

    def __init__(self, rule, cfg, seed: int):
        from dendrite_sim.core.circuit import Phase

        self.rule, self.cfg = rule, cfg
        circuit, self.sc = _guerguiev_circuit(cfg, seed, n_out=1)
        self.hidden = circuit.layers()[1].name
        self.phases = rule.phases()
        self.grey = Phase("grey", cfg["protocol"]["grey"], 0.0) if cfg["protocol"]["grey"] > 0 else None
        self._calibrate()

    def _calibrate(self):
        """Shift the output bias so that the naive output's mean somatic potential over the two
        stimuli is 0 (rate φ_max/2): C = g_B/(g_L + g_B) · B for the output soma (g_A = 0)."""
        from dendrite_sim.core.circuit import Phase

        st = self.cfg["stimulus"]
        ph = Phase("probe", self.phases[0].duration, self.phases[0].settle)
        out = self.sc.circuit.output.name
        c = [self.sc.present(input_pattern(th, st["n_inputs"], st["kappa"])[0], None, (ph,))["probe"]
             .mean(out, "v_soma") for th in st["orientations"][:2]]
        p = self.sc.params[out]
        self.sc.bias(out)[:] -= np.mean(c, axis=0) * (p.g_L + p.g_B) / p.g_B

    def target(self, s: int) -> np.ndarray:
        return np.array([1.0 if s == self.cfg["stimulus"]["reinforced"] else 0.0])

    def train(self, x, stim, lr):
        for xi, s in zip(x, stim):
            rec = self.sc.present(xi, self.target(s), self.phases)
            for q, (dW, db) in self.rule.example_update(self.sc, rec).items():
                self.sc.add_weights(q, lr * dW)
                if db is not None:
                    self.sc.bias(self.sc.circuit.pathway(q).post)[:] += lr * db
            self.sc.sync_feedback()

    def session(self, x, stim):
        """Present the trials (weights frozen); per-trial measures and the imaging ground truth."""
        sc, h, out = self.sc, self.hidden, self.sc.circuit.output.name
        fwd, tgt = self.phases[0].name, self.phases[-1].name
        t_start = sc.net.t
        rows = {k: [] for k in ("start_time", "stop_time")}
        meas = {k: [] for k in ("v_apical_stimulus", "v_apical_reward", "plateau_stimulus", "rate")}
        out_rate, v_chunks, spikes = [], [], []
        n_in = x.shape[1]
        for xi, s in zip(x, stim):
            t0 = sc.net.t
            rec = sc.present(xi, self.target(s), self.phases)
            rows["start_time"].append((t0 - t_start) / 1000.0)
            rows["stop_time"].append((sc.net.t - t_start) / 1000.0)
            f, t = rec[fwd], rec[tgt]
            va_f = f.mean(h, "v_apical")
            meas["v_apical_stimulus"].append(va_f)
            meas["v_apical_reward"].append(t.mean(h, "v_apical"))
            meas["plateau_stimulus"].append(1.0 / (1.0 + np.exp(-va_f)))
            meas["rate"].append(f.rate(h) * 1000.0)
            out_rate.append(float(f.rate(out)[0] * 1000.0))
            recs = [rec] + ([sc.present(np.zeros(n_in), None, (self.grey,))] if self.grey else [])
            for r in recs:
                v_chunks.append(np.asarray(r.traces[h][1]["v_apical"], dtype=np.float32))
                last = list(r.phases.values())[-1]
                ts, idx = last.trains[h]
                spikes.append(((np.asarray(ts) - t_start) / 1000.0, np.asarray(idx)))
        duration = (sc.net.t - t_start) / 1000.0
        return ({k: np.asarray(v) for k, v in meas.items()}, np.asarray(out_rate),
                {k: np.asarray(v) for k, v in rows.items()}, (np.concatenate(v_chunks), spikes, duration))


def ground_truth(v_apical, spikes, duration, dt_ms, threshold, min_duration):
    """Imaging ground truth of a spiking session: spikes (no bursts), plateaus where v_apical >
    threshold, latent v_apical at 100 Hz."""
    from dendrite_sim.architectures.openscope_circuit import bin_mean, plateau_intervals
    from dendrite_sim.imaging.calcium import GroundTruth

    n = v_apical.shape[1]
    t = np.concatenate([s[0] for s in spikes])
    i = np.concatenate([s[1] for s in spikes]).astype(np.int64)
    keep = t < duration
    t, i = t[keep], i[keep]
    trains = [t[i == k] for k in range(n)]
    flags = [np.zeros(len(tr), bool) for tr in trains]
    plateaus = plateau_intervals(v_apical, dt_ms, threshold, min_duration)
    factor = max(1, int(round(10.0 / dt_ms)))
    lat = np.ascontiguousarray(bin_mean(v_apical, factor), dtype=np.float32)
    return GroundTruth.from_trains(trains, duration, burst_flags=flags, plateaus=plateaus,
                                   latents={"v_apical": lat}, latent_rate=1000.0 / (factor * dt_ms),
                                   latent_units={"v_apical": ""}, dt=dt_ms / 1000.0)


# --------------------------------------------------------------------------- rate model
class RateModel:
    """The attention-gated network on the rate substrate (see the module docstring)."""

    def __init__(self, rule, cfg, seed: int):
        from dendrite_sim.core import registry
        from dendrite_sim.core.circuit import layered_circuit
        from dendrite_sim.engine.rate import RateNetwork

        st, m = cfg["stimulus"], cfg["model"]
        self.rule, self.cfg = rule, cfg
        circuit = layered_circuit([st["n_inputs"], m["hidden"], 2], m["feedback"], "layerwise")
        self.net = RateNetwork.from_circuit(circuit, "sigmoid", rngmod.stream(seed, "init"),
                                            init_scale=m["rate_init_scale"])
        self.objective = registry.get("objective", "cross_entropy", "objective")()
        self.rng = rngmod.stream(seed, "rule")
        rule.setup(self.net, self.rng)

    def correct(self, stim) -> np.ndarray:
        """Action 0 (go) for the reinforced stimulus, 1 (no-go) for the other."""
        return np.where(np.asarray(stim) == self.cfg["stimulus"]["reinforced"], 0, 1).astype(np.int64)

    def train(self, x, stim, lr):
        y = self.correct(stim)
        for k in range(len(x)):
            self.net.apply(self.rule.update(self.net, x[k:k + 1], y[k:k + 1], self.objective, self.rng), lr)

    def session(self, x, stim, rng, img_rng=None):
        """Per-trial measures (weights frozen), P(go), the trials table and the imaging ground
        truth of the rate units (:meth:`imaging_truth`, spikes drawn from ``img_rng``)."""
        from dendrite_sim.rules.agrel import sample_actions

        fwd = self.net.forward(x)
        pi = self.rule.policy(fwd.out)
        k = sample_actions(pi, rng)
        B = self.net.W[-1].T if self.net.feedback == "symmetric" else self.net.B[-1]
        fb = B[:, k].T                                   # (trials, hidden)
        tag = fb * self.net.df(fwd.a[0])
        meas = {"apical_feedback": fb, "tag": tag, "rate": fwd.h[1]}
        rows, gt = self.imaging_truth(fwd.h[1], fb, k == self.correct(stim),
                                      rng if img_rng is None else img_rng)
        return meas, pi[:, 0], rows, gt

    def imaging_truth(self, h, fb, reward, rng):
        """The rate units as imaged neurons: each trial is a stimulus window and a feedback window
        of ``model.agrel_phase_duration`` each, then ``protocol.grey``. Unit j fires Poisson spikes
        at h_j · ``analysis.rate_peak`` in both windows (none in the grey); its apical latent is the
        attentional feedback fb_j in the feedback window (0 elsewhere), a plateau where it exceeds
        ``analysis.rate_plateau_threshold``. Returns the trials table and the ground-truth parts."""
        m, an = self.cfg["model"], self.cfg["analysis"]
        dt, d, grey = m["dt"], m["agrel_phase_duration"], self.cfg["protocol"]["grey"]
        n_tr, n = h.shape
        n_d, n_trial = int(round(d / dt)), int(round((2 * d + grey) / dt))
        v = np.zeros((n_tr * n_trial, n), dtype=np.float32)
        spikes = []
        rate = an["rate_peak"] / 1000.0                  # per ms at activity 1
        for t in range(n_tr):
            s0 = t * n_trial
            v[s0 + n_d:s0 + 2 * n_d] = fb[t]
            counts = rng.poisson(np.clip(h[t], 0.0, None) * rate * 2 * d)
            idx = np.repeat(np.arange(n), counts)
            times = s0 * dt + rng.uniform(0.0, 2 * d, idx.size)
            spikes.append((times / 1000.0, idx))
        start = np.arange(n_tr) * n_trial * dt / 1000.0
        rows = {"start_time": start, "stop_time": start + 2 * d / 1000.0, "reward": np.asarray(reward, bool)}
        return rows, (v, spikes, n_tr * n_trial * dt / 1000.0)


#: this experiment's learning rates of the spiking AGREL pathways (under the scenario's tables)
AGREL_HIDDEN, AGREL_OUTPUT = {"eta": 0.01}, {"eta": 0.005}


class AgrelSpikingModel(SpikingModel):
    """AGREL's spiking face (rule ``agrel_spiking``) on the spiking substrate: ``n_inputs`` →
    ``model.hidden`` ``guerguiev`` pyramids → 2 outputs (go, no-go) with apical feedback from the
    outputs; trials of :func:`dendrite_sim.rules.agrel_spiking.trial` (module docstring)."""

    def __init__(self, rule, cfg, seed: int):
        from dendrite_sim.core.circuit import Phase
        from dendrite_sim.rules import agrel_spiking as A
        from dendrite_sim.rules.agrel import AGREL

        m = cfg["model"]
        self.rule, self.cfg = rule, cfg
        circuit, self.sc = _guerguiev_circuit(cfg, seed, n_out=2)
        A.attach(self.sc, {**AGREL_HIDDEN, **m["agrel_hidden"]}, {**AGREL_OUTPUT, **m["agrel_output"]},
                 keys=("model.agrel_hidden", "model.agrel_output"))
        self.hidden = circuit.layers()[1].name
        d, settle = m["agrel_phase_duration"], m["agrel_settle"]
        self.phases = (Phase("stimulus", d, settle), Phase("feedback", d, settle))
        self.grey = Phase("grey", cfg["protocol"]["grey"], 0.0) if cfg["protocol"]["grey"] > 0 else None
        self.policy = AGREL()
        self.rng = rngmod.stream(seed, "rule")
        self._calibrate()

    def correct(self, s) -> int:
        """Action 0 (go) for the reinforced stimulus, 1 (no-go) for the other."""
        return 0 if s == self.cfg["stimulus"]["reinforced"] else 1

    def _trial(self, x, s, learn: bool):
        from dendrite_sim.rules.agrel_spiking import trial

        return trial(self.sc, x, self.correct(s), self.policy, self.rng, *self.phases, learn=learn,
                     wta_drive=self.cfg["model"]["agrel_wta_drive"])

    def train(self, x, stim, lr=None):
        """Learning trials; the learning rate is each pathway's η (``model.agrel_hidden`` / ``agrel_output``)."""
        for xi, s in zip(x, stim):
            self._trial(xi, s, learn=True)

    def session(self, x, stim):
        """Present the trials (tags formed and discarded: weights frozen); per-trial measures,
        P(go), the trials table (with each trial's reward) and the imaging ground truth."""
        sc, h = self.sc, self.hidden
        t_start = sc.net.t
        rows = {k: [] for k in ("start_time", "stop_time", "reward")}
        meas = {k: [] for k in ("v_apical_stimulus", "v_apical_feedback", "plateau_feedback", "rate")}
        p_go, v_chunks, spikes = [], [], []
        n_in = x.shape[1]
        for xi, s in zip(x, stim):
            t0 = sc.net.t
            tr = self._trial(xi, s, learn=False)
            rows["start_time"].append((t0 - t_start) / 1000.0)
            rows["stop_time"].append((sc.net.t - t_start) / 1000.0)
            rows["reward"].append(bool(tr.reward))
            va_f = tr.feedback.mean(h, "v_apical")
            meas["v_apical_stimulus"].append(tr.stimulus.mean(h, "v_apical"))
            meas["v_apical_feedback"].append(va_f)
            meas["plateau_feedback"].append(1.0 / (1.0 + np.exp(-va_f)))
            meas["rate"].append(tr.stimulus.rate(h) * 1000.0)
            p_go.append(float(tr.pi[0]))
            recs = list(tr.records) + ([sc.present(np.zeros(n_in), None, (self.grey,))] if self.grey else [])
            for r in recs:
                v_chunks.append(np.asarray(r.traces[h][1]["v_apical"], dtype=np.float32))
                last = list(r.phases.values())[-1]
                ts, idx = last.trains[h]
                spikes.append(((np.asarray(ts) - t_start) / 1000.0, np.asarray(idx)))
        duration = (sc.net.t - t_start) / 1000.0
        return ({k: np.asarray(v) for k, v in meas.items()}, np.asarray(p_go),
                {k: np.asarray(v) for k, v in rows.items()}, (np.concatenate(v_chunks), spikes, duration))


def model_kind(rule) -> str:
    """``"dendritic"`` (a per-example spiking face), ``"agrel_spiking"`` or ``"rate"``."""
    if spiking_face(rule):
        return "dendritic"
    return "agrel_spiking" if rule.registered_name == "agrel_spiking" else "rate"


MODELS = {"dendritic": SpikingModel, "agrel_spiking": AgrelSpikingModel, "rate": RateModel}


def default_config(**model) -> dict:
    """The experiment's sections with their defaults (``model`` overrides) — for scripts and tests."""
    from dendrite_sim.core.schema import validate_section

    return {"stimulus": validate_section({}, STIMULUS_SCHEMA, "stimulus"),
            "protocol": validate_section({}, PROTOCOL_SCHEMA, "protocol"),
            "model": validate_section(model, MODEL_SCHEMA, "model"),
            "analysis": validate_section({}, ANALYSIS_SCHEMA, "analysis")}


# --------------------------------------------------------------------------- experiment
@register("experiment", "apical_reinforcement")
class ApicalReinforcement(Experiment):
    """Richards et al. 2019 Fig 5: apical activity of neurons tuned to a reinforced and to an
    unreinforced stimulus, before and after learning, per rule; imaged into NWB."""

    sections = {
        "rules": ("list", "rule"),
        "stimulus": STIMULUS_SCHEMA,
        "protocol": PROTOCOL_SCHEMA,
        "model": MODEL_SCHEMA,
        "analysis": ANALYSIS_SCHEMA,
        "indicator": "indicator",
        "imaging": IMAGING_SCHEMA,
    }

    def validate(self, cfg):
        st = cfg["stimulus"]
        if len(st["orientations"]) != 2:
            raise ScenarioError("stimulus.orientations", f"expected two orientations, got {len(st['orientations'])}")
        names = [r.registered_name for r in cfg["rules"]]
        if len(set(names)) != len(names):
            raise ScenarioError("rules", f"expected each rule once, got {names}")
        for i, rule in enumerate(cfg["rules"]):
            if spiking_face(rule):
                if rule.registered_name != "segregated_dendrites":
                    raise ScenarioError(f"rules[{i}].name", "expected 'segregated_dendrites' for the spiking "
                                        "face (the guerguiev circuit of this experiment) or a rate rule")
            elif rule.registered_name not in ("agrel", "agrel_spiking"):
                raise ScenarioError(f"rules[{i}].name", f"expected 'segregated_dendrites' (spiking), "
                                    f"'agrel_spiking' (spiking) or 'agrel' (rate), got {rule.registered_name!r}")
        m = cfg["model"]
        if m["agrel_settle"] >= m["agrel_phase_duration"]:
            raise ScenarioError("model.agrel_settle", f"expected less than agrel_phase_duration = "
                                f"{m['agrel_phase_duration']:g} ms, got {m['agrel_settle']:g}")
        if any(r.registered_name == "agrel_spiking" for r in cfg["rules"]):
            from dendrite_sim.rules.agrel_spiking import pathway_params

            pathway_params({**AGREL_HIDDEN, **m["agrel_hidden"]}, False, "model.agrel_hidden")
            pathway_params({**AGREL_OUTPUT, **m["agrel_output"]}, True, "model.agrel_output")
        if m["input_rate"] * m["dt"] / 1000.0 > 1.0:
            raise ScenarioError("model.input_rate", f"expected at most {1000.0 / m['dt']:g} Hz at dt = {m['dt']:g} ms")
        from dendrite_sim.neurons.guerguiev import Guerguiev

        limit = Guerguiev.stable_dt(Guerguiev.Params(), 1.0)
        if m["dt"] >= limit:
            raise ScenarioError("model.dt", f"expected dt < {limit:.3g} ms (forward Euler of the guerguiev soma)")
        self.check_resources(cfg)

    @staticmethod
    def check_resources(cfg):
        """The run's compute against the runtime limit (:mod:`dendrite_sim.core.limits`: neuron
        steps and synaptic events of the spiking model, multiply-adds of the rate model) and one
        session's records against this machine's memory (apical potentials every step, float32,
        and the imaging traces), each refused under the key furthest above its default."""
        from dendrite_sim.core import limits
        from dendrite_sim.engine import spec as netspec

        st, pr, m = cfg["stimulus"], cfg["protocol"], cfg["model"]
        n_in, n_h = st["n_inputs"], m["hidden"]
        trials = 2 * 2 * pr["session_trials"] + pr["training_trials"]
        seeds = pr["n_seeds"]
        ratios = {"protocol.n_seeds": seeds / 3, "model.hidden": n_h / 100, "stimulus.n_inputs": n_in / 40,
                  "protocol.session_trials": pr["session_trials"] / 20,
                  "protocol.training_trials": pr["training_trials"] / 300, "model.dt": 1.0 / m["dt"]}
        key = max(ratios, key=ratios.get)
        for rule in cfg["rules"]:
            if model_kind(rule) != "rate":
                trial_ms = (sum(ph.duration for ph in rule.phases()) if spiking_face(rule)
                            else 2 * m["agrel_phase_duration"])
                ms = seeds * (trials * trial_ms + 2 * 2 * pr["session_trials"] * pr["grey"])
                steps = ms / m["dt"]
                limits.check_runtime(key, f"{seeds:g} seeds × {trials:g} trials of {trial_ms:g} ms "
                                     f"with {n_h:g} hidden neurons at dt = {m['dt']:g} ms",
                                     neuron_steps=steps * (n_in + n_h + 41),
                                     synaptic_events=steps * n_h * (n_in + 2) * 0.1 * m["dt"])
                session_ms = 2 * pr["session_trials"] * (trial_ms + pr["grey"])
                frames = session_ms / 1000.0 * cfg["imaging"]["frame_rate"]
                rois = n_h * (1 + cfg["imaging"]["n_apical"])
                need = 3 * 4.0 * n_h * session_ms / m["dt"] + 8 * 8.0 * frames * rois
                mkey = max(("model.hidden", "protocol.session_trials", "model.dt"), key=ratios.get)
                netspec.check_memory({mkey: need, "total": need}, key=mkey)
            else:
                limits.check_runtime(key, f"{seeds:g} seeds × {trials:g} trials × "
                                     f"{n_in * n_h:g} weights", flops=6.0 * seeds * trials * n_h * (n_in + 2))

    def run(self, cfg, ctx):
        st, pr, an = cfg["stimulus"], cfg["protocol"], cfg["analysis"]
        reinforced = st["reinforced"]
        models, arrays, files = {}, {}, {"sessions": [], "nwb": [], "npz": "apical_change.npz"}
        fig_data = {}
        for rule0 in cfg["rules"]:
            name = rule0.registered_name
            spiking = model_kind(rule0) != "rate"
            per = {}          # measure → lists over seeds of (before (trials, n), after, stim_b, stim_a)
            tuning, seeds_of, out_summary = {"before": [], "after": []}, [], {"before": [], "after": []}
            for s in ctx.progress(range(pr["n_seeds"]), total=pr["n_seeds"], desc=f"{name} seeds"):
                seed = rngmod.child_seed(ctx.seed, f"fig5/{name}/seed{s}")
                rng = rngmod.stream(seed, "stimuli")
                rule = copy.deepcopy(rule0)

                def trials(order, rng=rng):
                    th = np.asarray(st["orientations"])[order] + rng.uniform(-st["jitter"], st["jitter"], len(order))
                    return th, input_pattern(th, st["n_inputs"], st["kappa"])

                order = session_order(pr["session_trials"])
                th_b, x_b = trials(order)
                train_order = rng.integers(0, 2, pr["training_trials"])
                _, x_tr = trials(train_order)
                th_a, x_a = trials(order)
                kind = model_kind(rule0)
                model = MODELS[kind](rule, cfg, seed)
                with ctx.timer(f"{name}.simulate_s"):
                    if kind == "rate":
                        mb, ob, rows_b, gt_b = model.session(x_b, order, rngmod.stream(seed, "probe/before"),
                                                             rngmod.stream(seed, "imaging/spikes/before"))
                        model.train(x_tr, train_order, cfg["model"]["rate_learning_rate"])
                        ma, oa, rows_a, gt_a = model.session(x_a, order, rngmod.stream(seed, "probe/after"),
                                                             rngmod.stream(seed, "imaging/spikes/after"))
                    else:
                        mb, ob, rows_b, gt_b = model.session(x_b, order)
                        model.train(x_tr, train_order, cfg["model"]["learning_rate"])
                        ma, oa, rows_a, gt_a = model.session(x_a, order)
                threshold = an["rate_plateau_threshold"] if kind == "rate" else an["plateau_threshold"]
                with ctx.timer(f"{name}.imaging_s"):
                    for label, m_, rows, gt, th in (("before", mb, rows_b, gt_b, th_b),
                                                    ("after", ma, rows_a, gt_a, th_a)):
                        m_["dff_apical"] = self._image(ctx, cfg, name, label, s, gt, rows, order, th, seed, files,
                                                       threshold)
                for label, o in (("before", ob), ("after", oa)):
                    out_summary[label].append([float(np.mean(o[order == reinforced])),
                                               float(np.mean(o[order != reinforced]))])
                for label, m_ in (("before", mb), ("after", ma)):
                    tuning[label].append(preferred_stimulus(m_["rate"], order))
                for k in mb:
                    if k == "rate":
                        continue
                    per.setdefault(k, []).append((mb[k], ma[k]))
                seeds_of.append(np.full(mb["rate"].shape[1], s))
            models[name], fig_data[name] = self._statistics(name, "spiking" if spiking else "rate", per, tuning,
                                                            seeds_of, out_summary, order, reinforced, an, ctx, arrays)
        ctx.save_npz("apical_change", **arrays)
        from dendrite_sim.plotting.apical_reinforcement import apical_change_figure

        ctx.save_figure(apical_change_figure(fig_data, an["trials"], st["orientations"][reinforced]), "apical_change")
        return _clean({"models": models, "primary": {"trials": an["trials"], "tuning_from": an["tuning_from"]},
                       "files": files})

    # ------------------------------------------------------------------ imaging
    def _image(self, ctx, cfg, name, label, s, gt_parts, rows, order, theta, seed, files, threshold):
        from dendrite_sim.analysis.imaging_responses import frame_responses
        from dendrite_sim.imaging import simulate_session

        an, st = cfg["analysis"], cfg["stimulus"]
        v, spikes, duration = gt_parts
        gt = ground_truth(v, spikes, duration, cfg["model"]["dt"], threshold, an["plateau_min_duration"])
        table = {"start_time": rows["start_time"], "stop_time": rows["stop_time"],
                 "stimulus": np.asarray(order, dtype=np.int64), "orientation": np.asarray(theta),
                 "reinforced": np.asarray(order) == st["reinforced"],
                 "reward": (np.asarray(rows["reward"], bool) if "reward" in rows
                            else np.asarray(order) == st["reinforced"])}
        img_seed = rngmod.child_seed(seed, f"imaging/{label}")
        first = s == 0
        folder = f"session-{name}-{label}"
        session = simulate_session(gt, indicator=cfg["indicator"], imaging=ImagingParams.from_validated(cfg["imaging"]),
                                   stimulus=table, seed=img_seed, name=f"{name}-{label}",
                                   path=ctx.out / folder if first else None,
                                   provenance={"seed": ctx.seed, "imaging_seed": img_seed, "rule": name,
                                               "session": label, "experiment": "apical_reinforcement"})
        if first:
            files["sessions"].append(folder)
            if an["export"] != "none":
                from dendrite_sim.io.export import export_session, run_provenance

                path = export_session(session, ctx.out / f"{folder}.{an['export']}", an["export"],
                                      run_provenance(ctx.out))
                files["nwb"].append(path.name)
        dff = np.asarray(session.traces["dff"], dtype=np.float64)
        comp, cell = np.asarray(session.rois.compartment), np.asarray(session.rois.cell_id)
        resp = frame_responses(dff, session.frame_times, rows["start_time"], an["response_window"] / 1000.0,
                               an["baseline_window"] / 1000.0)
        out = np.full((len(order), gt.n_neurons), np.nan)
        ap = comp == "apical"
        with warnings.catch_warnings():        # the first trial has no baseline before t = 0
            warnings.simplefilter("ignore", RuntimeWarning)
            for i in range(gt.n_neurons):
                sel = ap & (cell == i)
                if sel.any():
                    out[:, i] = np.nanmean(resp[:, sel], axis=1)
        return out

    # ------------------------------------------------------------------ statistics
    def _statistics(self, name, substrate, per, tuning, seeds_of, out_summary, order, reinforced, an, ctx, arrays):
        pref = np.concatenate(tuning[an["tuning_from"]])
        seed_idx = np.concatenate(seeds_of)
        group = pref == reinforced
        rng = rngmod.stream(ctx.seed, f"fig5/{name}/statistics")
        measures, per_seed, fig = {}, {}, {}
        for k, runs in per.items():
            measures[k] = {}
            for sel in SELECTIONS:
                b, a = [], []
                for s, (mb, ma) in enumerate(runs):
                    p_s = pref[seed_idx == s]
                    b.append(trial_mean(mb, order, sel, p_s, reinforced))
                    a.append(trial_mean(ma, order, sel, p_s, reinforced))
                b, a = np.concatenate(b), np.concatenate(a)
                measures[k][sel] = group_change(b, a, group, rng, n_boot=an["n_boot"], n_perm=an["n_perm"])
                if sel == an["trials"]:
                    fig[k] = {"before": b, "after": a, "group": group, "stats": measures[k][sel]}
                    arrays[f"{name}__{k}__before"] = b
                    arrays[f"{name}__{k}__after"] = a
                    d = a - b
                    per_seed[k] = {"reinforced": [float(np.nanmean(d[(seed_idx == s) & group]))
                                                  for s in range(len(runs))],
                                   "other": [float(np.nanmean(d[(seed_idx == s) & ~group]))
                                             for s in range(len(runs))]}
        arrays[f"{name}__tuned_to_reinforced"] = group
        arrays[f"{name}__seed"] = seed_idx
        outs = {label: {"reinforced": float(np.mean([v[0] for v in vals])),
                        "other": float(np.mean([v[1] for v in vals]))} for label, vals in out_summary.items()}
        return ({"substrate": substrate, "n_neurons": int(pref.size), "n_seeds": len(tuning["before"]),
                 "n_tuned_to_reinforced": int(group.sum()),
                 "output": outs, "measures": measures, "per_seed": per_seed},
                {"substrate": substrate, "measures": fig})
