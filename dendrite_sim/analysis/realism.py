"""Realism statistics of ΔF/F traces, as the OpenScope credit-assignment analysis defines them.

The definitions follow the analysis code of the OpenScope "credit assignment" recordings
(Allen Institute, DANDI 000037; Gillon et al. 2023 Sci Data 10:287, 2024 J Neurosci 44:e1009232023;
``colleenjg/OpenScope_CA_Analysis``), applied to each ROI's whole ΔF/F trace x_t:

    m      = median(x)
    L      = {x_t : x_t < m}                         the values below the median
    N      = L ∪ {2m − x : x ∈ L}                    mirrored around the median
    σ      = s.d. of N                               noise σ (ΔF/F per frame)
    θ      = 95th percentile of N                    the noise threshold
    S      = {x_t : x_t > θ}
    SNR    = mean(S) / σ
    event  = mean(S) − m                              event size (ΔF/F)

For white Gaussian noise of any σ with median 0: θ = 1.645 σ and mean(S) = σ φ(1.645)/0.05 =
2.063 σ, so **pure noise gives SNR ≈ 2.07** and event size ≈ 2.06 σ; activity adds values above
θ and raises both.

Further statistics:

* pairwise correlation: Pearson r of the ΔF/F traces of every pair of ROIs of one compartment
  that belong to *different* cells (``mean_r``, and ``frac_r_above_0.3``, the fraction of pairs
  with r > 0.3);
* soma–tuft coupling: r between a cell's somatic ROI and each of its own apical ROIs (mean);
* CASCADE noise level (Rupprecht et al. 2021 Nat Neurosci 24:1324):
  ν = 100 · median_t |x_{t+1} − x_t| / √f  (% ΔF/F per √Hz, f the frame rate;
  :func:`dendrite_sim.imaging.dff.noise_level`); real 30-Hz GCaMP6 recordings lie in 1–10.

Reference bands (:data:`REFERENCE`): the ranges the OpenScope recordings show per compartment
(issue 13; Gillon et al. 2023, 2024): somatic noise σ 0.05–0.10 and dendritic 0.11–0.31 ΔF/F;
median SNR somata 2.6–3.8, dendrites 2.3–2.7; event size somata 0.14–0.30, dendrites
0.30–0.65; weak correlations between ROIs of different cells (mean r below 0.1, almost no pairs
above 0.3 — taken here as under 2 % of pairs); ν 1–10 (Rupprecht et al. 2021). A session's
σ, SNR, event size and ν are the medians over its ROIs of a compartment.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.imaging.dff import noise_level

#: (low, high) per statistic and compartment; ``None`` = no bound on that side.
REFERENCE: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "soma": {"noise_sd": (0.05, 0.10), "snr": (2.6, 3.8), "event_size": (0.14, 0.30),
             "mean_r": (None, 0.1), "frac_r_above_0.3": (None, 0.02), "nu": (1.0, 10.0)},
    "apical": {"noise_sd": (0.11, 0.31), "snr": (2.3, 2.7), "event_size": (0.30, 0.65),
               "mean_r": (None, 0.1), "frac_r_above_0.3": (None, 0.02), "nu": (1.0, 10.0)},
}
#: Statistics per compartment, in table order, with their printed names.
STATISTICS = {"noise_sd": "noise σ", "snr": "SNR", "event_size": "event size", "mean_r": "mean r",
              "frac_r_above_0.3": "r>0.3", "nu": "CASCADE ν", "soma_tuft_r": "soma–tuft r"}
#: Pure Gaussian noise: E[x | x > 1.645 σ] / σ = φ(z₉₅)/0.05.
PURE_NOISE_SNR = 2.0627


def noise_sigma(x: np.ndarray) -> tuple[float, float]:
    """(median, σ) of a trace: σ is the s.d. of the values below the median mirrored around it."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    m = float(np.median(x))
    lo = x[x < m]
    if lo.size == 0:
        return m, 0.0
    mirrored = np.concatenate([lo, 2.0 * m - lo])
    return m, float(np.std(mirrored))


