"""The OpenScope-style circuit of :mod:`dendrite_sim.experiments.openscope_session`.

Pyramidal Naud–Sprekeler neurons with Gabor-tuned somatic (basal) drive, a feedback population
driven by stimulus surprise that reaches the apical dendrites through facilitating synapses, and
interneurons that inhibit the somata (equations and parameters: the experiment's docstring).
This module builds it (:func:`make_circuit`), runs one imaging "day" (:func:`simulate_day`),
applies the covariance plasticity between days (:func:`consolidate`, the registered
``covariance`` rule in its batch form) and turns a day's record
into imaging ground truth (:func:`ground_truth`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dendrite_sim.core import rng as rngmod
from dendrite_sim.rules.covariance import Covariance
from dendrite_sim.tasks.gabor_sequences import GaborProtocol, drives

#: the ``synapses.stp`` choices of the circuit's feedback synapses ("none": static)
STP_CHOICES = ("payeur_stf", "facilitating", "payeur_std", "depressing", "none")


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
    background_dend: int
    background_dend_weight: float
    background_lif: int
    background_lif_weight: float
    p_feedback_dend: float
    w_feedback_dend: float
    feedback_dend_cv: float
    feedback_stp: str
    p_feedback_inh: float
    w_feedback_inh: float
    p_inh_soma: float
    w_inh_soma: float
    tau_avg: float
    basal_trial_cv: float = 0.0   # c.v. of the per-presentation gain on the basal drive (0: none)


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

    fb_dend = conn(p.n_feedback, p.n_pyr, p.p_feedback_dend, p.w_feedback_dend, "feedback_dend")
    if p.feedback_dend_cv > 0:      # per-neuron factor g_i ~ logN, E[g] = 1, c.v. feedback_dend_cv
        s = np.sqrt(np.log1p(p.feedback_dend_cv ** 2))
        g = np.exp(rngmod.stream(seed, "openscope/feedback_dend_gain").normal(-0.5 * s * s, s, p.n_pyr))
        fb_dend.weights[:] = p.w_feedback_dend * g[fb_dend.indices]
    return Circuit(
        protocol.tuning(p.n_pyr, rngmod.stream(seed, "openscope/tuning/pyr")),
        protocol.tuning(p.n_feedback, rngmod.stream(seed, "openscope/tuning/feedback")),
        fb_dend,
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
    if p.basal_trial_cv > 0:
        # trial-to-trial gain fluctuations of the feedforward response (modulated Poisson model,
        # Goris, Movshon & Simoncelli 2014 Nat Neurosci 17:858): one log-normal factor (mean 1)
        # per stimulus row and neuron, from the day's stream
        s = np.sqrt(np.log1p(p.basal_trial_cv ** 2))
        basal = basal * np.exp(rngmod.stream(seed, "openscope/trial_gain").normal(-0.5 * s * s, s, basal.shape))
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
                          ("pyr", "dend_exc", p.background_dend, p.background_dend_weight),
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
    """Cov_k[x_j(k), y_i(k)] for every synapse j → i of ``conn`` (CSR order): the registered
    ``covariance`` rule's batch form (:class:`dendrite_sim.rules.covariance.Covariance`)."""
    return Covariance.covariance(conn, x, y)


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
    Covariance.batch(cfd, x_fb, y_burst, pp.eta_feedback, 0.0, pp.w_feedback_max)
    Covariance.batch(cis, x_inh, y_spike, pp.eta_inhibition, -pp.w_inhibition_max, 0.0, sign=-1.0)
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
