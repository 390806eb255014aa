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
  (for the reward objective: minus the expected reward), on the network's answer (the rule's
  ``readout`` where it defines one, e.g. the free fixed point of equilibrium propagation);
* ``history`` — per-epoch lists ``epoch`` (0 = before training), ``train_loss``, ``test_loss``,
  ``train_accuracy``, ``test_accuracy``;
* ``n_params`` — learned weights and biases; ``n_train``, ``n_test`` — data set sizes;
* ``feedback_angle_deg`` — per hidden layer l, the angle between the feedback matrix B_l and
  W_{l+1}ᵀ (as vectors) after training: 0 for symmetric feedback, ≈ 90° for an untrained random
  B, falling toward 0 when B is learned (Kolen–Pollack); ``feedback_angle_history_deg`` — the
  same per epoch (epoch 0 = before training);
* ``diverged`` — always false: a run whose weights or losses become NaN or infinite stops with
  one line naming the layer, the variable and the epoch (exit code 2, ``status.json`` failed, no
  ``metrics.json``; :mod:`dendrite_sim.engine.divergence`). The key stays for scripts that read it.

Figure: ``learning_curve.png`` (loss and, for classification, accuracy against epoch).

**Substrates.** ``training.substrate = "rate"`` (default) trains the architecture's rate
network with the rule's rate face. ``"spiking"`` instantiates the *same* architecture
description (:meth:`Architecture.describe`, :mod:`dendrite_sim.core.circuit`) with the
compartmental neurons of the ``[spiking]`` table and trains it with the rule's per-example
spiking face (:mod:`dendrite_sim.engine.spiking_trainer`): inputs in ``input_range`` (default
[0, 1]) are rate-coded Poisson drives (rate 0 at its low end, ``input_rate`` at its high end),
each example is shown in the rule's phases (forward, target ...; the teacher nudges the output
somata through conductances in target phases, toward the potential that codes the target in
``target_range``), and the objective reads the output ``readout`` of the forward phase (mean
somatic potential, spike rate, or for regression the mean somatic potential decoded into target
space). With the ``microcircuit`` architecture the interneurons are nudged toward their partner
pyramids' potentials (``nudging_conductance``, ``nudging_interval``). One run is one seed;
training accuracy and loss of an epoch are measured online on the examples as they are learned;
test after every epoch with ``test_duration``-ms forward phases.
A rule without the substrate's face is refused by ``check``.

Extra metrics of the spiking substrate: ``alignment_angle_deg`` — per hidden pathway and epoch,
the angle between the epoch's summed spiking updates and the summed updates of backprop through
the rate network that shares the weights, at the same phase averages (rules that define
``example_gradient``); ``alignment_angle_per_example_deg`` — the mean of the per-example angles;
``wall_s_per_example``. Figures: ``alignment_angles.png`` and ``compartment_traces.png``
(basal, apical and somatic potentials of hidden neurons and output somata during the forward and
target phases of the first and the last training example).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from dendrite_sim.core.interfaces import Experiment, require_substrate
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import divergence, trainer
from dendrite_sim.engine.backends import BACKEND_NAMES


def feedback_angles(net) -> list[float]:
    """Angle (degrees) between vec(B_l) and vec(W_{l+1}ᵀ) for every hidden layer l."""
    return net.feedback_angles()


def _clean(values) -> list:
    """Floats for JSON: non-finite → None; accuracies of regression tasks stay None."""
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


def history_dict(hist) -> dict:
    """The per-epoch history for metrics.json (non-finite values → None)."""
    return {"epoch": [int(e) for e in hist.epoch], "train_loss": _clean(hist.train_loss),
            "test_loss": _clean(hist.test_loss), "train_accuracy": _clean(hist.train_accuracy),
            "test_accuracy": _clean(hist.test_accuracy)}


