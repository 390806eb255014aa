"""Burst rules, rate faces (issue 9 items 3–5): burstprop (Payeur et al. 2021) and BurstCCN
(Greedy et al. 2022).

* each rule's update equals its equations computed here directly in numpy (closed forms written
  independently of the rule's code), on hand-made small networks and inputs — sigmoid networks
  with the source's output unit, the objective's teaching signal, a linear network (the map's);
* momentum, weight decay, Kolen–Pollack Y and the recurrent Z / learned Q advance as the source
  does (two steps checked against a direct re-implementation of the demo's update);
* a short digits run learns (fast); the shipped scenarios reach ≥ 95 % in 5/5 seeds and
  burstprop's feedback angle falls from ≈ 90° to < 50° with learned and with fixed Y (slow).
"""

import tempfile
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.core import registry
from dendrite_sim.engine import trainer
from dendrite_sim.engine.rate import RateNetwork
from dendrite_sim.experiments.train import feedback_angles
from dendrite_sim.io.results import RunContext
from dendrite_sim.io.scenario import load
from dendrite_sim.objectives.cross_entropy import CrossEntropy
from dendrite_sim.objectives.mse import MeanSquaredError

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def small_net(nonlinearity="sigmoid", feedback="random", sizes=(3, 4, 2), seed=0):
    rng = np.random.default_rng(seed)
    net = RateNetwork(list(sizes), nonlinearity, feedback, rng)
    net.W = [rng.normal(0, 1.0, W.shape) for W in net.W]
    net.b = [rng.normal(0, 0.5, b.shape) for b in net.b]
    if feedback != "symmetric":
        net.B = [rng.normal(0, 1.0, B.shape) for B in net.B]
    return net


X = np.array([[0.2, -1.0, 0.5], [1.0, 0.3, -0.4]])
Y_LABELS = np.array([1, 0])


def rule(name, **kw):
    return registry.get("rule", name)(**kw)


# ------------------------------------------------------------------------------- burstprop
def burstprop_closed_form(W1, b1, W2, b2, Yfb, Z, x, t, pb, eta_h, eta_o):
    """The source's equations (layers.py), per sample, summed over the batch."""
    dW1 = np.zeros_like(W1)
    db1 = np.zeros_like(b1)
    dW2 = np.zeros_like(W2)
    db2 = np.zeros_like(b2)
    for n in range(len(x)):
        e1 = sig(W1 @ x[n] + b1)
        e2 = sig(W2 @ e1 + b2)
        pt2 = pb * ((t[n] - e2) * (1 - e2) + 1)
        b_out, bt_out = pb * e2, pt2 * e2
        fb, fbt = Yfb @ b_out, Yfb @ bt_out          # Y = weight_faᵀ: (n_hidden, n_out)
        b_pre = sig(fb) * e1
        u = fb * (1 - e1) - Z @ b_pre
        p, pt = sig(u), sig(fbt * (1 - e1) - Z @ b_pre)
        d1 = pt * e1 - p * e1
        d2 = bt_out - b_out
        dW1 += eta_h * np.outer(d1, x[n])
        db1 += eta_h * d1
        dW2 += eta_o * np.outer(d2, e1)
        db2 += eta_o * d2
    return [(dW1, db1), (dW2, db2)]


def test_burstprop_update_is_the_source_equations():
    net = small_net()
    r = rule("burstprop", output="sigmoid", momentum=0.0, weight_decay=0.0, p_baseline=0.2,
             hidden_lr=1.0, output_lr=0.01)
    r.setup(net, np.random.default_rng(1))
    r.Z = [np.array([[0.0, 0.3, -0.2, 0.1], [0.2, 0.0, 0.1, -0.3],
                     [-0.1, 0.4, 0.0, 0.2], [0.3, -0.2, 0.1, 0.0]])]
    t = np.eye(2)[Y_LABELS]
    want = burstprop_closed_form(net.W[0], net.b[0], net.W[1], net.b[1], net.B[0], r.Z[0], X, t,
                                 0.2, 1.0, 0.01)
    got = r.update(net, X, Y_LABELS, CrossEntropy(), np.random.default_rng(2))
    for (gW, gb), (wW, wb) in zip(got, want):
        np.testing.assert_allclose(gW, wW, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gb, wb, rtol=1e-10, atol=1e-14)
    # batch mean instead of sum
    r.batch_sum = False
    got = r.update(net, X, Y_LABELS, CrossEntropy(), np.random.default_rng(2))
    np.testing.assert_allclose(got[0][0], want[0][0] / 2, rtol=1e-10, atol=1e-14)


