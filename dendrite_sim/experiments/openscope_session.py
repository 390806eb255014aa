"""Experiment ``openscope_session``: a spiking circuit imaged over several days, OpenScope style.

What it reproduces: the Allen Institute OpenScope "credit assignment" recordings (DANDI 000037;
Gillon et al. 2023 Sci Data 10:287; Gillon et al. 2024 J Neurosci 44:e1009232023): two-photon
GCaMP6f imaging at 30 Hz of pyramidal somata and their distal apical dendrites while mice see
Gabor sequences A-B-C-D-G (0.3 s per frame) in which D is sometimes replaced by an unexpected U
(:mod:`dendrite_sim.tasks.gabor_sequences`), repeated over three sessions ("days").

The circuit (populations of the spiking engine, :mod:`dendrite_sim.engine.network`)::

    Gabor frames ──basal current──► pyr (Naud–Sprekeler two-compartment neurons, n_pyr)
                                     ▲ dend_exc (STF)          ▲ soma_inh (plastic)
    surprise ──current──► feedback (LIF, n_feedback) ──► inh (LIF, n_inh)
                                     └────────────────────────────┘
    + independent Poisson background onto every population

* ``pyr``: Naud & Sprekeler (2018) neurons (REFERENCE §1). The soma receives a bias, the
  stimulus as a current I_s(t) = soma_bias + basal_gain · basal[frame(t), i] with the protocol's
  Gabor tuning (von Mises orientation tuning × frame-identity gain; :func:`drives`), and Poisson
  background (excitatory and inhibitory synaptic currents).
* ``feedback``: a top-down population (current-based LIF, Brette et al. 2007). Its neurons
  receive I_fb(t) = feedback_bias + feedback_gain · a[frame(t), j], the protocol's feedback
  signal a = feedback_expected (≈ 0.2, a weak prediction) during A–D frames,
  feedback_unexpected (≈ 1, a mismatch) during U and 0 during grey, with per-neuron log-normal
  weights — the prediction-error-like surprise signal of the credit-assignment hypotheses.
  They project to the **apical dendrites** (``dend_exc``) through facilitating synapses
  (Payeur et al. 2021 STF preset: U 0.02, τ_D 100 ms, τ_F 100 ms, f 0.1), which transmit the
  high-rate firing evoked by U far more than the sparse firing during expected frames.
* ``inh``: perisomatic interneurons (LIF) driven by the feedback population, inhibiting the
  pyramidal somata (``soma_inh``, negative current weights).

Days and plasticity. Each day is a fresh run of the same circuit — connectivity, tuning and the
learned weights carry over; fast state (voltages, adaptation, STP) and the background noise are
new. Imaging data are taken with the weights frozen during the session; between sessions the
day's experience is consolidated by a **frame-binned covariance rule** (Sejnowski 1977) on the
two plastic projections::

    Δw_ij = η · Cov_k[ x_j(k), y_i(k) ]     (k: the session's stimulus frames)
          = η · (1/K) Σ_k x_j(k) (y_i(k) − ȳ_i)

    feedback → dendrite:  x = feedback spike rate, y = burst rate of pyramidal neuron i;
                          w ← clip(w + η_fb Cov, 0, w_feedback_max)
                          (burst-gated Hebbian potentiation of apical inputs, in the spirit of
                          burst-dependent plasticity, Payeur et al. 2021)
    inh → soma:           x = interneuron spike rate, y = somatic spike rate of neuron i;
                          w ← clip(w − η_inh Cov, −w_inhibition_max, 0)   (weights are negative)
                          (Hebbian inhibitory plasticity that cancels stimulus-locked excess
                          firing: the rate form of Vogels et al. 2011 with the target rate
                          replaced by the neuron's own mean rate)

Rates are spike counts per frame / frame duration (Hz); η in pA per Hz².

Model prediction (``responses.png``, metrics ``prediction``; numbers of the documented scenario,
seed 1). Day 1: U frames drive the feedback neurons to ≈ 70 Hz (≈ 9 Hz during A–D), whose
facilitating synapses depolarise the dendrites; the pyramidal neurons burst (≈ 2.5 bursts/s during
U, ≈ 0.02 during D), so both compartments respond more to U than to D (apical USI ≈ 1.6, somatic
USI ≈ 0.8). Feedback and bursts co-vary only around U, so the feedback → dendrite weights grow
(450 → 740 → 880 pA) and the U-evoked dendritic depolarisation turns from sporadic Ca²⁺ spikes
into reliable plateaus (plateau fraction of U frames 0.15 → 0.49 → 0.81). The interneurons,
co-active with the somatic U response, learn to cancel it (−20 → −130 → −190 pA): somatic U
firing falls back towards the D level (13 → 9.6 → 7.4 Hz; D ≈ 5–6.6 Hz) and the bursts with it.
Result: the apical USI grows (1.6 → 2.9 → 4.6: U responses become reliable) while the somatic
USI falls (0.78 → 0.83 → 0.31) — the two compartments evolve in opposite directions, as
Gillon et al. 2024 report for L2/3 and L5 pyramidal neurons tracked over days (as we recall
their abstract: somata less, distal apical dendrites more sensitive to the pattern-violating U).
Caveat: the mean apical ΔF/F to U does not grow (2.3 → 1.7 → 2.2): in the imaging model a
burst's Ca²⁺ spike (8 δc per burst spike, Hill-supralinear readout) weighs as much as a 0.3 s
plateau, so the loss of bursts offsets the longer plateaus; the selectivity change comes from
reliability. The parameters of the two rules were chosen to give this outcome; with
weaker inhibitory plasticity both compartments' U responses grow together, because the
Naud–Sprekeler dendrite drives the soma strongly (g_s f(V_d) up to 1.3 nA).

Ground truth per pyramidal neuron and day: spike times, burst flags (≥ 2 spikes within 16 ms),
plateau intervals (V_dend above ``plateau_threshold`` for at least ``plateau_min_duration``;
the ≈ 50 ms dendritic Ca²⁺ spike of every burst is shorter and is already imaged as a burst),
latents at ``latent_rate`` (float32): ``v_apical`` (V_dend, mV, mean over each latent bin), ``burst_prob``
(the engine's running burst probability P̄ = r_B/r_E, window ``tau_avg``) and ``error``
(the feedback current reaching the dendrite, ``dend_exc``, pA). Each day goes through the
imaging forward model (:func:`dendrite_sim.imaging.simulate_session`: one somatic and
``imaging.n_apical`` apical ROIs per neuron, the same ROIs every day) into the run folder
``session-day<k>``, and is exported to ``session-day<k>.nwb`` (or ``.npz``) during the run.

Analysis. Response of an ROI to a D or U frame starting at t₀: mean ΔF/F over
[t₀, t₀ + response_window) minus the mean over [t₀ − baseline_window, t₀); ``expected`` /
``unexpected`` average it over the session's D / U frames and over ROIs of a compartment;
``usi`` is the mean over ROIs of Gillon et al.'s unexpected-event selectivity index
(μ_U − μ_D)/√((σ_U² + σ_D²)/2). Noise: robust s.d. of each ROI's ΔF/F (the Allen noise
estimate, :func:`dendrite_sim.imaging.dff.noise_std`) and Rupprecht et al.'s ν, medians over
ROIs and days. Event size: ΔF/F peak in [t, t + 0.5 s) minus the mean in [t − 0.3 s, t) after
ground-truth burst onsets t isolated by ≥ 1 s from other bursts of the neuron, median over
events and ROIs (``dff`` measured, ``dff_noiseless`` from the noiseless trace), its ratio to
the noise s.d. (``snr``) and the number of (event, ROI) measurements (``n_events``).

metrics.json keys (stable)::

    n_neurons, n_sessions, session_duration_s (per session, list), frame_rate_hz
    rois.{soma, apical, total}
    noise.{soma, apical}.{dff_sd, dff_sd_requested, nu_pct_per_sqrt_hz}
    event_size.{soma, apical}.{dff, dff_noiseless, snr, n_events}
    sessions.day<k>.{n_frames, duration_s, n_expected, n_unexpected,
        dff.{soma, apical}.{expected, unexpected, difference, expected_sem, unexpected_sem, usi},
        spikes.{rate_hz, burst_rate_hz, plateau_fraction}.{expected, unexpected, grey},
        feedback_rate_hz.{expected, unexpected, grey}, interneuron_rate_hz.{...},
        weights.{feedback_dend_pA, inhibition_soma_pA},     (means, at the time of the session)
        simulation.{build_s, run_s, codegen_s, first_call_s}}
    prediction.{soma_usi_change, apical_usi_change, soma_difference_change,
                apical_difference_change, opposite_directions}
    files.{sessions[], exported[]}
    timing.{simulate_s, imaging_s, export_s, analysis_s}

(expected/unexpected: D/U frames; grey: G frames; ``*_change``: last day − first day of the
session values; ``opposite_directions``: the somatic and apical USI changed with opposite
signs.)

Figures: ``dff_heatmap.png`` (ΔF/F of every ROI, somata and apical dendrites with their own colour
scales, U frames outlined, stimulus strip on top), ``responses.png`` (mean ΔF/F aligned to D and U
onsets per compartment and day; mean responses and USI over days), ``example_traces.png`` (soma
and dendrite ΔF/F of example neurons on the first and last day with ground-truth spikes, burst
spikes and plateaus underneath).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.imaging.config import IMAGING_SCHEMA, ImagingParams
from dendrite_sim.tasks.gabor_sequences import GABOR_SCHEMA, GaborProtocol, drives, protocol_tables

COMPARTMENTS = ("soma", "apical")
STP_CHOICES = ("payeur_stf", "facilitating", "payeur_std", "depressing", "none")


def _q(default, doc, dim, **kw):
    return Field("quantity", default, doc, dimension=dim, **kw)


NETWORK_SCHEMA: dict[str, Field] = {
    "n_pyr": Field("int", 120, "pyramidal neurons (one somatic + n_apical apical ROIs each)", lo=1),
    "n_feedback": Field("int", 40, "top-down feedback neurons (LIF)", lo=1),
    "n_inh": Field("int", 30, "perisomatic interneurons (LIF)", lo=1),
    "dt": _q("0.1 ms", "time step", "time", lo=0, lo_open=True, hi=1.0),
    "backend": Field("str", "numba", "engine backend", choices=("numba", "numpy")),
    "soma_bias": _q("300 pA", "constant somatic current of the pyramidal neurons", "current"),
    "basal_gain": _q("250 pA", "somatic current per unit of the protocol's basal (Gabor) drive",
                     "current", lo=0),
    "feedback_bias": _q("0 pA", "constant current of the feedback neurons", "current"),
    "feedback_gain": _q("220 pA", "feedback-neuron current per unit of the protocol's feedback "
                        "(surprise) signal", "current", lo=0),
    "inh_bias": _q("20 pA", "constant current of the interneurons", "current"),
    "background_rate": _q("5 Hz", "rate of every background Poisson source", "frequency", lo=0),
    "background_soma_exc": Field("int", 100, "excitatory background sources per pyramidal soma", lo=0),
    "background_soma_exc_weight": _q("100 pA", "their weight", "current", lo=0),
    "background_soma_inh": Field("int", 30, "inhibitory background sources per pyramidal soma", lo=0),
    "background_soma_inh_weight": _q("-100 pA", "their weight (negative)", "current", hi=0),
    "background_lif": Field("int", 100, "excitatory background sources per feedback neuron and "
                            "interneuron", lo=0),
    "background_lif_weight": _q("20 pA", "their weight", "current", lo=0),
    "p_feedback_dend": Field("float", 0.5, "connection probability feedback → pyramidal dendrite",
                             lo=0, hi=1),
    "w_feedback_dend": _q("450 pA", "initial feedback → dendrite weight", "current", lo=0),
    "feedback_stp": Field("str", "payeur_stf", "short-term plasticity of feedback → dendrite",
                          choices=STP_CHOICES),
    "p_feedback_inh": Field("float", 0.5, "connection probability feedback → interneuron", lo=0, hi=1),
    "w_feedback_inh": _q("15 pA", "feedback → interneuron weight", "current", lo=0),
    "p_inh_soma": Field("float", 0.5, "connection probability interneuron → pyramidal soma", lo=0, hi=1),
    "w_inh_soma": _q("-20 pA", "initial interneuron → soma weight (negative)", "current", hi=0),
    "tau_avg": _q("500 ms", "window of the running burst probability (latent burst_prob)", "time",
                  lo=0, lo_open=True),
}

PLASTICITY_SCHEMA: dict[str, Field] = {
    "enabled": Field("bool", True, "consolidate each day's co-activity into the weights"),
    "eta_feedback": Field("float", 40.0, "η of feedback → dendrite (pA per Hz²)", lo=0),
    "eta_inhibition": Field("float", 8.0, "η of interneuron → soma (pA per Hz²)", lo=0),
    "w_feedback_max": _q("2000 pA", "upper bound of feedback → dendrite weights", "current", lo=0),
    "w_inhibition_max": _q("1000 pA", "bound of the interneuron → soma weight magnitude", "current", lo=0),
}

ANALYSIS_SCHEMA: dict[str, Field] = {
    "plateau_threshold": _q("-40 mV", "dendritic voltage above which the dendrite is in a plateau",
                            "voltage"),
    "plateau_min_duration": _q("100 ms", "shortest plateau (a burst's Ca spike lasts ≈ 50 ms)",
                               "time", lo=0),
    "record_every": _q("2 ms", "sampling interval of V_dend for plateau detection", "time",
                       lo=0, lo_open=True),
    "latent_rate": _q("100 Hz", "sampling rate of the latent traces", "frequency", lo=0, lo_open=True),
    "response_window": _q("0.6 s", "response window after a D/U onset (frame + grey)", "time",
                          lo=0, lo_open=True),
    "baseline_window": _q("0.3 s", "baseline window before a D/U onset", "time", lo=0, lo_open=True),
    "example_neurons": Field("int", 3, "neurons in example_traces.png", lo=1, hi=12),
    "example_window": _q("15 s", "time shown per session in example_traces.png", "time", lo=0,
                         lo_open=True),
    "heatmap_window": _q("60 s", "time shown per session in dff_heatmap.png", "time", lo=0, lo_open=True),
    "export": Field("str", "nwb", "format written during the run", choices=("nwb", "npz", "none")),
}


# --------------------------------------------------------------------------- parameter records
@dataclass(frozen=True)
class CircuitParams:
    """:data:`NETWORK_SCHEMA` in internal units (ms, pA, Hz)."""

    n_pyr: int
    n_feedback: int
    n_inh: int
    dt: float
    backend: str
    soma_bias: float
    basal_gain: float
    feedback_bias: float
    feedback_gain: float
    inh_bias: float
    background_rate: float
    background_soma_exc: int
    background_soma_exc_weight: float
    background_soma_inh: int
    background_soma_inh_weight: float
    background_lif: int
    background_lif_weight: float
    p_feedback_dend: float
    w_feedback_dend: float
    feedback_stp: str
    p_feedback_inh: float
    w_feedback_inh: float
    p_inh_soma: float
    w_inh_soma: float
    tau_avg: float


@dataclass(frozen=True)
class PlasticityParams:
    enabled: bool
    eta_feedback: float
    eta_inhibition: float
    w_feedback_max: float
    w_inhibition_max: float


@dataclass
class Circuit:
    """What persists from day to day: tuning, connectivity and (plastic) weights."""

    pyr_tuning: object
    feedback_tuning: object
    conn_feedback_dend: object          # Connectivity (CSR), weights = current values (pA)
    conn_feedback_inh: object
    conn_inh_soma: object


def make_circuit(p: CircuitParams, protocol: GaborProtocol, seed: int) -> Circuit:
    """Tuning and connectivity from named streams of ``seed``; initial weights from ``p``."""
    from dendrite_sim.synapses import connectivity as C

    def conn(n_pre, n_post, prob, w, name):
        c = C.fixed_probability(n_pre, n_post, prob, rngmod.stream(seed, f"openscope/conn/{name}"))
        c.weights[:] = w
        return c

    return Circuit(
        protocol.tuning(p.n_pyr, rngmod.stream(seed, "openscope/tuning/pyr")),
        protocol.tuning(p.n_feedback, rngmod.stream(seed, "openscope/tuning/feedback")),
        conn(p.n_feedback, p.n_pyr, p.p_feedback_dend, p.w_feedback_dend, "feedback_dend"),
        conn(p.n_feedback, p.n_inh, p.p_feedback_inh, p.w_feedback_inh, "feedback_inh"),
        conn(p.n_inh, p.n_pyr, p.p_inh_soma, p.w_inh_soma, "inh_soma"))


# --------------------------------------------------------------------------- one day
@dataclass
class DayRecord:
    """Spikes (ms, neuron index) per population and sampled traces of one day."""

    duration_ms: float
    pyr_t: np.ndarray
    pyr_i: np.ndarray
    burst_t: np.ndarray                  # burst marks (second spike of each burst), ms
    burst_i: np.ndarray
    feedback_t: np.ndarray
    feedback_i: np.ndarray
    inh_t: np.ndarray
    inh_i: np.ndarray
    v_dend: np.ndarray                   # (samples, n_pyr) every record_every from t = 0
    record_every: float                  # ms
    slow: dict                           # latent-rate samples: dend_exc, burst_prob (T, n_pyr)
    timings: dict


def simulate_day(circuit: Circuit, p: CircuitParams, protocol: GaborProtocol, table: dict,
                 seed: int, record_every: float, latent_every: float) -> DayRecord:
    """Run one session of the circuit on the frame ``table`` (weights as in ``circuit``)."""
    from dendrite_sim.engine.network import Network

    basal, _ = drives(table, circuit.pyr_tuning)
    _, surprise = drives(table, circuit.feedback_tuning)
    frame_ms = protocol.frame_duration * 1000.0
    duration = float(table["stop_time"][-1]) * 1000.0 if len(table["stop_time"]) else 0.0
    t0 = time.perf_counter()
    net = Network(dt=p.dt, seed=seed, backend=p.backend)
    net.population("pyr", p.n_pyr, "naud_sprekeler", tau_avg=p.tau_avg)
    net.population("feedback", p.n_feedback, "lif", bursts=False)
    net.population("inh", p.n_inh, "lif", bursts=False)
    net.current("pyr", "soma", bias=p.soma_bias, array=p.basal_gain * basal, array_dt=frame_ms,
                name="basal")
    net.current("feedback", "soma", bias=p.feedback_bias, array=p.feedback_gain * surprise,
                array_dt=frame_ms, name="surprise")
    net.current("inh", "soma", bias=p.inh_bias)
    r = p.background_rate
    for pop, ch, n, w in (("pyr", "soma_exc", p.background_soma_exc, p.background_soma_exc_weight),
                          ("pyr", "soma_inh", p.background_soma_inh, p.background_soma_inh_weight),
                          ("feedback", "exc", p.background_lif, p.background_lif_weight),
                          ("inh", "exc", p.background_lif, p.background_lif_weight)):
        if n and r > 0 and w != 0:
            net.poisson_input(pop, ch, n_sources=n, rate=r, weight=w)
    c = circuit
    net.projection("feedback", "pyr", "dend_exc", c.conn_feedback_dend, weight=c.conn_feedback_dend.weights,
                   stp=None if p.feedback_stp == "none" else p.feedback_stp, name="feedback_dend")
    net.projection("feedback", "inh", "exc", c.conn_feedback_inh, weight=c.conn_feedback_inh.weights,
                   name="feedback_inh")
    net.projection("inh", "pyr", "soma_inh", c.conn_inh_soma, weight=c.conn_inh_soma.weights,
                   name="inh_soma")
    m_pyr = net.spike_monitor("pyr")
    m_fb = net.spike_monitor("feedback")
    m_inh = net.spike_monitor("inh")
    fast = net.state_monitor("pyr", ["v_dend"], every=record_every)
    slow = net.state_monitor("pyr", ["dend_exc", "burst_prob"], every=latent_every)
    t1 = time.perf_counter()
    net.run(duration)
    t2 = time.perf_counter()
    return DayRecord(duration, m_pyr.t, m_pyr.i, m_pyr.burst_t, m_pyr.burst_i, m_fb.t, m_fb.i,
                     m_inh.t, m_inh.i, fast["v_dend"], record_every,
                     {"dend_exc": slow["dend_exc"], "burst_prob": slow["burst_prob"]},
                     {"build_s": t1 - t0, "run_s": t2 - t1, **net.timings})


# --------------------------------------------------------------------------- pure helpers
def frame_rates(t_ms: np.ndarray, idx: np.ndarray, n: int, table: dict) -> np.ndarray:
    """Spike counts per stimulus row and neuron divided by the row's duration: (rows, n) in Hz."""
    start = np.asarray(table["start_time"], float) * 1000.0
    stop = np.asarray(table["stop_time"], float) * 1000.0
    row = np.searchsorted(start, t_ms, side="right") - 1
    ok = (row >= 0) & (t_ms < stop[np.clip(row, 0, None)])
    counts = np.zeros((start.size, n))
    np.add.at(counts, (row[ok], np.asarray(idx)[ok]), 1.0)
    return counts / ((stop - start) / 1000.0)[:, None]


