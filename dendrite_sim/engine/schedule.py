"""The schedule: the phases of one time step, in order — defined once, run by every backend.

Every backend (:mod:`dendrite_sim.engine.backends`) implements every phase below (a test asserts
it): the numpy reference as one method per phase, the numba backend as one emitter per phase
that writes that phase's code into the fused run loop. Nothing else decides the order of a
step. As in Brian2's schedule (``start, groups, thresholds, synapses, resets, end``), the order
is data, and each target supplies one small implementation per operation.

Semantics of one time step n (t = n·dt):

1. **arrivals** (per neuron) — every channel with incoming projections adds its ring-buffer
   slot n mod L (spikes sent d steps ago with delay d) and clears it.
2. **poisson** (per neuron) — every Poisson input adds ``weight · k`` to its channel, with
   k ~ Poisson(n_sources · rate · dt): one count per neuron per step from the counter-based
   generator (:mod:`dendrite_sim.engine.random`); the channel changes only where k > 0.
3. **drives** (per neuron) — per compartment: bias + time-varying arrays (sample
   ⌊n / (array_dt/dt)⌋, zero after the array ends).
4. **record** (per recorded neuron) — state monitors take the values at time t (after arrivals
   and drives, before the update: what Brian2's StateMonitor records).
5. **update** (per neuron) — each neuron population calls its model's ``step`` with the
   channels and drives (and one uniform per neuron if ``needs_uniform``); Poisson groups and
   spike generators emit their spikes; each population lists this step's spikes in ascending
   neuron order.
6. **decay** (per neuron) — every channel ← channel · exp(−dt/τ) (exact; or 1 − dt/τ with
   ``channel_method="euler"``).
7. **bookkeeping** (per spiking neuron) — spike counts, event / burst classification and
   running rates (:mod:`dendrite_sim.engine.bursts`), spike monitors.
8. **propagate** (per synapse of a spiking row) — for each spiking presynaptic neuron j of each
   projection: short-term plasticity (:mod:`dendrite_sim.synapses.stp`; u, x of neuron j — or
   of each synapse when parameters differ — relaxed exactly over the time since its last
   spike, then the release of the variant) and, for every synapse k of CSR row j,
   ring[(n + delay_k) mod L, post_k] += w_k · release. With delay = 1 step (the default) a
   spike takes effect on the next step, as in Brian2 with zero synaptic delay; in general a
   delay of d steps here equals a Brian2 ``delay`` of (d − 1)·dt.
9. **plasticity** (per synapse) — for each projection with a synapse rule
   (:mod:`dendrite_sim.synapses.plasticity`): traces decay by exp(−dt/τ); ``on_pre`` for every
   synapse of a spiking presynaptic neuron; ``on_post`` for every synapse into a spiking
   postsynaptic neuron; ``per_step`` for every synapse; then the traces of the neurons that
   spiked are updated. A spike is thus transmitted with the weight before its own update, and
   the hooks read traces before this step's increments (for triplet STDP: a pre and a post
   spike in the same step do not pair). Hooks that read ``post_event`` / ``post_burst`` (and
   trace hooks that read ``event`` / ``burst``) see this step's classification from phase 7,
   and ``burst_prob`` the running rates after this step's increments.

Between chunks of steps (Python; :mod:`dendrite_sim.engine.learning`): rules with a per-chunk
face (``local_factors``) change weights, and weight monitors record.

A synaptic input of weight w arriving at step m therefore contributes w·exp(−(n − m)·dt/τ) to
the channel seen by the neuron update at step n ≥ m (exponential current or conductance).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    domain: str          # what one iteration of the phase touches
    kernels: tuple       # the kernels (one definition each) the phase calls
    summary: str


PHASES: tuple[Phase, ...] = (
    Phase("arrivals", "per neuron", (), "delay-ring slot of this step into the channels"),
    Phase("poisson", "per neuron", ("engine.random.hash_at", "engine.random.poisson_count"),
          "Poisson input counts into the channels"),
    Phase("drives", "per neuron", (), "bias + time-varying current per compartment"),
    Phase("record", "per recorded neuron", ("engine.bursts.burst_probability",), "state monitors"),
    Phase("update", "per neuron", ("<model>.step", "engine.random.uniform"),
          "neuron models step; spike sources emit; spikes listed"),
    Phase("decay", "per neuron", (), "channels decay"),
    Phase("bookkeeping", "per spiking neuron", ("engine.bursts.classify_spike",),
          "spike counts, events and bursts, running rates, spike monitors"),
    Phase("propagate", "per synapse of a spiking row", ("synapses.stp.stp_relax", "synapses.stp.stp_spike"),
          "short-term plasticity and delivery into the delay rings"),
    Phase("plasticity", "per synapse", ("<rule>.on_pre", "<rule>.on_post", "<rule>.per_step",
                                        "<rule>.pre_spike", "<rule>.post_spike", "engine.bursts.event_now",
                                        "engine.bursts.burst_now"),
          "synapse rules: trace decay, hooks, trace updates"),
)

PHASE_NAMES: tuple[str, ...] = tuple(p.name for p in PHASES)
