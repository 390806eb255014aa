"""Every built-in neuron model against Brian2 running the same equations on the same input.

For each model the equations are written again in Brian2 (runtime, numpy target), stepped with
the same dt (0.1 ms) and method — ``euler`` for all models except Urbanczik–Senn, which both
sides integrate with exponential Euler (Brian2 ``exponential_euler``) — on the same deterministic
input: a step-plus-sine drive per compartment and synaptic channels precomputed from regular
spike trains (identical arrays fed to both, through ``TimedArray``). The stochastic models
(Urbanczik–Senn, Guerguiev) get the same uniform stream on both sides. Exact exponential decays
in our models (Naud–Sprekeler w_s and θ) are written for Brian2's Euler as dx/dt = −x·k with
k = (1 − exp(−dt/τ))/dt, which Euler integrates to exactly x·exp(−dt/τ).

Stated tolerance: every state variable agrees to 1e-6 (mV, pA, ms or the model's own unit),
relative 1e-9 for large values, over the whole run; spike steps are identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_neuron_models import DT, simulate

from dendrite_sim.core.registry import get
from dendrite_sim.neurons.adex import NAUD2008_CURRENT, NAUD2008_PATTERNS, AdEx

try:                      # brian2 2.9 raises AttributeError, not ImportError, under numpy ≥ 2.4
    import brian2 as b2
except Exception as exc:
    pytest.skip(f"brian2 is not importable: {type(exc).__name__}: {exc}", allow_module_level=True)

pytestmark = pytest.mark.brian2
b2.prefs.codegen.target = "numpy"
b2.BrianLogger.log_level_error()

ATOL, RTOL = 1e-6, 1e-9
ms, mV, pA, nS, pF = b2.ms, b2.mV, b2.pA, b2.nS, b2.pF


# --------------------------------------------------------------------------- inputs
def trace(T, n, period_ms, weight, tau, offset_ms=3.0):
    """Synaptic channel driven by a regular spike train: jumps by ``weight``, decays with τ."""
    x = np.zeros((T, n))
    decay = np.exp(-DT / tau)
    every = int(round(period_ms / DT))
    start = int(round(offset_ms / DT))
    w = np.broadcast_to(np.asarray(weight, float), (n,))
    for t in range(1, T):
        x[t] = x[t - 1] * decay + (w if t >= start and (t - start) % every == 0 else 0.0)
    return x


def step_sine(T, n, base, amp, period_ms=47.0, onset_ms=20.0):
    """A step at ``onset_ms`` to ``base`` plus a sine of amplitude ``amp`` (per-neuron arrays)."""
    t = np.arange(T)[:, None] * DT
    base, amp = np.broadcast_to(base, (n,)), np.broadcast_to(amp, (n,))
    return np.where(t >= onset_ms, base + amp * np.sin(2 * np.pi * t / period_ms), 0.0)


def stack(*arrays):
    return np.stack(arrays, axis=1)                       # (T, k, n)


# --------------------------------------------------------------------------- Brian2 runner
def run_brian2(eqs, n, T, timed, namespace, threshold, reset, record, init=None,
               refractory=False, method="euler", per_neuron=None):
    """Run ``eqs`` for T steps; return ({var: (T, n) in Brian2 base units / unit}, spikes (T, n)).

    ``timed``: {name: (values (T, n), unit)} turned into 2-D TimedArrays read as ``name(t, i)``.
    ``record``: {var: unit} recorded at the end of each step (after resets), as our harness does.
    """
    b2.start_scope()
    ns = dict(namespace)
    for name, (values, unit) in timed.items():
        ns[name] = b2.TimedArray(values * unit, dt=DT * ms)
    G = b2.NeuronGroup(n, eqs, threshold=threshold, reset=reset, refractory=refractory,
                       method=method, namespace=ns, dt=DT * ms)
    for k, v in {**(per_neuron or {}), **(init or {})}.items():
        setattr(G, k, v)
    sm = b2.StateMonitor(G, list(record), record=True, when="end")
    spm = b2.SpikeMonitor(G)
    b2.Network(G, sm, spm).run(T * DT * ms)
    out = {k: (getattr(sm, k) / unit).T for k, unit in record.items()}
    spikes = np.zeros((T, n), dtype=bool)
    spikes[np.round(np.asarray(spm.t / ms) / DT).astype(int), np.asarray(spm.i)] = True
    return out, spikes


def assert_same(ours, theirs, spikes_ours, spikes_theirs, mapping, min_spikes=3, compare=None):
    """mapping: {our state var: Brian2 var}. Asserts spike steps identical and traces close
    (where the boolean (T, n) mask ``compare`` is true; everywhere by default)."""
    for j in range(spikes_ours.shape[1]):
        assert spikes_ours[:, j].sum() >= min_spikes, f"neuron {j} must spike for the test to bite"
    np.testing.assert_array_equal(np.nonzero(spikes_ours), np.nonzero(spikes_theirs))
    if compare is None:
        compare = np.ones(spikes_ours.shape, dtype=bool)
    for ours_name, b2_name in mapping.items():
        np.testing.assert_allclose(ours[ours_name][compare], theirs[b2_name][compare], rtol=RTOL,
                                   atol=ATOL, err_msg=ours_name)


# --------------------------------------------------------------------------- LIF
LIF_EQS = """
dv/dt = (-(v - E_L) + R * (I_exc + I_inh + I_drive)) / tau_m : volt (unless refractory)
I_exc = ch_exc(t, i) : amp
I_inh = ch_inh(t, i) : amp
I_drive = drive(t, i) : amp
"""

LIF_COND_EQS = """
dv/dt = (-g_L * (v - E_L) - g_exc * (v - E_exc) - g_inh * (v - E_inh) + I_drive) / C_m
    : volt (unless refractory)
