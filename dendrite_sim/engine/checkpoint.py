"""Checkpoints of long runs: everything that changes while a simulation runs, to a file and back.

**What is saved.** :func:`capture` walks an object graph — a
:class:`~dendrite_sim.engine.network.Network` (populations' state variables, channels, delay
ring buffers, spike counters and burst traces; projections' weights, short-term plasticity
state and synapse-rule traces and variables; inputs; every monitor's contents so far; the step
counter), an experiment's own records (a trainer's circuit, history, epoch) — and returns
``{path: array}`` for every numpy array and number it reaches, plus the state of every
``numpy.random.Generator`` (the experiment's shuffling stream). The engine's own random numbers
are counter-based (:mod:`dendrite_sim.engine.random`: a key and the step), so the step restores
them. Classes, functions, parameter records (tuples, immutable) and the compiled backend are not
saved: a resumed run rebuilds the same objects from the same resolved scenario and
:func:`restore` writes the saved values into them (in place where the shape is unchanged,
otherwise by replacing the array; a network's backend is rebuilt on its next run), which gives
results bit-identical to a run that was never stopped.

**The file.** ``DIR/checkpoint-000042.npz``: one ``np.savez`` archive (zip, with a CRC per
member) holding the arrays by path and ``__meta__`` (JSON: format version, sequence number,
the caller's ``progress`` record such as the epoch and the biological time, the generator
states, which paths were Python scalars). It is written to a temporary file in ``DIR``,
fsynced and renamed, so a file under its final name is complete; :class:`Checkpointer` keeps
the newest ``keep`` (default two) and :func:`latest` returns the newest that loads — a damaged
newest file falls back to the one before it.

**Use in a long run** (the hook a trainer provides)::

    ck = Checkpointer(run_dir / "checkpoints", every_ms=60_000.0)
    if resume:
        saved = ck.latest()                 # None: start from the beginning
        if saved is not None:
            restore(state_objects, saved.arrays, saved.meta)
            start = saved.meta["progress"]["epoch"] + 1
    for epoch in range(start, epochs + 1):
        ...
        if ck.due(net.t):
            ck.write(capture(state_objects), {"epoch": epoch, "t_ms": net.t})
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
META = "__meta__"
_NAME = re.compile(r"^checkpoint-(\d{6,})\.npz$")
#: attributes never saved: compiled backends and caches rebuilt from the structure
SKIP_ATTRS = frozenset({"_backend_obj", "timings"})


def _is_record(obj) -> bool:
    """An object of this package whose attributes are state (not a class, module or function)."""
    if isinstance(obj, (type, types.ModuleType, types.FunctionType, types.MethodType)):
        return False
    mod = type(obj).__module__ or ""
    return (mod.startswith("dendrite_sim") or mod.startswith("dendrite_sim_plugin")) and hasattr(obj, "__dict__")


def _walk(obj, path: str, visit, seen: set) -> None:
    """Call ``visit(kind, path, container, key, value)`` for every saved leaf under ``obj``."""
    if isinstance(obj, dict):
        items = [(k, v) for k, v in obj.items() if isinstance(k, (str, int))]
    elif isinstance(obj, list):
        items = list(enumerate(obj))
        visit("len", f"{path}#len", obj, None, len(obj))
    elif _is_record(obj):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        items = [(k, v) for k, v in vars(obj).items() if k not in SKIP_ATTRS]
    else:
        return
    for k, v in items:
        sub = f"{path}/{k}"
        if isinstance(v, np.ndarray):
            if v.dtype != object:
                visit("array", sub, obj, k, v)
        elif isinstance(v, (bool, int, float, np.number, np.bool_)):
            visit("scalar", sub, obj, k, v)
        elif isinstance(v, np.random.Generator):
            visit("generator", sub, obj, k, v)
        elif isinstance(v, (dict, list)) or _is_record(v):
            _walk(v, sub, visit, seen)


def capture(objects: dict) -> tuple[dict, dict]:
    """``(arrays, meta)`` of the named objects (``{"circuit": sc, "history": hist, ...}``)."""
    arrays, scalars, gens = {}, [], {}

    def visit(kind, path, container, key, value):
        if kind == "array":
            arrays[path] = np.array(value, copy=True)
        elif kind in ("scalar", "len"):
            arrays[path] = np.asarray(value)
            if kind == "scalar" and isinstance(value, (bool, int, float)):
                scalars.append(path)
        else:
            gens[path] = value.bit_generator.state

    seen: set = set()
    for name, obj in objects.items():
        _walk({name: obj}, "", visit, seen)
    return arrays, {"scalars": scalars, "generators": _jsonable(gens)}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__array__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _unjson(obj):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return np.asarray(obj["__array__"], dtype=obj["dtype"])
        return {k: _unjson(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unjson(v) for v in obj]
    return obj


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the objects it is restored into (another scenario)."""


