"""dendrite_sim — spiking and dendritic neuron simulator and credit-assignment framework.

A circuit model is an objective, a learning rule and an architecture, plus a task
(Richards et al. 2019, Nat Neurosci 22:1761). Parts are registered by name and
composed by TOML scenarios; see ``dendrite-sim list``.
"""

__version__ = "0.1.0"

from dendrite_sim.core.errors import ScenarioError  # noqa: E402
from dendrite_sim.core.registry import available, get, register  # noqa: E402

__all__ = ["__version__", "ScenarioError", "register", "get", "available"]
