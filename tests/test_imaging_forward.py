"""Calcium-imaging forward model: amplitudes, kinetics, saturation, noise, ΔF/F, compartments."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.imaging import calcium as ca
from dendrite_sim.imaging import dff as dffmod
from dendrite_sim.imaging import indicators as ind_mod
from dendrite_sim.imaging.config import ImagingParams
from dendrite_sim.imaging.forward import image_population
from dendrite_sim.imaging.rois import make_rois

PRESETS = ("GCaMP6f", "GCaMP6s", "jGCaMP7f")
QUIET = dict(noise_sd_soma=None, noise_sd_apical=None, photons_soma=1e12, photons_apical=1e12,
             read_noise=0.0, drift_sd=0.0, bleach_fraction=0.0, neuropil_gain=0.0)


def hill_dff(c, c0, F_max, K_d, n):
    """Independent statement of the NAOMi readout: b = 1 + F_max/(1 + (K_d/c)^n), ΔF/F₀ = b/b₀ − 1."""
    b = lambda x: 1.0 + F_max / (1.0 + (K_d / x) ** n)
    return b(c) / b(c0) - 1.0


# ----------------------------------------------------------------------------- data table
def test_preset_table_holds_the_published_constants():
    f, s, j = (ind_mod.preset(n) for n in PRESETS)
    assert (f.dff_max, f.k_d, f.hill_n, f.tau_decay, f.dff_1ap) == (25.2, 290.0, 2.7, 0.76, 0.034)
    assert (s.dff_max, s.k_d, s.hill_n, s.tau_decay, s.dff_1ap) == (27.2, 147.0, 2.45, 1.87, 0.113)
    assert (j.dff_max, j.k_d, j.hill_n) == (30.2, 174.0, 2.3)
    for row in ind_mod.table():
        assert row["source_hill"] and row["source_kinetics"] and row["source_dff_1ap"]


def test_indicator_from_scenario_table_and_errors():
    ind = ind_mod.resolve({"name": "GCaMP6s", "tau_decay": "1.2 s", "dff_1ap": 0.2})
    assert ind.tau_decay == pytest.approx(1.2) and ind.dff_1ap == 0.2 and ind.k_d == 147.0
    with pytest.raises(ScenarioError) as e:
        ind_mod.resolve("GCaMP9x")
    assert e.value.key == "indicator.name"
    with pytest.raises(ScenarioError) as e:
        ind_mod.resolve({"name": "GCaMP6f", "tau_decay": "0.5"})
    assert e.value.key == "indicator.tau_decay"
    with pytest.raises(ScenarioError) as e:
        ind_mod.resolve({"name": "GCaMP6f", "tau_rise": "2 s"})
    assert e.value.key == "indicator.tau_rise"


def test_imaging_section_units_and_errors():
    p = ImagingParams.from_section({"frame_rate": "30.08 Hz", "drift_tau": "2 min",
                                    "resting_calcium": "0.05 uM", "soma_depth": "0.2 mm"})
    assert (p.frame_rate, p.drift_tau, p.resting_calcium, p.soma_depth) == \
        pytest.approx((30.08, 120.0, 50.0, 200.0))
    assert ImagingParams.from_section(None) == ImagingParams()
    with pytest.raises(ScenarioError) as e:
        ImagingParams.from_section({"frame_rate": "30"})
    assert e.value.key == "imaging.frame_rate"
    with pytest.raises(ScenarioError) as e:
        ImagingParams.from_section({"noise_sd_soma": -0.1})
    assert e.value.key == "imaging.noise_sd_soma"
    with pytest.raises(ScenarioError) as e:
        ImagingParams.from_section({"frame_rat": "30 Hz"})
    assert "did you mean 'frame_rate'" in e.value.expected


# ----------------------------------------------------------------------------- kernel
def test_transient_sum_equals_closed_form_kernels_and_box_integrals():
    rng = np.random.default_rng(3)
    tr, td = 0.05, 0.76
    t_pk, peak = ca.kernel_peak(tr, td)
    kern = lambda t: np.where(t >= 0, np.exp(-np.maximum(t, 0) / td) - np.exp(-np.maximum(t, 0) / tr), 0) / peak
    ev_t, ev_a = rng.uniform(-1, 5, 12), rng.uniform(0.5, 3, 12)
    box = np.array([[0.7, 0.9], [2.0, 2.45], [-0.3, 0.1]])
    rate = np.array([10.0, 4.0, 7.0])
    t0, dt, n = 0.0125, 1 / 240, 1300
    got = ca.transient_sum(t0, dt, n, tr, td, ev_t, ev_a, box[:, 0], box[:, 1], rate)
    t = t0 + dt * np.arange(n)
    want = (kern(t[:, None] - ev_t[None, :]) * ev_a).sum(1)
    u = np.linspace(0, 1, 4001)
    for (s, e), r in zip(box, rate):            # ∫_s^e κ(t − u) du by fine trapezoids
        uu = s + (e - s) * u
        want += r * np.trapezoid(kern(t[:, None] - uu[None, :]), uu, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert kern(np.array([t_pk])) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- acceptance
@pytest.mark.parametrize("name", PRESETS)
def test_single_spike_has_the_preset_amplitude_and_decay(name):
    ind = ind_mod.preset(name)
    c0 = 50.0
    dc = ind_mod.calcium_per_spike(ind, c0)
    dt = 1e-4
    c = c0 + ca.transient_sum(0.0, dt, 80000, ind.tau_rise, ind.tau_decay, [1.0], [dc])
    dff = hill_dff(c, c0, ind.dff_max, ind.k_d, ind.hill_n)
    assert dff.max() == pytest.approx(ind.dff_1ap, rel=1e-5)
    t = np.arange(c.size) * dt - 1.0
    tail = t > 12 * ind.tau_rise                 # rise term < e^{-12}: pure decay of [Ca]
    slope = np.polyfit(t[tail], np.log(c[tail] - c0), 1)[0]
    assert -1.0 / slope == pytest.approx(ind.tau_decay, rel=1e-4)
    # the ΔF/F₀ readout decays with the same time constant to within the Hill curvature
    w = tail & (dff < 0.5 * dff.max()) & (dff > 0.05 * dff.max())
    slope = np.polyfit(t[w], np.log(dff[w]), 1)[0]
    assert -1.0 / slope == pytest.approx(ind.tau_decay, rel=0.06)


def test_single_spike_through_the_pipeline_at_30_hz():
    ind = ind_mod.preset("GCaMP6f")
    gt = ca.GroundTruth.from_trains([[5.0]], duration=20.0)
    p = ImagingParams(**QUIET, n_apical=1)
    rois = make_rois(1, np.random.default_rng(0), p.geometry())
    tr = image_population(gt, rois, p, ind, seed=1)
    soma = tr["dff_true"][:, 0]
    assert soma.max() == pytest.approx(0.034, rel=0.02)          # frame integration: ≤ 2 % loss
    assert np.argmax(soma) / 30.0 - 5.0 == pytest.approx(ca.kernel_peak(0.05, 0.76)[0], abs=1 / 30)
    assert tr["dff"][:, 0].max() == pytest.approx(soma.max(), rel=0.02)   # Allen ΔF/F, no noise
    assert tr["dff_true"][:, 1].max() == pytest.approx(
        hill_dff(50 + 0.15 * rois.gain[1] * ind_mod.calcium_per_spike(ind, 50), 50, 25.2, 290, 2.7), rel=0.03)


def test_saturation_bends_large_events_as_the_hill_curve_says():
    ind = ind_mod.preset("GCaMP6f")
    c0 = 50.0
    dc = ind_mod.calcium_per_spike(ind, c0)
    peaks = []
    for k in (1, 5, 20, 100, 1000):
        c = c0 + ca.transient_sum(0.0, 1e-4, 30000, ind.tau_rise, ind.tau_decay, np.full(k, 1.0),
                                  np.full(k, dc))
        peak = ind_mod.dff_from_calcium(c, c0, ind).max()
        assert peak == pytest.approx(hill_dff(c0 + k * dc, c0, 25.2, 290.0, 2.7), rel=1e-5)
        peaks.append(peak)
    sat = (1 + 25.2) / (1 + 25.2 / (1 + (290 / 50) ** 2.7)) - 1
    assert peaks[-1] < sat and peaks[-1] > 0.95 * sat       # 1000 spikes: pinned at saturation
    assert peaks[4] / peaks[3] < 2.0                        # 10× more calcium, < 2× more signal


@pytest.mark.parametrize("target", [0.05, 0.2])
def test_measured_noise_equals_the_requested_level(target):
    ind = ind_mod.preset("GCaMP6f")
    gt = ca.GroundTruth.from_trains([[]] * 8, duration=300.0)
    p = ImagingParams(noise_sd_soma=target, noise_sd_apical=2 * target, drift_sd=0.0,
                      bleach_fraction=0.0, n_apical=1)
    rois = make_rois(8, np.random.default_rng(0), p.geometry())
    tr = image_population(gt, rois, p, ind, seed=7)
    sd_soma = tr["dff"][:, :8].std(axis=0)
    sd_apical = tr["dff"][:, 8:].std(axis=0)
    assert sd_soma.mean() == pytest.approx(target, rel=0.02)
    assert sd_apical.mean() == pytest.approx(2 * target, rel=0.02)
    nu = np.mean([dffmod.noise_level(tr["dff"][:, i], 30.0) for i in range(8)])
    assert nu == pytest.approx(dffmod.noise_level_for_sd(target, 30.0), rel=0.03)


def test_noise_from_photon_count_when_no_target():
    from dendrite_sim.imaging.optics import baseline_noise
    ind = ind_mod.preset("GCaMP6f")
    gt = ca.GroundTruth.from_trains([[]] * 6, duration=200.0)
    p = ImagingParams(noise_sd_soma=None, photons_soma=400.0, read_noise=20.0, drift_sd=0.0,
                      bleach_fraction=0.0, n_apical=0)
    tr = image_population(gt, make_rois(6, np.random.default_rng(1), p.geometry()), p, ind, seed=2)
    want = baseline_noise(p.optics("soma"))
    assert want == pytest.approx(np.sqrt(400 * (1 + .35 + .49 * .5 / 4) + 400 * (1 + .49 / 4)) / 400)
    assert tr["dff"].std(axis=0).mean() == pytest.approx(want, rel=0.02)


def test_lone_somatic_spike_is_far_smaller_than_an_apical_plateau_event():
    ind = ind_mod.preset("GCaMP6f")
    # neuron 0: one lone spike; neuron 1: a 2-spike burst; neuron 2: a 100-ms plateau
    gt = ca.GroundTruth.from_trains([[10.0], [10.0, 10.008], []], duration=30.0,
                                    plateaus=[[], [], [(10.0, 10.1)]])
    p = ImagingParams(**{**QUIET, "branch_cv": 0.0}, n_apical=1)
    rois = make_rois(3, np.random.default_rng(0), p.geometry())
    tr = image_population(gt, rois, p, ind, seed=0)
    peak = tr["dff_true"].max(axis=0)
    lone_soma, lone_apical, burst_apical, plateau_apical = peak[0], peak[3], peak[4], peak[5]
    assert lone_soma == pytest.approx(0.034, rel=0.02)
    assert lone_apical < 0.2 * lone_soma                   # an attenuated bAP: little distal signal
    assert plateau_apical > 10 * lone_soma
    assert burst_apical > 20 * lone_soma                   # BAC burst: ΔF/F₀ ≈ 1 in the tuft
    assert burst_apical == pytest.approx(0.95, rel=0.2)
    # at the default noise levels the lone spike is buried, the tuft events are not
    noisy = image_population(gt, rois, ImagingParams(n_apical=1), ind, seed=0)["dff"]
    assert lone_soma < 0.5 * 0.08 and plateau_apical > 5 * 0.15
    assert noisy[:, 5].max() > 0.8 * plateau_apical


# ----------------------------------------------------------------------------- ΔF/F, bursts
def test_allen_dff_removes_a_slow_baseline_and_keeps_event_sizes():
    fr, n = 30.0, 30 * 900
    t = np.arange(n) / fr
    base = 500.0 * (1 - 0.1 * (1 - np.exp(-t / 600))) * (1 + 0.03 * np.sin(2 * np.pi * t / 400))
    events = np.zeros(n)
    ev = np.arange(20, 900, 37.0)
    for t_ev in ev:                                       # sparse 0.5 ΔF/F events
        k = t >= t_ev - 1e-9
        events[k] += 0.5 * np.exp(-(t[k] - t_ev) / 0.76)
    dff, f0 = dffmod.allen_dff(base * (1 + events), fr)
    inner = slice(3000, n - 3000)
    np.testing.assert_allclose(f0[inner], base[inner], rtol=0.012)
    peaks = [dff[int(round(t_ev * fr))] for t_ev in ev[(ev > 120) & (ev < 780)]]
    assert np.mean(peaks) == pytest.approx(0.5, rel=0.03)
    x = base * (1 + events)
    med = dffmod.windowed_median(x, 5401)
    ext = np.concatenate([x[2699::-1], x, x[:-2701:-1]])          # ends reflected
    for k in (0, 1234, 13500, n - 1):
        assert med[k] == np.median(ext[k:k + 5401])


def test_noise_std_ignores_transients():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, 20000)
    x[::500] += 3.0
    assert dffmod.noise_std(x) == pytest.approx(0.1, rel=0.05)


def test_burst_classification_follows_the_16_ms_rule():
    t = np.array([0.100, 0.110, 0.120, 0.300, 0.500, 0.515, 0.540])
    flags, event = ca.classify_bursts(t)
    assert flags.tolist() == [True, True, True, False, True, True, False]
    assert event.tolist() == [0, 0, 0, 1, 2, 2, 3]
    onset, size = ca.burst_events(t, flags)
    assert onset.tolist() == [0.100, 0.500] and size.tolist() == [3, 2]


def test_same_seed_same_traces_and_ground_truth_validation():
    gt = ca.GroundTruth.from_trains([[1.0, 2.0], [3.0]], duration=10.0)
    p = ImagingParams(n_apical=1)
    rois = make_rois(2, np.random.default_rng(0), p.geometry())
    ind = ind_mod.preset("GCaMP6f")
    a = image_population(gt, rois, p, ind, seed=5)["dff"]
    b = image_population(gt, rois, p, ind, seed=5)["dff"]
    c = image_population(gt, rois, p, ind, seed=6)["dff"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ScenarioError):
        ca.GroundTruth(2, 10.0, [1.0], [5], [False])
    with pytest.raises(ScenarioError):
        ca.GroundTruth(2, 10.0, [], [], [], latents={"v_apical": np.zeros((10, 3))})
