"""One sweep from start to end: define, validate every point, skip the finished, run the rest,
write the table, the summary figure and (for a search) the best trial.

:func:`sweep` is what ``dendrite-sim sweep`` calls. Nothing starts (no cluster, no folder)
until every point of a grid or a random search has been validated; a bad point raises a
:class:`ScenarioError` naming the key and the point. The cluster is started only when a point
is left to run, so a second run of a finished sweep starts nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from dendrite_sim.core.errors import ScenarioError, _printable
from dendrite_sim.io import atomic
from dendrite_sim.sweeps import define, execute, search, summary, table

SWEEP_FILE = "sweep.json"
SUMMARY_FILE = "summary.png"


@dataclass
class SweepResult:
    total: int = 0
    skipped: int = 0
    ran: int = 0
    failed: list = field(default_factory=list)     # (point, reason)
    table: Path | None = None
    figure: Path | None = None
    best: dict | None = None
    where: str = ""


class _LazyCluster:
    """Starts the cluster on the first batch that has a point to run."""

    def __init__(self, **kw):
        self.kw, self.cluster, self.stack = kw, None, contextlib.ExitStack()

    def get(self) -> execute.Cluster:
        if self.cluster is None:
            self.cluster = self.stack.enter_context(execute.Cluster(**self.kw))
        return self.cluster

    def close(self):
        self.stack.close()


def plan(path, overrides=(), **cli) -> tuple[define.Planner, define.SweepDef, list | None]:
    """The planner, the definition and the validated points (``None`` for an Optuna search,
    whose points are made as it goes; its space's corners are validated here)."""
    planner = define.Planner(path, overrides)
    sdef = define.with_arguments(define.from_table(planner.table), **cli)
    if sdef.search is not None:
        if sdef.grid or sdef.zips:
            raise ScenarioError("sweep.search", "expected either a search or a grid / zip, not both")
        if sdef.seeds is not None and len(sdef.seeds) > 1:
            raise ScenarioError("sweep.seeds", "a search runs one seed per trial; expected one seed")
        search.corners(planner, sdef.search)
        if sdef.search.method == "random":
            return planner, sdef, search.random_points(planner, sdef.search, _search_seed(planner, sdef))
        return planner, sdef, None
    if not (sdef.grid or sdef.zips or sdef.seeds):
        raise ScenarioError("sweep", "expected something to sweep: a [sweep] table or --grid KEY=V1,V2, "
                            "--zip, --seeds 1-8 or --search")
    for k in (sdef.summary.get("x"), sdef.summary.get("by")):
        if k is not None and k not in (*sdef.keys, "seed"):
            raise ScenarioError("sweep.summary", f"expected x and by among the swept keys "
                                f"({', '.join([*sdef.keys, 'seed'])}); got {k!r}")
    return planner, sdef, define.grid_points(planner, sdef)


def _search_seed(planner, sdef) -> int:
    return sdef.seeds[0] if sdef.seeds else int(planner.base_seed)


def _write_definition(out: Path, planner, sdef, points) -> None:
    s = sdef.search
    atomic.write_json(out / SWEEP_FILE, {
        "scenario": planner.path, "keys": sdef.keys, "seeds": sdef.seeds,
        "search": None if s is None else {"method": s.method, "metric": s.metric, "direction": s.direction,
                                          "trials": s.trials, "params": [p.__dict__ for p in s.params]},
        "points": [{"point": p.index, "id": p.id, "values": p.values, "seed": p.seed} for p in points or []]})


def sweep(path, out, overrides=(), workers=None, scheduler=None, processes=True, table_format=None,
          summary_metric=None, summary_x=None, summary_by=None, echo=print, connect_timeout=30.0, **cli) -> SweepResult:
    """Run the sweep of scenario ``path`` into ``out``; ``cli`` are the definition's command-line
    entries (:func:`dendrite_sim.sweeps.define.with_arguments`)."""
    planner, sdef, points = plan(path, overrides, **cli)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / execute.POINTS).mkdir(exist_ok=True)
    except OSError as exc:
        raise ScenarioError("--out", f"expected a directory I can write: {exc.strerror or exc}") from None
    if (out / "config.toml").exists() and not (out / SWEEP_FILE).exists():
        raise ScenarioError("--out", f"{str(out)!r} holds a run, not a sweep; choose another directory")
    execute.clean_partial(out)
    res = SweepResult()
    lazy = _LazyCluster(address=scheduler, workers=workers, processes=processes, connect_timeout=connect_timeout)
    bar = None

    def run_batch(batch):
        nonlocal bar
        todo = [p for p in batch if not execute.done(out, p.id)]
        res.skipped += len(batch) - len(todo)
        if not todo:
            return
        cluster = lazy.get()
        if not res.where:
            res.where = cluster.describe()
            echo(f"sweep: running on {res.where}")
        if bar is None:
            bar = execute.progress_bar(total if total else len(todo))
        for p, r in cluster.run(todo, out, planner.path, bar):
            res.ran += 1
            if r["state"] != "completed":
                res.failed.append((p, r.get("reason") or r["state"]))
                echo(f"sweep: point {p.index} ({p.label()}) {r['state']}: {r.get('reason')}")

    try:
        if points is not None:
            total = len(points)
            _write_definition(out, planner, sdef, points)
            n_done = sum(execute.done(out, p.id) for p in points)
            echo(f"sweep: {total} points, {n_done} already done" if n_done < total
                 else f"sweep: all {total} points already done ({n_done} of {total}); nothing to run")
            run_batch(points)
        else:
            total = sdef.search.trials
            batch = workers or (len(lazy.get().client.scheduler_info()["workers"]) if scheduler else None) or 4
            points = search.optuna_search(planner, sdef.search, _search_seed(planner, sdef), run_batch,
                                          batch, out)
            _write_definition(out, planner, sdef, points)
            echo(f"sweep: {total} trials, {res.skipped} already done, {res.ran} run")
    finally:
        if bar is not None:
            bar.close()
        lazy.close()
        if points:
            res.table = table.write(table.build(out, points, sdef.keys), out, table_format)
    res.total = len(points)
    if sdef.search is not None:
        res.best = search.best(out, points, sdef.search)
    metric = summary_metric or sdef.summary.get("metric")
    if metric:
        res.figure = _summary(out, res.table, metric, summary_x or sdef.summary.get("x"),
                              summary_by or sdef.summary.get("by"), sdef, echo)
    return res


def _summary(out: Path, table_path: Path, metric, x, by, sdef, echo) -> Path | None:
    df = table.read(table_path)
    keys = list(sdef.keys)
    numeric = [k for k in keys if k in df.columns and df[k].dtype.kind in "if"]
    x = x or (numeric[0] if numeric else keys[0] if keys else "seed")
    by = by or next((k for k in keys if k != x), None)
    try:
        fig = summary.figure(df, metric, x, by)
    except ScenarioError as exc:
        echo(f"sweep: no summary figure: {_printable(exc.line().removeprefix('error: '))}")
        return None
    import matplotlib.pyplot as plt

    path = out / SUMMARY_FILE
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
