"""Training on the spiking substrate: examples presented in phases, one update per example.

The loop of ``train`` with ``substrate = "spiking"`` (the rate loop is
:mod:`dendrite_sim.engine.trainer`). Each epoch presents the training set in a random order
(stream ``"train"``); for each example:

1. the circuit (:class:`~dendrite_sim.engine.circuit.SpikingCircuit`) runs the rule's phases
   (:meth:`LearningRule.phases`) with the input rate-coded and, in target phases, the teacher
   on — the state carries over from example to example, as in a continuous experiment;
2. the rule's :meth:`~dendrite_sim.core.interfaces.LearningRule.example_update` returns
   ``{pathway: (dW, db)}`` and the loop applies ``W += lr · dW``, ``b += lr · db``;
3. the objective reads the output ``readout`` of the forward phase — ``"v_soma"`` (mean
   somatic potential over the window), ``"spike_rate"`` (Hz) or ``"target"`` (the mean somatic
   potential decoded into target space, :meth:`SpikingCircuit.decode`, for regression) — for the
   training loss and accuracy of the epoch (online, as the examples are learned);
4. if the rule defines :meth:`~dendrite_sim.core.interfaces.LearningRule.example_gradient`, the
   angle between its update and backprop's of the rate network with the same weights is
   recorded per hidden pathway; the epoch's value is the angle between the sums of the epoch's
   per-example updates (its mean update), and the per-example angles' mean is kept too.

Test: after each epoch (and before training, epoch 0) every test example is presented in one
forward phase of ``test_duration`` ms (``test_settle`` ms not averaged), without the teacher
and without learning. The training loss and accuracy of epoch 0 come from the same test-style
presentation of as many training examples as there are test examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dendrite_sim.core.circuit import Phase
from dendrite_sim.engine.trainer import History


@dataclass
class SpikingHistory(History):
    angle_deg: dict = field(default_factory=dict)          # pathway → per epoch (mean update)
    angle_example_deg: dict = field(default_factory=dict)  # pathway → per epoch (mean per example)
    traces: dict = field(default_factory=dict)             # "first" / "last" → ExampleRecord
    started_at: tuple = (1, 0)                             # (epoch, example) this process began with


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    if den == 0:
        return float("nan")
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / den))))


def target_vector(y, n_out: int, n_classes: int | None) -> np.ndarray:
    """The teacher's target in [0, 1]: one-hot for a class label, the value itself otherwise."""
    if n_classes:
        t = np.zeros(n_out)
        t[int(y)] = 1.0
        return t
    return np.asarray(y, dtype=np.float64)


def readout(sc, rec, phase: str, how: str) -> np.ndarray:
    r, out = rec[phase], sc.circuit.output.name
    if how == "spike_rate":
        return r.rate(out) * 1000.0
    if how == "target":
        return sc.decode(r.mean(out, "v_soma"))
    return r.mean(out, "v_soma")


def evaluate(sc, objective, x, y, n_classes, phase: Phase, how: str):
    a = np.stack([readout(sc, sc.present(xi, None, (phase,)), phase.name, how) for xi in x])
    loss = float(objective.loss(a, y))
    acc = float(np.mean(objective.predict(a) == y)) if n_classes else None
    return loss, acc


HISTORY_LISTS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


def _history_json(hist: SpikingHistory) -> dict:
    """The per-epoch lists of a history (JSON: None for a missing accuracy, NaN for an undefined angle)."""
    out = {k: list(getattr(hist, k)) for k in HISTORY_LISTS}
    out["angle_deg"] = {q: list(v) for q, v in hist.angle_deg.items()}
    out["angle_example_deg"] = {q: list(v) for q, v in hist.angle_example_deg.items()}
    return out


def _history_restore(hist: SpikingHistory, saved: dict) -> None:
    for k in HISTORY_LISTS:
        getattr(hist, k)[:] = saved[k]
    for key in ("angle_deg", "angle_example_deg"):
        for q, v in saved[key].items():
            getattr(hist, key)[q][:] = v