def test_burstprop_objective_output_and_linear_network():
    """output = "objective": b_t − b = −p_b ∂L/∂a at the output; a linear network uses the gate
    f′ = 1 and b_t − b = p_t − p in the hidden layer (the map's 30-20-10 network)."""
    net = small_net("linear")
    r = rule("burstprop", output="objective", momentum=0.0, weight_decay=0.0, p_baseline=0.3,
             hidden_lr=0.5, output_lr=0.2, recurrent=True)
    r.setup(net, np.random.default_rng(1))
    Z = r.Z[0]
    y = np.array([[0.5, -1.0], [2.0, 0.1]])
    got = r.update(net, X, y, MeanSquaredError(), np.random.default_rng(0))
    a1 = X @ net.W[0].T + net.b[0]
    e1 = a1                                           # linear: event rate = f(a) = a
    a2 = e1 @ net.W[1].T + net.b[1]
    g = a2 - y                                        # ∂L/∂a for ½‖a − y‖²
    b_out, bt_out = 0.3 * a2, 0.3 * a2 - 0.3 * g
    fb, fbt = b_out @ net.B[0].T, bt_out @ net.B[0].T
    b_pre = sig(fb) * e1
    d1 = sig(fbt - b_pre @ Z.T) - sig(fb - b_pre @ Z.T)
    np.testing.assert_allclose(got[1][0], 0.2 * (-0.3 * g).T @ e1, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[0][0], 0.5 * d1.T @ X, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[0][1], 0.5 * d1.sum(0), rtol=1e-10, atol=1e-14)
    # the output update is p_b × (summed) exact descent direction
    assert got[1][0] == pytest.approx(-0.2 * 0.3 * g.T @ e1)


