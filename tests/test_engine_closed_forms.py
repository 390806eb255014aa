"""Engine semantics against closed forms: PSP shape, k-step delays, exact channel decay,
shot-noise mean and variance of Poisson drive (Campbell), injected currents.

All tests share one network structure (spike generator → LIF through one CSR projection with
per-synapse weights and delays, a Poisson input, a current array), so the fused loop is
compiled once per process (and loaded from Numba's disk cache afterwards).
"""

import math

import numpy as np
import pytest

from dendrite_sim.engine.network import Network


def probe(backend="numba", dt=0.1, n=1, src_times=(), src_idx=(), pre=(), post=(), weights=(),
          delays=None, params=None, poisson=(0, 0.0, 0.0), bias=0.0, array=None, array_dt=None,
          every=None, seed=0):
    net = Network(dt=dt, seed=seed, backend=backend)
    net.spike_generator("src", 4, times=list(src_times), indices=list(src_idx))
    net.population("cell", n, "lif", params=params or {})
    net.projection("src", "cell", "exc", "pairs", pre_idx=list(pre), post_idx=list(post),
                   weight=np.asarray(weights, dtype=float),
                   delay=None if delays is None else np.asarray(delays, dtype=float))
    net.poisson_input("cell", "inh", *[int(poisson[0]), float(poisson[1]), float(poisson[2])])
    net.current("cell", "soma", bias=bias, array=array if array is not None else np.zeros(1),
                array_dt=array_dt)
    spikes = net.spike_monitor("cell")
    trace = net.state_monitor("cell", ["v_soma", "exc", "inh", "I_soma"], every=every)
    return net, spikes, trace


QUIET = {"v_th": 1e9}   # no spikes: pure subthreshold dynamics


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_psp_double_exponential(backend):
    """One input spike of w pA: v − E_L = (w/C) τ_m τ_s/(τ_m − τ_s) (e^{−t/τ_m} − e^{−t/τ_s})."""
    dt, w = 0.01, 100.0
    net, _, tr = probe(backend, dt=dt, src_times=[1.0], src_idx=[0], pre=[0], post=[0], weights=[w],
                       params=QUIET)
    net.run(60.0 if backend == "numba" else 30.0)
    tau_m, C, tau_s, E_L = 20.0, 200.0, 5.0, -60.0
    t_arr = 1.0 + dt                           # sent at step 100, effective from step 101
    t = tr.t
    s = np.clip(t - t_arr, 0.0, None)
    analytic = (w / C) * tau_m * tau_s / (tau_m - tau_s) * (np.exp(-s / tau_m) - np.exp(-s / tau_s))
    v = tr["v_soma"][:, 0] - E_L
    peak = analytic.max()
    assert peak == pytest.approx(1.0 * w / C * tau_m * tau_s / (tau_m - tau_s)
                                 * ((tau_s / tau_m) ** (tau_s / (tau_m - tau_s))
                                    - (tau_s / tau_m) ** (tau_m / (tau_m - tau_s))), rel=1e-6)
    assert np.max(np.abs(v - analytic)) < 0.005 * peak        # forward Euler, dt = 0.01 ms
    # the discrete recursion is reproduced to rounding: v_{k+1} = v_k + dt/τ_m (−v_k + R I_k)
    I = tr["exc"][:, 0]
    ref = np.zeros_like(v)
    for k in range(len(v) - 1):
        ref[k + 1] = ref[k] + (-(ref[k]) + (tau_m / C) * I[k]) * (dt / tau_m)
    np.testing.assert_allclose(v, ref, rtol=1e-9, atol=1e-12)
    # time to peak τ_m τ_s/(τ_m − τ_s) ln(τ_m/τ_s) = 9.24 ms
    t_peak = tau_m * tau_s / (tau_m - tau_s) * math.log(tau_m / tau_s)
    assert abs(t[np.argmax(v)] - t_arr - t_peak) < 0.05