def frame_fraction(flags: np.ndarray, every: float, table: dict) -> np.ndarray:
    """Fraction of samples (taken every ``every`` ms from 0) that are True, per stimulus row and
    column: (rows, n); 0 for a row without samples."""
    flags = np.asarray(flags)
    start = np.asarray(table["start_time"], float) * 1000.0
    stop = np.asarray(table["stop_time"], float) * 1000.0
    t = np.arange(flags.shape[0]) * every
    a = np.searchsorted(t, start - 1e-9, side="left")
    b = np.searchsorted(t, stop - 1e-9, side="left")
    cs = np.concatenate([np.zeros((1, flags.shape[1])), np.cumsum(flags, axis=0, dtype=np.float64)])
    return (cs[b] - cs[a]) / np.maximum(b - a, 1)[:, None]


def covariance_update(conn, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cov_k[x_j(k), y_i(k)] for every synapse j → i of ``conn`` (CSR order).

    ``x``: (K, n_pre) presynaptic rates, ``y``: (K, n_post) postsynaptic factors over K frames.
    """
    if x.shape[0] == 0:
        return np.zeros(conn.nnz)
    cov = (y - y.mean(axis=0)).T @ x / x.shape[0]          # (n_post, n_pre)
    return cov[conn.indices, conn.pre_indices()]


def consolidate(circuit: Circuit, rec: DayRecord, table: dict, pp: PlasticityParams) -> dict:
    """Apply the between-session covariance rule (module docstring) in place; returns the mean
    weight changes (pA)."""
    n_pyr = circuit.conn_feedback_dend.n_post
    x_fb = frame_rates(rec.feedback_t, rec.feedback_i, circuit.conn_feedback_dend.n_pre, table)
    x_inh = frame_rates(rec.inh_t, rec.inh_i, circuit.conn_inh_soma.n_pre, table)
    y_burst = frame_rates(rec.burst_t, rec.burst_i, n_pyr, table)
    y_spike = frame_rates(rec.pyr_t, rec.pyr_i, n_pyr, table)
    cfd, cis = circuit.conn_feedback_dend, circuit.conn_inh_soma
    before = (cfd.weights.mean() if cfd.nnz else 0.0, cis.weights.mean() if cis.nnz else 0.0)
    np.clip(cfd.weights + pp.eta_feedback * covariance_update(cfd, x_fb, y_burst),
            0.0, pp.w_feedback_max, out=cfd.weights)
    np.clip(cis.weights - pp.eta_inhibition * covariance_update(cis, x_inh, y_spike),
            -pp.w_inhibition_max, 0.0, out=cis.weights)
    after = (cfd.weights.mean() if cfd.nnz else 0.0, cis.weights.mean() if cis.nnz else 0.0)
    return {"feedback_dend_pA": float(after[0] - before[0]),
            "inhibition_soma_pA": float(after[1] - before[1])}


def plateau_intervals(v: np.ndarray, every: float, threshold: float, min_duration: float) -> list:
    """Per neuron (column of ``v``, sampled every ``every`` ms from 0), the intervals (s) where
    v > ``threshold`` for at least ``min_duration`` ms: [start, stop) with stop the first sample
    below threshold (or the end)."""
    above = np.asarray(v) > threshold
    n_t, n = above.shape
    pad = np.zeros((1, n), dtype=np.int8)
    d = np.diff(np.concatenate([pad, above.astype(np.int8), pad]), axis=0)
    out = []
    for i in range(n):
        s = np.flatnonzero(d[:, i] == 1)
        e = np.flatnonzero(d[:, i] == -1)
        keep = (e - s) * every >= min_duration
        out.append([(float(a * every / 1000.0), float(b * every / 1000.0))
                    for a, b in zip(s[keep], e[keep])])
    return out


def bin_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over consecutive blocks of ``factor`` rows (the last partial block is dropped)."""
    n = x.shape[0] // factor
    return x[: n * factor].reshape(n, factor, *x.shape[1:]).mean(axis=1)


def ground_truth(rec: DayRecord, latent_every: float, threshold: float, min_duration: float, dt: float):
    """The imaging model's :class:`~dendrite_sim.imaging.calcium.GroundTruth` of one day."""
    from dendrite_sim.imaging.calcium import GroundTruth

    n = rec.v_dend.shape[1]
    t_s, i = rec.pyr_t / 1000.0, rec.pyr_i
    order = np.argsort(i, kind="stable")
    bounds = np.searchsorted(i[order], np.arange(n + 1))
    trains = [t_s[order[bounds[k]:bounds[k + 1]]] for k in range(n)]
    plateaus = plateau_intervals(rec.v_dend, rec.record_every, threshold, min_duration)
    factor = int(round(latent_every / rec.record_every))
    n_lat = int(np.floor(rec.duration_ms / latent_every + 1e-9))
    f32 = lambda a: np.ascontiguousarray(a[:n_lat], dtype=np.float32)   # halves the files
    latents = {"v_apical": f32(bin_mean(rec.v_dend, factor)), "burst_prob": f32(rec.slow["burst_prob"]),
               "error": f32(rec.slow["dend_exc"])}
    return GroundTruth.from_trains(trains, rec.duration_ms / 1000.0, plateaus=plateaus, latents=latents,
                                   latent_rate=1000.0 / latent_every,
                                   latent_units={"v_apical": "mV", "burst_prob": "", "error": "pA"},
                                   dt=dt / 1000.0)


def _window_mean(trace: np.ndarray, frame_times: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of ``trace`` (frames × ROIs) over frames with lo_k ≤ t < hi_k, for every k: (K, ROIs)."""
    a = np.searchsorted(frame_times, lo, side="left")
    b = np.searchsorted(frame_times, hi, side="left")
    cs = np.concatenate([np.zeros((1, trace.shape[1])), np.cumsum(trace, axis=0, dtype=np.float64)])
    cnt = np.maximum(b - a, 1)[:, None]
    out = (cs[b] - cs[a]) / cnt
    out[b <= a] = np.nan
    return out


def frame_responses(dff: np.ndarray, frame_times: np.ndarray, onsets: np.ndarray, window: float,
                    baseline: float) -> np.ndarray:
    """Per onset and ROI: mean ΔF/F in [t, t + window) − mean in [t − baseline, t). (K, ROIs)."""
    onsets = np.asarray(onsets, float)
    resp = _window_mean(dff, frame_times, onsets, onsets + window)
    base = _window_mean(dff, frame_times, onsets - baseline, onsets)
    return resp - base


def response_summary(dff: np.ndarray, frame_times: np.ndarray, compartment: np.ndarray, table: dict,
                     window: float, baseline: float) -> dict:
    """Expected (D) vs unexpected (U) responses per compartment (see the module docstring)."""
    frame = np.asarray(table["frame"])
    start = np.asarray(table["start_time"], float)
    out = {}
    r_d = frame_responses(dff, frame_times, start[frame == "D"], window, baseline)
    r_u = frame_responses(dff, frame_times, start[frame == "U"], window, baseline)
    for comp in COMPARTMENTS:
        sel = compartment == comp
        d, u = r_d[:, sel], r_u[:, sel]
        res = {"expected": None, "unexpected": None, "difference": None, "expected_sem": None,
               "unexpected_sem": None, "usi": None}
        if sel.any() and np.isfinite(d).any() and np.isfinite(u).any():
            md, mu = np.nanmean(d, axis=0), np.nanmean(u, axis=0)      # per ROI
            sd = np.nanstd(d, axis=0) if d.shape[0] > 1 else np.zeros_like(md)
            su = np.nanstd(u, axis=0) if u.shape[0] > 1 else np.zeros_like(mu)
            pooled = np.sqrt(0.5 * (sd ** 2 + su ** 2))
            usi = np.where(pooled > 0, (mu - md) / np.where(pooled > 0, pooled, 1.0), np.nan)
            sem = lambda a: float(np.nanstd(a) / np.sqrt(max(1, np.isfinite(a).sum())))
            res = {"expected": float(np.nanmean(md)), "unexpected": float(np.nanmean(mu)),
                   "difference": float(np.nanmean(mu - md)), "expected_sem": sem(md),
                   "unexpected_sem": sem(mu),
                   "usi": float(np.nanmean(usi)) if np.isfinite(usi).any() else None}
        out[comp] = res
    return out


def aligned_traces(dff: np.ndarray, frame_rate: float, compartment: np.ndarray, table: dict,
                   before: float = 0.6, after: float = 1.5) -> dict:
    """Mean ΔF/F around D and U onsets: {compartment: {"D"/"U": (t, mean, sem over ROIs)}}."""
    frame = np.asarray(table["frame"])
    start = np.asarray(table["start_time"], float)
    k0, k1 = int(round(before * frame_rate)), int(round(after * frame_rate))
    lags = np.arange(-k0, k1)
    t = lags / frame_rate
    out = {}
    for comp in COMPARTMENTS:
        sel = np.flatnonzero(compartment == comp)
        out[comp] = {}
        for cond in ("D", "U"):
            idx = np.floor(start[frame == cond] * frame_rate + 1e-9).astype(int)
            idx = idx[(idx - k0 >= 0) & (idx + k1 <= dff.shape[0])]
            if idx.size == 0 or sel.size == 0:
                out[comp][cond] = (t, np.full(t.size, np.nan), np.full(t.size, np.nan))
                continue
            per_roi = np.stack([np.asarray(dff[i + lags][:, sel], dtype=np.float64) for i in idx]).mean(axis=0)
            out[comp][cond] = (t, per_roi.mean(axis=1), per_roi.std(axis=1) / np.sqrt(sel.size))
    return out


def noise_stats(dff: np.ndarray, frame_rate: float, noise_window: float, compartment: np.ndarray) -> dict:
    """Per compartment: the per-ROI robust noise s.d. and ν (lists over ROIs)."""
    from dendrite_sim.imaging import dff as dffmod

    n_noise = dffmod.odd_frames(noise_window, frame_rate)
    out = {}
    for comp in COMPARTMENTS:
        sel = np.flatnonzero(compartment == comp)
        out[comp] = ([dffmod.noise_std(np.asarray(dff[:, r], np.float64), n_noise) for r in sel],
                     [dffmod.noise_level(np.asarray(dff[:, r], np.float64), frame_rate) for r in sel])
    return out


def event_sizes(session, isolation: float = 1.0, peak_window: float = 0.5, pre: float = 0.3) -> dict:
    """ΔF/F peaks after isolated ground-truth burst onsets, per compartment (module docstring).

    Returns {compartment: (measured sizes, noiseless sizes)} as lists over (event, ROI)."""
    from dendrite_sim.imaging.calcium import burst_events

    gt, rois, ft = session.ground_truth, session.rois, session.frame_times
    dff = session.traces["dff"]
    true = session.traces["dff_true"]
    out = {c: ([], []) for c in COMPARTMENTS}
    for i in range(gt.n_neurons):
        t, flags = gt.unit_spikes(i)
        onset, _ = burst_events(t, flags)
        if onset.size == 0:
            continue
        gaps = np.diff(np.concatenate([[-np.inf], onset, [np.inf]]))
        iso = onset[(gaps[:-1] >= isolation) & (gaps[1:] >= isolation)]
        iso = iso[(iso - pre >= ft[0]) & (iso + peak_window <= ft[-1])]
        if iso.size == 0:
            continue
        a = np.searchsorted(ft, iso, side="left")
        b = np.searchsorted(ft, iso + peak_window, side="left")
        a0 = np.searchsorted(ft, iso - pre, side="left")
        for r in np.flatnonzero(rois.cell_id == i):
            comp = str(rois.compartment[r])
            for tr, dest in ((dff, out[comp][0]), (true, out[comp][1])):
                x = np.asarray(tr[:, r], np.float64)
                for k in range(iso.size):
                    if b[k] > a[k] and a[k] > a0[k]:
                        dest.append(float(x[a[k]:b[k]].max() - x[a0[k]:a[k]].mean()))
    return out


def _rates_by_frame(rates: np.ndarray, frame: np.ndarray) -> dict:
    res = {}
    for key, f in (("expected", "D"), ("unexpected", "U"), ("grey", "G")):
        sel = frame == f
        res[key] = float(rates[sel].mean()) if sel.any() else None
    return res


def _median(x):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else None


def _event_metrics(pooled: dict) -> dict:
    size, noise = _median(pooled["event"]), _median(pooled["noise_sd"])
    return {"dff": size, "dff_noiseless": _median(pooled["event_noiseless"]),
            "snr": None if size is None or not noise else size / noise, "n_events": len(pooled["event"])}


def analyse_day(rec: DayRecord, session, table: dict, p: CircuitParams, an: dict, imaging: ImagingParams):
    """One day's entry of ``metrics.sessions`` (without weights) and its per-ROI noise and event
    sizes, ``{compartment: {noise_sd, nu, event, event_noiseless}}`` lists, for pooling."""
    frame = np.asarray(table["frame"])
    dff = np.asarray(session.traces["dff"])
    comp = np.asarray(session.rois.compartment)
    summary = response_summary(dff, session.frame_times, comp, table, an["response_window"] / 1000.0,
                               an["baseline_window"] / 1000.0)
    rates = frame_rates(rec.pyr_t, rec.pyr_i, p.n_pyr, table)
    bursts = frame_rates(rec.burst_t, rec.burst_i, p.n_pyr, table)
    plateau = frame_fraction(rec.v_dend > an["plateau_threshold"], rec.record_every, table)
    noise = noise_stats(dff, session.frame_rate, imaging.dff_noise_window, comp)
    events = event_sizes(session)
    day = {
        "n_frames": int(session.n_frames), "duration_s": float(session.ground_truth.duration),
        "n_expected": int(np.sum(frame == "D")), "n_unexpected": int(np.sum(frame == "U")),
        "dff": summary,
        "spikes": {"rate_hz": _rates_by_frame(rates, frame),
                   "burst_rate_hz": _rates_by_frame(bursts, frame),
                   "plateau_fraction": _rates_by_frame(plateau, frame)},
        "feedback_rate_hz": _rates_by_frame(frame_rates(rec.feedback_t, rec.feedback_i, p.n_feedback, table),
                                            frame),
        "interneuron_rate_hz": _rates_by_frame(frame_rates(rec.inh_t, rec.inh_i, p.n_inh, table), frame),
        "simulation": {k: round(float(v), 3) for k, v in rec.timings.items()},
    }
    stats = {c: {"noise_sd": noise[c][0], "nu": noise[c][1], "event": events[c][0],
                 "event_noiseless": events[c][1]} for c in COMPARTMENTS}
    return day, stats


# --------------------------------------------------------------------------- the experiment
@register("experiment", "openscope_session")
class OpenscopeSession(Experiment):
    """Spiking two-compartment circuit with apical feedback, Gabor A-B-C-D/U-G sequences over
    several days with plasticity between them, imaged (somata + apical dendrites) into NWB."""

    sections = {
        "indicator": "indicator",
        "imaging": IMAGING_SCHEMA,
        "stimulus": GABOR_SCHEMA,
        "network": NETWORK_SCHEMA,
        "plasticity": PLASTICITY_SCHEMA,
        "analysis": ANALYSIS_SCHEMA,
    }

    def validate(self, cfg):
        net, an, stim = cfg["network"], cfg["analysis"], cfg["stimulus"]
        dt = net["dt"]

        def multiple(value, of, key, what):
            k = value / of
            if abs(k - round(k)) > 1e-6 * max(1.0, k) or round(k) < 1:
                raise ScenarioError(key, f"expected a multiple of {what} ({of:g} ms), got {value:g} ms")
            return int(round(k))

        multiple(stim["frame_duration"], dt, "stimulus.frame_duration", "network.dt")
        multiple(an["record_every"], dt, "analysis.record_every", "network.dt")
        multiple(1000.0 / an["latent_rate"], an["record_every"], "analysis.latent_rate",
                 "analysis.record_every (as a period)")
        if stim["session_duration"] < 5 * stim["frame_duration"]:
            raise ScenarioError("stimulus.session_duration", "expected at least one A-B-C-D-G sequence "
                                f"({5 * stim['frame_duration'] / 1000:g} s)")

    def run(self, cfg, ctx):
        from dendrite_sim.imaging import make_rois, simulate_session
        from dendrite_sim.imaging.indicators import resolve

        timing = {"simulate_s": 0.0, "imaging_s": 0.0, "export_s": 0.0, "analysis_s": 0.0}
        net_v, an = cfg["network"], cfg["analysis"]
        p = CircuitParams(**net_v)
        pp = PlasticityParams(**cfg["plasticity"])
        protocol = GaborProtocol.from_validated(cfg["stimulus"])
        imaging = ImagingParams.from_validated(cfg["imaging"])
        indicator = resolve(cfg["indicator"])
        tables = protocol_tables(protocol, rngmod.child_seed(ctx.seed, "openscope/stimulus"))
        circuit = make_circuit(p, protocol, ctx.seed)
        rois = make_rois(p.n_pyr, rngmod.stream(ctx.seed, "openscope/rois"), imaging.geometry())
        latent_every = 1000.0 / an["latent_rate"]

        sessions, per_day, folders = [], {}, []
        pooled = {c: {"noise_sd": [], "nu": [], "event": [], "event_noiseless": []} for c in COMPARTMENTS}
        for k, table in enumerate(ctx.progress(tables, total=len(tables), desc="days")):
            day = f"day{k + 1}"
            weights = {"feedback_dend_pA": float(circuit.conn_feedback_dend.weights.mean()),
                       "inhibition_soma_pA": float(circuit.conn_inh_soma.weights.mean())}
            t0 = time.perf_counter()
            rec = simulate_day(circuit, p, protocol, table, rngmod.child_seed(ctx.seed, f"openscope/{day}"),
                               an["record_every"], latent_every)
            gt = ground_truth(rec, latent_every, an["plateau_threshold"], an["plateau_min_duration"], p.dt)
            t1 = time.perf_counter()
            img_seed = rngmod.child_seed(ctx.seed, f"openscope/imaging/{day}")
            session = simulate_session(
                gt, indicator=indicator, imaging=imaging, rois=rois, stimulus=table, seed=img_seed,
                name=day, path=ctx.out / f"session-{day}",
                provenance={"seed": ctx.seed, "imaging_seed": img_seed, "experiment": "openscope_session",
                            "day": k + 1, "weights_at_session": weights})
            t2 = time.perf_counter()
            folders.append(f"session-{day}")
            per_day[day], dff_stats = analyse_day(rec, session, table, p, an, imaging)
            per_day[day]["weights"] = weights
            for c in COMPARTMENTS:
                for key in ("noise_sd", "nu", "event", "event_noiseless"):
                    pooled[c][key].extend(dff_stats[c][key])
            sessions.append((session, aligned_traces(np.asarray(session.traces["dff"]), session.frame_rate,
                                                     np.asarray(session.rois.compartment), table)))
            if pp.enabled and k + 1 < len(tables):
                consolidate(circuit, rec, table, pp)
            t3 = time.perf_counter()
            timing["simulate_s"] += t1 - t0
            timing["imaging_s"] += t2 - t1
            timing["analysis_s"] += t3 - t2
            del rec

        # export during the run (the run folder already holds config.toml and provenance.json)
        exported = []
        if an["export"] != "none":
            from dendrite_sim.io.export import export_session, run_provenance

            t0 = time.perf_counter()
            extra = run_provenance(ctx.out)
            for (session, _), folder in zip(sessions, folders):
                path = export_session(session, ctx.out / f"{folder}.{an['export']}", an["export"], extra)
                exported.append(path.name)
            timing["export_s"] = time.perf_counter() - t0

        # figures
        t0 = time.perf_counter()
        from dendrite_sim.plotting import imaging as figs

        days = list(per_day)
        ctx.save_figure(figs.dff_heatmap_figure([s for s, _ in sessions], days,
                                                window=an["heatmap_window"] / 1000.0), "dff_heatmap")
        ctx.save_figure(figs.response_figure({d: a for d, (_, a) in zip(days, sessions)},
                                             {d: per_day[d]["dff"] for d in days}), "responses")
        shown = [sessions[0][0]] if len(sessions) == 1 else [sessions[0][0], sessions[-1][0]]
        ctx.save_figure(figs.example_traces_figure(
            shown, figs.pick_example_neurons(sessions[-1][0], an["example_neurons"]),
            window=an["example_window"] / 1000.0), "example_traces")
        timing["analysis_s"] += time.perf_counter() - t0

        first, last = per_day[days[0]]["dff"], per_day[days[-1]]["dff"]

        def change(c, key):
            a, b = first[c][key], last[c][key]
            return None if a is None or b is None else float(b - a)

        su, au = change("soma", "usi"), change("apical", "usi")
        counts = {c: int(np.sum(rois.compartment == c)) for c in COMPARTMENTS}
        return {
            "n_neurons": p.n_pyr, "n_sessions": len(tables),
            "session_duration_s": [per_day[d]["duration_s"] for d in days],
            "frame_rate_hz": float(imaging.frame_rate),
            "rois": {**counts, "total": int(rois.n_rois)},
            "noise": {c: {"dff_sd": _median(pooled[c]["noise_sd"]),
                          "dff_sd_requested": imaging.noise_sd_soma if c == "soma" else imaging.noise_sd_apical,
                          "nu_pct_per_sqrt_hz": _median(pooled[c]["nu"])} for c in COMPARTMENTS},
            "event_size": {c: _event_metrics(pooled[c]) for c in COMPARTMENTS},
            "sessions": per_day,
            "prediction": {"soma_usi_change": su, "apical_usi_change": au,
                           "soma_difference_change": change("soma", "difference"),
                           "apical_difference_change": change("apical", "difference"),
                           "opposite_directions": None if su is None or au is None else bool(su * au < 0)},
            "files": {"sessions": folders, "exported": exported},
            "timing": {k2: round(v, 3) for k2, v in timing.items()},
        }
