"""One rule contract, two faces: substrates derive from the faces a rule defines, and a scenario
asking a rule for a face it lacks is refused at check time with one line."""

from __future__ import annotations

import numpy as np

from dendrite_sim.cli import main
from dendrite_sim.core import registry
from dendrite_sim.core.interfaces import LearningRule, LocalFactors


def test_substrates_derive_from_faces():
    rules = registry.available("rule")
    assert rules["backprop"].substrates == ("rate",)
    assert rules["stdp"].substrates == ("spiking",)
    assert rules["covariance"].substrates == ("spiking",)

    class Both(LearningRule):
        def update(self, net, x, y, objective, rng):
            return []

        def local_factors(self, state):
            return LocalFactors(np.zeros(1), np.zeros(1))

    class Neither(LearningRule):
        pass

    assert Both.substrates == ("rate", "spiking")
    assert Neither.substrates == ()


SCENARIO = """
{rule}
[scenario]
experiment = "{experiment}"
[task]
name = "xor"
[architecture]
name = "layered"
hidden = [4]
[objective]
name = "cross_entropy"
"""


def test_train_refuses_a_rule_without_rate_face(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(experiment="train", rule='[rule]\nname = "stdp"'))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: rule.name: rule 'stdp' has no rate face")
    assert "backprop" in err[0]


def test_bias_variance_refuses_spiking_only_rules(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(experiment="rule_bias_variance", rule='rules = ["backprop", "covariance"]'))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: rules[1].name: rule 'covariance' has no rate face")
