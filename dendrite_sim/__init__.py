"""dendrite_sim — spiking and dendritic neuron simulator and credit-assignment framework.

A circuit model is an objective, a learning rule and an architecture, plus a task
(Richards et al. 2019, Nat Neurosci 22:1761). Parts are registered by name and
composed by TOML scenarios; see ``dendrite-sim list`` and ``docs/scenarios.md``.

In a notebook::

    from dendrite_sim import Network
    net = Network(dt="0.1 ms", seed=1, backend="numpy")
    net.population("pyr", 100, "lif")
    net.poisson_input("pyr", "exc", n_sources=100, rate="5 Hz", weight="20 pA")
    spikes = net.spike_monitor("pyr")
    net.run("200 ms")

``Network`` is imported on first use (the package face imports only ``core``).
"""

__version__ = "0.1.0"

from dendrite_sim.core.errors import ArgumentError, DivergenceError, ScenarioError  # noqa: E402
from dendrite_sim.core.registry import available, get, register  # noqa: E402

__all__ = ["__version__", "ScenarioError", "ArgumentError", "DivergenceError", "register", "get",
           "available", "Network"]

#: names served lazily from the layers above core: name -> module
_LAZY = {"Network": "dendrite_sim.engine.network"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dendrite_sim' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
