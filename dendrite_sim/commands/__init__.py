"""Sub-commands of ``dendrite-sim`` beyond the core five (run, check, list, export, docs).

Each module here is one command, in one file: it defines

- ``NAME``: the sub-command (``dendrite-sim NAME ...``);
- ``HELP``: one line for ``dendrite-sim --help``;
- ``add_arguments(parser)``: its arguments on an :class:`argparse.ArgumentParser`;
- ``run(args) -> int``: the exit code. User errors raise
  :class:`dendrite_sim.core.errors.ScenarioError`, which the command line prints as one line
  ``error: <key>: <what was expected>`` with exit code 2.

:func:`discover` finds them (sorted by name), so adding a command is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover() -> list[ModuleType]:
    """Every command module of this package, sorted by ``NAME``."""
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if all(hasattr(mod, a) for a in ("NAME", "HELP", "add_arguments", "run")):
            mods.append(mod)
    return sorted(mods, key=lambda m: m.NAME)
