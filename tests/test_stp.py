"""Tsodyks–Markram short-term plasticity: kernels vs closed forms, numpy vs Numba, Brian2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.synapses import stp

PRESET_NAMES = list(stp.PRESETS)
VARIANT_NAMES = list(stp.VARIANTS)
CASES = [(name, variant) for name in PRESET_NAMES for variant in VARIANT_NAMES]

# Engine-side compilation, as the spiking engine does it: njit(kernel).
relax_nb = njit(error_model="numpy")(stp.stp_relax)
spike_nb = njit(error_model="numpy")(stp.stp_spike)
rest_nb = njit(error_model="numpy")(stp.stp_rest_state)


@njit(error_model="numpy")
def _drive_scalar(times, U, tau_D, tau_F, f, variant):
    """One synapse, event-driven, scalars through the njit-compiled kernels."""
    n = times.shape[0]
    release = np.empty(n)
    u_after = np.empty(n)
    u, x = rest_nb(U, variant)
    for i in range(n):
        if i > 0:
            u, x = relax_nb(u, x, times[i] - times[i - 1], U, tau_D, tau_F, variant)
        r, u, x = spike_nb(u, x, U, f, variant)
        release[i] = r
        u_after[i] = u
    return release, u_after


def _drive_numpy(times, params: stp.STPParams):
    """All synapses at once (arrays of per-synapse parameters), numpy kernels."""
    n_syn = np.size(params.U)
    u, x = stp.initial_state(n_syn, params)
    out = np.empty((len(times), n_syn))
    for i, t in enumerate(times):
        if i > 0:
            u, x = stp.stp_relax(u, x, t - times[i - 1], params.U, params.tau_D, params.tau_F, params.variant)
        out[i], u, x = stp.stp_spike(u, x, params.U, params.f, params.variant)
    return out


TRAIN_20HZ = np.arange(40) * 50.0  # ms, regular 20 Hz


def test_regular_20hz_every_preset_and_variant_matches_closed_form():
    """Acceptance: 20 Hz amplitudes == closed-form recursion to 1e-9, all presets × variants,
    numpy on per-synapse parameter arrays and njit on scalars."""
    params = [stp.preset(name, variant=variant) for name, variant in CASES]
    numpy_amps = _drive_numpy(TRAIN_20HZ, stp.stack_params(params))   # shape (spikes, 12)
    for j, p in enumerate(params):
        closed = stp.stp_regular_train(p, 20.0, len(TRAIN_20HZ))
        recursion = stp.stp_train_amplitudes(p, TRAIN_20HZ)
        nb_amps, _ = _drive_scalar(TRAIN_20HZ, p.U, p.tau_D, p.tau_F, p.f, p.variant)
        np.testing.assert_allclose(recursion, closed, rtol=0, atol=1e-9, err_msg=str(CASES[j]))
        np.testing.assert_allclose(numpy_amps[:, j], closed, rtol=0, atol=1e-9, err_msg=str(CASES[j]))
        np.testing.assert_allclose(nb_amps, closed, rtol=0, atol=1e-9, err_msg=str(CASES[j]))
        np.testing.assert_allclose(nb_amps, numpy_amps[:, j], rtol=0, atol=1e-13)


def test_hand_computed_first_amplitudes():
    """First two amplitudes at 20 Hz worked out by hand from the equations."""
    e = math.exp
    # depressing (τ_F = 0): A1 = U; A2 = U (1 − U e^{−50/800})
    amps = stp.stp_train_amplitudes(stp.preset("depressing"), [0.0, 50.0])
    assert amps == pytest.approx([0.5, 0.5 * (1 - 0.5 * e(-50 / 800))], abs=1e-15)
    # facilitating (tsodyks2): u2 = U + (1 − U) U e^{−50/530}; x2 = 1 − U e^{−50/130}
    U = 0.03
    u2 = U + (1 - U) * U * e(-50 / 530)
    x2 = 1 - U * e(-50 / 130)
    amps = stp.stp_train_amplitudes(stp.preset("facilitating"), [0.0, 50.0])
    assert amps == pytest.approx([U, u2 * x2], abs=1e-15)
    # payeur STD: release U·1 first; then x = 1 − U, u = U + f(1 − U), both relax for 50 ms
    U, f = 0.9, 0.1
    u2 = U + (U + f * (1 - U) - U) * e(-50 / 1000)
    x2 = 1 - U * e(-50 / 20)
    amps = stp.stp_train_amplitudes(stp.preset("payeur_std"), [0.0, 50.0])
    assert amps == pytest.approx([U, u2 * x2], abs=1e-15)


@pytest.mark.parametrize("name,variant", CASES)
def test_steady_state_closed_form(name, variant):
    p = stp.preset(name, variant=variant)
    amps = stp.stp_regular_train(p, 20.0, 600)
    release, u_inf, x_inf = stp.stp_steady_state(p, 20.0)
    assert amps[-1] == pytest.approx(release, abs=1e-9)
    assert release == pytest.approx(u_inf * x_inf, abs=1e-15)


def test_steady_state_published_depression_formula():
    """τ_F = 0: A_∞ = U(1 − e_D)/(1 − (1 − U)e_D) (Tsodyks & Markram 1997); at 20 Hz ≈ 0.0571."""
    e_D = math.exp(-50.0 / 800.0)
    expected = 0.5 * (1 - e_D) / (1 - 0.5 * e_D)
    assert stp.stp_steady_state(stp.preset("depressing"), 20.0)[0] == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(0.0571259, abs=1e-7)


def test_depression_vs_facilitation_shape():
    """The depressing preset's amplitudes fall monotonically, the facilitating ones rise 5×,
    Payeur STD/STF likewise (20 Hz)."""
    dep = stp.stp_regular_train(stp.preset("depressing"), 20.0, 20)
    fac = stp.stp_regular_train(stp.preset("facilitating"), 20.0, 20)
    assert np.all(np.diff(dep) < 0) and dep[-1] / dep[0] < 0.15
    assert np.all(np.diff(fac) > 0) and fac[-1] / fac[0] > 5.0
    std = stp.stp_regular_train(stp.preset("payeur_std"), 20.0, 20)
    stf = stp.stp_regular_train(stp.preset("payeur_stf"), 20.0, 20)
    assert std[-1] < std[0] and stf[-1] / stf[0] > 5.0


def _poisson_train(rng, rate_hz, duration_ms, dt=0.1):
    n_steps = int(duration_ms / dt)
    steps = np.flatnonzero(rng.random(n_steps) < rate_hz * dt / 1000.0)
    return steps * dt


def test_tsodyks2_and_mongillo_release_identically():
    """Same U, τ: the two orders give the same release for any train; their u differ by the
    map u_mongillo = U + (1 − U)·u_tsodyks2 (checked after every spike). Payeur with f = U is
    Mongillo exactly."""
    rng = np.random.default_rng(3)
    times = _poisson_train(rng, 30.0, 3000.0)
    assert len(times) > 50
    p_t = stp.preset("facilitating", variant="tsodyks2")
    p_m = stp.preset("facilitating", variant="mongillo")
    rel_t, u_t = _drive_scalar(times, p_t.U, p_t.tau_D, p_t.tau_F, p_t.f, p_t.variant)
    rel_m, u_m = _drive_scalar(times, p_m.U, p_m.tau_D, p_m.tau_F, p_m.f, p_m.variant)
    np.testing.assert_allclose(rel_m, rel_t, rtol=0, atol=1e-14)
    np.testing.assert_allclose(u_m, p_t.U + (1 - p_t.U) * u_t, rtol=0, atol=1e-14)
    p_p = stp.preset("facilitating", variant="payeur", f=p_t.U)
    np.testing.assert_allclose(stp.stp_train_amplitudes(p_p, times), rel_m, rtol=0, atol=1e-14)
    # with f ≠ U the Payeur order differs
    p_p2 = stp.preset("facilitating", variant="payeur", f=0.1)
    assert np.max(np.abs(stp.stp_train_amplitudes(p_p2, times) - rel_m)) > 1e-2


def test_no_facilitation_memory_when_tau_F_is_zero():
    p = stp.preset("depressing")
    rng = np.random.default_rng(0)
    times = _poisson_train(rng, 40.0, 2000.0)
    _, u_after = _drive_scalar(times, p.U, p.tau_D, p.tau_F, p.f, p.variant)
    np.testing.assert_array_equal(u_after, np.full(len(times), p.U))


def test_per_presynaptic_state_time_stepped_poisson():
    """Engine-like use: shared parameters, (u, x, t_last) per presynaptic neuron, a 0.1 ms step
    loop over Poisson trains, vectorised over the neurons that spiked; each neuron's amplitudes
    equal its own event recursion. Never-spiked neurons start at rest via elapsed = inf."""
    rng = np.random.default_rng(7)
    n_pre, dt, n_steps = 6, 0.1, 20000
    spikes = rng.random((n_steps, n_pre)) < 25.0 * dt / 1000.0
    for variant in VARIANT_NAMES:
        p = stp.preset("payeur_stf", variant=variant)
        u, x = stp.initial_state(n_pre, p)
        t_last = np.full(n_pre, -np.inf)
        got = [[] for _ in range(n_pre)]
        for step in range(n_steps):
            idx = np.flatnonzero(spikes[step])
            if idx.size == 0:
                continue
            t = step * dt
            uu, xx = stp.stp_relax(u[idx], x[idx], t - t_last[idx], p.U, p.tau_D, p.tau_F, p.variant)
            rel, u[idx], x[idx] = stp.stp_spike(uu, xx, p.U, p.f, p.variant)
            t_last[idx] = t
            for k, r in zip(idx, rel):
                got[k].append(r)
        for k in range(n_pre):
            times = np.flatnonzero(spikes[:, k]) * dt
            ref = stp.stp_train_amplitudes(p, times)
            np.testing.assert_allclose(got[k], ref, rtol=0, atol=1e-12)


def test_initial_state_rest_values():
    u, x = stp.initial_state(3, stp.preset("depressing"))
    np.testing.assert_array_equal(u, 0.0)
    np.testing.assert_array_equal(x, 1.0)
    u, x = stp.initial_state(3, stp.preset("payeur_std"))
    np.testing.assert_array_equal(u, 0.9)
    # elapsed = inf (never spiked) relaxes to rest in every variant
    for variant, code in stp.VARIANTS.items():
        uu, xx = stp.stp_relax(0.7, 0.2, np.inf, 0.3, 100.0, 200.0, code)
        assert float(xx) == 1.0
        assert float(uu) == (0.0 if variant == "tsodyks2" else 0.3)


fractions = st.floats(0.0, 1.0)
taus = st.one_of(st.just(0.0), st.floats(1.0, 2000.0))


@settings(max_examples=150, deadline=None)
@given(u=fractions, x=fractions, elapsed=st.floats(0.0, 5000.0), U=st.floats(0.001, 1.0), f=fractions,
       tau_D=taus, tau_F=taus, variant=st.sampled_from([0, 1, 2]))
def test_numpy_equals_numba_and_stays_in_bounds(u, x, elapsed, U, f, tau_D, tau_F, variant):
    uu_np, xx_np = stp.stp_relax(np.array([u]), np.array([x]), np.array([elapsed]), U, tau_D, tau_F, variant)
    uu_nb, xx_nb = relax_nb(u, x, elapsed, U, tau_D, tau_F, variant)
    assert abs(uu_np[0] - uu_nb) <= 1e-14 and abs(xx_np[0] - xx_nb) <= 1e-14
    r_np, u_np, x_np = stp.stp_spike(uu_np, xx_np, U, f, variant)
    r_nb, u_nb, x_nb = spike_nb(uu_nb, xx_nb, U, f, variant)
    assert abs(r_np[0] - r_nb) <= 1e-14 and abs(u_np[0] - u_nb) <= 1e-14 and abs(x_np[0] - x_nb) <= 1e-14
    assert 0.0 <= r_nb <= xx_nb + 1e-15
    assert -1e-15 <= x_nb <= 1.0 + 1e-15 and -1e-15 <= u_nb <= 1.0 + 1e-15
    assert abs(r_nb + x_nb - xx_nb) <= 1e-14   # resource conservation at the spike


def test_preset_and_parameter_errors():
    with pytest.raises(ScenarioError) as e:
        stp.preset("depresing")
    assert e.value.key == "stp.preset" and "depressing" in e.value.expected
    with pytest.raises(ScenarioError) as e:
        stp.preset("depressing", tauD=100.0)
    assert e.value.key == "stp.tauD" and "tau_D" in e.value.expected
    with pytest.raises(ScenarioError) as e:
        stp.preset("depressing", variant="markram")
    assert e.value.key == "stp.variant"
    with pytest.raises(ScenarioError) as e:
        stp.preset("facilitating", key="net.exc.stp", U=1.5)
    assert e.value.key == "net.exc.stp.U"
    with pytest.raises(ScenarioError) as e:
        stp.preset("facilitating", tau_F="5 mV")
    assert e.value.key == "stp.tau_F"
    with pytest.raises(ScenarioError):
        stp.preset("facilitating", tau_D=-1.0)
    p = stp.preset("facilitating", tau_F="1 s", variant="payeur", f=0.2)
    assert p == stp.STPParams(U=0.03, tau_D=130.0, tau_F=1000.0, f=0.2, variant=stp.PAYEUR)


@pytest.mark.brian2
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_brian2_same_equations():
    """Brian2 2.9 (numpy target, event-driven exact updates) on the tsodyks2 and the Mongillo
    equations of Brian's STP example: release at every spike of a regular and an irregular train."""
    brian2 = pytest.importorskip("brian2")
    from brian2 import (
        Network,
        NeuronGroup,
        SpikeGeneratorGroup,
        StateMonitor,
        Synapses,
        defaultclock,
        ms,
        prefs,
        start_scope,
    )

    previous_target = prefs.codegen.target
    prefs.codegen.target = "numpy"
    brian2.BrianLogger.suppress_hierarchy("brian2.codegen.generators.base")  # order-of-execution note

    def brian_release(times_ms, p, form):
        start_scope()
        defaultclock.dt = 0.1 * ms
        src = SpikeGeneratorGroup(1, np.zeros(len(times_ms), int), np.asarray(times_ms) * ms)
        tgt = NeuronGroup(1, "rel : 1")
        if form == "mongillo":   # Brian's example: i += w*u*x; x *= (1-u); u += U*(1-u)
            model = "du/dt = (U_ - u)/tauF : 1 (event-driven)\ndx/dt = (1 - x)/tauD : 1 (event-driven)"
            on_pre = "rel_post = u*x\nx *= (1 - u)\nu += U_*(1 - u)"
        else:                    # NEST tsodyks2
            model = "du/dt = -u/tauF : 1 (event-driven)\ndx/dt = (1 - x)/tauD : 1 (event-driven)"
            on_pre = "u += U_*(1 - u)\nrel_post = u*x\nx -= rel_post"
        syn = Synapses(src, tgt, model=model, on_pre=on_pre,
                       namespace=dict(U_=p.U, tauD=p.tau_D * ms, tauF=p.tau_F * ms))
        syn.connect()
        syn.x = 1.0
        syn.u = p.U if form == "mongillo" else 0.0
        mon = StateMonitor(tgt, "rel", record=0, when="end")
        Network(src, tgt, syn, mon).run((times_ms[-1] + 1.0) * ms)
        return mon.rel[0][np.round(np.asarray(times_ms) / 0.1).astype(int)]

    rng = np.random.default_rng(11)
    irregular = np.round(_poisson_train(rng, 30.0, 1500.0), 1)
    try:
        for form in ("tsodyks2", "mongillo"):
            p = stp.preset("facilitating", variant=form, tau_D=200.0, U=0.2)
            for times in (TRAIN_20HZ[:20], irregular):
                ours, _ = _drive_scalar(times, p.U, p.tau_D, p.tau_F, p.f, p.variant)
                np.testing.assert_allclose(ours, brian_release(times, p, form), rtol=1e-9, atol=1e-12)
    finally:
        prefs.codegen.target = previous_target
