"""Triplet / pair STDP: the rule's hooks (numpy and Numba, over CSR rows / CSC columns) vs
hand-computed trace sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.synapses import stdp
from dendrite_sim.synapses.plasticity import csr_gather

DT = 0.1  # ms
PRESET_NAMES = list(stdp.PRESETS)

# Engine-side compilation, as the spiking engine does it: njit(kernel).
decay_nb = njit(error_model="numpy")(stdp.trace_decay)
bump_nb = njit(error_model="numpy")(stdp.trace_spike)
on_pre_hook = njit(error_model="numpy")(stdp.TripletSTDP.on_pre)
on_post_hook = njit(error_model="numpy")(stdp.TripletSTDP.on_post)
depress_nb = njit(error_model="numpy")(stdp.stdp_depress)
potentiate_nb = njit(error_model="numpy")(stdp.stdp_potentiate)


@njit(error_model="numpy")
def on_pre_nb(pre, indptr, indices, w, o1, r2, p):
    """The rule's on_pre hook over the CSR row of presynaptic neuron ``pre``."""
    for k in range(indptr[pre], indptr[pre + 1]):
        w[k] = on_pre_hook(w[k], o1[indices[k]], r2[pre], p)


@njit(error_model="numpy")
def on_post_nb(post, col_ptr, col_syn, syn_pre, w, r1, o2, p):
    """The rule's on_post hook over the CSC column of postsynaptic neuron ``post``."""
    for c in range(col_ptr[post], col_ptr[post + 1]):
        k = col_syn[c]
        w[k] = on_post_hook(w[k], r1[syn_pre[k]], o2[post], p)


def on_pre_many(pres, indptr, indices, w, o1, r2, p):
    """numpy: on_pre for all (distinct) presynaptic neurons ``pres`` at once."""
    ks, owner = csr_gather(indptr, pres)
    w[ks] = stdp.TripletSTDP.on_pre(w[ks], o1[indices[ks]], r2[owner], p)


def on_post_many(posts, col_ptr, col_syn, syn_pre, w, r1, o2, p):
    js, owner = csr_gather(col_ptr, posts)
    ks = col_syn[js]
    w[ks] = stdp.TripletSTDP.on_post(w[ks], r1[syn_pre[ks]], o2[owner], p)


@njit(error_model="numpy")
def _run_stepped(pre_steps, post_steps, n_steps, n_pre, n_post, indptr, indices, col_ptr, col_syn,
                 syn_pre, w, p):
    """Time-stepped (dt = DT) network loop: decay, on-pre rows, on-post columns, then bumps.
    ``pre_steps``/``post_steps``: (step, neuron) pairs sorted by step."""
    r1 = np.zeros(n_pre)
    r2 = np.zeros(n_pre)
    o1 = np.zeros(n_post)
    o2 = np.zeros(n_post)
    ip = 0
    jp = 0
    for s in range(n_steps):
        for i in range(n_pre):
            r1[i] = decay_nb(r1[i], DT, p.tau_plus)
            r2[i] = decay_nb(r2[i], DT, p.tau_x)
        for j in range(n_post):
            o1[j] = decay_nb(o1[j], DT, p.tau_minus)
            o2[j] = decay_nb(o2[j], DT, p.tau_y)
        i0 = ip
        while ip < pre_steps.shape[0] and pre_steps[ip, 0] == s:
            on_pre_nb(pre_steps[ip, 1], indptr, indices, w, o1, r2, p)
            ip += 1
        j0 = jp
        while jp < post_steps.shape[0] and post_steps[jp, 0] == s:
            on_post_nb(post_steps[jp, 1], col_ptr, col_syn, syn_pre, w, r1, o2, p)
            jp += 1
        for q in range(i0, ip):
            i = pre_steps[q, 1]
            r1[i] = bump_nb(r1[i], p.nearest)
            r2[i] = bump_nb(r2[i], p.nearest)
        for q in range(j0, jp):
            j = post_steps[q, 1]
            o1[j] = bump_nb(o1[j], p.nearest)
            o2[j] = bump_nb(o2[j], p.nearest)
    return w


