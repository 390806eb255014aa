"""Spike inference on synthetic ΔF/F against the ground truth (optional extra: ``oasis-deconv``).

OASIS (Friedrich, Zhou & Paninski 2017 PLoS Comput Biol 13:e1005423) deconvolves each ROI's ΔF/F
with an AR(1) calcium model c_t = g c_{t−1} + s_t, g = e^{−1/(f τ_decay)} (τ_decay of the
indicator, f the frame rate), with an L1 penalty and non-negative s. The inferred s_t is compared
with the ground-truth spike count n_t of the ROI's cell in the same frame, both smoothed by a
Gaussian of ``smooth`` s (the usual evaluation at a tolerance of a few frames; Theis et al. 2016
Neuron 90:471 use 40–100 ms bins), by Pearson r; one r per ROI, summarised per compartment as
the median.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def frame_counts(spike_times: np.ndarray, n_frames: int, frame_rate: float) -> np.ndarray:
    """Spikes per frame [k/f, (k+1)/f)."""
    k = np.floor(np.asarray(spike_times, float) * frame_rate).astype(np.int64)
    k = k[(k >= 0) & (k < n_frames)]
    return np.bincount(k, minlength=n_frames).astype(float)


def oasis_spikes(dff: np.ndarray, frame_rate: float, tau_decay: float) -> np.ndarray:
    """OASIS AR(1) deconvolution of one trace (needs ``oasis-deconv``); returns s_t ≥ 0."""
    from oasis.functions import deconvolve

    y = np.asarray(dff, np.float64)
    try:                              # oasis-deconv ≥ 0.3: time constants (g is deprecated there)
        _, s, _, _, _ = deconvolve(y, tau_d=float(tau_decay), framerate=float(frame_rate), penalty=1)
    except TypeError:                 # older releases: the AR(1) coefficient
        g = float(np.exp(-1.0 / (frame_rate * tau_decay)))
        _, s, _, _, _ = deconvolve(y, g=(g,), penalty=1)
    return np.clip(np.asarray(s, float), 0.0, None)   # round-off leaves −1e-17


def inference_correlation(dff: np.ndarray, frame_rate: float, tau_decay: float, ground_truth,
                          cell_id: np.ndarray, compartment: np.ndarray, smooth: float = 0.1) -> dict:
    """Per compartment: per-ROI r between OASIS spikes and the cell's true spikes, and the median."""
    dff = np.asarray(dff)
    n = dff.shape[0]
    sigma = smooth * frame_rate
    out: dict = {}
    for r in range(dff.shape[1]):
        t, _ = ground_truth.unit_spikes(int(cell_id[r]))
        truth = gaussian_filter1d(frame_counts(t, n, frame_rate), sigma)
        s = gaussian_filter1d(oasis_spikes(dff[:, r], frame_rate, tau_decay), sigma)
        rr = float(np.corrcoef(s, truth)[0, 1]) if s.std() > 0 and truth.std() > 0 else float("nan")
        out.setdefault(str(compartment[r]), []).append(rr)
    return {c: {"r": v, "median_r": float(np.nanmedian(v)) if np.isfinite(v).any() else None}
            for c, v in out.items()}
