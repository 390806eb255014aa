"""Genetically encoded calcium indicators: presets, Hill readout and per-spike calibration.

Readout (NAOMi, Song et al. 2021 Nat Methods 18:1157): the fraction of indicator bound to calcium
follows a Hill curve and the brightness grows with it,

    θ(c) = cⁿ / (cⁿ + K_dⁿ)                      bound fraction at free [Ca²⁺] = c
    b(c) = 1 + F_max θ(c)                          brightness relative to the Ca-free indicator
    ΔF/F₀(c) = b(c) / b(c_rest) − 1                what an experimenter measures at rest c_rest

so large events bend towards the saturation value b(∞)/b(c_rest) − 1 = (1 + F_max)/b(c_rest) − 1.

Per-spike calibration: each preset carries the peak ΔF/F₀ of one somatic action potential
(``dff_1ap``; MLspike's amplitude A, Deneux et al. 2016 Nat Commun 7:12190). The calcium step
per spike is the one the Hill curve turns into exactly that amplitude at rest:

    δc = K_d (θ₁ / (1 − θ₁))^(1/n) − c_rest,   θ₁ = ((1 + A) b(c_rest) − 1) / F_max.

Kinetics: a spike's calcium transient is a peak-normalised difference of exponentials with the
preset's rise and decay time constants (see :mod:`dendrite_sim.imaging.calcium`).

The published values live in ``dendrite_sim/data/indicators.csv`` with their sources, one row per
indicator; each row is registered as an ``indicator`` part, so a scenario writes
``indicator = "GCaMP6f"`` or a table ``[indicator] name = "GCaMP6s", tau_decay = "1.5 s"``.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Part
from dendrite_sim.core.schema import Field


@dataclass(frozen=True)
class Indicator:
    """One indicator's constants. Times in seconds, concentrations in nM."""

    name: str
    dff_max: float      # F_max: (F_saturated − F_apo) / F_apo
    k_d: float          # nM, Hill dissociation constant
    hill_n: float       # Hill coefficient
    tau_rise: float     # s
    tau_decay: float    # s
    dff_1ap: float      # peak ΔF/F₀ of one isolated somatic spike at rest

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# ----------------------------------------------------------------------------- the Hill readout
def bound_fraction(c, ind: Indicator):
    """θ(c) = cⁿ/(cⁿ + K_dⁿ), written as 1/(1 + (K_d/c)ⁿ) (c in nM, c ≥ 0)."""
    c = np.maximum(np.asarray(c, dtype=float), 1e-12)
    return 1.0 / (1.0 + (ind.k_d / c) ** ind.hill_n)


def brightness(c, ind: Indicator):
    """b(c) = 1 + F_max θ(c): fluorescence relative to the calcium-free indicator."""
    return 1.0 + ind.dff_max * bound_fraction(c, ind)


def dff_from_calcium(c, c_rest: float, ind: Indicator):
    """ΔF/F₀ = b(c)/b(c_rest) − 1, the noiseless readout of [Ca²⁺] = c."""
    return brightness(c, ind) / brightness(c_rest, ind) - 1.0


def dff_saturation(c_rest: float, ind: Indicator) -> float:
    """The largest ΔF/F₀ the indicator can report from rest: (1 + F_max)/b(c_rest) − 1."""
    return (1.0 + ind.dff_max) / float(brightness(c_rest, ind)) - 1.0


def calcium_for_dff(dff, c_rest: float, ind: Indicator):
    """Inverse readout: the [Ca²⁺] (nM) whose ΔF/F₀ from rest is ``dff`` (< saturation)."""
    dff = np.asarray(dff, dtype=float)
    theta = ((1.0 + dff) * brightness(c_rest, ind) - 1.0) / ind.dff_max
    if np.any(theta >= 1.0) or np.any(theta <= 0.0):
        raise ValueError(f"ΔF/F₀ {dff} is outside what {ind.name} can report from "
                         f"{c_rest:g} nM (0 < θ < 1)")
    return ind.k_d * (theta / (1.0 - theta)) ** (1.0 / ind.hill_n)


