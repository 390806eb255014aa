"""The sweep definition: which points a sweep runs, each validated before anything runs.

In the scenario, a ``[sweep]`` table (ignored by ``dendrite-sim run``, which runs the base
point)::

    [sweep]
    seeds = "1-4"                        # or [1, 2, 3, 4]; innermost loop; default: the scenario's seed

    [sweep.grid]                         # the Cartesian product, first key outermost
    "rule.name" = ["backprop", "feedback_alignment"]
    "training.learning_rate" = [0.1, 0.5]

    [sweep.zip]                          # lists of one length, taken together (one more grid axis)
    "training.epochs" = [100, 300]
    "task.repeats" = [1, 3]

    [sweep.search]                       # instead of a grid: a search (see sweeps.search)
    method = "optuna"                    # or "random"
    metric = "final_train_accuracy"
    direction = "maximize"
    trials = 20
    [sweep.search.params]
    "training.learning_rate" = {low = 1e-3, high = 10.0, log = true}
    "rule.name" = {choices = ["backprop", "feedback_alignment"]}

    [sweep.summary]                      # the summary figure (sweeps.summary)
    metric = "final_train_accuracy"
    x = "training.learning_rate"
    by = "rule.name"

On the command line the same: ``--grid KEY=V1,V2`` (repeatable), ``--zip KEY=V1,V2``,
``--seeds 1-8`` (``1,3,5`` and ``1-4,9`` too), ``--search optuna|random --metric NAME
--trials N --param KEY=LOW:HIGH[:log]`` or ``--param KEY=A,B,C`` (choices). A value is read as a
TOML value (``0.1``, ``[8, 8]``, ``true``), else as a string; commas inside brackets or quotes do
not split. A command-line entry replaces the table's entry of the same key.

Every point is its base scenario (the file, then ``--set``) with the point's values assigned
and its seed as ``scenario.seed``, validated by :func:`dendrite_sim.io.scenario.load` exactly
as ``dendrite-sim check`` does; a bad point is a :class:`ScenarioError` naming the key, with
the point (its number and values) appended to what was expected. A point is named by
:func:`point_id`, a hash of its resolved configuration (``config.toml``), so a resumed sweep
finds its finished points by what they ran, not by their position.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.schema import _suggest
from dendrite_sim.core.units import _short
from dendrite_sim.io import atomic
from dendrite_sim.io.scenario import apply_override, load, parse_toml, read_toml

TABLE_KEYS = ("grid", "zip", "seeds", "search", "summary")
SEARCH_KEYS = ("method", "metric", "direction", "trials", "params")
SEARCH_METHODS = ("optuna", "random")
SUMMARY_KEYS = ("metric", "x", "by")
MAX_POINTS = 100_000
SEED_MAX = 2**63 - 1


@dataclass(frozen=True)
class Param:
    """One searched key: a range ``[low, high]`` (log-uniform when ``log``; integers when both
    ends are integers) or a list of ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple = ()


@dataclass(frozen=True)
class Search:
    method: str
    metric: str
    direction: str = "maximize"
    trials: int = 20
    params: tuple = ()          # of Param


@dataclass
class SweepDef:
    grid: dict = field(default_factory=dict)      # key -> list of values
    zips: dict = field(default_factory=dict)      # key -> list of values (one length)
    seeds: list | None = None
    search: Search | None = None
    summary: dict = field(default_factory=dict)   # metric, x, by

    @property
    def keys(self) -> list[str]:
        """The swept keys, in table order (grid, zip, then searched)."""
        keys = [*self.grid, *self.zips]
        if self.search is not None:
            keys += [p.key for p in self.search.params]
        return keys


@dataclass
class Point:
    """One run of the sweep: its number, the values of the swept keys, its seed, the scenario
    data it runs (base, values assigned, seed set) and its id (hash of the resolved config)."""

    index: int
    values: dict
    seed: int
    data: dict
    id: str

    def label(self) -> str:
        parts = [f"{k}={_short(v)}" for k, v in self.values.items()]
        return ", ".join([*parts, f"seed={self.seed}"])


# ------------------------------------------------------------------------------- parsing
def split_values(text: str) -> list[str]:
    """``"a,[1, 2],'x,y'"`` → ``["a", "[1, 2]", "'x,y'"]``: commas outside brackets and quotes."""
    out, depth, quote, cur = [], 0, None, []
    for c in text:
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    out.append("".join(cur).strip())
    return out


