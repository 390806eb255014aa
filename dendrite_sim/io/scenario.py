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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.schema import REQUIRED, Field, _suggest, validate_section

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


def read_toml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(str(path), "expected a path to a scenario TOML file; it does not exist")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), f"expected valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "expected a UTF-8 text file") from None


def apply_override(data: dict, assignment: str) -> None:
    """Apply ``--set a.b.c=value``; ``value`` is read as a TOML value, else as a string."""
    if "=" not in assignment:
        raise ScenarioError("--set", f"expected key=value, got {assignment!r}")
    key, text = assignment.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScenarioError("--set", f"expected a dotted key path before '=', got {key!r}")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ScenarioError(".".join(parts[: i + 1]), "is not a table; cannot set a key inside it")
        node = nxt
    node[parts[-1]] = value


def load(path: str | Path | None = None, data: dict | None = None, overrides=(),
         seed: int | None = None) -> Scenario:
    """Read, override and validate a scenario; build its parts."""
    if data is None:
        data = read_toml(path)
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
        registry.load_plugin(base / plugin, f"scenario.plugins[{i}]")
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
            cfg[name] = registry.build(spec, value, name)
            resolved[name] = registry.resolved(value, spec, name)
        elif isinstance(spec, tuple) and spec[0] == "list":   # a list of parts
            kind = spec[1]
            if value is None:
                raise ScenarioError(name, f"missing; expected a list of {kind} names or tables")
            if not isinstance(value, list) or not value:
                raise ScenarioError(name, f"expected a non-empty list of {kind} names or tables")
            cfg[name] = [registry.build(kind, v, f"{name}[{i}]") for i, v in enumerate(value)]
            resolved[name] = [registry.resolved(v, kind, f"{name}[{i}]") for i, v in enumerate(value)]
        else:                                           # a plain table
            cfg[name] = validate_section(value, spec, name)
            resolved[name] = {**{k: f.default for k, f in spec.items()
                                 if not f.required and f.default is not None},
                              **(value or {})}
    experiment = exp_cls()
    experiment.validate(cfg)
    return Scenario(path=str(path) if path else None, resolved=resolved, seed=sc["seed"],
                    experiment=experiment, cfg=cfg)


def _deepcopy(d):
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d
