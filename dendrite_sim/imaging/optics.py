"""Optics and detection: frame integration, neuropil, drift, photon shot noise and read noise.

For one ROI with noiseless brightness ratio r(t) = b(c(t)) / b(c_rest) (see
:mod:`dendrite_sim.imaging.indicators`), the expected photon count of frame k is

    λ_cell[k]   = P · ⟨r⟩_k · d[k]                     ⟨·⟩_k: mean over the frame's exposure
    λ_np[k]     = ρ P · n[k] · d[k]                    neuropil per ROI area, n = 1 + g·(mean ΔF/F of the plane)
    F_roi[k]    ~ Poisson(λ_cell + α λ_np) + N(0, σ_read²)
    F_np[k]     ~ (Poisson(A λ_np) + N(0, A σ_read²)) / A          annulus of A ROI areas

P: photons per frame of the cell at rest; ρ: neuropil brightness relative to the cell; α:
contamination ratio (0.7: Kerlin et al. 2010, Chen et al. 2013); d: slow multiplicative drift
(bleaching e-fold with τ_bleach plus an Ornstein–Uhlenbeck wander). The Allen pipeline's
neuropil-corrected trace is F_c = F_roi − α F_np, whose baseline is P.

Requested noise level: with neither drift nor activity, the s.d. of F_c / P is

    s² = [P (1 + αρ + α²ρ/A) + σ_read² (1 + α²/A)] / P²,

so the photon count that gives a requested baseline ΔF/F₀ s.d. s solves s² P² − B P − C = 0,
P = (B + √(B² + 4 s² C)) / (2 s²), B = 1 + αρ + α²ρ/A, C = σ_read²(1 + α²/A).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class OpticsParams:
    photons: float = 1000.0            # P: photons per frame of the resting cell in the ROI
    read_noise: float = 10.0           # σ_read: detector read noise per ROI per frame (photons)
    neuropil_ratio: float = 0.5        # ρ: neuropil brightness per ROI area / resting cell
    neuropil_coefficient: float = 0.7  # α
    annulus_ratio: float = 4.0         # A: neuropil annulus area / ROI area
    drift_sd: float = 0.02             # s.d. of the OU wander (fraction of F)
    drift_tau: float = 300.0           # s
    bleach_fraction: float = 0.05      # asymptotic fractional loss to bleaching
    bleach_tau: float = 1800.0         # s


def photons_for_noise(noise_sd: float, p: OpticsParams) -> float:
    """Resting photons per frame P giving baseline ΔF/F₀ s.d. ``noise_sd`` (module equation)."""
    a, rho, A = p.neuropil_coefficient, p.neuropil_ratio, p.annulus_ratio
    B = 1.0 + a * rho + a * a * rho / A
    C = p.read_noise ** 2 * (1.0 + a * a / A)
    s2 = noise_sd ** 2
    return float((B + np.sqrt(B * B + 4.0 * s2 * C)) / (2.0 * s2))


def baseline_noise(p: OpticsParams) -> float:
    """The baseline ΔF/F₀ s.d. that ``p.photons`` gives (inverse of :func:`photons_for_noise`)."""
    a, rho, A = p.neuropil_coefficient, p.neuropil_ratio, p.annulus_ratio
    var = p.photons * (1 + a * rho + a * a * rho / A) + p.read_noise ** 2 * (1 + a * a / A)
    return float(np.sqrt(var) / p.photons)


def frame_average(x: np.ndarray, subframes: int) -> np.ndarray:
    """Mean over each frame's ``subframes`` samples (frame integration); last axis is time."""
    x = np.asarray(x)
    n = x.shape[-1] // subframes
    return x[..., : n * subframes].reshape(*x.shape[:-1], n, subframes).mean(axis=-1)


def subframe_times(n_frames: int, frame_rate: float, subframes: int) -> tuple[float, float, int]:
    """(t0, dt, n) of the exposure samples: ``subframes`` midpoints per frame [k/f, (k+1)/f)."""
    dt = 1.0 / (frame_rate * subframes)
    return 0.5 * dt, dt, n_frames * subframes


def drift(n_frames: int, frame_rate: float, p: OpticsParams, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative baseline d[k] = (1 − β(1 − e^{−t/τ_b})) (1 + u[k]); u an OU process.

    u is stationary with s.d. ``drift_sd`` and correlation time ``drift_tau``, sampled exactly
    (AR(1) with coefficient e^{−Δt/τ}).
    """
    t = np.arange(n_frames) / frame_rate
    bleach = 1.0 - p.bleach_fraction * (1.0 - np.exp(-t / p.bleach_tau))
    if p.drift_sd == 0.0 or n_frames == 0:
        return bleach
    q = np.exp(-1.0 / (frame_rate * p.drift_tau))
    z = rng.standard_normal(n_frames) * p.drift_sd * np.sqrt(1.0 - q * q)
    z[0] = rng.standard_normal() * p.drift_sd
    return bleach * (1.0 + _ar1(z, q))


@njit(cache=True, error_model="numpy")
def _ar1(z, q):
    """u[0] = z[0], u[k] = q u[k−1] + z[k]."""
    u = np.empty_like(z)
    acc = 0.0
    for k in range(z.shape[0]):
        acc = q * acc + z[k]
        u[k] = acc
    return u


def detect(ratio: np.ndarray, neuropil: np.ndarray, d: np.ndarray, p: OpticsParams,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Photon counts of the ROI and of its neuropil annulus (per ROI area), frames along axis 0.

    ``ratio``: noiseless frame-averaged brightness of the cell relative to rest; ``neuropil``:
    the plane's neuropil brightness relative to rest; ``d``: drift factor.
    """
    lam_cell = p.photons * ratio * d
    lam_np = p.neuropil_ratio * p.photons * neuropil * d
    roi = rng.poisson(lam_cell + p.neuropil_coefficient * lam_np).astype(np.float64)
    roi += rng.standard_normal(roi.shape) * p.read_noise
    A = p.annulus_ratio
    ann = rng.poisson(A * lam_np).astype(np.float64)
    ann += rng.standard_normal(ann.shape) * (p.read_noise * np.sqrt(A))
    return roi, ann / A
