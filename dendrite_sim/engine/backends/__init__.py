"""Backends: who runs the phases of :mod:`dendrite_sim.engine.schedule`.

A backend is one module of this package, named after the backend, whose ``BACKEND`` is a class
implementing every phase (:class:`~.base.Backend`; ``tests/test_schedule.py`` checks coverage).
The names live here and only here — :data:`BACKEND_NAMES` is the list of those modules, found
on disk without importing them — and every schema takes its choices from it. Adding a backend
is therefore one file (plus its tests).

* ``numba`` — the fused run loop, generated from one emitter per phase and compiled by Numba
  (:mod:`.numba`);
* ``numpy`` — the readable reference, one method per phase, vectorised over neurons and
  synapses (:mod:`.numpy`). Both give bit-identical results.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

_NOT_BACKENDS = ("base",)

BACKEND_NAMES: tuple[str, ...] = tuple(sorted(
    m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
    if m.name not in _NOT_BACKENDS and not m.name.startswith("_")))


def backend_class(name: str):
    """The backend class of the module named ``name``."""
    if name not in BACKEND_NAMES:
        raise KeyError(f"unknown backend {name!r}; backends: {', '.join(BACKEND_NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").BACKEND