def test_delays_and_channel_decay():
    """A spike at step m with delay k arrives at step m + k; then it decays as exp(−j·dt/τ)."""
    dt, m = 0.1, 20
    delays_steps = [1, 3, 7, 12]
    net, _, tr = probe(dt=dt, n=4, src_times=[m * dt], src_idx=[2], pre=[2, 2, 2, 2], post=[0, 1, 2, 3],
                       weights=[10.0, 20.0, 30.0, 40.0], delays=[k * dt for k in delays_steps], params=QUIET)
    net.run(10.0)
    g = tr["exc"]                               # recorded after arrivals, before the update
    steps = np.rint(tr.t / dt).astype(int)
    for col, (k, w) in enumerate(zip(delays_steps, [10.0, 20.0, 30.0, 40.0])):
        first = np.flatnonzero(g[:, col])[0]
        assert steps[first] == m + k
        j = steps[first:] - (m + k)
        np.testing.assert_allclose(g[first:, col], w * np.exp(-j * dt / 5.0), rtol=1e-12)
        np.testing.assert_allclose(g[first + 1:, col] / g[first:-1, col], math.exp(-dt / 5.0), rtol=1e-14)


def test_poisson_shot_noise_campbell():
    """Channel driven by Poisson(ν) spikes of weight w: mean ν w τ, variance ν w² τ / 2."""
    n_src, rate, w, tau = 50, 20.0, 2.0, 10.0          # inh channel of lif: τ = 10 ms
    net, _, tr = probe(n=200, params=QUIET, poisson=(n_src, rate, w), every=5.0, seed=4)
    net.run(50.0)                                       # burn-in
    net.run(1000.0)
    g = tr["inh"][20:]
    nu = n_src * rate / 1000.0                          # per ms
    # discrete-time shot noise: mean w λ / (1 − d), var w² λ / (1 − d²), λ = ν dt, d = e^{−dt/τ}
    d, lam = math.exp(-0.1 / tau), nu * 0.1
    mean, var = w * lam / (1 - d), w * w * lam / (1 - d * d)
    assert mean == pytest.approx(nu * w * tau, rel=0.01)
    assert var == pytest.approx(nu * w * w * tau / 2, rel=0.015)   # O(dt/τ) discretisation
    assert g.mean() == pytest.approx(mean, rel=0.01)
    assert g.var() == pytest.approx(var, rel=0.05)


def test_bias_and_array_currents():
    """Drive = bias + array sample ⌊n / ratio⌋ (zero after the end); steady state E_L + R·I."""
    arr = np.array([[10.0, 0.0], [20.0, -5.0], [30.0, 7.0]])        # per-neuron, 2 ms per sample
    net, _, tr = probe(n=2, params=QUIET, bias=[100.0, 50.0], array=arr, array_dt=2.0)
    net.run(8.0)
    I = tr["I_soma"]
    t = tr.t
    for k in range(3):
        sel = (t >= 2 * k) & (t < 2 * (k + 1))
        np.testing.assert_array_equal(I[sel], np.broadcast_to([100.0, 50.0] + arr[k], (sel.sum(), 2)))
    np.testing.assert_array_equal(I[t >= 6.0], np.broadcast_to([100.0, 50.0], ((t >= 6.0).sum(), 2)))
    net.run(400.0)                                       # 20 τ_m: steady state v = E_L + R I
    v = net["cell"].state["v_soma"]
    np.testing.assert_allclose(v, -60.0 + 0.1 * np.array([100.0, 50.0]), atol=1e-6)


def test_lif_refractory_isi():
    """Constant suprathreshold drive: periodic firing with the Euler-map period.

    From reset the Euler map v ← v + dt/τ (E_L + R I − v) needs K steps to reach v_th; with
    refractoriness the ISI is t_ref + K·dt steps (LIF's docstring: t_ref counted from the spike).
    """
    dt, I = 0.1, 300.0
    net, spikes, _ = probe(n=1, bias=I)
    net.run(200.0)
    isi = np.diff(spikes.t)
    v, K = -60.0, 0
    while v < -50.0:
        v = v + (dt / 20.0) * (-60.0 + 0.1 * I - v)
        K += 1
    np.testing.assert_allclose(isi[1:], 5.0 + (K - 1) * dt, atol=1e-9)
