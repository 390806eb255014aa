"""Figure of the burst-multiplexing experiment (cf. Naud & Sprekeler 2018 PNAS, Fig 2–4).

Four rows over one time window: (1) the somatic and dendritic input currents (the part
common to all neurons, without each neuron's noise); (2) a raster of
some neurons, with isolated spikes (events of one spike) in black and every spike of a burst in
red; (3) the population event rate and the STD readout over the somatic input; (4) the burst
rate, the STF readout and the burst fraction over the dendritic input. In rows 3–4 every trace
is standardised (z-score over the shown window) so that shapes can be compared, and the legend
gives its correlation with its target input (from ``metrics``).
"""

from __future__ import annotations

import numpy as np

from dendrite_sim.engine import bursts as B


def burst_spike_mask(steps, indices, window_steps: int) -> np.ndarray:
    """True for every spike that belongs to a burst (an event with at least two spikes).

    Events and bursts as in :mod:`dendrite_sim.engine.bursts` (an event starts after more than
    ``window_steps`` of silence; it is a burst when its second spike follows within the window).
    """
    steps = np.asarray(steps, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    mask = np.zeros(steps.size, dtype=bool)
    if steps.size == 0:
        return mask
    ev, bu = B.detect_population(steps, indices, window_steps)
    order = np.lexsort((steps, indices))
    event_id = np.cumsum(ev[order])               # events numbered along (neuron, time)
    bursty = np.zeros(event_id[-1] + 1, dtype=bool)
    bursty[event_id[bu[order]]] = True
    mask[order] = bursty[event_id]
    return mask


def _z(x):
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x - x.mean()


def _cross_note(ax, metrics, decoders, other: str) -> None:
    parts = [f"{label} {metrics[f'corr_{key}_{other}']:+.2f}" for label, key in decoders
             if f"corr_{key}_{other}" in metrics]
    if parts:
        chance = metrics.get("chance_corr_sd")
        tail = f"  (chance level ±{chance:.2f})" if chance is not None else ""
        ax.text(0.01, 0.03, f"correlation with the {other} input: " + ", ".join(parts) + tail,
                transform=ax.transAxes, fontsize=8, color="0.3")


def burst_multiplexing_figure(t_ms, somatic_pA, dendritic_pA, decoded: dict, spike_t, spike_i, *,
                              burst_window_ms: float, dt: float, metrics: dict, t_start: float,
                              window: float, n_raster: int = 60):
    """The figure (a :class:`matplotlib.figure.Figure`); ``decoded`` holds ``event_rate``,
    ``burst_rate``, ``burst_fraction``, ``std`` and ``stf`` on the grid ``t_ms``."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    t_ms = np.asarray(t_ms)
    t_end = min(t_start + window, float(t_ms[-1]) if t_ms.size else t_start + window)
    sel = (t_ms >= t_start) & (t_ms < t_end)
    ts = t_ms[sel] / 1000.0

    fig = Figure(figsize=(10, 9.5))
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.6, 1.3, 1.3]})

    ax = axes[0]
    ax.plot(ts, np.asarray(somatic_pA)[sel], color="C0", lw=1, label="somatic input (common part)")
    ax.plot(ts, np.asarray(dendritic_pA)[sel], color="C3", lw=1, label="dendritic input (common part)")
    ax.set_ylabel("current (pA)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)   # beside the data
    ax.set_title("Burst multiplexing (cf. Naud & Sprekeler 2018): events carry the somatic input, "
                 "bursts the dendritic input", fontsize=10)

    ax = axes[1]
    spike_t = np.asarray(spike_t)
    spike_i = np.asarray(spike_i)
    shown = spike_i < n_raster
    st, si = spike_t[shown], spike_i[shown]
    in_burst = burst_spike_mask(np.rint(st / dt).astype(np.int64), si, int(round(burst_window_ms / dt)))
    win = (st >= t_start) & (st < t_end)
    ax.scatter(st[win & ~in_burst] / 1000.0, si[win & ~in_burst], s=9, color="k", marker="|",
               label="isolated spike", linewidths=0.8)            # s in pt²: a 3 pt tick per spike
    ax.scatter(st[win & in_burst] / 1000.0, si[win & in_burst], s=9, color="C3", marker="|",
               label="spike in a burst", linewidths=0.8)
    ax.set_ylim(-1, n_raster)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("neuron")
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False, markerscale=2)

    def corr(name, target):
        v = metrics.get(f"corr_{name}_{target}")
        return "" if v is None else f" (r = {v:.2f})"

    ax = axes[2]
    ax.plot(ts, _z(np.asarray(somatic_pA)[sel]), color="0.6", lw=2.5, label="somatic input")
    ax.plot(ts, _z(decoded["event_rate"][sel]), color="C0", lw=1, label="event rate" + corr("event_rate", "somatic"))
    ax.plot(ts, _z(decoded["std"][sel]), color="C2", lw=1, label="STD readout" + corr("std", "somatic"))
    ax.set_ylabel("z-score")
    ax.legend(loc="upper right", fontsize=8, ncol=3, frameon=False)
    _cross_note(ax, metrics, (("event rate", "event_rate"), ("STD", "std")), "dendritic")

    ax = axes[3]
    ax.plot(ts, _z(np.asarray(dendritic_pA)[sel]), color="0.6", lw=2.5, label="dendritic input")
    ax.plot(ts, _z(decoded["burst_rate"][sel]), color="C3", lw=1, label="burst rate" + corr("burst_rate", "dendritic"))
    ax.plot(ts, _z(decoded["stf"][sel]), color="C1", lw=1, label="STF readout" + corr("stf", "dendritic"))
    ax.plot(ts, _z(decoded["burst_fraction"][sel]), color="C4", lw=0.8, ls="--",
            label="burst fraction" + corr("burst_fraction", "dendritic"))
    ax.set_ylabel("z-score")
    ax.set_xlabel("time (s)")
    _cross_note(ax, metrics, (("burst rate", "burst_rate"), ("STF", "stf"), ("STF/STD", "stf_over_std")),
                "somatic")
    ax.legend(loc="upper right", fontsize=8, ncol=2, frameon=False)
    fig.align_ylabels(axes)
    fig.tight_layout()
    return fig
