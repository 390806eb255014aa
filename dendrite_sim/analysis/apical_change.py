"""Apical-change statistics: does apical activity change differently in neurons tuned to a
reinforced stimulus and in neurons tuned to another (Richards et al. 2019, Fig 5)?

The same functions take per-trial responses of model neurons (apical potentials, plateau or
burst probabilities) and of imaged ROIs (ΔF/F per trial, e.g. from
:func:`dendrite_sim.analysis.tuning.nwb_responses`), so one analysis runs on simulated and on
real sessions.

* :func:`preferred_stimulus` — each neuron's preferred stimulus: the stimulus value with the
  largest mean response (the peak of its tuning curve, :func:`~.tuning.tuning_curves`).
* :func:`trial_mean` — each neuron's mean response over a selection of trials: those of its
  ``preferred`` stimulus, those of the ``reinforced`` stimulus, ``all`` trials, or those of
  one named stimulus.
* :func:`group_change` — per group of neurons (tuned to the reinforced stimulus, tuned to the
  other), the change after − before of each neuron's mean response: mean, percentile-bootstrap
  95 % CI over neurons (:func:`~.tuning.bootstrap_ci`), a sign-flip test of a zero mean change
  (:func:`sign_flip_test`), and the two-sided permutation p-value of the difference of the two
  groups' mean changes (:func:`~.tuning.permutation_test`).

Sign-flip test (paired, one sample): under H₀ the change d_i of each neuron is symmetric about
0, so p = (1 + #{|mean(s ⊙ d)| ≥ |mean(d)|}) / (n_perm + 1) over random signs s ∈ {±1}ⁿ.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.analysis.tuning import bootstrap_ci, permutation_test, tuning_curves

SELECTIONS = ("preferred", "reinforced", "other", "all")


def preferred_stimulus(responses, stimulus) -> np.ndarray:
    """Per neuron (column of ``responses``, trials × neurons), the stimulus value of ``stimulus``
    (one per trial) with the largest mean response."""
    tc = tuning_curves(responses, stimulus, period=None)
    return tc.values[np.argmax(tc.mean, axis=0)]


def trial_mean(responses, stimulus, selection: str, preferred=None, reinforced=None) -> np.ndarray:
    """Per neuron, the mean response over the selected trials (see the module docstring).

    ``selection``: ``"preferred"`` (each neuron's ``preferred`` stimulus), ``"reinforced"``,
    ``"other"`` (trials of any stimulus but ``reinforced``) or ``"all"``."""
    r = np.asarray(responses, dtype=np.float64)
    s = np.asarray(stimulus)
    if selection == "all":
        return np.nanmean(r, axis=0)
    if selection in ("reinforced", "other"):
        sel = (s == reinforced) if selection == "reinforced" else (s != reinforced)
        return np.nanmean(r[sel], axis=0)
    if selection != "preferred":
        raise ValueError(f"selection: expected one of {SELECTIONS}, got {selection!r}")
    pref = np.asarray(preferred)
    mask = s[:, None] == pref[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(np.where(mask, r, 0.0), axis=0) / mask.sum(axis=0)


def sign_flip_test(x, rng: np.random.Generator, n_perm: int = 10_000) -> float:
    """Two-sided p-value of a zero mean of paired differences ``x`` (random sign flips, +1
    correction; NaNs dropped)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    obs = abs(x.mean())
    signs = rng.integers(0, 2, size=(n_perm, x.size)) * 2.0 - 1.0
    null = np.abs((signs * x).mean(axis=1))
    return float((1 + np.sum(null >= obs - 1e-12)) / (n_perm + 1))


def _summary(before, after, rng, n_boot, n_perm, level):
    d = after - before
    mean, lo, hi = bootstrap_ci(d, rng, n_boot=n_boot, level=level)
    ok = np.isfinite(d)
    return {"n": int(ok.sum()), "mean_before": float(np.mean(before[ok])) if ok.any() else float("nan"),
            "mean_after": float(np.mean(after[ok])) if ok.any() else float("nan"),
            "mean_change": mean, "ci_low": lo, "ci_high": hi,
            "p_zero_change": sign_flip_test(d, rng, n_perm)}


def group_change(before, after, tuned_to_reinforced, rng: np.random.Generator, n_boot: int = 10_000,
                 n_perm: int = 10_000, level: float = 0.95) -> dict:
    """Per group, the change of each neuron's mean response (see the module docstring).

    ``before``, ``after``: (neurons,) mean responses in the two sessions; ``tuned_to_reinforced``
    (neurons,) bool. Returns ``{"reinforced": {...}, "other": {...}, "difference", "p_difference"}``
    with, per group, ``n``, ``mean_before``, ``mean_after``, ``mean_change``, ``ci_low``,
    ``ci_high`` (percentile bootstrap over neurons at ``level``) and ``p_zero_change``;
    ``difference`` is mean change (reinforced group) − mean change (other group) and
    ``p_difference`` its permutation p-value (NaN when a group is empty)."""
    b, a = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    g = np.asarray(tuned_to_reinforced, dtype=bool)
    if not (b.shape == a.shape == g.shape) or b.ndim != 1:
        raise ValueError(f"expected before, after and groups of one equal length, got {b.shape}, "
                         f"{a.shape}, {g.shape}")
    out = {"reinforced": _summary(b[g], a[g], rng, n_boot, n_perm, level),
           "other": _summary(b[~g], a[~g], rng, n_boot, n_perm, level)}
    d = a - b
    dr, do = d[g][np.isfinite(d[g])], d[~g][np.isfinite(d[~g])]
    if dr.size and do.size:
        out["difference"] = float(dr.mean() - do.mean())
        out["p_difference"] = permutation_test(dr, do, rng, n_perm=n_perm)
    else:
        out["difference"] = out["p_difference"] = float("nan")
    return out
