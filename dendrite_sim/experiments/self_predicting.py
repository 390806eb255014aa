"""Experiment ``self_predicting_state``: the self-predicting state of the dendritic cortical microcircuit
emerges from interneuron plasticity alone (Sacramento, Ponte Costa, Bengio & Senn 2018 NeurIPS).

From random initial weights and with no target shown, only the pyramid-to-interneuron (W^IP) and
interneuron-to-pyramid (W^PI) synapses learn (rule ``dendritic_microcircuit``, its ``eta_ip`` and
``eta_pi`` times ``training.learning_rate``), one step per input batch at the free steady state.
The interneurons learn to predict their partner pyramids of the layer above (W^IP → ∝ W^PP_{k+1,k})
and to cancel the top-down input at the apical dendrites (W^PI → −W^PP_{k,k+1} = −B), so the apical
potentials v_A fall to zero: then an apical potential carries only what the top-down input cannot
predict — with a target at the output, the error.

metrics.json keys (stable):

* ``apical_initial``, ``apical_final`` — mean |v_A| over hidden pyramids and an evaluation batch
  (the first ``training.eval_size`` training inputs) at the free steady state, before and after;
* ``apical_fall`` — apical_initial / apical_final;
* ``cosine_pi_vs_minus_topdown`` — cosine between vec(W^PI) and vec(−B), all hidden layers;
* ``cosine_ip_vs_forward`` — cosine between vec(W^IP) and vec(W^PP_{k+1,k}), all hidden layers.
  W^IP is only determined on the span of the hidden rates: with more hidden pyramids than input
  dimensions (30-50-10) the part of the random initial W^IP outside that span stays, and this
  cosine saturates below 1 (≈ 0.64) while the interneurons predict perfectly; with 20 hidden
  pyramids it reaches ≈ 0.94;
* ``history`` — ``step``, ``apical``, ``cosine_pi``, ``cosine_ip`` during learning;
* ``traces`` — mean |v_A| of the traced hidden neurons in the last quarter of each phase
  (``start_forward``, ``start_target``, ``final_forward``, ``final_target``).

Figures: ``self_predicting.png`` (mean |v_A| and both cosines against learning steps) and
``traces.png`` (basal, apical and somatic potentials of a few hidden pyramids for one example,
integrated in time: a forward phase without target, then a target phase with the output nudged,
at the start and in the self-predicting state). The paper simulates the dynamics with plasticity
always on; here plasticity acts once per batch at the steady state (the rate approximation, see
:mod:`dendrite_sim.rules.sacramento`).
"""

from __future__ import annotations

import copy

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import microcircuit as mc
from dendrite_sim.objectives import one_hot


def _cos(a: list, b: list) -> float:
    va = np.concatenate([x.ravel() for x in a])
    vb = np.concatenate([x.ravel() for x in b])
    d = np.linalg.norm(va) * np.linalg.norm(vb)
    return float(va @ vb / d) if d > 0 else 0.0


def cosines(net) -> tuple[float, float]:
    """(cos(W^PI, −B), cos(W^IP, W^PP_{k+1,k})) over all hidden layers."""
    return (_cos(net.W_PI, [-B for B in net.B]), _cos(net.W_IP, net.W[1:]))


def phase_traces(net, x, target, duration: float, dt: float, n_neurons: int):
    """Integrate one example through a forward phase (no target) and a target phase, from rest."""
    t, tr, _ = mc.integrate(net, net.g, x[None, :], [(duration, None), (duration, target[None, :])],
                            dt=dt)
    k = min(n_neurons, tr["u"][0].shape[2])
    return t, {key: tr[key][0][:, 0, :k] for key in ("v_B", "v_A", "u")}


def _late_abs(t, v, t0, t1):
    sel = (t >= t0 + 0.75 * (t1 - t0)) & (t < t1)
    return float(np.mean(np.abs(v[sel])))


def learning_figure(hist):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(hist["step"], hist["apical"])
    ax1.set_yscale("log")
    ax1.set_xlabel("learning step")
    ax1.set_ylabel("mean |v_A| (free; model units)")
    ax2.plot(hist["step"], hist["cosine_pi"], label="cos(W_PI, -B)")
    ax2.plot(hist["step"], hist["cosine_ip"], label="cos(W_IP, W_next)")
    ax2.set_ylim(-1.05, 1.05)
    ax2.set_xlabel("learning step")
    ax2.set_ylabel("cosine")
    ax2.legend(frameon=False)
    fig.suptitle("Self-predicting state from interneuron plasticity")
    fig.tight_layout()
    return fig


