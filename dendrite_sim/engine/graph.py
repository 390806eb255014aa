"""The network's parts as small records: populations of three kinds, projections, inputs.

Each population kind declares its own arrays and the phases of :mod:`.schedule` it takes part
in (``phases``); the backends dispatch on the record's type. Every population has the arrays
the schedule needs of any spiking group: this step's spikes (``spike_idx[:n_spiked[0]]``,
ascending), spike counts and, when ``track_bursts``, the event / burst state of
:mod:`.bursts`. State is structure-of-arrays (one contiguous float64 array per variable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from dendrite_sim.engine import bursts as B
from dendrite_sim.engine import random as R
from dendrite_sim.synapses import connectivity as C


# --------------------------------------------------------------------------- populations
@dataclass(eq=False)
class SpikingGroup:
    """What every population has: this step's spikes, counts, events and bursts."""

    name: str
    n: int
    index: int
    spiked: np.ndarray = None                        # (n,) bool, this step
    spike_idx: np.ndarray = None                     # (n,) int64, this step's spikes (ascending)
    n_spiked: np.ndarray = None                      # (1,) int64
    spike_count: np.ndarray = None                   # (n,) int64, since the start
    # events and bursts (see bursts.py)
    track_bursts: bool = True
    burst_window: int = 160                          # steps
    rate_decay: float = 1.0
    rate_inc: float = 0.0
    last_step: np.ndarray = None
    n_in_event: np.ndarray = None
    spike_rate: np.ndarray = None                    # Hz, exponential window tau_avg
    event_rate: np.ndarray = None
    burst_rate: np.ndarray = None
    event_count: np.ndarray = None
    burst_count: np.ndarray = None

    #: the phases of :mod:`.schedule` this kind takes part in; the backends run a phase's
    #: per-population work only for the populations that declare it
    phases: ClassVar[tuple[str, ...]] = ("update", "bookkeeping")
    is_model: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n={self.n})"

    def __post_init__(self):
        # padded to whole 8-byte words, so that compiled code can skip 8 silent neurons at once
        self.spiked = np.zeros(-(-self.n // 8) * 8, dtype=np.bool_)[: self.n]
        self.spike_idx = np.zeros(self.n, dtype=np.int64)
        self.n_spiked = np.zeros(1, dtype=np.int64)
        self.spike_count = np.zeros(self.n, dtype=np.int64)

    @property
    def spiked_words(self) -> np.ndarray:
        """``spiked`` (with its padding) as uint64 words: 8 neurons' flags per word."""
        return self.spiked.base.view(np.uint64)

    def init_bursts(self, track: bool, window_steps: int, rate_decay: float, rate_inc: float) -> None:
        self.track_bursts = bool(track)
        self.burst_window = int(window_steps)
        self.rate_decay, self.rate_inc = rate_decay, rate_inc
        self.last_step = np.full(self.n, B.NEVER, dtype=np.int64)
        self.n_in_event = np.zeros(self.n, dtype=np.int64)
        for name in ("spike_rate", "event_rate", "burst_rate"):
            setattr(self, name, np.zeros(self.n))
        self.event_count = np.zeros(self.n, dtype=np.int64)
        self.burst_count = np.zeros(self.n, dtype=np.int64)

    # every population's variables: running rates
    @property
    def burst_prob(self) -> np.ndarray:
        """Running burst probability P̄ = r_B / r_E per neuron (0 where r_E = 0)."""
        return B.burst_probability(self.burst_rate, self.event_rate)

    def variable(self, name: str) -> np.ndarray:
        """Current values of a variable (see :meth:`variable_names`)."""
        if name == "burst_prob" and self.track_bursts:
            return self.burst_prob
        if name in ("spike_rate", "event_rate", "burst_rate") and self.track_bursts:
            return getattr(self, name)
        raise KeyError(name)

    def variable_names(self) -> list[str]:
        return ["spike_rate", "event_rate", "burst_rate", "burst_prob"] if self.track_bursts else []


@dataclass(eq=False)
class NeuronPopulation(SpikingGroup):
    """``n`` neurons of a registered model: state variables, synaptic channels, drives."""

    model: Any = None
    params: Any = None
    state: dict = field(default_factory=dict)        # state variable → (n,) float64
    channels: dict = field(default_factory=dict)     # channel → (n,) float64
    tau: dict = field(default_factory=dict)          # channel → τ (ms)
    decay: dict = field(default_factory=dict)        # channel → per-step factor
    bias: dict = field(default_factory=dict)         # compartment → (n,) pA
    drives: dict = field(default_factory=dict)       # compartment → (n,) pA, this step's drive
    rings: dict = field(default_factory=dict)        # channel → (L, n) delay ring buffer
    uniform_key: Any = None                          # stream for needs_uniform models

    phases: ClassVar[tuple[str, ...]] = ("arrivals", "poisson", "drives", "record", "update", "decay",
                                         "bookkeeping")
    is_model: ClassVar[bool] = True

    def variable(self, name: str) -> np.ndarray:
        """A state variable, channel, drive (``I_<compartment>``) or running rate."""
        if name in self.state:
            return self.state[name]
        if name in self.channels:
            return self.channels[name]
        if name.startswith("I_") and name[2:] in self.drives:
            return self.drives[name[2:]]
        return super().variable(name)

    def variable_names(self) -> list[str]:
        return [*self.state, *self.channels, *(f"I_{c}" for c in self.drives), *super().variable_names()]


@dataclass(eq=False)
class PoissonSource(SpikingGroup):
    """``n`` independent Poisson spike sources: spike with probability rate·dt per step."""

    spike_prob: np.ndarray = None                    # rate·dt per neuron
    gen_key: Any = None


@dataclass(eq=False)
class SpikeSource(SpikingGroup):
    """``n`` sources replaying given spikes, sorted by (step, index)."""

    sched_steps: np.ndarray = None
    sched_idx: np.ndarray = None
    sched_ptr: np.ndarray = None                     # (1,) int64


Population = SpikingGroup          # the type every population is an instance of


# --------------------------------------------------------------------------- projections
@dataclass(eq=False)
class SynapseRuleState:
    """A synapse rule bound to one projection: its parameters, traces and per-synapse variables."""

    rule: Any                                        # the SynapseRule class
    params: Any
    pre_traces: dict                                 # name → (n_pre,) float64
    post_traces: dict                                # name → (n_post,) float64
    pre_decay: dict                                  # name → exp(−dt/τ)
    post_decay: dict
    synapse_vars: dict                               # name → (nnz,) float64
    csc: tuple | None                                # (col_ptr, col_syn, syn_pre) when on_post is used
    syn_pre: np.ndarray                              # (nnz,) presynaptic neuron of each synapse

    def __repr__(self) -> str:
        return f"SynapseRuleState({getattr(self.rule, 'registered_name', self.rule)!r}, {self.params!r})"


@dataclass(eq=False)
class Projection:
    name: str
    pre: SpikingGroup
    post: NeuronPopulation
    channel: str
    conn: C.Connectivity
    stp: Any = None                          # STPParams or None
    stp_u: np.ndarray | None = None          # per presynaptic neuron (per synapse if stp_per_synapse)
    stp_x: np.ndarray | None = None
    stp_last: np.ndarray | None = None       # step of the last presynaptic spike (per neuron)
    stp_per_synapse: bool = False            # heterogeneous parameters: fields are (nnz,) arrays
    plasticity: SynapseRuleState | None = None   # an in-loop synapse rule

    @property
    def weights(self) -> np.ndarray:
        return self.conn.weights

    def __repr__(self) -> str:
        extra = "".join(f", {k}" for k, v in (("stp", self.stp), ("plastic", self.plasticity)) if v is not None)
        return (f"Projection({self.name!r}, {self.pre.name!r} -> {self.post.name!r}:{self.channel}, "
                f"{self.conn.nnz} synapses{extra})")


# --------------------------------------------------------------------------- inputs
@dataclass(eq=False)
class PoissonInput:
    name: str
    pop: NeuronPopulation
    channel: str
    n_sources: int
    rate: float
    weight: float
    cdf: np.ndarray
    key: Any

    @property
    def zero_threshold(self):
        return R.zero_threshold(self.cdf)

    def __repr__(self) -> str:
        return (f"PoissonInput({self.name!r}, {self.pop.name!r}:{self.channel}, {self.n_sources} × "
                f"{self.rate:g} Hz, weight {self.weight:g})")


@dataclass(eq=False)
class ArrayInput:
    name: str
    pop: NeuronPopulation
    compartment: str
    values: np.ndarray          # (T,) shared or (T, n) per neuron
    ratio: int                  # steps per sample

    @property
    def per_neuron(self) -> bool:
        return self.values.ndim == 2

    def __repr__(self) -> str:
        return f"ArrayInput({self.name!r}, {self.pop.name!r}:{self.compartment}, {self.values.shape} samples)"


@dataclass(eq=False)
class ChunkRule:
    """A rule with a per-chunk face (``local_factors``) attached to a projection."""

    projection: Projection
    rule: Any
    eta: float
    every: int                  # steps
    modulator: Any
    w_min: float
    w_max: float
    updates: int = 0
    t0: int = 0                 # step at which the current interval started
    since: tuple = ()           # (pre, post) spike/event/burst counts at t0
    last: int = -1              # step of the last update

    def __repr__(self) -> str:
        return (f"ChunkRule({getattr(self.rule, 'registered_name', type(self.rule).__name__)!r} on "
                f"{self.projection.name!r}, every {self.every} steps)")
