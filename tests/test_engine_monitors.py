"""Events and bursts on hand-made spike trains, running rates, monitor decimation, memory
report and budget, growing and capped spike buffers."""

import math
import warnings

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine import bursts as B
from dendrite_sim.engine.network import Network

# neuron 0: 10 | 20 25 (burst, gap 10 ≤ 16) | 60 | 100 116 (gap exactly 16: burst) | 132.1 (16.1: event)
# neuron 1: one isolated spike; neuron 2: a triplet (one burst), then silence
TRAIN = {0: [10.0, 20.0, 25.0, 60.0, 100.0, 116.0, 132.1], 1: [5.0], 2: [40.0, 45.0, 50.0]}
EVENTS = {0: [10.0, 60.0, 100.0, 132.1], 1: [5.0], 2: [40.0]}
BURSTS = {0: [20.0, 116.0], 1: [], 2: [45.0]}


def _gen_net(backend, tau_avg=100.0):
    net = Network(dt=0.1, seed=0, backend=backend)
    times = [t for k in TRAIN for t in TRAIN[k]]
    idx = [k for k in TRAIN for _ in TRAIN[k]]
    net.spike_generator("gen", 3, times, idx, bursts=True, tau_avg=tau_avg)
    mon = net.spike_monitor("gen")
    return net, mon


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_events_and_bursts_hand_made(backend):
    net, mon = _gen_net(backend)
    net.run(200.0)
    for k in TRAIN:
        np.testing.assert_allclose(mon.t[mon.i == k], TRAIN[k], atol=1e-9)
        np.testing.assert_allclose(mon.event_t[mon.event_i == k], EVENTS[k], atol=1e-9)
        np.testing.assert_allclose(mon.burst_t[mon.burst_i == k], BURSTS[k], atol=1e-9)
    pop = net["gen"]
    np.testing.assert_array_equal(pop.event_count, [4, 1, 1])
    np.testing.assert_array_equal(pop.burst_count, [2, 0, 1])
    # the offline reference agrees on the recorded steps
    ev, bu = B.detect_population(np.rint(mon.t / 0.1).astype(int), mon.i, 160)
    assert ev.sum() == 6 and bu.sum() == 3
    np.testing.assert_allclose(np.sort(mon.t[bu]), np.sort(mon.burst_t))


def test_running_rates_closed_form():
    """r = Σ (1000/τ) exp(−(n − n_k)·dt/τ) over the events/bursts; P̄ = r_B / r_E."""
    tau = 100.0
    net, _ = _gen_net("numba", tau_avg=tau)
    net.run(200.0)
    last = net.step - 1                              # the last processed step
    pop = net["gen"]
    for k in TRAIN:
        for attr, times in (("event_rate", EVENTS[k]), ("burst_rate", BURSTS[k]), ("spike_rate", TRAIN[k])):
            expected = sum(1000.0 / tau * math.exp(-(last - round(t / 0.1)) * 0.1 / tau) for t in times)
            assert getattr(pop, attr)[k] == pytest.approx(expected, rel=1e-10), (k, attr)
    np.testing.assert_allclose(pop.burst_prob, pop.burst_rate / pop.event_rate)
    # a regular 10 Hz train of isolated spikes: time-averaged spike rate → 10 Hz
    net = Network(dt=0.1, seed=0)
    net.spike_generator("reg", 1, np.arange(0, 3000, 100.0), np.zeros(30, int), bursts=True, tau_avg=200.0)
    tr = net.state_monitor("reg", ["spike_rate", "burst_prob"], every=1.0)
    net.run(3000.0)
    r = tr["spike_rate"][1000:, 0]
    assert r.mean() == pytest.approx(10.0, rel=0.02)
    assert np.all(tr["burst_prob"] == 0.0)


def _lif_net(backend="numba", **mon_kw):
    net = Network(dt=0.1, seed=3, backend=backend)
    net.population("A", 50, "lif")
    net.poisson_input("A", "exc", 200, 20.0, 25.0)
    return net


def test_state_monitor_decimation_across_chunks():
    net = _lif_net()
    full = net.state_monitor("A", ["v_soma", "exc"], neurons=[3, 7])
    dec = net.state_monitor("A", ["v_soma", "exc"], neurons=[3, 7], every=1.0)
    for d in (2.5, 7.3, 10.2):                       # chunk ends not aligned with `every`
        net.run(d)
    np.testing.assert_allclose(dec.t, np.arange(0.0, 20.0, 1.0), atol=1e-9)
    np.testing.assert_allclose(full.t, np.arange(200) * 0.1, atol=1e-9)
    np.testing.assert_array_equal(dec["v_soma"], full["v_soma"][::10])
    np.testing.assert_array_equal(dec["exc"], full["exc"][::10])
    assert dec["v_soma"].shape == (20, 2)


def test_memory_report_and_budget():
    net = _lif_net()
    st = net.state_monitor("A", ["v_soma", "exc", "inh"], neurons=range(10), every=0.5)
    sm = net.spike_monitor("A")
    rep = net.memory_report(duration=100.0)
    assert rep[st.label] == 200 * 10 * 3 * 8                  # records × neurons × variables × 8 B
    assert rep[sm.label] == 3 * 1024 * 12                     # 3 buffers × capacity × (8 + 4) B
    assert rep["total"] == rep[st.label] + rep[sm.label]
    net.run(100.0)
    assert net.memory_report()[st.label] == 200 * 10 * 3 * 8
    net.max_monitor_bytes = 10_000
    with pytest.raises(ScenarioError) as e:
        net.run(100.0)
    assert e.value.key == "monitors"


def test_spike_buffer_growth_and_cap():
    res = {}
    for backend in ("numpy", "numba"):
        net = _lif_net(backend)
        big = net.spike_monitor("A")
        small = net.spike_monitor("A", max_spikes=200)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            net.run(300.0)
        n_total = int(net["A"].spike_count.sum())
        assert big.n_spikes == n_total > 1024                  # grew past the initial capacity
        assert small.truncated and small.n_spikes <= 200
        np.testing.assert_array_equal(small.t, big.t[: small.n_spikes])
        assert any("max_spikes" in str(x.message) for x in w)
        res[backend] = (big.t, big.i, small.n_spikes)
    np.testing.assert_array_equal(res["numpy"][0], res["numba"][0])
    assert res["numpy"][2] == res["numba"][2]


def test_spike_monitor_subset():
    net = _lif_net()
    every = net.spike_monitor("A")
    some = net.spike_monitor("A", neurons=[1, 4, 9])
    net.run(100.0)
    keep = np.isin(every.i, [1, 4, 9])
    np.testing.assert_array_equal(some.i, every.i[keep])
    np.testing.assert_array_equal(some.t, every.t[keep])
    trains = every.trains()
    assert len(trains) == 50 and sum(len(t) for t in trains) == every.n_spikes


def test_bad_monitor_requests():
    net = _lif_net()
    with pytest.raises(ScenarioError, match="unknown variable"):
        net.state_monitor("A", ["v_dend"])
    with pytest.raises(ScenarioError):
        net.state_monitor("A", ["v_soma"], neurons=[50])
    with pytest.raises(ScenarioError):
        net.state_monitor("A", ["v_soma"], every=0.05)
    with pytest.raises(ScenarioError, match="unknown population"):
        net.spike_monitor("B")
