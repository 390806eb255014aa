"""The Urbanczik–Senn rule (rules/urbanczik_senn.py) on hand-made inputs: a spike train into the
dendrite of Poisson two-compartment neurons, the weights after 300 ms equal a direct numpy
integration of the rule's equations from the recorded dendritic voltages and somatic spikes,
computed with the neuron module's own φ, h and V*_w; on both backends, bit-identical between them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.network import Network
from dendrite_sim.neurons import urbanczik_senn as US

DT, STEPS, N_PRE, N_POST = 0.1, 3000, 5, 3
ETA, TAU_D, TAU_L, TAU_S = 50.0, 100.0, 10.0, 3.0
PRE_TIMES = [np.arange(3.0 + 7.0 * j, 300.0, 9.0 + 4.0 * j) for j in range(N_PRE)]


def build(backend):
    net = Network(dt=DT, seed=11, backend=backend)
    times = np.concatenate(PRE_TIMES)
    idx = np.concatenate([np.full(t.size, j) for j, t in enumerate(PRE_TIMES)])
    net.spike_generator("pre", N_PRE, times, idx)
    net.population("pyr", N_POST, "urbanczik_senn")
    net.current("pyr", "soma", bias=np.array([300.0, 600.0, 900.0]))    # somatic drive: the "teacher"
    proj = net.projection("pre", "pyr", "dend_exc", "all_to_all", weight=200.0,
                          plasticity={"rule": "urbanczik_senn", "eta": ETA, "tau_delta": f"{TAU_D} ms"})
    return net, proj


def direct(proj, v_after, post_spikes, pre_spikes, p):
    """The equations of the module docstring, step by step, in numpy."""
    pre_of, post_of = proj.conn.pre_indices(), proj.conn.indices
    w = np.full(proj.conn.nnz, 200.0)
    delta = np.zeros(proj.conn.nnz)
    trL, trS = np.zeros(N_PRE), np.zeros(N_PRE)
    fL, fS, fD = math.exp(-DT / TAU_L), math.exp(-DT / TAU_S), math.exp(-DT / TAU_D)
    for n in range(STEPS):
        trL *= fL
        trS *= fS
        v_star = US.dendritic_prediction(v_after[n], p)
        pi = ((post_spikes[n] * 1.0 - US.rate(v_star, p) * DT) * US.log_rate_slope(v_star, p))[post_of] \
            * ((trL - trS) / (TAU_L - TAU_S))[pre_of]
        delta = delta * fD + pi / TAU_D
        w = w + ETA * DT * delta
        trL[pre_spikes[n]] += 1.0
        trS[pre_spikes[n]] += 1.0
    return w


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_weights_follow_the_rule(backend):
    net, proj = build(backend)
    pre_mon, post_mon = net.spike_monitor("pre"), net.spike_monitor("pyr")
    vd = net.state_monitor("pyr", ["v_dend"])
    net.run(STEPS * DT)
    v_rec = np.asarray(vd["v_dend"])
    v_after = np.vstack([v_rec[1:], net["pyr"].state["v_dend"][None, :]])
    post_steps = np.rint(np.asarray(post_mon.t) / DT).astype(int)
    post_spikes = np.zeros((STEPS, N_POST), dtype=bool)
    post_spikes[post_steps, np.asarray(post_mon.i)] = True
    pre_steps = np.rint(np.asarray(pre_mon.t) / DT).astype(int)
    pre_spikes = [np.asarray(pre_mon.i)[pre_steps == n] for n in range(STEPS)]
    assert post_spikes.sum() > 10                              # the somata fired
    expected = direct(proj, v_after, post_spikes, pre_spikes, net["pyr"].params)
    np.testing.assert_allclose(proj.conn.weights, expected, rtol=1e-10, atol=1e-9)
    dw = proj.conn.weights - 200.0
    assert np.abs(dw).max() > 1.0
    # the more the soma fires beyond the dendrite's prediction, the more its synapses grow
    per_post = np.array([dw[proj.conn.indices == i].mean() for i in range(N_POST)])
    assert per_post[2] > per_post[0]


def test_backends_bit_identical():
    out = []
    for backend in ("numpy", "numba"):
        net, proj = build(backend)
        net.run(STEPS * DT)
        out.append((proj.conn.weights.copy(), proj.plasticity.synapse_vars["delta"].copy()))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_needs_a_dendritic_prediction_neuron():
    net = Network(dt=DT, seed=1, backend="numpy")
    net.spike_generator("pre", 1, [1.0], [0])
    net.population("lif", 2, "lif")
    with pytest.raises(ScenarioError, match=r"plasticity: rule 'urbanczik_senn' reads the postsynaptic model's "
                                            r"parameters .*expected a postsynaptic model that has them"):
        net.projection("pre", "lif", "exc", weight=1.0, plasticity="urbanczik_senn")
    net.population("pyr", 2, "urbanczik_senn")
    with pytest.raises(ScenarioError, match=r"plasticity\.tau_s: expected a PSP rise time different"):
        net.projection("pre", "pyr", "dend_exc", weight=1.0, name="b",
                       plasticity={"rule": "urbanczik_senn", "tau_s": "10 ms"})
