"""Figures of synthetic imaging sessions (somata and apical dendrites) with their stimulus.

* :func:`dff_heatmap_figure` — ΔF/F of every ROI (somata above, apical dendrites below) over a
  window of each session, with the stimulus frames shaded (U frames red) along a strip on top.
* :func:`response_figure` — mean ΔF/F aligned to expected (D) and unexpected (U) frame onsets,
  per compartment (rows) and session (columns), and the mean responses over sessions.
* :func:`example_traces_figure` — soma and dendrite ΔF/F of a few neurons with the ground truth
  underneath: spikes (black), burst spikes (red), plateaus (orange bars).

The functions take :class:`~dendrite_sim.imaging.session.SyntheticSession` objects (or plain
arrays for the response figure) and return a matplotlib Figure; saving is the caller's job.
"""

from __future__ import annotations

import numpy as np

from dendrite_sim import plotting  # noqa: F401  (selects the Agg backend)

FRAME_COLOURS = {"A": "#d9d9d9", "B": "#c6c6c6", "C": "#b3b3b3", "D": "#6baed6", "U": "#e34a33",
                 "G": "#ffffff"}
COMP_COLOURS = {"soma": "#252525", "apical": "#238b45"}
COND_COLOURS = {"D": "#3182bd", "U": "#e34a33"}


def _stimulus(session) -> dict:
    return {k: np.asarray(v) for k, v in session.stimulus.items()}


def _u_spans(stim: dict, t0: float, t1: float):
    """(start, stop) of the U frames that overlap [t0, t1)."""
    if not stim or "frame" not in stim:
        return []
    sel = (stim["frame"] == "U") & (stim["stop_time"] > t0) & (stim["start_time"] < t1)
    return list(zip(stim["start_time"][sel], stim["stop_time"][sel]))


def window_around_unexpected(session, width: float, lead: float = 0.3) -> tuple[float, float]:
    """A window of ``width`` s that starts ``lead``·width before the first U frame (clipped to
    the session), or the session start when there is no U frame."""
    duration = float(session.frame_times[-1]) + 1.0 / session.frame_rate if session.n_frames else 0.0
    width = min(width, duration)
    stim = _stimulus(session)
    spans = _u_spans(stim, 0.0, np.inf)
    t0 = spans[0][0] - lead * width if spans else 0.0
    t0 = float(np.clip(t0, 0.0, max(0.0, duration - width)))
    return t0, t0 + width


def _stimulus_strip(ax, stim: dict, t0: float, t1: float) -> None:
    if stim and "frame" in stim:
        sel = (stim["stop_time"] > t0) & (stim["start_time"] < t1)
        for s, e, f in zip(stim["start_time"][sel], stim["stop_time"][sel], stim["frame"][sel]):
            ax.axvspan(max(s, t0), min(e, t1), color=FRAME_COLOURS.get(str(f), "#ffffff"), lw=0)
    ax.set_xlim(t0, t1)
    ax.set_yticks([])
    ax.tick_params(labelbottom=False)


