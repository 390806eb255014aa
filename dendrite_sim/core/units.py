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
import re

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


# --------------------------------------------------------------------------- the quantity grammar
# A quantity string is ``<number> <unit>``, read here, not by pint's expression evaluator (which
# computes ``"10**10**10 ms"`` as a power tower and never returns): the number is a decimal
# literal (``5``, ``-70``, ``0.5``, ``2e-3``; ``nan``/``inf`` are read so that they can be refused
# by name), the unit a product of unit names with small integer powers (``ms``, ``1/ms``,
# ``mV/ms``, ``um**2``, ``nS*ms``). Each unit name alone is looked up by pint. Operators
# anywhere else, parentheses, and prefixes that make no sense for a neuron model (mega and
# above except on hertz; atto and below) are refused with one line.

MAX_QUANTITY_CHARS = 200
_NUMBER = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?i:nan|inf|infinity))(?![\d.])"
_NAME = r"[^\W\d]+"                                    # letters (µ, μ, Ω included) and _
_POWER = r"(?:\s*(?:\*\*|\^)\s*[-+]?\d)?"
_TERM = rf"(?:{_NAME}{_POWER}|1(?=\s*/))"
_UNIT = rf"(?:/\s*)?{_TERM}(?:\s*(?:\*|/|·|\s)\s*{_TERM})*"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*({_UNIT})?\s*$")
_TOKEN = re.compile(rf"(\*|/|·)|({_NAME})(?:\s*(?:\*\*|\^)\s*([-+]?\d))?|(1)")
_BIG = ("mega", "giga", "tera", "peta", "exa", "zetta", "yotta", "ronna", "quetta")
_TINY = ("atto", "zepto", "yocto", "ronto", "quecto")
_BIG_OK = ("hertz",)                                     # MHz and GHz are sensible rates


class _QuantityError(Exception):
    """Why a quantity string does not parse (worded for the user)."""


def _unit_of(name: str):
    reg = ureg()
    try:
        unit = reg.Unit(name)
    except Exception:
        raise _QuantityError(f"unknown unit {name!r}") from None
    try:
        candidates = reg.parse_unit_name(name)
    except Exception:
        candidates = ()
    for prefix, base, _suffix in candidates:
        if (prefix in _BIG and base not in _BIG_OK) or prefix in _TINY:
            raise _QuantityError(f"the prefix {prefix!r} in {name!r} makes no sense here")
    return unit


def split_quantity(text: str):
    """``"5 ms"`` → ``(5.0, <Unit('millisecond')>)``; ``"0.5"`` → ``(0.5, None)``.

    Raises :class:`_QuantityError` with a user-facing reason for anything else: no number
    (``"ms"``), operators or parentheses in the number (``"10**400 pA"``), unknown units,
    nonsense prefixes (``"5 Ms"``), strings longer than :data:`MAX_QUANTITY_CHARS`.
    """
    if len(text) > MAX_QUANTITY_CHARS:
        raise _QuantityError(f"the string is longer than {MAX_QUANTITY_CHARS} characters")
    m = _QUANTITY.match(text)
    if m is None:
        stripped = text.strip()
        if re.fullmatch(_UNIT, stripped or "-"):
            raise _QuantityError("no number before the unit")
        if re.search(r"\*\*|\^|[()]", stripped):
            raise _QuantityError("expected a number and a unit only; operators and parentheses "
                                 "are not accepted")
        raise _QuantityError("expected <number> <unit>")
    number, unit_text = m.group(1), m.group(2)
    try:
        value = float(number)
    except (ValueError, OverflowError):
        raise _QuantityError(f"{number!r} is not a number") from None
    if not unit_text:
        return value, None
    return value, _unit_expression(unit_text.strip())