def _run_numpy_events(pre_times, post_times, n_pre, n_post, csr, csc, w, p):
    """numpy backend, event-driven: exact decay between event times, vectorised over spikers."""
    indptr, indices = csr
    col_ptr, col_syn, syn_pre = csc
    r1, r2, o1, o2 = (np.zeros(n_pre), np.zeros(n_pre), np.zeros(n_post), np.zeros(n_post))
    events = sorted({t for ts in pre_times for t in ts} | {t for ts in post_times for t in ts})
    t_prev = events[0]
    for t in events:
        r1, r2 = stdp.pre_traces_decay(r1, r2, t - t_prev, p)
        o1, o2 = stdp.post_traces_decay(o1, o2, t - t_prev, p)
        pres = np.array([i for i in range(n_pre) if t in pre_times[i]], dtype=np.int64)
        posts = np.array([j for j in range(n_post) if t in post_times[j]], dtype=np.int64)
        on_pre_many(pres, indptr, indices, w, o1, r2, p)
        on_post_many(posts, col_ptr, col_syn, syn_pre, w, r1, o2, p)
        r1[pres], r2[pres] = stdp.trace_spike(r1[pres], p.nearest), stdp.trace_spike(r2[pres], p.nearest)
        o1[posts], o2[posts] = stdp.trace_spike(o1[posts], p.nearest), stdp.trace_spike(o2[posts], p.nearest)
        t_prev = t
    return w


def _csc_view(indptr, indices, n_post):
    syn_pre = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    col_syn = np.argsort(indices, kind="stable")
    col_ptr = np.concatenate([[0], np.cumsum(np.bincount(indices, minlength=n_post))])
    return col_ptr, col_syn, syn_pre


def _single_synapse(pre_times, post_times, p, w0):
    """Both engine paths on one synapse; returns (Δw time-stepped numba, Δw numpy events)."""
    indptr, indices = np.array([0, 1]), np.array([0])
    csc = _csc_view(indptr, indices, 1)
    pre_steps = np.array([[round(t / DT), 0] for t in pre_times], dtype=np.int64)
    post_steps = np.array([[round(t / DT), 0] for t in post_times], dtype=np.int64)
    n_steps = int(max(pre_steps[-1, 0], post_steps[-1, 0])) + 1
    w_nb = _run_stepped(pre_steps, post_steps, n_steps, 1, 1, indptr, indices, *csc, np.array([w0]), p)
    w_np = _run_numpy_events([set(pre_times)], [set(post_times)], 1, 1, (indptr, indices), csc,
                             np.array([w0]), p)
    return w_nb[0] - w0, w_np[0] - w0


def _protocol_times(delta, rate_hz, n_pairs):
    period = 1000.0 / rate_hz
    base = np.arange(n_pairs) * period + (abs(delta) if delta < 0 else 0.0)
    return list(base), list(base + delta)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_single_pair_equals_A2_exponential(name):
    p = stdp.preset(name, w_min=-1.0, w_max=2.0)
    for delta in (2.0, 5.0, 10.0, 20.0, 50.0, -2.0, -5.0, -10.0, -20.0, -50.0):
        pre, post = [100.0], [100.0 + delta]
        expected = (p.A2_plus * math.exp(-delta / p.tau_plus) if delta > 0
                    else -p.A2_minus * math.exp(delta / p.tau_minus))
        assert stdp.pair_weight_change(delta, p) == expected
        ref = stdp.stdp_weight_change(pre, post, p, w0=0.5)
        dw_nb, dw_np = _single_synapse(pre, post, p, 0.5)
        for got in (ref, dw_nb, dw_np):
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), (name, delta)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_sjostrom_protocol_kernels_equal_analytic(name):
    """60 pairings at ρ ∈ {1, 10, 20, 40, 50} Hz, Δt = ±10 ms: both kernel paths == hand sums."""
    p = stdp.preset(name, w_min=-10.0, w_max=10.0)
    for rate in (1.0, 10.0, 20.0, 40.0, 50.0):
        for delta in (10.0, -10.0):
            expected = stdp.pairing_protocol_weight_change(p, delta, rate, 60)
            pre, post = _protocol_times(delta, rate, 60)
            ref = stdp.stdp_weight_change(pre, post, p, w0=0.0)
            dw_nb, dw_np = _single_synapse(pre, post, p, 0.0)
            for got in (ref, dw_nb, dw_np):
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-13), (name, rate, delta)


