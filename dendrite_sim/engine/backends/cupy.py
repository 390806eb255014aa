"""GPU backend: the schedule as one persistent CUDA kernel per chunk of steps (``backend = "cupy"``).

State, parameters, CSR connectivity, delay rings and monitor buffers live in device memory:
CuPy arrays when CuPy finds a device, otherwise ``numba.cuda`` device arrays (which is also
what Numba's CUDA simulator, ``NUMBA_ENABLE_CUDASIM=1``, provides, so the tests without a GPU
run the very kernels a GPU runs). The kernels are compiled by Numba's CUDA target
(``numba.cuda.jit``) and read CuPy arrays through ``__cuda_array_interface__``.

**One definition of everything.** :func:`generate` writes, per network structure, the source
of one kernel from one emitter per phase of :mod:`dendrite_sim.engine.schedule`
(``CupyBackend.emit_<phase>``), as the numba backend writes its fused CPU loop. The kernel
calls the models' ``step``, the STP kernels (:mod:`dendrite_sim.synapses.stp`), the synapse
rules' hooks, the counter-based RNG (:mod:`dendrite_sim.engine.random`, pure uint64
arithmetic, so the draws are those of the CPU) and the burst bookkeeping
(:mod:`dendrite_sim.engine.bursts`) as CUDA device functions made by
``numba.cuda.jit(device=True)`` from the same Python functions (:func:`device`; the
kernel-language primitives lowered to libdevice by
:func:`dendrite_sim.core.elementwise.cuda_version`).

**Launches: one per chunk.** The kernel loops over the steps of a chunk itself and separates
the parts of a step with grid-wide barriers (``cuda.cg.this_grid().sync()``, a cooperative
launch with at most as many blocks as are resident at once; every loop is grid-stride, so any
grid size is correct). Per step::

    A  per neuron (all populations): arrivals, Poisson inputs, drives, state monitors, model
       step, channel decay, bookkeeping (counts, events/bursts, running rates, spike monitors)
       and the spike list (atomic append; spike generators: thread 0 replays the schedule)
       -- barrier --
    B  per spiking row: STP of the row (state per presynaptic neuron) and decay of the rules'
       traces                                                     (only with STP or a rule)
       -- barrier --
    C  per synapse of a spiking row, 32 threads per row: per-synapse STP, delivery into the
       ring with ``cuda.atomic.add``, then ``on_pre`` of the same synapse
       -- barrier --
    D  ``on_post`` per synapse of a spiking column (CSC), then (barrier) ``per_step`` for
       every synapse                                                      (rules only)
       -- barrier --
    E  trace updates of the neurons that spiked; thread 0 ends the step: spike-monitor room
       check (halts the chunk where the CPU loop returns) and reset of the next spike count
       -- barrier --

A small network therefore costs 2–5 grid barriers per step (about 1–2 µs each on a recent
GPU) and no launch; a per-step sequence of kernels would pay 3–5 launches per step (about
3–5 µs each from CUDA, and 20–50 µs each through Numba's Python launch path with this many
arguments), and a CUDA graph of that sequence would remove the Python cost but still pay the
device-side launch latency of every node. The barriers are the price: all threads wait for the
slowest block at each one, which at 10⁶ neurons is small next to the work of phase A.

**Order and tolerance.** Spikes are listed by atomic append, so the order within a step is
arbitrary: the spike monitors' new records are sorted by (step, neuron) on the host after each
chunk (what the CPU backends produce), and the spike list of the last step is sorted on
download. Floating-point atomic additions into a ring slot happen in arbitrary order, so a
channel can differ from the CPU's sum by rounding (≈1e-16 relative per addition); spikes are
the same unless a neuron sits within that rounding of its threshold. ``tests/test_cupy_backend.py``
states the tolerance and checks it against the numpy backend.

**Host and device.** Between chunks (``run_steps`` calls) the host arrays are the truth: every
mutable array (state, channels, rings, plastic weights, traces, STP state, counts, monitor
records) is uploaded at the start of a call and downloaded at its end, so learning rules
between chunks, weight monitors, checkpoints and ``net[pop].v`` see the usual numpy arrays.
Read-only structure (CSR indices, delays, CSC, Poisson tables, drive arrays) and the weights of
projections without a synapse rule are uploaded once per array object (again every chunk while
the network has chunk rules, which change weights between chunks); after editing such weights
in place, assign a new array (``proj.conn.weights = w``) so that the change is seen.
State-monitor buffers are uploaded when ``allocate`` makes new ones and downloaded per chunk.
The 1-D arrays travel packed, one device array per (kind, dtype) (:class:`Layout`): a kernel's
parameters are limited to 32 KiB, about 580 array arguments in Numba's layout.

**Not covered** (refused or ignored in one line): ``fastmath`` is ignored (a warning; the kernel
is IEEE double as written).

**Batch axis (ensembles).** B networks of one structure (an :class:`~dendrite_sim.engine.ensemble.Ensemble`
or ``[network.ensemble]`` with ``backend = "cupy"``) run as one kernel, each launch stepping
all of them; one grid barrier serves the whole batch. It is the same generator:
``generate(net, nb=B)`` folds the instance ``b`` into the loops (:class:`Emitter`:
``t → (b, i)`` in the grid-stride loops over neurons, an outer loop over ``b`` with a rotated
start where the count is the instance's own — spiking rows, synapses — and one thread per
instance where one thread served), and :class:`Layout` gives every argument its batch offset
(``arenab_state_d[b·S + off + i]``, ``ring[b, slot, i]``, ``key[b]``). What is equal in every
instance (CSR of equal seeds, parameters, Poisson tables) stays one copy; what differs
(per-seed connectivity, padded to the largest instance; varied weights; state; each
instance's RNG keys, so its draws are those of its single run) is per instance. The raw
sources of the B instances must be identical (that is "one structure"), else one
``ScenarioError`` line. :class:`~._gpu_batch.Batch` (module ``_gpu_batch``) runs every
instance's ``Network.run`` in its own thread; their backends meet at a barrier before each
chunk and the last one launches. The
halt flag is one for the batch: the whole batch halts at the earliest step at which any
instance's spike monitor could overflow, every instance grows what it needs, and the batch
continues, so each instance's results are those of its single run
(``tests/test_cupy_batch.py``: 8 instances against 8 numpy runs).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import sys
import time
import types as pytypes
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.backends._codegen import hook_arg_exprs, hook_out_exprs, unique_label
from dendrite_sim.engine.backends._gpu_layout import BLEN, CONST, MONITOR, SCALAR, STATE, Layout
from dendrite_sim.engine.backends.base import Backend
from dendrite_sim.engine.graph import NeuronPopulation, PoissonSource, SpikeSource
from dendrite_sim.engine.schedule import PHASES
from dendrite_sim.synapses.plasticity import TRACE_SPECIAL

THREADS = 256            # threads per block on a device
SIM_THREADS = 16
LANES = 32               # threads per spiking row in delivery



# ----------------------------------------------------------------------------- device access
def _simulator() -> bool:
    if "numba.cuda" not in sys.modules:
        import os
        return os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0")
    from numba.cuda.core import config as cuda_config
    return bool(cuda_config.ENABLE_CUDASIM)


def availability() -> str:
    """``"cupy"`` (CuPy with a device), ``"numba"`` (a device, numba.cuda arrays) or
    ``"simulator"`` (Numba's CUDA simulator); raise ScenarioError (one line) if none."""
    if _simulator():
        return "simulator"
    reasons = []
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return "cupy"
        reasons.append("CuPy finds no CUDA device")
    except ImportError:
        reasons.append("CuPy is not installed (pip install 'dendrite_sim[gpu]')")
    except Exception as exc:  # CUDARuntimeError without a driver
        reasons.append(f"CuPy finds no CUDA device ({type(exc).__name__})")
    try:
        from numba import cuda

        if cuda.is_available():
            return "numba"
        reasons.append("numba.cuda finds no device")
    except Exception as exc:
        reasons.append(f"numba.cuda is not usable ({type(exc).__name__})")
    raise ScenarioError("backend", '"cupy" needs a CUDA device (CuPy, or numba-cuda with a driver) or '
                        "Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1); " + "; ".join(reasons))


class _Arrays:
    """Allocation and copies for the array library in use (CuPy or numba.cuda)."""

    def __init__(self, kind: str):
        self.kind = kind
        if kind == "cupy":
            import cupy
            self.cp = cupy
        from numba import cuda
        self.cuda = cuda

    def to_device(self, a: np.ndarray):
        a = np.ascontiguousarray(a)
        if a.size == 0:
            a = np.zeros(1, dtype=a.dtype)
        return self.cp.asarray(a) if self.kind == "cupy" else self.cuda.to_device(a)

    def upload(self, dev, a: np.ndarray) -> None:
        if a.size == 0:
            return
        if self.kind == "cupy":
            dev.set(np.ascontiguousarray(a))
        else:
            dev.copy_to_device(np.ascontiguousarray(a))

    def download(self, dev, a: np.ndarray) -> None:
        if a.size == 0:
            return
        host = dev.get() if self.kind == "cupy" else dev.copy_to_host()
        a[...] = host.reshape(a.shape)

    def synchronize(self) -> None:
        if self.kind == "cupy":
            self.cp.cuda.runtime.deviceSynchronize()
        else:
            self.cuda.synchronize()


# ----------------------------------------------------------------------------- device functions
_DEVICE: dict = {}


def device(fn):
    """``fn`` (a model step, STP kernel, rule hook, RNG or burst kernel) as a CUDA device
    function: :func:`~dendrite_sim.core.elementwise.cuda_version` of it, with every plain
    Python function that it calls (a helper of a model or rule, the RNG's ``mix64``) made a
    device function too, recursively."""
    from numba import cuda

    from dendrite_sim.core import elementwise as E

    if fn in _DEVICE:
        return _DEVICE[fn]
    if _simulator():                      # kernels run as Python: the functions as they are
        out = cuda.jit(device=True)(fn)
        _DEVICE[fn] = out
        return out
    f = E.cuda_version(fn)
    glb = dict(f.__globals__)
    for name in f.__code__.co_names:
        v = glb.get(name)
        if isinstance(v, pytypes.FunctionType) and v.__module__ != "dendrite_sim.core.elementwise":
            glb[name] = device(v)
    g = pytypes.FunctionType(f.__code__, glb, f.__name__, f.__defaults__, f.__closure__)
    g.__qualname__ = f.__qualname__
    out = cuda.jit(device=True)(g)
    _DEVICE[fn] = out
    return out


# ----------------------------------------------------------------------------- emitter
@dataclass
class _Arg:
    name: str
    getter: Callable
    kind: str


@dataclass
class Emitter:
    args: dict = field(default_factory=dict)            # name → _Arg, in declaration order
    groups: dict = field(default_factory=dict)          # part of a step → lines
    devfns: dict = field(default_factory=dict)          # name in the kernel → Python function
    labels: dict = field(default_factory=dict)
    deps: set = field(default_factory=set)
    host: dict = field(default_factory=dict)            # scratch arrays the backend owns
    refresh_const: bool = False                         # upload constant arenas again
    nb: int = 0                                         # instances of a batch (0: one network)

    # The loops of the kernel. With a batch (``nb`` instances) each also runs over the
    # instance ``b``: folded into the grid-stride index where every instance has the same
    # number of items (neurons), or as an outer loop where the count is the instance's own
    # (spiking rows, synapses), the start rotated by ``b`` so the instances' work is spread
    # over the threads. ``b`` is what the layout's batch offsets (:class:`Layout`) index by.
    def per_item(self, group: str, ind: int, var: str, n: str) -> int:
        """Open a grid-stride loop of ``var`` over ``0 .. n-1`` (``n`` the same in every
        instance); return the indent of its body."""
        if not self.nb:
            self.emit(group, ind, f"for {var} in range(tid, {n}, nth):")
            return ind + 1
        self.emit(group, ind, f"for t_ in range(tid, {self.nb * int(n)}, nth):")
        self.emit(group, ind + 1, f"b = t_ // {n}")
        self.emit(group, ind + 1, f"{var} = t_ - b * {n}")
        return ind + 1

    def per_count(self, group: str, ind: int, var: str, count: str, start: str = "tid", step: str = "nth") -> int:
        """Open a loop of ``var`` over ``0 .. count-1`` spread over the workers ``start`` of
        ``step`` (threads, or warps), ``count`` an instance's own; return the body's indent."""
        if not self.nb:
            self.emit(group, ind, f"for {var} in range({start}, {count}, {step}):")
            return ind + 1
        self.emit(group, ind, f"for b in range({self.nb}):")
        self.emit(group, ind + 1, f"for {var} in range(({start} + {step} - b % {step}) % {step}, {count}, {step}):")
        return ind + 2

    def once(self, group: str, ind: int) -> int:
        """Open code that one thread runs (one per instance); return the body's indent."""
        if not self.nb:
            self.emit(group, ind, "if tid == 0:")
        else:
            self.emit(group, ind, f"for b in range(tid, {self.nb}, nth):")
        return ind + 1

    def scratch(self, name: str, a: np.ndarray) -> str:
        """A kernel array that only the backend holds (spike counts per parity, STP releases,
        the halt flag): round-trips with the state."""
        if name not in self.host:
            self.host[name] = a
            self.arg(name, lambda name=name: self.host[name], STATE)
        return name

    def arg(self, name: str, getter: Callable, kind: str = STATE) -> str:
        if name not in self.args:
            self.args[name] = _Arg(name, getter, kind)
        return name

    def fn(self, name: str, pyfn) -> str:
        self.devfns[name] = pyfn
        return name

    def emit(self, group: str, indent: int, text: str) -> None:
        self.groups.setdefault(group, []).append("    " * indent + text)

    def label(self, obj, name: str) -> str:
        return unique_label(self.labels, obj, name)


#: the parts of one step, in order, each followed by a grid barrier (see the module docstring)
GROUPS = ("neurons", "rows", "deliver", "on_post", "per_step", "traces", "end")


# ----------------------------------------------------------------------------- the backend
class CupyBackend(Backend):
    """Generates the persistent kernel of ``net``'s structure and runs chunks on the device;
    with ``instances`` (networks of one structure, ``net`` the first), the kernel of their
    batch, which steps all of them in each launch (:class:`~._gpu_batch.Batch` drives it)."""

    phase_prefix = "emit_"

    @staticmethod
    def check_available() -> None:
        availability()

    def __init__(self, net, instances=None):
        super().__init__(net)
        t0 = time.perf_counter()
        self.nets = list(instances) if instances is not None else [net]
        self.nb = len(self.nets) if instances is not None else 0
        self.mode = availability()
        self.xp = _Arrays("cupy" if self.mode == "cupy" else "numba")
        for n in self.nets:
            _unsupported(n)
        self.source, self.emitters, self.layout = _build(self.nets, self.nb)
        self.emitter = self.emitters[0]
        self.kernel = _compile(self.source, self.emitter)
        self._dev: dict = {}
        self._dev_src: dict = {}
        for n in self.nets:
            n.timings["codegen_s"] = time.perf_counter() - t0
        self._first = True
        self._grid = None

    # ------------------------------------------------------------------ running
    def _launch_shape(self, args):
        if self._grid is None:
            if self.mode == "simulator":
                self._grid = (1, SIM_THREADS)
            else:
                need = max([p.n for p in self.net.pops.values()] + [1]) * max(1, self.nb)
                blocks = -(-need // THREADS)
                try:        # a cooperative grid: at most the blocks resident at once
                    spec = self.kernel.specialize(*args)
                    kern = next(iter(spec.overloads.values()))
                    blocks = max(1, min(blocks, int(kern.max_cooperative_grid_blocks(THREADS))))
                    self.kernel = spec
                except Exception:
                    from numba import cuda
                    blocks = max(1, min(blocks, cuda.get_current_device().MULTIPROCESSOR_COUNT))
                self._grid = (blocks, THREADS)
        return self._grid

    def _array(self, name: str, v, kind: str):
        """The device copy of host array ``v`` (a list: the instances' arrays, stacked): made
        anew when the host objects were replaced, uploaded again when ``kind`` is STATE."""
        srcs = tuple(v) if isinstance(v, list) else (v,)
        old = self._dev_src.get(name)
        same = old is not None and len(old) == len(srcs) and all(x is y for x, y in zip(old, srcs))
        dev = self._dev.get(name)
        if same and dev is not None and kind != STATE:
            return dev
        host = Layout.stack(v) if isinstance(v, list) else np.asarray(v)
        shape = host.shape if host.size else (1,)
        if dev is None or not same or tuple(dev.shape) != shape:
            dev = self.xp.to_device(host)
            self._dev[name] = dev
            self._dev_src[name] = srcs
        else:
            self.xp.upload(dev, host)
        return dev

    def _device_args(self):
        lay = self.layout
        out = []
        for name in lay.arg_names:
            if name in lay.arenas:
                out.append(self._array(name, lay.gather(name), STATE))
            elif name == BLEN:
                out.append(self._array(name, lay.lengths(), STATE))
            else:
                a = self.emitter.args[name]
                if name not in lay.batched:
                    v = a.getter()
                    out.append(v if a.kind == SCALAR else self._array(name, v, a.kind))
                elif a.kind == SCALAR:
                    v = lay.per_instance(lay.values(name))
                    out.append(v if isinstance(v, tuple) else self._array(name, v, STATE))
                else:
                    out.append(self._array(name, lay.values(name), a.kind))
        for em in self.emitters:
            em.refresh_const = False
        return out

    def _download(self):
        lay = self.layout
        for name in lay.arg_names:
            if name in lay.arenas:
                if lay.arenas[name].kind == STATE:
                    buf = np.empty(self._dev[name].shape, dtype=lay.arenas[name].dtype)
                    self.xp.download(self._dev[name], buf)
                    lay.scatter(name, buf)
            elif name != BLEN and self.emitter.args[name].kind in (STATE, MONITOR):
                srcs = self._dev_src[name]
                if name in lay.batched:
                    host = np.empty(self._dev[name].shape, dtype=np.asarray(srcs[0]).dtype)
                    self.xp.download(self._dev[name], host)
                    lay.unstack(host, srcs)
                else:
                    self.xp.download(self._dev[name], np.asarray(srcs[0]))

    def run_steps(self, step0: int, n_steps: int) -> int:
        """Advance every instance ``n_steps`` from ``step0`` in one launch; return the steps
        done (fewer where a spike monitor of any instance needs a larger buffer: the whole
        batch halts at that step)."""
        t0 = time.perf_counter()
        marks = [({id(m): int(m.buf_n[0]) for m in net.state_monitors},
                  [(m, [int(r.n[0]) for r in m._buffers()]) for m in net.spike_monitors]) for net in self.nets]
        self.emitter.host["halt"][0] = -1
        if any(net.plasticity for net in self.nets):       # chunk rules change weights between chunks
            for em in self.emitters:
                em.refresh_const = True
        self.layout.check_shared()
        args = self._device_args()
        blocks, threads = self._launch_shape(args)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
            self.kernel[blocks, threads](np.int64(step0), np.int64(n_steps), float(self.net.dt), *args)
        self.xp.synchronize()
        self._download()
        h = int(self.emitter.host["halt"][0])
        done = n_steps if h < 0 else h - step0
        for net, em, (rec0, spk0) in zip(self.nets, self.emitters, marks):
            _after_chunk(net, em, rec0, spk0, step0, done)
            if self._first:
                net.timings["first_call_s"] = time.perf_counter() - t0
        self._first = False
        return done

    # ------------------------------------------------------------------ names
    @staticmethod
    def pop_args(e: Emitter, pop) -> str:
        P = e.label(pop, pop.name)
        e.arg(f"{P}__spike_idx", lambda pop=pop: pop.spike_idx)
        e.scratch(f"{P}__cnt", np.zeros(2, dtype=np.int64))
        e.arg(f"{P}__spike_count", lambda pop=pop: pop.spike_count)
        if isinstance(pop, NeuronPopulation):
            model = pop.model
            e.deps.add(inspect.getfile(model))
            e.fn(f"{P}__model_step", model.step)
            e.arg(f"{P}__params", lambda pop=pop: pop.params, SCALAR)
            e.arg(f"{P}__spiked", lambda pop=pop: pop.spiked)
            for v in model.state_vars:
                e.arg(f"{P}__{v}", lambda pop=pop, v=v: pop.state[v])
            for ch in model.channels:
                e.arg(f"{P}__{ch}", lambda pop=pop, ch=ch: pop.channels[ch])
                e.arg(f"{P}__decay_{ch}", lambda pop=pop, ch=ch: float(pop.decay[ch]), SCALAR)
                if ch in pop.rings:
                    e.arg(f"{P}__ring_{ch}", lambda pop=pop, ch=ch: pop.rings[ch])
            for comp in model.compartments:
                e.arg(f"{P}__bias_{comp}", lambda pop=pop, comp=comp: pop.bias[comp])
                e.arg(f"{P}__I_{comp}", lambda pop=pop, comp=comp: pop.drives[comp])
            if getattr(model, "needs_uniform", False):
                e.arg(f"{P}__uniform_key", lambda pop=pop: np.uint64(pop.uniform_key), SCALAR)
        elif isinstance(pop, PoissonSource):
            e.arg(f"{P}__gen_key", lambda pop=pop: np.uint64(pop.gen_key), SCALAR)
            e.arg(f"{P}__spike_prob", lambda pop=pop: pop.spike_prob, CONST)
        elif isinstance(pop, SpikeSource):
            e.arg(f"{P}__sched_steps", lambda pop=pop: pop.sched_steps, CONST)
            e.arg(f"{P}__sched_idx", lambda pop=pop: pop.sched_idx, CONST)
            e.arg(f"{P}__sched_ptr", lambda pop=pop: pop.sched_ptr)
        if pop.track_bursts:
            for nm in ("last_step", "n_in_event", "spike_rate", "event_rate", "burst_rate", "event_count",
                       "burst_count"):
                e.arg(f"{P}__{nm}", lambda pop=pop, nm=nm: getattr(pop, nm))
            for nm, cast in (("burst_window", np.int64), ("rate_decay", float), ("rate_inc", float)):
                e.arg(f"{P}__{nm}", lambda pop=pop, nm=nm, cast=cast: cast(getattr(pop, nm)), SCALAR)
        return P

    @staticmethod
    def var_expr(e: Emitter, pop, var: str, i: str = "i") -> str:
        P = e.label(pop, pop.name)
        if var == "burst_prob":
            e.fn("B_burst_probability", _bursts().burst_probability)
            return f"B_burst_probability({P}__burst_rate[{i}], {P}__event_rate[{i}])"
        return f"{P}__{var}[{i}]"

    # ------------------------------------------------------------------ per-neuron phases
    # (each writes the code of one neuron ``i`` of population ``pop`` into part A)
    @staticmethod
    def emit_arrivals(e: Emitter, net, pop, ind: int) -> None:
        if "arrivals" not in pop.phases:
            return
        P = e.label(pop, pop.name)
        for ch in pop.channels:
            if ch in pop.rings:
                e.emit("neurons", ind, f"slot = step % {P}__ring_{ch}.shape[0]")
                e.emit("neurons", ind, f"{P}__{ch}[i] += {P}__ring_{ch}[slot, i]")
                e.emit("neurons", ind, f"{P}__ring_{ch}[slot, i] = 0.0")

    @staticmethod
    def emit_poisson(e: Emitter, net, pop, ind: int) -> None:
        R = _random()
        for inp in net.poisson_inputs:
            if inp.pop is not pop:
                continue
            P, I = e.label(pop, pop.name), e.label(inp, inp.name)
            e.arg(f"{I}__key", lambda inp=inp: np.uint64(inp.key), SCALAR)
            e.arg(f"{I}__weight", lambda inp=inp: float(inp.weight), SCALAR)
            e.arg(f"{I}__cdf", lambda inp=inp: inp.cdf, CONST)
            e.arg(f"{I}__zero", lambda inp=inp: np.uint64(inp.zero_threshold), SCALAR)
            for nm in ("step_key", "hash_at", "to_unit", "poisson_count"):
                e.fn(f"R_{nm}", getattr(R, nm))
            e.emit("neurons", ind, f"h = R_hash_at(R_step_key({I}__key, step), i)")
            e.emit("neurons", ind, f"if h >= {I}__zero:")
            e.emit("neurons", ind + 1, f"{P}__{inp.channel}[i] += {I}__weight * R_poisson_count(R_to_unit(h), "
                   f"{I}__cdf)")

    @staticmethod
    def emit_drives(e: Emitter, net, pop, ind: int) -> None:
        if "drives" not in pop.phases:
            return
        P = e.label(pop, pop.name)
        for comp in pop.model.compartments:
            e.emit("neurons", ind, f"x = {P}__bias_{comp}[i]")
            for ai in net.array_inputs:
                if ai.pop is not pop or ai.compartment != comp:
                    continue
                A = e.label(ai, ai.name)
                e.arg(f"{A}__values", lambda ai=ai: ai.values, CONST)
                e.arg(f"{A}__ratio", lambda ai=ai: np.int64(ai.ratio), SCALAR)
                e.emit("neurons", ind, f"row = step // {A}__ratio")
                e.emit("neurons", ind, f"if row < {A}__values.shape[0]:")
                e.emit("neurons", ind + 1, f"x += {A}__values[row, i]" if ai.per_neuron else f"x += {A}__values[row]")
            e.emit("neurons", ind, f"{P}__I_{comp}[i] = x")

    @staticmethod
    def emit_record(e: Emitter, net, pop, ind: int) -> None:
        for q, m in enumerate(net.state_monitors):
            if m.pop is not pop:
                continue
            P = e.label(pop, pop.name)
            M = f"st{q}_{P}"
            e.arg(f"{M}__pos", lambda m=m: _positions(m), CONST)
            e.arg(f"{M}__every", lambda m=m: np.int64(m.every), SCALAR)
            e.arg(f"{M}__c0", lambda m=m: np.int64(m.buf_n[0]), SCALAR)
            e.emit("neurons", ind, f"if {M}__pos[i] >= 0 and step % {M}__every == 0:")
            e.emit("neurons", ind + 1, f"c = {M}__c0 + step // {M}__every - (step0 + {M}__every - 1) // {M}__every")
            for var in m.variables:
                e.arg(f"{M}__{var}", lambda m=m, var=var: m.buf[var], MONITOR)
                e.emit("neurons", ind + 1, f"{M}__{var}[c, {M}__pos[i]] = {CupyBackend.var_expr(e, pop, var)}")

    @staticmethod
    def emit_update(e: Emitter, net, pop, ind: int) -> None:
        P = e.label(pop, pop.name)
        if isinstance(pop, NeuronPopulation):
            model = pop.model
            args = [f"{P}__{v}[i]" for v in model.state_vars]
            args += [f"{P}__{ch}[i]" for ch in model.channels]
            args += [f"{P}__I_{comp}[i]" for comp in model.compartments]
            if getattr(model, "needs_uniform", False):
                R = _random()
                e.fn("R_step_key", R.step_key)
                e.fn("R_uniform", R.uniform)
                args.append(f"R_uniform(R_step_key({P}__uniform_key, step), i)")
            outs = [f"o{k}" for k in range(len(model.state_vars))] + ["spk"]
            e.emit("neurons", ind, f"{', '.join(outs)} = {P}__model_step({', '.join(args)}, {P}__params, dt)")
            for k, v in enumerate(model.state_vars):
                e.emit("neurons", ind, f"{P}__{v}[i] = o{k}")
            e.emit("neurons", ind, f"{P}__spiked[i] = spk")
        elif isinstance(pop, PoissonSource):
            R = _random()
            e.fn("R_step_key", R.step_key)
            e.fn("R_uniform", R.uniform)
            e.emit("neurons", ind, f"spk = R_uniform(R_step_key({P}__gen_key, step), i) < {P}__spike_prob[i]")

    @staticmethod
    def emit_decay(e: Emitter, net, pop, ind: int) -> None:
        if "decay" not in pop.phases:
            return
        P = e.label(pop, pop.name)
        for ch in pop.channels:
            e.emit("neurons", ind, f"{P}__{ch}[i] *= {P}__decay_{ch}")

    @staticmethod
    def emit_bookkeeping(e: Emitter, net, pop, ind: int) -> None:
        """Rate decay of neuron i, then, if it spiked: the spike list, counts, events and
        bursts, spike monitors (written for the spiking neuron ``i``, flag ``spk``)."""
        P = e.label(pop, pop.name)
        if pop.track_bursts:
            for nm in ("spike_rate", "event_rate", "burst_rate"):
                e.emit("neurons", ind, f"{P}__{nm}[i] *= {P}__rate_decay")
        e.emit("neurons", ind, "if spk:")
        _spiking_bookkeeping(e, net, pop, ind + 1)

    # ------------------------------------------------------------------ synapse phases
    @staticmethod
    def proj_args(e: Emitter, proj) -> str:
        Q = e.label(proj, proj.name)
        e.arg(f"{Q}__indptr", lambda proj=proj: proj.conn.indptr, CONST)
        e.arg(f"{Q}__post_idx", lambda proj=proj: proj.conn.indices, CONST)
        # weights change in the loop only under a synapse rule; between chunks a chunk rule
        # (or the user) may change them: static projections upload theirs once per array object
        e.arg(f"{Q}__w", lambda proj=proj: proj.conn.weights, STATE if proj.plasticity is not None else CONST)
        return Q

    @staticmethod
    def emit_propagate(e: Emitter, net) -> None:
        stpm = _stp()
        for proj in net.projections:
            Pa, Pb = e.label(proj.pre, proj.pre.name), e.label(proj.post, proj.post.name)
            Q = CupyBackend.proj_args(e, proj)
            ring = f"{Pb}__ring_{proj.channel}"
            e.arg(f"{Q}__delay", lambda proj=proj: proj.conn.delays, CONST)
            cnt = f"{Pa}__cnt[par]"
            release = ""
            per_syn: list[str] = []
            if proj.stp is not None:
                e.fn("STP_relax", stpm.stp_relax)
                e.fn("STP_spike", stpm.stp_spike)
                S = f"{Q}__stp"
                e.arg(f"{S}_u", lambda proj=proj: proj.stp_u)
                e.arg(f"{S}_x", lambda proj=proj: proj.stp_x)
                e.arg(f"{S}_last", lambda proj=proj: proj.stp_last)
                e.scratch(f"{S}_el", np.zeros(proj.pre.n))
                k = e.per_count("rows", 2, "q", cnt)
                e.emit("rows", k, f"j = {Pa}__spike_idx[q]")
                e.emit("rows", k, f"el = (step - {S}_last[j]) * dt")
                e.emit("rows", k, f"{S}_last[j] = step")
                if proj.stp_per_synapse:
                    for f in ("U", "tau_D", "tau_F", "f", "variant"):
                        e.arg(f"{S}_{f}", lambda proj=proj, f=f: np.asarray(getattr(proj.stp, f)), CONST)
                    e.emit("rows", k, f"{S}_el[j] = el")
                    par = "[kk]"
                    per_syn = [f"u, x = STP_relax({S}_u[kk], {S}_x[kk], {S}_el[j], {S}_U{par}, {S}_tau_D{par}, "
                               f"{S}_tau_F{par}, {S}_variant{par})",
                               f"rel, u, x = STP_spike(u, x, {S}_U{par}, {S}_f{par}, {S}_variant{par})",
                               f"{S}_u[kk] = u", f"{S}_x[kk] = x"]
                    release = " * rel"
                else:
                    e.arg(f"{S}", lambda proj=proj: proj.stp, SCALAR)
                    e.emit("rows", k, f"u, x = STP_relax({S}_u[j], {S}_x[j], el, {S}.U, {S}.tau_D, {S}.tau_F, "
                           f"{S}.variant)")
                    e.emit("rows", k, f"rel, u, x = STP_spike(u, x, {S}.U, {S}.f, {S}.variant)")
                    e.emit("rows", k, f"{S}_u[j] = u")
                    e.emit("rows", k, f"{S}_x[j] = x")
                    e.emit("rows", k, f"{S}_el[j] = rel")          # the row's release
                    release = f" * {S}_el[j]"
            # 32 threads per spiking row
            k = e.per_count("deliver", 2, "q", cnt, "warp", "nwarps")
            e.emit("deliver", k, f"j = {Pa}__spike_idx[q]")
            e.emit("deliver", k, f"L = {ring}.shape[0]")
            e.emit("deliver", k, f"for kk in range({Q}__indptr[j] + lane, {Q}__indptr[j + 1], lanes):")
            for line in per_syn:
                e.emit("deliver", k + 1, line)
            e.emit("deliver", k + 1, f"sl = (step + {Q}__delay[kk]) % L")
            e.emit("deliver", k + 1, f"cuda.atomic.add({ring}, (sl, {Q}__post_idx[kk]), {Q}__w[kk]{release})")
            if proj.plasticity is not None and proj.plasticity.rule.on_pre is not None:
                _rule_setup(e, proj)
                e.emit("deliver", k + 1, _hook_call(e, proj, Q, "on_pre", "kk", "j", f"{Q}__post_idx[kk]"))

    @staticmethod
    def emit_plasticity(e: Emitter, net) -> None:
        for proj in net.projections:
            ps = proj.plasticity
            if ps is None:
                continue
            rule = ps.rule
            Pa, Pb = e.label(proj.pre, proj.pre.name), e.label(proj.post, proj.post.name)
            Q = CupyBackend.proj_args(e, proj)
            R_ = _rule_setup(e, proj)
            # trace decay (part B, before any hook reads them)
            for side, traces, pop in (("pre", ps.pre_traces, proj.pre), ("post", ps.post_traces, proj.post)):
                for name in traces:
                    k = e.per_item("rows", 2, "i", str(pop.n))
                    e.emit("rows", k, f"{Q}__{side}_{name}[i] *= {Q}__decay_{side}_{name}")
            if rule.on_post is not None:
                e.arg(f"{Q}__col_ptr", lambda ps=ps: ps.csc[0], CONST)
                e.arg(f"{Q}__col_syn", lambda ps=ps: ps.csc[1], CONST)
                e.arg(f"{Q}__syn_pre", lambda ps=ps: ps.syn_pre, CONST)
                k = e.per_count("on_post", 2, "q", f"{Pb}__cnt[par]", "warp", "nwarps")
                e.emit("on_post", k, f"i = {Pb}__spike_idx[q]")
                e.emit("on_post", k, f"for c in range({Q}__col_ptr[i] + lane, {Q}__col_ptr[i + 1], lanes):")
                e.emit("on_post", k + 1, f"kk = {Q}__col_syn[c]")
                e.emit("on_post", k + 1, _hook_call(e, proj, Q, "on_post", "kk", f"{Q}__syn_pre[kk]", "i"))
            if rule.per_step is not None:
                e.arg(f"{Q}__syn_pre", lambda ps=ps: ps.syn_pre, CONST)
                # the instance's own synapse count (its last indptr entry): instances of one
                # structure may differ in connectivity
                k = e.per_count("per_step", 2, "kk", f"{Q}__indptr[{proj.pre.n}]")
                e.emit("per_step", k, _hook_call(e, proj, Q, "per_step", "kk", f"{Q}__syn_pre[kk]",
                                                 f"{Q}__post_idx[kk]"))
            for hook, side, traces, P in (("pre_spike", "pre", ps.pre_traces, Pa),
                                          ("post_spike", "post", ps.post_traces, Pb)):
                if not traces:
                    continue
                k = e.per_count("traces", 2, "q", f"{P}__cnt[par]")
                e.emit("traces", k, f"i = {P}__spike_idx[q]")
                if getattr(rule, hook) is None:
                    for name in traces:
                        e.emit("traces", k, f"{Q}__{side}_{name}[i] += 1.0")
                    continue
                e.fn(f"{R_}_{hook}", getattr(rule, hook))
                args = [f"{Q}__{side}_{a}[i]" if a in traces else _classified(e, P, a, "i") if a in TRACE_SPECIAL
                        else f"{Q}__p" for a in rule.hook_args(hook)]
                outs = [f"{Q}__{side}_{a}[i]" for a in rule.hook_writes(hook)]
                e.emit("traces", k, f"{', '.join(outs)} = {R_}_{hook}({', '.join(args)})")


def _after_chunk(net, e: Emitter, rec0: dict, spk0: list, step0: int, done: int) -> None:
    """Host bookkeeping of one network after a chunk: the spike counts of the last step,
    sorted spike lists and spike records, and the state monitors' record counts."""
    for pop in net.pops.values():
        c = e.host[f"{e.labels[id(pop)]}__cnt"]
        k = int(c[(step0 + done - 1) & 1]) if done else 0
        pop.n_spiked[0] = k
        pop.spike_idx[:k] = np.sort(pop.spike_idx[:k])
    for m, starts in spk0:
        for r, s in zip(m._buffers(), starts):
            end = int(r.n[0])
            if end - s > 1:
                order = np.lexsort((r.idx[s:end], r.steps[s:end]))
                r.steps[s:end] = r.steps[s:end][order]
                r.idx[s:end] = r.idx[s:end][order]
    for m in net.state_monitors:
        first = -(-step0 // m.every) * m.every
        m.buf_n[0] = rec0[id(m)] + (len(range(first, step0 + done, m.every)) if done else 0)


def _spiking_bookkeeping(e: Emitter, net, pop, ind: int) -> None:
    """The code for a neuron ``i`` of ``pop`` that spiked at ``step`` (phase 7)."""
    P = e.label(pop, pop.name)
    e.emit("neurons", ind, f"{P}__spike_idx[cuda.atomic.add({P}__cnt, par, 1)] = i")
    e.emit("neurons", ind, f"{P}__spike_count[i] += 1")
    ev, bu = "False", "False"
    if pop.track_bursts:
        e.fn("B_classify_spike", _bursts().classify_spike)
        e.emit("neurons", ind, f"ev, bu, nn = B_classify_spike(step, {P}__last_step[i], {P}__n_in_event[i], "
               f"{P}__burst_window)")
        e.emit("neurons", ind, f"{P}__last_step[i] = step")
        e.emit("neurons", ind, f"{P}__n_in_event[i] = nn")
        e.emit("neurons", ind, f"{P}__spike_rate[i] += {P}__rate_inc")
        e.emit("neurons", ind, "if ev:")
        e.emit("neurons", ind + 1, f"{P}__event_rate[i] += {P}__rate_inc")
        e.emit("neurons", ind + 1, f"{P}__event_count[i] += 1")
        e.emit("neurons", ind, "if bu:")
        e.emit("neurons", ind + 1, f"{P}__burst_rate[i] += {P}__rate_inc")
        e.emit("neurons", ind + 1, f"{P}__burst_count[i] += 1")
        ev, bu = "ev", "bu"
    for m_i, m in enumerate(net.spike_monitors):
        if m.pop is not pop:
            continue
        M = f"sm{m_i}_{P}"
        e.emit("neurons", ind, f"if {M}__on[0] and {M}__mask[i]:")
        for tag, used, cond in (("spikes", True, None), ("events", m.record_events, ev),
                                ("bursts", m.record_bursts, bu)):
            if not used:
                continue
            k = ind + 1
            if cond:
                e.emit("neurons", k, f"if {cond}:")
                k += 1
            e.emit("neurons", k, f"c = cuda.atomic.add({M}__{tag}_n, 0, 1)")
            e.emit("neurons", k, f"if c < {M}__{tag}_step.shape[0]:")
            e.emit("neurons", k + 1, f"{M}__{tag}_step[c] = step")
            e.emit("neurons", k + 1, f"{M}__{tag}_idx[c] = i")


def _monitor_args(e: Emitter, net) -> None:
    for m_i, m in enumerate(net.spike_monitors):
        P = e.label(m.pop, m.pop.name)
        M = f"sm{m_i}_{P}"
        e.arg(f"{M}__on", lambda m=m: m.on)
        e.arg(f"{M}__mask", lambda m=m: m.mask)
        for tag, used in (("spikes", True), ("events", m.record_events), ("bursts", m.record_bursts)):
            if used:
                e.arg(f"{M}__{tag}_step", lambda m=m, tag=tag: getattr(m, tag).steps)
                e.arg(f"{M}__{tag}_idx", lambda m=m, tag=tag: getattr(m, tag).idx)
                e.arg(f"{M}__{tag}_n", lambda m=m, tag=tag: getattr(m, tag).n)


def _end_of_step(e: Emitter, net) -> None:
    """Thread 0, last part of a step: halt where a spike monitor could overflow in the next
    step (the CPU loop returns there), and zero the spike counts of the next step."""
    k = e.once("end", 2)
    for pop in net.pops.values():
        P = e.label(pop, pop.name)
        e.emit("end", k, f"{P}__cnt[1 - par] = 0")
    for m_i, m in enumerate(net.spike_monitors):
        P = e.label(m.pop, m.pop.name)
        M = f"sm{m_i}_{P}"
        conds = " or ".join(f"{M}__{tag}_step.shape[0] - {M}__{tag}_n[0] < {m.pop.n}"
                            for tag, used in (("spikes", True), ("events", m.record_events),
                                              ("bursts", m.record_bursts)) if used)
        e.emit("end", k, f"if {M}__on[0] and ({conds}):")
        e.emit("end", k + 1, "halt[0] = step + 1")      # one flag: the whole batch halts


def _rule_setup(e: Emitter, proj) -> str:
    ps, rule = proj.plasticity, proj.plasticity.rule
    Q = e.label(proj, proj.name)
    R_ = f"{Q}__rule"
    if f"{Q}__p" in e.args:
        return R_
    e.deps.add(inspect.getfile(rule))
    e.arg(f"{Q}__p", lambda ps=ps: ps.params, SCALAR)
    for side, traces, decay in (("pre", ps.pre_traces, ps.pre_decay), ("post", ps.post_traces, ps.post_decay)):
        for name in traces:
            e.arg(f"{Q}__{side}_{name}", lambda traces=traces, name=name: traces[name])
            e.arg(f"{Q}__decay_{side}_{name}", lambda decay=decay, name=name: float(decay[name]), SCALAR)
    for name in ps.synapse_vars:
        e.arg(f"{Q}__{name}", lambda ps=ps, name=name: ps.synapse_vars[name])
    for hook in ("on_pre", "on_post", "per_step"):
        if getattr(rule, hook) is not None:
            e.fn(f"{R_}_{hook}", getattr(rule, hook))
    return R_


def _hook_call(e: Emitter, proj, Q: str, hook: str, syn: str, pre: str, post: str) -> str:
    """The statement that calls ``hook`` on synapse ``syn`` (arguments matched by name,
    :func:`._codegen.hook_arg_exprs`)."""
    args = hook_arg_exprs(e, proj, Q, hook, syn, pre, post, var_expr=CupyBackend.var_expr, classified=_classified)
    return f"{', '.join(hook_out_exprs(proj, Q, hook, syn))} = {Q}__rule_{hook}({', '.join(args)})"


def _classified(e: Emitter, P: str, kind: str, i: str) -> str:
    fn = "event_now" if kind == "event" else "burst_now"
    e.fn(f"B_{fn}", getattr(_bursts(), fn))
    return f"B_{fn}(step, {P}__last_step[{i}], {P}__n_in_event[{i}])"


def _positions(m) -> np.ndarray:
    pos = np.full(m.pop.n, -1, dtype=np.int64)
    pos[m.idx] = np.arange(m.idx.size)
    return pos


def _random():
    from dendrite_sim.engine import random as R
    return R


def _bursts():
    from dendrite_sim.engine import bursts as B
    return B


def _stp():
    from dendrite_sim.synapses import stp
    return stp


def _unsupported(net) -> None:
    """Refuse, in one line, what this backend does not run."""
    if net.fastmath:
        warnings.warn('backend "cupy" ignores fastmath (IEEE double as written)', stacklevel=3)


# ----------------------------------------------------------------------------- generation
def generate(net, nb: int = 0) -> tuple[str, Emitter]:
    """The kernel source of ``net``'s structure and its emitter (arguments, device functions);
    with ``nb``, the loops of a batch of ``nb`` instances of that structure (the arrays' batch
    offsets are the :class:`Layout`'s)."""
    e = Emitter(nb=nb)
    _monitor_args(e, net)
    for pop in net.pops.values():
        CupyBackend.pop_args(e, pop)
    per_neuron = [p.name for p in PHASES if p.domain in ("per neuron", "per recorded neuron", "per spiking neuron")]
    for pop in net.pops.values():
        e.emit("neurons", 2, f"# population {pop.name!r}: " + ", ".join(per_neuron))
        if isinstance(pop, SpikeSource):
            _spike_source(e, net, pop)
            continue
        k = e.per_item("neurons", 2, "i", str(pop.n))
        for name in per_neuron:
            CupyBackend.phase_impl(name)(e, net, pop, k)
    for name in ("propagate", "plasticity"):
        CupyBackend.phase_impl(name)(e, net)
    _end_of_step(e, net)
    e.scratch("halt", np.full(1, -1, dtype=np.int64))

    body = ["# Generated by dendrite_sim.engine.backends.cupy: the persistent kernel of one network",
            "# structure; parts of a step separated by grid barriers (see the module docstring).",
            "def run_chunk(step0, n_steps, dt, " + ", ".join(e.args) + "):",
            "    tid = cuda.grid(1)",
            "    nth = cuda.gridsize(1)",
            f"    lane = tid % {LANES}",
            f"    warp = tid // {LANES}",
            f"    nwarps = max(nth // {LANES}, 1)",
            f"    lanes = {LANES}",
            f"    if nth < {LANES}:",
            "        lanes = 1",
            "        lane = 0",
            "        warp = tid",
            "        nwarps = nth",
            "    grid = cuda.cg.this_grid()",
            "    for s in range(n_steps):",
            "        step = step0 + s",
            "        if halt[0] >= 0:",
            "            break",
            "        par = step & 1"]
    for g in GROUPS:
        lines = e.groups.get(g)
        if not lines:
            continue
        body.append(f"        # ---- {g}")
        body.extend(lines)
        body.append("        grid.sync()")
    body.append("")
    return "\n".join(body), e


def _build(nets: list, nb: int = 0) -> tuple[str, list, Layout]:
    """The packed kernel source of ``nets`` (one network, or with ``nb`` the instances of a
    batch, which must generate one raw source: one structure), their emitters and the layout."""
    gens = [generate(n, nb) for n in nets]
    raw = gens[0][0]
    for k, (other, _) in enumerate(gens[1:], 1):
        if other != raw:
            raise ScenarioError("ensemble", "expected instances of one network structure in a GPU batch (the same "
                                f"populations, sizes, projections, inputs, rules and monitors), got instance {k} "
                                "with another structure than instance 0")
    ems = [g[1] for g in gens]
    lay = Layout(ems, nb, volatile=any(n.plasticity for n in nets))
    return lay.pack(raw), ems, lay


_COMPILED: dict = {}


def _spike_source(e: Emitter, net, pop) -> None:
    """Part A for a spike generator: thread 0 replays this step's scheduled spikes."""
    P = e.label(pop, pop.name)
    if pop.track_bursts:
        k = e.per_item("neurons", 2, "i", str(pop.n))
        for nm in ("spike_rate", "event_rate", "burst_rate"):
            e.emit("neurons", k, f"{P}__{nm}[i] *= {P}__rate_decay")
        e.emit("neurons", 2, "grid.sync()")        # rates decayed before thread 0 adds
    k = e.once("neurons", 2)
    e.emit("neurons", k, f"ptr = {P}__sched_ptr[0]")
    e.emit("neurons", k, f"while ptr < {P}__sched_steps.shape[0] and {P}__sched_steps[ptr] < step:")
    e.emit("neurons", k + 1, "ptr += 1")
    e.emit("neurons", k, f"while ptr < {P}__sched_steps.shape[0] and {P}__sched_steps[ptr] == step:")
    e.emit("neurons", k + 1, f"i = {P}__sched_idx[ptr]")
    e.emit("neurons", k + 1, "ptr += 1")
    _spiking_bookkeeping(e, net, pop, k + 1)
    e.emit("neurons", k, f"{P}__sched_ptr[0] = ptr")


def _compile(source: str, e: Emitter):
    from numba import cuda

    key = hashlib.sha256((source + repr(sorted((k, id(v)) for k, v in e.devfns.items()))).encode()).hexdigest()
    if key in _COMPILED:
        return _COMPILED[key]
    scope = {"cuda": cuda, "np": np, "math": math}
    for name, fn in e.devfns.items():
        scope[name] = device(fn)
    exec(compile(source, f"<dendrite_sim cupy kernel {key[:12]}>", "exec"), scope)
    kernel = cuda.jit(scope["run_chunk"])
    _COMPILED[key] = kernel
    return kernel


BACKEND = CupyBackend


# ----------------------------------------------------------------------------- PTX (no device)
def compile_ptx(net, cc: tuple[int, int] = (7, 5), instances=None) -> str:
    """The PTX of ``net``'s kernel (with ``instances``, of their batch) for compute capability
    ``cc``, compiled without a device (libNVVM only): what the tests use to check that the
    generated kernel, with every device function it calls, compiles for a real GPU. Not
    available in the simulator."""
    from numba import cuda
    from numba.cuda import dispatcher as cuda_dispatcher
    from numba.cuda.typing.typeof import typeof

    nets = list(instances) if instances is not None else [net]
    for n in nets:
        n._prepare()
    source, ems, lay = _build(nets, len(nets) if instances is not None else 0)
    e = ems[0]
    scope = {"cuda": cuda, "np": np, "math": math}

    class _Fake:
        compute_capability = cc

    old = cuda_dispatcher.get_current_device
    cuda_dispatcher.get_current_device = lambda: _Fake()      # nested device functions ask for it
    try:
        for name, fn in e.devfns.items():
            scope[name] = device(fn)
        exec(compile(source, "<dendrite_sim cupy kernel>", "exec"), scope)
        sig = [typeof(np.int64(0)), typeof(np.int64(0)), typeof(0.1)]
        for name in lay.arg_names:
            if name in lay.arenas:
                sig.append(typeof(lay.gather(name)))
                continue
            if name == BLEN:
                sig.append(typeof(lay.lengths()))
                continue
            a = e.args[name]
            if name in lay.batched:
                vals = lay.values(name)
                v = lay.per_instance(vals) if a.kind == SCALAR else Layout.stack(vals)
                sig.append(typeof(v))
                continue
            v = a.getter()
            sig.append(typeof(v if a.kind == SCALAR else np.ascontiguousarray(v)))
        ptx, _ = cuda.compile_ptx(scope["run_chunk"], tuple(sig), cc=cc)
    finally:
        cuda_dispatcher.get_current_device = old
    return ptx