g_exc = ch_exc(t, i) : siemens
g_inh = ch_inh(t, i) : siemens
I_drive = drive(t, i) : amp
"""


@pytest.mark.parametrize("name", ["lif", "lif_cond"])
def test_lif_matches_brian2(name):
    model = get("neuron", name)
    p = model.make_params()
    n, T = 3, 4000
    drive = step_sine(T, n, base=[110.0, 150.0, 250.0], amp=60.0)
    if name == "lif":
        exc, inh, unit = trace(T, n, 7.0, 40.0, 5.0), trace(T, n, 11.0, -30.0, 10.0), pA
        eqs = LIF_EQS
    else:
        exc, inh, unit = trace(T, n, 7.0, 2.0, 5.0), trace(T, n, 11.0, 3.0, 10.0), nS
        eqs = LIF_COND_EQS
    ours, sp = simulate(model, p, stack(drive), channels=stack(exc, inh))
    theirs, sp_b2 = run_brian2(
        eqs, n, T, {"ch_exc": (exc, unit), "ch_inh": (inh, unit), "drive": (drive, pA)},
        dict(E_L=p.E_L * mV, R=p.tau_m / p.C_m * mV / pA, tau_m=p.tau_m * ms, C_m=p.C_m * pF,
             g_L=p.C_m / p.tau_m * nS, E_exc=p.E_exc * mV, E_inh=p.E_inh * mV,
             v_th=p.v_th * mV, v_reset=p.v_reset * mV),
        threshold="v >= v_th", reset="v = v_reset", refractory=p.t_ref * ms,
        record={"v": mV}, init={"v": p.E_L * mV}, method="euler")
    assert_same(ours, theirs, sp, sp_b2, {"v_soma": "v"})


# --------------------------------------------------------------------------- AdEx, presets, PV, SOM
ADEX_EQS = """
dv/dt = (-g_L * (v - E_L) + g_L * Delta_T * exp((v - V_T) / Delta_T) - w
         - g_exc * (v - E_exc) - g_inh * (v - E_inh) + I_drive) / C_m : volt (unless refractory)
