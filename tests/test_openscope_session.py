"""The OpenScope-style scenario: helpers against closed forms, and a reduced run through the CLI
(files, NWB, metrics, the unexpected-frame response of the apical ROIs, npz export)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.analysis import imaging_responses as A
from dendrite_sim.architectures import openscope_circuit as OC
from dendrite_sim.cli import main as cli_main
from dendrite_sim.core import rng as rngmod
from dendrite_sim.synapses import connectivity as C

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "openscope_like_session.toml"
N_PYR = 24
REDUCED = ["--set", f"network.n_pyr={N_PYR}", "--set", 'stimulus.session_duration="30 s"',
           "--set", "stimulus.n_sessions=2", "--set", 'imaging.dff_long_window="30 s"',
           "--set", "analysis.keep_sessions=true"]


def _table(frames, d=0.3):
    k = np.arange(len(frames))
    return {"start_time": k * d, "stop_time": (k + 1) * d, "frame": np.array(list(frames))}


# --------------------------------------------------------------------------- helpers
def test_frame_rates_counts_spikes_per_frame():
    table = _table("ABCDG")
    t_ms = np.array([10.0, 299.9, 300.0, 1000.0, 1499.0, 1500.0])   # the last is after the table
    i = np.array([0, 0, 1, 1, 0, 0])
    r = OC.frame_rates(t_ms, i, 2, table)
    expected = np.zeros((5, 2))
    expected[0, 0] = 2
    expected[1, 1] = 1
    expected[3, 1] = 1
    expected[4, 0] = 1
    np.testing.assert_allclose(r, expected / 0.3)


def test_covariance_update_is_the_covariance_of_each_pair():
    rng = np.random.default_rng(3)
    conn = C.fixed_probability(5, 7, 0.6, rng)
    x, y = rng.gamma(2.0, 3.0, (40, 5)), rng.gamma(2.0, 1.0, (40, 7))
    got = OC.covariance_update(conn, x, y)
    ref = [np.cov(x[:, j], y[:, i], bias=True)[0, 1] for j, i in zip(conn.pre_indices(), conn.indices)]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_consolidate_signs_and_bounds():
    """One feedback neuron and one interneuron co-active with pyramidal neuron 0 in the U frame:
    its feedback synapse grows by η·Cov, its inhibition grows in magnitude, the others stay."""
    table = _table("ABCU")
    pair = lambda n_pre, n_post: C.pairs(n_pre, n_post, [0, 0], [0, 1])
    circ = OC.Circuit(None, None, pair(1, 2), C.pairs(1, 1, [0], [0]), pair(1, 2))
    circ.conn_feedback_dend.weights[:] = 100.0
    circ.conn_inh_soma.weights[:] = -10.0
    u = 1000.0 * np.array([0.905, 0.915, 0.925])           # three spikes in frame 3 (U), ms
    rec = OC.DayRecord(1200.0, pyr_t=u, pyr_i=np.zeros(3, int), burst_t=u[1:2], burst_i=np.zeros(1, int),
                      feedback_t=u, feedback_i=np.zeros(3, int), inh_t=u[:2], inh_i=np.zeros(2, int),
                      v_dend=np.zeros((1, 2)), record_every=2.0, slow={}, timings={})
    pp = OC.PlasticityParams(True, eta_feedback=2.0, eta_inhibition=0.5, w_feedback_max=1e6,
                            w_inhibition_max=1e6)
    OC.consolidate(circ, rec, table, pp)
    # x: feedback rate per frame (3 spikes in frame 3), y: burst rate of neuron 0 (1 burst)
    x = np.array([0, 0, 0, 3 / 0.3])
    y = np.array([0, 0, 0, 1 / 0.3])
    cov_xy = np.mean(x * (y - y.mean()))
    np.testing.assert_allclose(circ.conn_feedback_dend.weights, [100.0 + 2.0 * cov_xy, 100.0])
    xi, yi = np.array([0, 0, 0, 2 / 0.3]), np.array([0, 0, 0, 3 / 0.3])
    np.testing.assert_allclose(circ.conn_inh_soma.weights, [-10.0 - 0.5 * np.mean(xi * (yi - yi.mean())), -10.0])
    # bounds: a huge rate clips at the limits
    pp = OC.PlasticityParams(True, 1e6, 1e6, w_feedback_max=500.0, w_inhibition_max=50.0)
    OC.consolidate(circ, rec, table, pp)
    np.testing.assert_allclose(circ.conn_feedback_dend.weights, [500.0, 100.0])
    np.testing.assert_allclose(circ.conn_inh_soma.weights, [-50.0, -10.0])


def test_plateau_intervals_keep_only_long_depolarisations():
    v = np.full((400, 2), -65.0)
    v[100:160, 0] = -20.0           # 60 samples × 2 ms = 120 ms: a plateau
    v[200:220, 0] = -20.0           # 40 ms: a burst's Ca spike, not a plateau
    v[350:, 1] = -30.0              # runs to the end: 100 ms
    got = OC.plateau_intervals(v, 2.0, -40.0, 100.0)
    assert got[0] == [(0.2, 0.32)]
    assert got[1] == [(0.7, 0.8)]


def test_frame_responses_and_usi_on_known_traces():
    fr = 30.0
    ft = np.arange(300) / fr                               # 10 s of frames
    onsets_d = np.array([1.0, 3.0, 5.0])
    onsets_u = np.array([7.0, 8.5])
    dff = np.zeros((ft.size, 2))
    dff[:, 1] = 0.25                                       # a constant offset cancels out
    for t, a in zip(np.r_[onsets_d, onsets_u], [0.1, 0.2, 0.3, 1.0, 1.4]):
        dff[(ft >= t) & (ft < t + 0.6), :] += a
    r = A.frame_responses(dff, ft, onsets_d, 0.6, 0.3)
    np.testing.assert_allclose(r, [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], atol=1e-12)
    frames = np.array(["D", "D", "D", "U", "U"])
    table = {"start_time": np.r_[onsets_d, onsets_u], "stop_time": np.r_[onsets_d, onsets_u] + 0.3,
             "frame": frames}
    s = A.response_summary(dff, ft, np.array(["soma", "apical"]), table, 0.6, 0.3)
    for comp in ("soma", "apical"):
        assert s[comp]["expected"] == pytest.approx(0.2)
        assert s[comp]["unexpected"] == pytest.approx(1.2)
        assert s[comp]["difference"] == pytest.approx(1.0)
        pooled = np.sqrt(0.5 * (np.var([0.1, 0.2, 0.3]) + np.var([1.0, 1.4])))
        assert s[comp]["usi"] == pytest.approx(1.0 / pooled)


def test_bad_timing_keys_are_one_line_errors(capsys):
    rc = cli_main(["check", str(SCENARIO), "--set", 'analysis.record_every="0.25 ms"'])
    assert rc == 2
    assert "error: analysis.record_every: expected a multiple of network.dt" in capsys.readouterr().err
    rc = cli_main(["check", str(SCENARIO), "--set", 'analysis.latent_rate="300 Hz"'])
    assert rc == 2
    assert "error: analysis.latent_rate:" in capsys.readouterr().err


# --------------------------------------------------------------------------- reduced run
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("openscope") / "run"
    assert cli_main(["run", str(SCENARIO), "--out", str(out), *REDUCED]) == 0
    return out


def test_run_writes_the_output_contract(run_dir):
    for name in ("config.toml", "provenance.json", "metrics.json", "dff_heatmap.png", "responses.png",
                 "example_traces.png", "session-day1.nwb", "session-day2.nwb"):
        assert (run_dir / name).is_file(), name
        assert (run_dir / name).stat().st_size > 0
    for day in ("session-day1", "session-day2"):
        assert (run_dir / day / "meta.json").is_file()
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*tmp*"))


def test_metrics_keys_and_values(run_dir):
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["experiment"] == "openscope_session" and m["seed"] == 1
    assert m["rois"] == {"soma": N_PYR, "apical": 2 * N_PYR, "total": 3 * N_PYR}
    assert m["frame_rate_hz"] == pytest.approx(30.08)
    assert m["n_sessions"] == 2 and m["session_duration_s"] == [30.0, 30.0]
    assert m["files"]["exported"] == ["session-day1.nwb", "session-day2.nwb"]
    # measured noise: the robust s.d. of ΔF/F lands near the requested baseline noise
    assert m["noise"]["soma"]["dff_sd"] == pytest.approx(0.075, rel=0.2)
    assert m["noise"]["apical"]["dff_sd"] == pytest.approx(0.24, rel=0.2)
    assert m["noise"]["soma"]["nu_pct_per_sqrt_hz"] > 0
    # calibrated (issue 13): tuft events after bursts stand above the dendritic noise but are no
    # longer many times the somatic ones (measured 0.71 vs 0.48 ΔF/F)
    ev = m["event_size"]
    assert ev["apical"]["n_events"] > 0 and ev["soma"]["n_events"] > 0
    assert 0 < ev["apical"]["dff"] < 3 * ev["soma"]["dff"]
    assert ev["apical"]["snr"] > 1 and ev["soma"]["snr"] > 1
    for day in ("day1", "day2"):
        s = m["sessions"][day]
        assert s["n_unexpected"] >= 2 and s["n_expected"] >= 8
        assert set(s["dff"]) == {"soma", "apical"}
        assert set(s["dff"]["apical"]) == {"expected", "unexpected", "difference", "expected_sem",
                                           "unexpected_sem", "usi"}
        # the feedback population signals U, through STF onto the dendrites
        assert s["feedback_rate_hz"]["unexpected"] > 3 * s["feedback_rate_hz"]["expected"]
        assert s["spikes"]["burst_rate_hz"]["unexpected"] > 2 * s["spikes"]["burst_rate_hz"]["expected"]
        # the model's apical ROIs respond more to U than to D frames
        ap = s["dff"]["apical"]
        assert ap["unexpected"] - ap["expected"] > ap["unexpected_sem"] + ap["expected_sem"]
        assert ap["usi"] > 0.5
    w1, w2 = m["sessions"]["day1"]["weights"], m["sessions"]["day2"]["weights"]
    # day 1: 450 pA times each tuft's log-normal factor (network.feedback_dend_cv = 1), averaged over synapses
    conn = C.fixed_probability(40, N_PYR, 0.5, rngmod.stream(1, "openscope/conn/feedback_dend"))
    sg = np.sqrt(np.log(2.0))
    g = np.exp(rngmod.stream(1, "openscope/feedback_dend_gain").normal(-0.5 * sg * sg, sg, N_PYR))
    assert w1["feedback_dend_pA"] == pytest.approx(450.0 * g[conn.indices].mean(), rel=1e-9)
    assert w1["inhibition_soma_pA"] == -20.0
    assert w2["feedback_dend_pA"] > w1["feedback_dend_pA"] and w2["inhibition_soma_pA"] < -20.0
    assert set(m["prediction"]) == {"soma_usi_change", "apical_usi_change", "soma_difference_change",
                                    "apical_difference_change", "opposite_directions"}


def test_reduced_run_is_realistic_where_30_s_suffice(run_dir, tmp_path, capsys):
    """`dendrite-sim realism` on the reduced run (24 neurons, 30 s per day) of the calibrated scenario:
    noise σ, event size, correlations and ν in the OpenScope bands for every session and compartment,
    and each soma coupled to its own tuft. The SNR needs the full 300-s days (a 30-s day holds a
    dozen U frames; measured 2.1-2.4 here, in band on the full scenario): here only above pure
    noise (2.06)."""
    from dendrite_sim.analysis import realism as R

    assert cli_main(["realism", str(run_dir), "--out", str(tmp_path), "--no-figure"]) == 0
    capsys.readouterr()
    doc = json.loads((tmp_path / "realism.json").read_text())
    assert [x["name"] for x in doc["sessions"]] == ["session-day1.nwb", "session-day2.nwb"]
    for sess in doc["sessions"]:
        for comp in ("soma", "apical"):
            v = sess["compartments"][comp]
            for key in ("noise_sd", "event_size", "mean_r", "frac_r_above_0.3", "nu"):
                assert v["in_band"][key], (sess["name"], comp, key, v[key], R.REFERENCE[comp][key])
            assert v["snr"] > R.PURE_NOISE_SNR
        ap = sess["compartments"]["apical"]
        assert ap["soma_tuft_r"] > 0.15 > 10 * abs(ap["mean_r"])     # measured 0.21-0.23 vs |r| < 0.005


def test_nwb_is_readable_and_complete(run_dir):
    pynwb = pytest.importorskip("pynwb")
    nwbinspector = pytest.importorskip("nwbinspector")
    m = json.loads((run_dir / "metrics.json").read_text())
    path = run_dir / "session-day1.nwb"
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        dff = f.processing["ophys"]["DfOverF"]["RoiResponseSeries"]
        assert dff.data.shape == (m["sessions"]["day1"]["n_frames"], 3 * N_PYR)
        assert dff.rate == pytest.approx(30.08)
        ps = f.processing["ophys"]["ImageSegmentation"]["PlaneSegmentation"]
        comp = np.asarray(ps["compartment"].data[:]).astype(str)
        assert (comp == "soma").sum() == N_PYR and (comp == "apical").sum() == 2 * N_PYR
        assert len(f.units.id) == N_PYR and f.units.resolution == pytest.approx(1e-4)
        frames = np.asarray(f.trials["frame"].data[:]).astype(str)
        assert (frames == "U").sum() == m["sessions"]["day1"]["n_unexpected"]
        truth = f.processing["ground_truth"]
        for name in ("v_apical", "burst_prob", "error"):
            ts = truth[name]
            assert ts.data.shape == (3000, N_PYR) and ts.rate == pytest.approx(100.0)
        assert truth["v_apical"].unit == "volts" and truth["error"].unit == "amperes"
        notes = json.loads(f.notes)
        assert notes["provenance"]["seed"] == 1 and notes["provenance"]["day"] == 1
    for day in ("session-day1.nwb", "session-day2.nwb"):      # day 2 holds the plateaus
        msgs = list(nwbinspector.inspect_nwbfile(
            nwbfile_path=str(run_dir / day), importance_threshold=nwbinspector.Importance.BEST_PRACTICE_VIOLATION))
        assert msgs == [], [x.message for x in msgs]


def test_plateau_rich_session_passes_nwbinspector(tmp_path):
    """Strong feedback → dendrite weights (the same on every tuft) give a 30 s day with many plateaus
    on most neurons;
    the NWB interval tables are in ascending start_time (nwbinspector finds nothing at
    BEST_PRACTICE_VIOLATION or above) and read back to the session's ground truth."""
    pynwb = pytest.importorskip("pynwb")
    nwbinspector = pytest.importorskip("nwbinspector")
    from dendrite_sim.imaging.session import SyntheticSession
    from dendrite_sim.io.nwb import read_nwb

    out = tmp_path / "plateaus"
    assert cli_main(["run", str(SCENARIO), "--out", str(out), "--set", f"network.n_pyr={N_PYR}",
                     "--set", 'stimulus.session_duration="30 s"', "--set", "stimulus.n_sessions=1",
                     "--set", 'imaging.dff_long_window="30 s"', "--set", 'network.w_feedback_dend="900 pA"',
                     "--set", "network.feedback_dend_cv=0", "--set", "analysis.keep_sessions=true"]) == 0
    path = out / "session-day1.nwb"
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        pl = f.intervals["plateaus"]
        start, units = np.asarray(pl["start_time"].data[:]), np.asarray(pl["unit_id"].data[:])
        assert len(start) > 20 and len(set(units.tolist())) > N_PYR // 2
        assert np.all(np.diff(start) >= 0)
        assert np.all(np.diff(np.asarray(f.trials["start_time"].data[:])) >= 0)
    msgs = list(nwbinspector.inspect_nwbfile(
        nwbfile_path=str(path), importance_threshold=nwbinspector.Importance.BEST_PRACTICE_VIOLATION))
    assert msgs == [], "\n".join(f"{m.importance.name} {m.check_function_name}: {m.message}" for m in msgs)
    back, ref = read_nwb(path).ground_truth, SyntheticSession.load(out / "session-day1").ground_truth
    for k in ("plateau_start", "plateau_stop", "plateau_unit"):
        np.testing.assert_array_equal(getattr(back, k), getattr(ref, k), err_msg=k)


