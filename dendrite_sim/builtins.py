"""Imports every built-in part so that its ``@register`` decorator runs."""

# architectures
from dendrite_sim.architectures import layered  # noqa: F401

# objectives
from dendrite_sim.objectives import cross_entropy, mse, reward  # noqa: F401

# neuron models
from dendrite_sim.neurons import adex, guerguiev, lif, naud_sprekeler, urbanczik_senn  # noqa: F401

# learning rules
from dendrite_sim.rules import (  # noqa: F401
    backprop,
    direct_feedback_alignment,
    feedback_alignment,
    node_perturbation,
    weight_perturbation,
)

# experiments
from dendrite_sim.experiments import rule_bias_variance  # noqa: F401

# tasks
from dendrite_sim.tasks import digits, gratings, mnist, teacher_student, xor  # noqa: F401

# train experiment
from dendrite_sim.experiments import train  # noqa: F401

# calcium indicators (imaging)
from dendrite_sim.imaging import indicators  # noqa: F401

# spiking network experiment
from dendrite_sim.experiments import simulate  # noqa: F401

# OpenScope-style imaging study (spiking circuit -> synthetic imaging -> NWB)
from dendrite_sim.experiments import openscope_session  # noqa: F401

# burst multiplexing (Naud & Sprekeler 2018)
from dendrite_sim.experiments import burst_multiplexing  # noqa: F401
