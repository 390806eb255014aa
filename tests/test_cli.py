"""The command line and the run-directory contract."""

import json
from pathlib import Path

import pytest
import tomllib

from dendrite_sim.cli import main
from dendrite_sim.core import registry
from dendrite_sim.io import atomic
from dendrite_sim.io.reference import summary
from dendrite_sim.io.scenario import load

ROOT = Path(__file__).resolve().parents[1]
RBV = str(ROOT / "scenarios" / "rule_bias_variance.toml")
SMALL = ["--set", "diagnostics.seeds=1", "--set", "diagnostics.draws=20", "--set", "diagnostics.n_batches=10",
         "--set", "diagnostics.widths=[5, 10]", "--set", "training.steps=30", "--set", "training.checkpoints=3",
         "--set", "diagnostics.pool_size=64"]


@pytest.fixture(scope="module")
def rbv_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rbv") / "run"
    assert main(["run", RBV, "--out", str(out), *SMALL]) == 0
    return out


def test_list_describes_every_part(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("task", "architecture", "objective", "rule", "experiment"):
        assert f"{kind}:" in out
        for name, cls in registry.available(kind).items():
            assert name in out
            assert registry.describe(cls), f"{kind} {name} has no one-line description"


def test_list_shows_each_rules_substrates_in_order(capsys):
    assert main(["list", "rule"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "rule:"
    rules = registry.available("rule")
    assert [line.split()[0] for line in lines[1:]] == sorted(rules)
    for line, (name, cls) in zip(lines[1:], rules.items()):
        subs = tuple(cls.substrates)
        assert subs and set(subs) <= {"rate", "spiking"}, (name, subs)
        assert f" [{', '.join(subs)}] " in line, line
        assert line.rstrip().endswith(summary(cls))      # the docstring's first paragraph, whole
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    heads = [line[:-1] for line in out.splitlines() if not line.startswith(" ")]
    assert heads == [k for k in registry.KINDS if registry.available(k)] + ["preset"]  # presets last


def test_check_validates_every_shipped_scenario(capsys):
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        assert main(["check", str(path)]) == 0, path
        assert capsys.readouterr().out.startswith("ok: ")


def test_run_writes_the_output_contract(rbv_run, capsys):
    files = {p.name for p in rbv_run.iterdir()}
    assert {"config.toml", "provenance.json", "metrics.json", "rule_map.png"} <= files
    assert not [f for f in files if f.endswith(".tmp")]
    metrics = json.loads((rbv_run / "metrics.json").read_text())
    assert set(metrics["rules"]) == {"backprop", "feedback_alignment", "direct_feedback_alignment",
                                     "segregated_dendrites", "urbanczik_senn", "dendritic_microcircuit",
                                     "burstprop", "burstccn", "equilibrium_propagation", "contrastive_hebbian",
                                     "predictive_coding", "agrel", "rdd",
                                     "node_perturbation", "weight_perturbation"}
    for r in metrics["rules"].values():
        for key in ("bias", "variance", "cosine", "angle_deg"):
            assert isinstance(r[key], float)
    assert metrics["rules"]["backprop"]["bias"] < 1e-6
    prov = json.loads((rbv_run / "provenance.json").read_text())
    assert prov["seed"] == 1 and prov["dendrite_sim_version"]
    assert prov["dependencies"]["numpy"]
    # the resolved config runs again as it is, and holds every default
    cfg = tomllib.loads((rbv_run / "config.toml").read_text())
    assert cfg["diagnostics"]["seeds"] == 1 and cfg["architecture"]["init_scale"] == 1.0
    assert load(rbv_run / "config.toml").resolved == cfg


def test_same_seed_gives_bit_identical_metrics(rbv_run, tmp_path):
    assert main(["run", RBV, "--out", str(tmp_path / "again"), *SMALL]) == 0
    a = json.loads((rbv_run / "metrics.json").read_text())
    b = json.loads((tmp_path / "again" / "metrics.json").read_text())
    a.pop("wall_time_s", None), b.pop("wall_time_s", None)  # timings may live in timings.json
    assert a == b
    assert main(["run", RBV, "--out", str(tmp_path / "other"), "--seed", "2", *SMALL]) == 0
    c = json.loads((tmp_path / "other" / "metrics.json").read_text())
    assert c["rules"]["node_perturbation"]["variance"] != a["rules"]["node_perturbation"]["variance"]


def test_non_empty_out_is_refused_and_progress_is_quiet(rbv_run, capsys):
    capsys.readouterr()
    assert main(["run", RBV, "--out", str(rbv_run), *SMALL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out: ") and err.count("\n") == 1


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            Path(tmp).write_text('{"a": 2, "trunc')
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
