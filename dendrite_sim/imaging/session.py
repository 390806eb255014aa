"""``SyntheticSession``: one imaging session with its ground truth, stored as a run-dir folder.

Contents: frame times; traces (frames × ROIs, float32) ``fluorescence`` (raw ROI photons),
``neuropil`` (annulus estimate per ROI area), ``dff`` (Allen-style ΔF/F of the neuropil-corrected
trace), ``dff_true`` (noiseless ΔF/F₀ of the cell) and ``calcium`` (frame-averaged [Ca²⁺], nM);
the ROI table with pixel masks; the ground truth (spikes, burst flags, plateaus, latent
traces); the stimulus table (one row per stimulus segment, columns of equal length with at least
``start_time`` and ``stop_time`` in s); the indicator and imaging constants; provenance (seed,
resolved scenario, versions).

On disk (``RUN_DIR/session`` or ``RUN_DIR/session-<name>``)::

    meta.json                      scalars, tables of constants, provenance, column names
    frame_times.npy                traces/<name>.npy   rois/<column>.npy
    ground_truth/<array>.npy       ground_truth/latents/<name>.npy     stimulus/<column>.npy

Every array is a plain ``.npy`` file, so :meth:`SyntheticSession.load` memory-maps the traces and
exporters stream them in chunks. A folder is written under a temporary name and renamed when
complete (:class:`SessionWriter`), so a crash never leaves a partial session under the final
name. Large traces can be produced straight into the temporary folder's memory maps.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dendrite_sim.imaging.calcium import GroundTruth
from dendrite_sim.imaging.indicators import Indicator
from dendrite_sim.imaging.rois import RoiTable

FORMAT = "dendrite_sim.session/1"
TRACE_NAMES = ("fluorescence", "neuropil", "dff", "dff_true", "calcium")
_GT_ARRAYS = ("spike_times", "spike_unit", "burst_flag", "plateau_start", "plateau_stop", "plateau_unit")


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass
class SyntheticSession:
    name: str
    frame_rate: float
    frame_times: np.ndarray
    traces: dict
    rois: RoiTable
    ground_truth: GroundTruth
    indicator: Indicator
    imaging: dict = field(default_factory=dict)
    stimulus: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.frame_times.size)

    @property
    def n_rois(self) -> int:
        return self.rois.n_rois

    @property
    def seed(self):
        return self.provenance.get("seed")

    def save(self, path: str | Path) -> Path:
        """Write the session folder at ``path`` atomically (streams memory-mapped traces)."""
        with SessionWriter(path, self.n_frames, self.n_rois, allocate=False) as w:
            for k, v in self.traces.items():
                _save_npy(w.tmp / "traces" / f"{k}.npy", v)
            w.commit(self)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> SyntheticSession:
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{path} holds no session (meta.json missing)")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown session format {meta.get('format')!r}")
        mode = "r" if mmap else None
        ld = lambda p: np.load(p, mmap_mode=mode, allow_pickle=False)
        traces = {k: ld(path / "traces" / f"{k}.npy") for k in meta["trace_names"]}
        r = meta["rois"]
        rois = RoiTable.from_arrays({k: ld(path / "rois" / f"{k}.npy") for k in r["columns"]},
                                    r["image_shape"], r["pixel_size"])
        g = meta["ground_truth"]
        gt = GroundTruth(g["n_neurons"], g["duration"],
                         *(np.load(path / "ground_truth" / f"{k}.npy") for k in _GT_ARRAYS),
                         latents={k: ld(path / "ground_truth" / "latents" / f"{k}.npy")
                                  for k in g["latent_names"]},
                         latent_rate=g["latent_rate"], latent_units=g["latent_units"], dt=g["dt"])
        stim = {k: np.load(path / "stimulus" / f"{k}.npy") for k in meta["stimulus_columns"]}
        return cls(meta["name"], meta["frame_rate"], np.load(path / "frame_times.npy"), traces,
                   rois, gt, Indicator(**meta["indicator"]), meta["imaging"], stim,
                   meta["provenance"], meta["info"])


def _save_npy(path: Path, arr) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.save(fh, np.asarray(arr) if not isinstance(arr, np.ndarray) else arr, allow_pickle=False)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                os.fsync(fh.fileno())


class SessionWriter:
    """Builds a session folder under a temporary name; :meth:`commit` renames it into place.

    With ``allocate=True`` it opens ``traces`` as writable memory maps (frames × ROIs, float32)
    inside the temporary folder, for a forward model to fill. Leaving the ``with`` block with an
    exception (or without commit) removes the temporary folder; the final name is untouched.
    """

    def __init__(self, path: str | Path, n_frames: int, n_rois: int, allocate: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                         dir=self.path.parent))
        os.chmod(self.tmp, 0o777 & ~_umask())       # mkdtemp makes 0700; a session folder is shared
        self.committed = False
        self.traces = {}
        if allocate:
            (self.tmp / "traces").mkdir()
            for k in TRACE_NAMES:
                self.traces[k] = np.lib.format.open_memmap(
                    self.tmp / "traces" / f"{k}.npy", mode="w+", dtype=np.float32,
                    shape=(int(n_frames), int(n_rois)))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None or not self.committed:
            self.traces.clear()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def commit(self, s: SyntheticSession) -> Path:
        """Write everything but the traces (already in place), fsync, and rename into place."""
        for v in self.traces.values():
            v.flush()
        t = self.tmp
        _save_npy(t / "frame_times.npy", np.asarray(s.frame_times, dtype=np.float64))
        cols = s.rois.arrays()
        for k, v in cols.items():
            _save_npy(t / "rois" / f"{k}.npy", v)
        gt = s.ground_truth
        for k in _GT_ARRAYS:
            _save_npy(t / "ground_truth" / f"{k}.npy", getattr(gt, k))
        (t / "ground_truth" / "latents").mkdir(parents=True, exist_ok=True)
        for k, v in gt.latents.items():
            _save_npy(t / "ground_truth" / "latents" / f"{k}.npy", v)
        (t / "stimulus").mkdir(exist_ok=True)
        for k, v in s.stimulus.items():
            _save_npy(t / "stimulus" / f"{k}.npy", np.asarray(v))
        trace_names = sorted(p.stem for p in (t / "traces").glob("*.npy"))
        meta = {
            "format": FORMAT, "name": s.name, "frame_rate": float(s.frame_rate),
            "n_frames": s.n_frames, "n_rois": s.n_rois, "trace_names": trace_names,
            "rois": {"columns": list(cols), "image_shape": list(s.rois.image_shape),
                     "pixel_size": float(s.rois.pixel_size)},
            "ground_truth": {"n_neurons": int(gt.n_neurons), "duration": float(gt.duration),
                             "latent_names": list(gt.latents), "latent_rate": float(gt.latent_rate),
                             "latent_units": dict(gt.latent_units), "dt": float(gt.dt)},
            "stimulus_columns": list(s.stimulus),
            "indicator": s.indicator.as_dict(), "imaging": dict(s.imaging),
            "provenance": dict(s.provenance), "info": dict(s.info),
        }
        (t / "meta.json").write_text(json.dumps(meta, indent=1, default=_jsonable), encoding="utf-8")
        self.traces.clear()
        _fsync_tree(t)
        trash = None
        if self.path.exists():
            trash = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, trash)
        os.replace(t, self.path)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        self.committed = True
        return self.path


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def find_sessions(run_dir: str | Path) -> list[Path]:
    """Session folders in a run directory (``session`` and ``session-*``), sorted by name."""
    run_dir = Path(run_dir)
    with contextlib.suppress(FileNotFoundError):
        return sorted(p for p in run_dir.iterdir()
                      if p.is_dir() and (p.name == "session" or p.name.startswith("session-"))
                      and (p / "meta.json").is_file())
    return []
