"""Every built-in model declares the unit of every parameter and state variable, and a scenario
value with units is converted to it (a quantity of the wrong dimension is an error)."""

import pytest

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.units import ureg

MODELS = {k: v for k, v in registry.available("neuron").items() if v.__module__.startswith("dendrite_sim.")}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_parameter_and_state_variable_has_a_unit(name):
    cls = MODELS[name]
    missing = [f for f in (*cls.Params._fields, *cls.state_vars) if f not in cls.units]
    assert not missing, f"{name}: no unit for {missing}"
    for unit in cls.units.values():
        ureg().Quantity(1.0, unit)  # a unit pint knows


def test_strings_with_units_convert_and_wrong_dimensions_fail():
    ns = MODELS["naud_sprekeler"]
    p = ns.make_params({"C_s": "0.37 nF", "tau_s": "0.016 s", "g_s": "1.3 nA", "E_L": -65})
    assert (p.C_s, p.tau_s, p.g_s, p.E_L) == pytest.approx((370.0, 16.0, 1300.0, -65.0))
    us = MODELS["urbanczik_senn"]
    assert us.make_params({"phi_max": "150 Hz"}).phi_max == pytest.approx(0.15)   # kept in 1/ms
    assert us.make_params({"beta": "0.5 /mV"}).beta == pytest.approx(0.5)
    with pytest.raises(ScenarioError, match=r"params\.E_L: expected a quantity in units of mV"):
        ns.make_params({"E_L": "5 ms"})
    with pytest.raises(ScenarioError, match=r"params\.phi_max: expected a quantity in units of 1/ms"):
        us.make_params({"phi_max": "0.15 mV"})
