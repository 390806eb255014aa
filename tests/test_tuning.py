"""Tuning analysis against closed forms: cosine-tuned units, their preferred orientation, OSI,
slope, change between sessions; bootstrap and permutation statistics; reading an NWB file."""

import numpy as np
import pytest

from dendrite_sim.analysis import tuning as T


def cos_tuned(theta_deg, a, b, pref_deg, period=180.0):
    return a + b * np.cos(2 * np.pi * (theta_deg - pref_deg) / period)


def test_cosine_tuning_closed_forms():
    theta = np.repeat(np.arange(0, 180, 15.0), 3)                   # 12 orientations × 3 trials
    a, b, pref = np.array([2.0, 1.0]), np.array([1.0, 0.5]), np.array([30.0, 105.0])
    r = np.stack([cos_tuned(theta, a[u], b[u], pref[u]) for u in range(2)], axis=1)
    tc = T.tuning_curves(r, theta + 180.0)                          # values wrap modulo 180°
    assert list(tc.values) == list(np.arange(0, 180, 15.0)) and set(tc.count) == {3}
    np.testing.assert_allclose(tc.sem, 0.0, atol=1e-12)
    np.testing.assert_allclose(T.preferred(tc), pref, atol=1e-9)
    # global OSI of a + b cos(2(θ − θ0)) sampled uniformly: b / (2a)
    np.testing.assert_allclose(T.selectivity(tc), b / (2 * a), rtol=1e-9)
    # peak index: R_null half a period away
    np.testing.assert_allclose(T.selectivity(tc, "peak"), [(3 - 1) / (3 + 1), (1.5 - 0.5) / (1.5 + 0.5)],
                               rtol=2e-3)
    # slope per degree: −b (2π/180) sin(2π(θ − θ0)/180) at θ = 45°
    expected = -b * (2 * np.pi / 180) * np.sin(2 * np.pi * (45.0 - pref) / 180)
    np.testing.assert_allclose(T.slope_at(tc, 45.0), expected, rtol=2e-3)


def test_direction_selectivity_with_period_360():
    theta = np.arange(0, 360, 30.0)
    r = cos_tuned(theta, 3.0, 1.2, 210.0, period=360.0)
    tc = T.tuning_curves(r, theta, period=360.0)
    assert T.preferred(tc)[0] == pytest.approx(210.0)
    assert T.selectivity(tc)[0] == pytest.approx(1.2 / 6.0)


def test_tuning_change_between_sessions():
    theta = np.arange(0, 180, 10.0)
    before = T.tuning_curves(np.stack([cos_tuned(theta, 2, 1, 60), cos_tuned(theta, 2, 1, 170)], 1), theta)
    after = T.tuning_curves(np.stack([cos_tuned(theta, 2, 2, 70), cos_tuned(theta, 3, 1, 10)], 1), theta)
    ch = T.tuning_change(before, after, 45.0)
    np.testing.assert_allclose(ch["delta_preferred"], [10.0, 20.0], atol=1e-9)    # 170 → 10 wraps
    np.testing.assert_allclose(ch["delta_selectivity"], [2 / 4 - 1 / 4, 1 / 6 - 1 / 4], rtol=1e-9)
    np.testing.assert_allclose(ch["delta_mean"], [0.0, 1.0], atol=1e-12)
    k = 2 * np.pi / 180
    s0 = -1 * k * np.sin(k * (45 - np.array([60, 170])))
    s1 = -np.array([2, 1]) * k * np.sin(k * (45 - np.array([70, 10])))
    np.testing.assert_allclose(ch["delta_slope"], s1 - s0, rtol=5e-3, atol=1e-4)
    with pytest.raises(ValueError, match="same stimulus values"):
        T.tuning_change(before, T.tuning_curves(np.ones((3, 2)), [0, 45, 90]), 45.0)


def test_bootstrap_and_permutation_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=400)
    m, lo, hi = T.bootstrap_ci(x, rng, n_boot=4000)
    assert lo < m < hi and m == pytest.approx(x.mean())
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)                # the normal-theory 95 % interval
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
    # equal groups: p roughly uniform — not small; shifted groups: p small
    a, b = rng.normal(0, 1, 60), rng.normal(0, 1, 60)
    assert T.permutation_test(a, b, rng, n_perm=2000) > 0.05
    assert T.permutation_test(a + 1.0, b, rng, n_perm=2000) < 0.002
    assert np.isnan(T.bootstrap_ci([np.nan], rng)[0])


def test_responses_from_a_third_party_shaped_nwb_file(tmp_path):
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries

    nwb = NWBFile(session_description="tuning test", identifier="t1",
                  session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    dev = nwb.create_device("scope")
    plane = nwb.create_imaging_plane(
        name="plane", optical_channel=OpticalChannel(name="ch", description="green", emission_lambda=510.0),
        description="imaging", device=dev, excitation_lambda=920.0, imaging_rate=10.0, indicator="GCaMP6f",
        location="V1")
    seg = ImageSegmentation()
    ps = seg.create_plane_segmentation("rois", plane, "ps")
    for _ in range(2):
        ps.add_roi(image_mask=np.ones((4, 4)))
    ophys = nwb.create_processing_module("ophys", "optical physiology")
    ophys.add(seg)
    rate, n = 10.0, 400
    t = np.arange(n) / rate
    oris = np.tile([0.0, 45.0, 90.0, 135.0], 5)
    starts = 1.0 + 2.0 * np.arange(oris.size)
    dff = np.zeros((n, 2))
    for s, o in zip(starts, oris):
        on = (t >= s) & (t < s + 0.5)
        dff[on, 0] += cos_tuned(o, 1.0, 1.0, 45.0)
        dff[on, 1] += cos_tuned(o, 1.0, 0.5, 135.0)
    region = ps.create_roi_table_region("all", region=[0, 1])
    ophys.add(DfOverF(RoiResponseSeries(name="RoiResponseSeries", data=dff, rois=region, unit="n.a.",
                                        rate=rate, starting_time=0.0)))
    nwb.add_trial_column("orientation", "grating orientation (deg)")
    for s, o in zip(starts, oris):
        nwb.add_trial(start_time=s, stop_time=s + 0.5, orientation=o)
    path = tmp_path / "third_party.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    resp, stim = T.nwb_responses(path, "orientation", window=0.5, baseline=0.5)
    assert resp.shape == (20, 2)
    tc = T.tuning_curves(resp, stim)
    np.testing.assert_allclose(T.preferred(tc), [45.0, 135.0], atol=1e-6)
    with pytest.raises(ValueError, match="trials table with column 'direction'"):
        T.nwb_responses(path, "direction")
