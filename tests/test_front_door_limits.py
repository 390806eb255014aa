"""Resource limits known at ``check`` (issue 14 point 2): a scenario that would run for days or
not fit in memory is refused with one line naming the key and the estimate; the limit can be
raised (DENDRITE_SIM_MAX_HOURS)."""

from pathlib import Path

import pytest

from dendrite_sim.cli import main
from dendrite_sim.core import limits

ROOT = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.mark.parametrize("scenario, sets, key", [
    ("teacher_student_fa.toml", ["training.epochs=1000000000000"], "training.epochs"),
    ("teacher_student_fa.toml", ["task.n_train=1000000000000"], "task.n_train"),
    ("digits_segregated_spiking.toml", ['spiking.dt="1e-4 ms"'], "spiking.dt"),
    ("pyr_stp_4000.toml", ['simulation.duration="1e8 ms"', "monitors.state={}", "monitors.spikes=[]"],
     "simulation.duration"),
    ("urbanczik_senn_fig1.toml", ["protocol.lead_out=1000000000000000000"], "protocol.repetitions"),
])
def test_runs_that_would_not_finish_are_refused_at_check(capsys, scenario, sets, key):
    args = ["check", str(ROOT / scenario)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}: ") and err.count("\n") == 0, err
    assert "memory" in err or "compute" in err


def test_the_limit_can_be_raised(monkeypatch, capsys):
    args = ["check", str(ROOT / "teacher_student_fa.toml"), "--set", "training.epochs=100000000"]
    assert main(args) == 2
    assert "24 h limit" in capsys.readouterr().err
    monkeypatch.setenv("DENDRITE_SIM_MAX_HOURS", "inf")
    assert main(args) == 0
    monkeypatch.setenv("DENDRITE_SIM_MAX_HOURS", "soon")
    assert main(args) == 2
    assert "DENDRITE_SIM_MAX_HOURS" in capsys.readouterr().err


def test_estimates_are_orders_of_magnitude_of_what_runs():
    # the shipped digits training: 60 epochs of a 64-100-10 network take seconds
    assert limits.estimate_seconds(flops=6 * 60 * (2 * 1347 + 450) * 7400) < 60
    assert limits._human(90000) == "about 1.04 days" and limits._human(30) == "about 30 s"
