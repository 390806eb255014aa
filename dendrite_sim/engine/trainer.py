"""Mini-batch training loop on the rate substrate, shared by every experiment.

Each step: draw a batch, ask the rule for its descent direction, apply ``W += lr · ΔW``, then let the
rule update its own state (``after_step``). A ``callback(epoch, step, net)`` may record diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dendrite_sim.core.interfaces import Dataset, LearningRule, Objective


@dataclass
class History:
    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    feedback_angle_deg: list = field(default_factory=list)   # per epoch: per hidden layer (deg)


def answer(net, x, rule: LearningRule | None = None) -> np.ndarray:
    """The network's output pre-activation for ``x``: the rule's :meth:`LearningRule.readout`
    where it defines one, else the forward pass."""
    out = rule.readout(net, x) if rule is not None else None
    return net.forward(x).out if out is None else out


def evaluate(net, objective: Objective, x, y, n_classes, rule: LearningRule | None = None
             ) -> tuple[float, float | None]:
    """(loss, accuracy) on a data set; accuracy is None for regression."""
    out = answer(net, x, rule)
    loss = objective.loss(out, y)
    acc = float(np.mean(objective.predict(out) == y)) if n_classes else None
    return loss, acc


def train(net, rule: LearningRule, objective: Objective, data: Dataset, *, epochs: int,
          batch_size: int, lr: float, rng: np.random.Generator, callback=None,
          progress=lambda it, **kw: it) -> History:
    """Train ``net`` in place; returns the per-epoch history (epoch 0 = before training)."""
    rule.setup(net, rng)
    hist = History()

    def record(ep):
        tl, ta = evaluate(net, objective, data.x_train, data.y_train, data.n_classes, rule)
        vl, va = evaluate(net, objective, data.x_test, data.y_test, data.n_classes, rule)
        hist.feedback_angle_deg.append(net.feedback_angles() if hasattr(net, "feedback_angles") else [])
        hist.epoch.append(ep)
        hist.train_loss.append(tl)
        hist.test_loss.append(vl)
        hist.train_accuracy.append(ta)
        hist.test_accuracy.append(va)

    record(0)
    n = len(data.x_train)
    step = 0
    for ep in progress(range(1, epochs + 1), total=epochs, desc=f"training ({rule.registered_name})"):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if callback is not None:
                callback(ep, step, net)
            net.apply(rule.update(net, data.x_train[idx], data.y_train[idx], objective, rng), lr)
            rule.after_step(net, lr)
            step += 1
        record(ep)
    return hist
