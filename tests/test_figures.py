"""Every experiment's figures on a small run (issue 14 point 7): each figure has a title (its
own or a panel's, e.g. the top one of a stack); every panel that shows data has an x and a y
label, its own or that of a panel it shares the axis with; a panel with two or more labelled
artists has a legend (its own or the figure's), a legend lists only what is drawn and covers
at most a few of the panel's data points (the legend's box against the points, in display
coordinates, after drawing); rasters (y label "neuron") have integer neuron ticks and visible
spike markers; a y axis that shows a membrane potential says mV (or that it is in model
units)."""

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.cli import main
from dendrite_sim.io import results

ROOT = Path(__file__).resolve().parents[1] / "scenarios"

SMALL = {
    "xor.toml": ["training.epochs=5"],
    "rule_bias_variance.toml": ["diagnostics.seeds=1", "diagnostics.draws=5", "diagnostics.n_batches=4",
                                "diagnostics.widths=[5]", "training.steps=10", "training.checkpoints=2",
                                "diagnostics.pool_size=16"],
    "urbanczik_senn_fig1.toml": ["protocol.repetitions=3", "protocol.seeds=1", "analysis.final_repetitions=1",
                                 "protocol.n_inputs=20"],
    "microcircuit_self_predicting.toml": ["training.steps=50", "training.record_every=10"],
    "digits_segregated_spiking.toml": ["training.epochs=1", "spiking.n_test=10", "task.test_fraction=0.95",
                                       "spiking.backend=\"numpy\"", "architecture.hidden=[10]",
                                       "rule.phase_duration=20.0", "rule.settle=5.0", "spiking.test_duration=\"20 ms\"",
                                       "spiking.test_settle=\"5 ms\""],
    "burst_multiplexing.toml": [],
    "pyr_stp_4000.toml": ['simulation.duration="100 ms"', 'simulation.transient="10 ms"',
                          "network.populations.pyr.n=200"],
    "gratings_reward.toml": ["training.epochs=2", "task.n_train=100", "task.n_test=50"],
    "microcircuit_regression_spiking.toml": ["task.n_train=10", "task.n_test=5", "training.epochs=1",
                                             "rule.phase_duration=30.0", "rule.settle=10.0",
                                             "spiking.test_duration=\"30 ms\""],
}


#: a legend may cover at most this fraction of a panel's data points (markers, line vertices)
MAX_COVERED = 0.02
#: the smallest spike marker that reads on a raster: height (pt) and, for line markers, width (pt)
MIN_MARKER_PT, MIN_STROKE_PT = 2.0, 0.5
_LINE_MARKERS = {"|", "_", "+", "x", "1", "2", "3", "4"}
_POTENTIAL = re.compile(r"potential|voltage|\bv_|\bV_|V\^?\*|\$V|U_M", re.I)


def _points(ax):
    """Display coordinates of every data point drawn in ``ax`` (line vertices, scatter offsets)."""
    pts = []
    for line in ax.lines:
        if line.get_visible():
            xy = np.asarray(line.get_xydata(), dtype=float).reshape(-1, 2)
            xy = xy[np.isfinite(xy).all(axis=1)]
            if len(xy):
                pts.append(line.get_transform().transform(xy))
    for coll in ax.collections:
        offs = np.asarray(coll.get_offsets(), dtype=float).reshape(-1, 2)
        offs = offs[np.isfinite(offs).all(axis=1)]
        if coll.get_visible() and len(offs) > 1:
            pts.append(coll.get_offset_transform().transform(offs))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def _drawn(artist) -> bool:
    """Whether a legend entry's artist shows anything (a line or scatter with finite data)."""
    if hasattr(artist, "get_xydata"):
        xy = np.asarray(artist.get_xydata(), dtype=float).reshape(-1, 2)
        return bool(np.isfinite(xy).all(axis=1).any())
    if hasattr(artist, "get_offsets") and not hasattr(artist, "patches"):
        return len(artist.get_offsets()) > 0
    return True


