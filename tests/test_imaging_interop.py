"""Imaging movie export (footprints, masks, TIFF, NWB TwoPhotonSeries), `read_dff_traces`, the
CASCADE noise level, OASIS spike inference and pynapple reading our NWB (issue 13 points 3-4).
Optional packages skip their test when absent (tifffile, oasis-deconv, pynapple)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from dendrite_sim.analysis import realism as R
from dendrite_sim.imaging import GroundTruth, ImagingParams, simulate_session
from dendrite_sim.imaging import movie as M
from dendrite_sim.imaging.dff import noise_level, noise_level_for_sd

FR = 30.0


@pytest.fixture(scope="module")
def session():
    """4 neurons imaged for 8 s on a 64 × 64 field: sparse spikes with one 8-spike episode per neuron."""
    rng = np.random.default_rng(3)
    trains = []
    for i in range(4):
        lone = np.sort(rng.uniform(0.0, 8.0, 3))
        episode = 1.0 + 1.6 * i + np.arange(8) * 0.02
        trains.append(np.sort(np.concatenate([lone, episode])))
    gt = GroundTruth.from_trains(trains, 8.0)
    imaging = {"frame_rate": f"{FR} Hz", "pixels": 64, "fov": "100 um", "apical_spread": "8 um",
               "dff_long_window": "8 s"}
    return simulate_session(gt, indicator="GCaMP6f", imaging=imaging, seed=5)


def _params(s):
    return ImagingParams.from_validated(s.imaging) if not isinstance(s.imaging, ImagingParams) else s.imaging


# --------------------------------------------------------------------------- movie
def test_footprints_and_masks_match_the_roi_table(session):
    rois = session.rois
    fps = M.footprints(rois, psf=1.0)
    assert len(fps) == rois.n_rois == 12
    for i, (pix, w, _) in enumerate(fps):
        assert w.sum() == pytest.approx(1.0) and np.all(w > 0)
        assert pix.min() >= 0 and pix.max() < 64 * 64
        # a Gaussian blur keeps the centroid of the (nucleus-dimmed) mask, up to truncation
        sel = rois.mask_roi == i
        x, y = rois.mask_x[sel], rois.mask_y[sel]
        val = np.ones(x.size)
        if rois.compartment[i] == "soma":
            d = np.hypot(x - rois.x[i], y - rois.y[i])
            val[d < d.max() / 3.0] = 0.4
        cx, cy = np.sum(val * x) / val.sum(), np.sum(val * y) / val.sum()
        interior = 4 <= x.min() and x.max() < 60 and 4 <= y.min() and y.max() < 60
        if interior:
            assert np.sum(w * (pix % 64)) == pytest.approx(cx, abs=0.02)
            assert np.sum(w * (pix // 64)) == pytest.approx(cy, abs=0.02)
    labels = M.label_images(rois)
    assert set(labels) == {"soma", "apical"}
    for comp, img in labels.items():
        assert img.shape == (64, 64) and img.dtype == np.int32
        ids = np.flatnonzero(rois.compartment == comp)
        for i in ids:   # every ROI's mask is labelled i + 1 (later ROIs may overlap earlier ones)
            sel = rois.mask_roi == i
            assert np.mean(img[rois.mask_y[sel], rois.mask_x[sel]] == i + 1) > 0.5
        assert set(np.unique(img)) <= {0, *(ids + 1).tolist()}


def test_movie_mean_is_the_forward_model_expectation(session):
    """Without read noise, the frame-averaged movie equals E[λ_p] = background·n̄ + Σ P_i a_i(p) r̄_i
    up to Poisson error (the module's equation), and shapes/dtypes are as documented."""
    from dataclasses import replace

    p = replace(_params(session), read_noise=0.0)
    chunks = list(M.render_movie(session, p, duration=2.0, seed=1, chunk=16))
    assert [k for k, _ in chunks] == [0, 16, 32, 48]
    movie = np.concatenate([c for _, c in chunks])
    assert movie.shape == (60, 64, 64) and movie.dtype == np.uint16
    again = np.concatenate([c for _, c in M.render_movie(session, p, duration=2.0, seed=1, chunk=60)])
    np.testing.assert_array_equal(movie, again)             # chunking and seed: deterministic
    # rebuild λ from the same pieces
    rois = session.rois
    fps = M.footprints(rois, 1.0)
    photons = np.array([p.optics(str(c)).photons for c in rois.compartment])
    r = 1.0 + np.asarray(session.traces["dff_true"][:60], float)
    lam_roi = np.zeros((60, 64 * 64))
    for i, (pix, w, _) in enumerate(fps):
        lam_roi[:, pix] += (photons[i] * r[:, i])[:, None] * w[None, :]
    resid = movie.reshape(60, -1).astype(float) - lam_roi            # background × neuropil + noise
    npil = 1.0 + p.neuropil_gain * (r - 1.0).mean(axis=1)
    bg = (resid / npil[:, None]).mean(axis=0)
    # the background field is positive and smooth (c.v. ≈ 0.3 before clipping)
    assert bg.min() > 0 and 0.1 < bg.std() / bg.mean() < 0.5
    total = movie.reshape(60, -1).sum(axis=1).astype(float)
    expected = lam_roi.sum(axis=1) + npil * bg.sum()
    np.testing.assert_allclose(total, expected, rtol=5 * np.sqrt(expected.max()) / expected.min())


def test_tiff_round_trip(session, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    p = _params(session)
    out = M.write_tiff(session, p, tmp_path / "movie.tif", duration=1.0, seed=2)
    assert out["n_frames"] == 30 and out["compartments"] == ["soma", "apical"]
    back = tifffile.imread(out["movie"])
    ref = np.concatenate([c for _, c in M.render_movie(session, p, 1.0, 2)])
    np.testing.assert_array_equal(back, ref)
    masks = tifffile.imread(out["masks"])
    labels = M.label_images(session.rois)
    np.testing.assert_array_equal(masks, np.stack([labels["soma"], labels["apical"]]))


def test_movie_nwb_two_photon_series_is_chunked_compressed_and_bounded(session, tmp_path):
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("pynwb")
    from dendrite_sim.io.nwb import write_movie_nwb

    p = _params(session)
    path = write_movie_nwb(session, p, tmp_path / "movie.nwb", duration=2.0, seed=4)
    with h5py.File(path, "r") as f:
        d = f["acquisition/TwoPhotonSeries/data"]
        assert d.shape == (60, 64, 64) and d.dtype == np.uint16
        assert d.chunks == (1, 64, 64) and d.compression == "gzip"
        ref = np.concatenate([c for _, c in M.render_movie(session, p, 2.0, 4)])
        np.testing.assert_array_equal(d[()], ref)
        assert float(f["acquisition/TwoPhotonSeries/starting_time"].attrs["rate"]) == pytest.approx(FR)
        ps = f["processing/ophys/ImageSegmentation/PlaneSegmentation"]
        comp = np.asarray([v.decode() if isinstance(v, bytes) else v for v in ps["compartment"][()]])
        assert (comp == "soma").sum() == 4 and (comp == "apical").sum() == 8
        assert np.array_equal(ps["cell_id"][()], session.rois.cell_id)
    # size bound: compressed below the raw uint16 movie
    assert path.stat().st_size < 60 * 64 * 64 * 2
    # the default movie is short: 5 s
    n_default = sum(c.shape[0] for _, c in M.render_movie(session, p, seed=0))
    assert n_default == int(round(5.0 * FR))


# --------------------------------------------------------------------------- ΔF/F readers
def test_read_dff_traces_on_our_nwb(session, tmp_path):
    pytest.importorskip("pynwb")
    from dendrite_sim.io.nwb import read_dff_traces, write_nwb

    path = write_nwb(session, tmp_path / "s.nwb")
    (entry,) = read_dff_traces(path)
    np.testing.assert_array_equal(entry["dff"], np.asarray(session.traces["dff"], np.float32))
    assert entry["frame_rate"] == pytest.approx(FR)
    np.testing.assert_array_equal(entry["compartment"], np.asarray(session.rois.compartment).astype(str))
    np.testing.assert_array_equal(entry["cell_id"], session.rois.cell_id)
    (forced,) = read_dff_traces(path, compartment="apical")
    assert set(forced["compartment"]) == {"apical"}


def test_pynapple_reads_units_and_roi_traces(session, tmp_path):
    nap = pytest.importorskip("pynapple")
    pytest.importorskip("pynwb")
    from dendrite_sim.io.nwb import write_nwb

    path = write_nwb(session, tmp_path / "s.nwb")
    data = nap.load_file(str(path))
    keys = list(data.keys())
    assert "units" in keys
    units = data["units"]
    assert len(units) == 4
    for i, (uid, ts) in enumerate(sorted(units.items())):
        assert uid == i
        t, _ = session.ground_truth.unit_spikes(i)
        np.testing.assert_allclose(ts.t, t, atol=1e-9)
    assert "DfOverF/RoiResponseSeries" in keys and "Fluorescence/RoiResponseSeries" in keys
    tsd = data["DfOverF/RoiResponseSeries"]
    assert tsd.shape == (session.n_frames, session.n_rois)
    np.testing.assert_allclose(tsd.t, session.frame_times, atol=1e-9)
    np.testing.assert_allclose(np.asarray(tsd.values), np.asarray(session.traces["dff"]), rtol=1e-6)


# --------------------------------------------------------------------------- CASCADE ν
def test_cascade_noise_level_closed_forms():
    """ν = 100 · median|x_{t+1} − x_t| / √f: an alternating ±a trace has |Δx| = 2a exactly; white
    noise of s.d. σ has median|Δx| = √2 · 0.6745 σ."""
    a = 0.03
    x = a * (-1.0) ** np.arange(1001)
    assert noise_level(x, 30.0) == pytest.approx(100 * 2 * a / np.sqrt(30.0), rel=1e-12)
    assert noise_level(x, 7.5) == pytest.approx(2 * noise_level(x, 30.0), rel=1e-12)
    rng = np.random.default_rng(0)
    sd = 0.1
    w = rng.normal(0.0, sd, 200_000)
    assert noise_level(w, 30.0) == pytest.approx(noise_level_for_sd(sd, 30.0), rel=0.01)
    assert noise_level_for_sd(sd, 30.0) == pytest.approx(100 * np.sqrt(2) * 0.6745 * sd / np.sqrt(30), rel=1e-4)
    # the realism summary reports the same ν per compartment (median over ROIs)
    d = np.stack([w[:20_000], 2 * w[20_000:40_000]], axis=1)
    st = R.summarise(R.session_statistics(d, 30.0, np.array(["soma", "soma"])))
    per = [noise_level(d[:, 0], 30.0), noise_level(d[:, 1], 30.0)]
    assert st["soma"]["nu"] == pytest.approx(np.median(per), rel=1e-12)


# --------------------------------------------------------------------------- OASIS
def test_oasis_recovers_spikes_of_a_known_ar1_trace():
    pytest.importorskip("oasis")
    from dendrite_sim.analysis.spike_inference import frame_counts, oasis_spikes

    rng = np.random.default_rng(2)
    n, tau = 3000, 0.76
    g = np.exp(-1.0 / (FR * tau))
    times = np.sort(rng.uniform(0, n / FR, 60))
    s = frame_counts(times, n, FR)
    c = lfilter([0.5], [1.0, -g], s)                  # c_t = g c_{t−1} + 0.5 s_t
    y = c + rng.normal(0.0, 0.05, n)
    est = oasis_spikes(y, FR, tau)
    assert est.shape == (n,) and est.min() >= 0
    assert np.corrcoef(est, s)[0, 1] > 0.8


def test_oasis_inference_correlation_on_a_session(session):
    pytest.importorskip("oasis")
    from dendrite_sim.analysis.spike_inference import inference_correlation

    dff = np.asarray(session.traces["dff_true"])
    out = inference_correlation(dff, FR, session.indicator.tau_decay, session.ground_truth,
                                session.rois.cell_id, session.rois.compartment)
    assert set(out) == {"soma", "apical"} and len(out["soma"]["r"]) == 4 and len(out["apical"]["r"]) == 8
    assert out["soma"]["median_r"] > 0.6       # noiseless somatic ΔF/F: spikes are recovered
