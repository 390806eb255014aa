"""Scenario files: TOML → validated, unit-resolved configuration.

Layout of a scenario::

    [scenario]
    experiment = "train"          # a registered experiment (dendrite-sim list)
    seed = 1                      # root seed of every random stream
    description = "..."
    plugins = ["my_rule.py"]      # user files whose @register parts the scenario may name

    [task]                        # one table per section the experiment declares;
    name = "xor"                  # part sections name a registered part and its parameters
    ...

Every problem is a :class:`ScenarioError` naming the key path.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.schema import INT_MAX, INT_MIN, REQUIRED, Field, _fmt, _suggest, validate_section
from dendrite_sim.core.units import _short

SCENARIO_SCHEMA = {
    "experiment": Field("str", REQUIRED, "the registered experiment to run"),
    "seed": Field("int", 0, "root seed of every random stream", lo=0, hi=2**63 - 1),
    "description": Field("str", "", "what the scenario shows"),
    "plugins": Field("str_list", [], "Python files (relative to the scenario) that register parts"),
}


@dataclass
class Scenario:
    path: str | None
    resolved: dict      # as written to config.toml: user values plus defaults, units as strings
    seed: int
    experiment: Any     # Experiment instance
    cfg: dict           # section name -> built part, list of parts, or validated dict


MAX_DEPTH = 32            # tables and arrays nested deeper than this are refused
MAX_FILE_BYTES = 16 * 2**20


def read_toml(path: str | Path) -> dict:
    p = Path(path)
    try:
        if not p.is_file():
            what = "is a directory" if p.is_dir() else "does not exist"
            raise ScenarioError(str(path), f"expected a path to a scenario TOML file; it {what}")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ScenarioError(str(path), f"expected a scenario file under {MAX_FILE_BYTES // 2**20} MiB")
        text = p.read_text(encoding="utf-8")
    except ScenarioError:
        raise
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "expected a UTF-8 text file") from None
    except (OSError, ValueError) as exc:       # too long a name, a NUL byte, no permission
        raise ScenarioError(str(path), f"expected a readable scenario file: {_os_reason(exc)}") from None
    return parse_toml(text, str(path))


def parse_toml(text: str, key: str) -> dict:
    """TOML text → dict; invalid TOML, nesting deeper than :data:`MAX_DEPTH` and integers with
    thousands of digits are a :class:`ScenarioError` at ``key``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(key, f"expected valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(key, f"expected tables and arrays nested at most {MAX_DEPTH} deep") from None
    except ValueError as exc:                  # e.g. an integer literal beyond Python's digit limit
        raise ScenarioError(key, f"expected valid TOML values: {exc}") from None
    check_depth(data)
    return data


def check_depth(data, key: str = "", limit: int = MAX_DEPTH) -> None:
    """Raise :class:`ScenarioError` where ``data`` nests deeper than ``limit`` (naming the key
    path down to the second level, ``scenario.x``), or holds an integer outside 64 bits (TOML
    integers are 64-bit; Python's reader accepts more, which no consumer can hold; named by its
    full key path). Iterative: safe on any depth."""
    stack = [(data, key, key, 0)]
    while stack:
        node, path, root, depth = stack.pop()
        if depth > limit:
            raise ScenarioError(root or "scenario", f"expected tables and arrays nested at most {limit} deep")
        if isinstance(node, int) and not isinstance(node, bool) and not INT_MIN <= node <= INT_MAX:
            raise ScenarioError(path or "scenario", f"expected an integer that fits in 64 bits, got {_fmt(node)}")
        if isinstance(node, dict):
            items = [(f"{path}.{k}" if path else str(k), v) for k, v in node.items()]
        elif isinstance(node, list):
            items = [(f"{path}[{i}]", v) for i, v in enumerate(node)]
        else:
            continue
        for sub, v in items:
            stack.append((v, sub if depth < 8 else path, sub if depth < 2 else root, depth + 1))


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def apply_override(data: dict, assignment: str) -> None:
    """Apply ``--set a.b.c=value``; ``value`` is read as a TOML value, else as a string."""
    if "=" not in assignment:
        raise ScenarioError("--set", f"expected key=value, got {_short(assignment)}")
    key, text = assignment.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScenarioError("--set", f"expected a dotted key path before '=', got {_short(key)}")
    if len(key.split(".")) > MAX_DEPTH:
        raise ScenarioError("--set", f"expected a key path at most {MAX_DEPTH} names long")
    try:
        value = parse_toml(f"v = {text}", "--set")["v"]
    except ScenarioError as exc:
        if not exc.expected.startswith("expected valid TOML"):     # too deep, too large an integer
            where = key + exc.key[1:] if exc.key.startswith("v") else key
            raise ScenarioError(where, exc.expected) from None
        value = text                                              # not TOML: the text itself
    if isinstance(value, str) and len(value) > 100_000:
        raise ScenarioError(key, "expected a value under 100000 characters")
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ScenarioError(".".join(parts[: i + 1]), "is not a table; cannot set a key inside it")
        node = nxt
    node[parts[-1]] = value


def _plugin_path(base: Path, entry, key: str) -> Path:
    """The file a ``scenario.plugins`` entry names, checked: a ``.py`` file that exists."""
    if not entry or "\0" in entry:
        raise ScenarioError(key, f"expected a path to a Python file (.py), got {_short(entry)}")
    p = base / entry
    if p.suffix != ".py":
        raise ScenarioError(key, f"expected a path to a Python file ending in .py, got {_short(entry)}")
    try:
        if not p.is_file():
            what = "is a directory" if p.is_dir() else "does not exist"
            raise ScenarioError(key, f"expected a path to a Python file, {_short(str(p))} {what}")
        p.resolve()
    except ScenarioError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise ScenarioError(key, f"expected a readable Python file: {_os_reason(exc)}") from None
    return p


def load(path: str | Path | None = None, data: dict | None = None, overrides=(),
         seed: int | None = None) -> Scenario:
    """Read, override and validate a scenario; build its parts."""
    if data is None:
        data = read_toml(path)
    else:
        check_depth(data)
    data = _deepcopy(data)
    for ov in overrides:
        apply_override(data, ov)
    if seed is not None:
        data.setdefault("scenario", {})
        if isinstance(data["scenario"], dict):
            data["scenario"]["seed"] = seed
    if "scenario" not in data:
        raise ScenarioError("scenario", "missing table; expected [scenario] with experiment = \"...\"")
    sc = validate_section(data["scenario"], SCENARIO_SCHEMA, "scenario")
    base = Path(path).parent if path else Path.cwd()
    for i, plugin in enumerate(sc["plugins"]):
        key = f"scenario.plugins[{i}]"
        registry.load_plugin(_plugin_path(base, plugin, key), key)
    exp_cls = registry.get("experiment", sc["experiment"], "scenario.experiment")
    sections = exp_cls.sections
    for key in data:
        if key != "scenario" and key not in sections:
            allowed = ", ".join(["scenario", *sections])
            raise ScenarioError(key, f"unknown table{_suggest(key, sections)}; this experiment takes: {allowed}")
    cfg, resolved = {}, {"scenario": dict(data["scenario"], seed=sc["seed"])}
    for name, spec in sections.items():
        value = data.get(name)
        if isinstance(spec, str):                       # a part
            if value is None:
                raise ScenarioError(name, f"missing table; expected [{name}] with name = one of "
                                    f"{', '.join(registry.available(spec))}")
            with _part_errors(name):
                cfg[name] = registry.build(spec, value, name)
            resolved[name] = registry.resolved(value, spec, name)
        elif isinstance(spec, tuple) and spec[0] == "list":   # a list of parts
            kind = spec[1]
            if value is None:
                raise ScenarioError(name, f"missing; expected a list of {kind} names or tables")
            if not isinstance(value, list) or not value:
                raise ScenarioError(name, f"expected a non-empty list of {kind} names or tables")
            with _part_errors(name):
                cfg[name] = [registry.build(kind, v, f"{name}[{i}]") for i, v in enumerate(value)]
            resolved[name] = [registry.resolved(v, kind, f"{name}[{i}]") for i, v in enumerate(value)]
        else:                                           # a plain table
            cfg[name] = validate_section(value, spec, name)
            resolved[name] = {**{k: f.default for k, f in spec.items()
                                 if not f.required and f.default is not None},
                              **(value or {})}
    experiment = exp_cls()
    with _part_errors("scenario.experiment"):
        experiment.validate(cfg)
    for name, fill in getattr(exp_cls, "resolvers", {}).items():   # nested defaults, once validated
        if name in resolved:
            resolved[name] = fill(resolved[name])
    return Scenario(path=str(path) if path else None, resolved=resolved, seed=sc["seed"],
                    experiment=experiment, cfg=cfg)


@contextlib.contextmanager
def _part_errors(key: str):
    """A part that fails on a user's value with an arithmetic or memory error (a size beyond
    this machine, an integer beyond a float) becomes a :class:`ScenarioError` at ``key``."""
    try:
        yield
    except MemoryError:
        raise ScenarioError(key, "needs more memory than this machine has; expected smaller sizes") from None
    except OverflowError as exc:
        raise ScenarioError(key, f"expected smaller numbers: {exc}") from None


def _deepcopy(d):
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d
