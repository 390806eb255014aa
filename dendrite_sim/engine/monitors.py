"""Monitors: preallocated buffers that the run loop writes into, with bounded memory.

* :class:`SpikeMonitor` — spikes (step, neuron) of chosen neurons of one population, and, where
  the population tracks them, its events and bursts (see :mod:`.bursts`). Buffers start small
  and double between loop calls: before every step the loop checks that each buffer has room
  for a whole population's spikes and otherwise returns to Python, which grows it (up to
  ``max_spikes`` records of 12 bytes each). At the cap, recording stops (``truncated``); the
  population's spike, event and burst *counts* remain exact.
* :class:`StateMonitor` — variables (state, channels, drives ``I_<compartment>``, running
  rates) of chosen neurons every ``every`` steps (decimation); the buffer for a whole
  ``run()`` is allocated before it starts, so its size is known and checked against the
  network's memory budget in advance.

Times are reported in ms (step × dt). Both backends use the same buffers and rules.
"""

from __future__ import annotations

import numpy as np


class _Records:
    """Growable (step, index) record buffer; ``n[0]`` is the number of records."""

    def __init__(self, capacity: int):
        self.steps = np.zeros(capacity, dtype=np.int64)
        self.idx = np.zeros(capacity, dtype=np.int32)
        self.n = np.zeros(1, dtype=np.int64)

    @property
    def capacity(self) -> int:
        return self.steps.size

    def grow(self, capacity: int) -> None:
        k = int(self.n[0])
        steps = np.zeros(capacity, dtype=np.int64)
        idx = np.zeros(capacity, dtype=np.int32)
        steps[:k] = self.steps[:k]
        idx[:k] = self.idx[:k]
        self.steps, self.idx = steps, idx

    def bytes(self) -> int:
        return self.steps.nbytes + self.idx.nbytes


class SpikeMonitor:
    """Spikes, events and bursts of one population (see the module docstring)."""

    def __init__(self, pop, mask: np.ndarray, events: bool, bursts: bool, max_spikes: int, dt: float):
        self.pop = pop
        self.mask = mask
        self.record_events = bool(events)
        self.record_bursts = bool(bursts)
        self.max_spikes = max(int(max_spikes), pop.n)
        self.dt = dt
        cap = min(self.max_spikes, max(1024, 4 * pop.n))
        self.spikes = _Records(cap)
        self.events = _Records(cap if events else 1)
        self.bursts = _Records(cap if bursts else 1)
        self.on = np.ones(1, dtype=np.bool_)     # recording switched off at the cap
        self.truncated_at_step: int | None = None
        self.warned = False
        self.label = f"spikes:{pop.name}"

    def _buffers(self):
        out = [self.spikes]
        if self.record_events:
            out.append(self.events)
        if self.record_bursts:
            out.append(self.bursts)
        return out

    def needs_room(self) -> bool:
        """The loop's test before a step: could one step's spikes overflow a buffer?"""
        return bool(self.on[0]) and any(b.capacity - b.n[0] < self.pop.n for b in self._buffers())

    def ensure_capacity(self, step: int | None = None) -> None:
        """Grow buffers (doubling, up to max_spikes) so that a step always fits, or stop."""
        if not self.on[0]:
            return
        for b in self._buffers():
            free = b.capacity - int(b.n[0])
            if free < self.pop.n:
                if b.capacity >= self.max_spikes:
                    self.on[0] = False
                    self.truncated_at_step = step
                    return
                b.grow(min(self.max_spikes, max(2 * b.capacity, int(b.n[0]) + 2 * self.pop.n)))
        if any(b.capacity - int(b.n[0]) < self.pop.n for b in self._buffers()):
            self.on[0] = False
            self.truncated_at_step = step

    @property
    def truncated(self) -> bool:
        return not bool(self.on[0])

    # -------------------------------------------------------------- results
    def _get(self, rec: _Records):
        k = int(rec.n[0])
        return rec.steps[:k] * self.dt, rec.idx[:k].astype(np.int64)

    @property
    def t(self) -> np.ndarray:
        """Spike times (ms), in order of occurrence."""
        return self._get(self.spikes)[0]

    @property
    def i(self) -> np.ndarray:
        """Neuron index of each spike."""
        return self._get(self.spikes)[1]

    @property
    def steps(self) -> np.ndarray:
        return self.spikes.steps[: int(self.spikes.n[0])].copy()

    @property
    def event_t(self) -> np.ndarray:
        return self._get(self.events)[0]

    @property
    def event_i(self) -> np.ndarray:
        return self._get(self.events)[1]

    @property
    def burst_t(self) -> np.ndarray:
        return self._get(self.bursts)[0]

    @property
    def burst_i(self) -> np.ndarray:
        return self._get(self.bursts)[1]

    @property
    def n_spikes(self) -> int:
        return int(self.spikes.n[0])

    def trains(self) -> list[np.ndarray]:
        """Spike times (ms) per neuron of the population."""
        t, i = self.t, self.i
        order = np.argsort(i, kind="stable")
        bounds = np.searchsorted(i[order], np.arange(self.pop.n + 1))
        return [t[order[bounds[k]:bounds[k + 1]]] for k in range(self.pop.n)]

    def memory_bytes(self) -> int:
        return sum(b.bytes() for b in (self.spikes, self.events, self.bursts))

    def clear(self) -> None:
        """Forget what was recorded (buffers keep their size; recording resumes if it had
        stopped at the cap)."""
        for b in (self.spikes, self.events, self.bursts):
            b.n[0] = 0
        self.on[0] = True
        self.truncated_at_step = None