def parse_value(text: str):
    """A command-line value: a TOML value (``0.1``, ``[8]``, ``true``, ``"x"``), else the text."""
    try:
        return parse_toml(f"v = {text}", "value")["v"]
    except ScenarioError:
        return text


def parse_assignment(text: str, flag: str) -> tuple[str, list]:
    """``KEY=V1,V2`` → ``(KEY, [v1, v2])``."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")) or not rest.strip():
        raise ScenarioError(flag, f"expected KEY=VALUE1,VALUE2,... with a dotted key, got {_short(text)}")
    values = split_values(rest)
    if any(v == "" for v in values):
        raise ScenarioError(flag, f"{key}: expected comma-separated values with none empty, got {_short(rest)}")
    return key, [parse_value(v) for v in values]


def parse_seeds(spec, key: str = "--seeds") -> list[int]:
    """``"1-8"``, ``"1,3,5"``, ``"1-4,9"`` or a list of integers → the seeds, in order, distinct."""
    if isinstance(spec, list):
        items = spec
    elif isinstance(spec, str):
        items = []
        for part in (p.strip() for p in spec.split(",")):
            lo, dash, hi = part.partition("-")
            if not (lo.strip().isdigit() and (not dash or hi.strip().isdigit())) or len(part) > 40:
                raise ScenarioError(key, f"expected seeds as 1-8, 1,3,5 or 1-4,9; got {_short(spec)}")
            a, b = int(lo), int(hi) if dash else int(lo)
            if b < a or b - a >= MAX_POINTS:
                raise ScenarioError(key, f"expected a range LOW-HIGH with LOW <= HIGH and fewer than "
                                    f"{MAX_POINTS} seeds; got {_short(part)}")
            items.extend(range(a, b + 1))
    else:
        raise ScenarioError(key, f"expected a list of seeds or a string such as \"1-8\"; got {_short(spec)}")
    if not items:
        raise ScenarioError(key, "expected at least one seed")
    for s in items:
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= SEED_MAX:
            raise ScenarioError(key, f"expected non-negative integer seeds below 2**63; got {_short(s)}")
    if len(set(items)) != len(items):
        raise ScenarioError(key, "expected distinct seeds; a seed repeats")
    return list(items)


def _values(v, key: str) -> list:
    if not isinstance(v, list) or not v:
        raise ScenarioError(key, f"expected a non-empty list of values; got {_short(v)}")
    return v


def _param(key: str, spec, where: str) -> Param:
    if not isinstance(spec, dict):
        raise ScenarioError(where, "expected a table {low = ..., high = ..., log = true} or {choices = [...]}")
    for k in spec:
        if k not in ("low", "high", "log", "choices"):
            raise ScenarioError(f"{where}.{k}", f"unknown key{_suggest(k, ('low', 'high', 'log', 'choices'))}; "
                                "allowed: low, high, log, choices")
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise ScenarioError(where, "expected either choices or low/high, not both")
        return Param(key, choices=tuple(_values(spec["choices"], f"{where}.choices")))
    if "low" not in spec or "high" not in spec:
        raise ScenarioError(where, "expected low and high (or choices)")
    lo, hi, log = spec["low"], spec["high"], spec.get("log", False)
    for name, v in (("low", lo), ("high", hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ScenarioError(f"{where}.{name}", f"expected a finite number; got {_short(v)}")
    if not lo < hi:
        raise ScenarioError(where, f"expected low < high; got {lo} and {hi}")
    if not isinstance(log, bool):
        raise ScenarioError(f"{where}.log", f"expected true or false; got {_short(log)}")
    if log and lo <= 0:
        raise ScenarioError(f"{where}.low", f"expected low > 0 on a log scale; got {lo}")
    integer = isinstance(lo, int) and isinstance(hi, int)
    return Param(key, float(lo) if not integer else lo, float(hi) if not integer else hi, log, integer)


def parse_param(text: str) -> Param:
    """``--param KEY=LOW:HIGH[:log]`` or ``--param KEY=A,B,C``."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key or not rest:
        raise ScenarioError("--param", f"expected KEY=LOW:HIGH[:log] or KEY=A,B,C; got {_short(text)}")
    if ":" in rest and "," not in rest:
        bits = rest.split(":")
        if len(bits) not in (2, 3) or (len(bits) == 3 and bits[2] != "log"):
            raise ScenarioError("--param", f"{key}: expected LOW:HIGH or LOW:HIGH:log; got {_short(rest)}")
        spec = {"low": parse_value(bits[0]), "high": parse_value(bits[1]), "log": len(bits) == 3}
    else:
        spec = {"choices": [parse_value(v) for v in split_values(rest)]}
    return _param(key, spec, f"--param {key}")


