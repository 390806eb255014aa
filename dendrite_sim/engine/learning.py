"""The learning hook: how a :class:`~dendrite_sim.core.interfaces.LearningRule` changes the
weights of a running spiking network.

This is the per-chunk face of the rule contract. A rule is attached to one projection with
``projection(..., plasticity={"rule": name, "eta": ..., "every": ..., ...})`` or
:meth:`Network.plasticity_hook(projection, rule, eta, every, modulator, w_min, w_max)
<dendrite_sim.engine.network.Network.plasticity_hook>`.
The run is then executed in chunks of ``every`` ms (the compiled loop runs each chunk without
Python work per step); at the end of every chunk the engine

1. builds a :class:`SpikingState` — read-only views of the presynaptic and postsynaptic
   populations (:class:`PopulationView`: running spike / event / burst rates and the burst
   probability, the spike / event / burst *counts* of each neuron during the chunk, any state
   variable), the chunk length, the time, and the global modulator (``modulator``: a number or
   a callable ``modulator(net) -> float``, e.g. a reward-prediction error; default 1.0);
2. calls ``rule.local_factors(state)`` which returns :class:`LocalFactors`
   ``(pre, post, modulator)``: one factor per presynaptic neuron, one per postsynaptic neuron
   and a scalar;
3. applies the shared outer-product update to every synapse k = (j → i) of the projection::

       w_k ← clip(w_k + (η · modulator · post_i) · pre_j,  w_min, w_max)

   (vectorised over the CSR arrays; identical for both backends, because the weights live in
   numpy arrays that the compiled loop reads in place).

The other three parts compose the same way on this substrate: an ``Architecture`` whose
``build`` returns a :class:`~dendrite_sim.engine.network.Network` (populations = layers,
projections = feedforward and feedback pathways), a ``Task`` whose inputs become
``current(..., array=...)`` drives or spike generators, and an ``Objective`` evaluated on
output rates or spike counts read between chunks — its teaching signal reaches the rule as the
``modulator`` or as a drive of the output population's dendrites.

For example a burst-dependent rule (Payeur et al. 2021, dW/dt = η [B − P̄ E] Ẽ_pre) returns
``post = bursts − burst_prob · events`` (counts during the chunk) and ``pre = event_rate`` of
the presynaptic population. Rules that need spike-timing precision run inside the compiled loop
instead, as synapse rules (:mod:`dendrite_sim.synapses.plasticity`; e.g. STDP,
``plasticity={"rule": "stdp", ...}``; phase ``plasticity`` of :mod:`.schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dendrite_sim.core.interfaces import LocalFactors


class PopulationView:
    """What a rule may read about one population at the end of a chunk (copies)."""

    def __init__(self, pop, since: dict[str, np.ndarray]):
        self.name = pop.name
        self.n = pop.n
        self._pop = pop
        self.spikes = pop.spike_count - since["spikes"]
        self.events = pop.event_count - since["events"] if pop.track_bursts else None
        self.bursts = pop.burst_count - since["bursts"] if pop.track_bursts else None

    @property
    def spike_rate(self) -> np.ndarray:
        return self._pop.spike_rate.copy()

    @property
    def event_rate(self) -> np.ndarray:
        return self._pop.event_rate.copy()

    @property
    def burst_rate(self) -> np.ndarray:
        return self._pop.burst_rate.copy()

    @property
    def burst_prob(self) -> np.ndarray:
        return np.asarray(self._pop.burst_prob).copy()

    def state(self, var: str) -> np.ndarray:
        """Current values of a state variable, channel, drive or running rate."""
        return np.asarray(self._pop.variable(var)).copy()


@dataclass
class SpikingState:
    """Argument of ``LearningRule.local_factors`` on the spiking substrate."""

    projection: str
    pre: PopulationView
    post: PopulationView
    t: float             # ms, end of the chunk
    elapsed: float       # ms, chunk length
    modulator: float
    weights: np.ndarray  # read-only view of the CSR weights


def _snapshot(pop) -> dict[str, np.ndarray]:
    zeros = np.zeros(pop.n, dtype=np.int64)
    return {"spikes": pop.spike_count.copy(),
            "events": pop.event_count.copy() if pop.track_bursts else zeros,
            "bursts": pop.burst_count.copy() if pop.track_bursts else zeros}


def next_boundary(net, end: int) -> int:
    """The next step at which some per-chunk rule or weight monitor is due, or ``end``."""
    stop = end
    for h in net.plasticity:
        stop = min(stop, (net.step // h.every + 1) * h.every)
    for m in net.weight_monitors:
        stop = min(stop, m.next_due(net.step))
    return stop


def start_interval(net, hook) -> None:
    """Remember the counts at the start of an interval (at creation and after each update)."""
    hook.since = (_snapshot(hook.projection.pre), _snapshot(hook.projection.post))
    hook.t0 = net.step


def apply_due(net) -> None:
    """Run every hook whose interval ends at the current step."""
    for h in net.plasticity:
        if net.step % h.every == 0 and h.last != net.step and net.step > h.t0:
            apply(net, h)


def apply(net, hook) -> None:
    proj = hook.projection
    mod = hook.modulator(net) if callable(hook.modulator) else (1.0 if hook.modulator is None else hook.modulator)
    w = proj.conn.weights.view()
    w.flags.writeable = False
    state = SpikingState(proj.name, PopulationView(proj.pre, hook.since[0]),
                         PopulationView(proj.post, hook.since[1]), net.t,
                         (net.step - hook.t0) * net.dt, float(mod), w)
    f = hook.rule.local_factors(state)
    if not isinstance(f, LocalFactors):
        raise TypeError(f"{type(hook.rule).__name__}.local_factors must return LocalFactors")
    outer_update(proj.conn, np.asarray(f.pre, dtype=np.float64), np.asarray(f.post, dtype=np.float64),
                 hook.eta * float(f.modulator), hook.w_min, hook.w_max)
    start_interval(net, hook)
    hook.last = net.step
    hook.updates += 1


def outer_update(conn, pre: np.ndarray, post: np.ndarray, scale: float, w_min: float, w_max: float) -> None:
    """w_k ← clip(w_k + (scale · post[post_k]) · pre[pre_k], w_min, w_max), in place."""
    if pre.shape != (conn.n_pre,) or post.shape != (conn.n_post,):
        raise ValueError(f"local factors must have shapes ({conn.n_pre},) and ({conn.n_post},), "
                         f"got {pre.shape} and {post.shape}")
    dw = (scale * post[conn.indices]) * pre[conn.pre_indices()]
    np.clip(conn.weights + dw, w_min, w_max, out=conn.weights)
