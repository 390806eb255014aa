"""The neuron-model contract: one definition that every backend uses.

A model is a registered class (kind ``"neuron"``) that declares

* ``state_vars``: names of its per-neuron state variables, e.g. ``("v_soma", "v_dend", ...)``;
* ``channels``: synaptic input channels with their default decay time constants (ms), e.g.
  ``{"soma_exc": 5.0, "soma_inh": 10.0}``. A channel is a per-neuron variable that decays as
  exp(−dt/τ) every step and jumps by the synaptic weight when a spike arrives; the model decides
  how it enters the dynamics (as a current in pA or as a conductance in nS);
* ``compartments``: compartments that take injected current (pA), e.g. ``("soma", "dend")``; the
  engine passes one *drive* value per compartment (bias + time-varying input + noise);
* ``Params``: a NamedTuple of floats in internal units with the published defaults;
* ``step(*state, *channels, *drives, p, dt) -> (*new_state, spiked)``: one Euler (or exact)
  step, written **elementwise** with arithmetic, numpy ufuncs (``np.exp``) and :func:`select`
  instead of ``if``. The same function runs vectorised on whole arrays (numpy backend) and on
  scalars, one neuron at a time, inside the compiled Numba run loop (numba backend).
* ``initial_state(n, p, rng) -> dict[name, array]``.
* ``needs_uniform`` (default ``False``): models that spike stochastically (Poisson neurons such
  as Urbanczik–Senn or Guerguiev et al.) set it to ``True``; the engine then passes one extra
  positional argument just before ``p``: a uniform random number in [0, 1) per neuron per step,
  ``step(*state, *channels, *drives, u, p, dt)``. The model draws nothing itself, so a run is
  reproducible from the engine's seed and the same stream can be replayed in a test.

Adding a model is one new file with one such class plus its tests; the engine needs no change.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np
from numba.extending import overload

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Part
from dendrite_sim.core.schema import check_name


def select(cond, a, b):
    """Elementwise ``a if cond else b`` (numpy: ``np.where``; Numba: a scalar branch)."""
    return np.where(cond, a, b)


@overload(select, jit_options={"cache": True})
def _select_scalar(cond, a, b):
    def impl(cond, a, b):
        return a if cond else b

    return impl


class NeuronModel(Part):
    """Base of all neuron models. Subclasses set the class attributes documented above."""

    state_vars: ClassVar[tuple[str, ...]] = ()
    channels: ClassVar[dict[str, float]] = {}
    compartments: ClassVar[tuple[str, ...]] = ("soma",)
    Params: ClassVar[type] = NamedTuple
    spike_var: ClassVar[str] = "v_soma"   # the variable a raster or threshold refers to
    #: unit of every parameter and state variable (pint spelling, "1" for dimensionless): a
    #: scenario may write ``"0.2 nA"`` for a parameter in pA; a quantity of another dimension is
    #: an error. Names missing here accept plain numbers only (in the model's own unit).
    units: ClassVar[dict[str, str]] = {}
    needs_uniform: ClassVar[bool] = False  # True: step takes a uniform [0, 1) number before p

    @staticmethod
    def step(*args):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def make_params(cls, overrides: dict | None = None, key: str = "params"):
        """Defaults with ``overrides`` (internal-unit floats) applied; unknown names are errors."""
        overrides = overrides or {}
        fields = cls.Params._fields
        values = {}
        for name, value in overrides.items():
            check_name(name, fields, f"{key}.{name}", f"parameter of {cls.registered_name}")
            values[name] = cls.quantity(name, value, f"{key}.{name}")
        return cls.Params(**{**cls.Params()._asdict(), **values})

    @classmethod
    def quantity(cls, name: str, value, key: str) -> float:
        """``value`` of parameter or state variable ``name`` as a float in the model's unit."""
        from dendrite_sim.core.units import parse_in_unit

        unit = cls.units.get(name)
        if unit is None:
            if isinstance(value, str) or isinstance(value, bool):
                raise ScenarioError(key, f"expected a plain number ({cls.registered_name} declares no unit "
                                    f"for {name!r}), got {value!r}")
            return float(value)
        return parse_in_unit(value, unit, key)

    @classmethod
    def initial_state(cls, n: int, p, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError
