"""Dendritic prediction (Urbanczik & Senn 2014 Fig 1B, NEST's urbanczik_synapse_example): the
teacher against its closed form, learning on a short protocol, one-line errors; the full
scenario (slow) and the comparison with NEST 3.10 (slow, skipped without NEST)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.cli import main
from dendrite_sim.experiments import dendritic_prediction as dp
from dendrite_sim.io.scenario import load
from dendrite_sim.neurons import urbanczik_senn as US

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "urbanczik_senn_fig1.toml"


def cfg_with(*overrides):
    return load(SCENARIO, overrides=list(overrides)).cfg


# --------------------------------------------------------------------------- pieces
def test_eta_conversion_and_scenario_use_nest_numbers():
    assert dp.eta_from_nest(0.17) == pytest.approx(1147.5)
    cfg = cfg_with()
    assert cfg["synapses"]["eta"] == pytest.approx(dp.eta_from_nest(0.17))
    syn, teacher = cfg["synapses"], cfg["teacher"]
    C = 300.0          # NEST example: weights and teacher weights in units of the dendritic C_m
    assert (syn["weight"], syn["w_max"], syn["w_min"]) == pytest.approx((0.3 * C, 4.5 * C, 0.0))
    # spike weight × connection weight 10·dt per step into τ_syn = 3 ms: g = w · 10 · τ_syn
    assert teacher["g_exc_mean"] == pytest.approx(0.018 * C * 10 * 3.0)
    assert teacher["g_exc_amplitude"] == pytest.approx(0.016 * C * 10 * 3.0)
    assert teacher["g_inh"] == pytest.approx(0.06 * C * 10 * 3.0)


def test_binary_teacher_sends_the_increments_to_within_half_a_quantum():
    inc = np.abs(np.sin(np.arange(5000) * 0.01)) * 7.3 + 0.2
    steps, sources, weights = dp.binary_teacher(inc, 10)
    q = weights[0]
    assert np.allclose(weights, q * 2.0 ** np.arange(10)) and q == pytest.approx(inc.max() / 1022)
    sent = np.bincount(steps, weights=weights[sources], minlength=inc.size)
    assert np.all(np.abs(np.cumsum(sent) - np.cumsum(inc)) <= 0.5 * q + 1e-9)
    assert not np.any((np.diff(steps) == 0) & (np.diff(sources) == 0))     # a source once per step


def test_matching_potential_closed_form():
    p = US.UrbanczikSennParams()
    assert dp.matching_potential(540.0, 540.0, p) == pytest.approx((p.E_ex + p.E_in) / 2)
    assert dp.matching_potential(162.0, 540.0, p) == pytest.approx(-75.0 * 540.0 / 702.0)
    assert math.isnan(dp.matching_potential(0.0, 0.0, p))


def test_teacher_conductances_and_matching_potential_in_the_network():
    """The recorded somatic conductances are the exponential filter of the target increments
    g*(t) dt / τ_syn (one step of delay) to within one quantum; U_M from them matches U_M of
    the closed-form filter; the teacher is off before its repetitions and decays after them."""
    cfg = cfg_with("protocol.n_inputs=5", "protocol.pattern=50 ms", "protocol.repetitions=2",
                   "protocol.lead_in=1", "protocol.lead_out=1", "analysis.final_repetitions=1")
    net, proj, mon, info = dp.build(cfg, seed=3)
    net.run(info["duration"])
    dt, n = cfg["protocol"]["dt"], info["n_steps"]
    t = np.arange(n) * dt
    g_e, g_i = dp.teacher_targets(t, cfg["teacher"], 50.0, 150.0)
    a = math.exp(-dt / 3.0)
    closed = {}
    for name, g, channel in (("exc", g_e, "soma_exc"), ("inh", g_i, "soma_inh")):
        inc = g * dt / 3.0
        filt = np.zeros(n)
        for k in range(1, n):                       # g[k] = Σ_{m<k} inc[m] a^{k−1−m}
            filt[k] = filt[k - 1] * a + inc[k - 1]
        q = inc.max() / (2 ** cfg["teacher"]["bits"] - 2)
        rec = np.asarray(mon[channel])[:, 0]
        np.testing.assert_allclose(rec, filt, atol=q)
        closed[name] = filt
    u_rec = dp.matching_potential(np.asarray(mon["soma_exc"])[:, 0], np.asarray(mon["soma_inh"])[:, 0],
                                  net["pyr"].params)
    u_cf = dp.matching_potential(closed["exc"], closed["inh"], net["pyr"].params)
    on = slice(520, 1500)                           # from 2 ms after the onset (g ≫ quantum)
    np.testing.assert_allclose(u_rec[on], u_cf[on], atol=1e-3)
    assert np.all(np.isnan(u_rec[:501])) and not np.any(np.isnan(u_rec[501:]))
    # steady state (≫ τ_syn after the onset) in closed form: the filter of a sinusoid,
    # g_n = (dt/τ) [ḡ / (1 − a) + A · Im(e^{iω(n−1)dt} / (1 − a e^{−iω dt}))]
    te, w = cfg["teacher"], 2 * math.pi * cfg["teacher"]["frequency"] / 1000.0
    k = np.arange(900, 1500)
    g_e_ss = dt / 3.0 * (te["g_exc_mean"] / (1 - a) + te["g_exc_amplitude"]
                         * np.imag(np.exp(1j * w * (k - 1) * dt) / (1 - a * np.exp(-1j * w * dt))))
    g_i_ss = dt / 3.0 * te["g_inh"] / (1 - a)
    np.testing.assert_allclose(np.asarray(mon["soma_exc"])[k, 0], g_e_ss, atol=0.01)
    np.testing.assert_allclose(u_rec[k], dp.matching_potential(g_e_ss, g_i_ss, net["pyr"].params), atol=1e-3)
    # it lags the targets' own U_M by about τ_syn: U_M is computed from the conductances
    u_target = dp.matching_potential(g_e, g_i, net["pyr"].params)
    assert 1.0 < np.max(np.abs(u_rec[k] - u_target[k])) < 3.0


def test_short_protocol_error_falls():
    """10 repetitions of a 100-input pattern (η × 2.6 to learn within them): the error falls."""
    cfg = cfg_with("protocol.n_inputs=100", "protocol.repetitions=10", "protocol.lead_in=0",
                   "protocol.lead_out=0", "synapses.eta=3000", "analysis.final_repetitions=3")
    res = dp.run_seed(cfg, seed=1)
    err = res["error_mV"]
    assert err.shape == (10,) and np.all(np.isfinite(err))
    final, fall = dp.error_fall(err, 3)
    assert fall > 1.6 and err[5:].mean() < err[:5].mean()
    assert 20.0 < res["rate_hz"] < 100.0


@pytest.mark.parametrize("override,key", [
    ("protocol.pattern=0.25 ms", "protocol.pattern"),
    ("protocol.input_rate=20 kHz", "protocol.input_rate"),
    ("protocol.backend=cuda9", "protocol.backend"),
    ("protocol.seeds=0", "protocol.seeds"),
    ("teacher.g_exc_amplitude=200 nS", "teacher.g_exc_amplitude"),
    ("teacher.g_inh=5 mV", "teacher.g_inh"),
    ("synapses.weight=2000 pA", "synapses.weight"),
    ("synapses.w_max=-5 pA", "synapses.w_max"),
    ("synapses.tau_delta=0 ms", "synapses.tau_delta"),
    ("synapses.eta=-1", "synapses.eta"),
    ("synapses.delay=0.05 ms", "synapses.delay"),
    ("model.neuron.C=-1", "model.neuron.C"),
    ("model.neuron.tau_x=3", "model.neuron.tau_x"),
    ("analysis.final_repetitions=200", "analysis.final_repetitions"),
])
def test_bad_values_are_one_line_errors(override, key, capsys):
    assert main(["check", str(SCENARIO), "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}:") and "\n" not in err


# --------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_full_scenario_error_falls_twofold(tmp_path):
    out = tmp_path / "us"
    assert main(["run", str(SCENARIO), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert {"dendritic_prediction_error.png", "dendritic_prediction_traces.png"} <= {p.name for p in out.iterdir()}
    assert m["seeds"] == 3 and len(m["per_seed"]) == 3 and len(m["error_per_repetition_mV"]) == 100
    assert m["error_ratio_first_to_last"] >= 2.0


def _bench():
    spec = importlib.util.spec_from_file_location("bench_us", ROOT / "scripts" / "bench_urbanczik_vs_nest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_final_error_within_25_percent_of_nest():
    pytest.importorskip("nest")
    bench = _bench()
    cfg = bench.scenario_cfg()
    n_final = cfg["analysis"]["final_repetitions"]
    ours, theirs = [], []
    for s in range(3):
        seed = dp.rngmod.child_seed(1, f"seed{s}")
        ours.append(dp.run_seed(cfg, seed)["error_mV"])
        theirs.append(bench.run_nest(cfg, seed)["error_mV"])
    final_ours, _ = dp.error_fall(np.mean(ours, axis=0), n_final)
    final_nest, fall_nest = dp.error_fall(np.mean(theirs, axis=0), n_final)
    assert fall_nest > 1.5                                  # NEST learns on this protocol too
    assert abs(final_ours / final_nest - 1.0) <= 0.25
