"""Burstprop's spiking face (rule ``burstprop_spiking``) changes the weights as its equation says,

    dW_ij/dt = η [B_i(t) − P̄_i(t) E_i(t)] Ẽ_j(t),   W clipped to [w_min, w_max],

on hand-made spike trains, on both backends, and bit for bit between them. The reference below
is a direct numpy integration from the recorded postsynaptic spikes and the hand-made
presynaptic trains, with events and bursts from the offline detector
(:func:`dendrite_sim.engine.bursts.detect`, ≥ 2 spikes with ISI ≤ 16 ms make a burst):

    r_E, r_B ← r · e^{−dt/τ_avg} + (1000/τ_avg)·[event / burst]      (post, every step)
    Ẽ_j ← Ẽ_j e^{−dt/τ_pre}                                           (every step, then)
    W_ij += η ([burst_i] − P̄_i [event_i]) Ẽ_j,  P̄ = r_B / r_E          (at a spike of i)
    Ẽ_j += 1                                                          (at an event of j)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine import bursts as B
from dendrite_sim.engine.network import Network

DT = 0.1
T_MS = 600.0
STEPS = int(round(T_MS / DT))
TAU_PRE, TAU_AVG, ETA, W0, W_MIN, W_MAX = 10.0, 150.0, 0.05, 1.0, -0.5, 1.6
WINDOW = 160                                  # 16 ms in steps


def pre_trains() -> tuple[np.ndarray, np.ndarray]:
    """Four presynaptic sources: isolated spikes, triplet bursts (ISI 4 ms), a random train with
    both, and silence (times in ms, on the step grid)."""
    rng = np.random.default_rng(3)
    t0 = np.arange(5.0, T_MS - 5, 30.0)
    t1 = (np.arange(12.0, T_MS - 20, 40.0)[:, None] + np.array([0.0, 4.0, 8.0])).ravel()
    t2 = np.unique(np.round(np.sort(rng.uniform(0, T_MS - 1, 40)), 1))
    times = np.concatenate([t0, t1, t2])
    idx = np.concatenate([np.zeros(t0.size), np.ones(t1.size), np.full(t2.size, 2)]).astype(int)
    return times, idx


def drive_trains() -> tuple[np.ndarray, np.ndarray]:
    """Drive of three postsynaptic neurons: isolated spikes, pairs 5 ms apart (bursts), and a
    random mixture; each drive spike makes one postsynaptic spike on the next step."""
    rng = np.random.default_rng(8)
    t0 = np.arange(20.0, T_MS - 5, 25.0)
    t1 = (np.arange(30.0, T_MS - 10, 50.0)[:, None] + np.array([0.0, 5.0])).ravel()
    t2 = np.unique(np.round(np.sort(rng.uniform(0, T_MS - 2, 45)), 1))
    t2 = t2[np.concatenate([[True], np.diff(t2) >= 2.5])]      # beyond the refractory period
    times = np.concatenate([t0, t1, t2])
    idx = np.concatenate([np.zeros(t0.size), np.ones(t1.size), np.full(t2.size, 2)]).astype(int)
    return times, idx


def build(backend: str, pre_bursts: bool = True, post_bursts: bool = True):
    net = Network(dt=DT, seed=1, backend=backend)
    net.spike_generator("pre", 4, *pre_trains(), bursts=pre_bursts)
    net.spike_generator("drv", 3, *drive_trains())
    net.population("post", 3, "lif", params={"t_ref": "2 ms"}, tau={"exc": 0.2},
                   bursts=post_bursts, tau_avg=TAU_AVG)
    net.projection("drv", "post", "exc", "pairs", pre_idx=[0, 1, 2], post_idx=[0, 1, 2], weight=4e4)
    proj = net.projection("pre", "post", "inh", "all_to_all", weight=W0,
                          plasticity={"rule": "burstprop_spiking", "eta": ETA, "tau_pre": f"{TAU_PRE} ms",
                                      "w_min": W_MIN, "w_max": W_MAX})
    return net, proj


def reference(post_steps, post_idx, proj) -> np.ndarray:
    pre_t, pre_i = pre_trains()
    pre_steps = np.rint(pre_t / DT).astype(np.int64)
    pre_ev, _ = B.detect_population(pre_steps, pre_i, WINDOW)
    post_ev, post_bu = B.detect_population(post_steps, post_idx, WINDOW)
    pre_of, post_of = proj.conn.pre_indices(), proj.conn.indices
    w = np.full(proj.conn.nnz, W0)
    e_pre, r_e, r_b = np.zeros(4), np.zeros(3), np.zeros(3)
    f_pre, f_avg, inc = math.exp(-DT / TAU_PRE), math.exp(-DT / TAU_AVG), 1000.0 / TAU_AVG
    for n in range(STEPS):
        at = post_steps == n
        r_e *= f_avg
        r_b *= f_avg
        r_e[post_idx[at & post_ev]] += inc
        r_b[post_idx[at & post_bu]] += inc
        e_pre *= f_pre
        for k in np.flatnonzero(at):
            i, valence = post_idx[k], float(post_bu[k]) - (r_b[post_idx[k]] / r_e[post_idx[k]]) * float(post_ev[k])
            syn = post_of == i
            w[syn] = np.clip(w[syn] + ETA * valence * e_pre[pre_of[syn]], W_MIN, W_MAX)
        e_pre[pre_i[(pre_steps == n) & pre_ev]] += 1.0
    return w


def run(backend: str):
    net, proj = build(backend)
    mon = net.spike_monitor("post")
    net.run(T_MS)
    steps = np.rint(np.asarray(mon.t) / DT).astype(np.int64)
    return proj, steps, np.asarray(mon.i)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_update_equals_the_equation(backend):
    proj, steps, idx = run(backend)
    ev, bu = B.detect_population(steps, idx, WINDOW)
    assert ev.sum() > 40 and bu.sum() > 15           # the trains exercise events and bursts
    assert (ev & ~bu).any() and not (ev & bu).any()
    expected = reference(steps, idx, proj)
    np.testing.assert_allclose(proj.conn.weights, expected, rtol=1e-12, atol=1e-12)
    dw = proj.conn.weights - W0
    w = proj.conn.weights.reshape(4, 3)
    assert np.all(w[:, 0] == W0)       # neuron 0 never bursts: P̄ = 0 and B = 0, no change
    assert np.all(w[:3, 1] > W0 + 0.05)   # neuron 1 always bursts: (1 − P̄) Ẽ > 0 per burst
    assert np.all(w[3] == W0)          # a silent source's trace stays 0
    assert dw.min() < -0.01            # neuron 2's isolated spikes depress (P̄ > 0)


def test_backends_bit_identical():
    (p0, s0, i0), (p1, s1, i1) = run("numpy"), run("numba")
    np.testing.assert_array_equal(s0, s1)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(p0.conn.weights, p1.conn.weights)


@pytest.mark.parametrize("side", ["pre", "post"])
def test_needs_events_and_bursts(side):
    with pytest.raises(ScenarioError, match=f"{side}synaptic population's events and bursts"):
        build("numpy", pre_bursts=side != "pre", post_bursts=side != "post")
