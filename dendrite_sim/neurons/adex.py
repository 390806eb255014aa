"""Adaptive exponential integrate-and-fire neurons (AdEx) and the PV / SOM interneurons built on it.

Brette & Gerstner 2005 (J Neurophysiol 94:3637), conductance-based synapses as in the
Brette et al. 2007 COBA benchmark and in Payeur et al. 2021's interneurons (auryn ``AdExGroup``):

    C dV/dt  = −g_L (V − E_L) + g_L Δ_T exp((V − V_T)/Δ_T) − w
               − g_exc (V − E_exc) − g_inh (V − E_inh) + I_drive
    τ_w dw/dt = a (V − E_L) − w
    V > V_peak:  spike, V ← V_r, w ← w + b, V clamped at V_r for t_ref (w keeps evolving).

Integration: forward Euler on V and w from the values at the start of the step (Brian2
``euler``; the scheme of the Brian2 and auryn reference code). Refractoriness as in
:mod:`dendrite_sim.neurons.lif` (Brian2 convention: shortest inter-spike interval = t_ref).
``V`` never starts a step above ``V_peak`` (it is reset), so the exponential cannot overflow.

Three registered models share this one update rule and differ only in their published defaults:

* ``adex`` — Brette & Gerstner 2005, regular spiking cortical cell (C 281 pF, g_L 30 nS,
  E_L −70.6 mV, V_T −50.4 mV, Δ_T 2 mV, τ_w 144 ms, a 4 nS, b 80.5 pA, V_r = E_L; V_peak 20 mV).
  The eight firing patterns of Naud et al. 2008 (Biol Cybern 99:335, Table 1) are available as
  presets: ``AdEx.preset_params("tonic")`` and :data:`NAUD2008_CURRENT` for the step current the
  paper uses for each (spike cut at V_peak = 0 mV as in the paper).
* ``pv`` — fast-spiking, non-adapting parvalbumin interneuron of Payeur et al. 2021 (Nat
  Neurosci; apayeur/spikingburstprop ``fix_parameters_pv_neurons``): g_L 10 nS, τ_m 10 ms,
  E_L −70 mV, Δ_T 2 mV, a = b = 0, V_r = E_L + 15 mV, t_ref 1 ms, rheobase 200 pA
  (V_T = I_rh/g_L + E_L + Δ_T = −48 mV).
* ``som`` — adapting, low-threshold somatostatin interneuron of Payeur et al. 2021
  (``fix_parameters_som_neurons``): g_L 5 nS, τ_m 20 ms, τ_w 500 ms, E_L −70 mV, Δ_T 4 mV,
  a 0.5 nS, b 10 pA, V_r = E_L + 5 mV, t_ref 2 ms, rheobase 25 pA
  (V_T = I_rh/(g_L + a) + E_L + Δ_T − Δ_T ln(1 + a/g_L) ≈ −61.84 mV).

Why PV and SOM are registered models and not presets: a scenario names one model per
population, and the interneuron populations of the microcircuit (Payeur et al.) are cell types
with their own defaults; registering them lets a scenario say ``neuron = "som"`` and still
override single parameters. The Naud et al. firing patterns are illustrative parameter sets
for one model and stay presets. Differences from auryn's ``AdExGroup`` (which Payeur et al.
ran): auryn clamps V at E_L (not V_r) during the refractory period and clips V to
[E_inh, 20 mV]; we clamp at V_r as Brian2 and NEST do, and the peak is V_peak = 0 mV as in
auryn.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import exp, select
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.registry import register
from dendrite_sim.neurons.base import NeuronModel


class AdExParams(NamedTuple):
    """Brette & Gerstner 2005 defaults (internal units: pF, nS, mV, ms, pA)."""

    C_m: float = 281.0       # pF
    g_L: float = 30.0        # nS
    E_L: float = -70.6       # mV
    V_T: float = -50.4       # mV   threshold of the exponential term
    Delta_T: float = 2.0     # mV   slope factor (> 0)
    a: float = 4.0           # nS   subthreshold adaptation
    tau_w: float = 144.0     # ms
    b: float = 80.5          # pA   spike-triggered adaptation
    V_r: float = -70.6       # mV   reset
    V_peak: float = 20.0     # mV   spike cut-off
    t_ref: float = 0.0       # ms
    E_exc: float = 0.0       # mV
    E_inh: float = -80.0     # mV


# Payeur et al. 2021 interneurons: thresholds derived from the rheobases they chose.
_PV_RHEOBASE, _PV_GL, _PV_EL, _PV_DT = 200.0, 10.0, -70.0, 2.0
_SOM_RHEOBASE, _SOM_GL, _SOM_A, _SOM_EL, _SOM_DT = 25.0, 5.0, 0.5, -70.0, 4.0


class PVParams(NamedTuple):
    """Fast-spiking PV interneuron, Payeur et al. 2021 (apayeur/spikingburstprop)."""

    C_m: float = 100.0       # pF   (g_L · τ_m = 10 nS · 10 ms)
    g_L: float = _PV_GL      # nS
    E_L: float = _PV_EL      # mV
    V_T: float = _PV_RHEOBASE / _PV_GL + _PV_EL + _PV_DT   # −48 mV
    Delta_T: float = _PV_DT  # mV
    a: float = 0.0           # nS   non-adapting
    tau_w: float = 5.0       # ms   (irrelevant with a = b = 0)
    b: float = 0.0           # pA
    V_r: float = _PV_EL + 15.0   # mV
    V_peak: float = 0.0      # mV   (auryn's spike detection)
    t_ref: float = 1.0       # ms
    E_exc: float = 0.0       # mV
    E_inh: float = -80.0     # mV


class SOMParams(NamedTuple):
    """Adapting, low-threshold SOM interneuron, Payeur et al. 2021 (apayeur/spikingburstprop)."""

    C_m: float = 100.0       # pF   (g_L · τ_m = 5 nS · 20 ms)
    g_L: float = _SOM_GL     # nS
    E_L: float = _SOM_EL     # mV
    V_T: float = (_SOM_RHEOBASE / (_SOM_GL + _SOM_A) + _SOM_EL + _SOM_DT
                  - _SOM_DT * math.log(1.0 + _SOM_A / _SOM_GL))          # ≈ −61.84 mV
    Delta_T: float = _SOM_DT  # mV
    a: float = _SOM_A        # nS
    tau_w: float = 500.0     # ms
    b: float = 10.0          # pA
    V_r: float = _SOM_EL + 5.0   # mV
    V_peak: float = 0.0      # mV
    t_ref: float = 2.0       # ms
    E_exc: float = 0.0       # mV
    E_inh: float = -80.0     # mV


#: Naud et al. 2008 Table 1: parameter sets of the eight firing patterns (V_peak 0 mV).
NAUD2008_PATTERNS: dict[str, dict[str, float]] = {
    "tonic": dict(C_m=200.0, g_L=10.0, E_L=-70.0, V_T=-50.0, Delta_T=2.0, a=2.0, tau_w=30.0,
                  b=0.0, V_r=-58.0),
    "adapting": dict(C_m=200.0, g_L=12.0, E_L=-70.0, V_T=-50.0, Delta_T=2.0, a=2.0, tau_w=300.0,
                     b=60.0, V_r=-58.0),
    "initial_burst": dict(C_m=130.0, g_L=18.0, E_L=-58.0, V_T=-50.0, Delta_T=2.0, a=4.0,
                          tau_w=150.0, b=120.0, V_r=-50.0),
    "regular_bursting": dict(C_m=200.0, g_L=10.0, E_L=-58.0, V_T=-50.0, Delta_T=2.0, a=2.0,
                             tau_w=120.0, b=100.0, V_r=-46.0),
    "delayed_accelerating": dict(C_m=200.0, g_L=12.0, E_L=-70.0, V_T=-50.0, Delta_T=2.0, a=-10.0,
                                 tau_w=300.0, b=0.0, V_r=-58.0),
    "delayed_regular_bursting": dict(C_m=100.0, g_L=10.0, E_L=-65.0, V_T=-50.0, Delta_T=2.0,
                                     a=-10.0, tau_w=90.0, b=30.0, V_r=-47.0),
    "transient": dict(C_m=100.0, g_L=10.0, E_L=-65.0, V_T=-50.0, Delta_T=2.0, a=10.0, tau_w=90.0,
                      b=100.0, V_r=-47.0),
    "irregular": dict(C_m=100.0, g_L=12.0, E_L=-60.0, V_T=-50.0, Delta_T=2.0, a=-11.0,
                      tau_w=130.0, b=30.0, V_r=-48.0),
}

#: The step current (pA) Naud et al. 2008 use to show each pattern.
NAUD2008_CURRENT: dict[str, float] = {
    "tonic": 500.0, "adapting": 500.0, "initial_burst": 400.0, "regular_bursting": 210.0,
    "delayed_accelerating": 300.0, "delayed_regular_bursting": 110.0, "transient": 180.0,
    "irregular": 160.0,
}


@register("neuron", "adex")
class AdEx(NeuronModel):
    """Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005), conductance synapses."""

    state_vars = ("v_soma", "w", "refractory")
    channels = {"exc": 5.0, "inh": 10.0}   # conductances in nS
    compartments = ("soma",)
    Params = AdExParams
    units = {"C_m": "pF", "g_L": "nS", "E_L": "mV", "V_T": "mV", "Delta_T": "mV", "a": "nS",
             "tau_w": "ms", "b": "pA", "V_r": "mV", "V_peak": "mV", "t_ref": "ms", "E_exc": "mV",
             "E_inh": "mV", "v_soma": "mV", "w": "pA", "refractory": "ms"}
    # a and b keep their sign: a < 0 gives the delayed/irregular patterns of Naud et al. 2008
    bounds = {"C_m": "> 0", "g_L": "> 0", "Delta_T": "> 0", "tau_w": "> 0", "t_ref": ">= 0"}

    @staticmethod
    def step(v, w, ref, g_exc, g_inh, I_drive, p, dt):
        ref = ref - dt                  # refractory time left after this step
        active = ref < 0.5 * dt
        I = (-p.g_L * (v - p.E_L) + p.g_L * p.Delta_T * exp((v - p.V_T) / p.Delta_T) - w
             - g_exc * (v - p.E_exc) - g_inh * (v - p.E_inh) + I_drive)
        v_new = select(active, v + I * (dt / p.C_m), v)
        w_new = w + (p.a * (v - p.E_L) - w) * (dt / p.tau_w)
        spiked = v_new > p.V_peak
        v_new = select(spiked, p.V_r, v_new)
        w_new = select(spiked, w_new + p.b, w_new)
        ref_new = select(spiked, p.t_ref, select(active, 0.0, ref))
        return v_new, w_new, ref_new, spiked

    @classmethod
    def preset_params(cls, pattern: str, overrides: dict | None = None, key: str = "params"):
        """Parameters of a Naud et al. 2008 firing pattern (V_peak 0 mV), plus ``overrides``."""
        if pattern not in NAUD2008_PATTERNS:
            raise ScenarioError(f"{key}.preset", f"expected one of {', '.join(NAUD2008_PATTERNS)}, "
                                f"got {pattern!r}")
        return cls.make_params({**NAUD2008_PATTERNS[pattern], "V_peak": 0.0, **(overrides or {})}, key)

    @classmethod
    def initial_state(cls, n, p, rng):
        return {"v_soma": np.full(n, p.E_L), "w": np.zeros(n), "refractory": np.zeros(n)}


@register("neuron", "pv")
class PV(AdEx):
    """Fast-spiking, non-adapting PV interneuron (AdEx, Payeur et al. 2021 parameters)."""

    Params = PVParams


@register("neuron", "som")
class SOM(AdEx):
    """Adapting, low-threshold SOM interneuron (AdEx, Payeur et al. 2021 parameters)."""

    Params = SOMParams
