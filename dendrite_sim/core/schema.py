"""Declarative parameter schemas with one-line errors.

Every registered part declares its parameters as a mapping ``name -> Field``. Scenario sections
are validated against these schemas: unknown keys (with a did-you-mean), wrong types, wrong
dimensions and out-of-range values raise :class:`ScenarioError` naming the full key path.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.units import INTERNAL_UNITS, _short, parse_quantity

_TYPES = ("int", "float", "bool", "str", "quantity", "int_list", "float_list", "str_list",
          "quantity_list", "table")
_REQUIRED = object()
INT_MIN, INT_MAX = -(2**63), 2**63 - 1     # every integer key fits a 64-bit integer


@dataclass(frozen=True)
class Field:
    """One parameter.

    kind: int, float, bool, str, quantity (needs ``dimension``), int_list, float_list,
    str_list, quantity_list, table (free-form mapping, validated by its consumer).
    ``default`` of ``REQUIRED`` makes the key mandatory. ``lo``/``hi`` bound numbers
    (inclusive unless ``lo_open``/``hi_open``); ``choices`` restricts strings;
    ``min_len`` bounds list lengths.
    """

    kind: str
    default: Any = _REQUIRED
    doc: str = ""
    dimension: str | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    min_len: int = 0
    nullable: bool = False

    def __post_init__(self):
        if self.kind not in _TYPES:
            raise TypeError(f"unknown field kind {self.kind}")
        if self.kind.startswith("quantity") and self.dimension not in INTERNAL_UNITS:
            raise TypeError("quantity fields need a known dimension")

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def describe(self) -> str:
        what = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                "int_list": "a list of integers", "float_list": "a list of numbers",
                "str_list": "a list of strings", "table": "a table"}.get(self.kind)
        if self.kind == "quantity":
            what = f"a {self.dimension} with units, e.g. \"1 {INTERNAL_UNITS[self.dimension]}\""
        if self.kind == "quantity_list":
            what = f"a list of {self.dimension}s with units"
        if self.choices:
            what = "one of " + ", ".join(repr(c) for c in self.choices)
        return what + self._range_text()

    def _range_text(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi:g}")
        return (" " + " and ".join(parts)) if parts else ""

    # ---------------------------------------------------------------- validation
    def validate(self, value: Any, key: str) -> Any:
        if value is None and self.nullable:
            return None
        k = self.kind
        if k == "bool":
            if not isinstance(value, bool):
                raise ScenarioError(key, f"expected true or false, got {_short(value)}")
            return value
        if k == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ScenarioError(key, f"expected an integer{self._range_text()}, got {_short(value)}")
            self._check_range(value, key)
            if not INT_MIN <= value <= INT_MAX:
                raise ScenarioError(key, f"expected an integer that fits in 64 bits, got {_fmt(value)}")
            return value
        if k == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ScenarioError(key, f"expected a number{self._range_text()}, got {_short(value)}")
            number = _finite_float(value)
            if number is None:
                raise ScenarioError(key, f"expected a finite number, got {_fmt(value)}")
            return self._check_range(number, key)
        if k == "quantity":
            return self._check_range(parse_quantity(value, self.dimension, key), key)
        if k == "str":
            if not isinstance(value, str):
                raise ScenarioError(key, f"expected {self.describe()}, got {_short(value)}")
            if self.choices and value not in self.choices:
                raise ScenarioError(key, f"expected {self.describe()}, got {_short(value)}"
                                    + _suggest(value, self.choices))
            return value
        if k == "table":
            if not isinstance(value, Mapping):
                raise ScenarioError(key, f"expected a table, got {_short(value)}")
            return dict(value)
        # lists
        if not isinstance(value, list):
            raise ScenarioError(key, f"expected {self.describe()}, got {_short(value)}")
        if len(value) < self.min_len:
            raise ScenarioError(key, f"expected at least {self.min_len} entries, got {len(value)}")
        item = Field(k.removesuffix("_list"), dimension=self.dimension, lo=self.lo, hi=self.hi,
                     lo_open=self.lo_open, hi_open=self.hi_open, choices=self.choices)
        return [item.validate(v, f"{key}[{i}]") for i, v in enumerate(value)]

    def _check_range(self, v, key):
        unit = f" {INTERNAL_UNITS[self.dimension]}" if self.dimension else ""
        bad = ((self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo))) or
               (self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi))))
        if bad:
            raise ScenarioError(key, f"expected a value{self._range_text()}{unit}, got {_fmt(v)}{unit}")
        return v


REQUIRED = _REQUIRED
Schema = Mapping[str, Field]


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_section(values: Mapping[str, Any] | None, schema: Schema, prefix: str,
                     ignore: tuple = ()) -> dict:
    """Validate ``values`` against ``schema``; fill defaults. ``prefix`` is the key path."""
    values = {} if values is None else values
    if not isinstance(values, Mapping):
        raise ScenarioError(prefix, f"expected a table, got {_short(values)}")
    out = {}
    for k in values:
        if k in ignore:
            continue
        if k not in schema:
            allowed = ", ".join(sorted(schema)) or "no keys"
            raise ScenarioError(_join(prefix, k), f"unknown key{_suggest(k, schema)}; allowed: {allowed}")
    for name, f in schema.items():
        key = _join(prefix, name)
        if name in values:
            out[name] = f.validate(values[name], key)
        elif f.required:
            raise ScenarioError(key, f"missing; expected {f.describe()}")
        else:  # defaults are written as a user would write them ("5 ms") and parsed the same way
            out[name] = None if f.default is None else f.validate(f.default, key)
    return out


def _finite_float(value) -> float | None:
    """``float(value)`` when it is finite, else ``None`` (NaN, ±inf, an int too large for a float)."""
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return number if math.isfinite(number) else None


def _fmt(v) -> str:
    """A number for an error line: ``%g`` for floats; a huge integer as ``~1e+400``."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        if -(10**15) < v < 10**15:
            return str(int(v))
        digits = v.bit_length() * 0.30103 if v > 0 else (-v).bit_length() * 0.30103
        return f"{'-' if v < 0 else ''}~1e+{int(digits)}" if digits > 300 else f"{float(v):g}"
    try:
        return f"{float(v):g}"
    except (OverflowError, ValueError, TypeError):
        return _short(v)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def check_name(name: str, allowed, key: str, what: str) -> None:
    """Raise a :class:`ScenarioError` at ``key`` unless ``name`` is one of ``allowed`` (with a
    did-you-mean), e.g. ``check_name("tau_d", STPParams._fields, "stp.tau_d", "STP parameter")``."""
    if name not in allowed:
        raise ScenarioError(key, f"unknown {what}{_suggest(name, allowed)}; allowed: {', '.join(allowed)}")