def dff_heatmap_figure(sessions, names=None, window: float = 60.0, vmax: dict | None = None):
    """ΔF/F heatmaps (ROIs × time) of each session over ``window`` s around its first U block:
    somata and apical dendrites as separate blocks, each with its own colour scale (shared
    across sessions: ``vmax`` per compartment, default the 99.5th percentile)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = len(sessions)
    names = list(names) if names is not None else [s.name for s in sessions]
    comps = ("soma", "apical")
    labels = {"soma": "somata", "apical": "apical\ndendrites"}
    if vmax is None:
        vmax = {}
        for c in comps:
            vals = [np.asarray(s.traces["dff"][:, np.flatnonzero(np.asarray(s.rois.compartment) == c)
                                                 [:: max(1, s.n_rois // 128)]]).ravel() for s in sessions]
            vals = np.concatenate(vals) if vals else np.zeros(0)
            vmax[c] = max(float(np.nanpercentile(vals, 99.5)) if vals.size else 1.0, 0.1)
    n_roi = {c: max(1, int(np.sum(np.asarray(sessions[0].rois.compartment) == c))) if n else 1
             for c in comps}
    heights = []
    for _ in range(n):        # per session: stimulus strip, somata, apical, gap
        heights += [0.5, 3.0 * n_roi["soma"] / sum(n_roi.values()) + 1.0,
                    3.0 * n_roi["apical"] / sum(n_roi.values()) + 1.0, 1.1]
    fig = plt.figure(figsize=(11, 3.6 * n + 0.3))
    gs = fig.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=[60, 1], hspace=0.06,
                          wspace=0.02, top=0.96, bottom=0.02)
    for k, s in enumerate(sessions):
        t0, t1 = window_around_unexpected(s, window)
        ft = np.asarray(s.frame_times)
        sel = np.flatnonzero((ft >= t0) & (ft < t1))
        comp = np.asarray(s.rois.compartment)
        stim = _stimulus(s)
        ax_s = fig.add_subplot(gs[4 * k, 0])
        _stimulus_strip(ax_s, stim, t0, t1)
        ax_s.set_title(f"{names[k]}: ΔF/F of {s.n_rois} ROIs ({int(np.sum(comp == 'soma'))} somata, "
                       f"{int(np.sum(comp != 'soma'))} apical); stimulus frames on top, U outlined in red",
                       fontsize=9, loc="left")
        for j, c in enumerate(comps):
            ax = fig.add_subplot(gs[4 * k + 1 + j, 0], sharex=ax_s)
            cols = np.flatnonzero(comp == c)
            if sel.size and cols.size:
                data = np.asarray(s.traces["dff"][sel[0]:sel[-1] + 1][:, cols], dtype=np.float32).T
                im = ax.imshow(data, aspect="auto", interpolation="nearest", cmap="magma",
                               vmin=-0.15 * vmax[c], vmax=vmax[c],
                               extent=(ft[sel[0]], ft[sel[-1]] + 1.0 / s.frame_rate, cols.size, 0))
                cb = fig.colorbar(im, cax=fig.add_subplot(gs[4 * k + 1 + j, 1]))
                cb.set_label("ΔF/F", fontsize=8)
                cb.ax.tick_params(labelsize=7)
            for a, b in _u_spans(stim, t0, t1):
                ax.axvspan(a, b, facecolor="none", edgecolor=FRAME_COLOURS["U"], lw=0.8)
            ax.set_yticks([])
            ax.set_ylabel(labels[c], fontsize=8)
            ax.set_xlim(t0, t1)
            if j == 0:
                ax.tick_params(labelbottom=False)
            elif k == n - 1:
                ax.set_xlabel("time in session (s)", fontsize=8)
    handles = [Patch(facecolor=FRAME_COLOURS[f], edgecolor="#999999", label=lab) for f, lab in
               (("A", "A–C"), ("D", "D (expected)"), ("U", "U (unexpected)"), ("G", "G (grey)"))]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.995), ncol=4, fontsize=8,
               frameon=False)
    return fig


def response_figure(aligned: dict, summary: dict):
    """``aligned[session][compartment][cond] = (t, mean, sem)`` for cond D and U;
    ``summary[session][compartment]`` with ``expected``, ``unexpected``, ``*_sem``,
    ``difference`` (baseline-subtracted mean responses) and ``usi`` (mean unexpected-event
    selectivity index)."""
    import matplotlib.pyplot as plt

    days = list(aligned)
    comps = [c for c in ("soma", "apical") if days and c in aligned[days[0]]]
    n = len(days)
    fig, axes = plt.subplots(len(comps), n + 2, figsize=(3.0 * (n + 2), 2.6 * len(comps)),
                             squeeze=False, gridspec_kw={"width_ratios": [1] * n + [1.2, 1.0]})
    for r, comp in enumerate(comps):
        lo, hi = np.inf, -np.inf
        for c, day in enumerate(days):
            ax = axes[r, c]
            ax.axvspan(0.0, 0.3, color="#eeeeee", lw=0)
            for cond in ("D", "U"):
                t, m, se = (np.asarray(a, float) for a in aligned[day][comp][cond])
                if not np.isfinite(m).any():
                    continue
                ax.plot(t, m, color=COND_COLOURS[cond], lw=1.4,
                        label="D (expected)" if cond == "D" else "U (unexpected)")
                ax.fill_between(t, m - se, m + se, color=COND_COLOURS[cond], alpha=0.25, lw=0)
                lo, hi = min(lo, np.nanmin(m - se)), max(hi, np.nanmax(m + se))
            ax.axvline(0.0, color="#777777", lw=0.6)
            if r == 0:
                ax.set_title(day)
            if c == 0:
                ax.set_ylabel(f"{comp}\nmean ΔF/F")
            if r == len(comps) - 1:
                ax.set_xlabel("time from frame onset (s)")
            if r == 0 and c == 0:
                ax.legend(fontsize=7, frameon=False, loc="upper left")
        if np.isfinite(lo) and np.isfinite(hi):
            pad = 0.05 * (hi - lo + 1e-9)
            for c in range(n):
                axes[r, c].set_ylim(lo - pad, hi + pad)
        ax = axes[r, n]
        x = np.arange(n)

        def col(key, comp=comp):
            return np.array([np.nan if summary[d][comp].get(key) is None else summary[d][comp][key]
                             for d in days], float)

        for cond, key in (("D", "expected"), ("U", "unexpected")):
            ax.errorbar(x, col(key), yerr=col(f"{key}_sem"), color=COND_COLOURS[cond], marker="o",
                        capsize=3, lw=1.2, label=key)
        ax.plot(x, col("difference"), color="k", ls="--", marker="s", lw=1.0, label="U − D")
        ax.axhline(0.0, color="#999999", lw=0.6)
        ax.set_xticks(x)
        ax.set_xticklabels(days)
        ax.set_title(f"{comp}: response over days", fontsize=9)
        ax.set_ylabel("baseline-subtracted ΔF/F")
        if r == 0:
            ax.legend(fontsize=7, frameon=False)
        ax = axes[r, n + 1]
        ax.plot(x, col("usi"), color=COMP_COLOURS[comp], marker="o", lw=1.4)
        ax.axhline(0.0, color="#999999", lw=0.6)
        ax.set_xticks(x)
        ax.set_xticklabels(days)
        ax.set_title(f"{comp}: mean USI", fontsize=9)
        ax.set_ylabel("(μ_U − μ_D) / pooled s.d.")
    fig.tight_layout()
    return fig


def pick_example_neurons(session, n: int = 3) -> list[int]:
    """The ``n`` neurons with the most ground-truth plateaus, then the fewest spikes (neurons
    whose dendrites respond to the stimulus rather than to their own firing; ties: lowest index)."""
    gt = session.ground_truth
    plateaus = np.bincount(gt.plateau_unit, minlength=gt.n_neurons)[: gt.n_neurons]
    spikes = np.bincount(gt.spike_unit, minlength=gt.n_neurons)[: gt.n_neurons]
    order = np.lexsort((spikes, -plateaus))
    return [int(i) for i in order[: min(n, gt.n_neurons)]]


def example_traces_figure(sessions, neurons, window: float = 15.0, titles=None):
    """Soma and apical ΔF/F of ``neurons`` with their ground-truth spikes, bursts and plateaus:
    one column per session (e.g. the first and the last day), ``window`` s around its first U
    block. ``sessions`` may be a single session."""
    import matplotlib.pyplot as plt

    if not isinstance(sessions, (list, tuple)):
        sessions = [sessions]
    titles = list(titles) if titles is not None else [s.name for s in sessions]
    neurons = list(neurons)
    n, m = len(neurons), len(sessions)
    fig = plt.figure(figsize=(5.5 * m + 1.0, 2.2 * n + 0.9))
    gs = fig.add_gridspec(1 + 2 * n, m, height_ratios=[0.4] + [3, 1] * n, hspace=0.12, wspace=0.12)
    for c, session in enumerate(sessions):
        t0, t1 = window_around_unexpected(session, window)
        ft = np.asarray(session.frame_times)
        sel = (ft >= t0) & (ft < t1)
        stim = _stimulus(session)
        rois, gt = session.rois, session.ground_truth
        ax_s = fig.add_subplot(gs[0, c])
        _stimulus_strip(ax_s, stim, t0, t1)
        if c == 0:
            ax_s.set_ylabel("stim", rotation=0, ha="right", va="center", fontsize=8)
        ax_s.set_title(titles[c], loc="left", fontsize=10)
        dff = session.traces["dff"]
        for k, i in enumerate(neurons):
            ax = fig.add_subplot(gs[1 + 2 * k, c], sharex=ax_s)
            ax_e = fig.add_subplot(gs[2 + 2 * k, c], sharex=ax_s)
            for a, b in _u_spans(stim, t0, t1):
                ax.axvspan(a, b, color=FRAME_COLOURS["U"], alpha=0.15, lw=0)
                ax_e.axvspan(a, b, color=FRAME_COLOURS["U"], alpha=0.15, lw=0)
            mine = np.flatnonzero(rois.cell_id == i)
            soma = [r for r in mine if rois.compartment[r] == "soma"]
            apical = [r for r in mine if rois.compartment[r] != "soma"]
            y_soma = np.asarray(dff[sel, soma[0]], float) if soma else np.zeros(int(sel.sum()))
            offset = 1.0
            for j, r in enumerate(apical):
                ax.plot(ft[sel], np.asarray(dff[sel, r], float) + offset, color=COMP_COLOURS["apical"],
                        lw=0.8, alpha=1.0 if j == 0 else 0.5,
                        label=f"apical ROIs (+{offset:g})" if j == 0 else None)
            if soma:
                ax.plot(ft[sel], y_soma, color=COMP_COLOURS["soma"], lw=0.8, label="soma ROI")
            if c == 0:
                ax.set_ylabel(f"neuron {i}\nΔF/F", fontsize=8)
            ax.tick_params(labelbottom=False, labelsize=7)
            if k == 0 and c == 0:
                ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=2)
            t, flags = gt.unit_spikes(i)
            win = (t >= t0) & (t < t1)
            ax_e.vlines(t[win & ~flags], 0.55, 0.95, color="k", lw=0.6)
            ax_e.vlines(t[win & flags], 0.55, 0.95, color="#e34a33", lw=0.8)
            s, e = gt.unit_plateaus(i)
            pw = (e > t0) & (s < t1)
            for a, b in zip(s[pw], e[pw]):
                ax_e.plot([max(a, t0), min(b, t1)], [0.25, 0.25], color="#fd8d3c", lw=4,
                          solid_capstyle="butt")
            ax_e.set_ylim(0, 1.05)
            ax_e.set_yticks([0.25, 0.75])
            ax_e.set_yticklabels(["plateau", "spikes"] if c == 0 else ["", ""], fontsize=7)
            if k == n - 1:
                ax_e.set_xlabel("time in session (s)", fontsize=8)
                ax_e.tick_params(labelsize=7)
            else:
                ax_e.tick_params(labelbottom=False)
        ax_s.set_xlim(t0, t1)
    fig.text(0.5, 0.0, "ground truth: black ticks spikes, red ticks burst spikes (≥ 2 within 16 ms), "
             "orange bars dendritic plateaus; red shading: U frames", ha="center", fontsize=8)
    return fig


def realism_figure(results):
    """Distributions of the realism statistics (:mod:`dendrite_sim.analysis.realism`) per
    compartment — per-ROI noise σ, SNR, event size and pairwise r between ROIs of different
    cells — pooled over the sessions of ``results`` (dicts with ``stats`` as
    :func:`~dendrite_sim.analysis.realism.session_statistics` returns), with the OpenScope
    reference bands shaded and the sessions' medians (mean for r) marked."""
    import matplotlib.pyplot as plt

    from dendrite_sim.analysis import realism as R

    panels = (("noise_sd", "noise σ (ΔF/F per frame)"), ("snr", "SNR (mean above θ / σ)"),
              ("event_size", "event size (ΔF/F)"), ("r", "pairwise r (different cells)"))
    comps = list(dict.fromkeys(c for res in results for c in res["stats"]))
    fig, axes = plt.subplots(len(comps), len(panels), figsize=(3.4 * len(panels), 2.6 * len(comps)),
                             squeeze=False)
    for row, comp in enumerate(comps):
        colour = COMP_COLOURS.get(comp, "#756bb1")
        for col, (key, label) in enumerate(panels):
            ax = axes[row, col]
            values = [np.asarray(res["stats"][comp][key], float) for res in results if comp in res["stats"]]
            pooled = np.concatenate(values) if values else np.zeros(0)
            pooled = pooled[np.isfinite(pooled)]
            band = R.REFERENCE.get(comp, {}).get("mean_r" if key == "r" else key)
            if band is not None:
                lo, hi = band
                ax.axvspan(lo if lo is not None else (pooled.min() if pooled.size else 0.0) - 0.05,
                           hi if hi is not None else (pooled.max() if pooled.size else 1.0),
                           color="#fdae6b", alpha=0.35, lw=0, label="reference band")
            if pooled.size:
                what = "pairs" if key == "r" else "ROIs"
                ax.hist(pooled, bins=40, color=colour, alpha=0.8, label=f"{comp} {what}")
                for v in values:
                    v = v[np.isfinite(v)]
                    if v.size:
                        ax.axvline(v.mean() if key == "r" else np.median(v), color="#e34a33", lw=1.0)
            ax.axvline(np.nan, color="#e34a33", lw=1.0, label="session median (mean r)")
            ax.set_xlabel(label)
            ax.set_ylabel("count")
            ax.set_title(f"{comp}: {label.split(' (')[0]}", fontsize=9)
            if col == 0:
                ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("Realism of the ΔF/F traces against the OpenScope reference bands")
    fig.tight_layout()
    return fig
