"""Run directory: the output contract of every run.

``RUN_DIR/config.toml`` (fully resolved scenario), ``provenance.json``, ``metrics.json`` (the
experiment's numbers under stable keys documented by each experiment), ``timings.json``
(wall-clock seconds and anything else that depends on the machine), figures as PNG, data as
npz / NWB. Every file is written atomically.

``metrics.json`` holds results only: two runs of the same scenario with the same seed write
byte-identical files (keys sorted, the same floats). Timings are split off by
:func:`write_metrics`, generically, into ``timings.json``:

* the top-level keys of the returned metrics named in :data:`TIMING_KEYS` — an experiment's
  ``timing`` table (its keys land at the top level of ``timings.json``) and the CLI's
  ``wall_time_s``;
* everything an experiment recorded through the run context: :meth:`RunContext.timer`
  (accumulates the wall-clock seconds of a ``with`` block) and :meth:`RunContext.record_timing`
  (sets a value); dotted keys (``"sessions.day1.run_s"``) become nested tables.

``timings.json`` also repeats ``experiment`` and ``seed`` (when the metrics have them), so
that it reads on its own. An experiment must put nothing else machine-dependent (timings,
memory addresses, dates, host names) into its metrics.
"""

from __future__ import annotations

import contextlib
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import tomli_w

from dendrite_sim.core import rng as rngmod
from dendrite_sim.io import atomic
from dendrite_sim.io.provenance import provenance

METRICS_FILE = "metrics.json"
TIMINGS_FILE = "timings.json"
TIMING_KEYS = ("timing", "wall_time_s")      # top-level metrics keys moved to timings.json
_IDENTITY_KEYS = ("experiment", "seed")      # copied into timings.json, kept in metrics.json

# the live run context of each run directory, so that write_metrics(out, ...) finds what the
# experiment recorded without the caller passing the context along
_LIVE: weakref.WeakValueDictionary[str, RunContext] = weakref.WeakValueDictionary()


def _strip_none(d):
    if isinstance(d, dict):
        return {k: _strip_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, list):
        return [_strip_none(v) for v in d]
    return d


def _key(out) -> str:
    return str(Path(out).resolve())


def _set_path(tree: dict, key: str, value, add: bool = False) -> None:
    parts = key.split(".")
    if not all(parts):
        raise ValueError(f"timing key {key!r}: expected dot-separated names")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"timing key {key!r}: {p!r} already holds a value")
    leaf = parts[-1]
    if isinstance(node.get(leaf), dict):
        raise ValueError(f"timing key {key!r} already holds a table")
    node[leaf] = float(node.get(leaf, 0.0)) + float(value) if add else value


def _merge(base: dict, extra: dict) -> dict:
    """Deep merge of two tables (``extra`` wins at a leaf)."""
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


class RunContext:
    """What an experiment gets besides its configuration: seed, random streams, output folder,
    and a place for timings (which never go into ``metrics.json``)."""

    def __init__(self, out: str | Path, seed: int, progress: bool | None = None):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.seed = int(seed)
        self.show_progress = sys.stderr.isatty() if progress is None else progress
        self.figures: list[str] = []
        self.timings: dict = {}
        _LIVE[_key(self.out)] = self

    def rng(self, name: str) -> np.random.Generator:
        return rngmod.stream(self.seed, name)

    def progress(self, iterable, total=None, desc=""):
        """A tqdm progress bar on a terminal; silent otherwise."""
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, disable=not self.show_progress, leave=False)

    # ------------------------------------------------------------------ timings
    def record_timing(self, key: str, seconds: float) -> None:
        """Set the timing ``key`` (dotted for nesting) to ``seconds``; it goes to ``timings.json``."""
        _set_path(self.timings, key, float(seconds))

    @contextlib.contextmanager
    def timer(self, key: str):
        """Add the wall-clock seconds of the ``with`` block to the timing ``key`` (dotted for
        nesting; starts at 0), also when the block raises."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            _set_path(self.timings, key, time.perf_counter() - t0, add=True)

    # ------------------------------------------------------------------ files
    def save_figure(self, fig, name: str) -> Path:
        import matplotlib.pyplot as plt

        path = self.out / f"{name}.png"
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(path.name)
        return path

    def save_npz(self, name: str, **arrays) -> Path:
        path = self.out / f"{name}.npz"
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return path

    def write_metrics(self, metrics: dict) -> None:
        """:func:`write_metrics` into this run's folder, with this context's timings."""
        write_metrics(self.out, metrics, self)


def write_config(out: Path, resolved: dict) -> None:
    atomic.write_text(Path(out) / "config.toml", tomli_w.dumps(_strip_none(resolved)))


def write_provenance(out: Path, seed: int, scenario_path: str | None) -> None:
    atomic.write_json(Path(out) / "provenance.json", provenance(seed, scenario_path))


def split_timings(metrics: dict) -> tuple[dict, dict]:
    """``(results, timings)``: ``metrics`` without the :data:`TIMING_KEYS`, and those keys
    (a ``timing`` table's entries at the top level)."""
    results, timings = {}, {}
    for k, v in metrics.items():
        if k not in TIMING_KEYS:
            results[k] = v
        elif isinstance(v, dict):
            timings = _merge(timings, v)
        else:
            timings[k] = v
    return results, timings


def write_metrics(out: Path, metrics: dict, ctx: RunContext | None = None) -> None:
    """Write ``metrics.json`` (results only) and ``timings.json`` (see the module docstring).

    ``ctx`` defaults to the live :class:`RunContext` of ``out``; its recorded timings are
    merged under those split off the metrics. ``timings.json`` is written first, so a
    ``metrics.json`` on disk means the run finished and both files are complete.
    """
    out = Path(out)
    if ctx is None:
        ctx = _LIVE.get(_key(out))
    results, moved = split_timings(metrics)
    timings = _merge(dict(ctx.timings) if ctx is not None else {}, moved)
    ident = {k: results[k] for k in _IDENTITY_KEYS if k in results}
    atomic.write_json(out / TIMINGS_FILE, {**timings, **ident})
    atomic.write_json(out / METRICS_FILE, results)
