"""RDD feedback learning (rules/rdd.py; Guerguiev, Kording & Richards 2020).

* the discontinuity regression recovers a planted jump exactly (noise-free piecewise-linear data);
* on a known network the causal-effect estimate correlates with the true effect (the forward
  weights) r ≥ 0.8 and its regression slope on the truth is ≈ 1 (unbiased);
* the feedback update moves B towards β̂ᵀ by η_B;
* learned feedback aligns with the forward weights better than fixed random feedback (digits).
"""

import numpy as np
import pytest

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.rate import RateNetwork
from dendrite_sim.engine.trainer import train
from dendrite_sim.objectives.cross_entropy import CrossEntropy
from dendrite_sim.rules.feedback_alignment import FeedbackAlignment
from dendrite_sim.rules.rdd import RDDFeedback, naive_effect, probe, rdd_effect


def test_regression_discontinuity_recovers_a_planted_jump():
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (500, 2))
    s = (z > 0).astype(float)
    # response 0: 0.3 + 0.7 z0 + s0 (1.5 - 0.2 z0) plus a smooth function of z1
    u = np.column_stack([0.3 + 0.7 * z[:, 0] + s[:, 0] * (1.5 - 0.2 * z[:, 0]),
                         -2.0 * s[:, 1] + 0.5 * z[:, 1]])
    beta = rdd_effect(z, s, u, 0.0, 0.5)
    assert np.isclose(beta[0, 0], 1.5)
    assert np.isclose(beta[1, 1], -2.0)
    # no trials on one side: no estimate
    assert np.isnan(rdd_effect(np.abs(z), np.ones_like(s), u, -0.1, 0.5)).all()


def test_causal_effect_estimate_on_a_known_network():
    rng = np.random.default_rng(1)
    net = RateNetwork([20, 30, 10], "tanh", "random", rng)
    a = net.forward(rng.standard_normal((20_000, 20))).a[0]
    z, s, u = probe(net.f, net.W[1], net.b[1], a, rng, sigma=1.0, rho=0.5, theta=0.0)
    beta = rdd_effect(z, s, u, 0.0, 1.0)
    true = net.W[1]
    r = np.corrcoef(beta.ravel(), true.ravel())[0, 1]
    slope = np.polyfit(true.ravel(), beta.ravel(), 1)[0]
    assert r >= 0.8, r
    assert 0.9 < slope < 1.15, slope
    # the naive spike-triggered difference is inflated by the unit's own rate and the correlated
    # neighbours: its scale is wrong by far more than the RDD's
    naive_slope = np.polyfit(true.ravel(), naive_effect(s, u).ravel(), 1)[0]
    assert abs(naive_slope - 1) > 3 * abs(slope - 1)


def test_feedback_moves_towards_the_estimate():
    rng = np.random.default_rng(2)
    net = RateNetwork([5, 6, 3], "tanh", "random", rng)
    rule = RDDFeedback(feedback_lr=0.25)
    rule.setup(net, rng)
    x, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
    B0 = net.B[0].copy()
    rule.update(net, x, y, CrossEntropy(), rng)
    bt = rule.estimate()[0].T
    rule.after_step(net, 0.1)
    ok = ~np.isnan(bt)
    assert ok.any()
    assert np.allclose(net.B[0][ok], B0[ok] + 0.25 * (bt[ok] - B0[ok]))
    assert np.allclose(net.B[0][~ok], B0[~ok])


def test_symmetric_feedback_refused():
    class Arch:
        feedback = "symmetric"

    with pytest.raises(ScenarioError, match="architecture.feedback"):
        RDDFeedback().check_architecture(Arch())


def test_learned_feedback_aligns_better_than_fixed_random():
    data = registry.get("task", "digits")().dataset(np.random.default_rng(0))
    angles = {}
    for name, rule in (("fa", FeedbackAlignment()), ("rdd", RDDFeedback())):
        rng = np.random.default_rng(1)
        net = RateNetwork([64, 100, 10], "tanh", "random", rng)
        h = train(net, rule, CrossEntropy(), data, epochs=3, batch_size=8, lr=0.05, rng=rng)
        angles[name] = h.feedback_angle_deg[-1][0]
        assert h.test_accuracy[-1] > 0.85
    assert angles["rdd"] < 35 and angles["rdd"] < angles["fa"] - 15, angles
