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

``metrics.json`` is strict JSON and holds finite numbers only: :func:`write_metrics` refuses
metrics with a NaN or an infinity (a diverged run) with a :class:`DivergenceError` naming the
first such key path (``curves.backprop.train_loss[1]``) and writes nothing.

``status.json`` records where the run stands (:func:`write_status`): ``state`` (``running``,
``completed``, ``failed``, ``interrupted``), ``reason`` (one line, for the last two),
``started_utc``, ``updated_utc``, ``pid``. A directory whose run failed or was interrupted
(:func:`reusable`) can take a new run without ``--overwrite``; one whose ``status.json`` says
``running`` with a live ``pid`` cannot.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import tomli_w

from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import DivergenceError, ScenarioError, _printable
from dendrite_sim.io import atomic
from dendrite_sim.io.provenance import provenance

METRICS_FILE = "metrics.json"
TIMINGS_FILE = "timings.json"
STATUS_FILE = "status.json"
CHECKPOINT_DIR = "checkpoints"            # RunContext.checkpointer: a long run's checkpoints
STATES = ("running", "completed", "failed", "interrupted")
#: what a run writes before its experiment starts, and its failure records: a folder holding
#: only these (and no metrics.json) held a run that never finished
RECORD_FILES = ("config.toml", "provenance.json", STATUS_FILE, "error.log")
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
        self.resume = False               # `dendrite-sim run --resume`: continue from a checkpoint
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

    # ------------------------------------------------------------------ checkpoints
    def checkpointer(self, every_ms: float, keep: int = 2):
        """The run's :class:`~dendrite_sim.engine.checkpoint.Checkpointer`, writing
        ``RUN_DIR/checkpoints/checkpoint-NNNNNN.npz`` every ``every_ms`` of biological time and
        keeping the newest ``keep``. On ``--resume`` (``self.resume``) its ``latest()`` is the
        state to continue from; on a fresh run old checkpoints are removed first."""
        from dendrite_sim.engine.checkpoint import Checkpointer

        ck = Checkpointer(self.out / CHECKPOINT_DIR, every_ms, keep)
        if not self.resume:
            for _, old in ck.files():
                old.unlink()
            ck.seq = 0
        return ck

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