def _search(table, where: str) -> Search:
    if not isinstance(table, dict):
        raise ScenarioError(where, "expected a table with method, metric, trials and params")
    for k in table:
        if k not in SEARCH_KEYS:
            raise ScenarioError(f"{where}.{k}", f"unknown key{_suggest(k, SEARCH_KEYS)}; allowed: "
                                + ", ".join(SEARCH_KEYS))
    method = table.get("method", "optuna")
    if method not in SEARCH_METHODS:
        raise ScenarioError(f"{where}.method", f"expected one of {', '.join(SEARCH_METHODS)}; got {_short(method)}")
    metric = table.get("metric")
    if not isinstance(metric, str) or not metric:
        raise ScenarioError(f"{where}.metric", "expected the metrics.json key to optimise, e.g. "
                            "\"final_train_accuracy\" (nested keys dotted)")
    direction = table.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise ScenarioError(f"{where}.direction", f"expected maximize or minimize; got {_short(direction)}")
    trials = table.get("trials", 20)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_POINTS:
        raise ScenarioError(f"{where}.trials", f"expected an integer from 1 to {MAX_POINTS}; got {_short(trials)}")
    params = table.get("params") or {}
    if not isinstance(params, dict) or not params:
        raise ScenarioError(f"{where}.params", "expected a table of searched keys, e.g. "
                            "\"training.learning_rate\" = {low = 1e-3, high = 10.0, log = true}")
    return Search(method, metric, direction, trials,
                  tuple(_param(k, v, f"{where}.params.{k}") for k, v in params.items()))


def from_table(table, where: str = "sweep") -> SweepDef:
    """The ``[sweep]`` table, validated."""
    sdef = SweepDef()
    if table is None:
        return sdef
    if not isinstance(table, dict):
        raise ScenarioError(where, "expected a table")
    for k in table:
        if k not in TABLE_KEYS:
            raise ScenarioError(f"{where}.{k}", f"unknown key{_suggest(k, TABLE_KEYS)}; allowed: "
                                + ", ".join(TABLE_KEYS))
    for name, target in (("grid", sdef.grid), ("zip", sdef.zips)):
        sub = table.get(name, {})
        if not isinstance(sub, dict):
            raise ScenarioError(f"{where}.{name}", "expected a table of key = [values]")
        for k, v in sub.items():
            target[k] = _values(v, f"{where}.{name}.{k}")
    if "seeds" in table:
        sdef.seeds = parse_seeds(table["seeds"], f"{where}.seeds")
    if "search" in table:
        sdef.search = _search(table["search"], f"{where}.search")
    summ = table.get("summary", {})
    if not isinstance(summ, dict):
        raise ScenarioError(f"{where}.summary", "expected a table with metric, x and by")
    for k, v in summ.items():
        if k not in SUMMARY_KEYS:
            raise ScenarioError(f"{where}.summary.{k}", f"unknown key{_suggest(k, SUMMARY_KEYS)}; allowed: "
                                + ", ".join(SUMMARY_KEYS))
        if not isinstance(v, str) or not v:
            raise ScenarioError(f"{where}.summary.{k}", f"expected a key name; got {_short(v)}")
    sdef.summary = dict(summ)
    return sdef


def with_arguments(sdef: SweepDef, grid=(), zips=(), seeds=None, search=None, metric=None,
                   direction=None, trials=None, params=()) -> SweepDef:
    """``sdef`` with the command line's entries (they replace the table's entries of a key)."""
    for text in grid:
        k, v = parse_assignment(text, "--grid")
        sdef.grid[k] = v
    if zips:
        sdef.zips = dict(parse_assignment(t, "--zip") for t in zips)
    if seeds is not None:
        sdef.seeds = parse_seeds(seeds)
    if search or params or (sdef.search is not None and (metric or direction or trials)):
        old = sdef.search
        plist = {p.key: p for p in (old.params if old else ())}
        plist.update({p.key: p for p in (parse_param(t) for t in params)})
        table = {"method": search or (old.method if old else "optuna"),
                 "direction": direction or (old.direction if old else "maximize"),
                 "trials": trials if trials is not None else (old.trials if old else 20)}
        if not (metric or old):
            raise ScenarioError("--metric", "expected the metrics.json key a search optimises, e.g. "
                                "--metric final_train_accuracy")
        table["metric"] = metric or old.metric
        spec = _search({**table, "params": {"_": {"low": 0, "high": 1}}}, "--search")   # checks the scalars
        if not plist:
            raise ScenarioError("--param", "expected at least one searched key: --param KEY=LOW:HIGH[:log]")
        sdef.search = Search(spec.method, spec.metric, spec.direction, spec.trials, tuple(plist.values()))
    elif metric and not sdef.summary.get("metric"):
        sdef.summary["metric"] = metric
    return sdef


