"""The architecture vocabulary: one description, instantiated by the rate and the spiking
substrate (layered and microcircuit), and the checks a described circuit gets."""

import numpy as np
import pytest

from dendrite_sim.architectures.microcircuit import Microcircuit
from dendrite_sim.core.circuit import Circuit, Pathway, Phase, Population
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.circuit import SpikingCircuit, SpikingConfig

CFG = dict(backend="numpy", dt=0.5, params={"g_B": 1.0, "g_A": 0.8}, output_params={"g_A": 0.0},
           interneuron_params={"g_A": 0.0}, teacher_rate=1000.0, nudging_conductance=0.6)


def test_microcircuit_description_has_interneurons_and_their_pathways():
    c = Microcircuit(hidden=[6, 5]).describe(4, 3)
    assert c.sizes == [4, 6, 5, 3]
    inter = {p.name: p.n for p in c.populations if p.role == "interneuron"}
    assert inter == {"inter1": 5, "inter2": 3}              # one per pyramid of the layer above
    got = {q.name: (q.pre, q.post, q.compartment, q.kind) for q in c.pathways}
    assert got["td1"] == ("hidden2", "hidden1", "apical", "feedback")
    assert got["ip2"] == ("hidden2", "inter2", "basal", "lateral")
    assert got["pi2"] == ("inter2", "hidden2", "apical", "lateral")
    assert got["nudge2"] == ("output", "inter2", "soma", "nudging")
    assert c.pathway("nudge1").connectivity == "one_to_one" and not c.pathway("nudge1").plastic
    # the rate instance of the same architecture has the same layer sizes
    net = Microcircuit(hidden=[6, 5]).build(4, 3, np.random.default_rng(0))
    assert net.sizes == c.sizes


def test_spiking_microcircuit_builds_and_nudges_interneurons_one_to_one():
    c = Microcircuit(hidden=[6]).describe(4, 3)
    sc = SpikingCircuit(c, SpikingConfig(**CFG), np.random.default_rng(0), seed=1)
    assert sc.weights("ip1").shape == (3, 6) and sc.weights("pi1").shape == (6, 3)
    assert set(sc.nudgers) == {"inter1"} and sc.nudgers["inter1"][0] == "output"
    # each interneuron is pulled toward its partner's somatic potential U: the nudging sources'
    # mean conductances are g_E = f g_som, g_I = (1 − f) g_som, f = (U − E_I)/(E_E − E_I), set from
    # the partner's mean potential over the last nudging interval
    rec = sc.present(np.ones(4), None, (Phase("forward", 100.0, 20.0),))
    assert rec["forward"].values["inter1"]["v_soma"].shape == (160, 3)
    out = rec["forward"].values["output"]["v_soma"][-10:].mean(axis=0)       # the last 5 ms interval
    teacher = sc.nudgers["inter1"][1]
    f = np.clip((out + 8.0) / 16.0, 0.0, 1.0)
    np.testing.assert_allclose(teacher.exc.spike_prob, np.repeat(f, 20) * teacher.p1, rtol=1e-12)
    np.testing.assert_allclose(teacher.inh.spike_prob, np.repeat(1 - f, 20) * teacher.p1, rtol=1e-12)
    sc.net.state_monitor("inter1", ["soma_exc", "soma_inh"])
    sc.net.run(400.0)                                     # targets held: the conductances' means are exact
    m = sc.net.state_monitors[-1]
    np.testing.assert_allclose(m["soma_exc"].mean(axis=0), 0.6 * f, atol=0.04)
    np.testing.assert_allclose(m["soma_inh"].mean(axis=0), 0.6 * (1 - f), atol=0.04)


def test_circuit_consistency_and_stability_are_checked():
    with pytest.raises(ValueError, match="one_to_one needs equal sizes"):
        Circuit((Population("a", 3, "input", ("soma",)), Population("b", 2, "output", ("soma", "basal"), 1)),
                (Pathway("n", "a", "b", "soma", "nudging", connectivity="one_to_one"),))
    with pytest.raises(ValueError, match="has no apical compartment"):
        Circuit((Population("a", 3, "input", ("soma",)), Population("b", 2, "output", ("soma", "basal"), 1)),
                (Pathway("f", "a", "b", "apical"),))
    c = Microcircuit(hidden=[6]).describe(4, 3)
    with pytest.raises(ScenarioError, match="spiking.dt"):     # forward Euler with g_tot dt ≥ 2
        SpikingCircuit(c, SpikingConfig(**{**CFG, "dt": 1.0}), np.random.default_rng(0), seed=1)
