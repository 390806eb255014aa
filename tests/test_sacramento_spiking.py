"""The spiking face of the Sacramento et al. (2018) microcircuit rule: its updates against the
equations on hand-made phase averages, the teacher's and the interneurons' conductance nudging
against closed forms, the input/target codes, both backends, and ``train`` on the spiking
substrate for the teacher-student regression."""

import json

import numpy as np
import pytest

from dendrite_sim.architectures.microcircuit import Microcircuit
from dendrite_sim.cli import main
from dendrite_sim.core.circuit import Phase
from dendrite_sim.engine.circuit import ExampleRecord, PhaseRecord, SpikingCircuit, SpikingConfig
from dendrite_sim.rules.sacramento import DendriticMicrocircuit

PARAMS = dict(params={"g_B": 1.0, "g_A": 0.8}, output_params={"g_A": 0.0}, interneuron_params={"g_A": 0.0},
              dt=0.5, init="normal", init_scale=10.0)


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def circuit(hidden=4, n_in=3, n_out=2, backend="numpy", seed=0, **cfg):
    c = Microcircuit(hidden=[hidden]).describe(n_in, n_out)
    return SpikingCircuit(c, SpikingConfig(backend=backend, **{**PARAMS, **cfg}), np.random.default_rng(seed),
                          seed=seed)


def psp_by_quadrature(times, t0, t1, tau_L=10.0, tau_s=3.0, delay=0.5):
    """Window mean of Σ_k κ(t − t_k − d) by the trapezoid rule (independent of ``mean_psp``)."""
    g = np.linspace(t0, t1, 200001)
    tot = np.zeros_like(g)
    for tk in times:
        s = g - tk - delay
        tot += np.where(s > 0, (np.exp(-s / tau_L) - np.exp(-s / tau_s)) / (tau_L - tau_s), 0.0)
    return np.trapezoid(tot, g) / (t1 - t0)


def hand_record(sc):
    """Constant traces with hand-chosen values and a few hand-placed spikes per population."""
    rng = np.random.default_rng(3)
    sizes = {p.name: p.n for p in sc.circuit.populations}
    trains = {"input": (np.array([2.0, 31.0, 44.0, 60.0]), np.array([0, 2, 2, 1])),
              "hidden1": (np.array([10.0, 35.0, 62.0]), np.array([1, 3, 0])),
              "inter1": (np.array([20.0, 38.0]), np.array([1, 0])),
              "output": (np.array([33.0, 65.0]), np.array([0, 1]))}

    def phase(name, t0, target):
        values = {pop: {v: np.full((20, n), rng.normal(size=n)) for v in ("v_soma", "v_basal", "v_apical")}
                  for pop, n in sizes.items() if pop != "input"}
        spikes = {pop: np.zeros(n) for pop, n in sizes.items()}
        return PhaseRecord(Phase(name, 30.0, 10.0, target), t0, t0 + 20.0, values, spikes, trains, 0.0)

    return ExampleRecord({"forward": phase("forward", 10.0, False), "target": phase("target", 40.0, True)},
                         np.zeros(3), np.array([0.2, -0.1]), {})


