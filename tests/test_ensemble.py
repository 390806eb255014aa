"""Batched ensembles (issue 11): B instances equal B single runs bit for bit; the scenario form
writes one result per instance; bad ensemble tables are refused naming the key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine import spec as netspec
from dendrite_sim.engine.ensemble import Ensemble, parse_ensemble

# a small recurrent network with Poisson drive, STP and random initial states (seed-dependent)
NETWORK = {
    "populations": {"pyr": {"model": "naud_sprekeler", "n": 120},
                    "inh": {"model": "lif", "n": 30, "bursts": False}},
    "projections": {"rec": {"pre": "pyr", "post": "pyr", "channel": "soma_exc", "connectivity": "fixed_probability",
                            "p": 0.1, "autapses": False, "weight": "20 pA", "stp": "payeur_std"},
                    "ei": {"pre": "pyr", "post": "inh", "channel": "exc", "connectivity": "fixed_indegree",
                           "k": 10, "weight": "30 pA"},
                    "ie": {"pre": "inh", "post": "pyr", "channel": "soma_inh", "connectivity": "fixed_probability",
                           "p": 0.2, "weight": "-40 pA", "delay": "0.5 ms"}},
    "inputs": {"bias": {"type": "current", "target": "pyr", "bias": "300 pA"},
               "drive": {"type": "poisson", "target": "pyr", "channel": "soma_exc", "n_sources": 100,
                         "rate": "5 Hz", "weight": "100 pA"},
               "drive_i": {"type": "poisson", "target": "inh", "channel": "exc", "n_sources": 100,
                           "rate": "10 Hz", "weight": "40 pA"}},
}
SEEDS = [1, 2, 3, 4, 5, 6, 7, 8]
WEIGHTS = ["10 pA", "15 pA", "20 pA", "25 pA", "30 pA", "35 pA", "40 pA", "45 pA"]
DURATION = 50.0


def single(seed, weight=None):
    table = json.loads(json.dumps(NETWORK))
    if weight is not None:
        table["projections"]["rec"]["weight"] = weight
    net = netspec.build(table, dt=0.1, seed=seed, threads=1)
    mons = {p: net.spike_monitor(p) for p in ("pyr", "inh")}
    net.run(DURATION)
    return net, mons


def result(net, mons):
    return {**{f"{p}_{k}": getattr(m, k) for p, m in mons.items() for k in ("t", "i")},
            "v": net["pyr"].state["v_soma"], "u": net.projections[0].stp_u}


def assert_same(a, b):
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_eight_instances_equal_eight_single_runs():
    ens = Ensemble(NETWORK, seeds=SEEDS, workers=2)
    mons = ens.each(lambda net: {p: net.spike_monitor(p) for p in ("pyr", "inh")})
    ens.run(f"{DURATION} ms")
    assert len(ens) == 8 and len(ens.kernels()) == 1          # one compiled loop shared by all
    counts = []
    for k, seed in enumerate(SEEDS):
        alone = result(*single(seed))
        assert_same(alone, result(ens.instances[k], mons[k]))
        counts.append(len(alone["pyr_i"]))
    assert min(counts) > 50 and len(set(counts)) > 1            # active, and the seeds differ


def test_varied_weights_equal_single_runs_with_that_weight():
    ens = Ensemble(NETWORK, seeds=[3, 3, 3], vary={"projections.rec.weight": WEIGHTS[:3]}, workers=3)
    mons = ens.each(lambda net: {p: net.spike_monitor(p) for p in ("pyr", "inh")})
    ens.run(DURATION)
    assert ens.values[1] == {"projections.rec.weight": "15 pA"}
    assert np.all(ens.instances[2].projections[0].conn.weights == 20.0)
    for k in range(3):
        assert_same(result(*single(3, WEIGHTS[k])), result(ens.instances[k], mons[k]))


def test_builder_form():
    def build(seed, weight=20.0):
        table = json.loads(json.dumps(NETWORK))
        table["projections"]["rec"]["weight"] = f"{weight} pA"
        net = netspec.build(table, dt=0.1, seed=seed)
        for p in ("pyr", "inh"):                      # the monitors of single(): the same compiled loop
            net.spike_monitor(p)
        return net

    ens = Ensemble(build, seeds=[1, 2], vary={"weight": [20.0, 20.0]})
    ens.run(DURATION)
    assert np.array_equal(result(*single(2))["pyr_i"], ens.instances[1].spike_monitors[0].i)


@pytest.mark.parametrize("raw, key, what", [
    ({"seeds": []}, "network.ensemble.seeds", "non-empty list"),
    ({"seeds": [1, "2"]}, r"network.ensemble.seeds\[1\]", "integer seed"),
    ({"seeds": [1, 2], "vary": {"projections.rec.weight": ["1 pA"]}},
     r'network.ensemble.vary."projections.rec.weight"', "expected 2 entries"),
    ({"vary": {"projections.nope.weight": ["1 pA"]}}, r'network.ensemble.vary."projections.nope.weight"', "rec, ei, ie"),
    ({"vary": {"populations.pyr.model": ["lif"]}}, r'network.ensemble.vary."populations.pyr.model"', "structure"),
    ({"vary": {"projections.rec.weight": ["1 pA", "5 ms"]}}, r'network.ensemble.vary."projections.rec.weight"\[1\]', "current"),
    ({"seed": [1]}, "network.ensemble.seed", "unknown key"),
    ({"seeds": [1], "workers": 0}, "network.ensemble.workers", "positive"),
    ({"workers": 2}, "network.ensemble", "seeds"),
])
def test_bad_ensembles_name_the_key(raw, key, what):
    with pytest.raises(ScenarioError, match=rf"^{key}.*{what}"):
        netspec.parse({**NETWORK, "ensemble": raw}, dt=0.1)


def test_no_ensemble():
    assert parse_ensemble(None, NETWORK) is None and parse_ensemble({}, NETWORK) is None
    assert netspec.parse(NETWORK, dt=0.1).ensemble is None


def scenario(seeds=(1, 2, 3)):
    return {"scenario": {"experiment": "simulate", "seed": 5},
            "simulation": {"duration": "20 ms"},
            "monitors": {"state": {"pyr": ["v_soma"]}},
            "network": {**NETWORK, "threads": 1,
                        "ensemble": {"seeds": list(seeds), "workers": 2,
                                     "vary": {"inputs.drive.rate": ["5 Hz", "10 Hz", "20 Hz"]}}}}


def test_scenario_runs_one_result_per_instance(tmp_path, capsys):
    import tomli_w

    from dendrite_sim.cli import main

    path = tmp_path / "ens.toml"
    path.write_text(tomli_w.dumps(scenario()))
    assert main(["check", str(path)]) == 0
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ensemble"]["n_instances"] == 3 and metrics["ensemble"]["seeds"] == [1, 2, 3]
    assert [inst["values"]["inputs.drive.rate"] for inst in metrics["instances"]] == ["5 Hz", "10 Hz", "20 Hz"]
    for k in range(3):
        data = np.load(out / "instances" / f"{k:03d}" / "spikes.npz")
        table = json.loads(json.dumps(NETWORK))
        table["inputs"]["drive"]["rate"] = ["5 Hz", "10 Hz", "20 Hz"][k]
        alone = netspec.build(table, dt=0.1, seed=k + 1)
        m = alone.spike_monitor("pyr")
        alone.run(20.0)
        assert np.array_equal(data["pyr_i"], m.i) and np.array_equal(data["pyr_t"], m.t)
        assert metrics["instances"][k]["populations"]["pyr"]["n_spikes"] == len(m.i)
        assert (out / "instances" / f"{k:03d}" / "traces.npz").exists()
    assert (out / "raster.png").exists()
    path.write_text(tomli_w.dumps(scenario(seeds=(1, 2))))
    capsys.readouterr()
    assert main(["check", str(path)]) == 2
    assert 'network.ensemble.vary."inputs.drive.rate": expected 2 entries' in capsys.readouterr().err
