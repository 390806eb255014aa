"""ΔF/F with a long-window baseline, as the Allen Brain Observatory pipeline computes it.

AllenSDK ``compute_dff_windowed_median`` (de Vries et al. 2020 Nat Neurosci 23:138), applied to
a neuropil-corrected trace F:

    F_long = median over a long window (5401 frames ≈ 180 s at 30 Hz)
    σ_F    = noise_std(F)
    D₁     = (F − F_long) / max(F_long, σ_F)
    D_short = median of D₁ over a short window (101 frames ≈ 3.4 s)
    ΔF/F   = D₁ − min(D_short, 2.5 noise_std(D₁))

noise_std(x) = 1.4826 · median|y − median(y)| of the high-passed y = x − median₃₁(x) (31 frames),
after dropping positive outliers (y ≥ 1.5 |min y|, i.e. transients).

Windows are given in seconds and turned into odd frame counts at the frame rate; running
medians are exact (SciPy's 1-D rank filter), with the ends reflected.

:func:`noise_level` is the standardised noise ν = median|ΔF/F_{k+1} − ΔF/F_k| / √f (in % per
√Hz) of Rupprecht et al. 2021 Nat Neurosci 24:1324, comparable across frame rates.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter


def odd_frames(seconds: float, frame_rate: float) -> int:
    """The odd number of frames closest to ``seconds`` at ``frame_rate`` (≥ 1)."""
    n = max(1, int(round(seconds * frame_rate)))
    return n if n % 2 else n + 1


def windowed_median(x: np.ndarray, window: int) -> np.ndarray:
    """Exact running median of a 1-D trace over ``window`` (odd) samples, ends reflected."""
    return median_filter(np.asarray(x, dtype=np.float64), size=int(window) | 1, mode="reflect")


def robust_std(x: np.ndarray) -> float:
    """1.4826 × median absolute deviation (= s.d. for Gaussian data)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def noise_std(x: np.ndarray, filter_length: int = 31) -> float:
    """Robust s.d. of the fast fluctuations of ``x`` (see module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    y = x - median_filter(x, size=int(filter_length) | 1, mode="nearest")
    if y.size == 0:
        return 0.0
    keep = y < 1.5 * abs(y.min())
    return robust_std(y[keep] if keep.any() else y)


def allen_dff(F: np.ndarray, frame_rate: float, long_window: float = 180.0,
              short_window: float = 101 / 30.0, noise_window: float = 31 / 30.0,
              ) -> tuple[np.ndarray, np.ndarray]:
    """ΔF/F and the long baseline F_long of one neuropil-corrected trace (module docstring)."""
    F = np.asarray(F, dtype=np.float64)
    n_long = odd_frames(long_window, frame_rate)
    n_short = odd_frames(short_window, frame_rate)
    n_noise = odd_frames(noise_window, frame_rate)
    base = windowed_median(F, n_long)
    sigma = noise_std(F, n_noise)
    d1 = (F - base) / np.maximum(base, max(sigma, 1e-12))
    d_short = median_filter(d1, size=n_short, mode="reflect")
    dff = d1 - np.minimum(d_short, 2.5 * noise_std(d1, n_noise))
    return dff, base


def noise_level(dff: np.ndarray, frame_rate: float) -> float:
    """Rupprecht et al. 2021 standardised noise ν (% ΔF/F per √Hz) of a ΔF/F trace (fraction)."""
    d = np.diff(np.asarray(dff, dtype=np.float64) * 100.0)
    return float(np.median(np.abs(d)) / np.sqrt(frame_rate))


def noise_level_for_sd(sd: float, frame_rate: float) -> float:
    """ν of white noise with s.d. ``sd``: median|diff| = √2·0.6745·sd."""
    return float(np.sqrt(2.0) * 0.674490 * sd * 100.0 / np.sqrt(frame_rate))
