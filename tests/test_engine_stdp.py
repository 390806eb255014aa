"""STDP inside the network: the weights a running network learns equal the event-driven trace
computation (Pfister & Gerstner 2006) for the same spike times, on both backends."""

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.network import Network
from dendrite_sim.synapses import stdp as stdpmod

DT = 0.1


def pairing_times(delta_ms, rate_hz, n, start=20.0):
    pre = start + np.arange(n) * 1000.0 / rate_hz
    return pre, pre + delta_ms


def run_pairing(backend, pre, post, stdp, w0=0.5, n_syn=1):
    """One source → ``n_syn`` LIF neurons forced to spike at ``post`` by one-step current pulses."""
    duration = max(pre.max(), post.max()) + 50.0
    steps = int(round(duration / DT))
    pulses = np.zeros(steps)
    pulses[np.rint(post / DT).astype(int)] = 1e6          # 500 mV in one step: a spike now
    net = Network(dt=DT, seed=1, backend=backend)
    net.spike_generator("pre", 1, pre, np.zeros(pre.size, dtype=int))
    net.population("post", n_syn, "lif", params={"t_ref": 1.0})
    net.current("post", "soma", array=pulses, array_dt=DT)
    proj = net.projection("pre", "post", "exc", "all_to_all", weight=w0, plasticity={"rule": "stdp", **stdp._asdict()})
    spikes = net.spike_monitor("post")
    net.run(duration)
    np.testing.assert_allclose(np.unique(spikes.t), np.sort(post), atol=1e-9)   # post fired as asked
    return proj.conn.weights.copy()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("preset", ["visual_all_to_all", "visual_nearest", "pair"])
@pytest.mark.parametrize("delta,rate", [(10.0, 20.0), (-10.0, 20.0), (10.0, 50.0), (-10.0, 5.0)])
def test_network_weight_change_equals_trace_computation(backend, preset, delta, rate):
    p = stdpmod.preset(preset, w_min=-10.0, w_max=10.0)
    pre, post = pairing_times(delta, rate, 8)
    w = run_pairing(backend, pre, post, p)
    expected = 0.5 + stdpmod.stdp_weight_change(pre, post, p, w0=0.5)
    np.testing.assert_allclose(w, expected, rtol=1e-9, atol=1e-12)
    assert abs(w[0] - 0.5) > 1e-6          # the protocol really changed the weight


def test_bounds_and_backends_agree_bitwise():
    p = stdpmod.preset("visual_all_to_all", A3_plus=0.5)      # strong LTP: hits w_max = 1
    pre, post = pairing_times(5.0, 40.0, 20)
    a = run_pairing("numpy", pre, post, p, n_syn=3)
    b = run_pairing("numba", pre, post, p, n_syn=3)
    np.testing.assert_array_equal(a, b)
    assert np.all(a == 1.0)


def test_stdp_errors_name_the_key():
    net = Network(dt=DT, seed=1, backend="numpy")
    net.spike_generator("pre", 1, [1.0], [0])
    net.population("post", 1, "lif")
    with pytest.raises(ScenarioError, match=r"plasticity\.preset.*did you mean 'pair'"):
        net.projection("pre", "post", "exc", weight=0.5, plasticity={"rule": "stdp", "preset": "pairs"})
    with pytest.raises(ScenarioError, match=r"plasticity\.w_max: expected initial weights within"):
        net.projection("pre", "post", "exc", weight=5.0, plasticity={"rule": "stdp", "preset": "pair"}, name="p2")
    with pytest.raises(ScenarioError, match=r"plasticity\.rule: rule 'backprop' has no spiking face"):
        net.projection("pre", "post", "exc", weight=0.5, plasticity="backprop", name="p3")
    with pytest.raises(ScenarioError, match=r"plasticity\.rule: unknown rule 'stpd'.*did you mean 'stdp'"):
        net.projection("pre", "post", "exc", weight=0.5, plasticity={"rule": "stpd"}, name="p4")
