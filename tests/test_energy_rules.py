"""Energy-based rules of issue 10: equilibrium propagation, contrastive Hebbian learning (its
clamped limit) and predictive coding (rate faces).

* each update against a direct numpy computation of the paper's equations on hand-made networks
  (fixed points solved independently: linear solves for linear networks, scipy's root finder for
  tanh networks);
* equilibrium propagation as β → 0 equals the exact gradient of the cost at the free fixed point
  (finite differences through the relaxation), and for a small feedback gain backprop's gradient
  of the feedforward network (cosine ≥ 0.99);
* predictive coding's error units at equilibrium equal backprop's deltas (cosine ≥ 0.99 per layer);
* small networks learn; the digits scenarios reach ≥ 95 % (slow).
"""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import root

from dendrite_sim.analysis.gradient import cosine, descent_direction, flat
from dendrite_sim.core import registry
from dendrite_sim.core.interfaces import Dataset
from dendrite_sim.engine.rate import RateNetwork
from dendrite_sim.engine.trainer import train
from dendrite_sim.objectives.cross_entropy import CrossEntropy
from dendrite_sim.objectives.mse import MeanSquaredError
from dendrite_sim.rules.equilibrium_propagation import ContrastiveHebbian, EquilibriumPropagation
from dendrite_sim.rules.predictive_coding import PredictiveCoding

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
MSE, CE = MeanSquaredError(), CrossEntropy()


def hand_net(nonlinearity="linear"):
    """A 3-2-2 network with hand-chosen weights and biases."""
    net = RateNetwork([3, 2, 2], nonlinearity, "symmetric", np.random.default_rng(0))
    net.W = [np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6]]), np.array([[0.7, -0.2], [0.3, 0.9]])]
    net.b = [np.array([0.1, -0.2]), np.array([0.05, 0.0])]
    net.sync_feedback()
    return net


X = np.array([[1.0, 0.5, -1.0], [0.2, -0.4, 0.8]])
Y = np.array([[1.0, 0.0], [-0.5, 0.5]])


def grads(u):
    return [np.concatenate([dW.ravel(), db.ravel()]) for dW, db in u]


# ------------------------------------------------------------------ equilibrium propagation
def ep_linear_fixed_point(net, x, g, force):
    """Solve u1 = W1 x + b1 + g W2ᵀ u2, u2 = W2 u1 + b2 + force for one sample (linear units)."""
    W1, W2 = net.W
    b1, b2 = net.b
    A = np.block([[np.eye(2), -g * W2.T], [-W2, np.eye(2)]])
    u = np.linalg.solve(A, np.concatenate([W1 @ x + b1, b2 + force]))
    return u[:2], u[2:]


