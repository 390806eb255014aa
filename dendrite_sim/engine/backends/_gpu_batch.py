"""GPU batches: B networks of one structure stepped by one kernel launch per chunk (:class:`Batch`).

The kernel is the cupy backend's (:mod:`dendrite_sim.engine.backends.cupy`, ``instances``);
this module drives it: every instance's ``Network.run`` runs in its own thread and meets the
others at a barrier before each chunk. :func:`run_batch` is what
:func:`dendrite_sim.engine.ensemble.run_all` calls for ``backend = "cupy"`` ensembles.
"""

from __future__ import annotations

import threading

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.backends.base import Backend
from dendrite_sim.engine.backends.cupy import CupyBackend


class _Aborted(Exception):
    """Another instance of the batch failed (its error is the one raised)."""


class _Member(Backend):
    """One instance's backend in a :class:`Batch`: ``run_steps`` waits for every instance,
    then a single launch advances them all."""

    def __init__(self, net, batch: Batch, k: int):
        super().__init__(net)
        self.batch, self.k = batch, k

    def run_steps(self, step0: int, n_steps: int) -> int:
        return self.batch._join(self.k, step0, n_steps)


class Batch:
    """B networks of one structure run by one kernel (:class:`CupyBackend` with
    ``instances``): each launch steps all of them.

    Each instance's ``Network.run`` runs as it runs alone (monitors, spike-buffer growth,
    chunk rules between chunks, divergence checks), one Python thread per instance; its
    backend (:class:`_Member`) meets the others at a barrier before every chunk, and the last
    to arrive launches the kernel for all, for the fewest steps any of them asked (they ask
    for the same, as they run the same schedule of chunks). A spike monitor near its capacity
    in any instance halts the whole batch at that step; every instance then grows its buffers
    (those that need it) and the batch continues, so each instance's results are those of its
    single run. The batch stays on the instances (``net._backend_obj``) for later runs while
    their structure is unchanged."""

    def __init__(self, nets):
        self.nets = list(nets)
        for net in self.nets:
            net._prepare()
        self.backend = CupyBackend(self.nets[0], instances=self.nets)
        self.members = [_Member(net, self, k) for k, net in enumerate(self.nets)]
        for net, m in zip(self.nets, self.members):
            net._backend_obj = m
            m.version = net._structure_version
        self._req: list = [None] * len(self.nets)
        self._done = 0
        self.launches = 0                     # kernel launches (chunks) so far
        self._barrier = threading.Barrier(len(self.nets), action=self._launch)

    def current(self, nets) -> bool:
        """Whether this batch still runs exactly ``nets``, each with its structure unchanged."""
        return len(nets) == len(self.nets) and all(
            a is b and a._backend_obj is m and m.version == a._structure_version
            for a, b, m in zip(nets, self.nets, self.members))

    def _join(self, k: int, step0: int, n_steps: int) -> int:
        self._req[k] = (step0, n_steps)
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            raise _Aborted() from None
        return self._done

    def _launch(self) -> None:
        starts = sorted({r[0] for r in self._req})
        if len(starts) != 1:
            raise ScenarioError("ensemble", f"expected every instance of a GPU batch at one step, got steps {starts}")
        self._done = self.backend.run_steps(starts[0], min(r[1] for r in self._req))
        self.launches += 1

    def run(self, duration) -> None:
        """``net.run(duration)`` for every instance, all advanced together."""
        errors: list = []

        def one(net):
            try:
                net.run(duration)
            except _Aborted:
                pass
            except BaseException as exc:  # stop the others at the barrier, raise this one
                errors.append(exc)
                self._barrier.abort()

        threads = [threading.Thread(target=one, args=(net,), name=f"gpu-batch-{k}") for k, net in enumerate(self.nets)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._barrier.reset()
        if errors:
            raise errors[0]


def run_batch(nets, duration) -> Batch:
    """Run ``nets`` (networks of one structure, ``backend = "cupy"``) for ``duration`` as one
    batch, reusing the batch kept on them from an earlier call when it still fits."""
    nets = list(nets)
    m = getattr(nets[0], "_backend_obj", None)
    batch = m.batch if isinstance(m, _Member) else None
    if batch is None or not batch.current(nets):
        batch = Batch(nets)
    batch.run(duration)
    return batch
