"""Heterogeneous short-term plasticity: per-synapse parameters and state in the engine.

One presynaptic source fires a regular 20 Hz train onto three synapses with different
Tsodyks–Markram parameters (and variants). The jump of each postsynaptic channel at each arrival,
divided by the weight, must equal the closed-form recursion of that synapse's parameters.
"""

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.network import Network
from dendrite_sim.synapses import stp as stpmod

DT = 0.1
TIMES = np.arange(10.0, 510.0, 50.0)          # 20 Hz, 10 spikes
PARAMS = [stpmod.preset("depressing"), stpmod.preset("facilitating"), stpmod.preset("payeur_stf")]
TAU = 5.0


def build(backend, stp):
    net = Network(dt=DT, seed=3, backend=backend)
    net.spike_generator("src", 1, TIMES, np.zeros(TIMES.size, dtype=int))
    net.population("post", 3, "lif", params={"v_th": 1e9}, tau={"exc": TAU})
    net.projection("src", "post", "exc", "pairs", pre_idx=[0, 0, 0], post_idx=[0, 1, 2],
                   weight=10.0, stp=stp)
    mon = net.state_monitor("post", ["exc"])
    net.run(520.0)
    return mon


def arrivals(mon):
    c = mon["exc"]
    jumps = c[1:] - c[:-1] * np.exp(-DT / TAU)
    steps = np.rint(TIMES / DT).astype(int) + 1   # a spike takes effect on the next step
    return jumps[steps - 1] / 10.0               # row k of jumps is step k + 1


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_per_synapse_parameters_follow_their_closed_forms(backend):
    stacked = stpmod.stack_params(PARAMS)
    release = arrivals(build(backend, stacked))
    for k, p in enumerate(PARAMS):
        expected = stpmod.stp_train_amplitudes(p, TIMES)
        np.testing.assert_allclose(release[:, k], expected, rtol=1e-9, atol=1e-12)
    # the three synapses really differ (depressing falls, facilitating rises)
    assert release[-1, 0] < release[0, 0] and release[-1, 1] > release[0, 1]


def test_partial_arrays_over_a_preset_and_backends_agree():
    stp = {"preset": "payeur_std", "U": np.array([0.2, 0.5, 0.9])}
    a, b = arrivals(build("numpy", stp)), arrivals(build("numba", stp))
    np.testing.assert_array_equal(a, b)
    for k, U in enumerate([0.2, 0.5, 0.9]):
        p = stpmod.preset("payeur_std", U=U)
        np.testing.assert_allclose(a[:, k], stpmod.stp_train_amplitudes(p, TIMES), rtol=1e-9)


def test_identical_per_synapse_values_equal_the_shared_path():
    shared = arrivals(build("numba", "payeur_stf"))
    per_syn = arrivals(build("numba", stpmod.stack_params([stpmod.preset("payeur_stf")] * 3)))
    np.testing.assert_array_equal(shared, per_syn)


def test_bad_per_synapse_values_name_the_key():
    with pytest.raises(ScenarioError, match=r"stp\.U.*fraction"):
        build("numpy", {"preset": "depressing", "U": np.array([0.5, 1.5, 0.5])})
    with pytest.raises(ScenarioError, match=r"stp\.tau_D.*3 values"):
        build("numpy", {"preset": "depressing", "tau_D": np.array([100.0, 200.0])})
