"""Layered network with a separate feedback pathway, on either substrate.

:meth:`Layered.describe` gives the circuit in the shared vocabulary
(:func:`dendrite_sim.core.circuit.layered_circuit`: input → hidden pyramidal layers → output,
feedforward onto basal dendrites, feedback onto the apical dendrites of hidden layers, from the
layer above or broadcast from the output); :meth:`Layered.build` instantiates it as a rate
network (the fast special case), and the spiking substrate instantiates the same description
with compartmental neurons (:class:`dendrite_sim.engine.circuit.SpikingCircuit`).
"""

from __future__ import annotations

from dendrite_sim.core.circuit import layered_circuit
from dendrite_sim.core.interfaces import Architecture
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.nonlinearities import NONLINEARITIES
from dendrite_sim.engine.rate import RateNetwork


@register("architecture", "layered")
class Layered(Architecture):
    """Feedforward layers of any depth and width; feedback symmetric, fixed random or learned."""

    params = {
        "hidden": Field("int_list", [20], "hidden layer widths, input to output ([] for none)", lo=1),
        "nonlinearity": Field("str", "tanh", "hidden non-linearity", choices=tuple(NONLINEARITIES)),
        "feedback": Field("str", "random", "feedback pathway B: Wᵀ, fixed random, or learned",
                          choices=("symmetric", "random", "learned")),
        "feedback_route": Field("str", "layerwise", "where a hidden layer's apical feedback comes "
                                "from: the layer above, or the output (direct, Guerguiev et al. 2017)",
                                choices=("layerwise", "direct")),
        "init_scale": Field("float", 1.0, "weight std × sqrt(fan-in)", lo=0, lo_open=True),
        "bias": Field("bool", True, "learn biases"),
    }

    def __init__(self, hidden, nonlinearity, feedback, init_scale, bias, feedback_route="layerwise"):
        self.hidden, self.nonlinearity, self.feedback = hidden, nonlinearity, feedback
        self.init_scale, self.bias, self.feedback_route = init_scale, bias, feedback_route

    def describe(self, n_in, n_out):
        return layered_circuit([n_in, *self.hidden, n_out], self.feedback, self.feedback_route)

    def build(self, n_in, n_out, rng):
        return RateNetwork.from_circuit(self.describe(n_in, n_out), self.nonlinearity, rng,
                                        init_scale=self.init_scale, bias=self.bias)