def test_sjostrom_protocol_hand_numbers_low_and_high_rate():
    """Independent spot checks of the hand sums. Pair rule at 1 Hz (no overlap: each pairing is
    isolated): 60·A₂⁺e^{−10/20}. Visual all-to-all minimal, Δt = −10 ms at 0.1 Hz (no overlap,
    triplet terms vanish): −60·A₂⁻e^{−10/33.7}."""
    pair = stdp.preset("pair", w_min=-10.0, w_max=10.0)
    assert stdp.pairing_protocol_weight_change(pair, 10.0, 1.0, 60) == pytest.approx(
        60 * 5e-3 * math.exp(-0.5) - 60 * 5.25e-3 * math.exp(-990 / 20) * (1 - 1 / 60), rel=1e-12)
    minimal = stdp.preset("visual_all_to_all_minimal", w_min=-10.0, w_max=10.0)
    assert stdp.pairing_protocol_weight_change(minimal, -10.0, 0.1, 60) == pytest.approx(
        -60 * 7.1e-3 * math.exp(-10 / 33.7), rel=1e-12)


@pytest.mark.parametrize("name", ["visual_all_to_all", "visual_all_to_all_minimal", "visual_nearest",
                                  "visual_nearest_minimal"])
def test_sjostrom_frequency_dependence(name):
    """Published parameters reproduce Sjöström et al. 2001 qualitatively (60 pairings, kernels
    driven time-stepped): post-before-pre (Δt = −10 ms) gives LTD at 0.1 Hz and LTP at 50 Hz;
    pre-before-post (+10 ms) gives no change at 0.1 Hz and LTP growing with frequency."""
    p = stdp.preset(name, w_min=-10.0, w_max=10.0)

    def dw(delta, rate):
        return _single_synapse(*_protocol_times(delta, rate, 60), p, 0.0)[0]

    assert dw(-10.0, 0.1) < -0.2
    assert dw(-10.0, 50.0) > 0.5
    assert abs(dw(10.0, 0.1)) < 1e-6
    ltp = [dw(10.0, rate) for rate in (10.0, 20.0, 40.0, 50.0)]
    assert ltp[0] > 0.05 and np.all(np.diff(ltp) > 0)


def test_pair_rule_has_no_frequency_dependent_ltp():
    """Contrast: the classic pair rule keeps Δt = −10 ms depressing at every frequency."""
    p = stdp.preset("pair", w_min=-10.0, w_max=10.0)
    for rate in (0.1, 10.0, 20.0, 40.0, 50.0):
        assert stdp.pairing_protocol_weight_change(p, -10.0, rate, 60) < 0.0


@pytest.mark.parametrize("name", ["visual_all_to_all", "visual_nearest"])
def test_triplet_by_hand_post_post_pre_post(name):
    """Posts at 0 and 5 ms, pre at 10 ms, post at 20 ms, worked out from the trace equations.
    All-to-all sums both earlier posts; nearest-spike keeps only the latest (trace := 1)."""
    p = stdp.preset(name, w_min=-1.0, w_max=2.0)
    e = math.exp
    if p.nearest:
        o1_at_pre = e(-5 / p.tau_minus)
        o2_before_last_post = e(-15 / p.tau_y)
    else:
        o1_at_pre = e(-10 / p.tau_minus) + e(-5 / p.tau_minus)
        o2_before_last_post = e(-20 / p.tau_y) + e(-15 / p.tau_y)
    expected = (-o1_at_pre * p.A2_minus                                     # r₂(10 − ε) = 0
                + e(-10 / p.tau_plus) * (p.A2_plus + p.A3_plus * o2_before_last_post))
    pre, post = [10.0], [0.0, 5.0, 20.0]
    ref = stdp.stdp_weight_change(pre, post, p, w0=0.5)
    dw_nb, dw_np = _single_synapse(pre, post, p, 0.5)
    for got in (ref, dw_nb, dw_np):
        assert got == pytest.approx(expected, rel=1e-9)


