"""The front door never breaks (issue 14): hostile scenarios, ``--set`` values and arguments
exit 2 with one line ``error: <key path>: <what was expected>`` — never a traceback, never a
hang; diverging runs are errors, not NaN in ``metrics.json``; runs that stop leave
``status.json``; files respect the umask. Includes a derandomised hypothesis fuzz of each
family (the slow 1000-scenario sweep is ``tests/test_front_door_mutations.py``)."""

from __future__ import annotations

import json
import math
import os
import stat
import time
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dendrite_sim.cli import main
from dendrite_sim.core.errors import DivergenceError, ScenarioError
from dendrite_sim.core.schema import Field
from dendrite_sim.core.units import parse_in_unit, parse_quantity
from dendrite_sim.io import atomic, results
from dendrite_sim.io.scenario import load

ROOT = Path(__file__).resolve().parents[1]
XOR = str(ROOT / "scenarios" / "xor.toml")
ECHO_PLUGIN = str(ROOT / "tests" / "data" / "echo_experiment.py")
FUZZ = settings(derandomize=True, deadline=None, max_examples=120,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def echo(cell=None, plugins=None):
    return {"scenario": {"experiment": "echo_quantities", "plugins": plugins or [ECHO_PLUGIN]},
            "cell": cell or {}}


def _exit(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def one_line(capsys, code, argv, key, phrase, limit_s=3.0):
    t0 = time.perf_counter()
    assert _exit(argv) == code, argv
    assert time.perf_counter() - t0 < limit_s
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {key}"), err
    assert phrase in err, err


def write(tmp_path, data, name="s.toml") -> str:
    p = tmp_path / name
    p.write_text(tomli_w.dumps(data) if isinstance(data, dict) else data, encoding="utf-8")
    return str(p)


# ----------------------------------------------------------------------------- point 1: cases
QUANTITY_CASES = [
    ("10**10**10 ms", "operators"),          # a power tower pint would evaluate forever
    ("10**400 pA", "operators"),
    ("2**1000 ms", "operators"),
    ("ms", "no number"),                     # a bare unit is not 1 ms
    ("5 Ms", "prefix 'mega'"),               # five megaseconds: nonsense for a neuron
    ("5 as", "prefix 'atto'"),
    ("1e400 ms", "finite"),
    ("inf ms", "finite"),
    ("(5) ms", "operators"),
    ("5 pQ", "unknown unit 'pQ'"),
    ("5", "no units"),
    ("x" * 1000 + " ms", "longer than"),
]


@pytest.mark.parametrize("text,phrase", QUANTITY_CASES, ids=[c[0][:20] for c in QUANTITY_CASES])
def test_hostile_quantities_are_one_line_errors(tmp_path, capsys, text, phrase):
    one_line(capsys, 2, ["check", write(tmp_path, echo({"tau_m": text}))], "cell.tau_m", phrase)


def test_sensible_quantities_still_parse():
    assert parse_quantity("5 ms", "time", "k") == 5.0
    assert parse_quantity("0.02 s", "time", "k") == pytest.approx(20.0)
    assert parse_quantity("-70mV", "voltage", "k") == -70.0
    assert parse_quantity("1 MHz", "frequency", "k") == 1e6             # MHz is a sensible rate
    assert parse_quantity("2 µm", "length", "k") == parse_quantity("2 μm", "length", "k") == 2.0
    assert parse_quantity("1e-3 s", "time", "k") == pytest.approx(1.0)
    assert parse_in_unit("2 1/ms", "1/ms", "k") == 2.0
    assert parse_in_unit("0.1 /mV", "1/mV", "k") == pytest.approx(0.1)
    assert parse_in_unit("1 Hz", "1/ms", "k") == pytest.approx(1e-3)
    assert parse_in_unit("0.5", "1", "k") == 0.5
    assert parse_in_unit("3 um**2", "um**2", "k") == pytest.approx(3.0)


def _deep(n, table):
    v = 1
    for _ in range(n):
        v = {"a": v} if table else [v]
    return v


def test_deep_nesting_files_data_and_overrides(tmp_path, capsys):
    for n in (40, 1000, 100_000):
        for opener, closer in (("[", "]"), ("{a=", "}")):
            text = f'[scenario]\nexperiment = "train"\nx = {opener * n}1{closer * n}\n'
            one_line(capsys, 2, ["check", write(tmp_path, text)], "", "nested at most")
    deep = "[" * 5000 + "]" * 5000
    one_line(capsys, 2, ["check", XOR, "--set", f"training.x={deep}"], "training.x", "nested at most")
    for table in (True, False):
        with pytest.raises(ScenarioError, match="nested at most"):
            load(data={"scenario": {"experiment": "train", "x": _deep(2000, table)}})


def test_huge_integers_and_numbers(tmp_path, capsys):
    one_line(capsys, 2, ["check", XOR, "--set", "training.epochs=" + "1" + "0" * 400], "training.epochs",
             "64 bits")
    one_line(capsys, 2, ["check", XOR, "--set", "training.learning_rate=" + "1" + "0" * 400],
             "training.learning_rate", "64 bits")        # TOML integers are 64-bit, wherever they stand
    path = write(tmp_path, {**echo(), "cell": {"weights": ["1 nS"], "extra": {"deep": [1, 10**30]}}})
    one_line(capsys, 2, ["check", path], "cell.extra.deep[1]", "64 bits")
    one_line(capsys, 2, ["check", XOR, "--set", "training.learning_rate=1e400"], "training.learning_rate", "finite")
    one_line(capsys, 2, ["check", XOR, "--set", "scenario.seed=" + "9" * 500], "scenario.seed", "64 bits")
    one_line(capsys, 2, ["check", write(tmp_path, "[scenario]\nseed = " + "9" * 5000 + "\n")], "", "valid TOML")
    for seed in ("1e400", "9" * 30, "9" * 5000, "-1", "0x10", ""):
        one_line(capsys, 2, ["check", XOR, "--seed", seed], "arguments", "--seed")
    assert Field("int", 0).validate(2**63 - 1, "k") == 2**63 - 1
    with pytest.raises(ScenarioError, match="64 bits"):
        Field("int", 0).validate(2**63, "k")
    with pytest.raises(ScenarioError, match="finite"):
        Field("float", 0.0).validate(10**400, "k")
    with pytest.raises(ScenarioError, match=r"got ~1e\+"):
        Field("int", 0, hi=10).validate(10**400, "k")
    with pytest.raises(ScenarioError, match="finite"):
        parse_in_unit(10**400, "ms", "k")


def test_bad_plugin_entries(tmp_path, capsys):
    (tmp_path / "notpy.txt").write_text("x = 1\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('boom')\n")
    cases = [(str(tmp_path), ".py"), ("notpy.txt", ".py"), ("x" * 5000 + ".py", "File name too long"),
             ("a\u0000.py", "Python file"), ("", "Python file"), ("missing.py", "does not exist"),
             ("raises.py", "RuntimeError: boom")]
    for entry, phrase in cases:
        path = write(tmp_path, {"scenario": {"experiment": "train", "plugins": [entry]}})
        one_line(capsys, 2, ["check", path], "scenario.plugins[0]", phrase)


def test_bad_files_and_out_dirs(tmp_path, capsys):
    (tmp_path / "bin.toml").write_bytes(bytes(range(256)))
    one_line(capsys, 2, ["check", str(tmp_path / "bin.toml")], str(tmp_path / "bin.toml"), "UTF-8")
    one_line(capsys, 2, ["check", str(tmp_path)], str(tmp_path), "is a directory")
    one_line(capsys, 2, ["check", "y" * 5000], "y", "File name too long")
    (tmp_path / "afile").write_text("x")
    one_line(capsys, 2, ["run", write(tmp_path, echo()), "--out", str(tmp_path / "afile")], "--out", "is a file")


# ----------------------------------------------------------------------------- point 1: fuzz
_number = st.one_of(st.sampled_from(["5", "-70", "0.5", ".5", "5.", "1e3", "2e-3", "1e400", "nan", "inf",
                                     "10**10**10", "2**1000", "1_0", "0x1f", "(5)", "", "-", "1/2"]),
                    st.floats(allow_nan=True).map(repr), st.integers().map(str))
_unit = st.sampled_from(["ms", "s", "Ms", "mV", "pA", "nA", "nS", "uS", "pF", "Hz", "kHz", "MHz", "um", "µm",
                         "1/ms", "/ms", "ms**2", "ms^-1", "mV/ms", "kg", "as", "ms*ms", "", "ms ms", "pQ",
                         "meter", "hour", "(ms)", "**", "ms**10**10", "Ω", "°C", "%"])


@FUZZ
@given(text=st.one_of(st.tuples(_number, st.sampled_from(["", " ", "  "]), _unit).map("".join),
                      st.text(max_size=40)),
       dim=st.sampled_from(["time", "voltage", "current", "conductance", "frequency", "length"]))
def test_fuzz_quantity_strings(text, dim):
    t0 = time.perf_counter()
    try:
        v = parse_quantity(text, dim, "k")
    except ScenarioError as exc:
        assert "\n" not in exc.line()
    else:
        assert math.isfinite(v)
    assert time.perf_counter() - t0 < 1.0


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                       st.sampled_from(["5 ms", "ms", "5 Ms", "10**10**10 ms", "nan Hz"]))
_nested = st.recursive(_json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                       max_leaves=30)


@FUZZ
@given(value=_nested, depth=st.integers(0, 60), key=st.sampled_from(["cell", "scenario", "extra"]))
def test_fuzz_nested_values_in_a_scenario(value, depth, key):
    data = echo()
    for _ in range(depth):
        value = [value]
    data.setdefault(key, {})
    if isinstance(data[key], dict):
        data[key]["tau_m" if key == "cell" else "x"] = value
    try:
        load(data=data)
    except ScenarioError as exc:
        assert "\n" not in exc.line()


@FUZZ
@given(assignment=st.one_of(
    st.text(max_size=30),
    st.tuples(st.sampled_from(["training.epochs", "training.learning_rate", "scenario.seed", "task.encoding",
                               "rule.name", "architecture.hidden", "x.y.z", ""]),
              st.one_of(st.sampled_from(["1e400", "nan", "-inf", "9" * 5000, "[" * 3000, '"5 Ms"', "{a={b=1}}"]),
                        st.text(max_size=20))).map("=".join)))
def test_fuzz_set_overrides(assignment):
    try:
        load(XOR, overrides=[assignment])
    except ScenarioError as exc:
        assert "\n" not in exc.line()


@FUZZ
@given(raw=st.binary(max_size=300))
def test_fuzz_random_bytes_as_a_scenario_file(tmp_path, raw):
    path = tmp_path / "r.toml"
    path.write_bytes(raw)
    try:
        load(path)
    except ScenarioError as exc:
        assert "\n" not in exc.line()


# ----------------------------------------------------------------------------- point 3: divergence
def test_metrics_json_is_strict_and_divergence_is_an_error(tmp_path):
    with pytest.raises(DivergenceError) as e:
        results.write_metrics(tmp_path, {"rules": {"bp": {"loss": [1.0, float("nan")]}}, "ok": 1.0})
    assert e.value.key == "rules.bp.loss[1]" and "diverged" in e.value.expected
    assert not (tmp_path / "metrics.json").exists()
    atomic.write_json(tmp_path / "x.json", {"a": float("inf"), "b": [float("nan"), 1.0]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [None, 1.0]}
    assert "NaN" not in (tmp_path / "x.json").read_text()
    import numpy as np

    assert results.nonfinite({"a": np.array([1.0, np.inf]), "b": np.float32("nan")}) == [("a[1]", math.inf),
                                                                                      ("b", pytest.approx(math.nan, nan_ok=True))]


def test_diverging_rule_bias_variance_run_exits_2_without_nan(tmp_path, capsys):
    small = ["--set", "diagnostics.seeds=1", "--set", "diagnostics.draws=5", "--set", "diagnostics.n_batches=4",
             "--set", "diagnostics.widths=[5]", "--set", "training.steps=10", "--set", "training.checkpoints=2",
             "--set", "diagnostics.pool_size=16", "--set", "training.learning_rate=1e6"]
    out = tmp_path / "run"
    code = main(["run", str(ROOT / "scenarios" / "rule_bias_variance.toml"), "--out", str(out), *small])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2, err
    assert err.startswith("error: ") and "diverged" in err, err
    assert not (out / "metrics.json").exists()
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and "diverged" in status["reason"]


# ----------------------------------------------------------------------------- point 4: records
FAILING = '''
from dendrite_sim import register
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.schema import Field


@register("experiment", "front_door_failing")
class Failing(Experiment):
    """Fails as told (test plugin)."""

    sections = {"how": {"mode": Field("str", "raise", choices=("raise", "interrupt", "ok"))}}

    def run(self, cfg, ctx):
        if cfg["how"]["mode"] == "raise":
            raise RuntimeError("numerical failure on purpose")
        if cfg["how"]["mode"] == "interrupt":
            raise KeyboardInterrupt
        return {"value": 1.0}
'''


def test_status_json_and_reuse_of_a_failed_run_directory(tmp_path, capsys):
    (tmp_path / "failing.py").write_text(FAILING)
    scen = write(tmp_path, {"scenario": {"experiment": "front_door_failing", "plugins": ["failing.py"]},
                            "how": {"mode": "raise"}})
    out = tmp_path / "run"
    assert main(["run", scen, "--out", str(out)]) == 1
    capsys.readouterr()
    st_ = json.loads((out / "status.json").read_text())
    assert st_["state"] == "failed" and "numerical failure" in st_["reason"]
    assert {"started_utc", "updated_utc", "pid"} <= set(st_)
    assert main(["run", scen, "--out", str(out), "--set", "how.mode=interrupt"]) == 130   # no --overwrite
    capsys.readouterr()
    assert json.loads((out / "status.json").read_text())["state"] == "interrupted"
    assert main(["export", str(out)]) == 2
    assert "interrupted" in capsys.readouterr().err
    assert main(["run", scen, "--out", str(out), "--set", "how.mode=ok"]) == 0
    assert json.loads((out / "status.json").read_text())["state"] == "completed"
    assert not (out / "error.log").exists()
    capsys.readouterr()
    assert main(["run", scen, "--out", str(out), "--set", "how.mode=ok"]) == 2           # finished: protected
    assert capsys.readouterr().err.startswith("error: --out: ")
    only_config = tmp_path / "killed"
    only_config.mkdir()
    (only_config / "config.toml").write_text("")
    (only_config / "provenance.json").write_text("{}")
    assert results.reusable(only_config)
    (only_config / "figure.png").write_text("")
    assert not results.reusable(only_config)


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_output_files_respect_the_umask(tmp_path, capsys, mask, mode):
    old = os.umask(mask)
    try:
        out = tmp_path / "run"
        assert main(["run", write(tmp_path, echo()), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == mode, f
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask


def test_export_given_a_file_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", write(tmp_path, echo()), "--out", str(out)]) == 0
    capsys.readouterr()
    one_line(capsys, 2, ["export", str(out / "metrics.json")], "RUN_DIR", "is a file")


# ----------------------------------------------------------------------------- point 6: Python API
def test_network_from_the_package_face_takes_quantity_strings():
    import dendrite_sim
    from dendrite_sim import Network
    from dendrite_sim.core.errors import ArgumentError

    assert "Network" in dir(dendrite_sim)
    a = Network(dt="0.1 ms", seed=3, backend="numpy")
    a.population("pyr", 20, "lif")
    a.poisson_input("pyr", "exc", n_sources=200, rate="20 Hz", weight="40 pA")
    a.projection("pyr", "pyr", "exc", "fixed_probability", p=0.2, weight="5 pA", delay="1 ms")
    a.current("pyr", "soma", bias="0.1 nA")
    sa = a.spike_monitor("pyr")
    a.run("50 ms")
    b = Network(dt=0.1, seed=3, backend="numpy")
    b.population("pyr", 20, "lif")
    b.poisson_input("pyr", "exc", n_sources=200, rate=20.0, weight=40.0)
    b.projection("pyr", "pyr", "exc", "fixed_probability", p=0.2, weight=5.0, delay=1.0)
    b.current("pyr", "soma", bias=100.0)
    sb = b.spike_monitor("pyr")
    b.run(50.0)
    assert len(sa.t) == len(sb.t) > 0 and (sa.t == sb.t).all()
    text = repr(a)
    assert len(text) < 300 and "pyr: 20 lif" in text and "t=50 ms" in text
    for bad, phrase in ((float("nan"), "finite"), (float("inf"), "finite"), ("5 mV", "units of ms"),
                        ("ms", "no number"), (-1.0, "multiple of dt"), (None, "finite")):
        with pytest.raises(ArgumentError, match=phrase) as e:
            a.run(bad)
        assert e.value.key == "duration" and isinstance(e.value, ValueError)
    with pytest.raises(ArgumentError, match="weight"):
        a.projection("pyr", "pyr", "exc", weight="5 mV", name="bad")
    with pytest.raises(ValueError, match="dt"):
        Network(dt="5 Ms")


def test_a_directory_with_a_live_run_is_not_reused(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "busy"
    out.mkdir()
    (out / "config.toml").write_text("")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (out / "status.json").write_text(json.dumps({"state": "running", "pid": proc.pid}))
        assert not results.reusable(out)
    finally:
        proc.kill()
        proc.wait()
    assert results.reusable(out)                     # its writer is gone: an interrupted run


def test_the_installed_command_prints_no_traceback(tmp_path):
    import subprocess
    import sys

    (tmp_path / "deep.toml").write_text('[scenario]\nexperiment = "train"\nx = ' + "[" * 5000 + "]" * 5000 + "\n")
    cases = [["check", XOR, "--set", 'training.learning_rate="10**10**10 ms"'],
             ["check", str(tmp_path / "deep.toml")],
             ["check", os.fsdecode(bytes(tmp_path) + b"/\xff.toml")],
             ["run", XOR, "--seed", "1e400"]]
    for argv in cases:
        proc = subprocess.run([sys.executable, "-m", "dendrite_sim.cli", *argv], capture_output=True, timeout=60,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err


def test_runaway_but_finite_weights_count_as_divergence():
    """Node perturbation once grew weights to ~1e100 while staying finite; that is divergence."""
    import numpy as np

    from dendrite_sim.engine import divergence

    class Net:
        sizes = [3, 2, 1]
        W = [np.ones((2, 3)), np.array([[1e100, 0.5]])]
        b = [np.zeros(2), np.zeros(1)]

    with pytest.raises(DivergenceError) as e:
        divergence.check_network(Net(), "during epoch 2")
    assert e.value.key == "layers[1].W"
    assert "1 of 2 values (2→1) are NaN, infinite or beyond ±1e+12" in e.value.expected
    assert "largest finite |value| 1e+100" in e.value.expected
    Net.W[1][0, 0] = 9.9e11                       # large but below the bound: not flagged
    divergence.check_network(Net(), "during epoch 2")
    Net.W[0][0, 0] = np.nan
    with pytest.raises(DivergenceError) as e:
        divergence.check_network(Net(), "during epoch 2")
    assert e.value.key == "layers[0].W" and e.value.expected.startswith("diverged during epoch 2: 1 of 6 values (3→2) are NaN or infinite")
