"""Experiment ``train``: train one network on one task with one learning rule.

Composes the four parts of Richards et al. (2019) — ``[task]``, ``[architecture]``,
``[objective]``, ``[rule]`` — and a plain ``[training]`` table (epochs, batch_size,
learning_rate). Random streams, all from the root seed: ``"task"`` draws the data set,
``"init"`` the network (forward and feedback weights), ``"train"`` the mini-batch order and
every random draw of the rule and the objective; so the same seed gives bit-identical metrics.
The shared loop :func:`dendrite_sim.engine.trainer.train` does the training.

metrics.json keys (stable):

* ``final_train_accuracy``, ``final_test_accuracy`` — fraction correct after the last epoch
  (``null`` for regression tasks);
* ``final_train_loss``, ``final_test_loss`` — the objective's mean loss after the last epoch
  (for the reward objective: minus the expected reward);
* ``history`` — per-epoch lists ``epoch`` (0 = before training), ``train_loss``, ``test_loss``,
  ``train_accuracy``, ``test_accuracy``;
* ``n_params`` — learned weights and biases; ``n_train``, ``n_test`` — data set sizes;
* ``feedback_angle_deg`` — per hidden layer l, the angle between the feedback matrix B_l and
  W_{l+1}ᵀ (as vectors) after training: 0 for symmetric feedback, ≈ 90° for an untrained random
  B, falling toward 0 when B is learned (Kolen–Pollack);
* ``diverged`` — true when a loss became non-finite (such losses are written as ``null``).

Figure: ``learning_curve.png`` (loss and, for classification, accuracy against epoch).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from dendrite_sim.core.interfaces import Experiment, require_substrate
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import trainer


def feedback_angles(net) -> list[float]:
    """Angle (degrees) between vec(B_l) and vec(W_{l+1}ᵀ) for every hidden layer l."""
    out = []
    for B, W in zip(net.B, net.W[1:]):
        b, w = B.ravel(), W.T.ravel()
        denom = np.linalg.norm(b) * np.linalg.norm(w)
        cos = float(b @ w / denom) if denom > 0 else float("nan")
        out.append(math.degrees(math.acos(min(1.0, max(-1.0, cos)))) if math.isfinite(cos) else None)
    return out


def _clean(values) -> list:
    """Floats for JSON: non-finite → None; accuracies of regression tasks stay None."""
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


def learning_curve_figure(history: dict, title: str):
    """Loss (train, test) and, when defined, accuracy against epoch."""
    from matplotlib.figure import Figure

    classify = any(v is not None for v in history["test_accuracy"])
    fig = Figure(figsize=(8.0 if classify else 4.5, 3.2))
    axes = fig.subplots(1, 2 if classify else 1, squeeze=False)[0]
    ep = history["epoch"]
    ax = axes[0]
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        ax.plot(ep, [np.nan if v is None else v for v in history[key]], label=label)
    losses = [v for k in ("train_loss", "test_loss") for v in history[k] if v is not None]
    if losses and min(losses) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    if classify:
        ax = axes[1]
        for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
            ax.plot(ep, [np.nan if v is None else 100.0 * v for v in history[key]], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 101)
        ax.legend(frameon=False)
    fig.suptitle(title)
    return fig


@register("experiment", "train")
class Train(Experiment):
    """Train a layered network on a task with one learning rule and objective; learning curves."""

    sections = {
        "task": "task",
        "architecture": "architecture",
        "objective": "objective",
        "rule": "rule",
        "training": {
            "epochs": Field("int", 10, "passes through the training set", lo=1),
            "batch_size": Field("int", 32, "mini-batch size", lo=1),
            "learning_rate": Field("float", 0.1, "step size: W += learning_rate · ΔW", lo=0, lo_open=True),
        },
    }

    def validate(self, cfg):
        require_substrate(type(cfg["rule"]), "rate", "rule.name")

    def run(self, cfg, ctx):
        tr = cfg["training"]
        # stateful parts (the reward baseline, a rule's own matrices) are copied so that running
        # the same configuration twice gives the same numbers
        objective, rule = copy.deepcopy(cfg["objective"]), copy.deepcopy(cfg["rule"])
        data = cfg["task"].dataset(ctx.rng("task"))
        net = cfg["architecture"].build(data.n_in, data.n_out, ctx.rng("init"))
        hist = trainer.train(net, rule, objective, data, epochs=tr["epochs"],
                             batch_size=tr["batch_size"], lr=tr["learning_rate"],
                             rng=ctx.rng("train"), progress=ctx.progress)
        history = {
            "epoch": [int(e) for e in hist.epoch],
            "train_loss": _clean(hist.train_loss),
            "test_loss": _clean(hist.test_loss),
            "train_accuracy": _clean(hist.train_accuracy),
            "test_accuracy": _clean(hist.test_accuracy),
        }
        diverged = any(v is None for v in history["train_loss"] + history["test_loss"])
        title = (f"{cfg['task'].registered_name}: {rule.registered_name}, "
                 f"{objective.registered_name}, {'-'.join(map(str, net.sizes))}")
        ctx.save_figure(learning_curve_figure(history, title), "learning_curve")
        return {
            "final_train_accuracy": history["train_accuracy"][-1],
            "final_test_accuracy": history["test_accuracy"][-1],
            "final_train_loss": history["train_loss"][-1],
            "final_test_loss": history["test_loss"][-1],
            "history": history,
            "n_params": int(net.n_params()),
            "n_train": int(len(data.x_train)),
            "n_test": int(len(data.x_test)),
            "feedback_angle_deg": feedback_angles(net),
            "diverged": bool(diverged),
        }
