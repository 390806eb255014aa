"""A synapse rule written by a user in one file (tests/data/plugins/dendritic_hebb.py, a
per-step rule driven by the postsynaptic dendritic voltage) changes the weights as its
equation says, on both backends: compared with a direct numpy integration of

    psp_j ← psp_j · exp(−dt/τ_psp)           (every step, then)
    w_ij  ← clip(w_ij + dt · η · psp_j · (V_d,i − θ), w_min, w_max)
    psp_j ← psp_j + 1                         (at each spike of j)

from the recorded presynaptic spikes and postsynaptic dendritic voltages (V_d after this step's
update: the value the next step's state monitor records)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.network import Network

PLUGIN = Path(__file__).parent / "data" / "plugins" / "dendritic_hebb.py"
DT = 0.1
STEPS = 3000
PARAMS = {"eta": 0.02, "tau_psp": "8 ms", "theta": "-62 mV", "w_min": 0.0, "w_max": 150.0}


def build(backend: str) -> tuple[Network, object]:
    registry.load_plugin(PLUGIN, "scenario.plugins")
    net = Network(dt=DT, seed=4, backend=backend)
    net.poisson_group("pre", 20, rate=40.0)
    net.population("pyr", 6, "naud_sprekeler")
    net.current("pyr", "dend", bias=np.linspace(0.0, 500.0, 6))
    net.current("pyr", "soma", bias=300.0)
    proj = net.projection("pre", "pyr", "dend_exc", "fixed_probability", p=0.5, weight=60.0,
                          plasticity={"rule": "dendritic_hebb", **PARAMS})
    return net, proj


def direct(pre_steps: list[np.ndarray], v_after: np.ndarray, proj) -> np.ndarray:
    """The rule's equation integrated in numpy from recorded spikes and voltages."""
    eta, tau, theta, w_min, w_max = 0.02, 8.0, -62.0, 0.0, 150.0
    pre_of, post_of = proj.conn.pre_indices(), proj.conn.indices
    w = np.full(proj.conn.nnz, 60.0)
    psp = np.zeros(20)
    f = math.exp(-DT / tau)
    for n in range(STEPS):
        psp *= f
        w = np.minimum(np.maximum(w + DT * eta * psp[pre_of] * (v_after[n, post_of] - theta), w_min), w_max)
        psp[pre_steps[n]] += 1.0
    return w


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_user_rule_changes_weights_as_its_equation(backend):
    net, proj = build(backend)
    spikes = net.spike_monitor("pre", events=False, bursts=False)
    vd = net.state_monitor("pyr", ["v_dend"])
    net.run(STEPS * DT)
    v_rec = np.asarray(vd["v_dend"])                  # (STEPS, 6): values at the start of each step
    v_after = np.vstack([v_rec[1:], net["pyr"].state["v_dend"][None, :]])
    steps = np.rint(np.asarray(spikes.t) / DT).astype(int)
    pre_steps = [np.asarray(spikes.i)[steps == n] for n in range(STEPS)]
    expected = direct(pre_steps, v_after, proj)
    np.testing.assert_allclose(proj.conn.weights, expected, rtol=1e-12, atol=1e-9)
    moved = np.abs(proj.conn.weights - 60.0)
    assert moved.max() > 5.0                          # the rule did something...
    assert (proj.conn.weights == 0.0).any() or (proj.conn.weights < 60.0).any()   # ...both ways
    assert (proj.conn.weights > 60.0).any()


def test_backends_bit_identical():
    out = []
    for backend in ("numpy", "numba"):
        net, proj = build(backend)
        net.run(STEPS * DT)
        out.append(proj.conn.weights.copy())
    np.testing.assert_array_equal(out[0], out[1])


def test_plugin_file_is_small_and_errors_name_the_key():
    assert len(PLUGIN.read_text().splitlines()) <= 40
    registry.load_plugin(PLUGIN, "scenario.plugins")
    net = Network(dt=DT, seed=1, backend="numpy")
    net.poisson_group("pre", 2, rate=10.0)
    net.population("pyr", 2, "naud_sprekeler")
    with pytest.raises(ScenarioError, match=r"plasticity\.tau_psp: expected a finite value > 0"):
        net.projection("pre", "pyr", "dend_exc", weight=1.0, plasticity={"rule": "dendritic_hebb", "tau_psp": "-1 ms"})
    with pytest.raises(ScenarioError, match=r"plasticity\.theta: .*voltage|plasticity\.theta: .*mV"):
        net.projection("pre", "pyr", "dend_exc", weight=1.0, name="b",
                       plasticity={"rule": "dendritic_hebb", "theta": "5 ms"})
    # a LIF has no v_dend: the hook's argument is refused when the rule is attached
    net.population("lif", 2, "lif")
    with pytest.raises(ScenarioError, match=r"argument 'v_dend' of per_step"):
        net.projection("pre", "lif", "exc", weight=1.0, name="c", plasticity="dendritic_hebb")
