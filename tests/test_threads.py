"""The threaded numba loop is bit-identical to the serial loop (issue 11, CPU threads).

One network exercises every path the threaded loop changes: per-neuron phases of two neuron
populations in chunks (arrivals, Poisson input, drives, update, channel decay, running rates),
spike lists merged across chunks, a Poisson group and a spike generator (serial), propagation
split by postsynaptic range with per-neuron STP, per-synapse (heterogeneous) STP and
per-synapse delays, a state monitor between the regions, and an in-loop synapse rule (STDP).
Both loops are compiled once each (the threaded one only here); the threaded one is forced on
a small network with ``threads=2`` and, for ``"auto"``, by lowering the size threshold.
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.backends import numba as NB
from dendrite_sim.engine.network import Network
from dendrite_sim.synapses import connectivity as C


def build(threads, seed=3, plastic=False):
    """The test network; ``plastic``: the STDP projection too (the loop then delivers spikes in
    their own step's region; without in-loop plasticity delivery joins the next step's region)."""
    net = Network(dt=0.1, seed=seed, threads=threads)
    net.population("pyr", 700, "naud_sprekeler", bursts=True)
    net.population("lif", 300, "lif_cond", bursts=False)
    net.current("pyr", "soma", bias=450.0)
    net.poisson_input("pyr", "soma_exc", n_sources=100, rate=5.0, weight=100.0)
    net.poisson_input("pyr", "dend_exc", n_sources=50, rate=5.0, weight=180.0)
    net.poisson_input("lif", "exc", n_sources=200, rate=10.0, weight=0.3)
    net.poisson_group("src", 50, rate=20.0)
    net.spike_generator("gen", 5, times=[1.0, 2.0, 2.0, 7.5], indices=[0, 1, 3, 4])
    net.projection("pyr", "pyr", "soma_exc", "fixed_probability", p=0.05, autapses=False, weight=5.0,
                   stp="payeur_std", name="pp_std")
    rng = np.random.default_rng(0)
    conn = C.fixed_probability(700, 300, 0.05, rng)
    net.projection("pyr", "lif", "exc", conn, weight=0.5, delay=rng.integers(1, 6, conn.nnz) * 0.1,
                   stp={"preset": "payeur_stf", "U": rng.uniform(0.02, 0.5, conn.nnz)}, name="pl_het")
    net.projection("lif", "pyr", "soma_inh", "fixed_probability", p=0.1, weight=-20.0, delay=0.3, name="lp")
    net.projection("src", "lif", "exc", "fixed_probability", p=0.2, weight=1.0, name="src_lif",
                   plasticity={"rule": "stdp", "preset": "pair"} if plastic else None)
    net.projection("gen", "pyr", "dend_exc", "all_to_all", weight=50.0, name="gen_pyr")
    spikes = {p: net.spike_monitor(p) for p in ("pyr", "lif", "src")}
    trace = net.state_monitor("pyr", ["v_soma", "burst_prob"], neurons=[0, 63, 64, 699], every=0.5)
    return net, spikes, trace


def snapshot(net, spikes, trace):
    out = {f"{p}_{k}": getattr(m, k).copy() for p, m in spikes.items() for k in ("t", "i", "burst_t")}
    for pop in net.pops.values():
        for k, v in {**getattr(pop, "state", {}), **getattr(pop, "channels", {})}.items():
            out[f"{pop.name}.{k}"] = v.copy()
        if pop.track_bursts:
            out[f"{pop.name}.burst_rate"] = pop.burst_rate.copy()
    for proj in net.projections:
        out[f"{proj.name}.w"] = proj.conn.weights.copy()
        if proj.stp is not None:
            out[f"{proj.name}.u"] = proj.stp_u.copy()
    out["trace"] = trace["v_soma"].copy()
    out["trace_bp"] = trace["burst_prob"].copy()
    return out


def run(net, *spans):
    """Run the spans; return how many loop calls it took (> spans: a spike monitor's buffer
    filled up inside the loop, which returned early and was called again)."""
    backend = net._backend()
    calls = [0]
    inner = backend.run_steps

    def counted(step0, n_steps):
        calls[0] += 1
        return inner(step0, n_steps)

    backend.run_steps = counted
    for span in spans:
        net.run(span)
    return calls[0]


@pytest.fixture(scope="module")
def serial():
    out = {}
    for plastic in (False, True):
        net, spikes, trace = build(threads=1, plastic=plastic)
        run(net, 60.0, 40.0)
        assert net._backend().threads == 1
        out[plastic] = snapshot(net, spikes, trace)
    return out


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), f"{k} differs"


@pytest.mark.parametrize("plastic", [False, True], ids=["deferred-delivery", "plasticity"])
def test_threaded_loop_is_bit_identical(serial, plastic):
    net, spikes, trace = build(threads=2, plastic=plastic)
    calls = run(net, 60.0, 40.0)
    assert calls > 2                                      # early returns of the loop were exercised
    src = net._backend().kernel.source
    assert net._backend().threads == 2 and "parallel=True" in src
    assert ("pstep = step - 1" in src) is (not plastic)
    got = snapshot(net, spikes, trace)
    assert len(got["pyr_i"]) > 300 and len(got["lif_i"]) > 300      # propagation ran
    if plastic:                                                       # STDP ran
        assert not np.array_equal(got["src_lif.w"], build(1)[0].projections[3].conn.weights)
    assert_identical(serial[plastic], got)
    # spikes listed in ascending neuron order within each step, as in the serial loop
    for p in ("pyr", "lif"):
        t, i = got[f"{p}_t"], got[f"{p}_i"]
        same = np.diff(t) == 0
        assert np.all(np.diff(i)[same] > 0)


def test_auto_uses_threads_above_the_threshold_only(serial, monkeypatch):
    net, _, _ = build(threads="auto")
    net.run(0.1)
    assert net._backend().threads == 1                   # 1000 neurons: below the threshold
    monkeypatch.setattr(NB, "THREAD_MIN_NEURONS", 500)
    monkeypatch.setattr(NB, "available_threads", lambda: 2)
    monkeypatch.setattr(NB, "idle_cores", lambda: 2.0)
    net, spikes, trace = build(threads="auto")
    run(net, 60.0, 40.0)
    assert net._backend().threads == 2
    assert_identical(serial[False], snapshot(net, spikes, trace))


def test_chunks_partition_and_split_keeps_csr_order():
    b = NB.chunk_bounds(1000, 3)
    assert b[0] == 0 and b[-1] == 1000 and np.all(np.diff(b) > 0) and np.all(b[1:-1] % NB.CHUNK_ALIGN == 0)
    conn = C.fixed_probability(40, 1000, 0.1, np.random.default_rng(1))
    ptr, syn = NB.thread_split(conn, b)
    assert np.array_equal(np.sort(syn), np.arange(conn.nnz))
    for t in range(3):
        for j in range(40):
            kk = syn[ptr[t * 40 + j]:ptr[t * 40 + j + 1]]
            row = np.arange(conn.indptr[j], conn.indptr[j + 1])
            mine = row[(conn.indices[row] >= b[t]) & (conn.indices[row] < b[t + 1])]
            assert np.array_equal(kk, mine)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "many", True])
def test_bad_thread_counts_name_the_key(bad):
    with pytest.raises(ScenarioError, match=r"^threads: expected \"auto\""):
        Network(threads=bad)
