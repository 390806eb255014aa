"""How long a run would take, estimated at ``check`` time, and the limit a scenario must stay under.

Experiments call :func:`check_runtime` from their ``validate`` with a rough count of the work a
run does, so that ``dendrite-sim check`` refuses ``epochs = 1e30`` or ``dt = "1e-7 ms"`` with one
line naming the key and the estimate, instead of a run that never ends. The conversion factors
are orders of magnitude for one core of this kind of machine (deliberately generous: a refused
scenario would have run for days, not minutes):

* rate networks: :data:`FLOPS` multiply-adds per second (batched numpy);
* spiking networks: :data:`NEURON_STEPS` neuron updates per second and :data:`SYNAPTIC_EVENTS`
  spike deliveries per second (the compiled loop).

The limit is ``DENDRITE_SIM_MAX_HOURS`` (default 24 hours); set it higher to allow longer runs
on a bigger machine, or to ``inf`` to switch the check off.
"""

from __future__ import annotations

import math
import os

from dendrite_sim.core.errors import ScenarioError

FLOPS = 1e9
NEURON_STEPS = 5e7
SYNAPTIC_EVENTS = 1e8
DEFAULT_MAX_HOURS = 24.0


def max_hours() -> float:
    text = os.environ.get("DENDRITE_SIM_MAX_HOURS")
    if not text:
        return DEFAULT_MAX_HOURS
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError("DENDRITE_SIM_MAX_HOURS", f"expected a number of hours, got {text!r}") from None
    if not value > 0:
        raise ScenarioError("DENDRITE_SIM_MAX_HOURS", f"expected a positive number of hours, got {text!r}")
    return value


def estimate_seconds(flops: float = 0.0, neuron_steps: float = 0.0, synaptic_events: float = 0.0) -> float:
    return flops / FLOPS + neuron_steps / NEURON_STEPS + synaptic_events / SYNAPTIC_EVENTS


def _human(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds > 1e6 * 365 * 86400:
        return "longer than a million years"
    for unit, s in (("years", 365 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= s:
            return f"about {seconds / s:.3g} {unit}"
    return f"about {seconds:.3g} s"


def check_runtime(key: str, what: str, **work: float) -> float:
    """Refuse (``ScenarioError`` at ``key``) a run whose estimated time exceeds the limit;
    ``what`` says what was counted (e.g. "200 epochs × 1000 samples × 10k weights")."""
    seconds = estimate_seconds(**work)
    limit = max_hours() * 3600.0
    if seconds > limit:
        raise ScenarioError(key, f"expected a run this machine can finish: {what} is {_human(seconds)} of "
                            f"compute, over the {max_hours():g} h limit (set DENDRITE_SIM_MAX_HOURS to allow it)")
    return seconds
