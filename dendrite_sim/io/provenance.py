"""Provenance record written next to every run: what ran, where, with which versions."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import dendrite_sim

_DEPENDENCIES = ("numpy", "scipy", "numba", "llvmlite", "pint", "matplotlib", "scikit-learn",
                 "pynwb", "hdmf", "h5py", "brian2", "tqdm", "tomli_w")


def git_commit() -> str | None:
    here = Path(dendrite_sim.__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(seed: int, scenario_path: str | None = None) -> dict:
    deps = {}
    for name in _DEPENDENCIES:
        try:
            deps[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            deps[name] = None
    return {
        "dendrite_sim_version": dendrite_sim.__version__,
        "git_commit": git_commit(),
        "seed": int(seed),
        "scenario": scenario_path,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "command": sys.argv,
        "dependencies": deps,
    }
