"""Experiment ``fig4_hierarchy``: tuning changes up a trained hierarchy (Richards et al. 2019 Fig 4).

A layered network with ≥ 3 hidden layers learns two-orientation grating discrimination (the
``gratings`` task). Each rule in ``rules`` trains it from the *same* initial network of each seed,
with its own teaching signal: backprop, feedback alignment and the dendritic rules read the
objective's output error (cross-entropy: the label), node perturbation only the change of the
loss under its noise, AGREL only whether its sampled answer was rewarded. Before and after
training every hidden layer's responses (rates h_l) are recorded to probe gratings at
``tuning.n_orientations`` orientations evenly spaced over 180° (no orientation jitter; the task's
phase, frequency, contrast and pixel noise), ``tuning.trials`` trials each, and analysed with
:mod:`dendrite_sim.analysis.tuning`:

* Δ|slope| — change of the magnitude of the tuning curve's slope at the trained orientations
  (mean over the trained orientations), per unit, in response units per degree; and the same
  divided by the layer's mean response s.d. across orientations before training (``rel``), so
  layers of different scale compare;
* ΔOSI — change of the global orientation selectivity index (1 − circular variance);

each pooled over the units of all seeds, with a percentile-bootstrap 95 % CI over units × seeds.
A change "grows up the hierarchy" when its mean increases from every layer to the next.

metrics.json keys: ``rules.<name>.{test_accuracy[seed], layers[l].{delta_abs_slope, rel_delta_abs_slope,
delta_osi}.{mean, lo, hi}, grows.{delta_abs_slope, rel_delta_abs_slope, delta_osi}}``,
``orientations``, ``trained_orientations``, ``seeds``, ``n_units[l]``.
Figures: ``tuning_curves.png`` (example units per layer, before/after, first seed),
``tuning_change.png`` (change per layer with CIs, every rule).
"""

from __future__ import annotations

import copy

import numpy as np

from dendrite_sim.analysis import tuning as tn
from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import divergence, trainer
from dendrite_sim.experiments.rule_bias_variance import validate_rule_list
from dendrite_sim.tasks.gratings import draw_gratings

STATS = ("delta_abs_slope", "rel_delta_abs_slope", "delta_osi")


def probe_stimuli(task, orientations, trials, rng):
    """Probe gratings: ``trials`` images at each orientation, the task's other statistics."""
    ori = np.repeat(np.asarray(orientations, float), trials)
    x = draw_gratings(np.arange(len(ori)), rng, size=task.size, orientations=ori, orientation_jitter=0.0,
                      spatial_frequency=task.spatial_frequency, frequency_jitter=task.frequency_jitter,
                      contrast_min=task.contrast_min, contrast_max=task.contrast_max, noise=task.noise)
    return x, ori


def layer_curves(net, x, ori):
    """Tuning curves of every hidden layer of ``net`` to the probe."""
    fwd = net.forward(x)
    return [tn.tuning_curves(h, ori, period=180.0) for h in fwd.h[1:]]


def layer_changes(before, after, trained) -> list[dict]:
    """Per hidden layer, per unit: Δ|slope| at the trained orientations (mean over them),
    the same relative to the layer's mean response s.d. before training, and ΔOSI."""
    out = []
    for b, a in zip(before, after):
        d = np.mean([tn.tuning_change(b, a, t)["delta_abs_slope"] for t in trained], axis=0)
        scale = float(np.nanmean(b.mean.std(axis=0))) or np.nan
        out.append({"delta_abs_slope": d, "rel_delta_abs_slope": d / scale,
                    "delta_osi": tn.selectivity(a) - tn.selectivity(b)})
    return out


def grows(means) -> bool:
    return bool(np.all(np.diff(means) > 0))


