"""Figures of tuning analysis: tuning curves per layer before/after learning, and the change per
layer with confidence intervals (Richards et al. 2019 Fig 4)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

LABELS = {"delta_abs_slope": "Δ|slope| at trained orientations (response / deg)",
          "rel_delta_abs_slope": "Δ|slope| / layer response s.d. (1 / deg)",
          "delta_osi": "ΔOSI (1 − circular variance)"}


def tuning_curves_figure(examples: dict, trained, n_units: int = 3):
    """``examples``: {rule: (before, after)}, each a list of per-layer
    :class:`~dendrite_sim.analysis.tuning.TuningCurves`. One row per rule, one column per layer;
    the ``n_units`` units whose |slope| at the trained orientations changed most, before (dashed)
    and after (solid) learning."""
    from dendrite_sim.analysis.tuning import slope_at

    rules = list(examples)
    n_layers = len(examples[rules[0]][0])
    fig, axes = plt.subplots(len(rules), n_layers, figsize=(3.2 * n_layers, 2.4 * len(rules)),
                             squeeze=False, sharex=True)
    for i, rule in enumerate(rules):
        before, after = examples[rule]
        for l in range(n_layers):
            ax = axes[i, l]
            b, a = before[l], after[l]
            change = np.mean([np.abs(slope_at(a, t)) - np.abs(slope_at(b, t)) for t in trained], axis=0)
            top = np.argsort(-np.nan_to_num(np.abs(change)))[:n_units]
            for j, u in enumerate(top):
                color = f"C{j}"
                legend = j == 0 and i == 0 and l == n_layers - 1     # one legend, top right
                ax.plot(b.values, b.mean[:, u], "--", color=color, lw=1,
                        label="before" if legend else None)
                ax.plot(a.values, a.mean[:, u], "-", color=color, lw=1.5,
                        label="after" if legend else None)
            for t in trained:
                ax.axvline(t, color="0.6", lw=0.8, zorder=0)
            ax.set_title(f"{rule}, hidden layer {l + 1}", fontsize=9)
            if i == len(rules) - 1:
                ax.set_xlabel("orientation (deg)")
            ax.set_ylabel("response (rate)")
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    fig.suptitle("Tuning curves before (dashed) and after (solid) learning; grey: trained orientations")
    fig.tight_layout()
    return fig


def tuning_change_figure(per_rule: dict, stats=("rel_delta_abs_slope", "delta_osi")):
    """Mean change per hidden layer with its bootstrap 95 % CI, one line per rule, one panel per
    statistic (``per_rule[rule]["layers"][l][stat] = {mean, lo, hi}``)."""
    fig, axes = plt.subplots(1, len(stats), figsize=(5.0 * len(stats), 3.6), squeeze=False)
    rules = list(per_rule)
    for k, stat in enumerate(stats):
        ax = axes[0, k]
        for i, rule in enumerate(rules):
            layers = per_rule[rule]["layers"]
            x = np.arange(1, len(layers) + 1) + 0.06 * (i - (len(rules) - 1) / 2)
            m = np.array([la[stat]["mean"] for la in layers])
            lo = np.array([la[stat]["lo"] for la in layers])
            hi = np.array([la[stat]["hi"] for la in layers])
            ax.errorbar(x, m, yerr=[m - lo, hi - m], marker="o", ms=4, capsize=3, color=f"C{i}",
                        label=rule if k == len(stats) - 1 else None)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks(np.arange(1, len(per_rule[rules[0]]["layers"]) + 1))
        ax.set_xlabel("hidden layer")
        ax.set_ylabel(LABELS.get(stat, stat))
        ax.set_title(LABELS.get(stat, stat).split(" (")[0] + " per layer, 95 % CI")
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    fig.suptitle("Tuning change up the hierarchy after learning the orientation discrimination")
    fig.tight_layout()
    return fig
