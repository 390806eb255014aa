"""AGREL / Q-AGREL (rules/agrel.py), rate face.

* the modulator and the tag against the paper's equations on a hand-made trial;
* the expected AGREL update (exact expectation over the chosen action, and the average of many
  sampled updates) against the cross-entropy gradient: cosine ≥ 0.95 (exactly 1 in expectation);
* Q-AGREL's expected update against its own objective (policy-weighted squared value error);
* regression targets: the importance-weighted chosen-unit error is unbiased for MSE;
* the gratings and digits scenarios reach ≥ 90 % test accuracy (slow).
"""

import tempfile
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.analysis.gradient import cosine, descent_direction, flat, mean_update
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.rate import RateNetwork, backward
from dendrite_sim.objectives import one_hot, softmax
from dendrite_sim.objectives.cross_entropy import CrossEntropy
from dendrite_sim.objectives.mse import MeanSquaredError
from dendrite_sim.rules.agrel import AGREL, epsilon_greedy_policy

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CE, MSE = CrossEntropy(), MeanSquaredError()


def net_and_data(feedback="symmetric", sizes=(8, 12, 9, 4), n=64, seed=0):
    rng = np.random.default_rng(seed)
    net = RateNetwork(list(sizes), "tanh", feedback, rng)
    x = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    return net, x, y


class FixedRng:
    """rng.random returns the given uniforms (to force the chosen action)."""

    def __init__(self, u):
        self.u = np.asarray(u, float)[:, None]

    def random(self, shape):
        return self.u.reshape(shape)


def test_modulator_and_tag_on_one_trial():
    net, x, y = net_and_data(sizes=(3, 4, 3), n=1)
    y = np.array([1])
    fwd = net.forward(x)
    p = softmax(fwd.out)[0]
    rule = AGREL()
    for k, r in ((1, 1.0), (2, 0.0)):
        u = p[:k].sum() + 0.5 * p[k]          # uniform that picks action k
        ups = rule.update(net, x, y, CE, FixedRng([u]))
        delta = (r - p[k]) / p[k]
        assert np.isclose(delta, (1 - p[1]) / p[1] if r else -1.0)
        # output: only the chosen unit's row changes, by δ h
        dW_out = np.zeros_like(net.W[1])
        dW_out[k] = delta * fwd.h[1][0]
        assert np.allclose(ups[1][0], dW_out)
        # hidden: tag = f'(a_j) W_kj (the chosen unit's feedback) times x, times δ
        g = net.df(fwd.a[0][0]) * net.W[1][k]
        assert np.allclose(ups[0][0], delta * np.outer(g, x[0]))
        assert np.allclose(ups[0][1], delta * g)


def exact_expectation(rule, net, x, y, objective):
    """E_k[update] summed over every action k, weighted by the policy (per sample)."""
    fwd = net.forward(x)
    pi = rule.policy(fwd.out, y.ndim == 1)
    K = fwd.out.shape[1]
    e = np.zeros_like(fwd.out)
    for k in range(K):
        kk = np.full(len(y), k)
        d = rule.modulator(fwd.out, pi, kk, y, objective, None)
        e += pi[:, [k]] * (-d[:, None] * one_hot(kk, K))
    return backward(net, fwd, e, feedback="weights")


def test_expected_agrel_update_is_the_cross_entropy_gradient():
    net, x, y = net_and_data()
    g = flat(descent_direction(net, x, y, CE))
    rule = AGREL()
    assert cosine(flat(exact_expectation(rule, net, x, y, CE)), g) > 0.999999
    # the mean of sampled updates (Monte Carlo, 2000 draws of 64 trials)
    m = flat(mean_update(rule, net, x, y, CE, np.random.default_rng(1), draws=2000))
    c = cosine(m, g)
    assert c >= 0.95, c
    for layer in range(net.n_layers):
        assert cosine(flat(mean_update(rule, net, x, y, CE, np.random.default_rng(2), draws=500), layer),
                      flat(descent_direction(net, x, y, CE), layer)) >= 0.9


def test_single_trial_updates_are_noisy():
    """One trial's update is far from the gradient: the estimator's variance is real."""
    net, x, y = net_and_data()
    rng = np.random.default_rng(3)
    cs = [cosine(flat(AGREL().update(net, x[:1], y[:1], CE, rng)), flat(descent_direction(net, x[:1], y[:1], CE)))
          for _ in range(50)]
    assert np.std(cs) > 0.1


def test_q_agrel_expected_update():
    net, x, y = net_and_data()
    rule = AGREL(variant="q_agrel", epsilon=0.2)
    fwd = net.forward(x)
    pi = epsilon_greedy_policy(fwd.out, 0.2)
    # −∂/∂Q of ½ Σ_k π_k (r_k − Q_k)², π fixed
    e = -pi * (one_hot(y, 4) - fwd.out)
    want = flat(backward(net, fwd, e, feedback="weights"))
    assert cosine(flat(exact_expectation(rule, net, x, y, CE)), want) > 0.999999
    m = flat(mean_update(rule, net, x, y, CE, np.random.default_rng(4), draws=1000))
    assert cosine(m, want) >= 0.95


def test_regression_targets_unbiased_and_q_agrel_refused():
    rng = np.random.default_rng(5)
    net = RateNetwork([6, 5, 3], "linear", "random", rng)
    x, y = rng.standard_normal((32, 6)), rng.standard_normal((32, 3))
    fwd = net.forward(x)
    want = flat(backward(net, fwd, MSE.gradient(fwd.out, y), feedback="B"))
    m = flat(mean_update(AGREL(feedback="architecture"), net, x, y, MSE, np.random.default_rng(6), draws=2000))
    assert cosine(m, want) >= 0.95
    assert cosine(flat(exact_expectation(AGREL(), net, x, y, MSE)),
                  flat(backward(net, fwd, MSE.gradient(fwd.out, y), feedback="weights"))) > 0.999999
    with pytest.raises(ScenarioError, match="rule.variant"):
        AGREL(variant="q_agrel").update(net, x, y, MSE, rng)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["gratings_agrel", "digits_agrel"])
def test_scenarios_reach_90_percent(scenario):
    import json

    from dendrite_sim.cli import main

    with tempfile.TemporaryDirectory() as d:
        assert main(["run", str(SCENARIOS / f"{scenario}.toml"), "--out", d]) == 0
        metrics = json.loads(next(Path(d).rglob("metrics.json")).read_text())
    assert metrics["final_test_accuracy"] >= 0.90, metrics["final_test_accuracy"]
