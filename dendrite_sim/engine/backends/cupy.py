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
is IEEE double as written); batched ensembles are not built on the GPU.

**Batch axis (ensembles, not built here).** Every array is indexed through the generated
``<name>[i]`` expressions of one instance; a batch of B instances of one structure would give
each array a leading axis ``b`` (``pyr__v_soma[b, i]``, rings ``[b, slot, i]``, spike counts
``[b, parity]``), take ``b = blockIdx.y`` (a 2-D cooperative grid, or the batch folded into the
grid-stride index ``t → (b, i)``) and add ``b`` to the RNG counter key (a per-instance stream
key), with no other change to the phases.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
import sys
import time
import types as pytypes
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.backends._codegen import hook_arg_exprs, hook_out_exprs, unique_label
from dendrite_sim.engine.backends.base import Backend
from dendrite_sim.engine.graph import NeuronPopulation, PoissonSource, SpikeSource
from dendrite_sim.engine.schedule import PHASES
from dendrite_sim.synapses.plasticity import TRACE_SPECIAL

THREADS = 256            # threads per block on a device
SIM_THREADS = 16
LANES = 32               # threads per spiking row in delivery

# kinds of kernel arguments
SCALAR, CONST, STATE, MONITOR = "scalar", "const", "state", "monitor"


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


def _stride(var: str, n: str) -> str:
    return f"for {var} in range(tid, {n}, nth):"