def _legend_problems(fig, data_axes, name, renderer):
    out = []
    fig_labels = {t.get_text() for leg in fig.legends for t in leg.get_texts()}
    legends = [(ax, ax.get_legend()) for ax in data_axes if ax.get_legend() is not None]
    legends += [(None, leg) for leg in fig.legends]
    for ax in data_axes:
        handles, labels = ax.get_legend_handles_labels()
        where = f"{name}: panel {ax.get_title() or ax.get_ylabel()!r}"
        if len(labels) >= 2 and ax.get_legend() is None and not set(labels) <= fig_labels:
            out.append(f"{where}: {len(labels)} labelled artists but no legend")
        for h, lab in zip(handles, labels):
            if not _drawn(h) and (ax.get_legend() is not None or lab in fig_labels):
                out.append(f"{where}: legend entry {lab!r} for nothing drawn")
    for ax, leg in legends:
        box = leg.get_window_extent(renderer)
        for target in ([ax] if ax is not None else data_axes):
            pts = _points(target)
            if not len(pts):
                continue
            inside = ((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0)
                      & (pts[:, 1] <= box.y1))
            frac = float(inside.mean())
            if frac > MAX_COVERED:
                out.append(f"{name}: legend covers {100 * frac:.0f} % of the data points of panel "
                           f"{target.get_title() or target.get_ylabel()!r}")
    return out


def _raster_problems(ax, name):
    out, where = [], f"{name}: raster {ax.get_ylabel()!r}"
    lo, hi = sorted(ax.get_ylim())
    ticks = [t for t in ax.get_yticks() if lo - 1e-9 <= t <= hi + 1e-9]
    if any(abs(t - round(t)) > 1e-9 for t in ticks):
        out.append(f"{where}: neuron ticks that are not integers {[float(t) for t in ticks]}")
    for line in ax.lines:
        m = line.get_marker()
        if m in (None, "None", "", " ") or not len(line.get_xdata()):
            continue
        size, stroke = line.get_markersize(), line.get_markeredgewidth()
        if size < MIN_MARKER_PT or (m in _LINE_MARKERS and stroke < MIN_STROKE_PT):
            out.append(f"{where}: spike markers {m!r} too small to see (size {size:g} pt, edge {stroke:g} pt)")
    for coll in ax.collections:
        sizes = np.sqrt(np.asarray(coll.get_sizes(), dtype=float))
        strokes = np.asarray(coll.get_linewidths(), dtype=float)
        if len(coll.get_offsets()) and sizes.size and (sizes.min() < MIN_MARKER_PT
                                                        or (strokes.size and strokes.min() < MIN_STROKE_PT)):
            out.append(f"{where}: spike markers too small to see (size {sizes.min():g} pt, "
                       f"edge {strokes.min() if strokes.size else 0:g} pt)")
    return out


def _problems(fig, name):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out = []
    data_axes = [ax for ax in fig.axes if ax.get_visible() and (ax.lines or ax.collections or ax.patches
                                                                  or ax.images)]
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    if data_axes and not (suptitle or any(ax.get_title() for ax in fig.axes)):
        out.append(f"{name}: no title (neither the figure's nor a panel's)")
    for ax in data_axes:
        where = f"{name}: panel {ax.get_title()!r}"
        for axis, getter in (("x", "get_xlabel"), ("y", "get_ylabel")):
            shared = getattr(ax, f"get_shared_{axis}_axes")().get_siblings(ax)
            if not any(getattr(a, getter)() for a in shared if a.get_visible()):
                out.append(f"{where}: no {axis} label")
        ylabel = ax.get_ylabel()
        if _POTENTIAL.search(ylabel) and not re.search(r"mV|model('s)? units", ylabel + " " + suptitle):
            out.append(f"{where}: the potential axis {ylabel!r} gives no unit (mV, or model units)")
        if ylabel.strip().lower().endswith("neuron"):
            out += _raster_problems(ax, name)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return out + _legend_problems(fig, data_axes, name, canvas.get_renderer())


@pytest.mark.parametrize("scenario", sorted(SMALL))
def test_every_figure_has_titles_and_axis_labels(scenario, monkeypatch):
    seen = {}
    orig = results.RunContext.save_figure

    def probe(self, fig, name):
        seen[name] = _problems(fig, name)
        return orig(self, fig, name)

    monkeypatch.setattr(results.RunContext, "save_figure", probe)
    args = ["run", str(ROOT / scenario), "--out", tempfile.mkdtemp()]
    for s in SMALL[scenario]:
        args += ["--set", s]
    assert main(args) == 0
    assert seen, "the experiment drew no figure"
    problems = [p for ps in seen.values() for p in ps]
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
