"""Sacramento et al. 2018 microcircuit, end to end: the self-predicting state emerging from interneuron
plasticity, a regression where the microcircuit beats the shallow learner (fast, small versions), and
the full scenarios (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.architectures.microcircuit import Microcircuit
from dendrite_sim.cli import main
from dendrite_sim.engine import trainer
from dendrite_sim.objectives.mse import MeanSquaredError
from dendrite_sim.rules.sacramento import DendriticMicrocircuit
from dendrite_sim.tasks.teacher_student_microcircuit import MicrocircuitTeacherStudent

SCEN = Path(__file__).resolve().parents[1] / "scenarios"


def _run(tmp_path, name, *sets, tag="run"):
    out = tmp_path / tag
    args = ["run", str(SCEN / name), "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text()), out


@pytest.mark.parametrize("name", ["microcircuit_self_predicting.toml", "microcircuit_regression.toml",
                                  "microcircuit_digits.toml"])
def test_scenarios_check(name):
    assert main(["check", str(SCEN / name)]) == 0


def test_tiny_self_predicting_state(tmp_path):
    m, out = _run(tmp_path, "microcircuit_self_predicting.toml",
                  "task.n_in=8", "task.n_out=3", "task.teacher_hidden=5", "task.n_train=300",
                  "architecture.hidden=[6]", "training.steps=3000", "training.record_every=100",
                  "training.eval_size=100", "traces.phase_duration=8.0", "traces.dt=0.1")
    assert m["cosine_pi_vs_minus_topdown"] >= 0.9
    assert m["apical_fall"] >= 10
    assert m["apical_final"] < m["apical_initial"]
    # the apical error appears only while the target is shown, once self-predicting
    t = m["traces"]
    assert t["final_target"] > 2 * t["final_forward"]
    assert t["final_forward"] < 0.2 * t["start_forward"]
    assert {"history", "cosine_ip_vs_forward"} <= set(m)
    assert (out / "self_predicting.png").exists() and (out / "traces.png").exists()


def test_wrong_parts_are_refused(tmp_path):
    args = ["check", str(SCEN / "microcircuit_self_predicting.toml"), "--set", "architecture.name=layered"]
    assert main(args) == 2


def test_small_regression_microcircuit_beats_shallow():
    task = MicrocircuitTeacherStudent(n_in=30, teacher_hidden=20, n_out=10, n_train=500, n_test=300)
    data = task.dataset(np.random.default_rng(1))
    arch = Microcircuit(hidden=[20], nonlinearity="soft_relu", output_nonlinearity="linear",
                        phi_gamma=0.1, phi_beta=1.0, phi_theta=3.0, init_scale=6.0,
                        init_state="self_predicting", feedback="random")
    losses = {}
    for learn_hidden in (True, False):
        net = arch.build(30, 10, np.random.default_rng(2))
        rule = DendriticMicrocircuit(eta_forward=[8.0, 1.0], eta_ip=0.5, eta_pi=0.5,
                                     learn_hidden=learn_hidden)
        h = trainer.train(net, rule, MeanSquaredError(), data, epochs=100, batch_size=10, lr=1.0,
                          rng=np.random.default_rng(3))
        losses[learn_hidden] = h.test_loss[-1]
    assert np.isfinite(losses[True])
    assert losses[True] < 0.9 * losses[False]


@pytest.mark.slow
def test_self_predicting_scenario_acceptance(tmp_path):
    m, _ = _run(tmp_path, "microcircuit_self_predicting.toml")
    assert m["apical_fall"] >= 10
    assert m["cosine_pi_vs_minus_topdown"] >= 0.9


@pytest.mark.slow
def test_regression_scenario_beats_shallow(tmp_path):
    mc, _ = _run(tmp_path, "microcircuit_regression.toml", tag="mc")
    sh, _ = _run(tmp_path, "microcircuit_regression.toml", "rule.learn_hidden=false", tag="shallow")
    assert not mc["diverged"]
    assert mc["final_test_loss"] < sh["final_test_loss"]
    assert mc["feedback_angle_deg"][0] < 80


@pytest.mark.slow
def test_digits_scenario_reaches_95_percent(tmp_path):
    m, _ = _run(tmp_path, "microcircuit_digits.toml")
    assert m["final_test_accuracy"] >= 0.95
