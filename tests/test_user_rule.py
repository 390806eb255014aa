"""The README's user-defined rule example works as documented (and stays under 30 lines)."""

import re
from pathlib import Path

import tomli_w

from dendrite_sim.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    block = text.split("<!-- user-rule-example")[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def test_readme_rule_example_is_short_and_trains_xor(tmp_path, capsys):
    code = readme_example()
    assert len(code.strip().splitlines()) < 30
    (tmp_path / "my_rule.py").write_text(code)
    scenario = {
        "scenario": {"experiment": "train", "seed": 3, "plugins": ["my_rule.py"]},
        "task": {"name": "xor"},
        "architecture": {"name": "layered", "hidden": [8], "nonlinearity": "tanh", "feedback": "random"},
        "objective": {"name": "cross_entropy"},
        "rule": {"name": "sign_symmetry"},
        "training": {"epochs": 400, "batch_size": 4, "learning_rate": 0.5},
    }
    (tmp_path / "s.toml").write_text(tomli_w.dumps(scenario))
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    import json

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["final_train_accuracy"] == 1.0
    assert main(["list", "rule"]) == 0
    assert "sign_symmetry" in capsys.readouterr().out
