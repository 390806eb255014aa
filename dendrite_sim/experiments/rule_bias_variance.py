"""Experiment ``rule_bias_variance``: every rule measured as a gradient estimator on one network.

For each of ``diagnostics.seeds`` seeds a task and a network are drawn; each rule's update is
measured against the exact gradient (see :mod:`dendrite_sim.analysis.gradient` for the
definitions). Then each rule trains the network from the same start while the angle between its
update and −∇L is recorded, and the variance is measured again at each of ``diagnostics.widths``.

metrics.json keys (stable):
``rules.<name>.{bias, bias_sd, bias_raw, variance, variance_sd, cosine, angle_deg,
parallel_fraction, layers[], decomposition{...}, final_train_loss, angle_start_deg,
angle_end_deg, after_training{bias, variance, cosine, angle_deg, ...}}`` (``after_training``: the
same statistics on the first seed's network after the training run),
``widths.<name>.{width[], variance[]}``, ``curves.<name>.{step[], angle_hidden_deg[], train_loss[]}``,
``n_params``, ``seeds``.
Figure: ``rule_map.png``.
"""

from __future__ import annotations

import copy

import numpy as np

from dendrite_sim.analysis import gradient as gd
from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment, require_substrate
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import divergence, trainer


def _mean(values):
    """Mean over seeds; ``None`` where a statistic is undefined (a layer the rule never changes)."""
    return None if any(v is None for v in values) else float(np.mean(values))


_STAT_KEYS = ("bias", "bias_raw", "variance", "cosine", "angle_deg", "parallel_fraction")


