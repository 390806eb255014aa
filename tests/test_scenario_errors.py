"""Bad scenarios: every one exits with code 2 and one line ``error: <key>: <expected>``."""

import copy
from pathlib import Path

import pytest
import tomli_w
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dendrite_sim.cli import main
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.io.scenario import load

ROOT = Path(__file__).resolve().parents[1]
BASE = tomllib.loads((ROOT / "scenarios" / "rule_bias_variance.toml").read_text())
PLUGIN = str(ROOT / "tests" / "data" / "echo_experiment.py")
ECHO = {"scenario": {"experiment": "echo_quantities", "plugins": [PLUGIN]}, "cell": {}}


def edited(base, path, value, delete=False):
    d = copy.deepcopy(base)
    node = d
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


# (scenario dict, key path the error must name, a phrase the message must contain)
BAD = [
    (edited(BASE, ["scenario"], None, delete=True), "scenario", "missing table"),
    (edited(BASE, ["scenario", "experiment"], "rule_bias_varianse"), "scenario.experiment", "did you mean 'rule_bias_variance'"),
    (edited(BASE, ["scenario", "experiment"], None, delete=True), "scenario.experiment", "missing"),
    (edited(BASE, ["diagnostic"], {"seeds": 1}), "diagnostic", "did you mean 'diagnostics'"),
    (edited(BASE, ["task", "n_inn"], 30), "task.n_inn", "did you mean 'n_in'"),
    (edited(BASE, ["task", "n_in"], "thirty"), "task.n_in", "expected an integer"),
    (edited(BASE, ["task", "n_in"], 0), "task.n_in", ">= 1"),
    (edited(BASE, ["task", "name"], "teacher_studnet_linear"), "task.name", "did you mean"),
    (edited(BASE, ["task"], None, delete=True), "task", "missing table"),
    (edited(BASE, ["training", "learning_rate"], -0.1), "training.learning_rate", "> 0"),
    (edited(BASE, ["training", "steps"], 1.5), "training.steps", "expected an integer"),
    (edited(BASE, ["rules"], "backprop"), "rules", "non-empty list"),
    (edited(BASE, ["rules"], []), "rules", "non-empty list"),
    (edited(BASE, ["rules", 0, "name"], "backprob"), "rules[0].name", "did you mean 'backprop'"),
    (edited(BASE, ["rules", 3, "sigma"], 0), "rules[3].sigma", "> 0"),
    (edited(BASE, ["rules", 0, "lr"], 1.0), "rules[0].lr", "unknown key"),
    (edited(BASE, ["rules", 1], {"name": "backprop"}), "rules", "each rule once"),
    (edited(BASE, ["architecture", "nonlinearity"], "tanhh"), "architecture.nonlinearity", "did you mean 'tanh'"),
    (edited(BASE, ["architecture", "hidden"], [0]), "architecture.hidden[0]", ">= 1"),
    (edited(BASE, ["architecture", "feedback"], 3), "architecture.feedback", "one of"),
    (edited(BASE, ["objective", "name"], None, delete=True), "objective.name", "missing"),
    (edited(BASE, ["objective"], 5), "objective", "expected a objective name or a table"),
    (edited(BASE, ["scenario", "seed"], -1), "scenario.seed", ">= 0"),
    (edited(BASE, ["scenario", "seed"], 1.5), "scenario.seed", "expected an integer"),
    (edited(BASE, ["scenario", "plugins"], ["no_such_file.py"]), "scenario.plugins[0]", "does not exist"),
    (edited(BASE, ["diagnostics", "widths"], [20, "a"]), "diagnostics.widths[1]", "expected an integer"),
    (edited(BASE, ["training", "learning_rate_scale"], {"hebb": 2.0}), "training.learning_rate_scale.hebb", "expected one of the rules"),
    (edited(BASE, ["training", "learning_rate_scale"], {"backprop": -1}), "training.learning_rate_scale.backprop", "> 0"),
    (edited(ECHO, ["cell", "tau_m"], "20 mV"), "cell.tau_m", "expected a time"),
    (edited(ECHO, ["cell", "tau_m"], 20), "cell.tau_m", "with units"),
    (edited(ECHO, ["cell", "tau_m"], "-3 ms"), "cell.tau_m", "> 0"),
    (edited(ECHO, ["cell", "bias"], "200 pQ"), "cell.bias", "could not parse"),
    (edited(ECHO, ["cell", "v_th"], "10 mV"), "cell.v_th", "<= 0"),
    (edited(ECHO, ["cell", "weights"], ["1 nS", "2 ms"]), "cell.weights[1]", "expected a conductance"),
    (edited(ECHO, ["cell", "rate"], "nan Hz"), "cell.rate", "finite"),
]


@pytest.mark.parametrize("data,key,phrase", BAD, ids=[b[1] for b in BAD])
def test_bad_scenario_exits_2_with_one_line(tmp_path, capsys, data, key, phrase):
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(data))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {key}: "), err
    assert phrase in err, err


def test_bad_files_and_arguments(tmp_path, capsys):
    (tmp_path / "broken.toml").write_text("[scenario\nexperiment = 1\n")
    cases = [
        (["check", str(tmp_path / "missing.toml")], "missing.toml", "does not exist"),
        (["check", str(tmp_path / "broken.toml")], "broken.toml", "valid TOML"),
        (["check", str(ROOT / "scenarios/rule_bias_variance.toml"), "--set", "training.steps"], "--set", "key=value"),
        (["check", str(ROOT / "scenarios/rule_bias_variance.toml"), "--set", "task.n_in.x=3"], "task.n_in", "not a table"),
        (["run"], "arguments", "required"),
        (["frobnicate"], "arguments", "invalid choice"),
    ]
    for argv, key, phrase in cases:
        code = None
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        assert code == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and key in err and phrase in err, err


def test_units_resolve_to_internal_units(tmp_path):
    data = edited(ECHO, ["cell"], {"tau_m": "0.02 s", "bias": "0.2 nA", "v_th": "-0.05 V",
                                   "rate": "0.01 kHz", "weights": ["1 nS", "0.002 uS"]})
    cell = load(data=data).cfg["cell"]
    assert cell["tau_m"] == pytest.approx(20.0)
    assert cell["bias"] == pytest.approx(200.0)
    assert cell["v_th"] == pytest.approx(-50.0)
    assert cell["rate"] == pytest.approx(10.0)
    assert cell["weights"] == pytest.approx([1.0, 2.0])


_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                  st.text(max_size=12), st.lists(st.integers(-5, 50), max_size=3),
                  st.sampled_from(["5 ms", "-3 mV", "1 kg", "backprop", "tanh", "mse", "nan Hz"]),
                  st.dictionaries(st.text(max_size=6), st.integers(), max_size=2))


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from([BASE, ECHO]), data=st.data())
def test_fuzzed_scenarios_load_or_fail_with_one_scenario_error(base, data):
    """Mutate valid scenarios at random: loading succeeds or raises ScenarioError, nothing else."""
    d = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(d))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        node = d
        for k in path[:-1]:
            node = node[k]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[path[-1]] = data.draw(_leaf)
        elif action == "delete":
            del node[path[-1]]
        elif isinstance(node, dict):
            node[data.draw(st.text(min_size=1, max_size=8))] = data.draw(_leaf)
    try:
        load(data=d)
    except ScenarioError as exc:
        assert "\n" not in exc.line() and exc.line().startswith("error: ")
