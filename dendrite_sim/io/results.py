"""Run directory: the output contract of every run.

``RUN_DIR/config.toml`` (fully resolved scenario), ``provenance.json``, ``metrics.json`` (the
experiment's numbers under stable keys documented by each experiment), figures as PNG, data as
npz / NWB. Every file is written atomically.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tomli_w

from dendrite_sim.core import rng as rngmod
from dendrite_sim.io import atomic
from dendrite_sim.io.provenance import provenance


def _strip_none(d):
    if isinstance(d, dict):
        return {k: _strip_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, list):
        return [_strip_none(v) for v in d]
    return d


class RunContext:
    """What an experiment gets besides its configuration: seed, random streams, output folder."""

    def __init__(self, out: str | Path, seed: int, progress: bool | None = None):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.seed = int(seed)
        self.show_progress = sys.stderr.isatty() if progress is None else progress
        self.figures: list[str] = []

    def rng(self, name: str) -> np.random.Generator:
        return rngmod.stream(self.seed, name)

    def progress(self, iterable, total=None, desc=""):
        """A tqdm progress bar on a terminal; silent otherwise."""
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, disable=not self.show_progress, leave=False)

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


def write_config(out: Path, resolved: dict) -> None:
    atomic.write_text(Path(out) / "config.toml", tomli_w.dumps(_strip_none(resolved)))


def write_provenance(out: Path, seed: int, scenario_path: str | None) -> None:
    atomic.write_json(Path(out) / "provenance.json", provenance(seed, scenario_path))


def write_metrics(out: Path, metrics: dict) -> None:
    atomic.write_json(Path(out) / "metrics.json", metrics)