dw/dt = (a * (v - E_L) - w) / tau_w : amp
g_exc = ch_exc(t, i) : siemens
g_inh = ch_inh(t, i) : siemens
I_drive = drive(t, i) : amp
C_m : farad (constant)
g_L : siemens (constant)
E_L : volt (constant)
V_T : volt (constant)
Delta_T : volt (constant)
a : siemens (constant)
tau_w : second (constant)
b : amp (constant)
V_r : volt (constant)
V_peak : volt (constant)
t_ref : second (constant)
E_exc : volt (constant)
E_inh : volt (constant)
"""
_ADEX_UNITS = dict(C_m=pF, g_L=nS, E_L=mV, V_T=mV, Delta_T=mV, a=nS, tau_w=ms, b=pA, V_r=mV,
                   V_peak=mV, t_ref=ms, E_exc=mV, E_inh=mV)


def test_adex_family_matches_brian2():
    """adex (Brette & Gerstner), the eight Naud et al. 2008 presets, pv and som in one group,
    each neuron with its own parameters (our step takes per-neuron parameter arrays too)."""
    variants = [(AdEx.make_params(), 900.0)]
    variants += [(AdEx.preset_params(k), NAUD2008_CURRENT[k]) for k in NAUD2008_PATTERNS]
    variants += [(get("neuron", "pv").make_params(), 350.0),
                 (get("neuron", "som").make_params(), 60.0)]
    n, T = len(variants), 4000
    p = AdEx.Params(*[np.array([v[0][f] for v in variants]) for f in range(len(AdEx.Params._fields))])
    base = np.array([v[1] for v in variants])
    drive = step_sine(T, n, base=base, amp=0.1 * base)
    exc, inh = trace(T, n, 9.0, 1.0, 5.0), trace(T, n, 13.0, 1.5, 10.0)
    ours, sp = simulate(AdEx, p, stack(drive), channels=stack(exc, inh))
    theirs, sp_b2 = run_brian2(
        ADEX_EQS, n, T, {"ch_exc": (exc, nS), "ch_inh": (inh, nS), "drive": (drive, pA)}, {},
        threshold="v > V_peak", reset="v = V_r; w += b", refractory="t_ref",
        record={"v": mV, "w": pA}, method="euler",
        per_neuron={k: getattr(p, k) * u for k, u in _ADEX_UNITS.items()},
        init={"v": p.E_L * mV})
    # The presets with a < 0 (delayed regular bursting, irregular: chaotic in Naud et al. 2008)
    # amplify the 1e-13 rounding differences between the two codes: from ~200 ms on their traces
    # drift apart by more than 1e-6 mV (most in the last steps of a spike upswing, where one step
    # multiplies a difference by ~200). Spike steps still agree over the whole 400 ms; the traces
    # of those two are compared over the first 200 ms, all others over the whole run.
    compare = np.ones((T, n), dtype=bool)
    compare[2000:, p.a < 0] = False
    # the "transient" preset fires a single spike by design
    assert_same(ours, theirs, sp, sp_b2, {"v_soma": "v", "w": "w"}, min_spikes=1, compare=compare)
    assert (sp.sum(axis=0) >= 3).sum() >= n - 1


# --------------------------------------------------------------------------- Naud–Sprekeler
NAUD_EQS = """
dv_s/dt = (-(v_s - E_L) + (tau_s / C_s) * (g_s * f + b_w * w_s + I_s)) / tau_s : volt
dv_d/dt = (-(v_d - E_L) + (tau_d / C_d) * (g_d * f + c_d * K + a_w * w_d + I_d)) / tau_d : volt
dw_d/dt = (-w_d + (v_d - E_L)) / tau_wd : volt
dw_s/dt = -w_s * k_ws : 1
dtheta/dt = -(theta - theta_0) * k_theta : volt
dbap/dt = -K : second
f = 1 / (1 + exp(-(v_d - E_d) / D)) : 1
K = int(bap > 0.5 * dt) : 1
I_s = ch_se(t, i) + ch_si(t, i) + drive_s(t, i) : amp
I_d = ch_de(t, i) + ch_di(t, i) + drive_d(t, i) : amp
"""


def test_naud_sprekeler_matches_brian2():
    M = get("neuron", "naud_sprekeler")
    p = M.make_params()
    n, T = 3, 6000
    drive_s = step_sine(T, n, base=500.0, amp=100.0)
    drive_d = step_sine(T, n, base=[0.0, 300.0, 1000.0], amp=50.0, period_ms=61.0)
    ch = [trace(T, n, 9.0, 60.0, 5.0), trace(T, n, 13.0, -40.0, 10.0),
          trace(T, n, 17.0, 80.0, 5.0), trace(T, n, 23.0, -50.0, 10.0)]
    ours, sp = simulate(M, p, stack(drive_s, drive_d), channels=stack(*ch))
    ns = dict(E_L=p.E_L * mV, tau_s=p.tau_s * ms, C_s=p.C_s * pF, g_s=p.g_s * pA, b_w=p.b_w * pA,
              tau_d=p.tau_d * ms, C_d=p.C_d * pF, g_d=p.g_d * pA, a_w=p.a_w * nS,
              tau_wd=p.tau_wd * ms, c_d=p.c_d * pA, E_d=p.E_d * mV, D=p.D * mV,
              theta_0=p.theta_0 * mV, delta_theta=p.delta_theta * mV,
              bap_length=p.bap_length * ms,
              k_ws=(1 - np.exp(-DT / p.tau_ws)) / (DT * ms),
              k_theta=(1 - np.exp(-DT / p.tau_theta)) / (DT * ms))
    theirs, sp_b2 = run_brian2(
        NAUD_EQS, n, T,
        {"ch_se": (ch[0], pA), "ch_si": (ch[1], pA), "ch_de": (ch[2], pA), "ch_di": (ch[3], pA),
         "drive_s": (drive_s, pA), "drive_d": (drive_d, pA)}, ns,
        threshold="v_s > theta",
        reset="v_s = E_L; w_s += 1; theta += delta_theta; bap = bap_length",
        record={"v_s": mV, "v_d": mV, "w_s": 1, "w_d": mV, "theta": mV, "bap": ms},
        init={"v_s": p.E_L * mV, "v_d": p.E_L * mV, "w_d": p.w_d0 * mV, "theta": p.theta_0 * mV},
        method="euler")
    # the box countdown is zeroed when it ends in our model, left at rounding residue in Brian2
    theirs["bap"] = np.where(theirs["bap"] > 0.5 * DT, theirs["bap"], 0.0)
    assert_same(ours, theirs, sp, sp_b2, {"v_soma": "v_s", "v_dend": "v_d", "w_s": "w_s",
                                          "w_d": "w_d", "theta": "theta", "bap": "bap"})


# --------------------------------------------------------------------------- Urbanczik–Senn
US_EQS = """
dU/dt = (-g_L * (U - E_L) + g_sp * (V_d - U) - g_ex * (U - E_ex) - g_in * (U - E_in) + I_s) / C
    : volt
dV_d/dt = (-g_L_d * (V_d - E_L_d) + g_ps * (U - V_d) + I_ex + I_in + I_d) / C_d : volt
g_ex = ch_gex(t, i) : siemens
g_in = ch_gin(t, i) : siemens
I_ex = ch_iex(t, i) : amp
I_in = ch_iin(t, i) : amp
I_s = drive_s(t, i) : amp
I_d = drive_d(t, i) : amp
"""


def test_urbanczik_senn_matches_brian2():
    M = get("neuron", "urbanczik_senn")
    p = M.make_params()
    n, T = 4, 5000
    drive_s = step_sine(T, n, base=0.0, amp=[0.0, 50.0, 100.0, 200.0])
    drive_d = step_sine(T, n, base=[300.0, 450.0, 500.0, 600.0], amp=200.0, period_ms=83.0)
    ch = [trace(T, n, 5.0, 20.0, 3.0), trace(T, n, 7.0, 15.0, 3.0),     # teacher conductances (nS)
          trace(T, n, 4.0, 60.0, 3.0), trace(T, n, 9.0, -40.0, 3.0)]    # dendritic currents (pA)
    u = np.random.default_rng(11).random((T, n))
    ours, sp = simulate(M, p, stack(drive_s, drive_d), channels=stack(*ch), uniforms=u)
    ns = dict(C=p.C * pF, g_L=p.g_L * nS, E_L=p.E_L * mV, C_d=p.C_d * pF, g_L_d=p.g_L_d * nS,
              E_L_d=p.E_L_d * mV, g_sp=p.g_sp * nS, g_ps=p.g_ps * nS, E_ex=p.E_ex * mV,
              E_in=p.E_in * mV, phi_max=p.phi_max / ms, k=p.rate_slope, beta=p.beta / mV,
              theta=p.theta * mV)
    theirs, sp_b2 = run_brian2(
        US_EQS, n, T,
        {"ch_gex": (ch[0], nS), "ch_gin": (ch[1], nS), "ch_iex": (ch[2], pA),
         "ch_iin": (ch[3], pA), "drive_s": (drive_s, pA), "drive_d": (drive_d, pA),
         "uniform": (u, 1)}, ns,
        threshold="uniform(t, i) < 1 - exp(-phi_max / (1 + k * exp(beta * (theta - U))) * dt)",
        reset="", refractory=p.t_ref * ms, record={"U": mV, "V_d": mV},
        init={"U": p.E_L * mV, "V_d": p.E_L_d * mV}, method="exponential_euler")
    assert_same(ours, theirs, sp, sp_b2, {"v_soma": "U", "v_dend": "V_d"})


# --------------------------------------------------------------------------- Guerguiev
GUERGUIEV_EQS = """
dB/dt = (-B + b + x_B / tau_s) / tau_L : 1
dA/dt = (-A + c + x_A / tau_s) / tau_L : 1
dC/dt = (-g_L * C + g_B * (B - C) + g_A * (A - C) + g_E * (E_E - C) + g_I * (E_I - C) + I_soma)
        / ms : 1
