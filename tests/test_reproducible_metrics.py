"""``metrics.json`` holds results only: the same scenario and seed give a byte-identical file;
timings (wall clock, compile times, s per biological second) go to ``timings.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from dendrite_sim.cli import main
from dendrite_sim.io import results

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

# a network small enough to run in well under a second once compiled
TINY_SIMULATE = {
    "scenario": {"experiment": "simulate", "seed": 5},
    "simulation": {"dt": "0.1 ms", "duration": "100 ms"},
    "network": {
        "populations": {"pyr": {"model": "naud_sprekeler", "n": 12}, "inh": {"model": "lif", "n": 4}},
        "projections": {
            "e2i": {"pre": "pyr", "post": "inh", "channel": "exc", "weight": "60 pA"},
            "i2e": {"pre": "inh", "post": "pyr", "channel": "soma_inh", "weight": "-30 pA"},
        },
        "inputs": {
            "bias": {"type": "current", "target": "pyr", "compartment": "soma", "bias": "350 pA"},
            "drive": {"type": "poisson", "target": "inh", "channel": "exc", "n_sources": 50,
                      "rate": "10 Hz", "weight": "40 pA"},
        },
    },
}

CASES = {
    "train": (SCENARIOS / "xor.toml", ["--set", "training.epochs=20"]),
    "burst_multiplexing": (SCENARIOS / "burst_multiplexing.toml",
                           ["--set", "network.n_neurons=100", "--set", "network.duration=1500 ms",
                            "--set", "figure.window=1 s"]),
    "openscope_session": (SCENARIOS / "openscope_like_session.toml",
                          ["--set", "network.n_pyr=6", "--set", 'stimulus.session_duration="6 s"',
                           "--set", "stimulus.n_sessions=2", "--set", 'imaging.dff_long_window="6 s"',
                           "--set", 'analysis.example_window="3 s"', "--set", 'analysis.heatmap_window="6 s"']),
    "simulate": (None, []),
}


def _scenario(name, tmp_path) -> str:
    path, _ = CASES[name]
    if path is None:
        path = tmp_path / "tiny_simulate.toml"
        path.write_text(tomli_w.dumps(TINY_SIMULATE))
    return str(path)


@pytest.mark.parametrize("name", list(CASES))
def test_same_seed_gives_byte_identical_metrics_json(name, tmp_path):
    scenario, overrides = _scenario(name, tmp_path), CASES[name][1]
    texts = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["run", scenario, "--out", str(out), *overrides]) == 0
        texts.append((out / "metrics.json").read_bytes())
        metrics = json.loads(texts[-1])
        assert metrics["experiment"] == name
        assert not set(results.TIMING_KEYS) & set(metrics), "timings belong in timings.json"
        timings = json.loads((out / "timings.json").read_text())
        assert timings["experiment"] == name and timings["wall_time_s"] > 0
        assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert texts[0] == texts[1]
    if name == "openscope_session":
        assert timings["simulate_s"] > 0 and timings["export_s"] > 0
        assert timings["sessions"]["day2"]["simulation"]["run_s"] > 0
    if name == "simulate":
        assert timings["run_s"] > 0 and timings["s_per_bio_s"] > 0


# --------------------------------------------------------------------------- the mechanism
def test_run_context_timings_and_the_timing_key_go_to_timings_json(tmp_path):
    ctx = results.RunContext(tmp_path, seed=4, progress=False)
    with ctx.timer("phase_s"):
        pass
    with ctx.timer("phase_s"):                       # accumulates
        pass
    ctx.record_timing("days.day1.run_s", 1.5)
    ctx.record_timing("days.day2.run_s", 2.5)
    with pytest.raises(ValueError):
        ctx.record_timing("days", 1.0)               # a table is not a number
    metrics = {"experiment": "x", "seed": 4, "value": 0.25, "wall_time_s": 3.0,
               "timing": {"build_s": 0.5, "backend": "numba"}}
    results.write_metrics(tmp_path, metrics)        # finds the live context of the folder
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"experiment": "x", "seed": 4, "value": 0.25}
    t = json.loads((tmp_path / "timings.json").read_text())
    assert t["experiment"] == "x" and t["seed"] == 4 and t["wall_time_s"] == 3.0
    assert t["build_s"] == 0.5 and t["backend"] == "numba" and t["phase_s"] >= 0.0
    assert t["days"] == {"day1": {"run_s": 1.5}, "day2": {"run_s": 2.5}}
    assert metrics["timing"] == {"build_s": 0.5, "backend": "numba"}    # the caller's dict is untouched


def test_timer_records_a_block_that_raises(tmp_path):
    ctx = results.RunContext(tmp_path, seed=1, progress=False)
    with pytest.raises(RuntimeError), ctx.timer("a.b_s"):
        raise RuntimeError("boom")
    assert ctx.timings["a"]["b_s"] >= 0.0
    ctx.write_metrics({"k": 1})
    assert json.loads((tmp_path / "timings.json").read_text()) == {"a": {"b_s": ctx.timings["a"]["b_s"]}}
    assert (tmp_path / "metrics.json").read_text() == '{\n  "k": 1\n}\n'
