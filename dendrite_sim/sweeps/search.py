"""Searches instead of grids: random search and Optuna, a named metric, a trial budget.

* ``random``: ``trials`` points drawn before anything runs from the root seed (uniform on
  ``[low, high]``, log-uniform when ``log``, integers when both ends are integers, uniform over
  ``choices``), then run as a grid is.
* ``optuna``: Optuna's TPE sampler (Bergstra et al. 2011, *Algorithms for hyper-parameter
  optimization*), seeded with the root seed, asked for one batch of trials per round (as many as
  the cluster has workers), each trial one point; the metric of every finished trial is told
  back in trial order, a failed trial as failed. With a fixed seed and worker count the trials
  are the same on every run, so a resumed search finds its finished trials by their resolved
  configuration and runs only the rest.

Before anything runs, the corners of the space are validated as points (every key at ``low``,
every key at ``high``, every choice), so that a bad key or range is refused with exit code 2.
Each trial's point is validated when it is asked for. The best trial is written to
``DIR/best.json`` (trial, id, values, metric, value).
"""

from __future__ import annotations

import math
from pathlib import Path

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.io import atomic
from dendrite_sim.sweeps.define import Param, Planner, Point, Search
from dendrite_sim.sweeps.table import flatten, metrics_of


def corners(planner: Planner, search: Search) -> None:
    """Validate the search space: all keys low, all high, and each choice (others low)."""
    def at(p: Param, end: str):
        return p.choices[0] if p.choices else (p.low if end == "low" else p.high)

    for end in ("low", "high"):
        planner.point(0, {p.key: at(p, end) for p in search.params}, None)
    for p in search.params:
        for c in p.choices[1:]:
            planner.point(0, {**{q.key: at(q, "low") for q in search.params}, p.key: c}, None)


def draw(p: Param, rng):
    if p.choices:
        return p.choices[int(rng.integers(len(p.choices)))]
    if p.integer:
        if p.log:
            return int(round(math.exp(rng.uniform(math.log(p.low), math.log(p.high)))))
        return int(rng.integers(p.low, p.high + 1))
    if p.log:
        return float(math.exp(rng.uniform(math.log(p.low), math.log(p.high))))
    return float(rng.uniform(p.low, p.high))


def random_points(planner: Planner, search: Search, seed: int) -> list[Point]:
    """The ``trials`` points of a random search, validated, drawn from ``seed``."""
    from dendrite_sim.core import rng as rngmod

    rng = rngmod.stream(seed, "sweep.random_search")
    return [planner.point(i, {p.key: draw(p, rng) for p in search.params}, None) for i in range(search.trials)]


def metric_value(out, point: Point, metric: str):
    """``metric`` of a finished point (a float), or ``None`` when it has no metrics."""
    m = metrics_of(out, point.id)
    if not m:
        return None
    flat = flatten(m)
    if metric not in flat:
        names = ", ".join(k for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        raise ScenarioError("sweep.search.metric", f"expected a numeric key of metrics.json; {metric!r} is "
                            f"not one (numeric keys: {names})")
    v = flat[metric]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ScenarioError("sweep.search.metric", f"expected a numeric key of metrics.json; {metric!r} is {v!r}")
    return float(v)


def optuna_search(planner: Planner, search: Search, seed: int, run_batch, batch: int, out) -> list[Point]:
    """Run an Optuna (TPE) search; ``run_batch(points)`` runs the points of one round (skipping
    those already done) and returns when they have finished. Returns every trial's point."""
    try:
        import optuna
    except ImportError:
        raise ScenarioError("sweep.search.method", "optuna needs the optuna package; install it with "
                            "pip install -e \".[sweep]\", or use method = \"random\"") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=search.direction, sampler=optuna.samplers.TPESampler(seed=seed % 2**32))
    points: list[Point] = []
    while len(points) < search.trials:
        k = min(batch, search.trials - len(points))
        trials = [study.ask() for _ in range(k)]
        batch_points = [planner.point(len(points) + i, {p.key: _suggest(t, p) for p in search.params}, None)
                        for i, t in enumerate(trials)]
        run_batch(batch_points)
        for t, pt in zip(trials, batch_points):
            value = metric_value(out, pt, search.metric)
            if value is None or not math.isfinite(value):
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t, value)
        points.extend(batch_points)
    return points


def _suggest(trial, p: Param):
    if p.choices:
        simple = all(isinstance(c, (bool, int, float, str)) for c in p.choices)
        if simple:
            return trial.suggest_categorical(p.key, list(p.choices))
        return p.choices[trial.suggest_categorical(p.key, list(range(len(p.choices))))]
    if p.integer:
        return trial.suggest_int(p.key, p.low, p.high, log=p.log)
    return trial.suggest_float(p.key, p.low, p.high, log=p.log)


def best(out, points: list[Point], search: Search) -> dict | None:
    """The best finished point by ``search.metric`` (lowest index on ties), written to
    ``best.json``; ``None`` when no point finished."""
    scored = []
    for p in points:
        try:
            v = metric_value(out, p, search.metric)
        except ScenarioError:
            v = None
        if v is not None and math.isfinite(v):
            scored.append((v if search.direction == "minimize" else -v, p.index, p, v))
    if not scored:
        return None
    _, _, p, v = min(scored, key=lambda s: (s[0], s[1]))
    rec = {"trial": p.index, "id": p.id, "values": p.values, "seed": p.seed, "metric": search.metric,
           "value": v, "direction": search.direction, "trials": len(points)}
    atomic.write_json(Path(out) / "best.json", rec)
    return rec
