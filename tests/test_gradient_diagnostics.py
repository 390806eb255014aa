"""Gradient diagnostics: the acceptance numbers of the foundation issue (Richards et al. Fig 2–3)."""

import copy

import numpy as np
import pytest

from dendrite_sim.analysis import gradient as gd
from dendrite_sim.architectures.layered import Layered
from dendrite_sim.core import registry
from dendrite_sim.tasks.teacher_student import LinearTeacherStudent


def rule(name, **kw):
    return registry.get("rule", name)(**kw)


def objective(name):
    return registry.get("objective", name)()


@pytest.fixture(scope="module")
def linear_setup():
    """The 30-20-10 linear network learning a random linear teacher (Lillicrap et al. 2016)."""
    data = LinearTeacherStudent(n_in=30, n_out=10, n_train=512, n_test=64,
                                target_noise=0.0).dataset(np.random.default_rng(3))
    net = Layered([20], "linear", "random", 1.0, True).build(30, 10, np.random.default_rng(4))
    return net, data.x_train[:256], data.y_train[:256], data


def test_backprop_equals_finite_differences():
    rng = np.random.default_rng(0)
    net = Layered([7, 5], "tanh", "random", 1.0, True).build(4, 3, rng)
    x, y = rng.standard_normal((9, 4)), rng.integers(0, 3, 9)
    obj = objective("cross_entropy")
    g = gd.descent_direction(net, x, y, obj)
    for l, (i, j) in [(0, (2, 1)), (1, (4, 0)), (2, (1, 3))]:
        eps = 1e-6
        net.W[l][i, j] += eps
        lp = obj.loss(net.forward(x).out, y)
        net.W[l][i, j] -= 2 * eps
        lm = obj.loss(net.forward(x).out, y)
        net.W[l][i, j] += eps
        assert g[l][0][i, j] == pytest.approx(-(lp - lm) / (2 * eps), rel=1e-6, abs=1e-10)


def test_backprop_is_unbiased_to_machine_precision(linear_setup):
    net, x, y, _ = linear_setup
    rep = gd.estimator_report(rule("backprop"), net, x, y, objective("mse"),
                              np.random.default_rng(0), draws=1, n_batches=20)
    assert rep["bias"] < 1e-6 and rep["bias_raw"] < 1e-12
    assert rep["angle_deg"] < 1e-3
    assert 0 < rep["variance"] < 5          # mini-batch (SGD) noise only


def test_perturbation_rules_are_unbiased_and_weight_perturbation_noisier(linear_setup):
    net, x, y, _ = linear_setup
    obj = objective("mse")
    np_rep = gd.estimator_report(rule("node_perturbation", sigma=1e-3), net, x, y, obj,
                                 np.random.default_rng(1), draws=300, n_batches=40)
    wp_rep = gd.estimator_report(rule("weight_perturbation", sigma=1e-3), net, x, y, obj,
                                 np.random.default_rng(2), draws=600, n_batches=40)
    assert np_rep["cosine"] >= 0.97
    assert wp_rep["cosine"] >= 0.9
    assert wp_rep["variance"] > 5 * np_rep["variance"]
    # unbiased at the gradient's own scale (first order in sigma)
    assert np_rep["bias_raw"] < 0.05 and wp_rep["bias_raw"] < 0.25


def test_node_perturbation_variance_grows_with_width(linear_setup):
    _, x, y, _ = linear_setup
    obj = objective("mse")
    var = []
    for width in (10, 100):
        net = Layered([width], "linear", "random", 1.0, True).build(30, 10, np.random.default_rng(5))
        var.append(gd.estimator_report(rule("node_perturbation", sigma=1e-3), net, x, y, obj,
                                       np.random.default_rng(6), draws=200, n_batches=40)["variance"])
    assert var[1] > 1.3 * var[0]


def test_feedback_alignment_biased_low_variance_and_aligns(linear_setup):
    net0, x, y, data = linear_setup
    obj = objective("mse")
    fa, bp = rule("feedback_alignment"), rule("backprop")
    rep = gd.estimator_report(fa, net0, x, y, obj, np.random.default_rng(0), draws=1, n_batches=40)
    bp_rep = gd.estimator_report(bp, net0, x, y, obj, np.random.default_rng(0), draws=1, n_batches=40)
    assert rep["bias"] > 0.1                      # biased
    assert rep["variance"] < 3 * bp_rep["variance"]   # but no noisier than SGD itself
    net = copy.deepcopy(net0)
    rng = np.random.default_rng(7)
    start = gd.alignment_angle(fa, net, x, y, obj, rng)[0]
    for _ in range(400):
        idx = rng.choice(len(data.x_train), 32, replace=False)
        net.apply(fa.update(net, data.x_train[idx], data.y_train[idx], obj, rng), 0.01)
    end = gd.alignment_angle(fa, net, x, y, obj, rng)[0]
    assert start > 75 and end < 60               # "well below 90°" during training


def test_fig3_only_the_parallel_part_changes_the_loss(linear_setup):
    net, x, y, _ = linear_setup
    rep = gd.estimator_report(rule("feedback_alignment"), net, x, y, objective("mse"),
                              np.random.default_rng(0), draws=1, n_batches=5)
    d = rep["decomposition"]
    assert d["parallel_fraction"] + d["orthogonal_fraction"] == pytest.approx(1.0)
    assert d["loss_slope_parallel"] < 0
    assert abs(d["loss_slope_orthogonal"]) < 1e-3 * abs(d["loss_slope_parallel"])


def test_reinforce_teaching_signal_is_an_unbiased_gradient_estimate():
    rng = np.random.default_rng(0)
    obj = registry.get("objective", "reward")()
    a = rng.standard_normal((64, 4))
    y = rng.integers(0, 4, 64)
    est = np.mean([obj.teaching_signal(a, y, rng) for _ in range(4000)], axis=0)
    exact = obj.gradient(a, y)
    assert gd.cosine(est.ravel(), exact.ravel()) > 0.98
    # and the exact gradient is the derivative of the expected negative reward
    eps = 1e-6
    a2 = a.copy()
    a2[3, 1] += eps
    fd = (obj.loss_per_sample(a2, y)[3] - obj.loss_per_sample(a, y)[3]) / eps
    assert exact[3, 1] == pytest.approx(fd, rel=1e-4)