class StateMonitor:
    """Recorded variables of chosen neurons, decimated (see the module docstring)."""

    def __init__(self, pop, variables: list[str], idx: np.ndarray, every: int, dt: float):
        self.pop = pop
        self.variables = list(variables)
        self.idx = idx
        self.every = int(every)
        self.dt = dt
        self.label = f"state:{pop.name}:{','.join(variables)}"
        self._chunks: dict[str, list[np.ndarray]] = {v: [] for v in self.variables}
        self._step_chunks: list[np.ndarray] = []
        self.buf: dict[str, np.ndarray] = {v: np.zeros((0, idx.size)) for v in self.variables}
        self.buf_n = np.zeros(1, dtype=np.int64)
        self._buf_steps = np.zeros(0, dtype=np.int64)

    def _record_steps(self, step0: int, n_steps: int) -> np.ndarray:
        first = -(-step0 // self.every) * self.every
        return np.arange(first, step0 + n_steps, self.every, dtype=np.int64)

    def bytes_for(self, step0: int, n_steps: int) -> int:
        return self._record_steps(step0, n_steps).size * self.idx.size * 8 * len(self.variables)

    def allocate(self, step0: int, n_steps: int) -> None:
        self._buf_steps = self._record_steps(step0, n_steps)
        self.buf = {v: np.zeros((self._buf_steps.size, self.idx.size)) for v in self.variables}
        self.buf_n[0] = 0

    def finish(self) -> None:
        k = int(self.buf_n[0])
        for v in self.variables:
            self._chunks[v].append(self.buf[v][:k])
        self._step_chunks.append(self._buf_steps[:k])
        self.buf = {v: np.zeros((0, self.idx.size)) for v in self.variables}
        self.buf_n[0] = 0

    @property
    def t(self) -> np.ndarray:
        """Recording times (ms)."""
        if not self._step_chunks:
            return np.zeros(0)
        return np.concatenate(self._step_chunks) * self.dt

    def __getitem__(self, var: str) -> np.ndarray:
        """Values of ``var``, shape (n_times, n_neurons recorded)."""
        if var not in self._chunks:
            raise KeyError(f"{var!r} is not recorded; recorded: {', '.join(self.variables)}")
        chunks = self._chunks[var]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.idx.size))

    def memory_bytes(self) -> int:
        return (sum(a.nbytes for c in self._chunks.values() for a in c)
                + sum(a.nbytes for a in self.buf.values()))

    def clear(self) -> None:
        """Forget what was recorded so far (between runs)."""
        self._chunks = {v: [] for v in self.variables}
        self._step_chunks = []


class WeightMonitor:
    """Weights of chosen synapses of one projection every ``every`` steps (between chunks).

    ``t`` (ms, shape (T,)) and ``w`` (shape (T, n_synapses)); ``synapses`` are CSR positions,
    with their presynaptic and postsynaptic neurons in ``pre`` and ``post``.
    """

    def __init__(self, proj, synapses: np.ndarray, every: int, dt: float):
        self.proj = proj
        self.synapses = synapses
        self.every = int(every)
        self.dt = dt
        self.pre = proj.conn.pre_indices()[synapses]
        self.post = proj.conn.indices[synapses]
        self._steps: list[int] = []
        self._rows: list[np.ndarray] = []
        self.label = f"weights:{proj.name}"

    def record_due(self, step: int) -> None:
        """Record if ``step`` is a multiple of ``every`` not recorded yet."""
        if step % self.every == 0 and (not self._steps or self._steps[-1] != step):
            self._steps.append(step)
            self._rows.append(self.proj.conn.weights[self.synapses].copy())

    def next_due(self, step: int) -> int:
        return (step // self.every + 1) * self.every

    @property
    def t(self) -> np.ndarray:
        return np.asarray(self._steps, dtype=np.float64) * self.dt

    @property
    def w(self) -> np.ndarray:
        return np.array(self._rows) if self._rows else np.zeros((0, self.synapses.size))

    def memory_bytes(self) -> int:
        return 8 * self.synapses.size * len(self._rows)

    def bytes_for(self, step: int, n_steps: int) -> int:
        """Bytes that ``n_steps`` more steps from ``step`` will add."""
        return 8 * self.synapses.size * ((step + n_steps) // self.every - step // self.every)