def test_network_csr_csc_with_active_bounds():
    """Random sparse projection, Poisson trains, bounds that clip: every synapse of both kernel
    paths equals the single-synapse reference with the same pre/post trains."""
    rng = np.random.default_rng(5)
    n_pre, n_post, duration = 7, 5, 2000.0
    conn = rng.random((n_pre, n_post)) < 0.5
    indptr = np.concatenate([[0], np.cumsum(conn.sum(axis=1))])
    indices = np.concatenate([np.flatnonzero(row) for row in conn])
    csc = _csc_view(indptr, indices, n_post)
    n_steps = int(duration / DT)

    def trains(n, rate):
        raster = rng.random((n_steps, n)) < rate * DT / 1000.0
        steps, neurons = np.nonzero(raster)
        return np.stack([steps, neurons], axis=1).astype(np.int64), raster

    pre_steps, pre_raster = trains(n_pre, 30.0)
    post_steps, post_raster = trains(n_post, 30.0)
    pre_times = [np.flatnonzero(pre_raster[:, i]) * DT for i in range(n_pre)]
    post_times = [np.flatnonzero(post_raster[:, j]) * DT for j in range(n_post)]
    syn_pre = csc[2]

    def reference(params):
        return np.array([0.5 + stdp.stdp_weight_change(pre_times[syn_pre[k]], post_times[indices[k]],
                                                       params, 0.5) for k in range(len(indices))])

    for name, w_max in (("visual_all_to_all", 0.55), ("visual_nearest", 0.6), ("pair", 0.51)):
        p = stdp.preset(name, w_min=0.45, w_max=w_max)
        w0 = np.full(len(indices), 0.5)
        w_nb = _run_stepped(pre_steps, post_steps, n_steps, n_pre, n_post, indptr, indices, *csc,
                            w0.copy(), p)
        w_np = _run_numpy_events([set(np.round(t, 1)) for t in pre_times],
                                 [set(np.round(t, 1)) for t in post_times],
                                 n_pre, n_post, (indptr, indices), csc, w0.copy(), p)
        ref = reference(p)
        np.testing.assert_allclose(w_nb, ref, rtol=0, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(w_np, ref, rtol=0, atol=1e-12, err_msg=name)
        wide = stdp.make_params(p, w_min=-10.0, w_max=10.0)
        unbounded = reference(wide)
        assert np.max(np.abs(unbounded - ref)) > 1e-3, name   # the bounds were exercised
        assert np.all((w_nb >= 0.45) & (w_nb <= w_max))


def test_hard_bounds_saturate_exactly():
    p = stdp.preset("pair")   # w in [0, 1]
    pre = list(np.arange(200) * 100.0)
    post = [t + 5.0 for t in pre]
    dw_nb, dw_np = _single_synapse(pre, post, p, 0.9)
    assert 0.9 + dw_nb == 1.0 and 0.9 + dw_np == 1.0
    post_first = [t - 5.0 for t in pre[1:]]
    dw_nb, dw_np = _single_synapse(pre[1:], post_first, p, 0.1)
    assert 0.1 + dw_nb == 0.0 and 0.1 + dw_np == 0.0


def test_trace_kernels():
    assert float(stdp.trace_spike(0.4, True)) == 1.0
    assert float(stdp.trace_spike(0.4, False)) == 1.4
    assert bump_nb(0.4, True) == 1.0 and bump_nb(0.4, False) == 1.4
    assert float(stdp.trace_decay(2.0, 16.8, 16.8)) == pytest.approx(2.0 / math.e, rel=1e-15)
    np.testing.assert_array_equal(stdp.trace_spike(np.array([0.0, 0.3, 2.0]), True), [1.0, 1.0, 1.0])


@settings(max_examples=150, deadline=None)
@given(w=st.floats(-0.5, 1.5), a=st.floats(0.0, 20.0), b=st.floats(0.0, 20.0),
       name=st.sampled_from(PRESET_NAMES))
def test_numpy_equals_numba_elementwise(w, a, b, name):
    p = stdp.preset(name)
    d_np = stdp.stdp_depress(np.array([w]), np.array([a]), np.array([b]), p)[0]
    u_np = stdp.stdp_potentiate(np.array([w]), np.array([a]), np.array([b]), p)[0]
    assert d_np == depress_nb(w, a, b, p)
    assert u_np == potentiate_nb(w, a, b, p)
    assert p.w_min <= d_np <= p.w_max and p.w_min <= u_np <= p.w_max


def test_preset_and_parameter_errors():
    with pytest.raises(ScenarioError) as e:
        stdp.preset("visual")
    assert e.value.key == "stdp.preset" and "visual_all_to_all" in e.value.expected
    with pytest.raises(ScenarioError) as e:
        stdp.preset("pair", key="net.ee.stdp", tau_pluss=10.0)
    assert e.value.key == "net.ee.stdp.tau_pluss" and "tau_plus" in e.value.expected
    with pytest.raises(ScenarioError) as e:
        stdp.preset("pair", w_min=1.0, w_max=0.5)
    assert e.value.key == "stdp.w_max"
    with pytest.raises(ScenarioError):
        stdp.preset("pair", tau_y=0.0)
    with pytest.raises(ScenarioError):
        stdp.preset("pair", nearest=1)
    with pytest.raises(ScenarioError):
        stdp.preset("pair", A2_plus=-1e-3)
    p = stdp.preset("visual_nearest", tau_y="0.04 s", nearest=False)
    assert p.tau_y == pytest.approx(40.0) and p.nearest is False and p.A3_plus == 5.3e-2