def train(sc, rule, objective, data, *, epochs: int, lr: float, rng: np.random.Generator,
          readout_how: str = "v_soma", test_phase: Phase, n_test: int | None = None,
          progress=lambda it, **kw: it, checkpointer=None, resume: bool = False) -> SpikingHistory:
    """Train the spiking circuit ``sc`` in place; per-epoch history (epoch 0 = before training).

    ``checkpointer`` (:class:`~dendrite_sim.engine.checkpoint.Checkpointer`): after an example's
    update, when its span of biological time has passed, the circuit (network, monitors,
    teachers), the rule, the objective, the epoch's shuffled order, online readouts, angle sums
    and the shuffling generator are written with the history so far; with ``resume`` the newest
    checkpoint is restored and training continues with the next example, bit-identical to a run
    that was never stopped. The example traces of the figure (``hist.traces``) are not saved: a
    resumed run keeps the last example's only."""
    from dendrite_sim.engine import checkpoint

    hist = SpikingHistory()
    phases = rule.phases()
    fwd_name = phases[0].name
    n_out = sc.circuit.output.n
    xt, yt = data.x_test, data.y_test
    if n_test:
        xt, yt = xt[:n_test], yt[:n_test]
    ff = [q.name for q in sc.circuit.feedforward()]
    hidden_paths = ff[:-1]
    for q in hidden_paths:
        hist.angle_deg[q], hist.angle_example_deg[q] = [], []

    def test(ep, train_loss, train_acc):
        vl, va = evaluate(sc, objective, xt, yt, data.n_classes, test_phase, readout_how)
        hist.epoch.append(ep)
        hist.train_loss.append(train_loss)
        hist.train_accuracy.append(train_acc)
        hist.test_loss.append(vl)
        hist.test_accuracy.append(va)

    n = len(data.x_train)

    def epoch_state(order):
        """What one epoch accumulates: its order, online readouts, summed updates (rule, backprop)."""
        return {"order": order, "a_out": np.zeros((n, n_out)), "rng": rng,
                "sums": {q: [np.zeros_like(sc.weights(q)), np.zeros_like(sc.weights(q))] for q in hidden_paths}}

    loop = epoch_state(np.zeros(n, dtype=np.int64))
    state = {"circuit": sc, "rule": rule, "objective": objective, "loop": loop}
    per_example = {q: [] for q in hidden_paths}
    start_ep, start_k = 1, 0
    saved = checkpointer.latest() if (checkpointer is not None and resume) else None
    if saved is not None:
        checkpoint.restore(state, saved.arrays, saved.meta)
        prog = saved.meta["progress"]
        _history_restore(hist, prog["history"])
        for q, v in prog["per_example"].items():
            per_example[q][:] = v
        start_ep, start_k = int(prog["epoch"]), int(prog["example"]) + 1
    else:
        tl0, ta0 = evaluate(sc, objective, data.x_train[: len(xt)], data.y_train[: len(xt)], data.n_classes,
                            test_phase, readout_how)
        test(0, tl0, ta0)
    hist.started_at = (start_ep, start_k)
    rec = None
    for ep in progress(range(start_ep, epochs + 1), total=epochs - start_ep + 1,
                       desc=f"training ({rule.registered_name}, spiking)"):
        if ep != start_ep or saved is None:
            loop.update(epoch_state(rng.permutation(n)))
            per_example = {q: [] for q in hidden_paths}
            k0 = 0
        else:
            k0 = start_k
        order, a_out, sums = loop["order"], loop["a_out"], loop["sums"]
        for k in range(k0, n):
            i = order[k]
            tgt = target_vector(data.y_train[i], n_out, data.n_classes)
            rec = sc.present(data.x_train[i], tgt, phases)
            if ep == 1 and k == 0:
                hist.traces["first"] = rec
            a_out[k] = readout(sc, rec, fwd_name, readout_how)
            ups = rule.example_update(sc, rec)
            ref = rule.example_gradient(sc, rec) if hidden_paths else None
            if ref is not None:
                for q in hidden_paths:
                    sums[q][0] += ups[q][0]
                    sums[q][1] += ref[q][0]
                    per_example[q].append(angle_deg(ups[q][0], ref[q][0]))
            for q, (dW, db) in ups.items():
                sc.add_weights(q, lr * dW)
                if db is not None:
                    sc.bias(sc.circuit.pathway(q).post)[:] += lr * db
            sc.sync_feedback()
            if checkpointer is not None and checkpointer.due(sc.net.t):
                checkpointer.write(checkpoint.capture(state),
                                   {"epoch": ep, "example": k, "t_ms": sc.net.t, "history": _history_json(hist),
                                    "per_example": per_example})
        if rec is not None:
            hist.traces["last"] = rec
        if hidden_paths and per_example[hidden_paths[0]]:
            for q in hidden_paths:
                hist.angle_deg[q].append(angle_deg(sums[q][0], sums[q][1]))
                hist.angle_example_deg[q].append(float(np.nanmean(per_example[q])))
        y_seen = data.y_train[order]
        tl = float(objective.loss(a_out, y_seen))
        ta = float(np.mean(objective.predict(a_out) == y_seen)) if data.n_classes else None
        test(ep, tl, ta)
    return hist
