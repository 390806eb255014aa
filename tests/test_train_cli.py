"""``dendrite-sim run`` of a ``train`` scenario: the output contract and its round trip."""

import json
import math
from pathlib import Path

import pytest
import tomllib

from dendrite_sim.cli import main
from dendrite_sim.io.scenario import load

ROOT = Path(__file__).resolve().parents[1]
XOR = str(ROOT / "scenarios" / "xor.toml")
KEYS = {"final_train_accuracy", "final_test_accuracy", "final_train_loss", "final_test_loss",
        "history", "n_params", "n_train", "n_test", "feedback_angle_deg", "diverged"}


def metrics_of(out):
    return json.loads((Path(out) / "metrics.json").read_text())


def test_run_xor_writes_config_provenance_metrics_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", XOR, "--out", str(out)]) == 0
    assert "learning_curve.png" in capsys.readouterr().out
    files = {p.name for p in out.iterdir()}
    assert {"config.toml", "provenance.json", "metrics.json", "timings.json", "learning_curve.png"} <= files
    assert not [f for f in files if f.endswith(".tmp")]
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    m = metrics_of(out)
    assert KEYS <= set(m) and m["experiment"] == "train" and m["seed"] == 1
    assert m["final_test_accuracy"] == 1.0 and m["n_params"] == 42 and m["diverged"] is False
    h = m["history"]
    assert h["epoch"] == list(range(301))
    assert all(len(h[k]) == 301 for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"))
    assert h["train_loss"][-1] == m["final_train_loss"] and h["test_accuracy"][-1] == 1.0
    assert json.loads((out / "provenance.json").read_text())["seed"] == 1

    # config.toml holds every default and re-loads to the same scenario ...
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["training"] == {"epochs": 300, "batch_size": 4, "learning_rate": 0.5, "substrate": "rate"}
    assert cfg["architecture"]["init_scale"] == 1.0 and cfg["task"]["noise"] == 0.0
    again = load(out / "config.toml")
    assert again.resolved == load(XOR).resolved
    assert again.seed == 1
    # ... and runs again to the same numbers, byte for byte (timings live in timings.json)
    out2 = tmp_path / "again"
    assert main(["run", str(out / "config.toml"), "--out", str(out2)]) == 0
    assert "wall_time_s" not in m and json.loads((out / "timings.json").read_text())["wall_time_s"] > 0
    assert (out2 / "metrics.json").read_bytes() == (out / "metrics.json").read_bytes()


def test_regression_task_reports_null_accuracy(tmp_path):
    out = tmp_path / "ts"
    ts = str(ROOT / "scenarios" / "teacher_student_fa.toml")
    assert main(["run", ts, "--out", str(out), "--set", "training.epochs=2"]) == 0
    m = metrics_of(out)
    assert m["final_test_accuracy"] is None and m["history"]["train_accuracy"] == [None] * 3
    assert m["final_test_loss"] < m["history"]["test_loss"][0]
    assert m["n_params"] == 30 * 20 + 20 + 20 * 10 + 10


def test_divergence_stops_the_run_with_one_line_naming_layer_and_epoch(tmp_path, capsys):
    out = tmp_path / "div"
    ts = str(ROOT / "scenarios" / "teacher_student_fa.toml")
    assert main(["run", ts, "--out", str(out), "--set", "training.epochs=3",
                 "--set", "training.learning_rate=5.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err                 # one line: no overflow warnings before it
    assert err.startswith("error: layers[0].W: diverged during epoch 1: 600 of 600 values (30→20) are NaN "
                          "or infinite; expected finite values: lower training.learning_rate (now 5)"), err
    assert not (out / "metrics.json").exists()
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and status["reason"] == err.strip()[len("error: "):]
    # the same directory takes a corrected run without --overwrite (it holds only a failed run's record)
    assert main(["run", ts, "--out", str(out), "--set", "training.epochs=3"]) == 0
    assert metrics_of(out)["diverged"] is False and math.isfinite(metrics_of(out)["final_test_loss"])


def test_divergence_checks_name_the_first_bad_array_and_loss():
    import numpy as np

    from dendrite_sim.core.errors import DivergenceError
    from dendrite_sim.engine import divergence
    from dendrite_sim.engine.rate import RateNetwork

    net = RateNetwork([3, 4, 2], "tanh", "random", rng=np.random.default_rng(0))
    divergence.check_network(net, "during epoch 1")          # finite: nothing raised
    net.b[1][0] = np.inf
    with pytest.raises(DivergenceError) as e:
        divergence.check_network(net, "during epoch 2", prefix="rules.fa.")
    assert e.value.key == "rules.fa.layers[1].b" and e.value.expected.startswith(
        "diverged during epoch 2: 1 of 2 values (4→2) are NaN or infinite")
    with pytest.raises(DivergenceError) as e:
        divergence.check_losses([1.0, None, 2.0, float("nan"), float("inf")], "history.test_loss")
    assert e.value.key == "history.test_loss[3]" and "at epoch 3: the loss became nan" in e.value.expected
    divergence.check_losses([1.0, None, 0.5], "history.test_loss")


def test_bad_training_values_are_one_line_errors(capsys):
    for key, value, expected in [("training.learning_rate", "0", "> 0"),
                                 ("training.epochs", "0", ">= 1"),
                                 ("training.batch_size", "2.5", "integer"),
                                 ("task.encoding", '"ternary"', "one of"),
                                 ("training.lr", "0.1", "unknown key")]:
        assert main(["check", XOR, "--set", f"{key}={value}"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {key}: ") and expected in err and "\n" not in err
