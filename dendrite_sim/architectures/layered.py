"""Layered rate network with a separate feedback pathway."""

from __future__ import annotations

from dendrite_sim.core.interfaces import Architecture
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.nonlinearities import NONLINEARITIES
from dendrite_sim.engine.rate import RateNetwork


@register("architecture", "layered")
class Layered(Architecture):
    """Feedforward layers of any depth and width; feedback symmetric, fixed random or learned."""

    params = {
        "hidden": Field("int_list", [20], "hidden layer widths, input to output", lo=1),
        "nonlinearity": Field("str", "tanh", "hidden non-linearity", choices=tuple(NONLINEARITIES)),
        "feedback": Field("str", "random", "feedback pathway B: Wᵀ, fixed random, or learned",
                          choices=("symmetric", "random", "learned")),
        "init_scale": Field("float", 1.0, "weight std × sqrt(fan-in)", lo=0, lo_open=True),
        "bias": Field("bool", True, "learn biases"),
    }

    def __init__(self, hidden, nonlinearity, feedback, init_scale, bias):
        self.hidden, self.nonlinearity, self.feedback = hidden, nonlinearity, feedback
        self.init_scale, self.bias = init_scale, bias

    def build(self, n_in, n_out, rng):
        return RateNetwork([n_in, *self.hidden, n_out], self.nonlinearity, self.feedback, rng,
                           init_scale=self.init_scale, bias=self.bias)
