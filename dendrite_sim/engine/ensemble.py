"""Batched ensembles: B independent instances of one network structure, run side by side.

Python API::

    from dendrite_sim.engine.ensemble import Ensemble

    ens = Ensemble(network_table, dt=0.1, seeds=[1, 2, 3, 4])                  # a [network] table
    ens = Ensemble(network_table, dt=0.1, seeds=[1, 1],
                   vary={"projections.rec.weight": ["4 pA", "6 pA"]})           # chosen values
    ens = Ensemble(lambda seed: my_builder(seed), seeds=range(8))               # any builder
    mons = ens.each(lambda net: net.spike_monitor("pyr"))                       # per instance
    ens.run("1 s")                                                              # all instances
    ens.instances[k]                 # the k-th Network (seed ens.seeds[k], values ens.values[k])

Scenario form (``[network]`` of the ``simulate`` experiment; validated by ``dendrite-sim check``)::

    [network.ensemble]
    seeds = [1, 2, 3, 4]                          # one instance per seed
    workers = 2                                   # threads running instances (default: cores)
    [network.ensemble.vary]                       # optional: one value per instance
    "projections.rec.weight" = ["4 pA", "5 pA", "6 pA", "7 pA"]

Each instance is exactly the network that running it alone would build: the same table with
the instance's values put at the dotted keys of ``vary`` (any field of a population, projection
or input, e.g. ``populations.pyr.params.C_s``), built with the instance's seed. Results per
instance are therefore identical, bit for bit, to single runs (every random draw is a pure
function of the seed and the object's name; nothing is shared but read-only code).

Design (the simplest that is correct): B ordinary :class:`~dendrite_sim.engine.network.Network`
objects that share one compiled loop — the loop's source depends only on the structure, and
sizes, parameters, weights and state are its arguments, so every instance of one structure
calls the same Numba function (compiled or loaded once) — run by a pool of Python threads.
The loop is compiled with ``nogil=True``, so the instances' steps run on the cores at the same
time; only the few Python statements between chunks take the GIL. Every instance runs the
serial loop (``threads = 1``): parallelism is across instances, with no per-step barrier at
all, which is what pays on a small machine (a barrier per step costs as much as the work of a
4000-neuron step). A batch axis inside one kernel (state arrays of shape (B, n)) would save
little on the CPU: each instance's work is already a tight loop, and the instances' spikes
differ, so their propagation cannot be shared.

On the GPU the trade-off is the other way, and the batch axis is built there: with
``backend = "cupy"`` (Python, or ``simulation.backend`` in a scenario) :func:`run_all` hands
the instances to :func:`dendrite_sim.engine.backends._gpu_batch.run_batch`, one kernel whose every
launch steps all B instances (state with a batch offset, structure shared where the instances
agree, each instance's own random keys; see the cupy module). Per-instance results are those
of each instance run alone, within the GPU backend's stated tolerance
(``tests/test_cupy_batch.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine import spec as netspec

# the [network.ensemble] table is part of the [network] schema (engine/spec.py); re-exported here
from dendrite_sim.engine.spec import ENSEMBLE_KEYS, MAX_INSTANCES, instance_table, parse_ensemble  # noqa: F401


# --------------------------------------------------------------------------- the ensemble
class Ensemble:
    """B networks of one structure (see the module docstring).

    ``network``: a ``[network]`` table (then ``dt``, ``backend``, ``fastmath`` build each
    instance with :func:`dendrite_sim.engine.spec.build`) or a callable ``build(seed) ->
    Network`` (with ``vary``: ``build(seed, **values)``, the values keyed by their dotted
    names). ``seeds``: one instance per seed; ``vary``: dotted key → one value per instance;
    ``workers``: threads that run instances (default: the cores)."""

    def __init__(self, network, *, seeds: Sequence[int] | None = None, vary: Mapping | None = None,
                 dt: float = 0.1, backend: str = "numba", fastmath: bool = False, workers: int | None = None,
                 seed: int = 0):
        raw = {"seeds": list(seeds)} if seeds is not None else {}
        if vary:
            raw["vary"] = {p: list(v) for p, v in vary.items()}
        if callable(network):                   # a builder: vary's keys are its keyword arguments
            spec = parse_ensemble({**raw, "vary": {}}, {}, key="ensemble", seed=seed) if seeds is not None else None
            n = spec["n"] if spec else len(next(iter(raw.get("vary", {}).values()), []))
            for p, v in raw.get("vary", {}).items():
                if len(v) != n:
                    raise ScenarioError(f'ensemble.vary."{p}"', f"expected {n} values, one per instance, got {len(v)}")
            if not n:
                raise ScenarioError("ensemble", "expected seeds and/or vary")
            self.spec = {"seeds": spec["seeds"] if spec else [int(seed)] * n, "vary": raw.get("vary", {}),
                         "workers": workers, "n": n}
            self.values = [{p: v[k] for p, v in self.spec["vary"].items()} for k in range(n)]
            self.instances = [network(s, **vals) for s, vals in zip(self.spec["seeds"], self.values)]
        else:                                   # a [network] table: vary's keys are dotted paths in it
            spec = parse_ensemble(raw, network, key="ensemble", seed=seed)
            if spec is None:
                raise ScenarioError("ensemble", "expected seeds and/or vary")
            self.spec = spec
            self.values = [{p: v[k] for p, v in spec["vary"].items()} for k in range(spec["n"])]
            self.instances = [netspec.build(instance_table(network, spec, k), dt=dt, seed=s, backend=backend,
                                            fastmath=fastmath, threads=1)
                              for k, s in enumerate(spec["seeds"])]
        self.seeds = list(self.spec["seeds"])
        self.workers = workers or self.spec.get("workers") or os.cpu_count() or 1
        for net in self.instances:
            net.threads = 1                                  # parallel across instances, not within

    def __len__(self) -> int:
        return len(self.instances)

    def each(self, fn: Callable) -> list:
        """``[fn(net) for net in instances]`` (add monitors, read results)."""
        return [fn(net) for net in self.instances]

    def run(self, duration) -> Ensemble:
        """Advance every instance by ``duration`` (ms or a string with units), instances spread
        over ``workers`` threads (the compiled loop releases the GIL)."""
        run_all(self.instances, duration, self.workers)
        return self

    def kernels(self) -> set[str]:
        """Keys of the compiled loops the instances use (one per structure)."""
        return {net._backend().kernel.key for net in self.instances if hasattr(net._backend(), "kernel")}


def run_all(nets: Sequence, duration, workers: int | None = None) -> None:
    """``net.run(duration)`` for every network, on up to ``workers`` threads (default: cores).
    Each distinct loop is generated and loaded (or compiled) once, before the threads start.
    Networks that all use ``backend = "cupy"`` run as one GPU batch instead: one kernel launch
    per chunk steps all of them (:func:`dendrite_sim.engine.backends._gpu_batch.run_batch`)."""
    if not nets:
        return
    if all(getattr(net, "backend", None) == "cupy" for net in nets):
        from dendrite_sim.engine.backends._gpu_batch import run_batch

        run_batch(nets, duration)
        return
    for net in nets:                       # codegen + load per structure, serially
        net._backend()
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(nets)))
    if workers == 1:
        for net in nets:
            net.run(duration)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(net.run, duration) for net in nets]:
            f.result()


def summary(values: Sequence[float]) -> dict:
    """Mean, standard deviation (ddof 1), min and max of per-instance numbers (None skipped)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"mean": None, "std": None, "min": None, "max": None}
    mean = sum(v) / len(v)
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(v), "max": max(v)}
