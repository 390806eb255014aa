"""Physical quantities in scenarios.

Scenario values with units are strings such as ``"5 ms"`` or ``"200 pA"``, parsed with
`pint <https://pint.readthedocs.io>`_. Internally every quantity is a plain float in the
fixed internal unit of its dimension:

=============  ==========
dimension      unit
=============  ==========
time           ms
voltage        mV
current        pA
conductance    nS
capacitance    pF
frequency      Hz
length         µm
concentration  nM
=============  ==========
"""

from __future__ import annotations

import functools
import math

from dendrite_sim.core.errors import ScenarioError

INTERNAL_UNITS = {
    "time": "ms",
    "voltage": "mV",
    "current": "pA",
    "conductance": "nS",
    "capacitance": "pF",
    "frequency": "Hz",
    "length": "um",
    "concentration": "nM",
}


@functools.lru_cache(maxsize=1)
def ureg():
    """The shared pint UnitRegistry (imported on first use: pint takes ~0.1 s to import)."""
    import pint

    return pint.UnitRegistry()


def parse_quantity(value, dimension: str, key: str) -> float:
    """Parse ``value`` (a string with units) into a float in the internal unit of ``dimension``.

    A bare number is refused for dimensional quantities: the unit must be explicit.
    """
    unit = INTERNAL_UNITS[dimension]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScenarioError(key, f"expected a {dimension} with units, e.g. \"1 {unit}\", got {value!r}")
    if not isinstance(value, str):
        raise ScenarioError(key, f"expected a {dimension} with units as a string, e.g. \"{value} {unit}\"")
    try:
        q = ureg().Quantity(value.strip())
    except Exception:
        raise ScenarioError(key, f"expected a {dimension} with units, e.g. \"1 {unit}\", "
                            f"could not parse {value!r}") from None
    target = ureg().Unit(unit)
    if not isinstance(q, ureg().Quantity) or q.dimensionality != target.dimensionality:
        got = "no units" if not isinstance(q, ureg().Quantity) or q.dimensionless else f"{q.units:~}"
        raise ScenarioError(key, f"expected a {dimension} (e.g. \"1 {unit}\"), got {value!r} ({got})")
    mag = float(q.to(target).magnitude)
    if mag != mag or mag in (float("inf"), float("-inf")):
        raise ScenarioError(key, f"expected a finite {dimension}, got {value!r}")
    return mag


def parse_in_unit(value, unit: str, key: str) -> float:
    """A number (already in ``unit``) or a string with units compatible with ``unit`` → float in
    ``unit``. Used where a part declares its own unit (e.g. a model's rate in 1/ms, a gain in 1/mV;
    ``"1"`` for dimensionless)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScenarioError(key, f"expected a number in {unit} or a quantity with units, got {value!r}")
    if not isinstance(value, str):
        mag = float(value)
    else:
        target = ureg().Quantity(1.0, unit)
        try:
            q = ureg().Quantity(value.strip())
        except Exception:
            raise ScenarioError(key, f"expected a quantity in units of {unit}, could not parse {value!r}") from None
        if not isinstance(q, ureg().Quantity):
            q = ureg().Quantity(float(q))
        if q.dimensionality != target.dimensionality:
            raise ScenarioError(key, f"expected a quantity in units of {unit}, got {value!r}")
        mag = float(q.to(target.units).magnitude)
    if not math.isfinite(mag):
        raise ScenarioError(key, f"expected a finite value, got {value!r}")
    return mag