@functools.lru_cache(maxsize=512)
def _unit_expression(unit_text: str):
    """``"mV/ms"`` → the pint unit, built name by name (cached: scenarios repeat their units)."""
    unit, op = None, "*"
    for tok in _TOKEN.finditer(unit_text):
        sym, name, power, one = tok.groups()
        if sym:
            op = "/" if sym == "/" else "*"
            continue
        if one:
            term = ureg().Unit("dimensionless")
        else:
            term = _unit_of(name)
            if power is not None:
                term = term ** int(power)
        if unit is None:
            unit = term if op == "*" else 1 / term
        else:
            unit = unit * term if op == "*" else unit / term
        op = "*"
    return unit


def parse_quantity(value, dimension: str, key: str) -> float:
    """Parse ``value`` (a string with units) into a float in the internal unit of ``dimension``.

    A bare number is refused for dimensional quantities: the unit must be explicit.
    """
    unit = INTERNAL_UNITS[dimension]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScenarioError(key, f"expected a {dimension} with units, e.g. \"1 {unit}\", got {_short(value)}")
    if not isinstance(value, str):
        raise ScenarioError(key, f"expected a {dimension} with units as a string, e.g. \"{_short(value)} {unit}\"")
    try:
        mag, u = split_quantity(value)
    except _QuantityError as exc:
        raise ScenarioError(key, f"expected a {dimension} with units, e.g. \"1 {unit}\", "
                            f"could not parse {_short(value)}: {exc}") from None
    target = _target(unit)
    if u is None or u.dimensionality != target.dimensionality:
        got = "no units" if u is None or u.dimensionless else f"{u:~}"
        raise ScenarioError(key, f"expected a {dimension} (e.g. \"1 {unit}\"), got {_short(value)} ({got})")
    if not math.isfinite(mag):
        raise ScenarioError(key, f"expected a finite {dimension}, got {_short(value)}")
    mag = _convert(mag, u, target)
    if not math.isfinite(mag):
        raise ScenarioError(key, f"expected a finite {dimension}, got {_short(value)}")
    return mag


def parse_in_unit(value, unit: str, key: str) -> float:
    """A number (already in ``unit``) or a string with units compatible with ``unit`` → float in
    ``unit``. Used where a part declares its own unit (e.g. a model's rate in 1/ms, a gain in 1/mV;
    ``"1"`` for dimensionless)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScenarioError(key, f"expected a number in {unit} or a quantity with units, got {_short(value)}")
    if not isinstance(value, str):
        try:
            mag = float(value)
        except OverflowError:
            raise ScenarioError(key, f"expected a finite value, got {_short(value)}") from None
    else:
        target = _target(unit)
        try:
            mag, u = split_quantity(value)
        except _QuantityError as exc:
            raise ScenarioError(key, f"expected a quantity in units of {unit}, could not parse "
                                f"{_short(value)}: {exc}") from None
        if u is None:
            u = ureg().Unit("dimensionless")
        if u.dimensionality != target.dimensionality:
            raise ScenarioError(key, f"expected a quantity in units of {unit}, got {_short(value)}")
        if math.isfinite(mag):
            mag = _convert(mag, u, target)
    if not math.isfinite(mag):
        raise ScenarioError(key, f"expected a finite value, got {_short(value)}")
    return mag


def _convert(mag: float, unit, target) -> float:
    """``mag`` in ``unit`` expressed in ``target`` (same dimensionality; every unit here is
    multiplicative): ``mag`` times the cached factor — the number pint's ``to()`` gives, at a
    fraction of its cost (a scenario may hold a million spike times); inf on overflow."""
    return mag * _factor(unit, target)


@functools.lru_cache(maxsize=64)
def _target(unit: str):
    """The pint unit of an internal or declared unit name (``"ms"``, ``"1/ms"``, ``"1"``)."""
    return ureg().Quantity(1.0, unit).units


@functools.lru_cache(maxsize=512)
def _factor(unit, target) -> float:
    return float(ureg().Quantity(1.0, unit).to(target).magnitude)


def _short(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (an error line stays readable)."""
    try:
        text = repr(value)
    except Exception:                      # e.g. an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
