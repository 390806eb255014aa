"""Every experiment's figures on a small run (issue 14 point 7): each figure has a title (its
own or a panel's, e.g. the top one of a stack); every panel that shows data has an x and a y
label, its own or that of a panel it shares the axis with."""

import json
import tempfile
from pathlib import Path

import pytest

from dendrite_sim.cli import main
from dendrite_sim.io import results

ROOT = Path(__file__).resolve().parents[1] / "scenarios"

SMALL = {
    "xor.toml": ["training.epochs=5"],
    "rule_bias_variance.toml": ["diagnostics.seeds=1", "diagnostics.draws=5", "diagnostics.n_batches=4",
                                "diagnostics.widths=[5]", "training.steps=10", "training.checkpoints=2",
                                "diagnostics.pool_size=16"],
    "urbanczik_senn_fig1.toml": ["protocol.repetitions=3", "protocol.seeds=1", "analysis.final_repetitions=1",
                                 "protocol.n_inputs=20"],
    "microcircuit_self_predicting.toml": ["training.steps=50", "training.record_every=10"],
    "digits_segregated_spiking.toml": ["training.epochs=1", "spiking.n_test=10", "task.test_fraction=0.95",
                                       "spiking.backend=\"numpy\"", "architecture.hidden=[10]",
                                       "rule.phase_duration=20.0", "rule.settle=5.0", "spiking.test_duration=\"20 ms\"",
                                       "spiking.test_settle=\"5 ms\""],
    "burst_multiplexing.toml": [],
    "pyr_stp_4000.toml": ['simulation.duration="100 ms"', 'simulation.transient="10 ms"',
                          "network.populations.pyr.n=200"],
    "gratings_reward.toml": ["training.epochs=2", "task.n_train=100", "task.n_test=50"],
}


def _problems(fig, name):
    out = []
    data_axes = [ax for ax in fig.axes if ax.get_visible() and (ax.lines or ax.collections or ax.patches
                                                                  or ax.images)]
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    if data_axes and not (suptitle or any(ax.get_title() for ax in fig.axes)):
        out.append(f"{name}: no title (neither the figure's nor a panel's)")
    for ax in data_axes:
        where = f"{name}: panel {ax.get_title()!r}"
        for axis, getter in (("x", "get_xlabel"), ("y", "get_ylabel")):
            shared = getattr(ax, f"get_shared_{axis}_axes")().get_siblings(ax)
            if not any(getattr(a, getter)() for a in shared if a.get_visible()):
                out.append(f"{where}: no {axis} label")
    return out


@pytest.mark.parametrize("scenario", sorted(SMALL))
def test_every_figure_has_titles_and_axis_labels(scenario, monkeypatch):
    seen = {}
    orig = results.RunContext.save_figure

    def probe(self, fig, name):
        seen[name] = _problems(fig, name)
        return orig(self, fig, name)

    monkeypatch.setattr(results.RunContext, "save_figure", probe)
    args = ["run", str(ROOT / scenario), "--out", tempfile.mkdtemp()]
    for s in SMALL[scenario]:
        args += ["--set", s]
    assert main(args) == 0
    assert seen, "the experiment drew no figure"
    problems = [p for ps in seen.values() for p in ps]
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
