"""The four designed parts of a circuit model (Richards et al. 2019) and the experiment driver.

* :class:`Task` — what the circuit sees and must produce (inputs, targets, rewards).
* :class:`Architecture` — populations, layers, feedforward and feedback pathways.
* :class:`Objective` — the loss (or negative reward) and the teaching signal at the output.
* :class:`LearningRule` — how weights change, from local factors and the teaching signal.

An :class:`Experiment` composes them for one kind of study and is what a scenario names.
Each part declares ``params``, a mapping ``name -> Field`` (see :mod:`dendrite_sim.core.schema`),
which is how scenarios are validated and how ``dendrite-sim list`` documents it.

Rate substrate conventions (see :mod:`dendrite_sim.engine.rate`): a layered network has
pre-activations ``a[l]`` and activities ``h[l]`` (``h[0]`` is the input); the output layer's
pre-activation ``a[-1]`` goes to the objective, which owns the output non-linearity (softmax for
cross-entropy and reward, identity for MSE). Arrays are batched along axis 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dendrite_sim.core.schema import Field


class Part:
    """Base of every registered part: ``params`` declares its scenario keys."""

    params: ClassVar[dict[str, Field]] = {}
    registered_name: ClassVar[str] = ""


# --------------------------------------------------------------------------- tasks
@dataclass
class Dataset:
    """Train and test arrays of a static task.

    ``y_*`` holds integer class labels when ``n_classes`` is set, else real-valued targets of
    shape (n, n_out).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None = None

    @property
    def n_in(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_out(self) -> int:
        return self.n_classes if self.n_classes else self.y_train.shape[1]


class Task(Part, ABC):
    """Inputs and targets. Procedural tasks draw from ``rng``; data tasks load local files."""

    @abstractmethod
    def dataset(self, rng: np.random.Generator) -> Dataset:
        """Draw (or load) the train and test sets."""

    def size_hint(self) -> tuple[int, int, int, int] | None:
        """``(n_train, n_test, n_in, n_out)`` before drawing anything, for the resource
        estimates of ``check`` (None: unknown until the data set is loaded)."""
        return None


# --------------------------------------------------------------------------- objectives
class Objective(Part, ABC):
    """Loss on the output layer's pre-activation ``a_out`` (batch, n_out) and target ``y``."""

    @abstractmethod
    def loss_per_sample(self, a_out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Deterministic (expected) loss of each sample, shape (batch,)."""

    def loss(self, a_out: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.loss_per_sample(a_out, y)))

    @abstractmethod
    def gradient(self, a_out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact ∂loss_per_sample/∂a_out, shape (batch, n_out)."""

    def teaching_signal(self, a_out: np.ndarray, y: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
        """The error the circuit actually receives at the output (batch, n_out).

        Supervised objectives return the exact gradient; reward objectives return a sampled
        estimate (e.g. REINFORCE with a reward-prediction error).
        """
        return self.gradient(a_out, y)

    @abstractmethod
    def predict(self, a_out: np.ndarray) -> np.ndarray:
        """The network's answer: class index (classification) or output vector (regression)."""

    def output(self, a_out: np.ndarray) -> np.ndarray:
        """The output layer's activity (probabilities for softmax objectives)."""
        return a_out


# --------------------------------------------------------------------------- architectures
class Architecture(Part, ABC):
    """Builds the network for a task: sizes, non-linearity, feedback pathways.

    :meth:`describe` gives the circuit in the vocabulary both substrates share
    (:mod:`dendrite_sim.core.circuit`); :meth:`build` is its rate instance, and the spiking
    substrate builds the description with compartmental neurons
    (:class:`dendrite_sim.engine.circuit.SpikingCircuit`).
    """

    @abstractmethod
    def build(self, n_in: int, n_out: int, rng: np.random.Generator):
        """A fresh network (e.g. :class:`dendrite_sim.engine.rate.RateNetwork`)."""

    def describe(self, n_in: int, n_out: int):
        """The circuit (:class:`~dendrite_sim.core.circuit.Circuit`) for a task's sizes."""
        raise NotImplementedError(f"architecture {self.registered_name!r} has no circuit description")


# --------------------------------------------------------------------------- rules
@dataclass
class LocalFactors:
    """What a synapse can see, for rules on the spiking substrate.

    ``pre``: presynaptic factor per presynaptic neuron (rate, trace or event trace);
    ``post``: postsynaptic factor per postsynaptic neuron (somatic rate, dendritic prediction
    error, burst minus expected burst...); ``modulator``: optional global scalar (e.g. RPE).
    The weight change of synapse (i, j) is ``eta * post[i] * pre[j] * modulator``.
    """

    pre: np.ndarray
    post: np.ndarray
    modulator: float = 1.0


class LearningRule(Part):
    """Proposes weight changes; one contract with a face per substrate (neither is abstract).

    **Rate face** — :meth:`update` returns, per layer, ``(dW, db)``: the rule's estimate of the
    descent direction −∇L for the batch (the trainer multiplies it by a learning rate).
    Analysis code compares it with the exact −∇L. A rule that depends on random draws
    (perturbation rules, sampled rewards) sets ``stochastic = True``.

    **Spiking face** — either the rule *is* a synapse rule
    (:class:`dendrite_sim.synapses.plasticity.SynapseRule`: kernel-language hooks that run
    inside the compiled loop), or it implements :meth:`local_factors`, called between chunks
    of the loop; the engine then applies the shared outer-product update (see
    :class:`LocalFactors` and :mod:`dendrite_sim.engine.learning`). A projection takes either
    kind: ``plasticity = {rule = "...", ...}``. A third spiking face learns once per presented
    example: the rule declares the ``phases`` an example is shown in
    (:class:`~dendrite_sim.core.circuit.Phase`: forward, target ...) and implements
    :meth:`example_update`, which reads the phase averages of a
    :class:`~dendrite_sim.engine.circuit.SpikingCircuit` (an architecture's circuit built
    from spiking neurons) and returns weight changes per pathway; ``train`` with
    ``substrate = "spiking"`` drives it (:mod:`dendrite_sim.engine.spiking_trainer`).

    ``substrates`` is derived from the faces a class defines — ``("rate",)``, ``("spiking",)``
    or both — so a scenario that asks a rule for a face it lacks is refused at check time.
    """

    stochastic: ClassVar[bool] = False
    substrates: ClassVar[tuple[str, ...]] = ()
    is_synapse_rule: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.substrates = rule_substrates(cls)

    def setup(self, net, rng: np.random.Generator) -> None:
        """Create the rule's own state (e.g. direct feedback matrices) for ``net``."""

    def check_architecture(self, architecture) -> None:
        """Cross-checks against the scenario's architecture, at ``check`` time (raise
        :class:`~dendrite_sim.core.errors.ScenarioError` naming the rule's key)."""

    def update(self, net, x: np.ndarray, y: np.ndarray, objective: Objective,
               rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """Rate face: per layer ``(dW, db)``, the rule's descent direction for this batch."""
        raise NotImplementedError(f"rule {self.registered_name!r} has no rate face")

    def readout(self, net, x: np.ndarray) -> np.ndarray | None:
        """The output pre-activation the network trained by this rule gives for ``x``, when it
        is not the feedforward pass (e.g. the free fixed point of an energy-based network);
        ``None``: ``net.forward(x).out``. Evaluation (the trainer, the map's training curves)
        scores this answer."""
        return None

    def after_step(self, net, lr: float) -> None:
        """Called after the trainer applied the update (e.g. to train a feedback pathway)."""

    def local_factors(self, state: Any) -> LocalFactors:
        """Spiking face, per chunk: local factors from a :class:`~dendrite_sim.engine.learning.SpikingState`."""
        raise NotImplementedError(f"rule {self.registered_name!r} has no spiking face")

    def phases(self) -> tuple:
        """The phases (:class:`~dendrite_sim.core.circuit.Phase`) an example is presented in."""
        return ()

    def example_update(self, circuit, record) -> dict:
        """Spiking face, per example: ``{pathway: (dW, db)}`` — the descent direction for the
        pathway's dense weights (n_post, n_pre) and the bias of its target population (or
        ``None``), from an :class:`~dendrite_sim.engine.circuit.ExampleRecord`."""
        raise NotImplementedError(f"rule {self.registered_name!r} has no per-example spiking face")

    def example_gradient(self, circuit, record) -> dict | None:
        """Optional: the same pathways' update by backprop through the rate network that shares
        the circuit's weights, at the example's phase averages (for alignment angles)."""
        return None


def rule_substrates(cls) -> tuple[str, ...]:
    """The substrates a rule class supports, from the faces it defines."""
    out = []
    if cls.update is not LearningRule.update:
        out.append("rate")
    if (cls.is_synapse_rule or cls.local_factors is not LearningRule.local_factors
            or cls.example_update is not LearningRule.example_update):
        out.append("spiking")
    return tuple(out)


def require_substrate(cls, substrate: str, key: str) -> None:
    """A :class:`~dendrite_sim.core.errors.ScenarioError` at ``key`` when rule ``cls`` has no
    ``substrate`` face."""
    from dendrite_sim.core.errors import ScenarioError

    if substrate not in cls.substrates:
        face = "rate face (update)" if substrate == "rate" else "spiking face (a synapse rule or local_factors)"
        from dendrite_sim.core import registry

        ok = [n for n, c in registry.available("rule").items() if substrate in c.substrates]
        raise ScenarioError(key, f"rule {cls.registered_name!r} has no {face}; it runs on "
                            f"{', '.join(cls.substrates) or 'no substrate'}; expected a rule for the "
                            f"{substrate} substrate: {', '.join(ok)}")


# --------------------------------------------------------------------------- experiments
class Experiment(Part, ABC):
    """One kind of study. ``sections`` declares the scenario's top-level tables.

    A section spec is a part kind (``"task"``: the table names a registered task and its
    parameters), ``("list", kind)`` for a list of parts, or a schema dict for a plain table.
    """

    sections: ClassVar[dict[str, Any]] = {}

    def validate(self, cfg: dict) -> None:
        """Cross-section checks after each section was validated (raise ScenarioError)."""

    @abstractmethod
    def run(self, cfg: dict, ctx: RunContextLike) -> dict:
        """Run the study; return metrics (JSON-serialisable)."""


class RunContextLike:  # documented protocol, implemented by dendrite_sim.io.results.RunContext
    seed: int
    out: Any
    rng: Callable[[str], np.random.Generator]
