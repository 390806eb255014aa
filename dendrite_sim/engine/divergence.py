"""Divergence of a rate network as one clear error: which layer, which variable, when.

A learning rate too large for a rule makes the weights overflow to ±inf and then NaN; every
number after that is meaningless. Experiments call :func:`check_network` between training
epochs (or steps) and :func:`check_losses` on the recorded losses, so a diverging run stops with
one :class:`~dendrite_sim.core.errors.DivergenceError` (exit code 2, ``status.json`` failed, no
``metrics.json``) such as::

    error: layers[1].W: diverged during epoch 3: 200 of 200 values (10→20) are NaN or infinite;
    expected finite values: lower training.learning_rate (now 5)

A rule can also diverge without overflowing: node perturbation at too large a rate once grew
its weights to about 1e100 while they stayed finite, and every figure after that was noise. A
weight of magnitude beyond :data:`RUNAWAY` (1e12) counts as diverged too: the weights of the
networks these experiments train are O(1) (initialised with s.d. ~ 1/√fan-in, at most a few
hundred after learning), so 1e12 is ten orders of magnitude past any learned value, while still
far below where float64 arithmetic itself breaks (≈ 1e154 squares to infinity).

Layer l is the weight matrix W_l (and bias b_l, feedback B_l) from layer l to layer l + 1 of
``net.sizes`` (layer 0 the input).
"""

from __future__ import annotations

import math

import numpy as np

from dendrite_sim.core.errors import DivergenceError

#: magnitude beyond which a weight, bias or feedback value counts as runaway growth
RUNAWAY = 1e12


def check_network(net, when: str, *, prefix: str = "", hint: str = "") -> None:
    """Raise :class:`DivergenceError` at ``<prefix>layers[l].<W|b|B>`` for the first array of the
    rate network ``net`` holding a NaN, an infinity or a value beyond ±:data:`RUNAWAY`; ``when``
    says when (``"during epoch 3"``)."""
    sizes = list(getattr(net, "sizes", []))
    for var in ("W", "b", "B"):
        for l, a in enumerate(getattr(net, var, None) or []):
            a = np.asarray(a)
            nonfinite = ~np.isfinite(a)
            runaway = np.abs(np.where(nonfinite, 0.0, a)) > RUNAWAY
            bad = int(np.count_nonzero(nonfinite | runaway))
            if bad:
                shape = f" ({sizes[l]}→{sizes[l + 1]})" if l + 1 < len(sizes) else ""
                what = ("are NaN or infinite" if not runaway.any() else
                        f"are NaN, infinite or beyond ±{RUNAWAY:.0e} (largest finite "
                        f"|value| {np.abs(a[~nonfinite]).max():.3g})")
                raise DivergenceError(f"{prefix}layers[{l}].{var}",
                                      f"diverged {when}: {bad} of {a.size} values{shape} {what}{hint}")


def check_losses(losses, key: str, *, when: str = "at epoch {}", labels=None, hint: str = "") -> None:
    """Raise :class:`DivergenceError` at ``key[i]`` for the first loss that is not finite
    (``None`` entries are skipped: not measured); ``when`` is formatted with ``labels[i]``
    (default ``i``: the epoch)."""
    for i, v in enumerate(losses):
        if v is not None and not math.isfinite(v):
            label = i if labels is None else labels[i]
            raise DivergenceError(f"{key}[{i}]", f"diverged {when.format(label)}: the loss became {v}{hint}")
