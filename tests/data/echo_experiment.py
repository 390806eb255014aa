"""A test plugin: an experiment with quantity fields that echoes them (exercises units)."""

from dendrite_sim import register
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.schema import Field


@register("experiment", "echo_quantities")
class EchoQuantities(Experiment):
    """Echo validated quantities (test plugin)."""

    sections = {
        "cell": {
            "tau_m": Field("quantity", "20 ms", "membrane time constant", dimension="time", lo=0, lo_open=True),
            "bias": Field("quantity", "0 pA", "bias current", dimension="current"),
            "v_th": Field("quantity", "-50 mV", "threshold", dimension="voltage", hi=0),
            "rate": Field("quantity", "5 Hz", "rate", dimension="frequency", lo=0),
            "weights": Field("quantity_list", ["1 nS"], "conductances", dimension="conductance"),
        }
    }

    def run(self, cfg, ctx):
        return dict(cfg["cell"])
