"""The spiking experiments ``burst_multiplexing`` and ``openscope_session`` check their network
through the engine's spec at ``dendrite-sim check``: a value ``run`` would refuse (memory, the
engine's ranges, Poisson counts per step, the monitor budget) is refused there, exit 2, with one
line naming the experiment's own scenario key; none of these scenarios reaches ``run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.cli import main
from dendrite_sim.engine import spec as netspec
from dendrite_sim.engine.network import Network
from dendrite_sim.experiments import burst_multiplexing as bm
from dendrite_sim.experiments import openscope_session as osx
from dendrite_sim.io.scenario import load

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
BURST = SCENARIOS / "burst_multiplexing.toml"
OPENSCOPE = SCENARIOS / "openscope_like_session.toml"

# (scenario, override, key, text in the message, memory of the machine for the check)
BAD = [
    # burst_multiplexing: memory (the population; the signals and the decoding grid)
    (BURST, "network.n_neurons=1000000000", "network.n_neurons", "needs an estimated", "16G"),
    (BURST, "network.duration=100000 s", "network.duration", "needs an estimated", "16G"),
    # the engine's spec: Poisson count per step, the model's physical ranges, the burst window,
    # a drive that overflows
    (BURST, "somatic_input.noise_sources=100000000", "somatic_input.noise_sources", "expected at most", None),
    (BURST, "dendritic_input.noise_rate=100 kHz", "dendritic_input.noise_rate", "expected a rate <=", None),
    (BURST, "network.neuron.C_s=0.0", "network.neuron.C_s", "expected", None),
    (BURST, "network.neuron.tau_d=-5.0", "network.neuron.tau_d", "expected", None),
    (BURST, "network.burst_window=0.05 ms", "network.burst_window", "expected at least dt", None),
    (BURST, "somatic_input.amplitude=1e307 pA", "somatic_input.amplitude", "expected a finite", None),
    # openscope_session: memory, the engine's monitor budget for one day, Poisson counts, blocks
    (OPENSCOPE, "network.n_pyr=1000000000", "network.n_pyr", "needs an estimated", "16G"),
    (OPENSCOPE, "network.n_feedback=100000000", "network.n_feedback", "needs an estimated", "16G"),
    (OPENSCOPE, 'stimulus.session_duration="100000 s"', "stimulus.session_duration", "needs an estimated", "16G"),
    (OPENSCOPE, "network.n_pyr=2000", "network.n_pyr", "expected one day's recordings within", "1T"),
    (OPENSCOPE, 'analysis.record_every="0.1 ms"', "analysis.record_every", "expected one day's recordings", "1T"),
    (OPENSCOPE, "network.background_soma_exc=100000000", "network.background_soma_exc", "expected at most", None),
    (OPENSCOPE, "network.background_lif=100000000", "network.background_lif", "expected at most", None),
    (OPENSCOPE, 'network.background_rate="1 MHz"', "network.background_rate", "expected a rate <=", None),
    (OPENSCOPE, 'stimulus.expected_block_min="100 s"', "stimulus.expected_block_min", "expected a value", None),
]


def _id(case):
    return f"{case[0].stem}:{case[1]}"


@pytest.mark.parametrize("scenario,override,key,text,memory", BAD, ids=[_id(c) for c in BAD])
def test_bad_value_is_refused_at_check(scenario, override, key, text, memory, capsys, monkeypatch):
    if memory:
        monkeypatch.setenv("DENDRITE_SIM_MEMORY", memory)
    assert main(["check", str(scenario), "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}: ") and "\n" not in err, err
    assert text in err and "expected" in err, err


def test_memory_refusal_names_the_estimate_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DENDRITE_SIM_MEMORY", "16G")
    out = tmp_path / "run"
    assert main(["run", str(OPENSCOPE), "--out", str(out), "--set", "network.n_pyr=1000000000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: network.n_pyr: needs an estimated ") and "PiB" in err
    assert "largest part network.n_pyr" in err and "16 GiB available" in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("scenario", [BURST, OPENSCOPE], ids=lambda p: p.stem)
def test_shipped_scenarios_pass_the_check(scenario, capsys):
    assert main(["check", str(scenario)]) == 0


# --------------------------------------------------------------------------- burst_multiplexing
def _old_build(cfg, seed, s, d):
    """The network as the experiment built it through the Network API before the spec."""
    nc = cfg["network"]
    net = Network(dt=nc["dt"], seed=seed, backend=nc["backend"])
    net.population("pyr", nc["n_neurons"], "naud_sprekeler", params=nc["neuron"], burst_window=nc["burst_window"])
    for comp, sig, sec in (("soma", s, "somatic_input"), ("dend", d, "dendritic_input")):
        c = cfg[sec]
        net.current("pyr", comp, array=c["mean"] + c["amplitude"] * sig, array_dt=cfg["input"]["sample"],
                    name=f"{sec}.signal")
        pop = net["pyr"]
        exc, inh = f"{comp}_exc", f"{comp}_inh"
        w_inh = -c["noise_weight"] * pop.tau[exc] / pop.tau[inh]
        for ch, w in ((exc, c["noise_weight"]), (inh, w_inh)):
            net.poisson_input("pyr", ch, n_sources=c["noise_sources"], rate=c["noise_rate"], weight=w,
                              name=f"{sec}.noise_{ch[-3:]}")
    return net, net.spike_monitor("pyr")


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_spec_network_equals_the_network_api_build(backend):
    """The network built from the generated table spikes exactly as the one the experiment built
    through the Network API (same streams, same drives, same weights)."""
    cfg = load(BURST, overrides=["network.n_neurons=40", "network.duration=600 ms",
                                 f"network.backend={backend}", "network.neuron={tau_s=18.0}"]).cfg
    s, d = bm.BurstMultiplexing.signals(cfg, 3)
    runs = []
    for build in (bm.BurstMultiplexing.build, _old_build):
        net, mon = build(cfg, 3, s, d)
        net.run(300.0)
        runs.append((mon.t.copy(), mon.i.copy(), mon.burst_t.copy(), net["pyr"].state["v_dend"].copy()))
    assert runs[0][0].size > 20
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_network_table_is_a_network_spec():
    cfg = load(BURST).cfg
    table = bm.network_table(cfg)
    assert set(table["inputs"]) == {f"{sec}.{kind}" for sec in ("somatic_input", "dendritic_input")
                                    for kind in ("signal", "noise_exc", "noise_inh")}
    spec = netspec.parse(table, dt=cfg["network"]["dt"])
    assert spec.populations["pyr"]["n"] == 2000
    noise = spec.inputs["somatic_input.noise_inh"]
    assert noise["weight"] == -200.0 * 5.0 / 10.0 and noise["rate"] == 5.0 and noise["n_sources"] == 100
    estimate = bm.check_network(cfg, available=2**40)
    assert set(estimate) == {"network.n_neurons", "network.duration", "total"}
    assert 1e6 < estimate["total"] < 1e9
    # without noise the table has only the signals
    cfg["somatic_input"]["noise_sources"] = 0
    assert "somatic_input.noise_exc" not in bm.network_table(cfg)["inputs"]


# --------------------------------------------------------------------------- openscope_session
def test_day_network_table_describes_the_circuit():
    cfg = load(OPENSCOPE).cfg
    net = cfg["network"]
    table = osx.day_network_table(net, 300.0)
    spec = netspec.parse(table, dt=net["dt"])
    assert {k: p["n"] for k, p in spec.populations.items()} == {"pyr": 120, "feedback": 40, "inh": 30}
    assert spec.projections["feedback_dend"]["stp"] is not None and spec.projections["inh_soma"]["weight"] == -20.0
    assert spec.inputs["background_soma_inh"]["weight"] == -100.0
    estimate = osx.check_day_network(cfg, available=2**40)
    assert set(estimate) == {"network.n_pyr", "network.n_feedback", "network.n_inh", "total"}
    rows, duration = osx.day_duration_ms(osx.GaborProtocol.from_validated(cfg["stimulus"]))
    assert rows == 1000 and duration == pytest.approx(300_000.0)
    # no STP, no background: the table leaves them out as simulate_day does
    net = dict(net, feedback_stp="none", background_rate=0.0)
    table = osx.day_network_table(net, 300.0)
    assert "stp" not in table["projections"]["feedback_dend"]
    assert not [k for k in table["inputs"] if k.startswith("background")]