def number_or_time(value, key: str, time: bool) -> float:
    """A record field: a plain number, or — for a time field — also a string with units."""
    if time and isinstance(value, str):
        return parse_quantity(value, "time", key)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ScenarioError(key, f"expected a number{' or a time with units' if time else ''}, got {_short(value)}")
    try:
        return float(value)
    except OverflowError:
        raise ScenarioError(key, f"expected a finite number, got {_fmt(value)}") from None


# --------------------------------------------------------------------------- physical bounds
# The grammar shared by neuron models' and synapse rules' ``bounds``: "> x", ">= x", "< x",
# "<= x" or an interval "[a, b]", "(a, b]", "[a, b)", "(a, b)", in the parameter's own unit.

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf"
_BOUND_OP = re.compile(rf"^(>=|<=|>|<)\s*({_NUM})$")
_BOUND_INTERVAL = re.compile(rf"^([\[(])\s*({_NUM})\s*,\s*({_NUM})\s*([\])])$")


def parse_bound(spec: str) -> tuple[float, bool, float, bool]:
    """``"> 0"`` → ``(0, False, inf, False)``: (low, low included, high, high included).

    Accepts ``"> x"``, ``">= x"``, ``"< x"``, ``"<= x"`` and intervals ``"[a, b]"``, ``"(a, b]"``,
    ``"[a, b)"``, ``"(a, b)"``; raises ``ValueError`` for anything else (a model-definition bug).
    """
    s = spec.strip()
    m = _BOUND_OP.match(s)
    if m:
        op, x = m.group(1), float(m.group(2))
        if op[0] == ">":
            return x, op == ">=", math.inf, False
        return -math.inf, False, x, op == "<="
    m = _BOUND_INTERVAL.match(s)
    if m and float(m.group(2)) <= float(m.group(3)):
        return float(m.group(2)), m.group(1) == "[", float(m.group(3)), m.group(4) == "]"
    raise ValueError(f"bad bound {spec!r}: expected '> x', '>= x', '< x', '<= x' or an interval '[a, b]'")


def within_bound(value: float, bound: tuple[float, bool, float, bool]) -> bool:
    """Whether a finite ``value`` lies in ``bound`` (:func:`parse_bound`); NaN and ±inf never do."""
    lo, lo_in, hi, hi_in = bound
    return (math.isfinite(value) and (value >= lo if lo_in else value > lo)
            and (value <= hi if hi_in else value < hi))


def check_bounds(bounds: Mapping[str, str], units: Mapping[str, str], params, key: str = "params") -> None:
    """Raise :class:`ScenarioError` at ``<key>.<field>`` for the first numeric field of the
    record ``params`` that is not finite or lies outside its bound in ``bounds``; ``units``
    (field → pint unit) only words the message (``expected a finite value > 0 pF, got 0.0 pF``)."""
    for name in params._fields:
        value = getattr(params, name)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            continue
        try:
            value = float(value)
        except OverflowError:                  # an integer beyond a float: not a finite value
            value = math.inf if value > 0 else -math.inf
        spec = bounds.get(name)
        unit = units.get(name, "1")
        shown = f"{value!r}" if unit == "1" else f"{value!r} {unit}"
        if spec is None:
            if not math.isfinite(value):
                raise ScenarioError(f"{key}.{name}", f"expected a finite number, got {shown}")
            continue
        if not within_bound(value, parse_bound(spec)):
            where = f"in {spec.strip()}" if spec.strip()[0] in "[(" else spec.strip()
            if unit != "1":
                where = f"{where} {unit}"
            raise ScenarioError(f"{key}.{name}", f"expected a finite value {where}, got {shown}")


def check_bounds_declaration(cls, bounds: Mapping[str, str], params_type) -> None:
    """At class definition: every bounded name is a field of ``params_type``, every bound parses."""
    fields = getattr(params_type, "_fields", ())
    for name, spec in bounds.items():
        if name not in fields:
            raise TypeError(f"{cls.__name__}.bounds names {name!r}, which is not a field of {params_type.__name__}")
        parse_bound(spec)
