"""The measured version of Richards et al. 2019 Fig 2 (bias vs variance per rule), the alignment
curves during training, variance against width, and the Fig 3 decomposition."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

FLOOR = 1e-8  # exact zeros (backprop) are drawn on the axis floor


def _style(i: int) -> dict:
    """A distinct colour (20 of them) and, past ten rules, a dashed line, for rule number i."""
    return {"color": plt.get_cmap("tab20")(2 * (i % 10) + (i // 10) % 2),
            "linestyle": "-" if i < 10 else "--"}


def rule_map_figure(per_rule: dict, curves: dict, widths: dict):
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    ax = axes[0, 0]
    for i, (name, r) in enumerate(per_rule.items()):
        c = _style(i)["color"]
        if r["variance"] is None:                 # the rule changes nothing: no estimator
            continue
        x, y = max(r["variance"], FLOOR), max(r["bias"], FLOOR)
        ax.errorbar(x, y, xerr=r["variance_sd"], yerr=r["bias_sd"], fmt="o", color=c, capsize=3,
                    label=f"{name} ({r['angle_deg']:.0f}°)")
        if "after_training" in r and r["after_training"]["variance"] is not None:   # None: no update
            t = r["after_training"]
            xt, yt = max(t["variance"], FLOOR), max(t["bias"], FLOOR)
            ax.plot(xt, yt, "o", mfc="none", color=c)
            ax.annotate("", xy=(xt, yt), xytext=(x, y),
                        arrowprops=dict(arrowstyle="->", color=c, lw=0.8, alpha=0.6))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(left=FLOOR / 2)
    ax.set_ylim(bottom=FLOOR / 2, top=2)
    ax.set_xlabel("variance  tr Cov[ΔW] / ‖E ΔW‖²  (one mini-batch update)")
    ax.set_ylabel("bias  1 − cos²(E ΔW, −∇L)")
    ax.set_title("Rules as gradient estimators (cf. Richards et al. 2019 Fig 2)\n"
                 "filled: at initialisation (mean ± s.d. over seeds); open: after training", fontsize=10)
    ax.legend(fontsize=7, loc="lower right", title="rule (angle between E ΔW and −∇L at initialisation:\n"
              "0° the gradient's direction, 90° orthogonal, >90° uphill)", title_fontsize=7)

    ax = axes[0, 1]
    for i, (name, c) in enumerate(curves.items()):
        ax.plot(c["step"], c["angle_hidden_deg"], label=name, **_style(i))
    ax.axhline(90, color="0.6", lw=0.8, ls="--")
    ax.text(0.01, 0.99, "90°: orthogonal to the gradient (no descent)", transform=ax.transAxes, va="top",
            fontsize=7, color="0.4")
    ax.set_xlabel("training step")
    ax.set_ylabel("angle of the first layer's mean update to −∇L (deg)")
    ax.set_ylim(0, 120)
    ax.set_title("Alignment during training")
    handles, labels = ax.get_legend_handles_labels()

    ax = axes[1, 0]
    for i, (name, w) in enumerate(widths.items()):
        ax.plot(w["width"], np.maximum(w["variance"], FLOOR), marker="o", label=name,
                **_style(list(per_rule).index(name) if name in per_rule else i))
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer width")
    ax.set_ylabel("variance")
    ax.set_title("Estimator variance grows with the number of perturbed units")

    ax = axes[1, 1]
    names = list(per_rule)
    par = [per_rule[n]["decomposition"]["parallel_fraction"] for n in names]
    orth = [per_rule[n]["decomposition"]["orthogonal_fraction"] for n in names]
    ax.bar(names, par, label="along −∇L")
    ax.bar(names, orth, bottom=par, label="orthogonal")
    ax.set_xlabel("rule")
    ax.set_ylabel("fraction of ‖E ΔW‖²")
    ax.set_ylim(0, 1.3)                          # room above the bars (they sum to 1) for the legend
    ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    ax.set_title("Fig 3 decomposition of the mean update")
    ax.tick_params(axis="x", rotation=45)
    for lab in ax.get_xticklabels():
        lab.set_horizontalalignment("right")
    fig.tight_layout(rect=(0, 0, 0.82, 1))
    if handles:      # one legend for the line panels (alignment, variance against width)
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.82, 0.5), fontsize=8, frameon=False,
                   title="rule (line panels)")
    return fig
