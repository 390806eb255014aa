"""Neuron models declare physical ranges (``bounds``) for their parameters; ``make_params``
refuses values outside them with a one-line :class:`ScenarioError` naming ``<key>.<param>``.

Before the bounds, ``C_s = "0 pF"`` ran a Naud–Sprekeler population (firing at 72 Hz: the
division by C_s gave inf, and the reset turned it into spikes) and a LIF with
``tau_m = "-20 ms"`` integrated backwards in time without complaint.
"""

from __future__ import annotations

import math
import re

import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.registry import available
from dendrite_sim.neurons.base import NeuronModel, parse_bound, within_bound

MODELS = sorted(available("neuron").items())


@pytest.mark.parametrize("name,cls", MODELS, ids=[m for m, _ in MODELS])
def test_defaults_satisfy_the_declared_bounds(name, cls):
    p = cls.Params()
    for field, spec in cls.bounds.items():
        assert within_bound(float(getattr(p, field)), parse_bound(spec)), (name, field, spec)
    cls.make_params()          # and make_params accepts them


@pytest.mark.parametrize("name,cls", [m for m in MODELS if m[1].__module__.startswith("dendrite_sim.")],
                         ids=[m for m, c in MODELS if c.__module__.startswith("dendrite_sim.")])
def test_every_builtin_bounds_its_capacitances_and_time_constants(name, cls):
    for field in cls.Params._fields:
        unit = cls.units.get(field, "")
        if unit in ("pF", "ms") and field not in ("t_ref", "bap_length"):
            assert cls.bounds.get(field) == "> 0", f"{name}.{field} ({unit}) should be declared '> 0'"


# (model, parameter, bad value, what the message says is expected)
BAD = [
    ("naud_sprekeler", "C_s", "0 pF", "> 0 pF"),                # the case of the issue: ran at 72 Hz
    ("lif", "tau_m", "-20 ms", "> 0 ms"),                       # the other case of the issue
    ("lif", "C_m", 0.0, "> 0 pF"),
    ("lif", "t_ref", "-1 ms", ">= 0 ms"),
    ("lif_cond", "tau_m", 0.0, "> 0 ms"),
    ("naud_sprekeler", "C_d", "-170 pF", "> 0 pF"),
    ("naud_sprekeler", "tau_theta", 0.0, "> 0 ms"),
    ("naud_sprekeler", "D", 0.0, "> 0 mV"),
    ("naud_sprekeler", "g_s", -1.0, ">= 0 pA"),
    ("naud_sprekeler", "bap_length", "-2 ms", ">= 0 ms"),
    ("adex", "Delta_T", 0.0, "> 0 mV"),
    ("adex", "C_m", "-1 pF", "> 0 pF"),
    ("adex", "tau_w", 0.0, "> 0 ms"),
    ("pv", "g_L", 0.0, "> 0 nS"),
    ("som", "t_ref", -2.0, ">= 0 ms"),
    ("guerguiev", "tau_L", 0.0, "> 0 ms"),
    ("guerguiev", "g_B", -0.6, ">= 0 1/ms"),
    ("urbanczik_senn", "C_d", 0.0, "> 0 pF"),
    ("urbanczik_senn", "g_L_d", 0.0, "> 0 nS"),
    ("urbanczik_senn", "phi_max", "-1 Hz", ">= 0 1/ms"),
]

#: non-finite values are refused as well (by the unit parser, before the bounds are looked at)
NOT_FINITE = [("naud_sprekeler", "tau_s", math.inf), ("lif", "tau_m", math.nan), ("lif", "E_L", -math.inf),
              ("adex", "a", math.nan)]


@pytest.mark.parametrize("model,field,value,expected", BAD, ids=[f"{m}.{f}={v}" for m, f, v, _ in BAD])
def test_out_of_range_values_name_the_key(model, field, value, expected):
    key = "network.populations.P.params"
    with pytest.raises(ScenarioError) as info:
        available("neuron")[model].make_params({field: value}, key=key)
    err = info.value
    assert str(err).splitlines()[0] == str(err)               # one line
    assert f"{key}.{field}" in str(err)
    assert f"expected a finite value {expected}, got" in str(err)


@pytest.mark.parametrize("model,field,value", NOT_FINITE, ids=[f"{m}.{f}={v}" for m, f, v in NOT_FINITE])
def test_non_finite_values_name_the_key(model, field, value):
    with pytest.raises(ScenarioError, match=rf"^neuron\.params\.{field}: expected a finite"):
        available("neuron")[model].make_params({field: value}, key="neuron.params")


def test_bounds_are_checked_on_the_final_record():
    """check_bounds also guards values that bypass the unit parser (e.g. a Params built in code)."""
    lif = available("neuron")["lif"]
    with pytest.raises(ScenarioError, match=r"^p\.E_L: expected a finite number, got inf mV$"):
        lif.check_bounds(lif.Params(E_L=math.inf), key="p")
    with pytest.raises(ScenarioError, match=r"^p\.tau_m: expected a finite value > 0 ms, got -20\.0 ms$"):
        lif.check_bounds(lif.Params(tau_m=-20.0), key="p")
    assert lif.make_params({"E_L": "-65 mV", "v_reset": -80.0}).E_L == -65.0   # signed: no bound


def test_adex_keeps_negative_adaptation_of_naud_2008():
    adex = available("neuron")["adex"]
    assert adex.preset_params("delayed_accelerating").a == -10.0


@pytest.mark.parametrize("spec,inside,outside", [
    ("> 0", [1e-300, 5.0], [0.0, -1.0, math.inf, math.nan]),
    (">= 0", [0.0, 3.0], [-1e-300, math.inf]),
    ("< 0", [-1.0], [0.0]),
    ("<= -1.5", [-1.5, -2.0], [-1.4]),
    ("[0, 1]", [0.0, 0.5, 1.0], [-0.1, 1.1, math.nan]),
    ("(0, 1]", [1.0, 0.5], [0.0]),
    ("[0, 1)", [0.0], [1.0]),
    ("(-1e3, 2.5e2)", [0.0, -999.0], [-1000.0, 250.0]),
])
def test_bound_grammar(spec, inside, outside):
    b = parse_bound(spec)
    assert all(within_bound(v, b) for v in inside)
    assert not any(within_bound(v, b) for v in outside)


@pytest.mark.parametrize("spec", ["0 <", "=> 0", "[1, 0]", "(0, 1", "positive", ""])
def test_bad_bound_grammar_is_a_definition_error(spec):
    with pytest.raises(ValueError, match=re.escape(repr(spec))):
        parse_bound(spec)


def test_bounds_are_checked_when_the_model_class_is_defined():
    from typing import NamedTuple

    class P(NamedTuple):
        tau: float = 10.0

    with pytest.raises(TypeError, match="not a field"):
        class Typo(NeuronModel):
            Params = P
            bounds = {"tua": "> 0"}
    with pytest.raises(ValueError, match="bad bound"):
        class Grammar(NeuronModel):
            Params = P
            bounds = {"tau": "> zero"}
