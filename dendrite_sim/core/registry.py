"""Registry of named parts.

Scenarios name parts by string (``rule = "feedback_alignment"``). Built-in parts register
themselves when :mod:`dendrite_sim.builtins` is imported; a user registers their own in their
own file with the same decorator and lists that file under ``scenario.plugins``::

    from dendrite_sim import register
    from dendrite_sim.core.interfaces import LearningRule

    @register("rule", "my_rule")
    class MyRule(LearningRule):
        '''One line shown by `dendrite-sim list`.'''
        ...

Kinds: task, architecture, objective, rule, experiment, neuron, indicator.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.schema import _suggest, validate_section

KINDS = ("task", "architecture", "objective", "rule", "experiment", "neuron", "indicator")
_REGISTRY: dict[str, dict[str, type]] = {k: {} for k in KINDS}
_loaded = False


def register(kind: str, name: str):
    """Class decorator: register ``cls`` as part ``name`` of ``kind``."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown part kind {kind!r}; kinds: {', '.join(KINDS)}")

    def deco(cls):
        cls.registered_name = name
        cls.kind = kind
        _REGISTRY[kind][name] = cls
        return cls

    return deco


def _load_builtins():
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module("dendrite_sim.builtins")


def available(kind: str) -> dict[str, type]:
    _load_builtins()
    return dict(sorted(_REGISTRY[kind].items()))


def get(kind: str, name: str, key: str = "") -> type:
    """The class registered as ``name``; an unknown name is a :class:`ScenarioError` at ``key``."""
    _load_builtins()
    parts = _REGISTRY[kind]
    if not isinstance(name, str) or name not in parts:
        raise ScenarioError(key or kind, f"unknown {kind} {name!r}{_suggest(str(name), parts)}; "
                            f"available: {', '.join(sorted(parts))}")
    return parts[name]


def describe(cls) -> str:
    doc = (cls.__doc__ or "").strip().splitlines()
    return doc[0].strip() if doc else ""


def build(kind: str, section: Mapping[str, Any] | str, key: str, **extra):
    """Validate a part's section (``{"name": ..., params...}`` or just a name) and instantiate."""
    if isinstance(section, str):
        section = {"name": section}
    if not isinstance(section, Mapping):
        raise ScenarioError(key, f"expected a {kind} name or a table with 'name', got {section!r}")
    if "name" not in section:
        raise ScenarioError(f"{key}.name", f"missing; expected one of {', '.join(available(kind))}")
    cls = get(kind, section["name"], f"{key}.name")
    params = validate_section(section, getattr(cls, "params", {}), key, ignore=("name",))
    try:
        return cls(**params, **extra)
    except ScenarioError:
        raise


def resolved(section: Mapping[str, Any] | str, kind: str, key: str) -> dict:
    """The section with defaults filled in, as written into ``config.toml``."""
    if isinstance(section, str):
        section = {"name": section}
    cls = get(kind, section.get("name"), f"{key}.name")
    params = validate_section(section, getattr(cls, "params", {}), key, ignore=("name",))
    return {"name": section["name"], **{k: section[k] for k in params if k in section},
            **{k: v for k, v in _raw_defaults(cls).items() if k not in section}}


def _raw_defaults(cls) -> dict:
    out = {}
    for k, f in getattr(cls, "params", {}).items():
        if not f.required and f.default is not None:
            out[k] = f.default
    return out


def load_plugin(path: str | Path, key: str) -> None:
    """Import a user's file so that its ``@register`` decorators run."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(key, f"expected a path to a Python file, {str(p)!r} does not exist")
    modname = f"dendrite_sim_plugin_{abs(hash(str(p.resolve())))}"
    if modname in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(modname, p)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # the user's code failed: say where, in one line
        del sys.modules[modname]
        raise ScenarioError(key, f"importing {str(p)!r} failed: {type(exc).__name__}: {exc}") from None
