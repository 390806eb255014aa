"""The ``simulate`` experiment: a network from TOML, its outputs and metrics, both backends,
and one-line errors for bad input."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim import cli
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.io.scenario import load

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "scenario": {"experiment": "simulate", "seed": 3},
    "simulation": {"dt": "0.1 ms", "duration": "200 ms", "transient": "20 ms"},
    "network": {
        "populations": {
            "pyr": {"model": "naud_sprekeler", "n": 40, "params": {"C_s": "370 pF", "tau_s": 16.0}},
            "inh": {"model": "lif", "n": 10},
            "stim": {"type": "spikes", "n": 2, "times": ["10 ms", "12 ms"], "indices": [0, 1]},
            "noise": {"type": "poisson", "n": 20, "rate": "20 Hz"},
        },
        "projections": {
            "rec": {"pre": "pyr", "post": "pyr", "channel": "dend_exc", "connectivity": "fixed_probability",
                    "p": 0.1, "autapses": False, "weight": "30 pA", "stp": "payeur_stf"},
            "e2i": {"pre": "pyr", "post": "inh", "channel": "exc", "connectivity": "fixed_indegree", "k": 5,
                    "weight": "50 pA", "delay": "0.5 ms", "stp": {"preset": "payeur_std", "tau_D": "50 ms"}},
            "i2e": {"pre": "inh", "post": "pyr", "channel": "soma_inh", "weight": "-40 pA"},
            "stim": {"pre": "stim", "post": "pyr", "channel": "soma_exc", "connectivity": "pairs",
                     "pre_idx": [0, 1], "post_idx": [0, 1], "weight": "2000 pA"},
            "noise": {"pre": "noise", "post": "inh", "channel": "exc", "connectivity": "fixed_probability",
                      "p": 0.5, "weight": "40 pA"},
        },
        "inputs": {
            "bias": {"type": "current", "target": "pyr", "compartment": "soma", "bias": "300 pA"},
            "dend": {"type": "current", "target": "pyr", "compartment": "dend", "values": [0.0, 300.0, 0.0],
                     "values_dt": "50 ms"},
            "drive": {"type": "poisson", "target": "pyr", "channel": "soma_exc", "n_sources": 100,
                      "rate": "5 Hz", "weight": "100 pA"},
        },
    },
    "monitors": {"state": {"pyr": ["v_soma", "v_dend", "burst_prob"]}, "state_neurons": [0, 1],
                 "every": "1 ms"},
}


def _run(data, tmp_path, name="run"):
    from dendrite_sim.io.results import RunContext

    sc = load(data=copy.deepcopy(data))
    ctx = RunContext(tmp_path / name, sc.seed, progress=False)
    return sc.experiment.run(sc.cfg, ctx), tmp_path / name


def test_small_network_runs_and_reports(tmp_path):
    m, out = _run(SMALL, tmp_path)
    pyr = m["populations"]["pyr"]
    assert set(pyr) >= {"rate_hz", "cv_isi", "burst_fraction", "event_rate_hz", "burst_rate_hz", "n_spikes"}
    assert pyr["rate_hz"] > 1.0 and 0.0 <= pyr["burst_fraction"] <= 1.0
    assert pyr["rate_hz"] == pytest.approx(pyr["n_spikes"] / 40 / 0.18)
    assert m["populations"]["stim"]["n_spikes"] == 0          # spikes before the transient
    assert m["n_neurons"] == 72 and m["n_synapses"] > 0
    assert m["timing"]["backend"] == "numba" and m["timing"]["s_per_bio_s"] > 0
    for f in ("raster.png", "traces.png", "spikes.npz", "traces.npz"):
        assert (out / f).stat().st_size > 0
    with np.load(out / "traces.npz") as z:
        assert z["pyr_v_dend"].shape == (200, 2)
    with np.load(out / "spikes.npz") as z:
        assert z["pyr_t"].size == int(round(pyr["rate_hz"] * 40 * 0.18)) + int(np.sum(z["pyr_t"] < 20))


def _keys(d, prefix=""):
    for k, v in d.items():
        yield f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _keys(v, f"{prefix}{k}.")


def test_timings_only_under_timing(tmp_path):
    data = copy.deepcopy(SMALL)
    data["simulation"]["duration"] = "30 ms"
    data["simulation"]["transient"] = "0 ms"
    m, _ = _run(data, tmp_path)
    timed = [k for k in _keys(m) if k.endswith("_s") or "time" in k.split(".")[-1]]
    assert timed and all(k.startswith("timing.") for k in timed), timed
    assert set(m["timing"]) == {"backend", "build_s", "first_step_s", "run_s", "s_per_bio_s"}


def _plastic_run(tmp_path, backend):
    data = copy.deepcopy(SMALL)
    data["simulation"].update(duration="100 ms", transient="0 ms", backend=backend)
    data["network"]["projections"]["learn"] = {
        "pre": "noise", "post": "pyr", "channel": "dend_exc", "connectivity": "fixed_probability", "p": 0.5,
        "weight": "0.5 pA", "plasticity": {"rule": "stdp", "preset": "visual_all_to_all", "A2_plus": 0.05}}
    data["monitors"].update(weights={"learn": "10 ms", "rec": "50 ms"}, weight_synapses=5)
    return _run(data, tmp_path, backend)


def test_plasticity_changes_and_saves_the_weights_on_both_backends(tmp_path):
    """A projection with plasticity = {rule = "stdp", ...} learns, the same on both backends; the
    final weights are saved."""
    m, out = _plastic_run(tmp_path, "numba")
    w = m["projections"]["learn"]
    assert 0 < w["n_synapses"] < m["n_synapses"]
    assert w["w_mean_initial"] == pytest.approx(0.5) and w["w_mean"] != pytest.approx(0.5)
    assert 0.0 <= w["w_min"] <= w["w_max"] <= 1.0
    with np.load(out / "weights.npz") as z:
        assert z["learn_w"].shape == z["learn_w0"].shape == z["learn_pre"].shape == z["learn_post"].shape
        assert np.mean(z["learn_w"]) == pytest.approx(w["w_mean"])
        assert np.all(z["learn_w0"] == 0.5)
        assert z["learn_trace_t"].tolist() == [10.0 * k for k in range(11)]
        assert z["learn_trace_w"].shape == (11, 5) and np.all(z["learn_trace_w"][0] == 0.5)
        assert np.array_equal(z["learn_trace_w"][-1], z["learn_w"][z["learn_trace_synapses"]])
        assert z["rec_trace_w"].shape == (3, 5) and "rec_w" not in z
    m2, _ = _plastic_run(tmp_path, "numpy")
    assert m2["projections"] == m["projections"] and m2["populations"] == m["populations"]


def test_numpy_backend_same_metrics(tmp_path):
    data = copy.deepcopy(SMALL)
    data["simulation"]["duration"] = "60 ms"
    a, _ = _run(data, tmp_path, "numba")
    data["simulation"]["backend"] = "numpy"
    b, _ = _run(data, tmp_path, "numpy")
    assert a["populations"] == b["populations"]


def test_cli_run_and_pyr_stp_scenario_checks(tmp_path, capsys):
    assert cli.main(["check", str(ROOT / "scenarios" / "pyr_stp_4000.toml")]) == 0
    path = tmp_path / "s.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(SMALL))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "o"), "--set", "simulation.duration='50 ms'",
                     "--set", "simulation.transient='0 ms'"]) == 0
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["experiment"] == "simulate" and "pyr" in metrics["populations"]


BAD = [
    (("network", "populations", "pyr", "model"), "naud", "network.populations.pyr.model"),
    (("network", "populations", "pyr", "n"), 0, "network.populations.pyr.n"),
    (("network", "populations", "pyr", "params", "C_z"), 1.0, "network.populations.pyr.params.C_z"),
    (("network", "populations", "pyr", "sizee"), 3, "network.populations.pyr.sizee"),
    (("network", "populations", "noise", "rate"), "20", "network.populations.noise.rate"),
    (("network", "projections", "rec", "pre"), "pyramid", "network.projections.rec.pre"),
    (("network", "projections", "rec", "channel"), "apical", "network.projections.rec.channel"),
    (("network", "projections", "rec", "weight"), "30", "network.projections.rec.weight"),
    (("network", "projections", "rec", "weight"), "30 mV", "network.projections.rec.weight"),
    (("network", "projections", "rec", "delay"), "0.25 ms", "network.projections.rec.delay"),
    (("network", "projections", "rec", "p"), 1.5, "network.projections.rec.p"),
    (("network", "projections", "rec", "stp"), "fast", "network.projections.rec.stp.preset"),
    (("network", "projections", "stim", "post"), "noise", "network.projections.stim.post"),
    (("network", "projections", "e2i", "autapses"), False, "network.projections.e2i.autapses"),
    (("network", "inputs", "drive", "target"), "noise", "network.inputs.drive.target"),
    (("network", "inputs", "drive", "type"), "gaussian", "network.inputs.drive.type"),
    (("network", "inputs", "bias", "compartment"), "apical", "network.inputs.bias.compartment"),
    (("monitors", "state", "pyr"), ["v_apical"], "monitors.state.pyr"),
    (("monitors", "every"), "0.25 ms", "monitors.every"),
    (("simulation", "backend"), "cuda", "simulation.backend"),
    (("simulation", "duration"), "1 V", "simulation.duration"),
]


@pytest.mark.parametrize("path,value,key", BAD, ids=[b[2] + "=" + str(b[1]) for b in BAD])
def test_bad_input_names_the_key(path, value, key):
    data = copy.deepcopy(SMALL)
    node = data
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ScenarioError) as e:
        load(data=data)
    assert e.value.key == key


def test_bad_input_exit_code_and_line(tmp_path, capsys):
    data = copy.deepcopy(SMALL)
    data["network"]["projections"]["rec"]["channel"] = "apical"
    import tomli_w

    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(data))
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: network.projections.rec.channel: expected a channel of naud_sprekeler")


@pytest.mark.slow
def test_pyr_stp_4000_rates(tmp_path):
    """PYR-STP-4000 lands near the Brian2 reference (6.7–6.9 Hz, burst fraction 0.67–0.68)."""
    import tomllib

    data = tomllib.loads((ROOT / "scenarios" / "pyr_stp_4000.toml").read_text())
    m, _ = _run(data, tmp_path)
    pyr = m["populations"]["pyr"]
    assert 6.3 < pyr["rate_hz"] < 7.4
    assert 0.62 < pyr["burst_fraction"] < 0.74
