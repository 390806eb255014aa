"""The reference networks of :mod:`.brian2_networks`, built with dendrite_sim's ``Network`` API.

Each builder gives the *same discrete-time equations* as the Brian2 version (forward Euler,
dt = 0.1 ms), so that firing rates, ISI irregularity and burst fractions can be compared and
the two simulators can be timed on the same network (``scripts/bench_vs_brian2.py``).

* :func:`cuba` — Brette et al. (2007) benchmark 2 (Brian2 ``examples/CUBA.py``): one ``lif``
  population of n neurons (the first 0.8·n excitatory), E_L −49 mV, τ_m 20 ms, C_m 200 pF,
  threshold −50 mV, reset −60 mV, refractory 5 ms. Brian2 writes the synaptic variables in mV,
  ``τ_m dv/dt = ge + gi − (v − E_L)``; ours are currents in pA entering as R·I with
  R = τ_m/C_m = 0.1 mV/pA, so the jumps 1.62 mV and −9 mV are **w_exc = 16.2 pA** and
  **w_inh = −90 pA**. Initial v ~ U[−60, −50) mV.
* :func:`coba` — Brette et al. (2007) benchmark 1: one ``lif_cond`` population. Brian2 writes
  conductances in units of the leak, ``τ_m dv/dt = −(v − E_L) + ge (E_e − v) + gi (E_i − v)``;
  ours is ``C_m dv/dt = −g_L (v − E_L) − g_exc (v − E_exc) − g_inh (v − E_inh)``; dividing by
  g_L = C_m/τ_m = 10 nS gives Brian2's equation with g = g_L·ge, so **w_exc = 0.6·g_L = 6 nS**,
  **w_inh = 6.7·g_L = 67 nS**, and the initial conditions ge ~ N(4, 1.5), gi ~ N(20, 12) become
  g_exc ~ N(40, 15) nS, g_inh ~ N(200, 120) nS; v ~ N(−65, 5) mV. E_L −60, E_exc 0, E_inh −80 mV.
* :func:`pyr_stp` — PYR-STP: ``naud_sprekeler`` two-compartment neurons with 210 pA somatic
  bias, Poisson drive (soma: 100 × 5 Hz × 100 pA excitatory, 30 × 5 Hz × −100 pA inhibitory;
  dendrite: 50 × 5 Hz × 180 pA) and two recurrent projections (no autapses) with Payeur et al.
  (2021) Tsodyks–Markram synapses: to ``soma_exc`` w = 5 pA with ``payeur_std``
  (U 0.9, τ_D 20 ms, τ_F 1000 ms, f 0.1), to ``dend_exc`` w = 30 pA with ``payeur_stf``
  (U 0.02, τ_D 100 ms, τ_F 100 ms, f 0.1).

Connectivity: Brian2's ``connect(p=...)`` on the whole group — every ordered pair (autapses
included for CUBA/COBA, excluded for PYR-STP) independently with probability ``p_conn``
(excitatory rows from the first 0.8·n neurons, inhibitory rows from the rest) — or, with
``k_in``, a **fixed in-degree** of k_in synapses per neuron (round(0.8·k_in) excitatory and the
rest inhibitory for CUBA/COBA), as :func:`.brian2_networks.fixed_indegree_pairs` draws them for
Brian2 (the N-scaling study: 80 synapses per neuron at 4k, 16k, 64k neurons).

Matching Brian2's Euler steps exactly
-------------------------------------
Brian2 (``method="euler"``) integrates the linear decays dx/dt = −x/τ of the synaptic variables
(and of w_s and θ in PYR-STP) as x ← x·(1 − dt/τ); dendrite_sim decays channels exactly,
x ← x·exp(−dt/τ), by default. With ``euler_match=True`` (default) the builders ask for the
Euler factor: ``channel_method="euler"`` for the synaptic channels, and for the model's own
exact decays (w_s, θ of ``naud_sprekeler``) the time constant τ' = −dt / ln(1 − dt/τ)
(:func:`euler_tau`; 99.95 ms for 100 ms), for which exp(−dt/τ') = 1 − dt/τ. The two simulators
then compute the same numbers step by step; the only differences left are the random draws
(connectivity, initial states, Poisson input: Binomial(N, r·dt) per step in Brian2,
Poisson(N·r·dt) here) and floating-point rounding. ``euler_match=False`` keeps exact decays
with the published τ (an O(dt) difference).

Order of a step: Brian2 updates state, thresholds, then delivers spikes (zero delay) to the
synaptic variables that the *next* state update uses; dendrite_sim's default delay of one step
delivers them at the start of the next step, before the update (see
:mod:`dendrite_sim.engine.network`) — the same sequence.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.rng import stream
from dendrite_sim.engine.network import Network
from dendrite_sim.synapses import connectivity as C

CONNECT_P = 0.02
EXC_FRACTION = 0.8
NAMES = ("cuba", "coba", "pyr_stp")

# Brette et al. 2007 (Brian2 examples): synaptic jumps in Brian2's units
CUBA_JUMP_MV = (1.62, -9.0)          # mV
COBA_JUMP_GL = (0.6, 6.7)            # units of g_L
LIF_TAU_M, LIF_C_M = 20.0, 200.0     # ms, pF  (R = 0.1 mV/pA, g_L = 10 nS)


class Built(NamedTuple):
    """A built network, its neuron population and the spike monitor of that population."""

    net: Network
    pop: object
    spikes: object


def euler_tau(tau: float, dt: float) -> float:
    """τ' with exp(−dt/τ') = 1 − dt/τ: exact decay that reproduces one forward-Euler step."""
    if not tau > dt:
        raise ScenarioError("tau", f"expected a time constant larger than dt = {dt:g} ms, got {tau!r}")
    return -dt / math.log1p(-dt / tau)


def _method(euler_match: bool) -> str:
    return "euler" if euler_match else "exact"


def _check_size(n, k_in, p_conn):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ScenarioError("n", f"expected an integer number of neurons >= 2, got {n!r}")
    if k_in is None:
        if not (isinstance(p_conn, (int, float)) and 0.0 <= p_conn <= 1.0):
            raise ScenarioError("p_conn", f"expected a probability in [0, 1], got {p_conn!r}")
    elif isinstance(k_in, bool) or not isinstance(k_in, (int, np.integer)) or not 1 <= k_in < n:
        raise ScenarioError("k_in", f"expected an integer in-degree in [1, {n - 1}], got {k_in!r}")


def _rows_block(n: int, start: int, block: C.Connectivity) -> C.Connectivity:
    """Embed ``block`` (rows = presynaptic neurons start .. start + block.n_pre) in an n-row CSR."""
    indptr = np.zeros(n + 1, dtype=C.PTR)
    indptr[start + 1:start + block.n_pre + 1] = block.indptr[1:]
    indptr[start + block.n_pre + 1:] = block.indptr[-1]
    return C.Connectivity(n, block.n_post, indptr, block.indices, 1.0, 1)


def ei_connectivity(n: int, seed: int, p_conn: float = CONNECT_P, k_in: int | None = None,
                    name: str = "ei") -> tuple[C.Connectivity, C.Connectivity]:
    """Excitatory (rows 0 .. 0.8·n) and inhibitory (rows 0.8·n .. n) CSR on one population.

    ``k_in`` None: each pair with probability ``p_conn`` (autapses allowed, as Brian2's
    ``connect(p=...)``); otherwise each neuron receives round(0.8·k_in) distinct excitatory and
    k_in − round(0.8·k_in) distinct inhibitory inputs (autapses allowed).
    """
    ne = int(EXC_FRACTION * n)
    rng = stream(seed, f"connectivity/{name}")
    if k_in is None:
        exc = C.fixed_probability(ne, n, p_conn, rng)
        inh = C.fixed_probability(n - ne, n, p_conn, rng)
    else:
        ke = int(round(EXC_FRACTION * k_in))
        if ke > ne or k_in - ke > n - ne:
            raise ScenarioError("k_in", f"expected at most {ne} excitatory and {n - ne} inhibitory inputs "
                                f"per neuron, got {ke} and {k_in - ke}")
        exc = C.fixed_indegree(ne, n, ke, rng)
        inh = C.fixed_indegree(n - ne, n, k_in - ke, rng)
    return _rows_block(n, 0, exc), _rows_block(n, ne, inh)


def _spike_monitor(net, pop, monitor):
    return net.spike_monitor(pop, events=False, bursts=False) if monitor else None


def cuba(n: int = 4000, seed: int = 1, backend: str = "numba", p_conn: float = CONNECT_P,
         k_in: int | None = None, dt: float = 0.1, euler_match: bool = True, monitor: bool = True,
         bursts: bool = False, fastmath: bool = False) -> Built:
    """Brette et al. 2007 CUBA as :func:`.brian2_networks.run` ``("cuba", ...)`` builds it."""
    _check_size(n, k_in, p_conn)
    net = Network(dt=dt, seed=seed, backend=backend, fastmath=fastmath)
    r = stream(seed, "init/cuba")
    v0 = -60.0 + r.random(n) * 10.0                       # Vr + rand()·(Vt − Vr)
    pop = net.population("P", n, "lif", params={"E_L": -49.0, "tau_m": LIF_TAU_M, "C_m": LIF_C_M,
                                                "v_th": -50.0, "v_reset": -60.0, "t_ref": 5.0},
                         init={"v_soma": v0}, bursts=bursts, tau={"exc": 5.0, "inh": 10.0},
                         channel_method=_method(euler_match))
    R = LIF_TAU_M / LIF_C_M                               # mV/pA
    exc, inh = ei_connectivity(n, seed, p_conn, k_in)
    net.projection("P", "P", "exc", exc, weight=CUBA_JUMP_MV[0] / R, name="exc")
    net.projection("P", "P", "inh", inh, weight=CUBA_JUMP_MV[1] / R, name="inh")
    return Built(net, pop, _spike_monitor(net, pop, monitor))


def coba(n: int = 4000, seed: int = 1, backend: str = "numba", p_conn: float = CONNECT_P,
         k_in: int | None = None, dt: float = 0.1, euler_match: bool = True, monitor: bool = True,
         bursts: bool = False, fastmath: bool = False) -> Built:
    """Brette et al. 2007 COBA as :func:`.brian2_networks.run` ``("coba", ...)`` builds it."""
    _check_size(n, k_in, p_conn)
    net = Network(dt=dt, seed=seed, backend=backend, fastmath=fastmath)
    g_L = LIF_C_M / LIF_TAU_M                             # nS
    r = stream(seed, "init/coba")
    init = {"v_soma": -65.0 + 5.0 * r.standard_normal(n)}
    g_exc0 = g_L * (4.0 + 1.5 * r.standard_normal(n))
    g_inh0 = g_L * (20.0 + 12.0 * r.standard_normal(n))
    pop = net.population("P", n, "lif_cond", params={"E_L": -60.0, "tau_m": LIF_TAU_M, "C_m": LIF_C_M,
                                                     "v_th": -50.0, "v_reset": -60.0, "t_ref": 5.0,
                                                     "E_exc": 0.0, "E_inh": -80.0},
                         init=init, bursts=bursts, tau={"exc": 5.0, "inh": 10.0},
                         channel_method=_method(euler_match))
    pop.channels["exc"][:] = g_exc0
    pop.channels["inh"][:] = g_inh0
    exc, inh = ei_connectivity(n, seed, p_conn, k_in)
    net.projection("P", "P", "exc", exc, weight=COBA_JUMP_GL[0] * g_L, name="exc")
    net.projection("P", "P", "inh", inh, weight=COBA_JUMP_GL[1] * g_L, name="inh")
    return Built(net, pop, _spike_monitor(net, pop, monitor))


# PYR-STP: Poisson drive (channel, sources, rate Hz, weight pA) and recurrent projections
PYR_POISSON = (("soma_exc", 100, 5.0, 100.0), ("soma_inh", 30, 5.0, -100.0), ("dend_exc", 50, 5.0, 180.0))
PYR_RECURRENT = (("soma_exc", 5.0, "payeur_std"), ("dend_exc", 30.0, "payeur_stf"))
PYR_BIAS = 210.0                                          # pA into the soma


def pyr_stp(n: int = 4000, seed: int = 1, backend: str = "numba", p_conn: float = CONNECT_P,
            k_in: int | None = None, dt: float = 0.1, euler_match: bool = True, monitor: bool = True,
            bursts: bool = False, fastmath: bool = False) -> Built:
    """PYR-STP as :func:`.brian2_networks.run` ``("pyr_stp", ...)`` builds it.

    ``bursts=True`` also tracks events, bursts and running rates online (Brian2 does not; the
    comparison uses the offline burst fraction of the spike trains).
    """
    _check_size(n, k_in, p_conn)
    net = Network(dt=dt, seed=seed, backend=backend, fastmath=fastmath)
    params = {}
    if euler_match:                                       # Brian2 integrates w_s and θ by Euler
        params = {"tau_ws": euler_tau(100.0, dt), "tau_theta": euler_tau(27.0, dt)}
    taus = {"soma_exc": 5.0, "soma_inh": 10.0, "dend_exc": 5.0, "dend_inh": 10.0}
    pop = net.population("P", n, "naud_sprekeler", params=params, tau=taus, bursts=bursts,
                         channel_method=_method(euler_match))
    net.current("P", "soma", bias=PYR_BIAS)
    for ch, n_src, rate, w in PYR_POISSON:
        net.poisson_input("P", ch, n_sources=n_src, rate=rate, weight=w, name=f"poisson_{ch}")
    for ch, w, stp in PYR_RECURRENT:
        if k_in is None:
            net.projection("P", "P", ch, "fixed_probability", p=p_conn, autapses=False, weight=w, stp=stp,
                           name=f"rec_{ch}")
        else:
            net.projection("P", "P", ch, "fixed_indegree", k=k_in, autapses=False, weight=w, stp=stp,
                           name=f"rec_{ch}")
    return Built(net, pop, _spike_monitor(net, pop, monitor))


BUILDERS = {"cuba": cuba, "coba": coba, "pyr_stp": pyr_stp}


def build(name: str, **kwargs) -> Built:
    """One of :data:`NAMES` with the builder's keyword arguments."""
    if name not in BUILDERS:
        raise ScenarioError("network", f"expected one of {', '.join(NAMES)}, got {name!r}")
    return BUILDERS[name](**kwargs)