def test_ep_update_equals_direct_linear_computation():
    net, g, beta = hand_net("linear"), 0.3, 0.2
    rule = EquilibriumPropagation(beta=beta, beta_sign="positive", feedback_gain=g, tol=1e-10,
                                  max_steps=2000)
    up = rule.update(net, X, Y, MSE, np.random.default_rng(0))
    assert rule.converged
    dW1 = np.zeros((2, 3))
    dW2 = np.zeros((2, 2))
    db1, db2 = np.zeros(2), np.zeros(2)
    for x, y in zip(X, Y):
        h0, o0 = ep_linear_fixed_point(net, x, g, np.zeros(2))
        e = o0 - y                                   # MSE teaching signal at the free fixed point
        hb, ob = ep_linear_fixed_point(net, x, g, -beta * e)
        dW1 += (np.outer(hb, x) - np.outer(h0, x)) / (g * beta)      # γ^{−(L−l)} / β, l = 1
        dW2 += (np.outer(ob, hb) - np.outer(o0, h0)) / beta
        db1 += (hb - h0) / (g * beta)
        db2 += (ob - o0) / beta
    n = len(X)
    np.testing.assert_allclose(up[0][0], dW1 / n, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(up[1][0], dW2 / n, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(up[0][1], db1 / n, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(up[1][1], db2 / n, rtol=1e-6, atol=1e-9)


def ep_tanh_fixed_point(net, x, g, force_fn):
    """The fixed point u1 = W1 x + b1 + g W2ᵀ u2, u2 = W2 tanh(u1) + b2 + force(u2) of one sample,
    found by scipy's root finder (independent of the rule's relaxation)."""
    W1, W2 = net.W
    b1, b2 = net.b

    def F(z):
        u1, u2 = z[:2], z[2:]
        return np.concatenate([u1 - W1 @ x - b1 - g * W2.T @ u2,
                               u2 - W2 @ np.tanh(u1) - b2 - force_fn(u2)])

    z0 = np.concatenate([W1 @ x + b1, W2 @ np.tanh(W1 @ x + b1) + b2])
    sol = root(F, z0, tol=1e-13)
    assert np.abs(F(sol.x)).max() < 1e-12
    return sol.x[:2], sol.x[2:]


@pytest.mark.parametrize("nudge", ["teaching_signal", "cost"])
def test_ep_update_equals_direct_tanh_computation(nudge):
    """Tanh hidden layer, cross-entropy, both nudging forms; symmetric nudging."""
    net, g, beta = hand_net("tanh"), 0.5, 0.3
    y = np.array([1, 0])
    rule = EquilibriumPropagation(beta=beta, beta_sign="symmetric", nudge=nudge, feedback_gain=g,
                                  tol=1e-11, max_steps=5000)
    up = rule.update(net, X, y, CE, np.random.default_rng(0))
    assert rule.converged
    acc = [np.zeros((2, 3)), np.zeros((2, 2))]
    for x, yi in zip(X, y):
        onehot = np.eye(2)[yi]

        def grad_ce(u2, onehot=onehot):
            p = np.exp(u2 - u2.max())
            return p / p.sum() - onehot

        _, o0 = ep_tanh_fixed_point(net, x, g, lambda u2: 0.0 * u2)
        e = grad_ce(o0)
        states = {}
        for s in (+1, -1):
            fn = (lambda u2, s=s, e=e: -s * beta * e) if nudge == "teaching_signal" else \
                 (lambda u2, s=s: -s * beta * grad_ce(u2))
            states[s] = ep_tanh_fixed_point(net, x, g, fn)
        (hp, op), (hm, om) = states[1], states[-1]
        acc[0] += (np.outer(np.tanh(hp), x) - np.outer(np.tanh(hm), x)) / (2 * beta * g)
        acc[1] += (np.outer(op, np.tanh(hp)) - np.outer(om, np.tanh(hm))) / (2 * beta)
    np.testing.assert_allclose(up[0][0], acc[0] / 2, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(up[1][0], acc[1] / 2, rtol=1e-6, atol=1e-9)


def test_chl_update_equals_direct_computation():
    """CHL: output clamped to the MSE target; ΔW_l = γ^{−(L−l)}(r^c r^cᵀ − r⁰ r⁰ᵀ)."""
    net, g = hand_net("linear"), 0.3
    rule = ContrastiveHebbian(feedback_gain=g, tol=1e-12, max_steps=2000)
    up = rule.update(net, X, Y, MSE, np.random.default_rng(0))
    W1, W2 = net.W
    dW1, dW2 = np.zeros((2, 3)), np.zeros((2, 2))
    for x, y in zip(X, Y):
        h0, o0 = ep_linear_fixed_point(net, x, g, np.zeros(2))
        hc = W1 @ x + net.b[0] + g * W2.T @ y        # hidden with the output clamped at y
        dW1 += (np.outer(hc, x) - np.outer(h0, x)) / g
        dW2 += np.outer(y, hc) - np.outer(o0, h0)
    np.testing.assert_allclose(up[0][0], dW1 / 2, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(up[1][0], dW2 / 2, rtol=1e-6, atol=1e-9)


def test_ep_random_sign_is_stochastic_and_averages_the_two_signs():
    net = hand_net("tanh")
    rule = EquilibriumPropagation(beta=0.5, beta_sign="random", feedback_gain=0.3, tol=1e-10)
    assert rule.stochastic and not EquilibriumPropagation(beta_sign="positive").stochastic
    rng = np.random.default_rng(3)
    draws = [flat(rule.update(net, X, Y, MSE, rng)) for _ in range(40)]
    pos = flat(EquilibriumPropagation(beta=0.5, beta_sign="positive", feedback_gain=0.3,
                                      tol=1e-10).update(net, X, Y, MSE, rng))
    neg = flat(EquilibriumPropagation(beta=-0.5, beta_sign="positive", feedback_gain=0.3,   # β < 0 as is
                                      tol=1e-10).update(net, X, Y, MSE, rng))
    distinct = {tuple(np.round(d, 8)) for d in draws}
    assert len(distinct) == 2                         # one of the two signs per call
    assert tuple(np.round(pos, 8)) in distinct and tuple(np.round(neg, 8)) in distinct
    sym = flat(EquilibriumPropagation(beta=0.5, beta_sign="symmetric", feedback_gain=0.3,
                                      tol=1e-10).update(net, X, Y, MSE, rng))
    others = [d for d in distinct if not np.allclose(d, pos)]
    np.testing.assert_allclose(0.5 * (pos + np.array(others[0])), sym, rtol=1e-6, atol=1e-9)


def recurrent_loss(net, x, y, objective, rule):
    u, _, ok = rule.free_phase(net, x, threshold=1e-13)
    assert ok
    return objective.loss(u[-1], y)


def test_ep_small_beta_is_the_gradient_at_the_free_fixed_point():
    """Scellier & Bengio's theorem: (1/β)(…) → −dC(u⁰(θ))/dθ, here with strong feedback (γ = 0.5)
    where the fixed point is far from the feedforward pass; the gradient by central differences."""
    rng = np.random.default_rng(1)
    net = RateNetwork([4, 5, 3, 2], "tanh", "symmetric", rng)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 2, 6)
    rule = EquilibriumPropagation(beta=1e-4, beta_sign="symmetric", feedback_gain=0.5, tol=1e-7,
                                  max_steps=5000)
    ep = flat(rule.update(net, x, y, CE, rng))
    num, h = [], 1e-6
    for l in range(net.n_layers):
        for P in (net.W[l], net.b[l]):
            for i in np.ndindex(P.shape):
                old = P[i]
                P[i] = old + h
                lp = recurrent_loss(net, x, y, CE, rule)
                P[i] = old - h
                lm = recurrent_loss(net, x, y, CE, rule)
                P[i] = old
                num.append(-(lp - lm) / (2 * h))
    num = np.array(num)
    ff = flat(descent_direction(net, x, y, CE))
    assert cosine(ep, num) >= 0.9999
    np.testing.assert_allclose(ep, num, rtol=1e-3, atol=1e-5)
    assert cosine(ff, num) < 0.99                    # the recurrent network is not the feedforward one


@pytest.mark.parametrize("beta_sign", ["positive", "random", "symmetric"])
def test_ep_small_beta_matches_backprop_of_the_feedforward_network(beta_sign):
    """With the default feedback gain the free fixed point is the feedforward pass up to O(γ):
    cosine ≥ 0.99 with backprop, per layer, on a 2-hidden-layer tanh network (cross-entropy) and
    on the 30-20-10 linear map network (MSE)."""
    rng = np.random.default_rng(2)
    cases = [(RateNetwork([20, 15, 10, 5], "tanh", "random", rng), rng.standard_normal((64, 20)),
              rng.integers(0, 5, 64), CE),
             (RateNetwork([30, 20, 10], "linear", "random", rng), rng.standard_normal((64, 30)),
              rng.standard_normal((64, 10)), MSE)]
    for net, x, y, obj in cases:
        rule = EquilibriumPropagation(beta=1e-3, beta_sign=beta_sign)
        up, g = rule.update(net, x, y, obj, rng), descent_direction(net, x, y, obj)
        assert rule.converged and max(rule.last_steps) < 20
        for l in range(net.n_layers):
            assert cosine(flat(up, l), flat(g, l)) >= 0.99, (l, beta_sign)
        assert cosine(flat(up), flat(g)) >= 0.995
        # and at the gradient's scale (not just its direction)
        assert np.linalg.norm(flat(up)) == pytest.approx(np.linalg.norm(flat(g)), rel=0.1)


def test_readout_is_the_free_fixed_point_and_near_the_forward_pass():
    rng = np.random.default_rng(11)
    net = RateNetwork([8, 6, 4], "tanh", "random", rng)
    x = rng.standard_normal((5, 8))
    for g in (0.01, 0.5):
        rule = EquilibriumPropagation(feedback_gain=g, tol=1e-10, max_steps=5000)
        out, ff = rule.readout(net, x), net.forward(x).out
        h = np.tanh(x @ net.W[0].T + net.b[0] + g * out @ net.W[1])      # fixed-point equations
        np.testing.assert_allclose(out, h @ net.W[1].T + net.b[1], atol=1e-9)
        assert np.abs(out - ff).max() <= 3 * g * np.abs(ff).max()


def test_chl_with_small_feedback_gain_matches_backprop():
    """Xie & Seung (2003): CHL → backprop as γ → 0 (MSE, linear output)."""
    rng = np.random.default_rng(4)
    net = RateNetwork([10, 8, 6, 3], "tanh", "random", rng)
    x, y = rng.standard_normal((32, 10)), rng.standard_normal((32, 3))
    up, g = ContrastiveHebbian().update(net, x, y, MSE, rng), descent_direction(net, x, y, MSE)
    for l in range(net.n_layers):
        assert cosine(flat(up, l), flat(g, l)) >= 0.99


def test_ep_without_hidden_layer_is_the_delta_rule():
    rng = np.random.default_rng(5)
    net = RateNetwork([6, 3], "tanh", "random", rng)
    x, y = rng.standard_normal((10, 6)), rng.standard_normal((10, 3))
    up = EquilibriumPropagation(beta=0.7, beta_sign="positive").update(net, x, y, MSE, rng)
    g = descent_direction(net, x, y, MSE)
    np.testing.assert_allclose(up[0][0], g[0][0], rtol=1e-10)
    np.testing.assert_allclose(up[0][1], g[0][1], rtol=1e-10)


# ------------------------------------------------------------------ predictive coding
def test_pc_update_equals_direct_linear_computation():
    """Linear network: the equilibrium solves (I + s W2ᵀW2) x1 = μ1 + s W2ᵀ(t − b2), s = σh²/σo²."""
    net, so2, sh2 = hand_net("linear"), 4.0, 1.5
    rule = PredictiveCoding(output_variance=so2, hidden_variance=sh2, inference_rate=0.3,
                            inference_steps=5000, tol=1e-12)
    up = rule.update(net, X, Y, MSE, np.random.default_rng(0))
    assert rule.converged
    W1, W2 = net.W
    b1, b2 = net.b
    s = sh2 / so2
    dW1, dW2, db1, db2 = np.zeros((2, 3)), np.zeros((2, 2)), np.zeros(2), np.zeros(2)
    for x, t in zip(X, Y):                       # MSE: the output is clamped to the target
        mu1 = W1 @ x + b1
        x1 = np.linalg.solve(np.eye(2) + s * W2.T @ W2, mu1 + s * W2.T @ (t - b2))
        e1 = (x1 - mu1) / sh2
        e2 = (t - W2 @ x1 - b2) / so2
        np.testing.assert_allclose(e1, W2.T @ e2, atol=1e-12)      # stationarity
        dW1 += so2 * np.outer(e1, x)
        dW2 += so2 * np.outer(e2, x1)
        db1 += so2 * e1
        db2 += so2 * e2
    for (dW, db), (eW, eb) in zip(up, [(dW1, db1), (dW2, db2)]):
        np.testing.assert_allclose(dW, eW / 2, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(db, eb / 2, rtol=1e-6, atol=1e-9)


def test_pc_update_equals_direct_tanh_computation():
    """Tanh network, cross-entropy: output clamped to t = a − (softmax(a) − onehot); equilibrium of
    ε1 = f′(x1) ⊙ W2ᵀ ε2 found by scipy; ΔW_l = σo² ε_l f(x_{l−1})ᵀ."""
    net, so2 = hand_net("tanh"), 2.0
    y = np.array([0, 1])
    rule = PredictiveCoding(output_variance=so2, inference_rate=0.5, inference_steps=5000, tol=1e-12)
    up = rule.update(net, X, y, CE, np.random.default_rng(0))
    W1, W2 = net.W
    b1, b2 = net.b
    dW1, dW2 = np.zeros((2, 3)), np.zeros((2, 2))
    for x, yi in zip(X, y):
        a1 = W1 @ x + b1
        a2 = W2 @ np.tanh(a1) + b2
        p = np.exp(a2 - a2.max())
        t = a2 - (p / p.sum() - np.eye(2)[yi])

        def F(x1, x=x, t=t):
            e2 = (t - W2 @ np.tanh(x1) - b2) / so2
            return (x1 - W1 @ x - b1) - (1 - np.tanh(x1) ** 2) * (W2.T @ e2)

        x1 = root(F, a1, tol=1e-13).x
        assert np.abs(F(x1)).max() < 1e-12
        e1 = x1 - W1 @ x - b1
        e2 = (t - W2 @ np.tanh(x1) - b2) / so2
        dW1 += so2 * np.outer(e1, x)
        dW2 += so2 * np.outer(e2, np.tanh(x1))
    np.testing.assert_allclose(up[0][0], dW1 / 2, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(up[1][0], dW2 / 2, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("sizes,nonlinearity", [([20, 15, 10, 5], "tanh"), ([30, 20, 10], "linear"),
                                                ([12, 16, 16, 16, 4], "sigmoid")])
def test_pc_error_units_at_equilibrium_are_backprop_deltas(sizes, nonlinearity):
    rng = np.random.default_rng(6)
    net = RateNetwork(sizes, nonlinearity, "random", rng)
    x, y = rng.standard_normal((64, sizes[0])), rng.integers(0, sizes[-1], 64)
    fwd = net.forward(x)
    e = CE.gradient(fwd.out, y)
    deltas = [None] * net.n_layers
    deltas[-1] = e
    for l in range(net.n_layers - 2, -1, -1):
        deltas[l] = (deltas[l + 1] @ net.W[l + 1]) * net.df(fwd.a[l])
    rule = PredictiveCoding()
    eq = rule.relax(net, x, fwd.out - e)
    assert eq.converged
    for l in range(net.n_layers):
        assert cosine((-rule.output_variance * eq.eps[l]).ravel(), deltas[l].ravel()) >= 0.99, l
        assert cosine(flat(rule.update(net, x, y, CE, rng), l),
                      flat(descent_direction(net, x, y, CE), l)) >= 0.99


def test_pc_hard_clamping_is_a_different_rule():
    """σ_L² = σ_h²: the hidden nodes move far from their predictions; the update leaves backprop's."""
    rng = np.random.default_rng(7)
    net = RateNetwork([30, 20, 10], "linear", "random", rng)
    x, y = rng.standard_normal((64, 30)), rng.standard_normal((64, 10))
    g = descent_direction(net, x, y, MSE)
    soft = PredictiveCoding().update(net, x, y, MSE, rng)
    hard = PredictiveCoding(output_variance=1.0, inference_rate=0.2, inference_steps=500).update(
        net, x, y, MSE, rng)
    assert cosine(flat(soft), flat(g)) > 0.999 > cosine(flat(hard), flat(g))


# ------------------------------------------------------------------ registry and learning
def test_rules_are_registered_rate_rules():
    for name in ("equilibrium_propagation", "contrastive_hebbian", "predictive_coding"):
        cls = registry.get("rule", name)
        assert cls.substrates == ("rate",)
    assert set(registry.get("rule", "equilibrium_propagation").params) >= {
        "beta", "beta_sign", "feedback_gain", "step_size", "tol", "max_steps"}
    assert set(registry.get("rule", "predictive_coding").params) >= {
        "output_variance", "inference_rate", "inference_steps"}


@pytest.mark.parametrize("rule", [EquilibriumPropagation(), ContrastiveHebbian(),
                                  EquilibriumPropagation(beta=0.5, nudge="cost"), PredictiveCoding()],
                         ids=["ep", "chl", "ep_cost", "pc"])
def test_small_network_learns(rule):
    """A 10-16-3 tanh student fits a tanh teacher: training loss falls ≥ 10× (a few seconds)."""
    rng = np.random.default_rng(8)
    teacher = RateNetwork([10, 8, 3], "tanh", "random", rng, init_scale=2.0)
    xs = rng.standard_normal((300, 10))
    ys = teacher.forward(xs).out
    data = Dataset(xs[:200], ys[:200], xs[200:], ys[200:])
    net = RateNetwork([10, 16, 3], "tanh", "random", np.random.default_rng(9))
    hist = train(net, rule, MSE, data, epochs=40, batch_size=16, lr=0.05, rng=np.random.default_rng(10))
    assert hist.train_loss[-1] < 0.1 * hist.train_loss[0]
    assert hist.test_loss[-1] < 0.2 * hist.test_loss[0]


@pytest.mark.parametrize("name", ["digits_equilibrium_propagation", "digits_predictive_coding"])
def test_scenarios_check(name):
    from dendrite_sim.io.scenario import load

    sc = load(SCENARIOS / f"{name}.toml")
    assert sc.cfg["rule"].registered_name in name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_equilibrium_propagation", "digits_predictive_coding"])
def test_digits_above_95_percent(name):
    """The shipped scenarios (≈ 30 s each): test ≥ 95 %, training error towards 0."""
    from dendrite_sim.io.results import RunContext
    from dendrite_sim.io.scenario import load

    sc = load(SCENARIOS / f"{name}.toml")
    with tempfile.TemporaryDirectory() as out:
        m = sc.experiment.run(sc.cfg, RunContext(out, sc.seed, progress=False))
    assert m["history"]["test_accuracy"][0] < 0.25
    assert m["final_test_accuracy"] >= 0.95, m["final_test_accuracy"]
    assert m["final_train_accuracy"] >= 0.99, m["final_train_accuracy"]
    assert m["history"]["train_loss"][-1] < 0.1 * m["history"]["train_loss"][0]