def learning_curve_figure(history: dict, title: str):
    """Loss (train, test) and, when defined, accuracy against epoch."""
    from matplotlib.figure import Figure

    classify = any(v is not None for v in history["test_accuracy"])
    fig = Figure(figsize=(8.0 if classify else 4.5, 3.2))
    axes = fig.subplots(1, 2 if classify else 1, squeeze=False)[0]
    ep = history["epoch"]
    ax = axes[0]
    # test dashed with open markers over a solid train line: both stay visible where they coincide
    styles = {"train": dict(lw=2.0), "test": dict(ls="--", marker="o", ms=3, mfc="none", lw=1.0,
                                                  markevery=max(1, len(ep) // 25))}
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        ax.plot(ep, [np.nan if v is None else v for v in history[key]], label=label, **styles[label])
    losses = [v for k in ("train_loss", "test_loss") for v in history[k] if v is not None]
    if losses and min(losses) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    if classify:
        ax = axes[1]
        for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
            ax.plot(ep, [np.nan if v is None else 100.0 * v for v in history[key]], label=label, **styles[label])
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
            "substrate": Field("str", "rate", "rate network, or the same architecture with spiking "
                               "compartmental neurons ([spiking])", choices=("rate", "spiking")),
        },
        "spiking": {
            "neuron": Field("str", "guerguiev", "neuron model of every non-input population (a model "
                            "with circuit ports)"),
            "params": Field("table", {}, "parameter overrides of the neuron model (all layers)"),
            "output_params": Field("table", {}, "further overrides for the output layer"),
            "dt": Field("quantity", "1 ms", "time step", dimension="time", lo=0, lo_open=True),
            "backend": Field("str", "numba", "engine backend", choices=BACKEND_NAMES),
            "input_rate": Field("quantity", "200 Hz", "rate of an input neuron at input value 1",
                                dimension="frequency", lo=0, lo_open=True),
            "teacher_sources": Field("int", 20, "Poisson teacher sources per output neuron and channel",
                                     lo=1),
            "teacher_rate": Field("quantity", "500 Hz", "rate of a teacher source at target 1",
                                  dimension="frequency", lo=0, lo_open=True),
            "teacher_conductance": Field("float", 1.0, "mean teaching conductance at target 1 "
                                         "(the model's units; Guerguiev et al.: g_E = 1)", lo=0),
            "init": Field("str", "guerguiev", "initial weights: the paper's moment matching, or "
                          "normal with std init_scale/√fan-in", choices=("guerguiev", "normal")),
            "init_scale": Field("float", 1.0, "std × √fan-in of normal initial weights", lo=0),
            "readout": Field("str", "v_soma", "what the objective reads from the output in the "
                             "forward phase: the mean somatic potential, the spike rate (Hz), or the "
                             "mean somatic potential decoded into target space (regression)",
                             choices=("v_soma", "spike_rate", "target")),
            "input_range": Field("float_list", [0.0, 1.0], "input values [lo, hi] coded at rate 0 and at "
                                 "input_rate (linear between)"),
            "target_range": Field("float_list", [0.0, 1.0], "target values [lo, hi] whose teacher "
                                  "conductances pull the output soma to E_I and to E_E (linear between)"),
            "interneuron_params": Field("table", {}, "further overrides for interneurons (microcircuit)"),
            "nudging_conductance": Field("float", 0.8, "somatic conductance g_som pulling an interneuron "
                                         "toward its partner pyramid's potential (microcircuit)", lo=0),
            "nudging_interval": Field("quantity", "5 ms", "interval between updates of the interneurons' "
                                      "nudging targets", dimension="time", lo=0, lo_open=True),
            "test_duration": Field("quantity", "100 ms", "forward phase of a test example",
                                   dimension="time", lo=0, lo_open=True),
            "test_settle": Field("quantity", "30 ms", "start of a test phase not averaged",
                                 dimension="time", lo=0),
            "n_test": Field("int", 0, "test examples per evaluation (0: all)", lo=0),
            "checkpoint_every": Field("quantity", "0 ms", "write a checkpoint after the example that ends "
                                      "this much biological time after the last one (0: never); "
                                      "`dendrite-sim run --resume RUN_DIR` continues from the newest",
                                      dimension="time", lo=0),
        },
    }

    def validate(self, cfg):
        substrate = cfg["training"]["substrate"]
        require_substrate(type(cfg["rule"]), substrate, "rule.name")
        cfg["rule"].check_architecture(cfg["architecture"])
        self.check_resources(cfg)
        if substrate != "spiking":
            return
        from dendrite_sim.core import registry
        from dendrite_sim.core.errors import ScenarioError
        from dendrite_sim.core.interfaces import LearningRule

        rule = type(cfg["rule"])
        if rule.example_update is LearningRule.example_update:
            ok = [n for n, c in registry.available("rule").items()
                  if c.example_update is not LearningRule.example_update]
            raise ScenarioError("rule.name", f"rule {rule.registered_name!r} has no per-example spiking "
                                f"face (example_update) that train can drive; expected one of {', '.join(ok)}")
        from dendrite_sim.core.interfaces import Architecture

        if type(cfg["architecture"]).describe is Architecture.describe:
            raise ScenarioError("architecture.name", f"architecture {cfg['architecture'].registered_name!r} "
                                "has no circuit description (describe) for the spiking substrate")
        sp = cfg["spiking"]
        model = registry.get("neuron", sp["neuron"], "spiking.neuron")
        if "teacher" not in model.circuit_ports:
            ok = [n for n, c in registry.available("neuron").items() if "teacher" in c.circuit_ports]
            raise ScenarioError("spiking.neuron", f"model {sp['neuron']!r} declares no circuit ports; "
                                f"expected one of {', '.join(ok)}")
        hidden_p = model.make_params(sp["params"], key="spiking.params")
        out_p = model.make_params({**sp["params"], **sp["output_params"]}, key="spiking.output_params")
        checks = [(hidden_p, 0.0), (out_p, sp["teacher_conductance"])]
        if any(q.kind == "nudging" for q in cfg["architecture"].describe(1, 1).pathways):
            checks.append((model.make_params({**sp["params"], **sp["interneuron_params"]},
                                             key="spiking.interneuron_params"), sp["nudging_conductance"]))
        for p, extra in checks:
            limit = model.stable_dt(p, extra)
            if sp["dt"] >= limit:
                raise ScenarioError("spiking.dt", f"expected dt < {limit:.3g} ms: {sp['neuron']} with these "
                                    f"parameters (and teacher or nudging conductance {extra:g}) is unstable at "
                                    f"dt = {sp['dt']:g} ms")
        for key in ("input_range", "target_range"):
            r = sp[key]
            if len(r) != 2 or not r[0] < r[1]:
                raise ScenarioError(f"spiking.{key}", f"expected two values [lo, hi] with lo < hi, got {list(r)}")
        if sp["test_settle"] >= sp["test_duration"]:
            raise ScenarioError("spiking.test_settle", f"expected less than test_duration = "
                                f"{sp['test_duration']:g} ms")
        if sp["teacher_rate"] * sp["dt"] / 1000.0 > 1.0:
            raise ScenarioError("spiking.teacher_rate", f"expected at most {1000.0 / sp['dt']:g} Hz "
                                f"(one spike per step of {sp['dt']:g} ms)")
        if sp["input_rate"] * sp["dt"] / 1000.0 > 1.0:
            raise ScenarioError("spiking.input_rate", f"expected at most {1000.0 / sp['dt']:g} Hz "
                                f"(one spike per step of {sp['dt']:g} ms)")

    @staticmethod
    def check_resources(cfg):
        """The data set against this machine's memory and the training against the runtime limit
        (:mod:`dendrite_sim.core.limits`), from the task's size hint and the architecture."""
        from dendrite_sim.core import limits
        from dendrite_sim.engine import spec as netspec

        hint = cfg["task"].size_hint()
        if hint is None:
            return
        n_train, n_test, n_in, n_out = hint
        data = 8.0 * (n_train + n_test) * (n_in + n_out) * 2          # the arrays and one working copy
        key = "task.n_train" if hasattr(cfg["task"], "n_train") else "task"
        netspec.check_memory({key: data, "total": data}, key=key)
        sizes = [n_in, *getattr(cfg["architecture"], "hidden", []), n_out]
        n_w = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        tr = cfg["training"]
        what = f"{tr['epochs']:g} epochs × {n_train:g} examples × {n_w:g} weights"
        if tr["substrate"] == "rate":
            # forward, backward and update ≈ 6 multiply-adds per weight and sample, plus the evaluations
            limits.check_runtime("training.epochs", what, flops=6.0 * tr["epochs"] * (2 * n_train + n_test) * n_w)
            return
        sp = cfg["spiking"]
        steps = sum(ph.duration for ph in cfg["rule"].phases()) / sp["dt"]
        n_neurons = sum(sizes) + 2 * n_out * sp["teacher_sources"]
        examples = tr["epochs"] * (n_train + n_test)
        limits.check_runtime("spiking.dt", f"{what}, {steps:g} steps of {sp['dt']:g} ms per example",
                             neuron_steps=examples * steps * n_neurons,
                             synaptic_events=examples * steps * n_w * 0.1 * sp["dt"])

    def run(self, cfg, ctx):
        if cfg["training"]["substrate"] == "spiking":
            return self.run_spiking(cfg, ctx)
        tr = cfg["training"]
        # stateful parts (the reward baseline, a rule's own matrices) are copied so that running
        # the same configuration twice gives the same numbers
        objective, rule = copy.deepcopy(cfg["objective"]), copy.deepcopy(cfg["rule"])
        data = cfg["task"].dataset(ctx.rng("task"))
        net = cfg["architecture"].build(data.n_in, data.n_out, ctx.rng("init"))
        hint = f"; expected finite values: lower training.learning_rate (now {tr['learning_rate']:g})"

        checked = {1}

        def watch(ep, step, net):
            if ep not in checked:                    # first step of epoch ep: epoch ep − 1 is done
                divergence.check_network(net, f"during epoch {ep - 1}", hint=hint)
                checked.add(ep)

        # overflow and NaN are detected and reported below, as one line, instead of warnings
        with np.errstate(over="ignore", invalid="ignore"):
            hist = trainer.train(net, rule, objective, data, epochs=tr["epochs"],
                                 batch_size=tr["batch_size"], lr=tr["learning_rate"],
                                 rng=ctx.rng("train"), callback=watch, progress=ctx.progress)
        divergence.check_network(net, f"during epoch {tr['epochs']}", hint=hint)
        for key in ("train_loss", "test_loss"):
            divergence.check_losses(getattr(hist, key), f"history.{key}", hint=hint)
        history = history_dict(hist)
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
            "feedback_angle_history_deg": [_clean(a) for a in hist.feedback_angle_deg],
            "diverged": False,
        }

    def run_spiking(self, cfg, ctx):
        import time

        from dendrite_sim.core.circuit import Phase
        from dendrite_sim.core.errors import ScenarioError
        from dendrite_sim.engine import spiking_trainer
        from dendrite_sim.engine.circuit import SpikingCircuit, SpikingConfig

        tr, sp = cfg["training"], cfg["spiking"]
        objective, rule = copy.deepcopy(cfg["objective"]), copy.deepcopy(cfg["rule"])
        data = cfg["task"].dataset(ctx.rng("task"))
        lo, hi = sp["input_range"]
        for name, x in (("x_train", data.x_train), ("x_test", data.x_test)):
            if x.min() < lo or x.max() > hi:
                raise ScenarioError("spiking.input_range", f"the spiking substrate rate-codes inputs in "
                                    f"[{lo:g}, {hi:g}]; task {cfg['task'].registered_name!r} gives {name} in "
                                    f"[{x.min():.3g}, {x.max():.3g}]")
        lo, hi = sp["target_range"]
        if not data.n_classes and (data.y_train.min() < lo or data.y_train.max() > hi):
            raise ScenarioError("spiking.target_range", f"the spiking teacher codes regression targets in "
                                f"[{lo:g}, {hi:g}]; task {cfg['task'].registered_name!r} gives y_train in "
                                f"[{data.y_train.min():.3g}, {data.y_train.max():.3g}]")
        circuit = cfg["architecture"].describe(data.n_in, data.n_out)
        scfg = SpikingConfig(neuron=sp["neuron"], params=dict(sp["params"]), output_params=dict(sp["output_params"]),
                             dt=sp["dt"], backend=sp["backend"], input_rate=sp["input_rate"],
                             teacher_sources=sp["teacher_sources"], teacher_rate=sp["teacher_rate"],
                             teacher_conductance=sp["teacher_conductance"], init=sp["init"],
                             init_scale=sp["init_scale"], interneuron_params=dict(sp["interneuron_params"]),
                             nudging_conductance=sp["nudging_conductance"],
                             nudging_interval=sp["nudging_interval"], input_range=tuple(sp["input_range"]),
                             target_range=tuple(sp["target_range"]),
                             init_state=getattr(cfg["architecture"], "init_state", "random"))
        sc = SpikingCircuit(circuit, scfg, ctx.rng("init"), seed=ctx.seed)
        test_phase = Phase("forward", sp["test_duration"], sp["test_settle"])
        t0 = time.perf_counter()
        hist = spiking_trainer.train(sc, rule, objective, data, epochs=tr["epochs"], lr=tr["learning_rate"],
                                     rng=ctx.rng("train"), readout_how=sp["readout"], test_phase=test_phase,
                                     n_test=sp["n_test"] or None, progress=ctx.progress,
                                     checkpointer=(ctx.checkpointer(every_ms=sp["checkpoint_every"])
                                                   if sp["checkpoint_every"] > 0 else None),
                                     resume=bool(getattr(ctx, "resume", False)))
        wall = time.perf_counter() - t0
        ctx.record_timing("resumed_at.epoch", hist.started_at[0])
        ctx.record_timing("resumed_at.example", hist.started_at[1])
        for key in ("train_loss", "test_loss"):
            divergence.check_losses(getattr(hist, key), f"history.{key}", hint=(
                f"; expected finite values: lower training.learning_rate (now {tr['learning_rate']:g})"))
        history = history_dict(hist)
        title = (f"{cfg['task'].registered_name}: {rule.registered_name} (spiking {sp['neuron']}), "
                 f"{objective.registered_name}, {'-'.join(map(str, circuit.sizes))}")
        ctx.save_figure(learning_curve_figure(history, title), "learning_curve")
        angles = {q: _clean(v) for q, v in hist.angle_deg.items()}
        if any(angles.values()):
            ctx.save_figure(alignment_figure(angles, {q: _clean(v) for q, v in hist.angle_example_deg.items()},
                                             title), "alignment_angles")
        if hist.traces:
            ctx.save_figure(compartment_traces_figure(hist.traces, circuit, title), "compartment_traces")
        n_params = sum(sc.weights(q.name).size + circuit.population(q.post).n for q in circuit.feedforward())
        n_examples = tr["epochs"] * len(data.x_train)
        return {
            "substrate": "spiking",
            "final_train_accuracy": history["train_accuracy"][-1],
            "final_test_accuracy": history["test_accuracy"][-1],
            "final_train_loss": history["train_loss"][-1],
            "final_test_loss": history["test_loss"][-1],
            "history": history,
            "n_params": int(n_params),
            "n_train": int(len(data.x_train)),
            "n_test": int(len(data.x_test) if not sp["n_test"] else min(sp["n_test"], len(data.x_test))),
            "alignment_angle_deg": angles,
            "alignment_angle_per_example_deg": {q: _clean(v) for q, v in hist.angle_example_deg.items()},
            "wall_s_per_example": wall / max(1, n_examples),
            "diverged": False,
        }