def test_spiking_updates_equal_the_rules_on_hand_made_averages():
    sc = circuit()
    rule = DendriticMicrocircuit(eta_forward=[2.0, 0.5], eta_ip=0.3, eta_pi=0.7, phase_duration=30.0, settle=10.0)
    rec = hand_record(sc)
    ups = rule.example_update(sc, rec)
    f, t = rec["forward"], rec["target"]
    phi = 0.2                                      # φ_max of the guerguiev model (1/ms)

    def psp(phase, pop):
        times, idx = phase.trains[pop]
        return np.array([psp_by_quadrature(times[idx == j], phase.t0, phase.t1)
                         for j in range(sc.circuit.population(pop).n)])

    def val(phase, pop, var):
        return phase.values[pop][var][0]

    # forward weights, target phase: η [φ(C) − φ(k_B B)] PSP_preᵀ; k_B = g_B/(g_L + g_B + g_A)
    kh, ko = 1.0 / (0.1 + 1.0 + 0.8), 1.0 / (0.1 + 1.0)
    e_h = phi * sig(val(t, "hidden1", "v_soma")) - phi * sig(kh * val(t, "hidden1", "v_basal"))
    e_o = phi * sig(val(t, "output", "v_soma")) - phi * sig(ko * val(t, "output", "v_basal"))
    np.testing.assert_allclose(ups["ff1"][0], 2.0 * np.outer(e_h, psp(t, "input")), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ups["ff1"][1], 2.0 * e_h, rtol=1e-12)
    np.testing.assert_allclose(ups["ff2"][0], 0.5 * np.outer(e_o, psp(t, "hidden1")), rtol=1e-6, atol=1e-12)
    # interneurons, forward phase: W^IP from φ(C^I) − φ(k B^I); W^PI from −A of the pyramids
    e_i = phi * sig(val(f, "inter1", "v_soma")) - phi * sig(ko * val(f, "inter1", "v_basal"))
    np.testing.assert_allclose(ups["ip1"][0], 0.3 * np.outer(e_i, psp(f, "hidden1")), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ups["ip1"][1], 0.3 * e_i, rtol=1e-12)
    np.testing.assert_allclose(ups["pi1"][0], 0.7 * np.outer(-val(f, "hidden1", "v_apical"), psp(f, "inter1")),
                               rtol=1e-6, atol=1e-12)
    assert ups["pi1"][1] is None and "td1" not in ups          # fixed top-down weights
    # the shallow baseline: hidden forward weights do not learn, the rest as before
    shallow = DendriticMicrocircuit(eta_forward=[2.0, 0.5], learn_hidden=False, phase_duration=30.0, settle=10.0)
    s_ups = shallow.example_update(sc, rec)
    assert not s_ups["ff1"][0].any()
    np.testing.assert_array_equal(s_ups["ff2"][0], ups["ff2"][0])
    # backprop's hidden update at the same averages: (W_2ᵀ e_o) k_B φ′(C_h) PSP_inᵀ
    g = rule.example_gradient(sc, rec)
    C = val(t, "hidden1", "v_soma")
    E = (sc.weights("ff2").T @ e_o) * kh * phi * sig(C) * (1 - sig(C))
    np.testing.assert_allclose(g["ff1"][0], np.outer(E, psp(t, "input")), rtol=1e-6, atol=1e-12)


def test_learned_topdown_weights_follow_their_rule():
    c = Microcircuit(hidden=[4], feedback="learned").describe(3, 2)
    sc = SpikingCircuit(c, SpikingConfig(backend="numpy", **PARAMS), np.random.default_rng(0), seed=0)
    rec = hand_record(sc)
    ups = DendriticMicrocircuit(eta_topdown=0.4, phase_duration=30.0, settle=10.0).example_update(sc, rec)
    t = rec["target"]
    times, idx = t.trains["output"]
    psp = np.array([psp_by_quadrature(times[idx == j], t.t0, t.t1) for j in range(2)])
    C = t.values["hidden1"]["v_soma"][0]
    err = 0.2 * sig(C) - 0.2 * sig(sc.weights("td1") @ psp)
    np.testing.assert_allclose(ups["td1"][0], 0.4 * np.outer(err, psp), rtol=1e-6, atol=1e-12)


def test_teacher_pulls_the_soma_to_the_target_potential_and_decode_inverts_the_code():
    # no input (value lo → rate 0), zero biases: B = 0, so the soma's mean is g_T U/(g_L + g_B + g_A + g_T)
    sc = circuit(hidden=2, n_out=3, backend="numba", target_range=(-0.5, 0.5), input_range=(-1.0, 1.0),
                 teacher_conductance=0.8, teacher_sources=40, teacher_rate=1000.0)
    sc.bias("output")[:] = 0.0
    sc.set_weights("ff2", np.zeros((3, 2)))                     # the hidden layer's spikes do not reach it
    y = np.array([-0.4, 0.0, 0.3])
    U = -8.0 + (y + 0.5) * 16.0
    rec = sc.present(-np.ones(3), y, (Phase("target", 400.0, 100.0, target=True),))
    C = rec["target"].mean("output", "v_soma")
    np.testing.assert_allclose(C, 0.8 * U / (0.1 + 1.0 + 0.0 + 0.8), atol=0.15)
    assert sc.decode(U) == pytest.approx(y)
    np.testing.assert_array_equal(sc.input.spike_prob, 0.0)
    sc.set_input(np.array([1.0, 0.0, -1.0]))                    # rates (x − lo)/(hi − lo) · input_rate
    np.testing.assert_allclose(sc.input.spike_prob, np.array([1.0, 0.5, 0.0]) * 200.0 * 0.5 / 1000.0)


