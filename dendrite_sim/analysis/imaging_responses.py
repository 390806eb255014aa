"""Responses of imaged ROIs to expected and unexpected frames (OpenScope-style analysis).

Mean ΔF/F in a window after frame onsets, the unexpected-stimulus index
USI = (μ_U − μ_D) / pooled s.d. (Gillon et al. 2024), aligned traces, noise levels (s.d. and
Rupprecht et al. 2021's ν) and the size of isolated calcium events per compartment.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.imaging.rois import COMPARTMENTS


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


def rates_by_frame(rates: np.ndarray, frame: np.ndarray) -> dict:
    res = {}
    for key, f in (("expected", "D"), ("unexpected", "U"), ("grey", "G")):
        sel = frame == f
        res[key] = float(rates[sel].mean()) if sel.any() else None
    return res


def finite_median(x):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else None


def pooled_event_metrics(pooled: dict) -> dict:
    size, noise = finite_median(pooled["event"]), finite_median(pooled["noise_sd"])
    return {"dff": size, "dff_noiseless": finite_median(pooled["event_noiseless"]),
            "snr": None if size is None or not noise else size / noise, "n_events": len(pooled["event"])}
