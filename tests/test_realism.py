"""Realism statistics (issue 13): computed as defined, on traces with known noise and events,
and the `dendrite-sim realism` report on a third-party-shaped NWB file."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from scipy.stats import norm

from dendrite_sim.analysis import realism as R
from dendrite_sim.cli import main as cli_main
from dendrite_sim.imaging.dff import noise_level_for_sd

Z95 = norm.ppf(0.95)


def test_pure_noise_snr_is_2_07_and_sigma_is_recovered():
    rng = np.random.default_rng(0)
    for sd in (0.05, 0.2):
        x = rng.normal(0.0, sd, 400_000)
        s = R.roi_statistics(x)
        assert s["noise_sd"] == pytest.approx(sd, rel=0.01)
        assert s["threshold"] == pytest.approx(Z95 * sd, rel=0.02)
        # E[x | x > z95 σ] / σ = φ(z95)/0.05 = 2.0627
        assert norm.pdf(Z95) / 0.05 == pytest.approx(R.PURE_NOISE_SNR, abs=1e-4)
        assert s["snr"] == pytest.approx(R.PURE_NOISE_SNR, abs=0.02)
        assert s["event_size"] == pytest.approx(R.PURE_NOISE_SNR * sd, rel=0.01)


def test_events_above_the_noise_raise_snr_and_event_size_as_predicted():
    """Noise σ = 0.1 plus events of height A = 1 on a fraction q = 2 % of the frames. The events lie
    above the median, so σ (from the lower half) stays 0.1 up to the median's shift; above θ are
    all event frames and the noise tail: mean(S) = (q A + (1 − q) τ(θ)) / (q + (1 − q) P(x > θ))."""
    rng = np.random.default_rng(1)
    n, sd, q, amp = 500_000, 0.1, 0.02, 1.0
    x = rng.normal(0.0, sd, n)
    on = rng.random(n) < q
    x[on] += amp
    s = R.roi_statistics(x)
    m = s["median"]
    assert m == pytest.approx(sd * norm.ppf(0.5 / (1 - q)), abs=0.002)        # median of the noise part
    assert s["noise_sd"] == pytest.approx(sd, rel=0.03)
    theta = s["threshold"]
    p_tail = norm.sf(theta / sd)
    tail_sum = sd * norm.pdf(theta / sd)                                           # ∫_θ x φ
    predicted = (q * amp + (1 - q) * tail_sum) / (q + (1 - q) * p_tail)
    assert s["snr"] == pytest.approx(predicted / s["noise_sd"], rel=0.02)
    assert s["event_size"] == pytest.approx(predicted - m, rel=0.02)
    assert s["snr"] > 3.5                                                           # far above pure noise


def test_pairwise_correlations_skip_same_cell_pairs_and_recover_rho():
    rng = np.random.default_rng(2)
    n_t, rho = 50_000, 0.25
    common = rng.normal(size=n_t)
    cells = np.array([0, 1, 2, 2])              # ROIs 2 and 3 belong to one cell
    x = np.sqrt(rho) * common[:, None] + np.sqrt(1 - rho) * rng.normal(size=(n_t, 4))
    r = R.pairwise_correlations(x, cells)
    assert r.size == 5                           # 6 pairs minus the same-cell pair
    np.testing.assert_allclose(r, rho, atol=0.02)
    comp = np.array(["soma", "soma", "soma", "apical"])
    t = R.soma_tuft_correlations(x, comp, cells)
    assert t.size == 1 and t[0] == pytest.approx(rho, abs=0.02)


def test_session_statistics_and_bands():
    rng = np.random.default_rng(3)
    fr = 30.0
    dff = np.concatenate([rng.normal(0, 0.07, (20_000, 6)), rng.normal(0, 0.2, (20_000, 6))], axis=1)
    comp = np.array(["soma"] * 6 + ["apical"] * 6)
    cells = np.concatenate([np.arange(6), np.arange(6)])
    summary = R.summarise(R.session_statistics(dff, fr, comp, cells))
    assert summary["soma"]["nu"] == pytest.approx(noise_level_for_sd(0.07, fr), rel=0.03)
    assert summary["apical"]["noise_sd"] == pytest.approx(0.2, rel=0.02)
    assert summary["soma"]["n_pairs"] == 15 and summary["apical"]["n_pairs"] == 15
    assert summary["soma"]["in_band"]["noise_sd"] is True
    assert summary["soma"]["in_band"]["snr"] is False            # pure noise: 2.06 < 2.6
    assert summary["apical"]["in_band"]["snr"] is False          # 2.06 < 2.3
    assert summary["apical"]["in_band"]["mean_r"] is True
    assert R.in_band(0.5, (None, 0.1)) is False and R.in_band(None, (0, 1)) is None


def _third_party_nwb(path, dff, rate, plane_description, timestamps=False):
    """A file shaped like the Allen/OpenScope ones: no compartment or cell_id column, one plane."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel

    nwb = NWBFile(session_description="third-party test session", identifier="abc",
                  session_start_time=datetime(2019, 1, 1, tzinfo=timezone.utc))
    dev = nwb.create_device(name="2p")
    plane = nwb.create_imaging_plane(name="ImagingPlane", optical_channel=OpticalChannel(
        name="ch", description="green", emission_lambda=520.0), description=plane_description, device=dev,
        excitation_lambda=920.0, imaging_rate=rate, indicator="GCaMP6f", location="VISp")
    ophys = nwb.create_processing_module("ophys", "ophys")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(name="PlaneSegmentation", description="rois", imaging_plane=plane)
    for k in range(dff.shape[1]):
        ps.add_roi(image_mask=np.eye(8)[k % 8:k % 8 + 1].repeat(8, 0))
    d = DfOverF(name="DfOverF")
    ophys.add(d)
    region = ps.create_roi_table_region(region=list(range(dff.shape[1])), description="all")
    timing = {"timestamps": np.arange(dff.shape[0]) / rate} if timestamps else {"rate": rate}
    d.create_roi_response_series(name="RoiResponseSeries", data=dff, rois=region, unit="n.a.", **timing)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_realism_report_reads_a_third_party_nwb(tmp_path, capsys):
    rng = np.random.default_rng(4)
    rate = 30.08
    dff = rng.normal(0, 0.2, (6000, 5)).astype(np.float32)
    dff[rng.random(dff.shape) < 0.01] += 1.5
    f = tmp_path / "sub-408021_ses-758519303_obj-raw_behavior+image+ophys.nwb"
    _third_party_nwb(f, dff, rate, "Layer 2/3 distal apical dendrites plane", timestamps=True)
    out = tmp_path / "report"
    assert cli_main(["realism", str(f), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "apical" in text and "reference (OpenScope)" in text
    doc = json.loads((out / "realism.json").read_text())
    (sess,) = doc["sessions"]
    assert sess["frame_rate_hz"] == pytest.approx(rate, rel=1e-6)
    assert list(sess["compartments"]) == ["apical"]                 # from the plane's description
    got = sess["compartments"]["apical"]
    direct = [R.roi_statistics(dff[:, k].astype(float)) for k in range(5)]
    assert got["snr"] == pytest.approx(np.median([d["snr"] for d in direct]), rel=1e-6)
    assert got["noise_sd"] == pytest.approx(np.median([d["noise_sd"] for d in direct]), rel=1e-6)
    assert got["n_pairs"] == 10                                    # one cell per ROI
    assert (out / "realism.png").stat().st_size > 10_000
    # --compartment overrides, and an unlabelled plane is "roi"
    g = tmp_path / "plain.nwb"
    _third_party_nwb(g, dff, rate, "a plane")
    assert cli_main(["realism", str(g), "--out", str(out), "--no-figure"]) == 0
    assert list(json.loads((out / "realism.json").read_text())["sessions"][0]["compartments"]) == ["roi"]
    assert cli_main(["realism", str(g), "--out", str(out), "--no-figure", "--compartment", "soma"]) == 0
    assert list(json.loads((out / "realism.json").read_text())["sessions"][0]["compartments"]) == ["soma"]


def test_realism_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["realism", str(tmp_path / "missing.nwb")]) == 2
    assert "expected an existing NWB file or run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["realism", str(tmp_path / "empty")]) == 2
    bad = tmp_path / "bad.nwb"
    bad.write_text("not hdf5")
    assert cli_main(["realism", str(bad)]) == 2
    assert "error:" in capsys.readouterr().err
