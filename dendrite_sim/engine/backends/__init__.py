"""Backends: who runs the phases of :mod:`dendrite_sim.engine.schedule`.

The names of the backends live here and only here; every schema takes its choices from
:data:`BACKEND_NAMES`. A backend is one module with a class implementing every phase
(:class:`~.base.Backend`); adding one is one file plus an entry below.

* ``numba`` — the fused run loop, generated from one emitter per phase and compiled by Numba
  (:mod:`.numba`);
* ``numpy`` — the readable reference, one method per phase, vectorised over neurons and
  synapses (:mod:`.numpy`). Both give bit-identical results.
"""

from __future__ import annotations

import importlib

BACKENDS: dict[str, str] = {
    "numba": "dendrite_sim.engine.backends.numba:NumbaBackend",
    "numpy": "dendrite_sim.engine.backends.numpy:NumpyBackend",
}
BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)


def backend_class(name: str):
    """The backend class registered as ``name``."""
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)
