"""Offline statistics of spike trains: rates, ISI irregularity, events and bursts.

Event and burst definitions follow Naud & Sprekeler (2018) / Payeur et al. (2021): a spike that
follows more than ``burst_isi`` (16 ms) of silence starts an **event**; an event is a **burst**
when the next spike comes within ``burst_isi``. The burst fraction is bursts / events.
"""

from __future__ import annotations

import numpy as np

# spike times are multiples of dt stored as floats: a gap of exactly 16 ms must count as
# "within 16 ms" whatever the rounding, as in the engine's integer-step detection
_TOLERANCE_MS = 1e-6


def split_trains(spike_i: np.ndarray, spike_t: np.ndarray, n: int) -> list[np.ndarray]:
    """Per-neuron sorted spike times from flat (index, time) arrays."""
    order = np.lexsort((spike_t, spike_i))
    i, t = spike_i[order], spike_t[order]
    bounds = np.searchsorted(i, np.arange(n + 1))
    return [t[bounds[k]:bounds[k + 1]] for k in range(n)]


def mean_rate(spike_i: np.ndarray, n: int, duration_ms: float) -> float:
    """Population mean firing rate in Hz."""
    return float(len(spike_i) / n / (duration_ms / 1000.0))


def cv_isi(trains: list[np.ndarray], min_spikes: int = 3) -> float:
    """Mean coefficient of variation of the inter-spike intervals over neurons with enough spikes."""
    cvs = []
    for t in trains:
        if len(t) >= min_spikes:
            isi = np.diff(t)
            if isi.mean() > 0:
                cvs.append(isi.std() / isi.mean())
    return float(np.mean(cvs)) if cvs else float("nan")


def events_and_bursts(train: np.ndarray, burst_isi: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """Event start times and a boolean per event (True for bursts) of one sorted spike train."""
    if len(train) == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    limit = burst_isi + _TOLERANCE_MS
    gaps_before = np.diff(train, prepend=-np.inf)
    starts = np.flatnonzero(gaps_before > limit)
    gaps_after = np.diff(train, append=np.inf)
    return train[starts], gaps_after[starts] <= limit


def burst_fraction(trains: list[np.ndarray], burst_isi: float = 16.0) -> float:
    """Bursts / events over all neurons."""
    n_events = n_bursts = 0
    for t in trains:
        _, is_burst = events_and_bursts(t, burst_isi)
        n_events += len(is_burst)
        n_bursts += int(is_burst.sum())
    return n_bursts / n_events if n_events else float("nan")


def summary(spike_i, spike_t, n: int, duration_ms: float, transient_ms: float = 0.0) -> dict:
    """Rate (Hz), CV of ISIs and burst fraction, ignoring spikes before ``transient_ms``."""
    keep = spike_t >= transient_ms
    spike_i, spike_t = np.asarray(spike_i)[keep], np.asarray(spike_t)[keep]
    trains = split_trains(spike_i, spike_t, n)
    return {"rate_hz": mean_rate(spike_i, n, duration_ms - transient_ms), "cv_isi": cv_isi(trains),
            "burst_fraction": burst_fraction(trains), "n_spikes": int(len(spike_i))}
