"""The registered covariance rule (Sejnowski 1977): its per-chunk spiking face reproduces the
online formula computed by hand from the recorded spikes, on both backends; co-active pairs grow."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite_sim.engine.network import Network
from dendrite_sim.rules.covariance import Covariance

DT, EVERY, CHUNKS, ETA, TAU = 0.1, 50.0, 40, 2e-3, 400.0


def build(backend):
    net = Network(dt=DT, seed=2, backend=backend)
    net.poisson_group("pre", 30, rate=25.0)
    net.population("post", 8, "lif")
    net.current("post", "soma", bias=np.linspace(150.0, 260.0, 8))
    proj = net.projection("pre", "post", "exc", "fixed_probability", p=0.6, weight=40.0,
                          plasticity={"rule": "covariance", "eta": ETA, "every": f"{EVERY} ms",
                                      "tau_mean": f"{TAU} ms", "w_min": 0.0, "w_max": 200.0})
    return net, proj


def expected_weights(proj, pre_mon, post_mon) -> np.ndarray:
    w = np.full(proj.conn.nnz, 40.0)
    pre_of, post_of = proj.conn.pre_indices(), proj.conn.indices
    mean_x = mean_y = None
    a = min(1.0, EVERY / TAU)
    for k in range(CHUNKS):
        lo, hi = k * EVERY, (k + 1) * EVERY
        x = np.bincount(pre_mon.i[(pre_mon.t >= lo - 1e-9) & (pre_mon.t < hi - 1e-9)], minlength=30) / (EVERY / 1000)
        y = np.bincount(post_mon.i[(post_mon.t >= lo - 1e-9) & (post_mon.t < hi - 1e-9)], minlength=8) / (EVERY / 1000)
        if mean_y is None:
            mean_x, mean_y = x.astype(float), y.astype(float)
        post = y - mean_y
        mean_x, mean_y = mean_x + (x - mean_x) * a, mean_y + (y - mean_y) * a
        w = np.clip(w + (ETA * post[post_of]) * x[pre_of], 0.0, 200.0)
    return w


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_online_face_equals_hand_computation(backend):
    net, proj = build(backend)
    pre_mon, post_mon = net.spike_monitor("pre"), net.spike_monitor("post")
    net.run(CHUNKS * EVERY)
    np.testing.assert_allclose(proj.conn.weights, expected_weights(proj, pre_mon, post_mon), rtol=1e-12)
    assert np.abs(proj.conn.weights - 40.0).max() > 1.0
    # the input drives the output: pre and post co-fluctuate, so synapses grow on average
    assert proj.conn.weights.mean() > 40.0


def test_batch_form_is_the_sample_covariance():
    from dendrite_sim.synapses import connectivity as C

    rng = np.random.default_rng(0)
    conn = C.fixed_probability(5, 4, 0.7, rng)
    conn.weights = np.zeros(conn.nnz)
    x, y = rng.random((50, 5)), rng.random((50, 4))
    Covariance.batch(conn, x, y, eta=1.0, w_min=-10.0, w_max=10.0)
    ref = np.array([np.cov(x[:, j], y[:, i], bias=True)[0, 1] for j, i in zip(conn.pre_indices(), conn.indices)])
    np.testing.assert_allclose(conn.weights, ref, rtol=1e-12, atol=1e-15)
    Covariance.batch(conn, x, y, eta=1.0, w_min=-10.0, w_max=10.0, sign=-1.0)
    np.testing.assert_allclose(conn.weights, 0.0, atol=1e-15)
