"""Reference networks written in Brian2, for validation tests and benchmarks.

Each builder writes the *same equations* that dendrite_sim integrates, so rates, irregularity
and burst fractions can be compared, and the same network can be timed in both simulators:

* ``cuba`` — Brette et al. (2007) benchmark 2 as Brian2's ``examples/CUBA.py`` writes it:
  4000 LIF neurons (3200 E, 800 I), τ_m 20 ms, E_L −49 mV (a constant suprathreshold drive),
  threshold −50 mV, reset −60 mV, refractory 5 ms, exponential current synapses
  (τ_e 5 ms, τ_i 10 ms, jumps of 1.62 mV and −9 mV), connection probability 0.02.
* ``coba`` — benchmark 1 (Vogels & Abbott 2005 as in Brian's benchmark scripts): conductances in
  units of the leak, w_e 0.6 (6 nS) and w_i 6.7 (67 nS), E_e 0 mV, E_i −80 mV, rest −60 mV,
  threshold −50 mV, reset −60 mV, refractory 5 ms; initial v ~ N(−65, 5) mV,
  g_e ~ N(4, 1.5), g_i ~ N(20, 12) (self-sustained activity).
* ``pyr_stp`` — PYR-STP: Naud–Sprekeler two-compartment neurons (docs/models.md#neuron-naud_sprekeler) with Poisson
  drive and two recurrent projections with Payeur et al.'s extended Tsodyks–Markram synapses.

All use forward Euler at dt = 0.1 ms (``method="euler"``), as dendrite_sim does.
``run(name, n, duration_ms, seed, target)`` returns spikes (indices, times in ms) and timings
(``build_s``, ``run_s`` and, for ``cpp_standalone``, the compile time separately).

Connectivity is ``connect(p=p_conn)`` by default; with ``k_in`` every neuron instead receives a
fixed number of distinct inputs (CUBA/COBA: round(0.8·k_in) excitatory and the rest inhibitory,
autapses allowed; PYR-STP: k_in per projection, no autapses), drawn in numpy by
:func:`fixed_indegree_pairs` (the same builder and distribution that
:mod:`dendrite_sim.validation.networks` uses) and passed to ``connect(i=..., j=...)``. This is
the N-scaling study's network: 80 synapses per neuron at any size.

Timings (``run``): ``build_s`` is the Python-side construction. For ``cpp_standalone``
(``n_threads`` OpenMP threads; 1 = OpenMP off, a single thread) ``compile_s`` is code
generation plus the g++ build, ``run_s`` the wall time of running the binary (process start and
result files included) and ``run_s_internal`` the simulation loop's own time as the binary
measures it (``Network::_last_run_time``), the minimum over ``repeats`` executions. For the
runtime targets (``numpy``, ``cython``, ``auto`` = Brian2's default, cython where available)
a first one-step run generates and compiles the code objects (``startup_s``); ``run_s`` is the
wall time of ``net.run(duration)`` afterwards (minimum over ``repeats`` runs that continue the
simulation) and ``overhead_s`` that of a one-step run, i.e. Brian2's fixed cost per ``run()``
call (code objects are prepared again at each call).
"""

from __future__ import annotations

import time

import numpy as np

CONNECT_P = 0.02


def _b2():
    import brian2 as b2

    return b2