def alignment_figure(angles: dict, per_example: dict, title: str):
    """Angle between the spiking rule's update and backprop's, per hidden pathway and epoch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.4))
    ax = fig.subplots()
    for q, v in angles.items():
        ep = range(1, len(v) + 1)
        line, = ax.plot(ep, [np.nan if a is None else a for a in v], marker="o", ms=3,
                        label=f"{q}: epoch's mean update")
        ax.plot(ep, [np.nan if a is None else a for a in per_example[q]], ls="--", color=line.get_color(),
                label=f"{q}: per example (mean)")
    ax.axhline(90.0, color="0.5", lw=0.8, ls=":", label="90° (orthogonal)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("angle to backprop (deg)")
    ax.set_ylim(0, 120)
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=8)
    return fig


def compartment_traces_figure(traces: dict, circuit, title: str, n_neurons: int = 3):
    """Basal, apical and somatic potentials of a few hidden neurons, and output somata, during
    the forward and target phases of the first and last training examples."""
    from matplotlib.figure import Figure

    hidden = [p.name for p in circuit.layers()[1:-1]]
    rows = [(h, v) for h in hidden[:1] for v in ("v_basal", "v_apical", "v_soma")] + [(circuit.output.name, "v_soma")]
    cols = [k for k in ("first", "last") if k in traces]
    fig = Figure(figsize=(4.2 * len(cols), 1.9 * len(rows)))
    axes = fig.subplots(len(rows), len(cols), squeeze=False, sharex="col")
    for j, key in enumerate(cols):
        rec = traces[key]
        t_start = min(r.t0 - r.phase.settle for r in rec.phases.values())
        for i, (pop, var) in enumerate(rows):
            ax = axes[i][j]
            t, vals = rec.traces[pop]
            if var not in vals:
                ax.set_visible(False)
                continue
            for k in range(min(n_neurons, vals[var].shape[1])):
                ax.plot(t - t_start, vals[var][:, k], lw=0.8, label=f"neuron {k}")
            for r in rec.phases.values():
                if r.phase.target:
                    ax.axvspan(r.t0 - r.phase.settle - t_start, r.t1 - t_start, color="0.9", zorder=0,
                               label="target phase (teacher on)")
            ax.set_ylabel(f"{pop}\n{var.removeprefix('v_')} potential", fontsize=8)
            if i == 0:
                ax.set_title(f"{key} training example", fontsize=9)
            if i == len(rows) - 1:
                ax.set_xlabel("time in example (ms)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=len(seen), frameon=False, fontsize=7)
    fig.suptitle(title + " (potentials in the model's units)", fontsize=9)
    fig.subplots_adjust(bottom=0.12 if len(rows) < 4 else 0.08)
    return fig
