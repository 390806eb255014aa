"""Running a sweep's points on Dask ``distributed``, each into an ordinary run directory.

Layout of a sweep directory ``DIR``::

    DIR/sweep.json              the definition and every point (number, id, values, seed)
    DIR/points/<id>/            one finished point: config.toml, provenance.json, metrics.json,
                                timings.json, status.json (completed or failed), figures, data
    DIR/points/.partial/<id>/   a point while it runs; renamed to points/<id>/ when it ends
    DIR/results.parquet         the table (sweeps.table); results.csv without pyarrow

A point runs through :func:`dendrite_sim.io.results.execute`, the path of ``dendrite-sim run``
(so its directory is the same contract, every file written atomically), in
``points/.partial/<id>/``; when it has completed or failed the folder is renamed to
``points/<id>/`` (one ``rename``, atomic on a POSIX file system), so a folder under its final
name is always a whole run. A sweep killed mid-way (SIGINT, SIGTERM or SIGKILL) leaves finished
points intact and at most some folders under ``.partial/``, which the next run of the same
sweep removes and runs again; a point is done when ``points/<id>/status.json`` says
``completed`` (:func:`done`), whatever its position in the sweep.

Execution (:class:`Cluster`): by default a ``distributed.LocalCluster`` of ``workers`` worker
processes with one thread each (a point is one process's work; the numerical libraries are not
asked to share a process), or any running cluster by its scheduler address
(``tcp://host:8786``: ``dask scheduler`` and ``dask worker`` by hand, ``dask-jobqueue`` on
SLURM/PBS, ...). The workers must see ``DIR`` and the scenario's files at the same paths (a
shared file system) and have dendrite_sim installed. A point whose worker dies (a crash, the
memory limit) is recorded as failed with the reason; the sweep goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import uuid
from pathlib import Path

from dendrite_sim.core.errors import ScenarioError, _printable
from dendrite_sim.io import results

POINTS = "points"
PARTIAL = ".partial"


def points_dir(out: str | Path) -> Path:
    return Path(out) / POINTS


def point_dir(out: str | Path, pid: str) -> Path:
    return points_dir(out) / pid


def done(out: str | Path, pid: str) -> bool:
    """Whether point ``pid`` finished in ``out``: its folder's ``status.json`` says completed and
    its ``metrics.json`` is there."""
    d = point_dir(out, pid)
    status = results.read_status(d)
    return bool(status) and status.get("state") == "completed" and (d / results.METRICS_FILE).is_file()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _settle(partial: Path, final: Path) -> None:
    """Rename a finished point's folder to its final name (replacing an older failed one)."""
    if final.exists():
        shutil.rmtree(final)
    os.rename(partial, final)
    _fsync_dir(final.parent)


def run_point(path: str, data: dict, pid: str, out: str) -> dict:
    """Run one point (on a worker): load ``data`` as the scenario at ``path``, run it into
    ``out/points/.partial/pid/`` and rename that to ``out/points/pid/``. Returns ``{"id",
    "state", "reason"}``; never raises for the point's own failure."""
    from dendrite_sim.io.scenario import load

    final = point_dir(out, pid)
    partial = points_dir(out) / PARTIAL / pid
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        sc = load(path, data=data)
        outcome = results.execute(sc, partial, progress=False)
        state, reason = outcome.state, outcome.reason
    except ScenarioError as exc:
        state, reason = "failed", exc.line().removeprefix("error: ")
        results.write_status(partial, state, reason)
    except Exception as exc:      # noqa: BLE001 - any failure of one point is that point's record
        state, reason = "failed", _printable(f"{type(exc).__name__}: {exc}", 500)
        results.write_status(partial, state, reason)
    if state in ("completed", "failed"):
        _settle(partial, final)
    return {"id": pid, "state": state, "reason": reason}


def record_lost(out: str | Path, pid: str, reason: str) -> None:
    """A point whose worker died: its folder, as far as it got, becomes ``points/pid/`` with
    ``status.json`` failed and ``reason``."""
    partial = points_dir(out) / PARTIAL / pid
    partial.mkdir(parents=True, exist_ok=True)
    results.write_status(partial, "failed", reason)
    _settle(partial, point_dir(out, pid))


def clean_partial(out: str | Path) -> int:
    """Remove the folders of points that were running when an earlier sweep stopped."""
    root = points_dir(out) / PARTIAL
    if not root.is_dir():
        return 0
    n = 0
    for p in root.iterdir():
        shutil.rmtree(p, ignore_errors=True)
        n += 1
    return n


class Cluster:
    """A Dask client on a ``LocalCluster`` (``workers`` processes of one thread; ``processes=False``
    runs the workers as threads of this process, for tests) or on the cluster at ``address``."""

    def __init__(self, address: str | None = None, workers: int | None = None, processes: bool = True,
                 connect_timeout: float = 30.0):
        self.address, self.workers, self.processes = address, workers, processes
        self.connect_timeout = connect_timeout
        self.cluster = self.client = None

    def __enter__(self):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ScenarioError("sweep", "needs Dask distributed; install it with "
                                "pip install -e \".[sweep]\" (or pip install \"dask[distributed]\")") from None
        if self.address:
            try:
                self.client = Client(self.address, timeout=self.connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ScenarioError("--scheduler", f"expected the address of a running Dask scheduler "
                                    f"(tcp://host:port); {_printable(str(exc) or type(exc).__name__, 300)}") from None
        else:
            n = self.workers or max(1, min(os.cpu_count() or 1, 4))
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=self.processes,
                                        dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        return self

    def __exit__(self, *exc):
        for thing in (self.client, self.cluster):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()
        return False

    def describe(self) -> str:
        info = self.client.scheduler_info()
        n = len(info.get("workers", {}))
        where = self.address or ("LocalCluster of processes" if self.processes else "LocalCluster of threads")
        return f"{where}, {n} worker{'s' * (n != 1)}"

    def run(self, points, out: str | Path, path: str, bar=None):
        """Submit ``points``; yield ``(point, result)`` as each finishes (a dead worker's point as
        failed). ``bar`` (a tqdm bar) is advanced per point."""
        from distributed import as_completed

        by_future = {self.client.submit(run_point, path, p.data, p.id, str(out), pure=False,
                                        key=f"point-{p.id}-{uuid.uuid4().hex[:8]}"): p for p in points}
        try:
            for fut in as_completed(by_future):
                p = by_future[fut]
                try:
                    res = fut.result()
                except Exception as exc:      # noqa: BLE001 - the worker died or the task was lost
                    reason = _printable(f"worker lost: {type(exc).__name__}: {exc}", 500)
                    with contextlib.suppress(OSError):
                        record_lost(out, p.id, reason)
                    res = {"id": p.id, "state": "failed", "reason": reason}
                if bar is not None:
                    bar.update(1)
                yield p, res
        finally:
            pending = [f for f in by_future if not f.done()]
            if pending:
                with contextlib.suppress(Exception):
                    self.client.cancel(pending)


def progress_bar(total: int, desc: str = "points"):
    """A tqdm bar over points on a terminal; silent otherwise."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="point", disable=not sys.stderr.isatty())