@register("experiment", "fig4_hierarchy")
class Fig4Hierarchy(Experiment):
    """Tuning change per layer of a hierarchy trained on orientation discrimination, per rule."""

    sections = {
        "task": "task",
        "architecture": "architecture",
        "objective": "objective",
        "rules": ("list", "rule"),
        "training": {
            "epochs": Field("int", 10, "training epochs", lo=1),
            "batch_size": Field("int", 16, "mini-batch size", lo=1),
            "learning_rate": Field("float", 0.05, "base learning rate", lo=0, lo_open=True),
            "learning_rate_scale": Field("table", {}, "per-rule multiplier of the learning rate"),
        },
        "tuning": {
            "n_orientations": Field("int", 16, "probe orientations, evenly spaced over 180°", lo=4),
            "trials": Field("int", 40, "probe trials per orientation", lo=2),
            "seeds": Field("int", 5, "independent tasks and initial networks", lo=1),
            "n_boot": Field("int", 2000, "bootstrap resamples for the CIs", lo=100),
        },
    }

    def validate(self, cfg):
        if cfg["task"].registered_name != "gratings":
            raise ScenarioError("task.name", f"expected 'gratings', got {cfg['task'].registered_name!r}")
        hidden = getattr(cfg["architecture"], "hidden", None)
        if hidden is None or len(hidden) < 3:
            raise ScenarioError("architecture.hidden", f"expected >= 3 hidden layers, got {hidden!r}")
        validate_rule_list(cfg)

    def run(self, cfg, ctx):
        task, arch, objective, rules = cfg["task"], cfg["architecture"], cfg["objective"], cfg["rules"]
        tr, tu = cfg["training"], cfg["tuning"]
        names = [r.registered_name for r in rules]
        orientations = np.arange(tu["n_orientations"]) * 180.0 / tu["n_orientations"]
        trained = [float(np.mod(o, 180.0)) for o in task.orientations]
        pooled = {n: None for n in names}
        acc = {n: [] for n in names}
        examples = {}
        for s in ctx.progress(range(tu["seeds"]), total=tu["seeds"], desc="seeds"):
            seed = rngmod.child_seed(ctx.seed, f"seed{s}")
            data = task.dataset(rngmod.stream(seed, "task"))
            net0 = arch.build(data.n_in, data.n_out, rngmod.stream(seed, "init"))
            x, ori = probe_stimuli(task, orientations, tu["trials"], rngmod.stream(seed, "probe"))
            before = layer_curves(net0, x, ori)
            for rule in rules:
                name = rule.registered_name
                net = copy.deepcopy(net0)
                rule = copy.deepcopy(rule)
                lr = tr["learning_rate"] * tr["learning_rate_scale"].get(name, 1.0)
                hist = trainer.train(net, rule, objective, data, epochs=tr["epochs"], batch_size=tr["batch_size"],
                                     lr=lr, rng=rngmod.stream(seed, f"train:{name}"))
                divergence.check_network(net, f"after {tr['epochs']} epochs (seed {s})", prefix=f"rules.{name}.",
                                         hint="; expected finite values: lower training.learning_rate "
                                              "(training.learning_rate_scale sets it per rule)")
                acc[name].append(float(hist.test_accuracy[-1]))
                after = layer_curves(net, x, ori)
                ch = layer_changes(before, after, trained)
                pooled[name] = ch if pooled[name] is None else [
                    {k: np.concatenate([p[k], c[k]]) for k in STATS} for p, c in zip(pooled[name], ch)]
                if s == 0:
                    examples[name] = (before, after)

        boot = ctx.rng("bootstrap")
        per_rule = {}
        for n in names:
            layers = [{k: dict(zip(("mean", "lo", "hi"), tn.bootstrap_ci(layer[k], boot, n_boot=tu["n_boot"])))
                       for k in STATS} for layer in pooled[n]]
            per_rule[n] = {"test_accuracy": acc[n], "layers": layers,
                           "grows": {k: grows([la[k]["mean"] for la in layers]) for k in STATS}}

        from dendrite_sim.plotting.tuning import tuning_change_figure, tuning_curves_figure

        ctx.save_figure(tuning_curves_figure(examples, trained), "tuning_curves")
        ctx.save_figure(tuning_change_figure(per_rule), "tuning_change")
        return {"rules": per_rule, "orientations": orientations.tolist(), "trained_orientations": trained,
                "seeds": tu["seeds"], "n_units": list(arch.hidden)}