def combos(sdef: SweepDef) -> list[dict]:
    """The grid × zip combinations, in order (first grid key outermost, the zip last)."""
    lengths = {k: len(v) for k, v in sdef.zips.items()}
    if len(set(lengths.values())) > 1:
        raise ScenarioError("sweep.zip", "expected lists of one length; got "
                            + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
    axes = [[(k, v) for v in vals] for k, vals in sdef.grid.items()]
    if sdef.zips:
        n = next(iter(lengths.values()))
        axes.append([tuple((k, sdef.zips[k][i]) for k in sdef.zips) for i in range(n)])
    out = []
    for combo in itertools.product(*axes):
        values = {}
        for item in combo:
            for k, v in (item if isinstance(item[0], tuple) else (item,)):
                values[k] = v
        out.append(values)
    return out


# ------------------------------------------------------------------------------- points
def _canonical(v):
    """``1.0`` and ``1`` as one value (a float key reads both the same)."""
    if isinstance(v, dict):
        return {k: _canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_canonical(x) for x in v]
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def point_id(resolved: dict) -> str:
    """16 hex digits of the SHA-256 of the resolved configuration (canonical JSON; an integral
    float written as its integer)."""
    text = json.dumps(_canonical(atomic.strict(resolved)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _assign(data: dict, key: str, value) -> None:
    apply_override(data, f"{key}=0")           # the key path, checked as --set checks it
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value


def _copy(d):
    if isinstance(d, dict):
        return {k: _copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_copy(v) for v in d]
    return d


class Planner:
    """A scenario file with its ``[sweep]`` table removed and ``--set`` applied: makes
    validated :class:`Point` s from values and a seed."""

    def __init__(self, path: str | Path, overrides=()):
        self.path = str(Path(path).resolve())
        data = read_toml(path)
        self.table = data.pop("sweep", None)
        for ov in overrides:
            apply_override(data, ov)
        self.base = data
        scen = data.get("scenario")
        self.base_seed = scen.get("seed", 0) if isinstance(scen, dict) else 0

    def point(self, index: int, values: dict, seed: int | None) -> Point:
        data = _copy(self.base)
        label = ", ".join([*(f"{k}={_short(v)}" for k, v in values.items()),
                           *([f"seed={seed}"] if seed is not None else [])])
        try:
            for k, v in values.items():
                if k in ("scenario.seed", "seed"):
                    raise ScenarioError(k, "expected the seeds in sweep.seeds / --seeds, not in the grid")
                _assign(data, k, v)
            if seed is not None:
                data.setdefault("scenario", {})
                if isinstance(data["scenario"], dict):
                    data["scenario"]["seed"] = seed
            sc = load(self.path, data=data)
        except ScenarioError as exc:
            raise type(exc)(exc.key, f"{exc.expected} (in sweep point {index}: {label})") from None
        return Point(index, dict(values), sc.seed, data, point_id(sc.resolved))


def grid_points(planner: Planner, sdef: SweepDef) -> list[Point]:
    """Every point of a grid / zip / seeds sweep, validated, in order (seeds innermost)."""
    seeds = sdef.seeds or [None]
    cs = combos(sdef)
    if len(cs) * len(seeds) > MAX_POINTS:
        raise ScenarioError("sweep", f"expected at most {MAX_POINTS} points; this sweep has {len(cs) * len(seeds)}")
    points = [planner.point(i, values, seed)
              for i, (values, seed) in enumerate(itertools.product(cs, seeds))]
    unique_ids(points)
    return points


def unique_ids(points: list[Point]) -> None:
    """Refuse two points that run the same configuration (a value listed twice)."""
    seen = {}
    for p in points:
        if p.id in seen:
            q = seen[p.id]
            raise ScenarioError("sweep", f"expected distinct points; point {q.index} ({q.label()}) and point "
                                f"{p.index} ({p.label()}) resolve to the same configuration")
        seen[p.id] = p
