"""numpy (reference) and numba (fused loop) backends give the same spikes, bit for bit:
every registered neuron model, random small networks (hypothesis), repeated runs, chunked runs.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dendrite_sim.core import registry
from dendrite_sim.engine.network import Network

MODELS = sorted(registry.available("neuron"))


def _model_net(model: str, backend: str, seed: int = 7):
    """A generic network for any model: a bias ramp into the first compartment, Poisson drive
    and a Poisson source population on every channel (STP on one projection), recurrence."""
    cls = registry.get("neuron", model)
    n = 24
    net = Network(dt=0.1, seed=seed, backend=backend)
    net.population("A", n, model)
    net.poisson_group("src", 16, rate=40.0)
    chans = list(cls.channels)
    for q, ch in enumerate(chans):
        net.poisson_input("A", ch, 40, 10.0, 2.0)
        net.projection("src", "A", ch, "fixed_probability", p=0.4, weight=3.0, delay=0.1 * (q + 1),
                       stp="payeur_std" if q == 0 else None)
    net.projection("A", "A", chans[0], "fixed_probability", p=0.2, weight=5.0, delay=0.3, stp="payeur_stf")
    net.current("A", cls.compartments[0], bias=np.linspace(0.0, 1500.0, n))
    if len(cls.compartments) > 1:
        net.current("A", cls.compartments[-1], array=np.linspace(0.0, 300.0, 50), array_dt=2.0)
    mon = net.spike_monitor("A")
    tr = net.state_monitor("A", [cls.state_vars[0], chans[0], "burst_prob"], neurons=[0, n - 1], every=1.0)
    return net, mon, tr


def _snapshot(net, mon, tr):
    out = {"t": mon.t, "i": mon.i, "ev": mon.event_i, "bu": mon.burst_i, "rec_t": tr.t}
    for v in tr.variables:
        out[f"rec_{v}"] = tr[v]
    for name, pop in net.pops.items():
        for k, arr in {**getattr(pop, "state", {}), **getattr(pop, "channels", {})}.items():
            out[f"{name}.{k}"] = arr.copy()
        for k in ("spike_count", "event_rate", "burst_rate"):
            if getattr(pop, k) is not None:
                out[f"{name}.{k}"] = getattr(pop, k).copy()
        for ch, ring in getattr(pop, "rings", {}).items():
            out[f"{name}.ring.{ch}"] = ring.copy()
    for p in net.projections:
        if p.stp is not None:
            out[f"{p.name}.u"] = p.stp_u.copy()
            out[f"{p.name}.x"] = p.stp_x.copy()
    return out


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("model", MODELS)
def test_numpy_equals_numba_every_model(model):
    results = {}
    for backend in ("numpy", "numba"):
        net, mon, tr = _model_net(model, backend)
        net.run(60.0)
        net.run(40.0)                          # a second chunk continues the same trajectory
        results[backend] = _snapshot(net, mon, tr)
    assert results["numba"]["i"].size > 20, f"{model}: the test network should spike"
    _assert_same(results["numpy"], results["numba"])


# ----------------------------------------------------------------------------- property test
def _random_net(backend, d, fastmath=False):
    """Fixed structure (one compiled loop), random sizes, connectivity, weights, delays, STP
    parameters and variant, rates, drives and seed."""
    net = Network(dt=0.1, seed=d["seed"], backend=backend, fastmath=fastmath)
    nE, nI = d["nE"], d["nI"]
    net.population("E", nE, "lif", params={"tau_m": d["tau_m"]}, init={"v_soma": d["v0"]})
    net.population("I", nI, "lif_cond")
    net.spike_generator("gen", 3, times=[0.1 * k for k in d["gen_steps"]],
                        indices=[k % 3 for k in range(len(d["gen_steps"]))])
    net.poisson_group("noise", 5, rate=d["noise_rate"])
    rng = np.random.default_rng(d["seed"])
    ee = net.projection("E", "E", "exc", "fixed_probability", p=d["pEE"], weight=d["wEE"],
                        stp={"U": d["U"], "tau_D": d["tau_D"], "tau_F": d["tau_F"], "f": d["f"],
                             "variant": d["variant"]})
    ee.conn.delays[:] = rng.integers(1, 6, ee.conn.nnz)          # heterogeneous delays (steps)
    net.projection("E", "I", "exc", "fixed_indegree", k=min(2, nE), weight=d["wEI"], delay=0.2)
    ie = net.projection("I", "E", "inh", "all_to_all", weight=-d["wIE"], delay=0.1)
    ie.conn.weights[:] *= rng.uniform(0.5, 1.5, ie.conn.nnz)
    net.projection("gen", "E", "exc", "all_to_all", weight=40.0, delay=0.5)
    net.projection("noise", "I", "inh", "fixed_probability", p=0.5, weight=2.0)
    net.poisson_input("E", "exc", d["n_src"], d["rate"], d["w_in"])
    net.poisson_input("I", "exc", 20, 10.0, 1.0)
    net.current("E", "soma", bias=d["bias"])
    net.current("I", "soma", array=rng.uniform(0, 200, (8, nI)), array_dt=2.5)
    mE = net.spike_monitor("E")
    mI = net.spike_monitor("I", neurons=[0])
    tr = net.state_monitor("E", ["v_soma", "exc", "I_soma"], neurons=[0], every=0.5)
    return net, mE, mI, tr


net_params = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32), "nE": st.integers(1, 25), "nI": st.integers(1, 8),
    "tau_m": st.floats(5.0, 40.0), "v0": st.floats(-65.0, -51.0),
    "gen_steps": st.lists(st.integers(0, 300), max_size=6, unique=True),
    "noise_rate": st.floats(0.0, 200.0), "pEE": st.floats(0.0, 1.0), "wEE": st.floats(0.0, 80.0),
    "U": st.floats(0.01, 0.9), "tau_D": st.floats(0.0, 500.0), "tau_F": st.floats(0.0, 500.0),
    "f": st.floats(0.0, 1.0), "variant": st.sampled_from(["tsodyks2", "mongillo", "payeur"]),
    "wEI": st.floats(0.0, 10.0), "wIE": st.floats(0.0, 80.0), "n_src": st.integers(0, 200),
    "rate": st.floats(0.0, 30.0), "w_in": st.floats(0.0, 60.0), "bias": st.floats(0.0, 150.0),
})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(net_params)
def test_property_random_networks(d):
    out = {}
    for backend in ("numpy", "numba"):
        net, mE, mI, tr = _random_net(backend, d)
        net.run(20.0)
        net.run(15.0)
        out[backend] = {"tE": mE.t, "iE": mE.i, "tI": mI.t, "bE": mE.burst_i, "v": tr["v_soma"],
                        "g": tr["exc"], "I": tr["I_soma"], "u": net.projections[0].stp_u.copy(),
                        "x": net.projections[0].stp_x.copy(), "vI": net["I"].state["v_soma"].copy()}
    _assert_same(out["numpy"], out["numba"])


# ----------------------------------------------------------------------------- determinism
def _lif_net(seed, backend="numba", fastmath=False):
    d = {"seed": seed, "nE": 40, "nI": 10, "tau_m": 20.0, "v0": -55.0, "gen_steps": [10, 20],
         "noise_rate": 50.0, "pEE": 0.2, "wEE": 20.0, "U": 0.5, "tau_D": 100.0, "tau_F": 50.0, "f": 0.2,
         "variant": "payeur", "wEI": 5.0, "wIE": 20.0, "n_src": 100, "rate": 10.0, "w_in": 30.0, "bias": 50.0}
    return _random_net(backend, d, fastmath)


def test_same_seed_bit_identical_and_seed_matters():
    runs = []
    for seed in (11, 11, 12):
        net, mE, _, tr = _lif_net(seed)
        net.run(100.0)
        runs.append((mE.t, mE.i, tr["v_soma"]))
    for x, y in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(x, y)
    assert runs[0][0].size > 50
    assert not (runs[0][0].size == runs[2][0].size and np.array_equal(runs[0][1], runs[2][1]))


def test_chunked_run_equals_single_run():
    a = _lif_net(5)
    a[0].run(100.0)
    b = _lif_net(5)
    for _ in range(4):
        b[0].run(25.0)
    for x, y in ((a[1].t, b[1].t), (a[1].i, b[1].i), (a[3]["v_soma"], b[3]["v_soma"])):
        np.testing.assert_array_equal(x, y)


def test_fastmath_same_statistics():
    """fastmath lets LLVM reorder floating-point operations: spikes may differ, rates may not."""
    counts = []
    for fm in (False, True):
        net, mE, _, tr = _lif_net(21, fastmath=fm)
        net.run(300.0)
        assert np.all(np.isfinite(tr["v_soma"]))
        counts.append(mE.n_spikes)
    assert counts[0] > 200
    assert abs(counts[1] - counts[0]) < 0.05 * counts[0]