def test_burstprop_momentum_decay_kolen_pollack_and_Z_follow_the_demo():
    """Two trainer steps (update, apply, after_step) equal the demo's update_weights loop."""
    net = small_net(feedback="learned")
    mu, lam, eta_z = 0.9, 1e-2, 0.05
    r = rule("burstprop", output="sigmoid", momentum=mu, weight_decay=lam, recurrent_lr=eta_z)
    r.setup(net, np.random.default_rng(3))
    # the demo, re-implemented: weight_fa = Yᵀ gets the same velocity as the output weights
    W = [w.copy() for w in net.W]
    bb = [v.copy() for v in net.b]
    Yfb = net.B[0].copy()
    Z = r.Z[0].copy()
    vW = [np.zeros_like(w) for w in W]
    vb = [np.zeros_like(v) for v in bb]
    t = np.eye(2)[Y_LABELS]
    for _ in range(2):
        want = burstprop_closed_form(W[0], bb[0], W[1], bb[1], Yfb, Z, X, t, 0.2, 1.0, 0.01)
        e1 = sig(X @ W[0].T + bb[0])
        fb = (0.2 * sig(e1 @ W[1].T + bb[1])) @ Yfb.T
        b_pre = sig(fb) * e1
        u = fb * (1 - e1) - b_pre @ Z.T
        for k in range(2):
            vW[k] = mu * vW[k] + want[k][0]
            vb[k] = mu * vb[k] + want[k][1]
            W[k] = W[k] + vW[k] - lam * W[k]
            bb[k] = bb[k] + vb[k]
        Yfb = Yfb + vW[1].T - lam * Yfb
        Z = Z + eta_z * u.T @ b_pre
        net.apply(r.update(net, X, Y_LABELS, CrossEntropy(), np.random.default_rng(0)), 1.0)
        r.after_step(net, 1.0)
    for k in range(2):
        np.testing.assert_allclose(net.W[k], W[k], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(net.b[k], bb[k], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(net.B[0], Yfb, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(r.Z[0], Z, rtol=1e-10, atol=1e-14)


def test_update_alone_changes_no_state():
    """Diagnostics call update repeatedly without applying it: same answer every time."""
    for name in ("burstprop", "burstccn"):
        net = small_net(feedback="learned")
        r = rule(name, output="sigmoid", momentum=0.9, weight_decay=1e-3)
        r.setup(net, np.random.default_rng(0))
        u1 = r.update(net, X, Y_LABELS, CrossEntropy(), np.random.default_rng(0))
        u2 = r.update(net, X, Y_LABELS, CrossEntropy(), np.random.default_rng(0))
        for (a, b), (c, d) in zip(u1, u2):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


# ------------------------------------------------------------------------------- BurstCCN
def burstccn_closed_form(W1, b1, W2, b2, Yfb, Q, x, t, pb, eta):
    """layers_burstccn.py, per sample, averaged over the batch."""
    out = [[np.zeros_like(W1), np.zeros_like(b1)], [np.zeros_like(W2), np.zeros_like(b2)]]
    n_b = len(x)
    for n in range(n_b):
        e1 = sig(W1 @ x[n] + b1)
        e2 = sig(W2 @ e1 + b2)
        pt2 = pb * ((t[n] - e2) * (1 - e2) + 1)
        bt2 = pt2 * e2
        apic = Yfb @ bt2 - Q @ e2
        pt1 = sig(4.0 * apic * (1 - e1))
        d1 = pt1 * e1 - pb * e1
        d2 = bt2 - pb * e2
        out[0][0] += eta * np.outer(d1, x[n]) / n_b
        out[0][1] += eta * d1 / n_b
        out[1][0] += eta * np.outer(d2, e1) / n_b
        out[1][1] += eta * d2 / n_b
    return out


def test_burstccn_update_is_the_source_equations():
    net = small_net()
    r = rule("burstccn", output="sigmoid")
    r.setup(net, np.random.default_rng(0))
    np.testing.assert_allclose(r.Q[0], 0.5 * net.B[0])          # Q = p_b Y
    r.Q = [r.Q[0] + np.array([[0.1, -0.2], [0.0, 0.3], [0.2, 0.1], [-0.1, 0.0]])]
    t = np.eye(2)[Y_LABELS]
    want = burstccn_closed_form(net.W[0], net.b[0], net.W[1], net.b[1], net.B[0], r.Q[0], X, t, 0.5, 0.3)
    got = r.update(net, X, Y_LABELS, CrossEntropy(), np.random.default_rng(0))
    for (gW, gb), (wW, wb) in zip(got, want):
        np.testing.assert_allclose(gW, wW, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gb, wb, rtol=1e-10, atol=1e-14)
    # Q learns toward cancelling: Q += η_Q ⟨u e_upᵀ⟩
    e1 = sig(X @ net.W[0].T + net.b[0])
    e2 = sig(e1 @ net.W[1].T + net.b[1])
    bt2 = 0.5 * ((t - e2) * (1 - e2) + 1) * e2
    apic = bt2 @ net.B[0].T - e2 @ r.Q[0].T
    Q0 = r.Q[0].copy()
    net.apply(got, 1.0)
    r.after_step(net, 1.0)
    np.testing.assert_allclose(r.Q[0], Q0 + 0.000731 * apic.T @ e2 / 2, rtol=1e-10, atol=1e-14)


def test_burstccn_no_teaching_no_hidden_update():
    """With Q = p_b Y and no teaching signal the apical potential is 0, p_t = p_b: nothing
    changes (any non-linearity)."""
    for nl in ("sigmoid", "linear", "tanh"):
        net = small_net(nl)
        r = rule("burstccn")
        r.setup(net, np.random.default_rng(0))
        a_out = net.forward(X).out
        got = r.update(net, X, a_out.copy(), MeanSquaredError(), np.random.default_rng(0))
        for dW, db in got:
            np.testing.assert_allclose(dW, 0.0, atol=1e-14)
            np.testing.assert_allclose(db, 0.0, atol=1e-14)


def test_burstccn_linear_network_closed_form():
    net = small_net("linear", sizes=(3, 4, 3, 2))
    r = rule("burstccn", hidden_lr=0.7, output_lr=0.2)
    r.setup(net, np.random.default_rng(0))
    y = np.array([[0.5, -1.0], [2.0, 0.1]])
    got = r.update(net, X, y, MeanSquaredError(), np.random.default_rng(0))
    h1 = X @ net.W[0].T + net.b[0]
    h2 = h1 @ net.W[1].T + net.b[1]
    a3 = h2 @ net.W[2].T + net.b[2]
    d3 = -0.5 * (a3 - y)                                  # b_t − b at the output
    u2 = (0.5 * a3 + d3) @ net.B[1].T - a3 @ (0.5 * net.B[1]).T
    d2 = sig(4 * u2) - 0.5                                # gate f′ = 1, b_t − b = p_t − p_b
    u1 = (0.5 * h2 + d2) @ net.B[0].T - h2 @ (0.5 * net.B[0]).T
    d1 = sig(4 * u1) - 0.5
    np.testing.assert_allclose(got[2][0], 0.2 * d3.T @ h2 / 2, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[1][0], 0.7 * d2.T @ h1 / 2, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[0][0], 0.7 * d1.T @ X / 2, rtol=1e-10, atol=1e-14)


def test_burst_rules_run_on_the_map():
    """Both rules run in rule_bias_variance on its linear 30-20-10 network (one small seed)."""
    sc = load(SCENARIOS / "rule_bias_variance.toml", overrides=[
        "diagnostics.seeds=1", "diagnostics.draws=2", "diagnostics.n_batches=5",
        "diagnostics.widths=[20]", "training.steps=20", "training.checkpoints=2"])
    from dendrite_sim.core.registry import get

    sc.cfg["rules"] = [get("rule", "burstprop")(momentum=0.0, weight_decay=0.0, hidden_lr=1.0,
                                                output_lr=1.0, batch_sum=False),
                       get("rule", "burstccn")(hidden_lr=1.0, output_lr=1.0)]
    with tempfile.TemporaryDirectory() as out:
        m = sc.experiment.run(sc.cfg, RunContext(out, 1, progress=False))
    for name in ("burstprop", "burstccn"):
        r = m["rules"][name]
        assert 0.0 <= r["bias"] < 0.9 and r["cosine"] > 0.3, (name, r)


# ------------------------------------------------------------------------------- learning
def test_short_digits_run_learns():
    """64-100-10 sigmoid network, learned Y, 25 epochs: both rules well above chance (10 %)."""
    sc = load(SCENARIOS / "digits_burstccn.toml")
    task = sc.cfg["task"]
    for name, kw in (("burstprop", dict(output="sigmoid")),
                     ("burstccn", dict(output="sigmoid", hidden_lr=1.0, output_lr=1.0))):
        data = task.dataset(np.random.default_rng(0))
        net = RateNetwork([64, 100, 10], "sigmoid", "learned", np.random.default_rng(1))
        r = rule(name, **kw)
        hist = trainer.train(net, r, CrossEntropy(), data, epochs=25, batch_size=32, lr=1.0,
                             rng=np.random.default_rng(2))
        assert hist.test_accuracy[-1] > 0.8, (name, hist.test_accuracy)


def run_scenario(name, seed, *overrides):
    sc = load(SCENARIOS / f"{name}.toml", overrides=list(overrides), seed=seed)
    with tempfile.TemporaryDirectory() as out:
        return sc, sc.experiment.run(sc.cfg, RunContext(out, sc.seed, progress=False))


def initial_angle(sc, seed):
    """feedback_angle_deg of the network the run starts from (the same init stream)."""
    from dendrite_sim.core import rng as rngmod

    data = sc.cfg["task"].dataset(rngmod.stream(seed, "task"))
    net = sc.cfg["architecture"].build(data.n_in, data.n_out, rngmod.stream(seed, "init"))
    return feedback_angles(net)[0]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("feedback", ["learned", "random"])
def test_digits_burstprop_95_percent_and_angle_below_50(seed, feedback):
    sc, m = run_scenario("digits_burstprop", seed, f'architecture.feedback="{feedback}"')
    assert m["final_test_accuracy"] >= 0.95, m["final_test_accuracy"]
    assert 80.0 < initial_angle(sc, seed) < 100.0
    assert m["feedback_angle_deg"][0] < 50.0, m["feedback_angle_deg"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_digits_burstccn_95_percent(seed):
    _, m = run_scenario("digits_burstccn", seed)
    assert m["final_test_accuracy"] >= 0.95, m["final_test_accuracy"]


def test_burstccn_learned_feedback_keeps_q_cancelling():
    """Kolen–Pollack moves Y; Q takes p_b × each step, so u stays 0 without teaching."""
    net = small_net(feedback="learned")
    r = rule("burstccn", output="sigmoid", q_lr=0.0, momentum=0.5)
    r.setup(net, np.random.default_rng(0))
    B0 = net.B[0].copy()
    for _ in range(3):
        net.apply(r.update(net, X, Y_LABELS, CrossEntropy(), np.random.default_rng(0)), 1.0)
        r.after_step(net, 1.0)
    assert not np.allclose(net.B[0], B0)
    np.testing.assert_allclose(r.Q[0], 0.5 * net.B[0], rtol=1e-12, atol=1e-14)