def run(name: str, n: int = 4000, duration_ms: float = 1000.0, seed: int = 1, backend: str = "numba",
        p_conn: float = CONNECT_P, k_in: int | None = None, bursts: bool = False, fastmath: bool = False,
        repeats: int = 1) -> dict:
    """Build and run a network; the result has the keys of :func:`.brian2_networks.run`.

    ``build_s``: building (connectivity, state); ``first_call_s``: a first run of one step,
    which generates and compiles (or loads from the cache) the fused loop; ``run_s``: the
    remaining ``duration_ms − dt`` of simulation, extrapolated to the full duration is
    ``run_s · duration / (duration − dt)``; with ``repeats`` > 1 the simulation continues for
    further ``duration_ms`` runs and ``run_s`` is the minimum. Spikes are those of the first
    ``duration_ms``; ``n_events`` counts the synaptic events they caused (Σ out-degrees).
    """
    t0 = time.perf_counter()
    b = build(name, n=n, seed=seed, backend=backend, p_conn=p_conn, k_in=k_in, bursts=bursts, fastmath=fastmath)
    t1 = time.perf_counter()
    dt = b.net.dt
    b.net.run(dt)
    t2 = time.perf_counter()
    b.net.run(duration_ms - dt)
    t3 = time.perf_counter()
    walls = [(t3 - t2) * duration_ms / (duration_ms - dt)]
    spike_i, spike_t = b.spikes.i, b.spikes.t
    for _ in range(max(1, repeats) - 1):
        t4 = time.perf_counter()
        b.net.run(duration_ms)
        walls.append(time.perf_counter() - t4)
    n_syn = sum(p.conn.nnz for p in b.net.projections)
    out_deg = sum(np.diff(p.conn.indptr) for p in b.net.projections)
    return {"build_s": t1 - t0, "first_call_s": t2 - t1, "run_s": min(walls), "spike_i": spike_i,
            "spike_t": spike_t, "n": n, "duration_ms": duration_ms, "n_synapses": int(n_syn),
            "n_events": int(out_deg[spike_i].sum()), "timings": dict(b.net.timings)}