def validate_rule_list(cfg) -> None:
    """A ``[[rules]]`` list compared on the rate substrate: each rule once, each with a rate face,
    and ``training.learning_rate_scale`` naming only listed rules with numbers > 0."""
    names = [r.registered_name for r in cfg["rules"]]
    if len(set(names)) != len(names):
        raise ScenarioError("rules", "expected each rule once")
    for k, r in enumerate(cfg["rules"]):
        require_substrate(type(r), "rate", f"rules[{k}].name")
    for k, v in cfg["training"]["learning_rate_scale"].items():
        if k not in names:
            raise ScenarioError(f"training.learning_rate_scale.{k}",
                                f"expected one of the rules: {', '.join(names)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ScenarioError(f"training.learning_rate_scale.{k}", f"expected a number > 0, got {v!r}")


@register("experiment", "rule_bias_variance")
class RuleBiasVariance(Experiment):
    """Bias, variance and alignment of every rule on the same network and task (Richards Fig 2–3)."""

    sections = {
        "task": "task",
        "architecture": "architecture",
        "objective": "objective",
        "rules": ("list", "rule"),
        "diagnostics": {
            "pool_size": Field("int", 256, "samples defining the exact gradient", lo=2),
            "draws": Field("int", 50, "calls averaged for a stochastic rule's mean update", lo=1),
            "batch_size": Field("int", 32, "mini-batch size of one update (variance)", lo=1),
            "n_batches": Field("int", 100, "mini-batch updates drawn for the variance", lo=2),
            "seeds": Field("int", 3, "independent networks and tasks (error bars)", lo=1),
            "widths": Field("int_list", [20, 100], "hidden widths for the variance-vs-width study",
                            lo=1),
        },
        "training": {
            "steps": Field("int", 400, "training steps for the alignment curves", lo=1),
            "batch_size": Field("int", 32, "mini-batch size", lo=1),
            "learning_rate": Field("float", 0.01, "base learning rate", lo=0, lo_open=True),
            "learning_rate_scale": Field("table", {}, "per-rule multiplier of the learning rate"),
            "checkpoints": Field("int", 20, "angle measurements along training", lo=2),
        },
    }

    def validate(self, cfg):
        validate_rule_list(cfg)

    def run(self, cfg, ctx):
        task, arch, objective, rules = cfg["task"], cfg["architecture"], cfg["objective"], cfg["rules"]
        diag, train = cfg["diagnostics"], cfg["training"]
        names = [r.registered_name for r in rules]

        # 1. estimator statistics over seeds
        per_seed = {n: [] for n in names}
        nets = []
        for s in ctx.progress(range(diag["seeds"]), total=diag["seeds"], desc="estimator statistics"):
            seed = rngmod.child_seed(ctx.seed, f"seed{s}")
            data = task.dataset(rngmod.stream(seed, "task"))
            net = arch.build(data.n_in, data.n_out, rngmod.stream(seed, "init"))
            x, y = data.x_train[: diag["pool_size"]], data.y_train[: diag["pool_size"]]
            nets.append((net, data))
            for rule in rules:
                per_seed[rule.registered_name].append(gd.estimator_report(
                    rule, net, x, y, objective, rngmod.stream(seed, f"rule:{rule.registered_name}"),
                    draws=diag["draws"], batch_size=diag["batch_size"], n_batches=diag["n_batches"]))

        per_rule = {}
        for n, reps in per_seed.items():
            r = {k: _mean([rep[k] for rep in reps]) for k in _STAT_KEYS}
            r["bias_sd"] = float(np.std([rep["bias"] for rep in reps]))
            r["variance_sd"] = None if r["variance"] is None else float(np.std([rep["variance"] for rep in reps]))
            r["layers"] = [{k: _mean([rep["layers"][l][k] for rep in reps]) for k in _STAT_KEYS}
                           for l in range(len(reps[0]["layers"]))]
            r["decomposition"] = {k: float(np.mean([rep["decomposition"][k] for rep in reps]))
                                  for k in reps[0]["decomposition"]}
            per_rule[n] = r

        # 2. variance against hidden width (first seed's task)
        widths = {}
        net0, data0 = nets[0]
        x0, y0 = data0.x_train[: diag["pool_size"]], data0.y_train[: diag["pool_size"]]
        if hasattr(arch, "hidden"):
            for rule in rules:
                vs = []
                for w in diag["widths"]:
                    a2 = copy.copy(arch)
                    a2.hidden = [w] * len(arch.hidden)
                    net_w = a2.build(data0.n_in, data0.n_out, ctx.rng(f"width{w}"))
                    rep = gd.estimator_report(
                        rule, net_w, x0, y0, objective, ctx.rng(f"width{w}:{rule.registered_name}"),
                        draws=diag["draws"], batch_size=diag["batch_size"], n_batches=diag["n_batches"])
                    vs.append(rep["variance"])
                widths[rule.registered_name] = {"width": list(diag["widths"]), "variance": vs}

        # 3. alignment curves during training, every rule from the same initial network
        curves = {}
        steps, ncp = train["steps"], train["checkpoints"]
        cp = set(np.linspace(0, steps - 1, ncp).astype(int).tolist())
        for rule in ctx.progress(rules, total=len(rules), desc="alignment curves"):
            name = rule.registered_name
            net = copy.deepcopy(net0)
            rng = ctx.rng(f"train:{name}")
            rule.setup(net, rng)
            lr = train["learning_rate"] * train["learning_rate_scale"].get(name, 1.0)
            c = {"step": [], "angle_hidden_deg": [], "train_loss": []}
            hint = (f"; expected finite values: lower training.learning_rate (now {lr:g} for {name}; "
                    "training.learning_rate_scale sets it per rule)")
            for t in range(steps):
                if t in cp:
                    divergence.check_network(net, f"within {t} training steps" if t else "before training",
                                             prefix=f"rules.{name}.", hint=hint)
                    c["step"].append(t)
                    c["angle_hidden_deg"].append(gd.alignment_angle(rule, net, x0, y0, objective, rng)[0])
                    c["train_loss"].append(objective.loss(trainer.answer(net, x0, rule), y0))
                    divergence.check_losses(c["train_loss"], f"curves.{name}.train_loss", labels=c["step"],
                                            when="within {} training steps", hint=hint)
                idx = rng.choice(len(data0.x_train), size=train["batch_size"], replace=False)
                with np.errstate(over="ignore", invalid="ignore"):   # reported at the next checkpoint
                    net.apply(rule.update(net, data0.x_train[idx], data0.y_train[idx], objective, rng), lr)
                    rule.after_step(net, lr)
            divergence.check_network(net, f"within {steps} training steps", prefix=f"rules.{name}.", hint=hint)
            curves[name] = c
            per_rule[name]["angle_start_deg"] = c["angle_hidden_deg"][0]
            per_rule[name]["angle_end_deg"] = c["angle_hidden_deg"][-1]
            per_rule[name]["final_train_loss"] = c["train_loss"][-1]
            trained = gd.estimator_report(rule, net, x0, y0, objective, ctx.rng(f"trained:{name}"),
                                          draws=diag["draws"], batch_size=diag["batch_size"],
                                          n_batches=diag["n_batches"])
            per_rule[name]["after_training"] = {k: trained[k] for k in _STAT_KEYS}

        from dendrite_sim.plotting.rule_map import rule_map_figure

        ctx.save_figure(rule_map_figure(per_rule, curves, widths), "rule_map")
        return {"rules": per_rule, "widths": widths, "curves": curves,
                "n_params": net0.n_params(), "seeds": diag["seeds"]}
