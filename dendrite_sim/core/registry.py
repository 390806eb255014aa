"""Registry of named parts.

Scenarios name parts by string (``rule = "feedback_alignment"``). Built-in parts register
themselves with :func:`register` when their module is imported; the registry imports every
module of the packages named in :data:`BUILTIN_PACKAGES` on the first lookup (:func:`available`,
:func:`get`, :func:`load_plugin`). ``core`` names those packages as strings only, so it imports
nothing above itself and the import graph stays acyclic (``tests/test_layering.py``). A user
registers their own parts in their own file with the same decorator and lists that file
under ``scenario.plugins``::

    from dendrite_sim import register
    from dendrite_sim.core.interfaces import LearningRule

    @register("rule", "my_rule")
    class MyRule(LearningRule):
        '''One line shown by `dendrite-sim list`.'''
        ...

Kinds: task, architecture, objective, rule, experiment, neuron, indicator.

A module that defines a built-in part must lie in one of :data:`BUILTIN_PACKAGES` (a test finds
every ``@register`` in the package and checks it is).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.schema import _suggest, validate_section

KINDS = ("task", "architecture", "objective", "rule", "experiment", "neuron", "indicator")
_REGISTRY: dict[str, dict[str, type]] = {k: {} for k in KINDS}

#: Packages whose modules define the built-in parts: on the first lookup the registry imports
#: every module of these packages (found on disk, in name order), so that their ``@register``
#: decorators run. Names only: importing them here would make ``core`` import the layers above
#: it. A new built-in part is therefore one new file in one of these packages, nothing else.
BUILTIN_PACKAGES: tuple[str, ...] = (
    "dendrite_sim.architectures",
    "dendrite_sim.objectives",
    "dendrite_sim.neurons",
    "dendrite_sim.synapses",
    "dendrite_sim.rules",
    "dendrite_sim.tasks",
    "dendrite_sim.imaging",
    "dendrite_sim.experiments",
)


def builtin_modules() -> tuple[str, ...]:
    """The modules of :data:`BUILTIN_PACKAGES`, found without importing them."""
    out = []
    for pkg in BUILTIN_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        for info in sorted(pkgutil.iter_modules(spec.submodule_search_locations), key=lambda m: m.name):
            if not info.name.startswith("_"):
                out.append(f"{pkg}.{info.name}")
    return tuple(out)


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


def load_builtins() -> None:
    """Import every module of :data:`BUILTIN_PACKAGES` once, so that its parts are registered.

    The flag is set before the imports: a built-in module that looks a part up while it is
    being imported sees the parts registered so far instead of recursing. If an import fails
    the error propagates and the next lookup tries again.
    """
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        for name in builtin_modules():
            importlib.import_module(name)
    except BaseException:
        _loaded = False
        raise


def available(kind: str) -> dict[str, type]:
    """The parts of ``kind``, built-in and user-registered, sorted by name."""
    load_builtins()
    return dict(sorted(_REGISTRY[kind].items()))


def get(kind: str, name: str, key: str = "") -> type:
    """The class registered as ``name``; an unknown name is a :class:`ScenarioError` at ``key``."""
    load_builtins()
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
    """Import a user's file so that its ``@register`` decorators run.

    The built-in parts are registered first, so that a user's part registered under a
    built-in's name replaces it whatever the order of later lookups.
    """
    load_builtins()
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
