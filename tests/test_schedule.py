"""The schedule is defined once and every registered backend implements every phase."""

from __future__ import annotations

import pytest

from dendrite_sim.engine import schedule
from dendrite_sim.engine.backends import BACKEND_NAMES, backend_class
from dendrite_sim.engine.backends.base import Backend, missing_phases
from dendrite_sim.engine.network import Network


def test_phases_are_unique_and_ordered():
    names = schedule.PHASE_NAMES
    assert len(set(names)) == len(names)
    assert names.index("arrivals") < names.index("update") < names.index("propagate") < names.index("plasticity")
    for p in schedule.PHASES:
        assert p.domain and p.summary


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_backend_implements_every_phase(name):
    cls = backend_class(name)
    assert issubclass(cls, Backend)
    assert missing_phases(cls) == []


def test_coverage_check_can_fail():
    class Partial(Backend):
        phase_prefix = "phase_"

        def phase_arrivals(self, n):
            pass

    assert missing_phases(Partial) == [p for p in schedule.PHASE_NAMES if p != "arrivals"]


def test_generated_loop_has_one_block_per_phase_and_readable_names():
    net = Network(dt=0.1, seed=1, backend="numba")
    net.population("pyr", 10, "naud_sprekeler")
    net.poisson_group("fb", 5, rate=10.0)
    net.projection("fb", "pyr", "dend_exc", weight=1.0, name="fb_dend", plasticity={"rule": "stdp", "preset": "pair"})
    net.run(0.2)
    src = net._backend().kernel.source
    lines = [ln.strip() for ln in src.splitlines()]
    for k, phase in enumerate(schedule.PHASES, start=1):
        assert sum(ln.startswith(f"# phase {k}: {phase.name}") for ln in lines) == 1
    for arg in ("pyr__v_soma", "pyr__ring_dend_exc", "fb_dend__w", "fb_dend__pre_r1", "fb__spike_idx"):
        assert arg in net._backend().kernel.arg_names


def test_population_kinds_declare_schedule_phases():
    from dendrite_sim.engine.graph import NeuronPopulation, PoissonSource, SpikeSource

    for kind in (NeuronPopulation, PoissonSource, SpikeSource):
        assert set(kind.phases) <= set(schedule.PHASE_NAMES), kind
        assert {"update", "bookkeeping"} <= set(kind.phases), kind
    assert "arrivals" in NeuronPopulation.phases and "arrivals" not in PoissonSource.phases