def nonfinite(obj, prefix: str = "") -> list[tuple[str, float]]:
    """Key paths (``rules.backprop.bias``, ``curves.fa.train_loss[3]``) of the NaN and infinite
    numbers in ``obj`` (dicts, lists, tuples, numpy arrays and scalars), in document order."""
    out: list[tuple[str, float]] = []
    stack = [(prefix, obj)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend(reversed([(f"{path}.{k}" if path else str(k), v) for k, v in node.items()]))
        elif isinstance(node, (list, tuple)):
            stack.extend(reversed([(f"{path}[{i}]", v) for i, v in enumerate(node)]))
        elif isinstance(node, np.ndarray):
            if node.dtype.kind in "fc" and not np.isfinite(node).all():
                flat = np.flatnonzero(~np.isfinite(node))
                out.extend((f"{path}[{int(i)}]", float(node.flat[i].real)) for i in flat[:8])
            elif node.dtype == object:
                stack.extend(reversed([(f"{path}[{i}]", v) for i, v in enumerate(node.tolist())]))
        elif isinstance(node, (float, np.floating)) and not math.isfinite(float(node)):
            out.append((path, float(node)))
    return out


def check_finite(metrics: dict) -> None:
    """Raise :class:`DivergenceError` naming the first non-finite value of ``metrics``."""
    bad = nonfinite(metrics)
    if bad:
        path, value = bad[0]
        more = f" and {len(bad) - 1} more non-finite value{'s' * (len(bad) > 2)}" if len(bad) > 1 else ""
        others = ", ".join(p for p, _ in bad[1:4])
        raise DivergenceError(path, f"diverged: the run produced {value} here{more}"
                              + (f" ({others}{', ...' if len(bad) > 4 else ''})" if others else "")
                              + "; expected finite results (a smaller step size or learning rate "
                              "usually helps); metrics.json not written")


def write_status(out: str | Path, state: str, reason: str | None = None, **extra) -> dict:
    """Write ``status.json`` (state, reason, times, pid); keeps ``started_utc`` of the run."""
    if state not in STATES:
        raise ValueError(f"state {state!r}: expected one of {', '.join(STATES)}")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    old = read_status(out) or {}
    started = old.get("started_utc") if state != "running" else None
    kept = {k: v for k, v in old.items() if k not in ("state", "reason", "started_utc", "updated_utc", "pid")}
    rec = {**(kept if state != "running" else {}), "state": state, "reason": reason,
           "started_utc": started or now, "updated_utc": now, "pid": os.getpid(), **extra}
    atomic.write_json(Path(out) / STATUS_FILE, {k: v for k, v in rec.items() if v is not None})
    return rec


def read_status(out: str | Path) -> dict | None:
    """The run's ``status.json`` as a dict, or ``None`` when there is none (or it is unreadable)."""
    try:
        rec = json.loads((Path(out) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def reusable(out: str | Path) -> bool:
    """Whether a new run may write into ``out`` without ``--overwrite``: it is empty, or it held
    a run that did not finish — its ``status.json`` says failed or interrupted, or it holds only
    the :data:`RECORD_FILES` (a run killed before it could say so) — and no ``metrics.json``."""
    out = Path(out)
    names = {p.name for p in out.iterdir()}
    if not names:
        return True
    if METRICS_FILE in names:
        return False
    status = read_status(out)
    if status is not None and status.get("state") == "running" and _alive(status.get("pid")):
        return False                       # a run is writing there now
    if status is not None and status.get("state") in ("failed", "interrupted"):
        return True
    return names <= set(RECORD_FILES)


def _alive(pid) -> bool:
    """Whether process ``pid`` exists on this machine (a run directory's writer)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


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
    check_finite(results)
    timings = _merge(dict(ctx.timings) if ctx is not None else {}, moved)
    ident = {k: results[k] for k in _IDENTITY_KEYS if k in results}
    atomic.write_json(out / TIMINGS_FILE, {**timings, **ident})
    atomic.write_json(out / METRICS_FILE, results)


# ---------------------------------------------------------------------------------- one run
@dataclass
class RunOutcome:
    """How :func:`execute` ended: ``state`` (``completed``, ``failed``, ``interrupted``), the
    exit code the command line gives it (0; 2 for a user's value refused during the run, a
    divergence or a MemoryError; 1 for a bug; 130 Ctrl-C; 143 SIGTERM), the one-line ``reason``
    recorded in ``status.json``, the ``message`` the command line prints, the metrics written
    and the figures saved."""

    state: str
    code: int
    reason: str | None = None
    message: str | None = None
    metrics: dict | None = None
    figures: list = field(default_factory=list)
    error: BaseException | None = None


def execute(sc, out: str | Path, progress: bool | None = None,
            interrupts: tuple = (KeyboardInterrupt,), resume: bool = False) -> RunOutcome:
    """Run the loaded scenario ``sc`` (:func:`dendrite_sim.io.scenario.load`) into the run
    directory ``out``: the one run path of ``dendrite-sim run`` and of every sweep point.

    Writes ``status.json`` (running), ``config.toml`` and ``provenance.json`` first, then runs
    the experiment and writes ``metrics.json`` / ``timings.json`` (with the CLI's
    ``wall_time_s``) and ``status.json`` (completed). A failure is recorded, not raised: a
    :class:`ScenarioError` (a value refused during the run, a divergence) or a MemoryError is
    ``failed`` with code 2; any other exception writes its traceback to ``error.log`` and is
    ``failed`` with code 1; an exception of ``interrupts`` (Ctrl-C, the CLI's SIGTERM) is
    ``interrupted``. Only an unwritable ``out`` raises, as a :class:`ScenarioError` at ``--out``.
    ``resume`` (``dendrite-sim run --resume``) tells the experiment to continue from the newest
    checkpoint it finds through :meth:`RunContext.checkpointer` (from the start where none).
    """
    out = Path(out)
    experiment = sc.resolved["scenario"]["experiment"]
    try:
        ctx = RunContext(out, sc.seed, progress=progress)
        ctx.resume = bool(resume)
        stale = out / "error.log"
        if stale.exists():
            stale.unlink()
        write_status(out, "running", experiment=experiment)
        write_config(out, sc.resolved)
        write_provenance(out, sc.seed, sc.path)
    except OSError as exc:
        raise ScenarioError("--out", f"expected a directory I can write; {str(out)!r}: "
                            f"{exc.strerror or exc}") from None

    def record(state, reason=None):       # never let a full disk hide why the run stopped
        try:
            write_status(out, state, reason)
        except OSError:
            pass

    t0 = time.perf_counter()
    try:
        metrics = sc.experiment.run(sc.cfg, ctx)
        metrics = {"experiment": experiment, "seed": sc.seed,
                   "wall_time_s": round(time.perf_counter() - t0, 3), **metrics}
        write_metrics(out, metrics)
    except ScenarioError as exc:          # a user's value refused during the run, or divergence
        reason = exc.line().removeprefix("error: ")
        record("failed", reason)
        return RunOutcome("failed", 2, reason, exc.line(), error=exc)
    except interrupts as exc:
        why = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        record("interrupted", why)
        return RunOutcome("interrupted", 130 if isinstance(exc, KeyboardInterrupt) else 143, why,
                          f"error: interrupted: {why}; partial outputs are kept in {out}/ (status.json)",
                          error=exc)
    except MemoryError as exc:           # a size `check` could not foresee: the user's to change
        reason = "run: " + _printable(f"needs more memory than this machine has (MemoryError: {exc}); "
                                      "expected smaller sizes", 500)
        record("failed", reason)
        return RunOutcome("failed", 2, reason, f"error: {reason}", error=exc)
    except Exception as exc:  # a bug or a numerical failure: keep what was written, say where
        import traceback

        try:
            atomic.write_text(out / "error.log", traceback.format_exc())
        except OSError:
            pass
        reason = _printable(f"{type(exc).__name__}: {exc}", 500)
        record("failed", reason)
        return RunOutcome("failed", 1, reason, f"error: run: {reason} (traceback in {out / 'error.log'}; "
                          "config.toml and provenance.json are kept)", error=exc)
    record("completed")
    return RunOutcome("completed", 0, metrics=metrics, figures=list(ctx.figures),
                      message=f"wrote {out}/ (metrics.json, timings.json, config.toml, provenance.json, "
                      "status.json" + "".join(f", {f}" for f in ctx.figures) + ")")
