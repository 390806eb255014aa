"""Richards et al. 2019 Fig 5 experiment (``apical_reinforcement``) and the apical-change statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.analysis.apical_change import group_change, preferred_stimulus, sign_flip_test, trial_mean
from dendrite_sim.cli import main
from dendrite_sim.experiments.fig5_apical_reinforcement import input_pattern

SCEN = Path(__file__).resolve().parents[1] / "scenarios"


# ------------------------------------------------------------------ statistics
def test_preferred_stimulus_and_trial_means():
    stim = np.array([0, 1, 0, 1])
    r = np.array([[1.0, 0.0], [3.0, 2.0], [2.0, 1.0], [5.0, 0.0]])   # unit 0 prefers 1, unit 1 prefers 1
    r[:, 1] = [4.0, 0.0, 6.0, 1.0]                                     # now unit 1 prefers 0
    pref = preferred_stimulus(r, stim)
    assert pref.tolist() == [1, 0]
    assert trial_mean(r, stim, "preferred", pref).tolist() == [4.0, 5.0]
    assert trial_mean(r, stim, "reinforced", pref, reinforced=0).tolist() == [1.5, 5.0]
    assert trial_mean(r, stim, "other", pref, reinforced=0).tolist() == [4.0, 0.5]
    assert trial_mean(r, stim, "all", pref).tolist() == [2.75, 2.75]


def test_group_change_against_known_shifts():
    rng = np.random.default_rng(0)
    n = 400
    before = rng.normal(0.0, 1.0, n)
    group = np.arange(n) < n // 2
    shift = np.where(group, 0.5, -0.3)
    after = before + shift + rng.normal(0.0, 0.1, n)
    res = group_change(before, after, group, np.random.default_rng(1), n_boot=2000, n_perm=2000)
    d = after - before
    assert res["reinforced"]["mean_change"] == pytest.approx(d[group].mean())
    assert res["other"]["mean_change"] == pytest.approx(d[~group].mean())
    assert res["reinforced"]["ci_low"] < 0.5 < res["reinforced"]["ci_high"]
    assert res["other"]["ci_low"] < -0.3 < res["other"]["ci_high"]
    # CI half-width ≈ 1.96 s.d./√n of the changes (s.d. 0.1, n 200)
    assert res["reinforced"]["ci_high"] - res["reinforced"]["ci_low"] == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(200), rel=0.2)
    assert res["difference"] == pytest.approx(d[group].mean() - d[~group].mean())
    assert res["p_difference"] == pytest.approx(1 / 2001)
    assert res["reinforced"]["p_zero_change"] == pytest.approx(1 / 10001, abs=1e-3)
    assert res["reinforced"]["n"] == 200 and res["reinforced"]["mean_before"] == pytest.approx(before[group].mean())


def test_sign_flip_test_is_calibrated():
    rng = np.random.default_rng(3)
    ps = [sign_flip_test(rng.normal(0, 1, 30), rng, n_perm=500) for _ in range(200)]
    # under H0 the p-values are uniform: about 5 % below 0.05
    assert 0.01 <= np.mean(np.array(ps) < 0.05) <= 0.11
    assert sign_flip_test(np.full(30, 1.0), rng, n_perm=500) == pytest.approx(1 / 501)


def test_input_pattern_closed_form():
    x = input_pattern([0.0, 90.0], 4, 2.0)      # inputs prefer 0, 45, 90, 135°
    assert x[0].tolist() == pytest.approx([1.0, np.exp(-2.0), np.exp(-4.0), np.exp(-2.0)])
    assert x[1].tolist() == pytest.approx([np.exp(-4.0), np.exp(-2.0), 1.0, np.exp(-2.0)])


# ------------------------------------------------------------------ the experiment
def test_scenarios_check():
    assert main(["check", str(SCEN / "fig5_apical_reinforcement.toml")]) == 0
    assert main(["check", str(SCEN / "fig5_apical_reinforcement_short.toml")]) == 0


@pytest.mark.parametrize("setting, key", [("stimulus.orientations=[10.0, 50.0, 90.0]", "stimulus.orientations"),
                                          ("model.dt=5 ms", "model.dt"),
                                          ("protocol.n_seeds=100000000", "protocol.n_seeds"),
                                          ("model.hidden=200000", "model.hidden"),
                                          ("model.agrel_settle=200 ms", "model.agrel_settle"),
                                          ("model.agrel_hidden.eta=-1", "model.agrel_hidden.eta"),
                                          ("model.agrel_output.tau_e=0 ms", "model.agrel_output.tau_e"),
                                          ("model.agrel_output.bogus=1", "model.agrel_output.bogus")])
def test_bad_values_are_refused_at_check(setting, key, capsys):
    assert main(["check", str(SCEN / "fig5_apical_reinforcement_short.toml"), "--set", setting]) == 2
    assert key in capsys.readouterr().err


@pytest.mark.slow
def test_short_scenario_end_to_end(tmp_path):
    import nwbinspector
    from pynwb import NWBHDF5IO

    out = tmp_path / "run"
    assert main(["run", str(SCEN / "fig5_apical_reinforcement_short.toml"), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["models"]) == {"segregated_dendrites", "agrel", "agrel_spiking"}
    sd, ag, ags = m["models"]["segregated_dendrites"], m["models"]["agrel"], m["models"]["agrel_spiking"]
    assert sd["substrate"] == "spiking" and ag["substrate"] == "rate" and ags["substrate"] == "spiking"
    assert set(sd["measures"]) == {"v_apical_stimulus", "v_apical_reward", "plateau_stimulus", "dff_apical"}
    assert set(ag["measures"]) == {"apical_feedback", "tag", "dff_apical"}
    assert set(ags["measures"]) == {"v_apical_stimulus", "v_apical_feedback", "plateau_feedback", "dff_apical"}
    # every model learns the reinforcement: the spiking output fires more for the reinforced
    # stimulus than for the other after learning; both AGRELs choose go for it (measured, seed 1:
    # rate 0.999 / 0.079, spiking 0.920 / 0.023)
    assert sd["output"]["after"]["reinforced"] > sd["output"]["after"]["other"] + 50.0
    assert ag["output"]["after"]["reinforced"] > 0.9 > 0.5 > ag["output"]["after"]["other"]
    assert ags["output"]["after"]["reinforced"] > 0.75 > 0.25 > ags["output"]["after"]["other"]
    for model in (sd, ag, ags):
        for sel in model["measures"].values():
            for stats in sel.values():
                r = stats["reinforced"]
                assert r["n"] + stats["other"]["n"] == model["n_neurons"]
                assert r["ci_low"] <= r["mean_change"] <= r["ci_high"]
                assert r["mean_change"] == pytest.approx(r["mean_after"] - r["mean_before"])
                assert 0 < stats["p_difference"] <= 1
    assert (out / "apical_change.png").exists()
    npz = np.load(out / "apical_change.npz")
    b, a = npz["agrel__apical_feedback__before"], npz["agrel__apical_feedback__after"]
    g = npz["agrel__tuned_to_reinforced"]
    assert ag["measures"]["apical_feedback"]["reinforced"]["reinforced"]["mean_change"] == pytest.approx((a - b)[g].mean())
    assert m["files"]["nwb"] == [f"session-{r}-{s}.nwb" for r in ("segregated_dendrites", "agrel", "agrel_spiking")
                                 for s in ("before", "after")]
    for name in m["files"]["nwb"]:
        path = out / name
        msgs = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(path),
                                                 importance_threshold=nwbinspector.Importance.CRITICAL))
        assert msgs == [], [f"{x.check_function_name}: {x.message}" for x in msgs]
        with NWBHDF5IO(str(path), "r") as io:
            nwb = io.read()
            trials = nwb.trials
            assert {"stimulus", "orientation", "reinforced", "reward"} <= set(trials.colnames)
            assert len(trials) == 12
            reward = np.asarray(trials["reward"][:], bool)
            if "segregated" in name:            # the reinforced stimulus' trials are rewarded
                assert int(reward.sum()) == 6
            else:                               # AGREL: a correct choice (go for 45°, no-go else)
                assert 0 < int(reward.sum()) <= 12
            if "after" in name and "agrel" in name:
                assert reward.mean() > 0.75
            assert nwb.processing["ophys"]["DfOverF"]["RoiResponseSeries"].data.shape[1] == 40
