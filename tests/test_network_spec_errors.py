"""Bad ``[network]`` scenarios: each one is refused by ``dendrite-sim check`` (exit 2, one line
``error: <the scenario's key path>: ...expected...``), and ``run`` refuses it the same way before
the experiment starts. Plus: the memory estimate, the translation of the engine's keys, and a
fuzz test that whatever ``check`` accepts also builds and runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dendrite_sim import cli
from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine import spec as netspec
from dendrite_sim.io.scenario import load

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "scenario": {"experiment": "simulate", "seed": 2},
    "simulation": {"dt": "0.1 ms", "duration": "20 ms", "backend": "numpy"},
    "network": {
        "populations": {
            "pyr": {"model": "naud_sprekeler", "n": 20},
            "inh": {"model": "lif", "n": 8},
            "stim": {"type": "spikes", "n": 3, "times": ["1 ms", "2 ms", "3 ms"], "indices": [0, 1, 2]},
            "noise": {"type": "poisson", "n": 10, "rate": "20 Hz"},
        },
        "projections": {
            "rec": {"pre": "pyr", "post": "pyr", "channel": "dend_exc", "connectivity": "fixed_probability",
                    "p": 0.2, "autapses": False, "weight": "30 pA", "stp": "payeur_stf"},
            "e2i": {"pre": "pyr", "post": "inh", "channel": "exc", "connectivity": "fixed_indegree", "k": 4,
                    "weight": "50 pA", "delay": "0.5 ms"},
            "stim": {"pre": "stim", "post": "pyr", "channel": "soma_exc", "connectivity": "pairs",
                     "pre_idx": [0, 1, 2], "post_idx": [0, 1, 2], "weight": "2000 pA"},
            "noise": {"pre": "noise", "post": "inh", "channel": "exc", "weight": "40 pA"},
        },
        "inputs": {
            "bias": {"type": "current", "target": "pyr", "compartment": "soma", "bias": "300 pA"},
            "dend": {"type": "current", "target": "pyr", "compartment": "dend", "values": [0.0, 100.0],
                     "values_dt": "10 ms"},
            "drive": {"type": "poisson", "target": "pyr", "channel": "soma_exc", "n_sources": 100,
                      "rate": "5 Hz", "weight": "100 pA"},
        },
    },
    "monitors": {"state": {"pyr": ["v_soma", "v_dend"]}, "state_neurons": [0, 1], "every": "1 ms"},
}

NET = ("network",)
POP = ("network", "populations")
PROJ = ("network", "projections")
INP = ("network", "inputs")
DELETE = object()


def edit(*changes):
    """BASE with ``(path, value)`` changes (``DELETE`` removes the key)."""
    d = copy.deepcopy(BASE)
    for path, value in changes:
        node = d
        for k in path[:-1]:
            node = node.setdefault(k, {})
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return d


def _model_refuses(model: str, name: str, value) -> bool:
    """Whether the model's parameter ranges (added in neurons/) already refuse ``value``."""
    try:
        registry.get("neuron", model, "model").make_params({name: value}, key="params")
    except ScenarioError:
        return True
    return False


def _pending_ranges(model, name, value):
    return pytest.mark.xfail(not _model_refuses(model, name, value), strict=True,
                             reason=f"{model} does not declare a physical range for {name} yet (parameter "
                                    "ranges are being added in dendrite_sim/neurons/)")