def restore(objects: dict, arrays: dict, meta: dict) -> None:
    """Write a checkpoint's values into freshly built ``objects`` (same names and structure as
    at :func:`capture`). Lists saved with another length (monitor buffers) take the saved
    length. Raises :class:`CheckpointMismatch` when a saved value has no place."""
    scalars = set(meta.get("scalars", ()))
    gens = _unjson(meta.get("generators", {}))
    used = set()

    def put(container, key, value):
        if isinstance(container, (dict, list)):
            container[key] = value
        else:
            setattr(container, key, value)

    def visit(kind, path, container, key, value):
        if kind == "len":
            n = int(arrays[path]) if path in arrays else value
            used.add(path)
            if n != value:                 # a grown buffer list: take the saved items
                prefix = path[: -len("#len")]
                container[:] = [_saved(arrays, f"{prefix}/{i}", scalars) for i in range(n)]
            return
        if kind == "generator":
            if path in gens:
                value.bit_generator.state = gens[path]
                used.add(path)
            return
        if path not in arrays:
            raise CheckpointMismatch(f"{path}: not in the checkpoint (a different scenario?)")
        used.add(path)
        saved = arrays[path]
        if kind == "array":
            if saved.shape == value.shape and saved.dtype == value.dtype and value.flags.writeable:
                np.copyto(value, saved)
            else:
                put(container, key, np.array(saved, copy=True))
        elif path in scalars:
            put(container, key, saved.item())
        elif isinstance(value, np.generic):
            put(container, key, saved.astype(value.dtype)[()])
        else:
            put(container, key, type(value)(saved.item()))

    nets = [net for obj in objects.values() for net in _networks(obj, set())]
    for net in nets:
        net._prepare()                     # the delay rings a first run allocates
    seen: set = set()
    for name, obj in objects.items():
        _walk({name: obj}, "", visit, seen)
    for net in nets:
        net._backend_obj = None            # rebuilt (from the cache) on the next run
    missing = [p for p in arrays if p not in used and not _inside_resized_list(p, used)]
    if missing:
        raise CheckpointMismatch(f"{missing[0]}: saved but not found in the rebuilt objects "
                                 f"({len(missing)} such values; a different scenario?)")


def _inside_resized_list(path: str, used: set) -> bool:
    head, _, tail = path.rpartition("/")
    return tail.isdigit() and f"{head}#len" in used


def _saved(arrays, path, scalars):
    v = arrays[path]
    return v.item() if path in scalars else np.array(v, copy=True)


def _networks(obj, seen):
    """Every Network reachable from ``obj`` (their backends hold references to replaced arrays)."""
    from dendrite_sim.engine.network import Network

    found = []
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, Network):
            found.append(o)
            continue
        if isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
        elif _is_record(o):
            stack.extend(vars(o).values())
    return found


# ------------------------------------------------------------------------------- files
@dataclass
class Saved:
    path: Path
    seq: int
    arrays: dict
    meta: dict


def _atomic_savez(path: Path, arrays: dict) -> None:
    """``np.savez`` to a temporary file in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


class Checkpointer:
    """Writes ``DIR/checkpoint-NNNNNN.npz`` every ``every_ms`` of biological time (checked by
    :meth:`due` at the caller's safe points), keeping the newest ``keep``."""

    def __init__(self, directory: str | Path, every_ms: float, keep: int = 2):
        if not every_ms > 0:
            raise ValueError("every_ms: expected a positive span of biological time")
        self.dir = Path(directory)
        self.every_ms = float(every_ms)
        self.keep = max(1, int(keep))
        self.last_t = 0.0
        files = self.files()
        self.seq = files[-1][0] if files else 0

    def files(self) -> list[tuple[int, Path]]:
        if not self.dir.is_dir():
            return []
        out = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := _NAME.match(p.name))]
        return sorted(out)

    def due(self, t_ms: float) -> bool:
        return t_ms - self.last_t >= self.every_ms

    def write(self, state: tuple[dict, dict], progress: dict) -> Path:
        """Write a checkpoint of ``state`` (from :func:`capture`) with the caller's ``progress``
        (JSON: epoch, example, ``t_ms`` ...); remove all but the newest ``keep``."""
        arrays, meta = state
        self.seq += 1
        meta = {**meta, "format": FORMAT_VERSION, "seq": self.seq, "progress": progress}
        path = self.dir / f"checkpoint-{self.seq:06d}.npz"
        _atomic_savez(path, {**arrays, META: np.asarray(json.dumps(meta))})
        if "t_ms" in progress:
            self.last_t = float(progress["t_ms"])
        for _, old in self.files()[: -self.keep]:
            with contextlib.suppress(OSError):
                old.unlink()
        return path

    def latest(self) -> Saved | None:
        """The newest checkpoint that loads completely (``None`` when there is none)."""
        for seq, path in reversed(self.files()):
            try:
                saved = load(path)
            except (OSError, ValueError, KeyError, EOFError):
                continue
            self.seq = max(self.seq, seq)
            self.last_t = float(saved.meta.get("progress", {}).get("t_ms", 0.0))
            return saved
        return None


def load(path: str | Path) -> Saved:
    """One checkpoint file (every member read, so a damaged file raises here)."""
    import zipfile

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path.name}: not a complete checkpoint ({exc})") from None
    meta = json.loads(str(arrays.pop(META)))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path.name}: checkpoint format {meta.get('format')}, expected {FORMAT_VERSION}")
    m = _NAME.match(path.name)
    return Saved(path, int(m.group(1)) if m else meta.get("seq", 0), arrays, meta)
