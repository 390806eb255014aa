"""Tuning curves and their change between two sessions, for model activity or imaged ΔF/F.

The same functions take responses of model units (rates, potentials, burst probabilities) and of
ROIs read from an NWB file (:func:`nwb_responses`), so one analysis runs on simulated and on
real data (Richards et al. 2019 Fig 4: tuning changes up a trained hierarchy).

* :func:`tuning_curves` — mean, s.e.m. and count of the responses (trials × units) to each value
  of a stimulus parameter (e.g. orientation in degrees).
* :func:`preferred` — preferred value: the vector average on the circle of period ``period``
  (180° for orientation, 360° for direction), θ_pref = arg(Σ_k r_k e^{2πiθ_k/period}) ·
  period/2π; or the arg max of the curve (``method = "peak"``).
* :func:`selectivity` — the global selectivity index 1 − circular variance,
  |Σ r_k e^{2πiθ_k/period}| / Σ r_k (OSI for period 180°, DSI for 360°; responses shifted to be
  ≥ 0 first when ``rectify``), and the classic peak index
  (R_pref − R_null)/(R_pref + R_null), R_null half a period away (interpolated).
* :func:`slope_at` — dR/dθ at a given value (per degree) from a periodic cubic spline through
  the curve: the change of slope at the trained orientation is the quantity of perceptual
  learning studies (Schoups et al. 2001; Richards et al. 2019 Fig 4).
* :func:`tuning_change` — per unit, between two sessions: Δ slope (signed and of |slope|) at a
  value, Δ selectivity, shift of preferred value (wrapped to ±period/2), Δ mean response.
* :func:`bootstrap_ci`, :func:`permutation_test` — a statistic's percentile-bootstrap
  confidence interval over units (or any sample), and the two-sided permutation p-value of a
  difference of means between two groups (e.g. units tuned to the reinforced stimulus and the
  others).
* :func:`nwb_responses` — per trial and ROI, the mean ΔF/F in a window after each trial's start
  minus a baseline before it, with the trials' stimulus column, from any NWB file with a
  ``DfOverF`` ``RoiResponseSeries`` and a trials table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TuningCurves:
    values: np.ndarray      # (V,) stimulus values, sorted
    mean: np.ndarray        # (V, units)
    sem: np.ndarray         # (V, units); NaN where fewer than two trials
    count: np.ndarray       # (V,) trials per value
    period: float | None    # circular period of the stimulus parameter (None: not circular)


def tuning_curves(responses, stimulus, period: float | None = 180.0) -> TuningCurves:
    """Mean response of every unit to each stimulus value. ``responses`` (trials, units),
    ``stimulus`` (trials,); values are taken modulo ``period`` when it is given."""
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    s = np.asarray(stimulus, dtype=np.float64)
    if s.shape != (r.shape[0],):
        raise ValueError(f"expected one stimulus value per trial ({r.shape[0]}), got shape {s.shape}")
    if period is not None:
        s = np.mod(s, period)
    values, inv = np.unique(s, return_inverse=True)
    count = np.bincount(inv, minlength=values.size)
    mean = np.zeros((values.size, r.shape[1]))
    np.add.at(mean, inv, r)
    mean /= count[:, None]
    sq = np.zeros_like(mean)
    np.add.at(sq, inv, (r - mean[inv]) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(sq / np.maximum(count - 1, 1)[:, None])
        sem = np.where(count[:, None] > 1, sd / np.sqrt(count)[:, None], np.nan)
    return TuningCurves(values, mean, sem, count, period)


def _phases(tc: TuningCurves) -> np.ndarray:
    if tc.period is None:
        raise ValueError("a circular statistic needs a circular stimulus (period)")
    return np.exp(2j * np.pi * tc.values / tc.period)


def _rectified(tc: TuningCurves, rectify: bool) -> np.ndarray:
    return tc.mean - np.minimum(tc.mean.min(axis=0), 0.0) if rectify else tc.mean


def preferred(tc: TuningCurves, method: str = "vector", rectify: bool = True) -> np.ndarray:
    """Preferred stimulus value of every unit (see the module docstring)."""
    if method == "peak":
        return tc.values[np.argmax(tc.mean, axis=0)]
    z = (_rectified(tc, rectify) * _phases(tc)[:, None]).sum(axis=0)
    return np.mod(np.angle(z) * tc.period / (2 * np.pi), tc.period)


def selectivity(tc: TuningCurves, kind: str = "global", rectify: bool = True) -> np.ndarray:
    """OSI/DSI of every unit: ``"global"`` (1 − circular variance) or ``"peak"``."""
    r = _rectified(tc, rectify)
    if kind == "global":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs((r * _phases(tc)[:, None]).sum(axis=0)) / r.sum(axis=0)
    if kind != "peak":
        raise ValueError(f"kind: expected 'global' or 'peak', got {kind!r}")
    pref = tc.values[np.argmax(r, axis=0)]
    r_pref = r.max(axis=0)
    r_null = np.array([_spline(tc.values, r[:, u], tc.period)(np.mod(pref[u] + tc.period / 2, tc.period))
                       for u in range(r.shape[1])])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (r_pref - r_null) / (r_pref + r_null)


def _spline(values, curve, period):
    from scipy.interpolate import CubicSpline

    if period is None:
        return CubicSpline(values, curve)
    x = np.concatenate([values, [values[0] + period]])
    y = np.concatenate([curve, [curve[0]]])
    cs = CubicSpline(x, y, bc_type="periodic")
    return lambda t, nu=0: cs(np.mod(np.asarray(t) - values[0], period) + values[0], nu)


def slope_at(tc: TuningCurves, value: float) -> np.ndarray:
    """dR/dθ of every unit's curve at ``value`` (response units per stimulus unit)."""
    return np.array([float(_spline(tc.values, tc.mean[:, u], tc.period)(value, 1)) for u in range(tc.mean.shape[1])])


