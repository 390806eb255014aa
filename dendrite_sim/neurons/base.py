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
* ``units``: the unit of every parameter and state variable (pint spelling, ``"1"`` for
  dimensionless), e.g. ``{"C_s": "pF", "tau_s": "ms"}``; a scenario may then write ``"0.37 nF"``;
* ``bounds``: the physical range of parameters, next to ``units``, e.g.
  ``{"C_s": "> 0", "g_s": ">= 0", "p_release": "[0, 1]"}``. A bound is ``"> x"``, ``">= x"``,
  ``"< x"``, ``"<= x"`` or an interval ``"[a, b]"``, ``"(a, b]"``, ``"[a, b)"``, ``"(a, b)"`` in
  the parameter's unit (the grammar of synapse rules' ``bounds``). :meth:`NeuronModel.make_params`
  refuses a value outside it — and any non-finite parameter — with a
  :class:`~dendrite_sim.core.errors.ScenarioError` naming ``<key>.<param>`` and saying what was
  expected, so ``dendrite-sim check`` refuses ``C_s = "0 pF"`` instead of the run firing at
  72 Hz. What to bound: capacitances, time constants and slope factors ``> 0`` (they divide);
  leak conductances ``> 0`` where a steady state divides by them; coupling conductances,
  amplitudes that are magnitudes by definition, durations and rates ``>= 0``; probabilities and
  fractions ``[0, 1]``. Signed quantities (potentials, adaptation couplings whose sign selects
  the behaviour, e.g. AdEx ``a < 0`` in Naud et al. 2008) stay unbounded. Subclasses inherit
  their parent's bounds; the grammar and the names are checked when the class is defined;
* ``step(*state, *channels, *drives, p, dt) -> (*new_state, spiked)``: one Euler (or exact)
  step, written **elementwise** in the kernel language :mod:`dendrite_sim.core.elementwise`
  (arithmetic, comparisons, ``&``/``|``, ``exp``, ``log``, ``expm1``, ``power``, ``clip``,
  ``minimum``/``maximum`` and ``select(cond, a, b)`` instead of ``if``) — never ``np.exp`` or
  ``math.exp`` directly. The same function then runs vectorised on whole arrays (numpy backend),
  on scalars one neuron at a time inside the compiled Numba run loop (numba backend), and in
  Numba's CUDA target (``tests/test_cuda_kernels.py`` compiles every registered model to PTX and
  runs it in the CUDA simulator).
* ``initial_state(n, p, rng) -> dict[name, array]``.
* ``needs_uniform`` (default ``False``): models that spike stochastically (Poisson neurons such
  as Urbanczik–Senn or Guerguiev et al.) set it to ``True``; the engine then passes one extra
  positional argument just before ``p``: a uniform random number in [0, 1) per neuron per step,
  ``step(*state, *channels, *drives, u, p, dt)``. The model draws nothing itself, so a run is
  reproducible from the engine's seed and the same stream can be replayed in a test.
* ``circuit_ports`` (optional): how the compartments of the architecture vocabulary
  (:mod:`dendrite_sim.core.circuit`: ``basal``, ``apical``, ``soma``) map onto this model, so a
  described circuit can be built from it — circuit compartment → ``(synaptic channel, drive
  compartment)`` (the drive compartment takes the learned bias), plus ``"teacher"`` →
  ``(excitatory, inhibitory)`` somatic conductance channels through which a teacher nudges
  output neurons. A model without them cannot be used by ``train`` on the spiking substrate.

Adding a model is one new file with one such class plus its tests; the engine needs no change.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np

from dendrite_sim.core.elementwise import select  # noqa: F401 - re-exported for older imports
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Part
from dendrite_sim.core.schema import (  # noqa: F401 - parse_bound, within_bound re-exported
    check_bounds,
    check_bounds_declaration,
    check_name,
    parse_bound,
    within_bound,
)


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
    #: physical range of parameters (``"> 0"``, ``">= 0"``, ``"[0, 1]"`` ...; module docstring)
    bounds: ClassVar[dict[str, str]] = {}
    needs_uniform: ClassVar[bool] = False  # True: step takes a uniform [0, 1) number before p
    #: circuit compartment → (channel, drive compartment); "teacher" → (exc, inh) channels
    circuit_ports: ClassVar[dict[str, tuple[str, str]]] = {}

    @classmethod
    def stable_dt(cls, p, extra_soma_conductance: float = 0.0) -> float:
        """The largest stable time step (ms) of the model's integration scheme with parameters
        ``p`` and an extra somatic conductance (a teacher's) in the model's units; ``inf`` for
        schemes stable at any dt (exact or exponential Euler)."""
        return float("inf")

    def __init_subclass__(cls, **kwargs):
        """Check a model's ``bounds`` when its class is defined: known parameters, valid grammar."""
        super().__init_subclass__(**kwargs)
        check_bounds_declaration(cls, cls.bounds, cls.Params)

    @staticmethod
    def step(*args):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def make_params(cls, overrides: dict | None = None, key: str = "params"):
        """Defaults with ``overrides`` applied (floats in the model's units, or quantities with
        units), then checked: unknown names, wrong dimensions, non-finite values and values
        outside :attr:`bounds` raise :class:`ScenarioError` naming ``<key>.<param>``."""
        overrides = overrides or {}
        fields = cls.Params._fields
        values = {}
        for name, value in overrides.items():
            check_name(name, fields, f"{key}.{name}", f"parameter of {cls.registered_name}")
            values[name] = cls.quantity(name, value, f"{key}.{name}")
        params = cls.Params(**{**cls.Params()._asdict(), **values})
        cls.check_bounds(params, key)
        return params

    @classmethod
    def check_bounds(cls, params, key: str = "params") -> None:
        """Raise :class:`ScenarioError` at ``<key>.<param>`` for the first parameter of ``params``
        that is not finite or lies outside its declared bound (:func:`~dendrite_sim.core.schema.check_bounds`)."""
        check_bounds(cls.bounds, cls.units, params, key)

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