dA_int/dt = A : second
x_B = ch_b(t, i) : 1
x_A = ch_a(t, i) : 1
g_E = ch_ge(t, i) : 1
g_I = ch_gi(t, i) : 1
b = drive_b(t, i) : 1
I_soma = drive_s(t, i) : 1
c = drive_a(t, i) : 1
"""


@pytest.mark.parametrize("g_A", [0.0, 0.05])
def test_guerguiev_matches_brian2(g_A):
    M = get("neuron", "guerguiev")
    p = M.make_params({"g_A": g_A})
    n, T = 4, 4000
    drive_b = step_sine(T, n, base=[0.5, 1.5, 2.5, 3.5], amp=1.0)
    drive_s = step_sine(T, n, base=0.0, amp=0.2, period_ms=31.0)
    drive_a = step_sine(T, n, base=[-2.0, -1.0, 1.0, 2.0], amp=0.5, period_ms=53.0)
    ch = [trace(T, n, 5.0, 3.0, 3.0), trace(T, n, 8.0, 2.0, 3.0),
          trace(T, n, 20.0, 0.05, 3.0), trace(T, n, 25.0, 0.05, 3.0)]
    u = np.random.default_rng(5).random((T, n))
    ours, sp = simulate(M, p, stack(drive_b, drive_s, drive_a), channels=stack(*ch), uniforms=u)
    ns = dict(tau_s=p.tau_s, tau_L=p.tau_L * ms, g_L=p.g_L, g_B=p.g_B, g_A=p.g_A, E_E=p.E_E,
              E_I=p.E_I, phi_max=p.phi_max)
    theirs, sp_b2 = run_brian2(
        GUERGUIEV_EQS, n, T,
        {"ch_b": (ch[0], 1), "ch_a": (ch[1], 1), "ch_ge": (ch[2], 1), "ch_gi": (ch[3], 1),
         "drive_b": (drive_b, 1), "drive_s": (drive_s, 1), "drive_a": (drive_a, 1),
         "uniform": (u, 1)}, ns,
        threshold="uniform(t, i) < 1 - exp(-phi_max / (1 + exp(-C)) * dt / ms)", reset="",
        record={"B": 1, "A": 1, "C": 1, "A_int": ms}, method="euler")
    assert_same(ours, theirs, sp, sp_b2, {"v_basal": "B", "v_apical": "A", "v_soma": "C",
                                          "apical_integral": "A_int"})