def traces_figure(traces, duration):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 5.2))
    axes = fig.subplots(2, 3, sharex=True)
    names = (("v_B", "basal v_B"), ("v_A", "apical v_A"), ("u", "soma u"))
    for row, (label, (t, tr)) in enumerate(traces.items()):
        for col, (key, title) in enumerate(names):
            ax = axes[row, col]
            ax.plot(t, tr[key], lw=1)
            ax.axvline(duration, color="k", lw=0.8, ls="--")
            ax.set_title(f"{title} — {label}", fontsize=9)
            ax.set_ylabel("potential (model units)", fontsize=8)
            if row == 1:
                ax.set_xlabel("time (model units; forward | target)")
    fig.suptitle("Hidden pyramids for one example: forward phase, then target phase")
    fig.tight_layout()
    return fig


@register("experiment", "self_predicting_state")
class SelfPredictingState(Experiment):
    """Interneuron plasticity alone drives the microcircuit to the self-predicting state (v_A → 0)."""

    sections = {
        "task": "task",
        "architecture": "architecture",
        "rule": "rule",
        "training": {
            "steps": Field("int", 2000, "interneuron learning steps (one input batch each)", lo=1),
            "batch_size": Field("int", 16, "inputs per step", lo=1),
            "learning_rate": Field("float", 0.1, "base step size (times the rule's eta_ip, eta_pi)",
                                   lo=0, lo_open=True),
            "record_every": Field("int", 50, "steps between measurements", lo=1),
            "eval_size": Field("int", 200, "inputs of the evaluation batch for mean |v_A|", lo=1),
        },
        "traces": {
            "example": Field("int", 0, "index of the test example shown", lo=0),
            "n_neurons": Field("int", 5, "hidden pyramids traced", lo=1),
            "phase_duration": Field("float", 15.0, "duration of each phase (time units of 1/g)",
                                    lo=0, lo_open=True),
            "dt": Field("float", 0.05, "Euler step of the integration", lo=0, lo_open=True),
        },
    }

    def validate(self, cfg):
        if cfg["architecture"].registered_name != "microcircuit":
            raise ScenarioError("architecture.name", "expected 'microcircuit'")
        if cfg["rule"].registered_name != "dendritic_microcircuit":
            raise ScenarioError("rule.name", "expected 'dendritic_microcircuit'")
        if not cfg["architecture"].hidden:
            raise ScenarioError("architecture.hidden", "expected at least one hidden layer")

    def run(self, cfg, ctx):
        tr, tc = cfg["training"], cfg["traces"]
        rule = copy.deepcopy(cfg["rule"])
        data = cfg["task"].dataset(ctx.rng("task"))
        net = cfg["architecture"].build(data.n_in, data.n_out, ctx.rng("init"))
        rng = ctx.rng("train")
        rule.setup(net, rng)
        x_eval = data.x_train[: tr["eval_size"]]
        ex = min(tc["example"], len(data.x_test) - 1)
        y_ex = data.y_test[ex:ex + 1]
        target = (one_hot(y_ex, data.n_out) if data.n_classes else y_ex)[0]

        def trace():
            return phase_traces(net, data.x_test[ex], target, tc["phase_duration"], tc["dt"],
                                tc["n_neurons"])

        traces = {"start (random weights)": trace()}
        hist = {"step": [], "apical": [], "cosine_pi": [], "cosine_ip": []}

        def record(step):
            cpi, cip = cosines(net)
            hist["step"].append(step)
            hist["apical"].append(mc.mean_abs_apical(net.settle(x_eval)))
            hist["cosine_pi"].append(cpi)
            hist["cosine_ip"].append(cip)

        record(0)
        n = len(data.x_train)
        for step in ctx.progress(range(1, tr["steps"] + 1), total=tr["steps"], desc="interneurons"):
            idx = rng.choice(n, size=min(tr["batch_size"], n), replace=False)
            rule.interneuron_step(net, data.x_train[idx], tr["learning_rate"])
            if step % tr["record_every"] == 0 or step == tr["steps"]:
                record(step)
        traces["self-predicting (after learning)"] = trace()

        D = tc["phase_duration"]
        late = {}
        for key, (t, tt) in zip(("start", "final"), traces.values()):
            late[f"{key}_forward"] = _late_abs(t, tt["v_A"], 0.0, D)
            late[f"{key}_target"] = _late_abs(t, tt["v_A"], D, 2 * D)
        ctx.save_figure(learning_figure(hist), "self_predicting")
        ctx.save_figure(traces_figure(traces, D), "traces")
        a0, a1 = hist["apical"][0], hist["apical"][-1]
        return {
            "apical_initial": a0,
            "apical_final": a1,
            "apical_fall": float(a0 / a1) if a1 > 0 else float("inf"),
            "cosine_pi_vs_minus_topdown": hist["cosine_pi"][-1],
            "cosine_ip_vs_forward": hist["cosine_ip"][-1],
            "history": hist,
            "traces": late,
            "n_steps": int(tr["steps"]),
        }