def tuning_change(before: TuningCurves, after: TuningCurves, value: float) -> dict:
    """Per unit: changes between two sessions at the trained ``value`` (module docstring)."""
    if not np.array_equal(before.values, after.values) or before.period != after.period:
        raise ValueError("both sessions need the same stimulus values")
    s0, s1 = slope_at(before, value), slope_at(after, value)
    p0, p1 = preferred(before), preferred(after)
    half = before.period / 2
    return {"slope_before": s0, "slope_after": s1, "delta_slope": s1 - s0,
            "delta_abs_slope": np.abs(s1) - np.abs(s0),
            "delta_selectivity": selectivity(after) - selectivity(before),
            "delta_preferred": np.mod(p1 - p0 + half, before.period) - half,
            "delta_mean": after.mean.mean(axis=0) - before.mean.mean(axis=0)}


def bootstrap_ci(sample, rng: np.random.Generator, n_boot: int = 10_000, level: float = 0.95,
                 statistic=np.mean) -> tuple[float, float, float]:
    """``(statistic, low, high)``: percentile bootstrap over the first axis (NaNs dropped)."""
    x = np.asarray(sample, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boots = statistic(x[idx], axis=1)
    a = (1 - level) / 2
    return float(statistic(x)), float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def permutation_test(a, b, rng: np.random.Generator, n_perm: int = 10_000) -> float:
    """Two-sided p-value of mean(a) − mean(b) under random relabelling (with the +1 correction)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    pooled = np.concatenate([a, b])
    obs = abs(a.mean() - b.mean())
    perm = np.argsort(rng.random((n_perm, pooled.size)), axis=1)
    pa = pooled[perm[:, :a.size]].mean(axis=1)
    pb = pooled[perm[:, a.size:]].mean(axis=1)
    return float((1 + np.sum(np.abs(pa - pb) >= obs - 1e-12)) / (n_perm + 1))


def nwb_responses(path, column: str, window: float = 0.5, baseline: float = 0.5,
                  series: str = "RoiResponseSeries") -> tuple[np.ndarray, np.ndarray]:
    """``(responses (trials, ROIs), stimulus (trials,))`` from an NWB file: the mean ΔF/F of
    ``processing/ophys/DfOverF/<series>`` in [start, start + window) s minus its mean in
    [start − baseline, start), for every row of the trials table, and the row's ``column``."""
    from pynwb import NWBHDF5IO

    from dendrite_sim.analysis.imaging_responses import frame_responses

    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        rrs = nwb.processing["ophys"]["DfOverF"][series]
        dff = np.asarray(rrs.data[:], dtype=np.float64)
        t = np.asarray(rrs.timestamps[:]) if rrs.timestamps is not None else \
            rrs.starting_time + np.arange(dff.shape[0]) / rrs.rate
        if nwb.trials is None or column not in nwb.trials.colnames:
            have = [] if nwb.trials is None else list(nwb.trials.colnames)
            raise ValueError(f"{path}: expected a trials table with column {column!r}; it has {have}")
        start = np.asarray(nwb.trials["start_time"][:], dtype=np.float64)
        stim = np.asarray(nwb.trials[column][:])
    if dff.ndim == 1:
        dff = dff[:, None]
    return frame_responses(dff, t, start, window, baseline), stim
