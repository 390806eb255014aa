"""Simulated ground truth → free [Ca²⁺] per imaged compartment.

Each compartment's calcium is a resting level plus a linear sum of transients, one per influx
event, each a peak-normalised difference of exponentials (rise τ_r, decay τ_d of the indicator):

    c(t) = c_rest + Σ_k a_k κ(t − t_k) + Σ_p ρ_p ∫_{s_p}^{e_p} κ(t − u) du
    κ(t) = (e^{−t/τ_d} − e^{−t/τ_r}) / κ_peak   (t ≥ 0),   max κ = 1

Sources per compartment (δc: the somatic step per spike, from the indicator's 1-AP ΔF/F₀):

* soma: every spike, a_k = δc.
* distal apical dendrite: every spike as an attenuated backpropagating AP, a_k = f_bAP δc
  (a lone bAP gives little distal signal: Larkum et al. 1999; Helmchen et al. 1999); every
  burst (≥ 2 spikes within the burst ISI, Naud & Sprekeler 2018) is a dendritic Ca²⁺ spike at
  the burst onset, a = r_burst δc × burst size (BAC firing: Larkum et al. 1999); every plateau
  interval [s, e] injects at the rate ρ = r_plateau δc per second of plateau (for plateaus
  much shorter than τ_d the peak is ≈ ρ (e − s)). Tuft events are global: each apical ROI of a
  neuron sees the same events scaled by its branch gain.

Exact integration on any regular time grid: the two exponentials are carried as states
S_d, S_r that decay by e^{−Δt/τ} per step; an event at t_k inside a step adds a e^{−(t_j − t_k)/τ}
and a box adds ρ τ (e^{−(t_j − u_hi)/τ} − e^{−(t_j − u_lo)/τ}), so the result equals the sum of
kernels evaluated at the grid points (no time-discretisation error).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from dendrite_sim.core.errors import ScenarioError

BURST_ISI = 0.016  # s: burst criterion of Naud & Sprekeler 2018 / Payeur et al. 2021 (docs/models.md)


# ----------------------------------------------------------------------------- ground truth
@dataclass
class GroundTruth:
    """What a simulation hands to the imaging model, for ``n_neurons`` neurons.

    Spikes are flat arrays (times in s; stored sorted by neuron, then time) with the neuron index of each
    spike and a burst flag per spike (True for every spike of a burst). Plateaus are intervals
    [start, stop) in s with their neuron. Latent traces are time × neuron arrays sampled at
    ``latent_rate`` Hz from t = 0 (e.g. ``v_apical`` in mV, ``burst_prob``, ``error``), with
    their units in ``latent_units``. ``dt`` is the simulation time step (s), the resolution of
    the spike times.
    """

    n_neurons: int
    duration: float
    spike_times: np.ndarray
    spike_unit: np.ndarray
    burst_flag: np.ndarray
    plateau_start: np.ndarray = field(default_factory=lambda: np.zeros(0))
    plateau_stop: np.ndarray = field(default_factory=lambda: np.zeros(0))
    plateau_unit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    latents: dict = field(default_factory=dict)
    latent_rate: float = 1000.0
    latent_units: dict = field(default_factory=dict)
    dt: float = 1e-4

    def __post_init__(self):
        self.spike_times = np.asarray(self.spike_times, dtype=np.float64)
        self.spike_unit = np.asarray(self.spike_unit, dtype=np.int64)
        self.burst_flag = np.asarray(self.burst_flag, dtype=bool)
        self.plateau_start = np.asarray(self.plateau_start, dtype=np.float64)
        self.plateau_stop = np.asarray(self.plateau_stop, dtype=np.float64)
        self.plateau_unit = np.asarray(self.plateau_unit, dtype=np.int64)
        n = self.spike_times.shape
        if self.spike_unit.shape != n or self.burst_flag.shape != n:
            raise ScenarioError("ground_truth.spike_times", "expected spike_times, spike_unit and "
                                "burst_flag of equal length")
        if self.plateau_stop.shape != self.plateau_start.shape or \
                self.plateau_unit.shape != self.plateau_start.shape:
            raise ScenarioError("ground_truth.plateaus", "expected plateau start, stop and unit "
                                "arrays of equal length")
        order = np.lexsort((self.spike_times, self.spike_unit))   # canonical: by neuron, then time
        if np.any(order != np.arange(order.size)):
            self.spike_times, self.spike_unit, self.burst_flag = (
                self.spike_times[order], self.spike_unit[order], self.burst_flag[order])
        order = np.lexsort((self.plateau_start, self.plateau_unit))
        if np.any(order != np.arange(order.size)):
            self.plateau_start, self.plateau_stop, self.plateau_unit = (
                self.plateau_start[order], self.plateau_stop[order], self.plateau_unit[order])
        if np.any(self.plateau_stop < self.plateau_start):
            raise ScenarioError("ground_truth.plateaus", "expected stop ≥ start for every plateau")
        for name, units in ((self.spike_unit, "spike_unit"), (self.plateau_unit, "plateau_unit")):
            if name.size and (name.min() < 0 or name.max() >= self.n_neurons):
                raise ScenarioError(f"ground_truth.{units}", f"expected neuron indices in "
                                    f"[0, {self.n_neurons})")
        for k, v in self.latents.items():
            if np.ndim(v) != 2 or np.shape(v)[1] != self.n_neurons:
                raise ScenarioError(f"ground_truth.latents.{k}", f"expected a time × neuron array "
                                    f"with {self.n_neurons} columns, got shape {np.shape(v)}")

    @classmethod
    def from_trains(cls, spike_trains, duration: float, *, burst_flags=None, plateaus=None,
                    latents=None, latent_rate=1000.0, latent_units=None, dt=1e-4,
                    burst_isi=BURST_ISI) -> GroundTruth:
        """From one spike-time array per neuron (s). Burst flags default to the burst-ISI rule;
        ``plateaus`` is one list of (start, stop) pairs per neuron."""
        n = len(spike_trains)
        trains = [np.sort(np.asarray(t, dtype=np.float64)) for t in spike_trains]
        times = np.concatenate(trains) if n else np.zeros(0)
        unit = np.concatenate([np.full(len(t), i) for i, t in enumerate(trains)]) if n else \
            np.zeros(0, dtype=np.int64)
        if burst_flags is None:
            flags = np.concatenate([classify_bursts(t, burst_isi)[0] for t in trains]) if n else \
                np.zeros(0, bool)
        else:
            flags = np.concatenate([np.asarray(f, bool) for f in burst_flags]) if n else np.zeros(0, bool)
        ps, pe, pu = [], [], []
        for i, lst in enumerate(plateaus or []):
            for s, e in lst:
                ps.append(s)
                pe.append(e)
                pu.append(i)
        return cls(n, float(duration), times, unit, flags, np.array(ps, float), np.array(pe, float),
                   np.array(pu, np.int64), dict(latents or {}), float(latent_rate),
                   dict(latent_units or {}), float(dt))

    def unit_spikes(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sel = self.spike_unit == i
        t = self.spike_times[sel]
        order = np.argsort(t, kind="stable")
        return t[order], self.burst_flag[sel][order]

    def unit_plateaus(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sel = self.plateau_unit == i
        return self.plateau_start[sel], self.plateau_stop[sel]


def classify_bursts(times: np.ndarray, isi: float = BURST_ISI) -> tuple[np.ndarray, np.ndarray]:
    """Burst flag per spike and size of each event (Naud & Sprekeler 2018 rule).

    An event starts with a spike after more than ``isi`` of silence; every later spike within
    ``isi`` of its predecessor joins it; an event of ≥ 2 spikes is a burst. Returns
    (burst flag per spike, event index per spike).
    """
    t = np.asarray(times, dtype=float)
    if t.size == 0:
        return np.zeros(0, bool), np.zeros(0, np.int64)
    new_event = np.concatenate([[True], np.diff(t) > isi])
    event = np.cumsum(new_event) - 1
    sizes = np.bincount(event)
    return sizes[event] >= 2, event


def burst_events(times: np.ndarray, flags: np.ndarray, isi: float = BURST_ISI):
    """Onset time and size (spike count) of each burst among flagged spikes."""
    t = np.asarray(times, float)[np.asarray(flags, bool)]
    if t.size == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    new = np.concatenate([[True], np.diff(t) > isi])
    ev = np.cumsum(new) - 1
    return t[new], np.bincount(ev)


# ----------------------------------------------------------------------------- the kernel
def kernel_peak(tau_rise: float, tau_decay: float) -> tuple[float, float]:
    """Time of the maximum of e^{−t/τ_d} − e^{−t/τ_r} and its value κ_peak."""
    t_pk = tau_rise * tau_decay / (tau_decay - tau_rise) * np.log(tau_decay / tau_rise)
    return float(t_pk), float(np.exp(-t_pk / tau_decay) - np.exp(-t_pk / tau_rise))


@njit(cache=True, error_model="numpy")
def _response(ev_t, ev_a, box_s, box_e, box_rate, t0, dt, n, tau_r, tau_d, norm, out):
    """Add Σ a κ(t − t_k) + Σ ρ ∫ κ on the grid t_j = t0 + j dt to ``out`` (exact, see module)."""
    inp_d = np.zeros(n)
    inp_r = np.zeros(n)
    t_end = t0 + (n - 1) * dt
    for k in range(ev_t.shape[0]):
        te = ev_t[k]
        if te > t_end:
            continue
        j = 0
        if te > t0:
            j = int(np.ceil((te - t0) / dt))
            if t0 + j * dt < te:  # guard against rounding
                j += 1
            if j >= n:
                continue
        tj = t0 + j * dt
        inp_d[j] += ev_a[k] * np.exp(-(tj - te) / tau_d)
        inp_r[j] += ev_a[k] * np.exp(-(tj - te) / tau_r)
    for p in range(box_s.shape[0]):
        s = box_s[p]
        e = box_e[p]
        if s > t_end or e <= s:
            continue
        j0 = 0
        if s > t0:
            j0 = int(np.floor((s - t0) / dt))
        for j in range(j0, n):
            tj = t0 + j * dt
            lo = s if j == 0 else max(s, tj - dt)
            hi = min(e, tj)
            if hi > lo:
                r = box_rate[p]
                inp_d[j] += r * tau_d * (np.exp(-(tj - hi) / tau_d) - np.exp(-(tj - lo) / tau_d))
                inp_r[j] += r * tau_r * (np.exp(-(tj - hi) / tau_r) - np.exp(-(tj - lo) / tau_r))
            if tj >= e:
                break
    qd = np.exp(-dt / tau_d)
    qr = np.exp(-dt / tau_r)
    sd = 0.0
    sr = 0.0
    for j in range(n):
        sd = sd * qd + inp_d[j]
        sr = sr * qr + inp_r[j]
        out[j] += (sd - sr) / norm


def transient_sum(t0: float, dt: float, n: int, tau_rise: float, tau_decay: float,
                  event_times=(), event_amps=(), box_start=(), box_stop=(), box_rate=()) -> np.ndarray:
    """Σ_k a_k κ(t_j − t_k) + Σ_p ρ_p ∫_{s_p}^{e_p} κ(t_j − u) du on t_j = t0 + j·dt (s)."""
    out = np.zeros(int(n))
    _, norm = kernel_peak(tau_rise, tau_decay)
    f = lambda x: np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    _response(f(event_times), f(event_amps), f(box_start), f(box_stop), f(box_rate), float(t0),
              float(dt), int(n), float(tau_rise), float(tau_decay), norm, out)
    return out


# ----------------------------------------------------------------------------- compartments
@dataclass(frozen=True)
class CalciumParams:
    """Influx per compartment, in units of the somatic per-spike step δc (nM)."""

    c_rest: float = 50.0            # nM resting free calcium (NAOMi default, Song et al. 2021)
    ca_per_spike: float = 3.4       # nM δc; normally derived from the indicator's 1-AP ΔF/F₀
    bap_fraction: float = 0.15      # distal apical step per bAP / δc
    burst_ratio: float = 8.0        # apical Ca-spike step per burst spike / δc
    plateau_ratio: float = 150.0    # apical influx per second of plateau / δc (1/s)


def soma_calcium(gt: GroundTruth, neuron: int, p: CalciumParams, t0: float, dt: float, n: int,
                 tau_rise: float, tau_decay: float) -> np.ndarray:
    """[Ca²⁺] (nM) of a neuron's soma on the grid t0 + j dt."""
    t, _ = gt.unit_spikes(neuron)
    c = transient_sum(t0, dt, n, tau_rise, tau_decay, t, np.full(t.size, p.ca_per_spike))
    return c + p.c_rest


def apical_calcium(gt: GroundTruth, neuron: int, p: CalciumParams, t0: float, dt: float, n: int,
                   tau_rise: float, tau_decay: float, gain: float = 1.0) -> np.ndarray:
    """[Ca²⁺] (nM) of a distal apical ROI (bAPs + Ca spikes at bursts + plateaus) × branch gain."""
    t, flags = gt.unit_spikes(neuron)
    onset, size = burst_events(t, flags)
    ev_t = np.concatenate([t, onset])
    ev_a = np.concatenate([np.full(t.size, p.bap_fraction * p.ca_per_spike),
                           p.burst_ratio * p.ca_per_spike * size])
    s, e = gt.unit_plateaus(neuron)
    c = transient_sum(t0, dt, n, tau_rise, tau_decay, ev_t, ev_a, s, e,
                      np.full(s.size, p.plateau_ratio * p.ca_per_spike))
    return p.c_rest + gain * c