# (id, scenario dict, --set overrides, key path the error must name, a phrase of the message)
CASES = [
    # memory and integers
    ("n_sources=1e9 via --set", BASE, ["network.inputs.drive.n_sources=1000000000"],
     "network.inputs.drive.n_sources", "expected at most 1400000 sources at 5 Hz"),
    ("n=1e12 as a TOML float", edit((POP + ("pyr", "n"), 1e12)), [],
     "network.populations.pyr.n", "write 1000000000000"),
    ("n_sources=100.0 as a TOML float", edit((INP + ("drive", "n_sources"), 100.0)), [],
     "network.inputs.drive.n_sources", "expected an integer"),
    ("n=10**12 needs too much memory", edit((POP + ("pyr", "n"), 10**12)), [],
     "network", "needs an estimated"),
    ("all_to_all of 10**6 needs too much memory", edit((POP + ("inh", "n"), 10**6),
                                                       (PROJ + ("noise", "pre"), "inh")), [],
     "network", "needs an estimated"),
    ("a delay of 1e7 ms needs a huge ring", edit((PROJ + ("e2i", "delay"), "1e7 ms"),
                                                 (POP + ("inh", "n"), 200000)), [],
     "network", "needs an estimated"),
    ("state monitors over the budget", edit((("simulation", "duration"), "10000 s"),
                                            (("monitors", "every"), "0.1 ms")), [],
     "monitors", "expected state and weight monitors within"),
    # populations
    ("no populations", edit((POP, {})), [], "network.populations", "expected at least one"),
    ("unknown model", edit((POP + ("pyr", "model"), "naud_sprekler")), [],
     "network.populations.pyr.model", "did you mean 'naud_sprekeler'"),
    ("unknown population type", edit((POP + ("noise", "type"), "gaussian")), [],
     "network.populations.noise.type", "expected one of"),
    ("n = 0", edit((POP + ("pyr", "n"), 0)), [], "network.populations.pyr.n", ">= 1"),
    ("unknown population key", edit((POP + ("pyr", "size"), 3)), [], "network.populations.pyr.size", "unknown key"),
    ("unknown parameter", edit((POP + ("pyr", "params"), {"C_z": 1.0})), [],
     "network.populations.pyr.params.C_z", "C_s"),
    ("parameter of the wrong dimension", edit((POP + ("pyr", "params"), {"C_s": "370 mV"})), [],
     "network.populations.pyr.params.C_s", "expected a quantity in units of pF"),
    pytest.param("naud_sprekeler C_s = 0 pF", edit((POP + ("pyr", "params"), {"C_s": "0 pF"})), [],
                 "network.populations.pyr.params.C_s", "expected",
                 marks=_pending_ranges("naud_sprekeler", "C_s", "0 pF")),
    pytest.param("lif tau_m = -20 ms", edit((POP + ("inh", "params"), {"tau_m": "-20 ms"})), [],
                 "network.populations.inh.params.tau_m", "expected",
                 marks=_pending_ranges("lif", "tau_m", "-20 ms")),
    ("unknown init variable", edit((POP + ("pyr", "init"), {"v_apical": -70.0})), [],
     "network.populations.pyr.init.v_apical", "expected a state variable of naud_sprekeler"),
    ("init list of the wrong length", edit((POP + ("pyr", "init"), {"v_soma": [-70.0, -65.0]})), [],
     "network.populations.pyr.init.v_soma", "expected one value or 20 values"),
    ("init of the wrong dimension", edit((POP + ("pyr", "init"), {"v_soma": "5 pA"})), [],
     "network.populations.pyr.init.v_soma", "expected a quantity in units of mV"),
    ("unknown tau channel", edit((POP + ("pyr", "tau"), {"apical": "5 ms"})), [],
     "network.populations.pyr.tau.apical", "expected a channel of naud_sprekeler"),
    ("negative tau", edit((POP + ("pyr", "tau"), {"soma_exc": "-5 ms"})), [],
     "network.populations.pyr.tau.soma_exc", "> 0"),
    ("euler tau below dt", edit((POP + ("pyr", "channel_method"), "euler"), (POP + ("pyr", "tau"),
                                                                             {"soma_exc": "0.05 ms"})), [],
     "network.populations.pyr.tau.soma_exc", "expected a time constant >= dt"),
    ("burst window below dt", edit((POP + ("pyr", "burst_window"), "0.01 ms")), [],
     "network.populations.pyr.burst_window", "expected at least dt"),
    ("Poisson group rate too high for dt", edit((POP + ("noise", "rate"), "20 kHz")), [],
     "network.populations.noise.rate", "expected a rate <= 10000 Hz"),
    ("Poisson group rate without units", edit((POP + ("noise", "rate"), "20")), [],
     "network.populations.noise.rate", "expected a frequency"),
    ("negative spike time", edit((POP + ("stim", "times"), ["-1 ms", "2 ms", "3 ms"])), [],
     "network.populations.stim.times[0]", ">= 0"),
    ("spike index out of range", edit((POP + ("stim", "indices"), [0, 3, 2])), [],
     "network.populations.stim.indices[1]", "expected a source index below n = 3"),
    ("one index per spike time", edit((POP + ("stim", "indices"), [0, 1])), [],
     "network.populations.stim.indices", "expected one index per spike time"),
    ("duplicate spikes in one step", edit((POP + ("stim", "times"), ["1 ms", "1.02 ms", "3 ms"]),
                                          (POP + ("stim", "indices"), [0, 0, 2])), [],
     "network.populations.stim.times[1]", "expected at most one spike per source per step"),
    # projections
    ("unknown pre population", edit((PROJ + ("rec", "pre"), "pyramid")), [],
     "network.projections.rec.pre", "expected a population"),
    ("unknown post population", edit((PROJ + ("rec", "post"), "pyramid")), [],
     "network.projections.rec.post", "expected a population"),
    ("post is a spike source", edit((PROJ + ("stim", "post"), "noise")), [],
     "network.projections.stim.post", "expected a population of neurons"),
    ("unknown channel", edit((PROJ + ("rec", "channel"), "apical")), [],
     "network.projections.rec.channel", "expected a channel of naud_sprekeler"),
    ("unknown connectivity", edit((PROJ + ("rec", "connectivity"), "small_world")), [],
     "network.projections.rec.connectivity", "expected one of"),
    ("fixed_probability without p", edit((PROJ + ("rec", "p"), DELETE)), [],
     "network.projections.rec.p", "missing; expected it with fixed_probability"),
    ("p with all_to_all", edit((PROJ + ("noise", "p"), 0.5)), [],
     "network.projections.noise.p", "expected only the options of all_to_all"),
    ("k with fixed_probability", edit((PROJ + ("rec", "k"), 3)), [],
     "network.projections.rec.k", "expected only the options of fixed_probability"),
    ("autapses with pairs", edit((PROJ + ("stim", "autapses"), False)), [],
     "network.projections.stim.autapses", "expected only the options of pairs"),
    ("p > 1", edit((PROJ + ("rec", "p"), 1.5)), [], "network.projections.rec.p", "<= 1"),
    ("p < 0", edit((PROJ + ("rec", "p"), -0.1)), [], "network.projections.rec.p", ">= 0"),
    ("k above the presynaptic size", edit((PROJ + ("e2i", "k"), 21)), [],
     "network.projections.e2i.k", "expected at most 20 inputs"),
    ("pairs index out of range", edit((PROJ + ("stim", "pre_idx"), [0, 5, 2])), [],
     "network.projections.stim.pre_idx[1]", "expected a neuron index below 3"),
    ("pairs of unequal length", edit((PROJ + ("stim", "post_idx"), [0, 1])), [],
     "network.projections.stim.post_idx", "expected one index per pre_idx"),
    ("autapses = false between sizes", edit((PROJ + ("e2i", "autapses"), False)), [],
     "network.projections.e2i.autapses", "same size"),
    ("negative delay", edit((PROJ + ("e2i", "delay"), "-0.5 ms")), [], "network.projections.e2i.delay", "> 0"),
    ("delay not a multiple of dt", edit((PROJ + ("e2i", "delay"), "0.25 ms")), [],
     "network.projections.e2i.delay", "expected a multiple of dt = 0.1 ms"),
    ("delay below dt", edit((PROJ + ("e2i", "delay"), "0.01 ms")), [],
     "network.projections.e2i.delay", "at least 0.1 ms"),
    ("weight of the wrong dimension", edit((PROJ + ("rec", "weight"), "30 mV")), [],
     "network.projections.rec.weight", "expected a current"),
    ("weight without units", edit((PROJ + ("rec", "weight"), 30)), [],
     "network.projections.rec.weight", "with units"),
    ("unknown STP preset", edit((PROJ + ("rec", "stp"), "fast")), [],
     "network.projections.rec.stp.preset", "unknown STP preset"),
    ("unknown STP field", edit((PROJ + ("rec", "stp"), {"preset": "payeur_std", "tau_X": "5 ms"})), [],
     "network.projections.rec.stp.tau_X", "unknown STP parameter"),
    ("STP fraction out of range", edit((PROJ + ("rec", "stp"), {"preset": "payeur_std", "U": 1.5})), [],
     "network.projections.rec.stp.U", "expected a fraction in [0, 1]"),
    ("STP of the wrong type", edit((PROJ + ("rec", "stp"), 3)), [],
     "network.projections.rec.stp", "expected a preset name"),
    ("the old stdp key", edit((PROJ + ("rec", "stdp"), "pair")), [],
     "network.projections.rec.stdp", "expected plasticity"),
    ("plasticity without a rule", edit((PROJ + ("rec", "plasticity"), {"preset": "pair"})), [],
     "network.projections.rec.plasticity.rule", "missing; expected the name"),
    ("plasticity of the wrong type", edit((PROJ + ("rec", "plasticity"), 1)), [],
     "network.projections.rec.plasticity", "expected a rule name or a table"),
    # inputs
    ("input type missing", edit((INP + ("drive", "type"), DELETE)), [],
     "network.inputs.drive.type", "missing; expected 'poisson' or 'current'"),
    ("unknown input type", edit((INP + ("drive", "type"), "gaussian")), [],
     "network.inputs.drive.type", "expected 'poisson' or 'current'"),
    ("unknown input target", edit((INP + ("drive", "target"), "pyramid")), [],
     "network.inputs.drive.target", "expected a population of neurons"),
    ("input onto a spike source", edit((INP + ("bias", "target"), "noise")), [],
     "network.inputs.bias.target", "expected a population of neurons"),
    ("input onto an unknown channel", edit((INP + ("drive", "channel"), "exc")), [],
     "network.inputs.drive.channel", "expected a channel of naud_sprekeler"),
    ("input into a wrong compartment", edit((INP + ("bias", "compartment"), "apical")), [],
     "network.inputs.bias.compartment", "expected a compartment of naud_sprekeler"),
    ("values without values_dt", edit((INP + ("dend", "values_dt"), DELETE)), [],
     "network.inputs.dend.values_dt", "missing; expected values and values_dt together"),
    ("values_dt not a multiple of dt", edit((INP + ("dend", "values_dt"), "0.15 ms")), [],
     "network.inputs.dend.values_dt", "expected a multiple of dt"),
    ("Poisson input rate too high for dt", edit((INP + ("drive", "rate"), "1 MHz")), [],
     "network.inputs.drive.rate", "expected a rate <= 10000 Hz"),
    ("Poisson input weight of the wrong dimension", edit((INP + ("drive", "weight"), "1 mV")), [],
     "network.inputs.drive.weight", "expected a current"),
    ("bias of the wrong dimension", edit((INP + ("bias", "bias"), "300 nS")), [],
     "network.inputs.bias.bias", "expected a current"),
    # monitors
    ("spike monitor of an unknown population", edit((("monitors", "spikes"), ["pyr", "pyramid"])), [],
     "monitors.spikes[1]", "expected a population"),
    ("state monitor of an unknown population", edit((("monitors", "state"), {"pyramid": ["v_soma"]})), [],
     "monitors.state.pyramid", "expected a population of neurons"),
    ("state monitor of a spike source", edit((("monitors", "state"), {"stim": ["v_soma"]})), [],
     "monitors.state.stim", "expected a population of neurons"),
    ("state monitor of an unknown variable", edit((("monitors", "state"), {"pyr": ["v_apical"]})), [],
     "monitors.state.pyr", "unknown variable 'v_apical'"),
    ("weight monitor of an unknown projection", edit((("monitors", "weights"), {"recurrent": "1 ms"})), [],
     "monitors.weights.recurrent", "expected a projection"),
    ("weight monitor interval not a multiple of dt", edit((("monitors", "weights"), {"rec": "0.25 ms"})), [],
     "monitors.weights.rec", "expected a multiple of dt"),
    ("monitor every not a multiple of dt", edit((("monitors", "every"), "0.25 ms")), [],
     "monitors.every", "expected a multiple of dt"),
]
IDS = [c.values[0] if hasattr(c, "marks") else c[0] for c in CASES]
#: a few of every group, also run through ``dendrite-sim run``
RUN_IDS = ("n_sources=1e9 via --set", "n=10**12 needs too much memory", "state monitors over the budget",
           "unknown model", "naud_sprekeler C_s = 0 pF", "duplicate spikes in one step", "unknown channel",
           "delay not a multiple of dt", "unknown STP preset", "values_dt not a multiple of dt",
           "state monitor of an unknown variable")


