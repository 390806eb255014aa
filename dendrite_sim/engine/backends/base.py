"""The backend contract: one implementation per phase of the schedule.

A backend class names, for every phase of :data:`dendrite_sim.engine.schedule.PHASES`, the
method that implements it: ``<prefix><phase>`` with the class's ``phase_prefix`` (the numpy
backend's ``phase_arrivals(n)`` runs the phase for step n; the numba backend's
``emit_arrivals(e)`` writes the phase's code into the fused loop). :func:`missing_phases` is
what the coverage test asserts to be empty for every registered backend.
"""

from __future__ import annotations

from typing import ClassVar

from dendrite_sim.engine.schedule import PHASE_NAMES


class Backend:
    """Runs steps of a :class:`~dendrite_sim.engine.network.Network`."""

    phase_prefix: ClassVar[str] = "phase_"

    def __init__(self, net):
        self.net = net

    def run_steps(self, step0: int, n_steps: int) -> int:  # pragma: no cover - abstract
        """Advance ``n_steps`` from ``step0``; return the number done (fewer only when a spike
        monitor needs a larger buffer)."""
        raise NotImplementedError

    @classmethod
    def phase_impl(cls, phase: str):
        return getattr(cls, cls.phase_prefix + phase, None)


def missing_phases(cls) -> list[str]:
    """Phases of the schedule that backend class ``cls`` does not implement."""
    return [p for p in PHASE_NAMES if not callable(cls.phase_impl(p))]
