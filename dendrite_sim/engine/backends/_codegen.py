"""What the two code-generating backends (``numba``, ``cupy``) share: identifier labels and the
expressions that bind a synapse hook's arguments.

Matching hook arguments by name is defined once, in
:meth:`dendrite_sim.synapses.plasticity.SynapseRule.hook_bindings` (argument → kind); the numpy
backend maps each kind to an array gather, and the generators below map it to the text of an
indexed array in the generated loop or kernel. The backends differ only in how a postsynaptic
state variable and an event/burst classification are written, which they pass in.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def unique_label(labels: dict, obj, name: str) -> str:
    """A unique identifier prefix for ``obj`` made from its user-given ``name`` (non-word
    characters → ``_``, no leading digit, no ``__``, which separates a label from its array's
    name; ``_1``, ``_2`` … on a clash). ``labels`` maps ``id(obj)`` → label and is updated."""
    if id(obj) not in labels:
        base = re.sub(r"\W", "_", name) or "x"
        if base[0].isdigit():
            base = "_" + base
        base = base.replace("__", "_")
        label, k = base, 1
        while label in labels.values():
            label, k = f"{base}_{k}", k + 1
        labels[id(obj)] = label
    return labels[id(obj)]


def hook_arg_exprs(e, proj, Q: str, hook: str, syn: str, pre: str, post: str, *,
                   var_expr: Callable, classified: Callable) -> list[str]:
    """The generated expressions of the arguments of synapse-rule ``hook`` of ``proj`` on synapse
    ``syn`` (presynaptic neuron ``pre``, postsynaptic ``post``), in signature order. ``Q`` is the
    projection's label; ``var_expr(e, pop, var, i)`` writes a state variable of neuron ``i`` and
    ``classified(e, P, kind, i)`` this step's ``event``/``burst`` of neuron ``i`` of population
    label ``P``."""
    Pb = e.label(proj.post, proj.post.name)
    expr = {
        "w": lambda a: f"{Q}__w[{syn}]",
        "synapse_var": lambda a: f"{Q}__{a}[{syn}]",
        "pre_trace": lambda a: f"{Q}__pre_{a}[{pre}]",
        "post_trace": lambda a: f"{Q}__post_{a}[{post}]",
        "p": lambda a: f"{Q}__p",
        "dt": lambda a: "dt",
        "post_p": lambda a: f"{Pb}__params",
        "post_spiked": lambda a: f"{Pb}__spiked[{post}]",
        "post_classified": lambda a: classified(e, Pb, a, post),
        "post_state": lambda a: var_expr(e, proj.post, a, post),
    }
    return [expr[kind](name) for kind, name in proj.plasticity.rule.hook_bindings(hook)]


def hook_out_exprs(proj, Q: str, hook: str, syn: str) -> list[str]:
    """The generated targets of the per-synapse values ``hook`` returns (``w`` and synapse
    variables of synapse ``syn``), in signature order."""
    return [f"{Q}__w[{syn}]" if a == "w" else f"{Q}__{a}[{syn}]" for a in proj.plasticity.rule.hook_writes(hook)]
