"""The results table of a sweep: one row per point, built from the point directories alone.

Columns, in order: ``point`` (its number in the sweep), ``id`` (hash of its resolved config),
every swept key (``rule.name``, ``training.learning_rate``, ...), ``seed``, ``status``
(``completed``, ``failed``, ``interrupted``, ``running``, or ``missing`` when the point has no
folder), ``error`` (the one-line reason of a failure, else empty), ``wall_time_s`` (from
``timings.json``), then every scalar of ``metrics.json`` (numbers, booleans, strings; nested
tables flattened with dots, ``timing.train_s``; lists are left in the point's ``metrics.json``;
``experiment`` and ``seed`` are not repeated). A value that is not a scalar (a list such as
``architecture.hidden = [8, 8]``) is written as JSON text, and so is every value of a column
whose values have different types, so that the table stores in Parquet.

Because the table is rebuilt from ``DIR/points/`` every time, a sweep that was killed and
resumed writes the same table as one that ran straight through; only ``wall_time_s`` differs.
``DIR/results.parquet`` needs ``pyarrow``; without it (or with ``--table csv``) the table is
``DIR/results.csv``. Read either with :func:`read` (or ``pandas.read_parquet`` /
``pandas.read_csv``).
"""

from __future__ import annotations

import json
from pathlib import Path

from dendrite_sim.io import atomic, results
from dendrite_sim.sweeps.execute import point_dir

FIXED = ("point", "id")
AFTER = ("seed", "status", "error", "wall_time_s")
SKIP_METRICS = ("experiment", "seed")


def have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def flatten(metrics: dict, prefix: str = "") -> dict:
    """The scalar leaves of ``metrics`` by dotted key (lists skipped)."""
    out = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        elif isinstance(v, (bool, int, float, str)) or v is None:
            out[key] = v
    return out


def _read_json(path: Path) -> dict:
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def metrics_of(out: str | Path, pid: str) -> dict:
    """The ``metrics.json`` of point ``pid`` (empty when it has none)."""
    return _read_json(point_dir(out, pid) / results.METRICS_FILE)


def row(out: str | Path, point, keys) -> dict:
    d = point_dir(out, point.id)
    status = results.read_status(d) if d.is_dir() else None
    rec = {"point": point.index, "id": point.id}
    for k in keys:
        rec[k] = point.values.get(k)
    rec.update(seed=point.seed, status=(status or {}).get("state", "missing"),
               error=(status or {}).get("reason") or "" if status else "",
               wall_time_s=_read_json(d / results.TIMINGS_FILE).get("wall_time_s"))
    for k, v in flatten(metrics_of(out, point.id)).items():
        if k in SKIP_METRICS:
            continue
        rec[k if k not in rec else f"metrics.{k}"] = v
    return rec


def build(out: str | Path, points, keys):
    """The table of ``points`` (a pandas DataFrame), in point order."""
    import pandas as pd

    rows = [row(out, p, keys) for p in sorted(points, key=lambda p: p.index)]
    df = pd.DataFrame(rows)
    for col in df.columns:
        vals = [v for v in df[col] if v is not None and not (isinstance(v, float) and v != v)]
        nonscalar = any(isinstance(v, (list, dict)) for v in vals)
        kinds = {type(v) for v in vals} - ({int} if {int, float} <= {type(v) for v in vals} else set())
        if nonscalar or len(kinds) > 1:
            df[col] = [None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in df[col]]
    return df


def path_of(out: str | Path, fmt: str | None = None) -> Path:
    fmt = fmt or ("parquet" if have_pyarrow() else "csv")
    return Path(out) / f"results.{fmt}"


def write(df, out: str | Path, fmt: str | None = None) -> Path:
    """Write the table atomically as ``results.parquet`` (``fmt`` parquet, the default with
    pyarrow) or ``results.csv``."""
    path = path_of(out, fmt)
    with atomic.atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False, engine="pyarrow")
        else:
            df.to_csv(tmp, index=False)
    return path


def read(path: str | Path):
    """A results table as a DataFrame (Parquet or CSV by the suffix)."""
    import pandas as pd

    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