def test_export_npz_through_the_cli(run_dir, capsys):
    from dendrite_sim.imaging.session import SyntheticSession
    from dendrite_sim.io.npz_export import read_npz

    assert cli_main(["export", str(run_dir), "--format", "npz"]) == 0
    for day in ("day1", "day2"):
        back = read_npz(run_dir / f"session-{day}.npz")
        ref = SyntheticSession.load(run_dir / f"session-{day}")
        np.testing.assert_array_equal(back.traces["dff"], ref.traces["dff"])
        np.testing.assert_array_equal(back.ground_truth.spike_times, ref.ground_truth.spike_times)
        assert set(back.ground_truth.latents) == {"v_apical", "burst_prob", "error"}
        assert back.provenance["day"] == int(day[-1])


@pytest.mark.slow
def test_full_scenario_predicts_opposite_changes_and_is_realistic(tmp_path, capsys):
    """The documented scenario (seed 1): over three days the apical USI grows and the somatic USI
    falls (measured: apical 0.69 → 0.93 → 1.06, soma 0.75 → 0.08 → 0.05), and `dendrite-sim
    realism` puts every statistic of every session and compartment in its OpenScope band; only the
    NWB files stay (about 72 MB each)."""
    out = tmp_path / "full"
    assert cli_main(["run", str(SCENARIO), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["rois"]["total"] == 360
    p = m["prediction"]
    assert p["apical_usi_change"] > 0.2 and p["soma_usi_change"] < -0.4 and p["opposite_directions"]
    days = [m["sessions"][d]["dff"]["apical"]["usi"] for d in ("day1", "day2", "day3")]
    assert days[0] < days[1] < days[2]
    assert not list(out.glob("session-day*/")) and len(list(out.glob("session-day*.nwb"))) == 3
    assert sum(f.stat().st_size for f in out.iterdir()) < 300e6
    assert cli_main(["realism", str(out), "--strict", "--no-figure"]) == 0
    capsys.readouterr()
    doc = json.loads((out / "realism.json").read_text())
    for sess in doc["sessions"]:
        for comp in ("soma", "apical"):
            v = sess["compartments"][comp]
            assert all(v["in_band"].values()), (sess["name"], comp, v)
        assert sess["compartments"]["apical"]["soma_tuft_r"] > 0.2