def roi_statistics(x: np.ndarray) -> dict[str, float]:
    """``noise_sd`` (σ), ``threshold`` (θ), ``snr`` and ``event_size`` of one trace (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    m, sd = noise_sigma(x)
    nan = float("nan")
    if not np.isfinite(sd) or sd <= 0:
        return {"median": m, "noise_sd": sd, "threshold": nan, "snr": nan, "event_size": nan}
    lo = x[x < m]
    theta = float(np.percentile(np.concatenate([lo, 2.0 * m - lo]), 95))
    above = x[x > theta]
    mean_s = float(above.mean()) if above.size else nan
    return {"median": m, "noise_sd": sd, "threshold": theta, "snr": mean_s / sd, "event_size": mean_s - m}


def pairwise_correlations(dff: np.ndarray, cell_id: np.ndarray) -> np.ndarray:
    """Pearson r of every pair of columns of ``dff`` (frames × ROIs) from different cells (1-D)."""
    dff = np.asarray(dff, dtype=np.float64)
    cell_id = np.asarray(cell_id)
    if dff.shape[1] < 2:
        return np.zeros(0)
    z = dff - dff.mean(axis=0)
    sd = np.sqrt((z * z).sum(axis=0))
    ok = sd > 0
    z, cell_id = z[:, ok] / sd[ok], cell_id[ok]
    r = z.T @ z
    iu = np.triu_indices(r.shape[0], 1)
    other = cell_id[iu[0]] != cell_id[iu[1]]
    return np.clip(r[iu][other], -1.0, 1.0)


def soma_tuft_correlations(dff: np.ndarray, compartment: np.ndarray, cell_id: np.ndarray) -> np.ndarray:
    """r between each cell's somatic ROI and each of its own apical ROIs (1-D, one per apical ROI)."""
    compartment, cell_id = np.asarray(compartment).astype(str), np.asarray(cell_id)
    soma = {int(c): k for k, (c, comp) in enumerate(zip(cell_id, compartment)) if comp == "soma"}
    out = []
    for k in np.flatnonzero(compartment == "apical"):
        s = soma.get(int(cell_id[k]))
        if s is not None:
            a, b = np.asarray(dff[:, s], np.float64), np.asarray(dff[:, k], np.float64)
            if a.std() > 0 and b.std() > 0:
                out.append(float(np.corrcoef(a, b)[0, 1]))
    return np.asarray(out)


def session_statistics(dff: np.ndarray, frame_rate: float, compartment: np.ndarray,
                       cell_id: np.ndarray | None = None) -> dict:
    """Per compartment present in ``compartment``: per-ROI arrays ``noise_sd``, ``snr``,
    ``event_size``, ``nu``; the pairwise ``r`` between ROIs of different cells; and for
    ``apical``, ``soma_tuft_r``. ``cell_id`` defaults to one cell per ROI."""
    dff = np.asarray(dff)
    compartment = np.asarray(compartment).astype(str)
    cell_id = np.arange(dff.shape[1]) if cell_id is None else np.asarray(cell_id)
    out = {}
    for comp in dict.fromkeys(compartment):
        sel = np.flatnonzero(compartment == comp)
        per = [roi_statistics(dff[:, r]) for r in sel]
        out[comp] = {k: np.array([p[k] for p in per]) for k in ("noise_sd", "snr", "event_size")}
        out[comp]["nu"] = np.array([noise_level(np.asarray(dff[:, r], np.float64), frame_rate) for r in sel])
        out[comp]["r"] = pairwise_correlations(dff[:, sel], cell_id[sel])
        if comp == "apical":
            out[comp]["soma_tuft_r"] = soma_tuft_correlations(dff, compartment, cell_id)
    return out


def _median(a) -> float | None:
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else None


def summarise(stats: dict) -> dict:
    """Per compartment: the session values of :data:`STATISTICS` (medians over ROIs; mean r and
    the fraction above 0.3 over pairs; mean soma–tuft r), the number of ROIs and pairs, and
    ``in_band`` per statistic that has a reference band (None where it could not be computed)."""
    out = {}
    for comp, s in stats.items():
        r = s["r"]
        v = {"n_rois": int(s["noise_sd"].size), "n_pairs": int(r.size),
             "noise_sd": _median(s["noise_sd"]), "snr": _median(s["snr"]),
             "event_size": _median(s["event_size"]), "nu": _median(s["nu"]),
             "mean_r": float(r.mean()) if r.size else None,
             "frac_r_above_0.3": float(np.mean(r > 0.3)) if r.size else None}
        if "soma_tuft_r" in s:
            t = s["soma_tuft_r"]
            v["soma_tuft_r"] = float(t.mean()) if t.size else None
        bands = REFERENCE.get(comp, {})
        v["in_band"] = {k: in_band(v.get(k), band) for k, band in bands.items()}
        out[comp] = v
    return out


def in_band(value, band) -> bool | None:
    if value is None or not np.isfinite(value):
        return None
    lo, hi = band
    return bool((lo is None or value >= lo) and (hi is None or value <= hi))


def format_band(band) -> str:
    lo, hi = band
    if lo is None:
        return f"< {hi:g}"
    if hi is None:
        return f"> {lo:g}"
    return f"{lo:g}–{hi:g}"
