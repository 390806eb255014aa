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


def direct(pre_steps: list[np.ndarray], v_after: np.ndarray, proj, steps: int = STEPS) -> np.ndarray:
    """The rule's equation integrated in numpy from recorded spikes and voltages."""
    eta, tau, theta, w_min, w_max = 0.02, 8.0, -62.0, 0.0, 150.0
    pre_of, post_of = proj.conn.pre_indices(), proj.conn.indices
    w = np.full(proj.conn.nnz, 60.0)
    psp = np.zeros(20)
    f = math.exp(-DT / tau)
    for n in range(steps):
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


TOML = """
[scenario]
experiment = "simulate"
seed = 9
plugins = ["{plugin}"]

[simulation]
dt = "0.1 ms"
duration = "{duration} ms"
backend = "{backend}"

[network.populations.pre]
type = "poisson"
n = 20
rate = "40 Hz"

[network.populations.pyr]
model = "naud_sprekeler"
n = 6

[network.inputs.dend]
type = "current"
target = "pyr"
compartment = "dend"
bias = "300 pA"

[network.inputs.soma]
type = "current"
target = "pyr"
compartment = "soma"
bias = "300 pA"

[network.projections.pre_dend]
pre = "pre"
post = "pyr"
channel = "dend_exc"
connectivity = "fixed_probability"
p = 0.5
weight = "60 pA"
plasticity = {{ rule = "dendritic_hebb", eta = 0.02, tau_psp = "8 ms", theta = "-62 mV", w_max = "150 pA" }}
"""


def test_user_rule_from_a_toml_scenario_on_both_backends(tmp_path):
    """The TOML run saves weights equal (bit for bit, both backends) to the same network built
    in Python, whose weights follow the rule's equation (checked against ``direct``)."""
    from dendrite_sim import cli

    duration = 200.0
    saved = {}
    for backend in ("numpy", "numba"):
        path = tmp_path / f"{backend}.toml"
        path.write_text(TOML.format(plugin=PLUGIN.as_posix(), duration=duration, backend=backend))
        assert cli.main(["check", str(path)]) == 0
        assert cli.main(["run", str(path), "--out", str(tmp_path / backend)]) == 0
        saved[backend] = np.load(tmp_path / backend / "weights.npz")
    np.testing.assert_array_equal(saved["numpy"]["pre_dend_w"], saved["numba"]["pre_dend_w"])

    net = Network(dt=DT, seed=9, backend="numpy")
    net.poisson_group("pre", 20, rate=40.0)
    net.population("pyr", 6, "naud_sprekeler")
    net.current("pyr", "dend", bias=300.0)
    net.current("pyr", "soma", bias=300.0)
    proj = net.projection("pre", "pyr", "dend_exc", "fixed_probability", p=0.5, weight=60.0, name="pre_dend",
                          plasticity={"rule": "dendritic_hebb", "eta": 0.02, "tau_psp": "8 ms", "theta": "-62 mV",
                                      "w_max": "150 pA"})
    spikes = net.spike_monitor("pre", events=False, bursts=False)
    vd = net.state_monitor("pyr", ["v_dend"])
    steps = int(round(duration / DT))
    net.run(duration)
    np.testing.assert_array_equal(proj.conn.weights, saved["numba"]["pre_dend_w"])
    v_rec = np.asarray(vd["v_dend"])
    v_after = np.vstack([v_rec[1:], net["pyr"].state["v_dend"][None, :]])
    t_steps = np.rint(np.asarray(spikes.t) / DT).astype(int)
    pre_steps = [np.asarray(spikes.i)[t_steps == n] for n in range(steps)]
    np.testing.assert_allclose(proj.conn.weights, direct(pre_steps, v_after, proj, steps), rtol=1e-12, atol=1e-9)
    assert np.abs(proj.conn.weights - 60.0).max() > 1.0
