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


# --------------------------------------------------------------------------- rate face
def test_rate_face_equals_its_equation():
    """ΔW_L = ⟨[φ(U*) − φ(V*)] h(V*) h_{L−1}ᵀ⟩ with V* = a_L, U* = a_L − teaching signal (= y for
    MSE), φ(V) = φ_max/(1 + k e^{β(θ−V)}), h = d ln φ/dV; zero for hidden layers."""
    from dendrite_sim.core import registry
    from dendrite_sim.engine.rate import RateNetwork

    rule = registry.build("rule", {"name": "urbanczik_senn", "phi_max": 0.5, "rate_slope": 2.0,
                                   "beta": 0.7, "theta": 0.3}, "rule")
    assert type(rule).substrates == ("rate", "spiking")
    net = RateNetwork([3, 4, 2], "tanh", "random", np.random.default_rng(0))
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3], [-0.7, 0.9, 0.1]])
    y = np.array([[1.0, -0.5], [0.0, 2.0], [-1.0, 0.3]])
    hid = np.tanh(x @ net.W[0].T + net.b[0])
    v = hid @ net.W[1].T + net.b[1]

    def phi(u):
        return 0.5 / (1.0 + 2.0 * np.exp(0.7 * (0.3 - u)))

    h = 0.7 * 2.0 * np.exp(0.7 * (0.3 - v)) / (1.0 + 2.0 * np.exp(0.7 * (0.3 - v)))
    post = (phi(y) - phi(v)) * h
    mse = registry.build("objective", "mse", "objective")
    ups = rule.update(net, x, y, mse, np.random.default_rng(1))
    np.testing.assert_allclose(ups[1][0], post.T @ hid / 3, rtol=1e-12)
    np.testing.assert_allclose(ups[1][1], post.mean(axis=0), rtol=1e-12)
    assert not ups[0][0].any() and not ups[0][1].any()
    # cross-entropy: the teacher is the nudged potential a_L − (softmax(a_L) − onehot(y))
    labels = np.array([1, 0, 1])
    p = np.exp(v) / np.exp(v).sum(axis=1, keepdims=True)
    u_ce = v - (p - np.eye(2)[labels])
    ce = registry.build("objective", "cross_entropy", "objective")
    np.testing.assert_allclose(rule.update(net, x, labels, ce, np.random.default_rng(1))[1][0],
                               ((phi(u_ce) - phi(v)) * h).T @ hid / 3, rtol=1e-10)


def test_train_with_the_rate_face_reduces_the_loss(tmp_path):
    """``dendrite-sim run`` of a ``train`` scenario: linear teacher–student, no hidden layer."""
    import json

    from dendrite_sim.cli import main

    scenario = tmp_path / "us_rate.toml"
    scenario.write_text("""
[scenario]
experiment = "train"
seed = 1
[task]
name = "teacher_student_linear"
n_in = 30
n_out = 10
n_train = 500
n_test = 200
[architecture]
name = "layered"
hidden = []
nonlinearity = "linear"
[objective]
name = "mse"
[rule]
name = "urbanczik_senn"
[training]
epochs = 10
batch_size = 32
learning_rate = 0.1
""")
    assert main(["run", str(scenario), "--out", str(tmp_path / "run")]) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    loss = m["history"]["test_loss"]
    assert m["diverged"] is False and loss[-1] < 0.5 * loss[0]
