"""The Fig 5 figure (Richards et al. 2019): apical activity before and after learning, per group
of neurons (tuned to the reinforced stimulus / to the other), per model and measure.

Top row: per measure, the mean change after − before of each group with its bootstrap 95 % CI
(error bars), one marker per model, the permutation p of the group difference above it; the
groups' legend below the figure.
Bottom row: per measure, before/after distributions of the neurons' mean responses (histograms,
one colour per group, solid before, dashed after) of the first model that has the measure.
"""

from __future__ import annotations

import numpy as np

UNITS = {"v_apical_stimulus": "apical potential, stimulus window (model units)",
         "v_apical_reward": "apical potential, reward window (model units)",
         "plateau_stimulus": "plateau α = σ(Ā), stimulus window",
         "v_apical_feedback": "apical potential, feedback window (model units)",
         "plateau_feedback": "σ(Ā), feedback window",
         "rate": "somatic rate, stimulus window (Hz)",
         "dff_apical": "apical ΔF/F response",
         "apical_feedback": "attentional feedback fb (model units)",
         "tag": "tag fb · f′(a) (model units)"}
GROUPS = (("reinforced", "tuned to reinforced", "tab:red"), ("other", "tuned to other", "tab:blue"))


def apical_change_figure(data: dict, trials: str, reinforced_orientation: float):
    """``data``: model → {"substrate", "measures": measure → {before, after, group, stats}}."""
    from matplotlib.figure import Figure

    names = []
    for d in data.values():
        names += [k for k in d["measures"] if k not in names]
    n = max(1, len(names))
    fig = Figure(figsize=(3.4 * n, 6.4))
    axes = fig.subplots(2, n, squeeze=False)
    models = list(data)
    for j, meas in enumerate(names):
        ax = axes[0][j]
        for m_i, model in enumerate(models):
            entry = data[model]["measures"].get(meas)
            if entry is None:
                continue
            st = entry["stats"]
            for g_i, (g, label, colour) in enumerate(GROUPS):
                s = st[g]
                x = m_i + (g_i - 0.5) * 0.3
                mean, lo, hi = s["mean_change"], s["ci_low"], s["ci_high"]
                if mean is None or not np.isfinite(mean):
                    continue
                ax.errorbar([x], [mean], yerr=[[mean - lo], [hi - mean]], fmt="o", color=colour, capsize=4,
                            label=label if m_i == 0 else None)
            p = st.get("p_difference")
            ax.text(m_i, 1.0, f"p = {p:.3g}" if p is not None and np.isfinite(p) else "p: n/a",
                    transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7)
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels([f"{m}\n({data[m]['substrate']})" for m in models], fontsize=7)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_xlabel("model")
        ax.set_ylabel(f"change after − before\n{UNITS.get(meas, meas)}", fontsize=7)
        ax.set_title(meas, fontsize=9, pad=12)
        ax = axes[1][j]
        model = next(m for m in models if meas in data[m]["measures"])
        e = data[model]["measures"][meas]
        vals = np.concatenate([e["before"], e["after"]])
        vals = vals[np.isfinite(vals)]
        bins = np.linspace(vals.min(), vals.max(), 25) if vals.size and vals.min() < vals.max() else 10
        for g, label, colour in GROUPS:
            sel = e["group"] if g == "reinforced" else ~e["group"]
            for key, ls in (("before", "-"), ("after", "--")):
                v = e[key][sel]
                v = v[np.isfinite(v)]
                if v.size:
                    ax.hist(v, bins=bins, histtype="step", ls=ls, color=colour, label=f"{label}, {key}")
        ax.set_xlabel(UNITS.get(meas, meas), fontsize=7)
        ax.set_ylabel("neurons")
        ax.set_title(f"{model}: before / after", fontsize=8)
        ax.legend(frameon=False, fontsize=6)
    handles = {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), frameon=False,
                   fontsize=8, title="change after − before, mean and 95 % CI", title_fontsize=8)
    fig.suptitle(f"Apical activity before and after reinforcing {reinforced_orientation:g}° "
                 f"(mean over {trials} trials; 95 % bootstrap CIs over neurons and seeds)", fontsize=9)
    fig.tight_layout(rect=(0.0, 0.06, 1.0, 1.0))
    return fig
