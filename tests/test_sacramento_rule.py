"""Dendritic cortical microcircuit (Sacramento et al. 2018): the soft-ReLU, the steady state against
the dynamics' equations and a closed-form linear solve, the self-predicting state, each plasticity
rule against its equation on hand-made states, and the rule on plain RateNetworks."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite_sim.architectures.microcircuit import Microcircuit
from dendrite_sim.core import registry
from dendrite_sim.engine import microcircuit as mc
from dendrite_sim.engine.nonlinearities import NONLINEARITIES, soft_relu
from dendrite_sim.engine.rate import RateNetwork
from dendrite_sim.objectives.mse import MeanSquaredError
from dendrite_sim.rules.feedback_alignment import FeedbackAlignment
from dendrite_sim.rules.sacramento import (
    DendriticMicrocircuit,
    forward_updates,
    interneuron_updates,
    topdown_updates,
)

G = mc.Conductances()


def _net(hidden=(4,), nl="tanh", init_state="random", seed=0, n_in=3, n_out=2, **kw):
    return Microcircuit(hidden=list(hidden), nonlinearity=nl, init_state=init_state, **kw).build(
        n_in, n_out, np.random.default_rng(seed))


def test_registered_parts():
    assert registry.get("architecture", "microcircuit") is Microcircuit
    assert registry.get("rule", "dendritic_microcircuit") is DendriticMicrocircuit
    assert "rate" in DendriticMicrocircuit.substrates
    assert registry.get("task", "teacher_student_microcircuit").registered_name


def test_soft_relu_closed_form_and_derivative():
    f, df = soft_relu(0.1, 2.0, 3.0)
    u = np.linspace(-40, 40, 81)
    np.testing.assert_allclose(f(u), 0.1 * np.log1p(np.exp(2.0 * (u - 3.0))), rtol=1e-12, atol=1e-300)
    h = 1e-6
    np.testing.assert_allclose(df(u), (f(u + h) - f(u - h)) / (2 * h), rtol=1e-6, atol=1e-12)
    assert np.isfinite(f(np.array([1e4, -1e4]))).all()
    f0, _ = NONLINEARITIES["soft_relu"]
    assert f0(np.array([3.0]))[0] == pytest.approx(0.1 * np.log(2.0))


@pytest.mark.parametrize("nudged", [False, True])
@pytest.mark.parametrize("hidden", [(4,), (5, 4)])
def test_steady_state_solves_the_dynamics(nudged, hidden):
    net = _net(hidden, n_in=3, n_out=2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3))
    target = rng.standard_normal((6, 2)) if nudged else None
    s = net.settle(x, target)
    assert s.residual < net.tol
    for du in mc.residuals(net, net.g, s):
        assert np.max(np.abs(du)) < 1e-5


def test_steady_state_equals_closed_form_linear_solve():
    """Linear φ: the fixed point is a linear system in (u_1, u_2, u^I); solve it directly."""
    rng = np.random.default_rng(2)
    net = _net((2,), nl="linear", n_in=2, n_out=1, seed=3)
    x = rng.standard_normal(2)
    t = np.array([0.7])
    W1, W2, B, WIP, WPI = net.W[0], net.W[1], net.B[0], net.W_IP[0], net.W_PI[0]
    b1, b2, bI = net.b[0], net.b[1], net.b_IP[0]
    gP, gO, gI = G.g_lk + G.g_B + G.g_A, G.g_lk + G.g_B + G.g_som, G.g_lk + G.g_D + G.g_som
    # unknowns z = [u1 (2), u2 (1), uI (1)]
    M = np.zeros((4, 4))
    c = np.zeros(4)
    M[0:2, 0:2] = gP * np.eye(2)
    M[0:2, 2:3] = -G.g_A * B
    M[0:2, 3:4] = -G.g_A * WPI
    c[0:2] = G.g_B * (W1 @ x + b1)
    M[2, 0:2] = -G.g_B * W2[0]
    M[2, 2] = gO
    c[2] = G.g_B * b2[0] + G.g_som * t[0]
    M[3, 0:2] = -G.g_D * WIP[0]
    M[3, 2] = -G.g_som
    M[3, 3] = gI
    c[3] = G.g_D * bI[0]
    z = np.linalg.solve(M, c)
    s = mc.settle(net, G, x[None, :], t[None, :], tol=1e-13, max_iter=10_000)
    np.testing.assert_allclose(np.concatenate([s.u[0][0], s.u[1][0], s.u_I[0][0]]), z, atol=1e-10)


def test_integration_relaxes_to_the_steady_state():
    net = _net((4,), n_in=3, n_out=2)
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    _, traces, end = mc.integrate(net, net.g, x, [(5.0, None), (40.0, t)], dt=0.02)
    s = net.settle(x, t)
    for a, b in zip(end.u + end.u_I, s.u + s.u_I):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert traces["v_A"][0].shape[1:] == (2, 4)


def test_self_predicting_state_silences_the_apical_dendrites():
    net = _net((5, 4), init_state="self_predicting", n_in=3, n_out=2)
    x = np.random.default_rng(5).standard_normal((7, 3))
    s = net.settle(x)
    assert s.iterations == 1  # the feed-forward start already is the fixed point
    for vA in s.v_A:
        np.testing.assert_allclose(vA, 0.0, atol=1e-12)
    for l, uI in enumerate(s.u_I):
        np.testing.assert_allclose(uI, s.u[l + 1], atol=1e-12)
    # and it is the feed-forward pass r_k = φ(v̂_B,k)
    h = x
    for l in range(2):
        h = net.f(G.hidden_gain * (h @ net.W[l].T + net.b[l]))
        np.testing.assert_allclose(s.r[l + 1], h, atol=1e-12)
    np.testing.assert_allclose(net.forward(x).out, G.output_gain * (h @ net.W[2].T + net.b[2]), atol=1e-12)
    # with a target the apical potentials carry the error
    s2 = net.settle(x, s.u[-1] + 0.5)
    assert np.mean(np.abs(s2.v_A[-1])) > 1e-3


def _hand_state():
    """A 2-3-2 circuit (one hidden layer) with a hand-made state (not a steady state)."""
    f = np.tanh
    c = mc.CircuitView(
        W=[np.array([[0.5, -1.0], [0.2, 0.3], [-0.4, 0.8]]), np.array([[1.0, -0.5, 0.25], [0.1, 0.2, -0.3]])],
        b=[np.array([0.1, 0.0, -0.1]), np.array([0.05, -0.05])],
        B=[np.array([[0.3, -0.2], [0.5, 0.1], [-0.6, 0.4]])],
        W_IP=[np.array([[0.9, -0.4, 0.2], [0.3, 0.7, -0.1]])], b_IP=[np.array([0.02, -0.03])],
        W_PI=[np.array([[-0.3, 0.2], [-0.5, -0.1], [0.6, -0.4]])], f=f, df=lambda a: 1 - np.tanh(a) ** 2)
    x = np.array([[1.0, -0.5], [0.3, 0.8]])
    s = mc.CircuitState(u=[np.array([[0.2, -0.1, 0.4], [0.0, 0.3, -0.2]]), np.array([[0.5, -0.3], [0.1, 0.2]])],
                        u_I=[np.array([[0.45, -0.25], [0.15, 0.1]])])
    return c, x, mc.fill(c, x, s)


def test_forward_update_equals_its_equation():
    c, x, s = _hand_state()
    ups = forward_updates(c, G, s)
    gains = [G.g_B / (G.g_lk + G.g_B + G.g_A), G.g_B / (G.g_lk + G.g_B)]
    r = [x, np.tanh(s.u[0])]
    for l in range(2):
        vB = r[l] @ c.W[l].T + c.b[l]
        dW = np.zeros_like(c.W[l])
        for n in range(2):
            for i in range(dW.shape[0]):
                for j in range(dW.shape[1]):
                    dW[i, j] += (np.tanh(s.u[l][n, i]) - np.tanh(gains[l] * vB[n, i])) * r[l][n, j] / 2
        np.testing.assert_allclose(ups[l][0], dW, atol=1e-14)
        np.testing.assert_allclose(ups[l][1], (np.tanh(s.u[l]) - np.tanh(gains[l] * vB)).mean(0), atol=1e-14)


def test_interneuron_and_topdown_updates_equal_their_equations():
    c, x, s = _hand_state()
    (dIP, dbIP, dPI), = interneuron_updates(c, G, s)
    r1, r2, rI = np.tanh(s.u[0]), np.tanh(s.u[1]), np.tanh(s.u_I[0])
    vI = r1 @ c.W_IP[0].T + c.b_IP[0]
    vA = r2 @ c.B[0].T + rI @ c.W_PI[0].T
    errI = np.tanh(s.u_I[0]) - np.tanh(G.g_D / (G.g_lk + G.g_D) * vI)
    exp_IP = sum(np.outer(errI[n], r1[n]) for n in range(2)) / 2
    exp_PI = sum(np.outer(0.0 - vA[n], rI[n]) for n in range(2)) / 2
    np.testing.assert_allclose(dIP, exp_IP, atol=1e-14)
    np.testing.assert_allclose(dbIP, errI.mean(0), atol=1e-14)
    np.testing.assert_allclose(dPI, exp_PI, atol=1e-14)
    (dB,) = topdown_updates(c, s)
    exp_B = sum(np.outer(np.tanh(s.u[0][n]) - np.tanh(c.B[0] @ r2[n]), r2[n]) for n in range(2)) / 2
    np.testing.assert_allclose(dB, exp_B, atol=1e-14)


def test_rule_update_is_the_nudged_steady_state_rule():
    net = _net((4,), init_state="random", n_in=3, n_out=2, seed=6, tol=1e-13, max_iter=10_000)
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    rule = DendriticMicrocircuit(eta_forward=[3.0, 0.5], eta_ip=2.0, eta_pi=0.5)
    rule.setup(net, rng)
    ups = rule.update(net, x, y, MeanSquaredError(), rng)
    s = net.settle(x, y)  # MSE: the target potential is y itself
    expect = forward_updates(net, net.g, s)
    for (dW, db), (eW, eb), k in zip(ups, expect, [3.0, 0.5]):
        np.testing.assert_allclose(dW, k * eW, atol=1e-9)
        np.testing.assert_allclose(db, k * eb, atol=1e-9)
    # after_step: interneuron rules at the free steady state, times lr and eta
    free = net.settle(x)
    (dIP, dbIP, dPI), = interneuron_updates(net, net.g, free)
    W_IP, W_PI = net.W_IP[0].copy(), net.W_PI[0].copy()
    rule.after_step(net, 0.1)
    np.testing.assert_allclose(net.W_IP[0] - W_IP, 0.1 * 2.0 * dIP, atol=1e-9)
    np.testing.assert_allclose(net.W_PI[0] - W_PI, 0.1 * 0.5 * dPI, atol=1e-9)
    # shallow baseline: no hidden update
    shallow = DendriticMicrocircuit(learn_hidden=False)
    ups = shallow.update(net, x, y, MeanSquaredError(), rng)
    assert not np.any(ups[0][0]) and np.any(ups[1][0])


def test_plain_rate_network_is_read_at_its_self_predicting_working_point():
    rng = np.random.default_rng(8)
    net = RateNetwork([6, 5, 3], "linear", "random", rng)
    x, y = rng.standard_normal((32, 6)), 0.3 * rng.standard_normal((32, 3))
    rule = DendriticMicrocircuit()
    rule.setup(net, rng)
    c, g, _ = rule.circuit(net)
    free = mc.settle(c, g, x)
    fwd = net.forward(x)
    for u, a in zip(free.u, fwd.a):
        np.testing.assert_allclose(u, a, atol=1e-12)
    assert mc.mean_abs_apical(free) < 1e-12
    mine = rule.update(net, x, y, MeanSquaredError(), rng)
    fa = FeedbackAlignment().update(net, x, y, MeanSquaredError(), rng)
    for l in range(2):
        a = np.concatenate([mine[l][0].ravel(), mine[l][1].ravel()])
        b = np.concatenate([fa[l][0].ravel(), fa[l][1].ravel()])
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.95


def test_training_step_lowers_the_loss():
    net = _net((8,), init_state="self_predicting", n_in=4, n_out=2, seed=9)
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((64, 4)), 0.5 * rng.standard_normal((64, 2))
    obj = MeanSquaredError()
    rule = DendriticMicrocircuit(eta_ip=0.1, eta_pi=0.1)
    rule.setup(net, rng)
    l0 = obj.loss(net.forward(x).out, y)
    for _ in range(50):
        net.apply(rule.update(net, x, y, obj, rng), 0.1)
        rule.after_step(net, 0.1)
    assert obj.loss(net.forward(x).out, y) < 0.8 * l0


def test_linear_output_pyramids_keep_the_self_predicting_state():
    net = _net((5,), nl="soft_relu", init_state="self_predicting", output_nonlinearity="linear",
               phi_gamma=0.1, phi_theta=3.0, init_scale=6.0, n_in=3, n_out=2)
    x = np.random.default_rng(11).standard_normal((4, 3))
    s = net.settle(x)
    np.testing.assert_allclose(s.v_A[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(s.r[-1], s.u[-1])  # linear output rates
    np.testing.assert_allclose(s.r_I[0], s.u_I[0])  # and so are their interneurons'
    s2 = net.settle(x, s.u[-1] + 1.0)
    assert np.all(np.abs(s2.v_A[0]) > 0)


def test_interneuron_phase_nudged_uses_the_nudged_state():
    net = _net((4,), n_in=3, n_out=2, seed=12, tol=1e-13, max_iter=10_000)
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    rule = DendriticMicrocircuit(eta_pi=1.0, interneuron_phase="nudged")
    rule.update(net, x, y, MeanSquaredError(), rng)
    (_, _, dPI), = interneuron_updates(net, net.g, net.settle(x, y))
    W_PI = net.W_PI[0].copy()
    rule.after_step(net, 1.0)
    np.testing.assert_allclose(net.W_PI[0] - W_PI, dPI, atol=1e-9)


def test_learned_topdown_weights_follow_their_rule_only_when_learned():
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    for feedback, moves in (("learned", True), ("random", False)):
        net = _net((4,), n_in=3, n_out=2, seed=15, feedback=feedback, tol=1e-13, max_iter=10_000)
        rule = DendriticMicrocircuit(eta_topdown=2.0)
        rule.update(net, x, y, MeanSquaredError(), rng)
        (dB,) = topdown_updates(net, net.settle(x, y))
        B = net.B[0].copy()
        rule.after_step(net, 0.5)
        np.testing.assert_allclose(net.B[0] - B, 0.5 * 2.0 * dB if moves else 0.0, atol=1e-9)
