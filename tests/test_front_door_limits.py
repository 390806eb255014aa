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


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_network_whose_state_diverges_stops_naming_population_variable_and_time(backend):
    from dendrite_sim.core.errors import DivergenceError
    from dendrite_sim.engine.network import Network

    net = Network(dt=1.0, seed=1, backend=backend)
    net.population("pyr", 3, "guerguiev", params={"g_B": 5.0})     # forward Euler: dt · 5.1 > 2
    net.current("pyr", compartment="basal", bias=[0.0, 1.0, 0.0])
    net.run(10.0)                                                   # still finite
    with pytest.raises(DivergenceError) as e:
        net.run(2000.0)
    assert e.value.key == "populations.pyr.v_soma"
    assert "neuron 1" in e.value.expected and "t = 2010 ms" in e.value.expected


DIVERGING = """
[scenario]
experiment = "simulate"
[simulation]
dt = "1 ms"
duration = "2000 ms"
transient = "0 ms"
[monitors]
every = "1 ms"
[network.populations.pyr]
model = "guerguiev"
n = 2
params = { g_B = 5.0 }
[network.inputs.drive]
type = "current"
target = "pyr"
compartment = "basal"
bias = "1 pA"
"""


def test_a_diverging_simulation_is_one_line_exit_2_and_a_failed_status(tmp_path, capsys):
    import json

    s = tmp_path / "diverging.toml"
    s.write_text(DIVERGING)
    out = tmp_path / "run"
    assert main(["run", str(s), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: populations.pyr.v_soma: diverged"), err
    assert json.loads((out / "status.json").read_text())["state"] == "failed"
    assert not (out / "metrics.json").exists()


def test_session_folders_respect_the_umask(tmp_path):
    """Imaging session folders are made with mkdtemp (0700); they get the umask's mode."""
    import os
    import stat

    from dendrite_sim.imaging.session import SessionWriter

    old = os.umask(0o022)
    try:
        with SessionWriter(tmp_path / "session1", n_frames=2, n_rois=1, allocate=False) as w:
            assert stat.S_IMODE(os.stat(w.tmp).st_mode) == 0o755
    finally:
        os.umask(old)