# ----------------------------------------------------------------------------- the backend
class CupyBackend(Backend):
    """Generates the persistent kernel of ``net``'s structure and runs chunks on the device."""

    phase_prefix = "emit_"

    @staticmethod
    def check_available() -> None:
        availability()

    def __init__(self, net):
        super().__init__(net)
        t0 = time.perf_counter()
        self.mode = availability()
        self.xp = _Arrays("cupy" if self.mode == "cupy" else "numba")
        _unsupported(net)
        raw, self.emitter = generate(net)
        self.layout = Layout(self.emitter)
        self.source = self.layout.pack(raw)
        self.kernel = _compile(self.source, self.emitter)
        self._dev: dict = {}
        self._dev_src: dict = {}
        net.timings["codegen_s"] = time.perf_counter() - t0
        self._first = True
        self._grid = None

    # ------------------------------------------------------------------ running
    def _launch_shape(self, args):
        if self._grid is None:
            if self.mode == "simulator":
                self._grid = (1, SIM_THREADS)
            else:
                need = max([p.n for p in self.net.pops.values()] + [1])
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
        host = np.asarray(v)
        dev = self._dev.get(name)
        shape = host.shape if host.size else (1,)
        if dev is None or self._dev_src.get(name) is not v or tuple(dev.shape) != shape:
            dev = self.xp.to_device(host)
            self._dev[name] = dev
            self._dev_src[name] = v
        elif kind == STATE:
            self.xp.upload(dev, host)
        return dev

    def _device_args(self):
        lay = self.layout
        out = []
        for name in lay.arg_names:
            if name in lay.arenas:
                out.append(self._array(name, lay.gather(name), STATE))
                continue
            a = self.emitter.args[name]
            v = a.getter()
            out.append(v if a.kind == SCALAR else self._array(name, v, a.kind))
        return out

    def _download(self):
        lay = self.layout
        for name in lay.arg_names:
            if name in lay.arenas:
                if lay.arenas[name].kind == STATE:
                    buf = np.empty(self._dev[name].shape, dtype=lay.arenas[name].dtype)
                    self.xp.download(self._dev[name], buf)
                    lay.scatter(name, buf)
            elif self.emitter.args[name].kind in (STATE, MONITOR):
                self.xp.download(self._dev[name], np.asarray(self._dev_src[name]))

    def run_steps(self, step0: int, n_steps: int) -> int:
        net = self.net
        t0 = time.perf_counter()
        rec0 = {id(m): int(m.buf_n[0]) for m in net.state_monitors}
        spk0 = [(m, [int(r.n[0]) for r in m._buffers()]) for m in net.spike_monitors]
        self.emitter.host["halt"][0] = -1
        if net.plasticity:                       # chunk rules change weights between chunks
            self.emitter.refresh_const = True
        args = self._device_args()
        blocks, threads = self._launch_shape(args)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
            self.kernel[blocks, threads](np.int64(step0), np.int64(n_steps), float(net.dt), *args)
        self.xp.synchronize()
        self._download()
        h = int(self.emitter.host["halt"][0])
        done = n_steps if h < 0 else h - step0
        # host bookkeeping: spike counts of the last step, sorted spike lists and records
        for pop in net.pops.values():
            c = self.emitter.host[f"{self.emitter.labels[id(pop)]}__cnt"]
            k = int(c[(step0 + done - 1) & 1]) if done else 0
            pop.n_spiked[0] = k
            pop.spike_idx[:k] = np.sort(pop.spike_idx[:k])
        for m, starts in spk0:
            for r, s in zip(m._buffers(), starts):
                e = int(r.n[0])
                if e - s > 1:
                    order = np.lexsort((r.idx[s:e], r.steps[s:e]))
                    r.steps[s:e] = r.steps[s:e][order]
                    r.idx[s:e] = r.idx[s:e][order]
        for m in net.state_monitors:
            first = -(-step0 // m.every) * m.every
            m.buf_n[0] = rec0[id(m)] + (len(range(first, step0 + done, m.every)) if done else 0)
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
                e.emit("rows", 2, _stride("q", cnt))
                e.emit("rows", 3, f"j = {Pa}__spike_idx[q]")
                e.emit("rows", 3, f"el = (step - {S}_last[j]) * dt")
                e.emit("rows", 3, f"{S}_last[j] = step")
                if proj.stp_per_synapse:
                    for f in ("U", "tau_D", "tau_F", "f", "variant"):
                        e.arg(f"{S}_{f}", lambda proj=proj, f=f: np.asarray(getattr(proj.stp, f)), CONST)
                    e.emit("rows", 3, f"{S}_el[j] = el")
                    par = "[kk]"
                    per_syn = [f"u, x = STP_relax({S}_u[kk], {S}_x[kk], {S}_el[j], {S}_U{par}, {S}_tau_D{par}, "
                               f"{S}_tau_F{par}, {S}_variant{par})",
                               f"rel, u, x = STP_spike(u, x, {S}_U{par}, {S}_f{par}, {S}_variant{par})",
                               f"{S}_u[kk] = u", f"{S}_x[kk] = x"]
                    release = " * rel"
                else:
                    e.arg(f"{S}", lambda proj=proj: proj.stp, SCALAR)
                    e.emit("rows", 3, f"u, x = STP_relax({S}_u[j], {S}_x[j], el, {S}.U, {S}.tau_D, {S}.tau_F, "
                           f"{S}.variant)")
                    e.emit("rows", 3, f"rel, u, x = STP_spike(u, x, {S}.U, {S}.f, {S}.variant)")
                    e.emit("rows", 3, f"{S}_u[j] = u")
                    e.emit("rows", 3, f"{S}_x[j] = x")
                    e.emit("rows", 3, f"{S}_el[j] = rel")          # the row's release
                    release = f" * {S}_el[j]"
            # 32 threads per spiking row
            e.emit("deliver", 2, f"L = {ring}.shape[0]")
            e.emit("deliver", 2, f"for q in range(warp, {cnt}, nwarps):")
            e.emit("deliver", 3, f"j = {Pa}__spike_idx[q]")
            e.emit("deliver", 3, f"for kk in range({Q}__indptr[j] + lane, {Q}__indptr[j + 1], lanes):")
            for line in per_syn:
                e.emit("deliver", 4, line)
            e.emit("deliver", 4, f"sl = (step + {Q}__delay[kk]) % L")
            e.emit("deliver", 4, f"cuda.atomic.add({ring}, (sl, {Q}__post_idx[kk]), {Q}__w[kk]{release})")
            if proj.plasticity is not None and proj.plasticity.rule.on_pre is not None:
                _rule_setup(e, proj)
                e.emit("deliver", 4, _hook_call(e, proj, Q, "on_pre", "kk", "j", f"{Q}__post_idx[kk]"))

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
                    e.emit("rows", 2, _stride("i", str(pop.n)))
                    e.emit("rows", 3, f"{Q}__{side}_{name}[i] *= {Q}__decay_{side}_{name}")
            if rule.on_post is not None:
                e.arg(f"{Q}__col_ptr", lambda ps=ps: ps.csc[0], CONST)
                e.arg(f"{Q}__col_syn", lambda ps=ps: ps.csc[1], CONST)
                e.arg(f"{Q}__syn_pre", lambda ps=ps: ps.syn_pre, CONST)
                e.emit("on_post", 2, f"for q in range(warp, {Pb}__cnt[par], nwarps):")
                e.emit("on_post", 3, f"i = {Pb}__spike_idx[q]")
                e.emit("on_post", 3, f"for c in range({Q}__col_ptr[i] + lane, {Q}__col_ptr[i + 1], lanes):")
                e.emit("on_post", 4, f"kk = {Q}__col_syn[c]")
                e.emit("on_post", 4, _hook_call(e, proj, Q, "on_post", "kk", f"{Q}__syn_pre[kk]", "i"))
            if rule.per_step is not None:
                e.arg(f"{Q}__syn_pre", lambda ps=ps: ps.syn_pre, CONST)
                e.emit("per_step", 2, _stride("kk", str(proj.conn.nnz)))
                e.emit("per_step", 3, _hook_call(e, proj, Q, "per_step", "kk", f"{Q}__syn_pre[kk]",
                                                 f"{Q}__post_idx[kk]"))
            for hook, side, traces, P in (("pre_spike", "pre", ps.pre_traces, Pa),
                                          ("post_spike", "post", ps.post_traces, Pb)):
                if not traces:
                    continue
                e.emit("traces", 2, _stride("q", f"{P}__cnt[par]"))
                e.emit("traces", 3, f"i = {P}__spike_idx[q]")
                if getattr(rule, hook) is None:
                    for name in traces:
                        e.emit("traces", 3, f"{Q}__{side}_{name}[i] += 1.0")
                    continue
                e.fn(f"{R_}_{hook}", getattr(rule, hook))
                args = [f"{Q}__{side}_{a}[i]" if a in traces else _classified(e, P, a, "i") if a in TRACE_SPECIAL
                        else f"{Q}__p" for a in rule.hook_args(hook)]
                outs = [f"{Q}__{side}_{a}[i]" for a in rule.hook_writes(hook)]
                e.emit("traces", 3, f"{', '.join(outs)} = {R_}_{hook}({', '.join(args)})")


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
    e.emit("end", 2, "if tid == 0:")
    for pop in net.pops.values():
        P = e.label(pop, pop.name)
        e.emit("end", 3, f"{P}__cnt[1 - par] = 0")
    for m_i, m in enumerate(net.spike_monitors):
        P = e.label(m.pop, m.pop.name)
        M = f"sm{m_i}_{P}"
        conds = " or ".join(f"{M}__{tag}_step.shape[0] - {M}__{tag}_n[0] < {m.pop.n}"
                            for tag, used in (("spikes", True), ("events", m.record_events),
                                              ("bursts", m.record_bursts)) if used)
        e.emit("end", 3, f"if {M}__on[0] and ({conds}):")
        e.emit("end", 4, "halt[0] = step + 1")


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


# ----------------------------------------------------------------------------- packed arguments
@dataclass
class _Arena:
    kind: str
    dtype: np.dtype
    members: list                # (argument name, offset, size)
    size: int = 0
    buf: np.ndarray | None = None
    key: tuple = ()


_GROWS = re.compile(r"^sm\d+_.*__(spikes|events|bursts)_(step|idx)$")   # spike records: they grow


class Layout:
    """The kernel's arguments with the 1-D arrays packed into one device array per (kind,
    dtype): a kernel's parameters are limited to 32 KiB (about 580 array arguments in Numba's
    layout), and one copy per arena is cheaper than one per array. The generated source is
    rewritten accordingly (``pyr__v_soma[i]`` → ``arena_state_d[1024 + i]``); arrays that grow
    (spike records), 2-D arrays and arrays passed whole to a device function stay arguments."""

    def __init__(self, e: Emitter):
        self.e = e
        self.arenas: dict[str, _Arena] = {}
        self.where: dict[str, tuple[str, int, int]] = {}
        self.arg_names: list[str] = list(e.args)

    def pack(self, src: str) -> str:
        from collections import Counter

        head, sep, body = src.partition("):\n")
        total = Counter(re.findall(r"\b\w+\b", body))
        handled = Counter(re.findall(r"\b(\w+)\[", body))
        handled.update(re.findall(r"\b(\w+)\.shape\[0\]", body))
        handled.update(re.findall(r"cuda\.atomic\.add\((\w+), ", body))
        for a in self.e.args.values():
            if a.kind not in (CONST, STATE) or _GROWS.match(a.name):
                continue
            v = np.asarray(a.getter())
            if v.ndim != 1 or total[a.name] == 0 or total[a.name] != handled[a.name]:
                continue
            arena = f"arena_{a.kind}_{v.dtype.name}"
            ar = self.arenas.setdefault(arena, _Arena(a.kind, v.dtype, []))
            off = ar.size
            ar.members.append((a.name, off, v.size))
            ar.size += max(1, v.size)
            self.where[a.name] = (arena, off, v.size)

        def repl(m):
            atom, shape, index = m.group(1), m.group(2), m.group(3)
            name = atom or shape or index
            if name not in self.where:
                return m.group(0)
            arena, off, n = self.where[name]
            if atom:
                return f"cuda.atomic.add({arena}, {off} + "
            if shape:
                return str(n)
            return f"{arena}[{off} + "

        body = re.sub(r"cuda\.atomic\.add\((\w+), |\b(\w+)\.shape\[0\]|\b(\w+)\[", repl, body)
        self.arg_names = [n for n in self.e.args if n not in self.where] + list(self.arenas)
        head = head[: head.index("def run_chunk(")] + "def run_chunk(step0, n_steps, dt, " + ", ".join(self.arg_names)
        return head + sep + body

    def gather(self, arena: str) -> np.ndarray:
        """The host buffer of ``arena`` filled from its members (the same object every call;
        constant arenas are refilled only when a member array was replaced)."""
        ar = self.arenas[arena]
        hosts = [np.asarray(self.e.args[name].getter()) for name, _, _ in ar.members]
        key = tuple(id(h) for h in hosts)
        if ar.buf is None:
            ar.buf = np.zeros(ar.size, dtype=ar.dtype)
        elif ar.kind == CONST and key == ar.key and not self.e.refresh_const:
            return ar.buf
        if ar.kind == CONST and ar.key:
            ar.buf = np.zeros(ar.size, dtype=ar.dtype)       # a new object: uploaded again
        self.e.refresh_const = False
        for (_name, off, n), h in zip(ar.members, hosts):
            ar.buf[off: off + n] = h.ravel()
        ar.key = key
        return ar.buf

    def scatter(self, arena: str, buf: np.ndarray) -> None:
        for name, off, n in self.arenas[arena].members:
            if n:
                np.asarray(self.e.args[name].getter())[...] = buf[off: off + n]


# ----------------------------------------------------------------------------- generation
def generate(net) -> tuple[str, Emitter]:
    """The kernel source of ``net``'s structure and its emitter (arguments, device functions)."""
    e = Emitter()
    _monitor_args(e, net)
    for pop in net.pops.values():
        CupyBackend.pop_args(e, pop)
    per_neuron = [p.name for p in PHASES if p.domain in ("per neuron", "per recorded neuron", "per spiking neuron")]
    for pop in net.pops.values():
        e.emit("neurons", 2, f"# population {pop.name!r}: " + ", ".join(per_neuron))
        if isinstance(pop, SpikeSource):
            _spike_source(e, net, pop)
            continue
        e.emit("neurons", 2, _stride("i", str(pop.n)))
        for name in per_neuron:
            CupyBackend.phase_impl(name)(e, net, pop, 3)
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


_COMPILED: dict = {}


def _spike_source(e: Emitter, net, pop) -> None:
    """Part A for a spike generator: thread 0 replays this step's scheduled spikes."""
    P = e.label(pop, pop.name)
    if pop.track_bursts:
        e.emit("neurons", 2, _stride("i", str(pop.n)))
        for nm in ("spike_rate", "event_rate", "burst_rate"):
            e.emit("neurons", 3, f"{P}__{nm}[i] *= {P}__rate_decay")
        e.emit("neurons", 2, "grid.sync()")        # rates decayed before thread 0 adds
    e.emit("neurons", 2, "if tid == 0:")
    e.emit("neurons", 3, f"ptr = {P}__sched_ptr[0]")
    e.emit("neurons", 3, f"while ptr < {P}__sched_steps.shape[0] and {P}__sched_steps[ptr] < step:")
    e.emit("neurons", 4, "ptr += 1")
    e.emit("neurons", 3, f"while ptr < {P}__sched_steps.shape[0] and {P}__sched_steps[ptr] == step:")
    e.emit("neurons", 4, f"i = {P}__sched_idx[ptr]")
    e.emit("neurons", 4, "ptr += 1")
    _spiking_bookkeeping(e, net, pop, 4)
    e.emit("neurons", 3, f"{P}__sched_ptr[0] = ptr")


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
def compile_ptx(net, cc: tuple[int, int] = (7, 5)) -> str:
    """The PTX of ``net``'s kernel for compute capability ``cc``, compiled without a device
    (libNVVM only): what the tests use to check that the generated kernel, with every device
    function it calls, compiles for a real GPU. Not available in the simulator."""
    from numba import cuda
    from numba.cuda import dispatcher as cuda_dispatcher
    from numba.cuda.typing.typeof import typeof

    net._prepare()
    raw, e = generate(net)
    lay = Layout(e)
    source = lay.pack(raw)
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
            a = e.args[name]
            v = a.getter()
            sig.append(typeof(v if a.kind == SCALAR else np.ascontiguousarray(v)))
        ptx, _ = cuda.compile_ptx(scope["run_chunk"], tuple(sig), cc=cc)
    finally:
        cuda_dispatcher.get_current_device = old
    return ptx
