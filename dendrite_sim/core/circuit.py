"""One architecture vocabulary for both substrates.

An :class:`~dendrite_sim.core.interfaces.Architecture` *describes* a circuit with these records,
and each substrate instantiates the same description: the rate substrate as a
:class:`~dendrite_sim.engine.rate.RateNetwork` (``engine.rate.rate_network``), the spiking
substrate as a :class:`~dendrite_sim.engine.network.Network` of compartmental neurons
(:class:`dendrite_sim.engine.circuit.SpikingCircuit`).

* :class:`Population` — a group of neurons with a ``role`` (``input``, ``pyramidal``,
  ``output``, ``interneuron``) and the compartments it has (``soma``, ``basal``, ``apical``);
  pyramidal layers are numbered in feedforward order by ``layer``.
* :class:`Pathway` — a projection from one population onto a named *compartment* of another:
  ``feedforward`` (onto basal dendrites), ``feedback`` (onto apical dendrites; ``feedback``
  says whether its weights are ``symmetric`` — the transpose of the forward pathway named by
  ``mirrors`` —, ``random`` and fixed, or ``learned``), ``lateral`` (e.g. interneuron ↔
  pyramid), ``nudging`` (onto the soma, one-to-one, fixed: a partner that pulls the somatic
  potential toward its own, as the output's teacher or the pyramids that SST-like interneurons
  mimic in Sacramento et al. 2018). ``connectivity`` is ``all_to_all`` or ``one_to_one``.
* :class:`Phase` — presenting one example is a sequence of phases (``forward``: input only;
  ``target``: input and the teacher nudging the output somata); each phase lasts ``duration``
  ms and its last ``duration − settle`` ms are the window over which the learning rule reads
  its averages (Guerguiev et al. 2017 integrate the last 20 ms of each 50 ms phase).
  A rule declares the phases it needs; evaluation presents the forward phase only.
* :class:`Circuit` — populations and pathways, checked for consistency when built.

The layered network of the classic rules is the special case input → hidden… → output with
feedforward pathways onto basal dendrites and feedback pathways onto the apical dendrites of
the hidden layers (:meth:`dendrite_sim.architectures.layered.Layered.describe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("input", "pyramidal", "output", "interneuron")
COMPARTMENTS = ("soma", "basal", "apical")
KINDS = ("feedforward", "feedback", "lateral", "nudging")
CONNECTIVITY = ("all_to_all", "one_to_one")
FEEDBACK = ("symmetric", "random", "learned")


@dataclass(frozen=True)
class Population:
    name: str
    n: int
    role: str
    compartments: tuple[str, ...] = ("soma", "basal")
    layer: int = 0                      # 0 = input, 1.. = pyramidal layers, last = output


@dataclass(frozen=True)
class Pathway:
    name: str
    pre: str
    post: str
    compartment: str                    # compartment of ``post`` the synapses end on
    kind: str = "feedforward"
    feedback: str | None = None         # for kind "feedback": symmetric | random | learned
    mirrors: str | None = None          # the forward pathway a feedback pathway reflects
    plastic: bool = True
    connectivity: str = "all_to_all"


@dataclass(frozen=True)
class Phase:
    name: str
    duration: float                     # ms
    settle: float = 0.0                 # ms at the start of the phase not averaged
    target: bool = False                # the teacher nudges the output during this phase

    @property
    def window(self) -> float:
        return self.duration - self.settle


@dataclass(frozen=True)
class Circuit:
    populations: tuple[Population, ...]
    pathways: tuple[Pathway, ...] = field(default_factory=tuple)

    def __post_init__(self):
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise ValueError(f"population names repeat: {names}")
        pops = {p.name: p for p in self.populations}
        for p in self.populations:
            if p.role not in ROLES:
                raise ValueError(f"population {p.name!r}: role {p.role!r} not in {ROLES}")
            if p.n < 1:
                raise ValueError(f"population {p.name!r}: expected at least one neuron")
            bad = set(p.compartments) - set(COMPARTMENTS)
            if bad:
                raise ValueError(f"population {p.name!r}: unknown compartments {sorted(bad)}")
        for q in self.pathways:
            for end in (q.pre, q.post):
                if end not in pops:
                    raise ValueError(f"pathway {q.name!r}: unknown population {end!r}")
            if q.compartment not in pops[q.post].compartments:
                raise ValueError(f"pathway {q.name!r}: population {q.post!r} has no {q.compartment} "
                                 f"compartment ({', '.join(pops[q.post].compartments)})")
            if q.kind not in KINDS:
                raise ValueError(f"pathway {q.name!r}: kind {q.kind!r} not in {KINDS}")
            if q.kind == "feedback" and q.feedback not in FEEDBACK:
                raise ValueError(f"pathway {q.name!r}: feedback {q.feedback!r} not in {FEEDBACK}")
            if q.connectivity not in CONNECTIVITY:
                raise ValueError(f"pathway {q.name!r}: connectivity {q.connectivity!r} not in {CONNECTIVITY}")
            if q.connectivity == "one_to_one" and pops[q.pre].n != pops[q.post].n:
                raise ValueError(f"pathway {q.name!r}: one_to_one needs equal sizes, got "
                                 f"{pops[q.pre].n} → {pops[q.post].n}")

    def population(self, name: str) -> Population:
        return next(p for p in self.populations if p.name == name)

    def pathway(self, name: str) -> Pathway:
        return next(q for q in self.pathways if q.name == name)

    @property
    def input(self) -> Population:
        return next(p for p in self.populations if p.role == "input")

    @property
    def output(self) -> Population:
        return next(p for p in self.populations if p.role == "output")

    def layers(self) -> list[Population]:
        """Input, pyramidal layers and output in feedforward order."""
        return sorted((p for p in self.populations if p.role != "interneuron"), key=lambda p: p.layer)

    def feedforward(self) -> list[Pathway]:
        """The feedforward pathways in layer order (one per layer above the input)."""
        order = {p.name: p.layer for p in self.populations}
        return sorted((q for q in self.pathways if q.kind == "feedforward"), key=lambda q: order[q.post])

    def feedback(self) -> list[Pathway]:
        order = {p.name: p.layer for p in self.populations}
        return sorted((q for q in self.pathways if q.kind == "feedback"), key=lambda q: order[q.post])

    @property
    def sizes(self) -> list[int]:
        return [p.n for p in self.layers()]


def layered_circuit(sizes: list[int], feedback: str = "random", route: str = "layerwise") -> Circuit:
    """Input → hidden layers → output: feedforward pathways onto basal dendrites; feedback onto
    the apical dendrites of every hidden layer, from the layer above (``route = "layerwise"``)
    or broadcast from the output (``"direct"``, as Guerguiev et al. 2017)."""
    L = len(sizes) - 1
    pops = [Population("input", sizes[0], "input", ("soma",), 0)]
    for l in range(1, L):
        pops.append(Population(f"hidden{l}", sizes[l], "pyramidal", ("soma", "basal", "apical"), l))
    pops.append(Population("output", sizes[-1], "output", ("soma", "basal"), L))
    names = [p.name for p in pops]
    ways = [Pathway(f"ff{l}", names[l - 1], names[l], "basal") for l in range(1, L + 1)]
    for l in range(1, L):
        src = names[l + 1] if route == "layerwise" else names[-1]
        mirror = f"ff{l + 1}" if src == names[l + 1] else None     # Wᵀ of the layer above exists
        ways.append(Pathway(f"fb{l}", src, names[l], "apical", "feedback", feedback, mirror,
                            plastic=feedback == "learned"))
    return Circuit(tuple(pops), tuple(ways))


def microcircuit_circuit(sizes: list[int], feedback: str = "random") -> Circuit:
    """The dendritic cortical microcircuit of Sacramento et al. (2018) in this vocabulary.

    Pyramidal layers as :func:`layered_circuit` (feedforward onto basal dendrites; top-down
    ``td<l>`` from layer l+1 onto the apical dendrites of hidden layer l); in every hidden layer
    l a population ``inter<l>`` of SST-like interneurons, one per pyramid of layer l+1, with
    ``ip<l>`` (pyramids of layer l → interneuron dendrites, W^IP), ``pi<l>`` (interneurons →
    apical dendrites of layer l, W^PI) and ``nudge<l>`` (pyramids of layer l+1 → their partner
    interneurons' somata, one-to-one, fixed)."""
    L = len(sizes) - 1
    base = layered_circuit(sizes, feedback, "layerwise")
    pops = list(base.populations)
    ways = [q for q in base.pathways if q.kind == "feedforward"]
    names = [p.name for p in base.layers()]
    for l in range(1, L):
        inter = f"inter{l}"
        pops.append(Population(inter, sizes[l + 1], "interneuron", ("soma", "basal"), l))
        ways += [Pathway(f"td{l}", names[l + 1], names[l], "apical", "feedback", feedback, f"ff{l + 1}",
                         plastic=feedback == "learned"),
                 Pathway(f"ip{l}", names[l], inter, "basal", "lateral"),
                 Pathway(f"pi{l}", inter, names[l], "apical", "lateral"),
                 Pathway(f"nudge{l}", names[l + 1], inter, "soma", "nudging", plastic=False,
                         connectivity="one_to_one")]
    return Circuit(tuple(pops), tuple(ways))