def test_interneurons_mimic_their_partners_and_cancel_the_topdown_input():
    sc = circuit(hidden=20, n_in=10, n_out=5, backend="numba", init_state="self_predicting", input_range=(-1, 1),
                 init_scale=20.0)
    np.testing.assert_array_equal(sc.weights("ip1"), sc.weights("ff2"))
    np.testing.assert_array_equal(sc.weights("pi1"), -sc.weights("td1"))
    rng = np.random.default_rng(1)
    inter, out, A, td = [], [], [], []
    for _ in range(12):
        rec = sc.present(rng.uniform(-1, 1, 10), None, (Phase("forward", 100.0, 20.0),))
        f = rec["forward"]
        inter.append(f.mean("inter1", "v_soma"))
        out.append(f.mean("output", "v_soma"))
        A.append(f.mean("hidden1", "v_apical"))
        td.append(sc.weights("td1") @ f.psp("output", 10.0, 3.0, 0.5))
    inter, out = np.ravel(inter), np.ravel(out)
    assert np.corrcoef(inter, out)[0, 1] > 0.95                 # same basal input, nudged toward the partner
    assert np.abs(inter - out).mean() < 0.2 * np.abs(out).mean() + 0.1
    # the apical potential without a target is the residue of W^td r_out + W^PI r_I: far below W^td r_out
    assert np.abs(np.mean(A, axis=0)).mean() < 0.3 * np.abs(np.mean(td, axis=0)).mean()


def test_backends_present_the_microcircuit_identically():
    recs = []
    for backend in ("numpy", "numba"):
        sc = circuit(backend=backend, seed=4, init_state="self_predicting")
        recs.append(sc.present(np.array([0.2, 0.9, 0.5]), np.array([0.7, 0.1]),
                               DendriticMicrocircuit(phase_duration=20.0, settle=5.0).phases()))
    for ph in ("forward", "target"):
        for pop in ("hidden1", "inter1", "output"):
            for v in ("v_soma", "v_basal", "v_apical"):
                np.testing.assert_array_equal(recs[0][ph].values[pop][v], recs[1][ph].values[pop][v])
            np.testing.assert_array_equal(recs[0][ph].spikes[pop], recs[1][ph].spikes[pop])


SCENARIO = "scenarios/microcircuit_regression_spiking.toml"
SHORT = ["--set", "task.n_train=60", "--set", "task.n_test=30", "--set", "training.epochs=3"]


@pytest.mark.slow
def test_spiking_regression_scenario_learns(tmp_path):
    out = tmp_path / "run"
    assert main(["run", SCENARIO, "--out", str(out), *SHORT]) == 0
    m = json.loads((out / "metrics.json").read_text())
    loss = m["history"]["test_loss"]
    assert m["substrate"] == "spiking"
    assert loss[-1] < 0.3 * loss[0]                             # the output learns the teacher's potentials
    assert set(m["alignment_angle_deg"]) == {"ff1"}
    assert (out / "compartment_traces.png").exists()


@pytest.mark.parametrize("edit, key", [
    (["--set", "spiking.target_range=[-0.1,0.1]"], "spiking.target_range"),    # targets outside the code
    (["--set", "spiking.input_range=[0,1]"], "spiking.input_range"),           # inputs in [-1, 1]
    (["--set", "spiking.input_range=[1,0]"], "spiking.input_range"),
    (["--set", "spiking.nudging_conductance=3.0"], "spiking.dt"),              # unstable interneurons
])
def test_spiking_microcircuit_refuses_what_it_cannot_run(tmp_path, capsys, edit, key):
    code = main(["run", SCENARIO, "--out", str(tmp_path / "r"), *SHORT, *edit])
    assert code == 2
    assert key in capsys.readouterr().err


@pytest.mark.slow
def test_spiking_microcircuit_beats_the_shallow_learner(tmp_path):
    """Seed 1, 12 epochs (about 10 minutes on 2 cores): the microcircuit whose hidden layer learns
    from its apical errors ends below the shallow learner (output layer only) and below the best
    constant prediction of the targets."""
    from dendrite_sim.core import rng
    from dendrite_sim.tasks.teacher_student_microcircuit import MicrocircuitTeacherStudent

    last = {}
    for name, extra in (("full", []), ("shallow", ["--set", "rule.learn_hidden=false"])):
        out = tmp_path / name
        assert main(["run", SCENARIO, "--out", str(out), "--set", "training.epochs=12", *extra]) == 0
        last[name] = float(np.mean(json.loads((out / "metrics.json").read_text())["history"]["test_loss"][-3:]))
    d = MicrocircuitTeacherStudent(n_train=500, n_test=100).dataset(rng.stream(1, "task"))
    constant = 0.5 * ((d.y_test - d.y_train.mean(axis=0)) ** 2).sum(axis=1).mean()
    assert last["full"] < last["shallow"] < 1.1 * constant
    assert last["full"] < 0.9 * constant
