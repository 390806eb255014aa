"""Architecture ``microcircuit``: the dendritic cortical microcircuit of Sacramento, Ponte Costa,
Bengio & Senn (2018 NeurIPS) on the rate substrate.

Pyramidal layers with basal, apical and somatic compartments; in each hidden layer one SST-like
interneuron per pyramidal cell of the layer above; top-down weights B = W^PP_{k,k+1} (fixed random,
learned, or Wᵀ); interneuron weights W^IP, W^PI in a random or the self-predicting initial state;
the output nudged toward the target with conductance g_som. The network is a
:class:`dendrite_sim.engine.microcircuit.MicrocircuitNetwork` (a ``RateNetwork``), so the ``train``
experiment, its evaluation and its ``feedback_angle_deg`` metric work as for ``layered``; the
equations and the settling scheme are documented in :mod:`dendrite_sim.engine.microcircuit`.
Train it with the rule ``dendritic_microcircuit``.
"""

from __future__ import annotations

from dendrite_sim.core.circuit import microcircuit_circuit
from dendrite_sim.core.interfaces import Architecture
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine.microcircuit import Conductances, MicrocircuitNetwork
from dendrite_sim.engine.nonlinearities import NONLINEARITIES, soft_relu


@register("architecture", "microcircuit")
class Microcircuit(Architecture):
    """Sacramento et al. 2018 dendritic microcircuit: 3-compartment pyramids, SST-like interneurons."""

    params = {
        "hidden": Field("int_list", [50], "hidden pyramidal layer widths, input to output "
                        "(each hidden layer also holds one interneuron per pyramid of the layer above)",
                        lo=1),
        "nonlinearity": Field("str", "soft_relu", "rate function φ of pyramids and interneurons; "
                              "'soft_relu' is γ log(1 + exp(β(u − θ))) with phi_gamma, phi_beta, "
                              "phi_theta", choices=tuple(NONLINEARITIES)),
        "output_nonlinearity": Field("str", "same", "rate function of the output pyramids (and of "
                                     "the interneurons that mimic them): 'same' as the hidden layers, "
                                     "or a named one", choices=("same", *NONLINEARITIES)),
        "phi_gamma": Field("float", 1.0, "soft-ReLU γ (scale)", lo=0, lo_open=True),
        "phi_beta": Field("float", 1.0, "soft-ReLU β (steepness)", lo=0, lo_open=True),
        "phi_theta": Field("float", 0.0, "soft-ReLU θ (threshold)"),
        "feedback": Field("str", "random", "top-down weights B = W^PP_{k,k+1}: fixed random, "
                          "learned (rule eta_topdown), or W^T", choices=("random", "learned", "symmetric")),
        "init_state": Field("str", "random", "initial interneuron weights: random, or the "
                            "self-predicting state (W^PI = -B, W^IP matched to the forward weights)",
                            choices=("random", "self_predicting")),
        "init_scale": Field("float", 1.0, "forward weight std × sqrt(fan-in)", lo=0, lo_open=True),
        "bias": Field("bool", True, "learn basal (and interneuron) biases"),
        "g_lk": Field("float", 0.1, "leak conductance", lo=0),
        "g_B": Field("float", 1.0, "basal-to-soma conductance", lo=0, lo_open=True),
        "g_A": Field("float", 0.8, "apical-to-soma conductance", lo=0),
        "g_D": Field("float", 1.0, "interneuron dendrite-to-soma conductance", lo=0, lo_open=True),
        "g_som": Field("float", 0.8, "somatic nudging conductance (output toward the target; "
                       "interneurons toward their partner pyramids)", lo=0),
        "tol": Field("float", 1e-6, "steady state: stop when max |u* - u| of a sweep is below this",
                     lo=0, lo_open=True),
        "max_iter": Field("int", 200, "steady state: most Gauss-Seidel sweeps", lo=1),
        "damping": Field("float", 1.0, "steady state: relaxation factor α of u += α (u* - u)",
                         lo=0, hi=1, lo_open=True),
    }

    def __init__(self, hidden=(50,), nonlinearity="soft_relu", output_nonlinearity="same", phi_gamma=1.0, phi_beta=1.0,
                 phi_theta=0.0, feedback="random", init_state="random", init_scale=1.0, bias=True,
                 g_lk=0.1, g_B=1.0, g_A=0.8, g_D=1.0, g_som=0.8, tol=1e-6, max_iter=200, damping=1.0):
        self.hidden = list(hidden)
        self.nonlinearity, self.feedback, self.init_state = nonlinearity, feedback, init_state
        self.output_nonlinearity = output_nonlinearity
        self.phi_gamma, self.phi_beta, self.phi_theta = phi_gamma, phi_beta, phi_theta
        self.init_scale, self.bias = init_scale, bias
        self.conductances = Conductances(g_lk=g_lk, g_B=g_B, g_A=g_A, g_D=g_D, g_som=g_som)
        self.tol, self.max_iter, self.damping = tol, max_iter, damping

    def phi(self):
        """``(φ, φ′)``: the parametrised soft-ReLU, or the named non-linearity."""
        if self.nonlinearity == "soft_relu":
            return soft_relu(self.phi_gamma, self.phi_beta, self.phi_theta)
        return NONLINEARITIES[self.nonlinearity]

    def phi_out(self):
        """``(φ_out, φ_out′)`` of the output layer, or None when it is φ."""
        if self.output_nonlinearity == "same":
            return None
        if self.output_nonlinearity == "soft_relu":
            return soft_relu(self.phi_gamma, self.phi_beta, self.phi_theta)
        return NONLINEARITIES[self.output_nonlinearity]

    def describe(self, n_in, n_out):
        """The circuit in the shared vocabulary (:func:`dendrite_sim.core.circuit.microcircuit_circuit`)."""
        return microcircuit_circuit([n_in, *self.hidden, n_out], self.feedback)

    def build(self, n_in, n_out, rng):
        return MicrocircuitNetwork([n_in, *self.hidden, n_out], self.nonlinearity, self.feedback, rng,
                                   phi=self.phi(), phi_out=self.phi_out(), conductances=self.conductances,
                                   init_scale=self.init_scale, bias=self.bias,
                                   init_state=self.init_state, tol=self.tol,
                                   max_iter=self.max_iter, damping=self.damping)