def calcium_per_spike(ind: Indicator, c_rest: float) -> float:
    """δc (nM): the peak calcium step that reads out as the preset's single-spike ΔF/F₀."""
    return float(calcium_for_dff(ind.dff_1ap, c_rest, ind)) - c_rest


# ----------------------------------------------------------------------------- the data table
@functools.lru_cache(maxsize=1)
def table() -> tuple[dict, ...]:
    """The rows of ``data/indicators.csv`` (values as strings, sources included)."""
    text = resources.files("dendrite_sim").joinpath("data/indicators.csv").read_text(encoding="utf-8")
    return tuple(dict(r) for r in csv.DictReader(text.splitlines()))


_NUMERIC = ("dff_max", "k_d_nM", "hill_n", "tau_rise_s", "tau_decay_s", "dff_1ap")


def preset(name: str) -> Indicator:
    """The published constants of a preset by name (no overrides)."""
    for row in table():
        if row["name"] == name:
            v = {k: float(row[k]) for k in _NUMERIC}
            return Indicator(name, v["dff_max"], v["k_d_nM"], v["hill_n"], v["tau_rise_s"],
                             v["tau_decay_s"], v["dff_1ap"])
    raise ScenarioError("indicator", f"unknown indicator {name!r}; available: "
                        f"{', '.join(r['name'] for r in table())}")


class IndicatorPreset(Part):
    """Base of the registered presets; the instance's ``indicator`` is the resolved record."""

    base_name: str = ""

    def __init__(self, **params):
        self.indicator = Indicator(
            name=self.base_name, dff_max=params["dff_max"], k_d=params["k_d"],
            hill_n=params["hill_n"], tau_rise=params["tau_rise"] / 1000.0,
            tau_decay=params["tau_decay"] / 1000.0, dff_1ap=params["dff_1ap"])
        if self.indicator.tau_rise >= self.indicator.tau_decay:
            raise ScenarioError("indicator.tau_rise", f"expected a rise time shorter than the decay "
                                f"time ({self.indicator.tau_decay:g} s)")
        if self.indicator.dff_1ap >= dff_saturation(0.0, self.indicator):
            raise ScenarioError("indicator.dff_1ap", "expected a single-spike ΔF/F₀ below the "
                                "indicator's saturation")


def _register_presets() -> None:
    for row in table():
        name = row["name"]
        params = {
            "dff_max": Field("float", float(row["dff_max"]), "F_max: saturated/apo brightness − 1",
                             lo=0.0, lo_open=True),
            "k_d": Field("quantity", f"{row['k_d_nM']} nM", "Hill dissociation constant",
                         dimension="concentration", lo=0.0, lo_open=True),
            "hill_n": Field("float", float(row["hill_n"]), "Hill coefficient", lo=0.0, lo_open=True),
            "tau_rise": Field("quantity", f"{row['tau_rise_s']} s", "rise time constant",
                              dimension="time", lo=0.0, lo_open=True),
            "tau_decay": Field("quantity", f"{row['tau_decay_s']} s", "decay time constant",
                               dimension="time", lo=0.0, lo_open=True),
            "dff_1ap": Field("float", float(row["dff_1ap"]), "peak ΔF/F₀ of one somatic spike",
                             lo=0.0, lo_open=True),
        }
        doc = (f"{name}: K_d {row['k_d_nM']} nM, n {row['hill_n']}, F_max {row['dff_max']}, "
               f"τ_rise {row['tau_rise_s']} s, τ_decay {row['tau_decay_s']} s, "
               f"1-AP ΔF/F₀ {row['dff_1ap']} ({row['note']}; sources in data/indicators.csv)")
        cls = type(f"Indicator_{name}", (IndicatorPreset,),
                   {"__doc__": doc, "params": params, "base_name": name,
                    "__module__": __name__})
        registry.register("indicator", name)(cls)


_register_presets()


def resolve(spec: Any, key: str = "indicator") -> Indicator:
    """An :class:`Indicator` from a preset name, a scenario table or an Indicator."""
    if isinstance(spec, Indicator):
        return spec
    if isinstance(spec, IndicatorPreset):
        return spec.indicator
    if isinstance(spec, (str, Mapping)):
        return registry.build("indicator", spec, key).indicator
    raise ScenarioError(key, f"expected an indicator name or table, got {spec!r}")