def _write(tmp_path, data) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(data))
    return str(path)


def _refused(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


@pytest.fixture
def no_run(monkeypatch):
    """Fail the test if an experiment's run starts."""
    from dendrite_sim.experiments.simulate import Simulate

    def refuse(self, cfg, ctx):
        raise AssertionError("the scenario reached run")

    monkeypatch.setattr(Simulate, "run", refuse)


def test_enough_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name,data,sets,key,phrase", CASES, ids=IDS)
def test_check_refuses_with_one_line(tmp_path, capsys, no_run, name, data, sets, key, phrase):
    path = _write(tmp_path, data)
    err = _refused(["check", path, *[a for s in sets for a in ("--set", s)]], capsys)
    assert err.startswith(f"error: {key}: "), err
    assert phrase in err, err
    message = err[len(f"error: {key}: "):]
    assert any(w in message for w in ("expected", "allowed:", "available:")), err


@pytest.mark.parametrize("name,data,sets,key,phrase", [c for c, i in zip(CASES, IDS) if i in RUN_IDS],
                         ids=[i for i in IDS if i in RUN_IDS])
def test_run_refuses_the_same_before_running(tmp_path, capsys, no_run, name, data, sets, key, phrase):
    path = _write(tmp_path, data)
    err = _refused(["run", path, "--out", str(tmp_path / "out"), *[a for s in sets for a in ("--set", s)]],
                   capsys)
    assert err.startswith(f"error: {key}: "), err
    assert not (tmp_path / "out").exists()


def test_base_and_shipped_scenarios_check(tmp_path, capsys):
    assert cli.main(["check", _write(tmp_path, BASE)]) == 0
    assert cli.main(["check", str(ROOT / "scenarios" / "pyr_stp_4000.toml")]) == 0


def test_plasticity_errors_of_the_engine_name_the_projection(tmp_path, capsys):
    """What only the engine (the rule) checks is refused at check too, under the scenario's key."""
    cases = [({"rule": "stdp", "preset": "pair"}, "30 pA"),          # weight beyond the rule's w_max
             ({"rule": "stpd"}, "0.5 pA")]                            # no such rule
    for plasticity, weight in cases:
        data = edit((PROJ + ("rec", "plasticity"), plasticity), (PROJ + ("rec", "weight"), weight))
        err = _refused(["check", _write(tmp_path, data)], capsys)
        assert err.startswith("error: network.projections.rec."), err
        assert any(w in err for w in ("expected", "allowed:", "available:")), err


# --------------------------------------------------------------------------- memory
def test_memory_estimate_counts_synapses_and_rings():
    spec = netspec.parse(BASE["network"], dt=0.1)
    est = netspec.estimate_memory(spec)
    # rec: p 0.2 × 20 × 19 synapses of 16 bytes, STP per pre neuron (24 bytes); noise, all-to-all
    # 10 × 8, the largest projection, also counts the transient of its build
    assert est["network.projections.rec"] == pytest.approx(0.2 * 20 * 19 * netspec.SYNAPSE_BYTES + 24 * 20)
    assert est["network.projections.noise"] == pytest.approx(
        80 * (netspec.SYNAPSE_BYTES + netspec.BUILD_BYTES_PER_SYNAPSE))
    assert est["network.projections.e2i"] == pytest.approx(4 * 8 * netspec.SYNAPSE_BYTES)
    # inh: 2 state vars, 2 channels, 1 compartment (bias + drive); ring of exc: longest delay 5 steps
    inh = 8 * (netspec.NEURON_BOOKKEEPING_BYTES + 8 * (2 + 2 + 2)) + 8 * 8 * (5 + 1)
    assert est["network.populations.inh"] == pytest.approx(inh)
    assert est["total"] == pytest.approx(sum(v for k, v in est.items() if k != "total"))


def test_memory_refusal_names_the_estimate(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DENDRITE_SIM_MEMORY", "64K")
    err = _refused(["check", _write(tmp_path, BASE)], capsys)
    assert err.startswith("error: network: needs an estimated "), err
    assert "this machine has 64 KiB available; expected at most" in err
    monkeypatch.setenv("DENDRITE_SIM_MEMORY", "1G")
    assert cli.main(["check", _write(tmp_path, BASE)]) == 0


def test_available_memory_and_formatting(monkeypatch):
    monkeypatch.delenv("DENDRITE_SIM_MEMORY", raising=False)
    avail = netspec.available_memory()
    assert avail is None or avail > 0
    assert netspec.format_bytes(7.3 * 2**40) == "7.3 TiB"
    assert netspec.format_bytes(21 * 2**30) == "21 GiB"
    assert netspec.format_bytes(512) == "512 B"
    assert netspec._bytes_from_text("2G") == 2 * 2**30
    assert netspec._bytes_from_text("1.5 MiB") == int(1.5 * 2**20)


def test_memory_is_checked_before_anything_is_built(monkeypatch):
    """The 10**12-neuron network is refused without a Network being made."""
    from dendrite_sim.engine import network

    def boom(*a, **k):
        raise AssertionError("built")

    monkeypatch.setattr(network.Network, "__init__", boom)
    with pytest.raises(ScenarioError) as e:
        load(data=edit((POP + ("pyr", "n"), 10**12)))
    assert e.value.key == "network"


# --------------------------------------------------------------------------- engine keys
def test_engine_keys_become_scenario_keys():
    cases = [
        ("inputs.drive.rate", "network.inputs.drive", None, "network.inputs.drive.rate"),
        ("inputs.dend.array_dt", "network.inputs.dend", {"array_dt": "values_dt"}, "network.inputs.dend.values_dt"),
        ("projections.rec.stp.U", "network.projections.rec", None, "network.projections.rec.stp.U"),
        ("dt", None, None, "simulation.dt"),
        ("populations.name", "network.populations.pyr", None, "network.populations.pyr"),
    ]
    for ekey, component, rename, want in cases:
        with pytest.raises(ScenarioError) as e, netspec.scenario_keys("network", component=component, rename=rename):
            raise ScenarioError(ekey, "expected something")
        assert e.value.key == want, (ekey, e.value.key)
    assert "(populations.name)" in e.value.expected


def test_dry_build_uses_a_stand_in_for_large_projections(monkeypatch):
    monkeypatch.setattr(netspec, "DRY_SYNAPSE_LIMIT", 10)
    spec, net = netspec.check(BASE["network"], dt=0.1, backend="numpy")
    nnz = {p.name: p.conn.nnz for p in net.projections}
    assert nnz["rec"] == 1 and nnz["stim"] == 3
    full = netspec.build(spec, dt=0.1, backend="numpy")
    assert {p.name: p.conn.nnz for p in full.projections}["rec"] > 10


# --------------------------------------------------------------------------- fuzz
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 60), st.floats(-2.0, 2.0), st.text(max_size=8),
                  st.lists(st.integers(-2, 25), max_size=4),
                  st.sampled_from(["5 ms", "-3 ms", "0.25 ms", "30 pA", "2 nS", "1 kg", "20 Hz", "20 kHz",
                                   "pyr", "inh", "stim", "noise", "exc", "soma", "dend", "soma_exc",
                                   "payeur_std", "fixed_indegree", "pairs", "all_to_all", "0 pF", "-20 ms"]))


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_what_check_accepts_builds_and_runs(data):
    """Mutate the network at random: ``load`` (= check) raises one ScenarioError, or the network
    builds for real and runs a few steps without any error."""
    d = copy.deepcopy(BASE)
    net = d["network"]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_paths(net))))
        node = net
        for k in path[:-1]:
            node = node[k]
        action = data.draw(st.sampled_from(["replace", "replace", "delete"]))
        if action == "replace":
            node[path[-1]] = data.draw(_leaf)
        else:
            del node[path[-1]]
    try:
        sc = load(data=d)
    except ScenarioError as exc:
        assert "\n" not in exc.line() and exc.line().startswith("error: ")
        return
    from dendrite_sim.experiments import simulate

    cfg = sc.cfg
    spec, estimate = simulate.check(cfg, dry=False)
    if estimate["total"] > 50e6:
        return
    net_obj = simulate.build_network(spec, cfg["simulation"], simulate._monitors(cfg), 0)[0]
    net_obj.run(1.0)
