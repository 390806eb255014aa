"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A crash mid-write never leaves a truncated file under the final name. The file gets the mode a
plain ``open()`` would give it (0666 less the user's umask), not the 0600 of a temporary file,
so that colleagues on a shared system can read results when the umask allows it. JSON is
always strict: NaN and ±inf are written as ``null`` (``metrics.json`` refuses them earlier, see
:func:`dendrite_sim.io.results.write_metrics`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path


def umask() -> int:
    """The process's umask, read without changing it where Linux allows (``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """0666 less the umask: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """0777 less the umask: the mode ``mkdir`` gives a new folder."""
    return 0o777 & ~umask()


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj) -> None:
    """Strict JSON (no NaN/Infinity literals: non-finite floats become ``null``), keys sorted."""
    text = json.dumps(strict(obj), indent=2, sort_keys=True, allow_nan=False)
    write_text(path, text + "\n")


def strict(obj):
    """``obj`` with numpy values as Python values and non-finite floats as ``None``."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist())
    if isinstance(obj, np.generic):
        return strict(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return _jsonable(obj)


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