def fixed_indegree_pairs(pre_start: int, pre_stop: int, n_post: int, k: int, seed: int, name: str,
                         autapses: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) arrays: every post neuron j gets ``k`` distinct presynaptic i in [pre_start, pre_stop).

    ``autapses=False`` excludes i = j (needs the pre range to be the whole group).
    """
    from dendrite_sim.core.rng import stream
    from dendrite_sim.synapses.connectivity import fixed_indegree

    conn = fixed_indegree(pre_stop - pre_start, n_post, int(k), stream(seed, f"brian2/connectivity/{name}"),
                          autapses=autapses)
    return conn.pre_indices().astype(np.int64) + pre_start, conn.indices.astype(np.int64)


def _connect_ei(Ce, Ci, n, p_conn, k_in, seed):
    ne = int(0.8 * n)
    if k_in is None:
        Ce.connect(f"i < {ne}", p=p_conn)
        Ci.connect(f"i >= {ne}", p=p_conn)
        return
    ke = int(round(0.8 * k_in))
    i, j = fixed_indegree_pairs(0, ne, n, ke, seed, "exc")
    Ce.connect(i=i, j=j)
    i, j = fixed_indegree_pairs(ne, n, n, k_in - ke, seed, "inh")
    Ci.connect(i=i, j=j)


def _cuba(b2, n, p_conn, k_in=None, seed=1):
    ms, mV = b2.ms, b2.mV
    ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV, "El": -49 * mV}
    eqs = """dv/dt = (ge + gi - (v - El))/taum : volt (unless refractory)
             dge/dt = -ge/taue : volt
             dgi/dt = -gi/taui : volt"""
    P = b2.NeuronGroup(n, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms, method="euler",
                       namespace=ns)
    P.v = "Vr + rand() * (Vt - Vr)"
    Ce = b2.Synapses(P, P, on_pre="ge += 1.62*mV")
    Ci = b2.Synapses(P, P, on_pre="gi += -9*mV")
    _connect_ei(Ce, Ci, n, p_conn, k_in, seed)
    return P, [P, Ce, Ci]


def _coba(b2, n, p_conn, k_in=None, seed=1):
    ms, mV = b2.ms, b2.mV
    ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "El": -60 * mV, "Ee": 0 * mV, "Ei": -80 * mV}
    eqs = """dv/dt = (-(v - El) + ge*(Ee - v) + gi*(Ei - v))/taum : volt (unless refractory)
             dge/dt = -ge/taue : 1
             dgi/dt = -gi/taui : 1"""
    P = b2.NeuronGroup(n, eqs, threshold="v > -50*mV", reset="v = -60*mV", refractory=5 * ms,
                       method="euler", namespace=ns)
    P.v = "-65*mV + 5*mV*randn()"
    P.ge = "4 + 1.5*randn()"
    P.gi = "20 + 12*randn()"
    Ce = b2.Synapses(P, P, on_pre="ge += 0.6")
    Ci = b2.Synapses(P, P, on_pre="gi += 6.7")
    _connect_ei(Ce, Ci, n, p_conn, k_in, seed)
    return P, [P, Ce, Ci]


NAUD_EQS = """
dv_s/dt = (-(v_s - E_L) + (tau_s/C_s)*(g_s*f + b_w*w_s + I_se + I_si + I_bias))/tau_s : volt
dv_d/dt = (-(v_d - E_L) + (tau_d/C_d)*(g_d*f + c_d*K + a_w*w_d + I_de + I_di))/tau_d : volt
dw_s/dt = -w_s/tau_ws : 1
dw_d/dt = (-w_d + (v_d - E_L))/tau_wd : volt
dtheta/dt = -(theta - theta_0)/tau_theta : volt
dI_se/dt = -I_se/tau_e : amp
dI_si/dt = -I_si/tau_i : amp
dI_de/dt = -I_de/tau_e : amp
dI_di/dt = -I_di/tau_i : amp
f = 1/(1 + exp(-(v_d - E_d)/D)) : 1
K = int(t - t_spike < bap_length + 0.5*dt) : 1
t_spike : second
"""


def naud_namespace(b2):
    ms, mV, pA, pF, nS = b2.ms, b2.mV, b2.pA, b2.pF, b2.nS
    return {"E_L": -70 * mV, "tau_s": 16 * ms, "C_s": 370 * pF, "g_s": 1300 * pA, "b_w": -200 * pA,
            "tau_ws": 100 * ms, "tau_d": 7 * ms, "C_d": 170 * pF, "g_d": 1200 * pA, "a_w": -13 * nS,
            "tau_wd": 30 * ms, "c_d": 2600 * pA, "E_d": -38 * mV, "D": 6 * mV, "theta_0": -50 * mV,
            "tau_theta": 27 * ms, "bap_length": 2 * ms, "tau_e": 5 * ms, "tau_i": 10 * ms,
            "I_bias": 210 * pA}


def _pyr_stp(b2, n, p_conn, k_in=None, seed=1):
    ms, pA, Hz = b2.ms, b2.pA, b2.Hz
    P = b2.NeuronGroup(n, NAUD_EQS, threshold="v_s > theta",
                       reset="v_s = E_L; w_s += 1; theta += 2*mV; t_spike = t", method="euler",
                       namespace=naud_namespace(b2))
    P.v_s = -70 * b2.mV
    P.v_d = -70 * b2.mV
    P.theta = -50 * b2.mV
    P.w_d = 0.1 * b2.mV
    P.t_spike = -1 * b2.second
    inputs = [b2.PoissonInput(P, "I_se", 100, 5 * Hz, weight=100 * pA),
              b2.PoissonInput(P, "I_si", 30, 5 * Hz, weight=-100 * pA),
              b2.PoissonInput(P, "I_de", 50, 5 * Hz, weight=180 * pA)]
    stp = """du/dt = (U - u)/tau_F : 1 (event-driven)
             dx/dt = (1 - x)/tau_D : 1 (event-driven)
             U : 1 (constant)
             tau_F : second (constant)
             tau_D : second (constant)
             f_inc : 1 (constant)
             w : amp (constant)"""
    update = "x = x - u*x\nu = u + f_inc*(1 - u)"
    to_soma = b2.Synapses(P, P, stp, on_pre="I_se_post += w*u*x\n" + update)
    to_dend = b2.Synapses(P, P, stp, on_pre="I_de_post += w*u*x\n" + update)
    for label, syn, (w, U, tD, tF) in (("to_soma", to_soma, (5, 0.9, 20, 1000)),
                                       ("to_dend", to_dend, (30, 0.02, 100, 100))):
        if k_in is None:
            syn.connect(condition="i != j", p=p_conn)
        else:
            i, j = fixed_indegree_pairs(0, n, n, k_in, seed, label, autapses=False)
            syn.connect(i=i, j=j)
        syn.w = w * pA
        syn.U = U
        syn.u = U
        syn.x = 1
        syn.tau_D = tD * ms
        syn.tau_F = tF * ms
        syn.f_inc = 0.1
    return P, [P, *inputs, to_soma, to_dend]


BUILDERS = {"cuba": _cuba, "coba": _coba, "pyr_stp": _pyr_stp}


def run(name: str, n: int = 4000, duration_ms: float = 1000.0, seed: int = 1,
        target: str = "numpy", p_conn: float = CONNECT_P, build_dir: str | None = None,
        k_in: int | None = None, n_threads: int = 1, repeats: int = 1) -> dict:
    """Build and run a reference network.

    ``target``: ``numpy``, ``cython``, ``auto`` (Brian2's default runtime target) or
    ``cpp_standalone``; ``k_in``: fixed in-degree instead of ``p_conn``; ``n_threads``: OpenMP
    threads of cpp_standalone (1: OpenMP off); ``repeats``: timed repetitions (see the module
    docstring). Spikes are those of the first ``duration_ms``.
    """
    b2 = _b2()
    b2.start_scope()
    b2.defaultclock.dt = 0.1 * b2.ms
    standalone = target == "cpp_standalone"
    if standalone:
        import tempfile

        b2.set_device("cpp_standalone", directory=build_dir or tempfile.mkdtemp(prefix="b2_"),
                      build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = int(n_threads) if n_threads > 1 else 0
    else:
        b2.set_device("runtime")
        b2.prefs.codegen.target = target
    b2.seed(seed)
    t0 = time.perf_counter()
    P, objs = BUILDERS[name](b2, n, p_conn, k_in=k_in, seed=seed)
    mon = b2.SpikeMonitor(P)
    net = b2.Network(*objs, mon)
    t1 = time.perf_counter()
    out = {"build_s": t1 - t0, "target": target}
    if standalone:
        net.run(duration_ms * b2.ms)
        t2 = time.perf_counter()
        dev = b2.get_device()
        dev.build(run=False, compile=True, clean=True)
        t3 = time.perf_counter()
        walls, internals = [], []
        for _ in range(max(1, repeats)):
            t4 = time.perf_counter()
            dev.run()
            walls.append(time.perf_counter() - t4)
            internals.append(float(dev._last_run_time) if getattr(dev, "_last_run_time", None) else float("nan"))
        out.update(compile_s=t3 - t2, run_s=min(walls), run_s_internal=min(internals), n_threads=int(n_threads))
        spike_i, spike_t = np.asarray(mon.i[:]), np.asarray(mon.t[:] / b2.ms)
    else:
        dt = float(b2.defaultclock.dt / b2.ms)
        net.run(dt * b2.ms)                               # code generation and compilation
        t2 = time.perf_counter()
        net.run((duration_ms - dt) * b2.ms)
        t3 = time.perf_counter()
        walls = [(t3 - t2) * duration_ms / (duration_ms - dt)]
        spike_i, spike_t = np.asarray(mon.i[:]), np.asarray(mon.t[:] / b2.ms)
        for _ in range(max(1, repeats) - 1):
            t4 = time.perf_counter()
            net.run(duration_ms * b2.ms)
            walls.append(time.perf_counter() - t4)
        t5 = time.perf_counter()
        net.run(dt * b2.ms)
        overhead = time.perf_counter() - t5
        objs_all = [o for o in net.objects if getattr(o, "code_objects", None)]
        kinds = {c.__class__.__name__ for o in objs_all for c in o.code_objects}
        out.update(startup_s=t2 - t1, run_s=min(walls), overhead_s=overhead,
                   code_object=",".join(sorted(kinds)) or "?")
    out.update(spike_i=spike_i, spike_t=spike_t, n=n, duration_ms=duration_ms,
               n_synapses=int(sum(len(o) for o in objs if isinstance(o, b2.Synapses))))
    if standalone:
        b2.device.reinit()
        b2.set_device("runtime")
    return out
