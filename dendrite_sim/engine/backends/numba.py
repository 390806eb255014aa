"""Fast backend: the whole run loop of a network compiled by Numba (no Python work per step).

:func:`generate` writes the source of one function ``run_loop(step0, n_steps, dt, *args)`` that
executes ``n_steps`` time steps: for each step, the code of every phase of
:mod:`dendrite_sim.engine.schedule` in order, written by that phase's emitter
(``NumbaBackend.emit_<phase>``). Models' ``step`` functions and synapse-rule hooks are
``njit(inline='always')``-ed into the loop, so the loop calls the same definitions as the numpy
reference. The loop returns the number of steps done; it stops early only when a spike monitor
needs a larger buffer.

Arguments have readable names — ``<population>__<variable>`` (``pyr__v_soma``,
``pyr__ring_soma_exc``), ``<projection>__<array>`` (``ee__w``, ``ee__indptr``, ``ee__pre_r1``),
``<input>__<array>`` — so the generated file in the cache can be read on its own.

Threads (``Network(threads=...)``, ``[network] threads``; :func:`resolve_threads`): with more
than one, the loop is generated in its threaded form (``parallel=True``; a separate cached
kernel, since the source differs): the per-neuron phases run on aligned chunks of neurons in a
``prange`` region, each chunk lists its spikes (joined in chunk order: ascending), and delivery
is split by *postsynaptic* range (:func:`thread_split`), so every ring cell gets the same
additions in the same order as in the serial loop — bit-identical results, no atomics. Without
in-loop plasticity a step's delivery joins the next step's region (one fork/join per step).
Each region's body is a separately compiled serial function whose chunk loops index with an
unsigned copy of ``i`` (:func:`_outline_regions`, :func:`_unsigned_index`), so that it vectorises
as the serial loop does.
``"auto"`` is serial below :data:`THREAD_MIN_NEURONS` neurons or with fewer than two idle cores.
Serial-loop fusions (same arithmetic, same order): arrivals of channels that no Poisson input
feeds join the update pass when no state monitor reads the population, and constant drives are
set once per call.

The source depends on the network's *structure* and names (which populations of which model, which
projections with STP or a synapse rule, which inputs and monitors); sizes, parameters, weights
and state are arguments. The source (with a hash of every file it depends on, so that editing
a model, a rule or a kernel makes a new kernel) is written to ``<cache>/dsim_<hash>.py`` and
imported from there, so Numba's on-disk cache (``cache=True``) works across processes. The
cache folder is ``$DENDRITE_SIM_CACHE`` or ``~/.cache/dendrite_sim/kernels``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dendrite_sim.engine.backends._codegen import hook_arg_exprs, hook_out_exprs, unique_label
from dendrite_sim.engine.backends.base import Backend
from dendrite_sim.engine.graph import NeuronPopulation, PoissonSource, SpikeSource
from dendrite_sim.engine.schedule import PHASES
from dendrite_sim.synapses.plasticity import TRACE_SPECIAL

VERSION = "4"
_LOADED: dict[str, Callable] = {}
_KERNEL_MODULES = ("dendrite_sim.engine.random", "dendrite_sim.engine.bursts", "dendrite_sim.synapses.stp",
                   "dendrite_sim.synapses.plasticity", "dendrite_sim.neurons.base", "dendrite_sim.engine.schedule",
                   "dendrite_sim.engine.graph")


@dataclass
class Kernel:
    source: str
    arg_names: list[str]
    getters: list[Callable]
    key: str = ""
    fn: Callable | None = None


@dataclass
class _Emitter:
    lines: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    getters: list[Callable] = field(default_factory=list)
    deps: set = field(default_factory=set)
    labels: dict = field(default_factory=dict)      # id(object) → identifier prefix
    fastmath: bool = False
    threads: int = 1                                 # chunks of the threaded loop (1: serial loop)
    shift: int = 0                                   # extra indentation inside a parallel region
    region_end: int = -1                             # len(lines) when the last region closed
    region_pops: tuple = ()                          # populations whose chunk bounds a region sets
    bounds: dict = field(default_factory=dict)       # id(population) → chunk boundaries
    deferred: list = field(default_factory=list)     # delivery lines run in the next step's region
    prologue: list = field(default_factory=list)     # lines run once per call, before the steps
    fused: dict = field(default_factory=dict)        # id(population) → channels whose arrivals join the update
    fused_poisson: dict = field(default_factory=dict)  # id(population) → channels whose arrivals join the Poisson loop

    @property
    def threaded(self) -> bool:
        return self.threads > 1

    def rng(self, P: str) -> str:
        """The loop range over neurons of population ``P``: all of them, or this chunk's."""
        return f"range({P}__lo, {P}__hi)" if self.shift else f"range({P}__n)"

    def open_region(self) -> None:
        """Start a parallel region (``for t in prange(n_chunks)``) — or continue the previous one
        when nothing but comments came after it (adjacent per-neuron phases share one region,
        so one fork/join per step serves all of them)."""
        if self.region_end >= 0 and all(ln.strip().startswith("#") for ln in self.lines[self.region_end:]):
            self.shift = 1
            return
        self.emit(2, "for t in prange(n_chunks):")
        self.shift = 1
        for P in self.region_pops:
            self.emit(2, f"{P}__lo = {P}__bounds[t]")
            self.emit(2, f"{P}__hi = {P}__bounds[t + 1]")

    def close_region(self) -> None:
        self.shift = 0
        self.region_end = len(self.lines)

    def arg(self, name: str, getter: Callable) -> str:
        """Declare an argument of the loop (once per name) and return its name."""
        if name in self.names:
            return name
        self.names.append(name)
        self.getters.append(getter)
        return name

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * (indent + self.shift) + text)

    def label(self, obj, name: str) -> str:
        """A unique identifier prefix for ``obj`` made from its user-given ``name``."""
        return unique_label(self.labels, obj, name)


def cache_dir() -> Path:
    """Folder of generated kernels (created on demand)."""
    env = os.environ.get("DENDRITE_SIM_CACHE")
    candidates = [Path(env)] if env else [Path.home() / ".cache" / "dendrite_sim" / "kernels",
                                          Path(tempfile.gettempdir()) / "dendrite_sim_kernels"]
    for d in candidates:
        try:
            d.mkdir(parents=True, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            continue
    raise RuntimeError("no writable folder for generated kernels; set DENDRITE_SIM_CACHE")


def _file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _mod(name):
    return sys.modules.get(name) or importlib.import_module(name)


# ----------------------------------------------------------------------------- the backend
class NumbaBackend(Backend):
    """Generates, compiles (or loads) and calls the fused loop of ``net``'s structure."""

    phase_prefix = "emit_"

    def __init__(self, net):
        super().__init__(net)
        t0 = time.perf_counter()
        self.threads = resolve_threads(net)
        self.kernel = generate(net, self.threads)
        self.fn = load(self.kernel)
        net.timings["codegen_s"] = time.perf_counter() - t0
        net.timings["threads"] = self.threads
        self._first = True

    def run_steps(self, step0: int, n_steps: int) -> int:
        if self.threads > 1:
            import numba

            wait_policy()
            numba.set_num_threads(min(self.threads, int(numba.config.NUMBA_NUM_THREADS)))
        args = [g() for g in self.kernel.getters]
        if self._first:
            t0 = time.perf_counter()
            done = self.fn(step0, n_steps, self.net.dt, *args)
            self.net.timings["first_call_s"] = time.perf_counter() - t0
            self._first = False
            return done
        return self.fn(step0, n_steps, self.net.dt, *args)

    # ------------------------------------------------------------------ names
    @staticmethod
    def pop_args(e: _Emitter, pop) -> str:
        """Declare the arrays every population has; return its identifier prefix."""
        P = e.label(pop, pop.name)
        e.arg(f"{P}__n", lambda pop=pop: pop.n)
        e.arg(f"{P}__spike_idx", lambda pop=pop: pop.spike_idx)
        e.arg(f"{P}__n_spiked", lambda pop=pop: pop.n_spiked)
        e.arg(f"{P}__spike_count", lambda pop=pop: pop.spike_count)
        if isinstance(pop, NeuronPopulation):
            model = pop.model
            e.deps.add(inspect.getfile(model))
            top = model.__qualname__.split(".")[0]
            attr = ".".join(model.__qualname__.split(".")[1:] + ["step"])
            fm = "True" if e_fastmath(e) else "False"
            line = f"{P}__model_step = njit(error_model='numpy', fastmath={fm}, inline='always')({P}__model.{attr})"
            if line not in e.header:
                e.header.append(f"from {model.__module__} import {top} as {P}__model")
                e.header.append(line)
            e.arg(f"{P}__params", lambda pop=pop: pop.params)
            e.arg(f"{P}__spiked", lambda pop=pop: pop.spiked)
            for v in model.state_vars:
                e.arg(f"{P}__{v}", lambda pop=pop, v=v: pop.state[v])
            for ch in model.channels:
                e.arg(f"{P}__{ch}", lambda pop=pop, ch=ch: pop.channels[ch])
                e.arg(f"{P}__decay_{ch}", lambda pop=pop, ch=ch: pop.decay[ch])
                if ch in pop.rings:
                    e.arg(f"{P}__ring_{ch}", lambda pop=pop, ch=ch: pop.rings[ch])
            for comp in model.compartments:
                e.arg(f"{P}__bias_{comp}", lambda pop=pop, comp=comp: pop.bias[comp])
                e.arg(f"{P}__I_{comp}", lambda pop=pop, comp=comp: pop.drives[comp])
            if getattr(model, "needs_uniform", False):
                e.arg(f"{P}__uniform_key", lambda pop=pop: pop.uniform_key)
        elif isinstance(pop, PoissonSource):
            e.arg(f"{P}__gen_key", lambda pop=pop: pop.gen_key)
            e.arg(f"{P}__spike_prob", lambda pop=pop: pop.spike_prob)
        elif isinstance(pop, SpikeSource):
            e.arg(f"{P}__sched_steps", lambda pop=pop: pop.sched_steps)
            e.arg(f"{P}__sched_idx", lambda pop=pop: pop.sched_idx)
            e.arg(f"{P}__sched_ptr", lambda pop=pop: pop.sched_ptr)
        if pop.track_bursts:
            for nm in ("last_step", "n_in_event", "spike_rate", "event_rate", "burst_rate", "event_count",
                       "burst_count", "burst_window", "rate_decay", "rate_inc"):
                e.arg(f"{P}__{nm}", lambda pop=pop, nm=nm: getattr(pop, nm))
        return P

    @staticmethod
    def var_expr(e: _Emitter, pop, var: str, i: str = "i") -> str:
        """The expression of population variable ``var`` of neuron ``i`` in the loop."""
        P = e.label(pop, pop.name)
        if isinstance(pop, NeuronPopulation):
            model = pop.model
            if var in model.state_vars or var in model.channels:
                return f"{P}__{var}[{i}]"
            if var.startswith("I_") and var[2:] in model.compartments:
                return f"{P}__{var}[{i}]"
        if var == "burst_prob":
            return f"B.burst_probability({P}__burst_rate[{i}], {P}__event_rate[{i}])"
        return f"{P}__{var}[{i}]"

    # ------------------------------------------------------------------ preamble
    @staticmethod
    def emit_monitor_capacity(e: _Emitter, net) -> None:
        """Before each step: return to Python when a spike monitor could overflow."""
        for m_i, m in enumerate(net.spike_monitors):
            P = e.label(m.pop, m.pop.name)
            M = f"sm{m_i}_{P}"
            e.arg(f"{M}__on", lambda m=m: m.on)
            bufs = [("spikes", True), ("events", m.record_events), ("bursts", m.record_bursts)]
            for tag, used in bufs:
                if used:
                    e.arg(f"{M}__{tag}_step", lambda m=m, tag=tag: getattr(m, tag).steps)
                    e.arg(f"{M}__{tag}_idx", lambda m=m, tag=tag: getattr(m, tag).idx)
                    e.arg(f"{M}__{tag}_n", lambda m=m, tag=tag: getattr(m, tag).n)
            e.arg(f"{M}__mask", lambda m=m: m.mask)
            conds = " or ".join(f"{M}__{tag}_step.size - {M}__{tag}_n[0] < {P}__n" for tag, used in bufs if used)
            e.emit(2, f"if {M}__on[0] and ({conds}):")
            e.emit(3, "return s")

    # ------------------------------------------------------------------ phases
    @staticmethod
    def emit_arrivals(e: _Emitter, net) -> None:
        # threaded: every per-neuron phase runs on chunks of neurons in one parallel region
        # (neuron i's arithmetic does not depend on the chunking: bit-identical to serial)
        if e.threaded:
            e.open_region()
        for pop in net.pops.values():
            if "arrivals" not in pop.phases:
                continue
            P = e.label(pop, pop.name)
            # a channel that no Poisson input feeds, of a population no state monitor reads,
            # takes its arrivals inside the update loop (one pass over the neurons instead of
            # two; the same additions in the same order: nothing else touches the channel between)
            watched = any(m.pop is pop for m in net.state_monitors)
            fed = {inp.channel for inp in net.poisson_inputs if inp.pop is pop}
            e.fused[id(pop)] = [] if watched else [ch for ch in pop.channels if ch in pop.rings and ch not in fed]
            # a channel that a Poisson input feeds takes its arrivals in the Poisson phase's
            # hashing loop (before any count is added: the same order)
            e.fused_poisson[id(pop)] = [ch for ch in pop.channels if ch in pop.rings and ch in fed]
            for ch in pop.channels:
                if ch in pop.rings and ch not in e.fused[id(pop)] and ch not in e.fused_poisson[id(pop)]:
                    e.emit(2, f"slot = step % {P}__ring_{ch}.shape[0]")
                    e.emit(2, f"for i in {e.rng(P)}:")
                    e.emit(3, f"{P}__{ch}[i] += {P}__ring_{ch}[slot, i]")
                    e.emit(3, f"{P}__ring_{ch}[slot, i] = 0.0")
        if e.threaded:
            e.close_region()

    @staticmethod
    def emit_poisson(e: _Emitter, net) -> None:
        if e.threaded and net.poisson_inputs:
            e.open_region()
        groups: dict = {}                        # the inputs of each population, in order
        for inp in net.poisson_inputs:
            groups.setdefault(id(inp.pop), (inp.pop, []))[1].append(inp)
        for pop, inputs in groups.values():
            P = e.label(pop, pop.name)
            names = []
            for inp in inputs:
                I = e.label(inp, inp.name)
                names.append(I)
                e.arg(f"{I}__key", lambda inp=inp: inp.key)
                e.arg(f"{I}__weight", lambda inp=inp: inp.weight)
                e.arg(f"{I}__cdf", lambda inp=inp: inp.cdf)
                e.arg(f"{I}__zero", lambda inp=inp: inp.zero_threshold)
                e.emit(2, f"{I}__skey = R.step_key({I}__key, step)")
            hashes = np.zeros((len(inputs), pop.n), dtype=np.uint64)
            e.arg(f"{P}__poisson_hash", lambda a=hashes: a)
            # all inputs' hashes in one pure integer loop (vectorises), then, per neuron, the
            # counts only where a hash passes its input's T0 (per neuron the inputs in order,
            # so each channel gets its additions in the order of the inputs)
            arrive = e.fused_poisson.get(id(pop), [])
            for ch in arrive:
                e.emit(2, f"{P}__slot_{ch} = step % {P}__ring_{ch}.shape[0]")
            e.emit(2, f"for i in {e.rng(P)}:")
            for ch in arrive:                               # phase 1 (arrivals) of this neuron
                e.emit(3, f"{P}__{ch}[i] += {P}__ring_{ch}[{P}__slot_{ch}, i]")
                e.emit(3, f"{P}__ring_{ch}[{P}__slot_{ch}, i] = 0.0")
            for k, I in enumerate(names):
                e.emit(3, f"{P}__poisson_hash[{k}, i] = R.hash_at({I}__skey, i)")
            e.emit(2, f"for i in {e.rng(P)}:")
            for k, (I, inp) in enumerate(zip(names, inputs)):
                e.emit(3, f"if {P}__poisson_hash[{k}, i] >= {I}__zero:")
                e.emit(4, f"{P}__{inp.channel}[i] += {I}__weight * "
                          f"R.poisson_count(R.to_unit({P}__poisson_hash[{k}, i]), {I}__cdf)")
        if e.threaded and net.poisson_inputs:
            e.close_region()

    @staticmethod
    def emit_drives(e: _Emitter, net) -> None:
        if e.threaded:
            e.open_region()
        for pop in net.pops.values():
            if "drives" not in pop.phases:
                continue
            P = e.label(pop, pop.name)
            for comp in pop.model.compartments:
                terms = []
                for ai in net.array_inputs:
                    if ai.pop is not pop or ai.compartment != comp:
                        continue
                    A = e.label(ai, ai.name)
                    e.arg(f"{A}__values", lambda ai=ai: ai.values)
                    e.arg(f"{A}__ratio", lambda ai=ai: ai.ratio)
                    e.emit(2, f"{A}__row = step // {A}__ratio")
                    e.emit(2, f"{A}__on = {A}__row < {A}__values.shape[0]")
                    terms.append((A, ai.per_neuron))
                if not terms:                   # constant drive: set once per call, not every step
                    e.prologue += [f"    for i in range({P}__n):", f"        {P}__I_{comp}[i] = {P}__bias_{comp}[i]"]
                    continue
                e.emit(2, f"for i in {e.rng(P)}:")
                e.emit(3, f"x = {P}__bias_{comp}[i]")
                for A, per_neuron in terms:
                    e.emit(3, f"if {A}__on:")
                    e.emit(4, f"x += {A}__values[{A}__row, i]" if per_neuron else f"x += {A}__values[{A}__row]")
                e.emit(3, f"{P}__I_{comp}[i] = x")
        if e.threaded:
            e.close_region()

    @staticmethod
    def emit_record(e: _Emitter, net) -> None:
        for q, m in enumerate(net.state_monitors):
            P = e.label(m.pop, m.pop.name)
            M = f"st{q}_{P}"
            e.arg(f"{M}__every", lambda m=m: m.every)
            e.arg(f"{M}__idx", lambda m=m: m.idx)
            e.arg(f"{M}__n", lambda m=m: m.buf_n)
            e.emit(2, f"if step % {M}__every == 0:")
            e.emit(3, f"c = {M}__n[0]")
            e.emit(3, f"for q in range({M}__idx.size):")
            e.emit(4, f"i = {M}__idx[q]")
            for var in m.variables:
                e.arg(f"{M}__{var}", lambda m=m, var=var: m.buf[var])
                e.emit(4, f"{M}__{var}[c, q] = {NumbaBackend.var_expr(e, m.pop, var)}")
            e.emit(3, f"{M}__n[0] = c + 1")

    @staticmethod
    def emit_update(e: _Emitter, net) -> None:
        if not e.threaded:
            for pop in net.pops.values():
                P = e.label(pop, pop.name)
                _UPDATE[type(pop)](e, pop, P)
                e.emit(2, f"{P}__n_spiked[0] = nsp")
            return
        # threaded: neuron populations update chunk by chunk, each chunk listing its spikes in
        # ascending order at the start of its own range of spike_idx; the chunks' lists are then
        # moved together in chunk order (ascending overall, as in the serial loop). Spike
        # sources (cheap, and a schedule pointer is sequential) stay serial.
        neurons = [p for p in net.pops.values() if isinstance(p, NeuronPopulation)]
        if neurons:
            e.open_region()
            for pop in neurons:
                NumbaBackend._update_neurons(e, pop, e.label(pop, pop.name))
            e.close_region()
        for pop in net.pops.values():
            P = e.label(pop, pop.name)
            if isinstance(pop, NeuronPopulation):
                e.emit(2, "nsp = 0")
                e.emit(2, "for tt in range(n_chunks):")
                e.emit(3, f"base = {P}__bounds[tt]")
                e.emit(3, f"for q in range({P}__thr_nsp[tt]):")
                e.emit(4, f"{P}__spike_idx[nsp + q] = {P}__thr_spk[base + q]")
                e.emit(3, f"nsp += {P}__thr_nsp[tt]")
            else:
                _UPDATE[type(pop)](e, pop, P)
            e.emit(2, f"{P}__n_spiked[0] = nsp")

    @staticmethod
    def _update_neurons(e: _Emitter, pop, P: str) -> None:
        model = pop.model
        args = [f"{P}__{v}[i]" for v in model.state_vars]
        args += [f"{P}__{ch}[i]" for ch in model.channels]
        args += [f"{P}__I_{comp}[i]" for comp in model.compartments]
        if getattr(model, "needs_uniform", False):
            e.emit(2, f"ukey = R.step_key({P}__uniform_key, step)")
            args.append("R.uniform(ukey, i)")
        outs = [f"o{k}" for k in range(len(model.state_vars))] + ["spk"]
        fused = e.fused.get(id(pop), [])
        for ch in fused:
            e.emit(2, f"{P}__slot_{ch} = step % {P}__ring_{ch}.shape[0]")
        e.emit(2, f"for i in {e.rng(P)}:")
        for ch in fused:                                  # phase 1 (arrivals) of this neuron
            e.emit(3, f"{P}__{ch}[i] += {P}__ring_{ch}[{P}__slot_{ch}, i]")
            e.emit(3, f"{P}__ring_{ch}[{P}__slot_{ch}, i] = 0.0")
        e.emit(3, f"{', '.join(outs)} = {P}__model_step({', '.join(args)}, {P}__params, dt)")
        for k, v in enumerate(model.state_vars):
            e.emit(3, f"{P}__{v}[i] = o{k}")
        e.emit(3, f"{P}__spiked[i] = spk")
        if e.shift:
            e.emit(2, f"# running rates of {P}")      # (bookkeeping's per-neuron decay goes here)
        # spikes collected in a second pass: a store inside the update loop slows it ~2×
        e.emit(2, "nsp = 0")
        if e.shift:
            e.emit(2, f"for i in {e.rng(P)}:")
            e.emit(3, f"if {P}__spiked[i]:")
            e.emit(4, f"{P}__thr_spk[{P}__lo + nsp] = i")
            e.emit(4, "nsp += 1")
            e.emit(2, f"{P}__thr_nsp[t] = nsp")
            return
        # 8 flags per word: most words of a step are all silent
        e.arg(f"{P}__spiked_words", lambda pop=pop: pop.spiked_words)
        e.emit(2, f"for j in range({P}__spiked_words.size):")
        e.emit(3, f"if {P}__spiked_words[j] != 0:")
        e.emit(4, f"for i in range(8 * j, min(8 * j + 8, {P}__n)):")
        e.emit(5, f"if {P}__spiked[i]:")
        e.emit(6, f"{P}__spike_idx[nsp] = i")
        e.emit(6, "nsp += 1")

    @staticmethod
    def _update_poisson(e: _Emitter, pop, P: str) -> None:
        e.emit(2, f"gkey = R.step_key({P}__gen_key, step)")
        e.emit(2, "nsp = 0")
        e.emit(2, f"for i in range({P}__n):")
        e.emit(3, f"if R.uniform(gkey, i) < {P}__spike_prob[i]:")
        e.emit(4, f"{P}__spike_idx[nsp] = i")
        e.emit(4, "nsp += 1")

    @staticmethod
    def _update_spikes(e: _Emitter, pop, P: str) -> None:
        e.emit(2, f"ptr = {P}__sched_ptr[0]")
        e.emit(2, "nsp = 0")
        e.emit(2, f"while ptr < {P}__sched_steps.size and {P}__sched_steps[ptr] < step:")
        e.emit(3, "ptr += 1")
        e.emit(2, f"while ptr < {P}__sched_steps.size and {P}__sched_steps[ptr] == step:")
        e.emit(3, f"{P}__spike_idx[nsp] = {P}__sched_idx[ptr]")
        e.emit(3, "nsp += 1")
        e.emit(3, "ptr += 1")
        e.emit(2, f"{P}__sched_ptr[0] = ptr")

    @staticmethod
    def emit_decay(e: _Emitter, net) -> None:
        # fused into the update loop of each population (one pass over the neurons): the
        # decay follows the model step of the same neuron, which reads the channel first
        for pop in net.pops.values():
            if "decay" not in pop.phases or not pop.channels:
                continue
            P = e.label(pop, pop.name)
            ind = "    " * (4 if e.threaded else 3)
            at = e.lines.index(ind + f"{P}__spiked[i] = spk")
            for k, ch in enumerate(pop.channels):
                e.lines.insert(at + 1 + k, ind + f"{P}__{ch}[i] *= {P}__decay_{ch}")

    @staticmethod
    def emit_bookkeeping(e: _Emitter, net) -> None:
        for pop in net.pops.values():
            P = e.label(pop, pop.name)
            mons = [(m_i, m) for m_i, m in enumerate(net.spike_monitors) if m.pop is pop]
            if pop.track_bursts and e.threaded and isinstance(pop, NeuronPopulation):
                # into the update region, per chunk (these arrays are read only by the record
                # phase before the update and by the increments below)
                at = e.lines.index("    " * 3 + f"# running rates of {P}")
                for k, nm in enumerate(("spike_rate", "event_rate", "burst_rate")):
                    e.lines[at + 1 + 2 * k:at + 1 + 2 * k] = ["    " * 3 + f"for i in range({P}__lo, {P}__hi):",
                                                              "    " * 4 + f"{P}__{nm}[i] *= {P}__rate_decay"]
            elif pop.track_bursts:
                for nm in ("spike_rate", "event_rate", "burst_rate"):     # one loop per array: vectorises
                    e.emit(2, f"for i in range({P}__n):")
                    e.emit(3, f"{P}__{nm}[i] *= {P}__rate_decay")
            e.emit(2, f"for q in range({P}__n_spiked[0]):")
            e.emit(3, f"i = {P}__spike_idx[q]")
            e.emit(3, f"{P}__spike_count[i] += 1")
            if pop.track_bursts:
                e.emit(3, f"ev, bu, nn = B.classify_spike(step, {P}__last_step[i], {P}__n_in_event[i], "
                       f"{P}__burst_window)")
                e.emit(3, f"{P}__last_step[i] = step")
                e.emit(3, f"{P}__n_in_event[i] = nn")
                e.emit(3, f"{P}__spike_rate[i] += {P}__rate_inc")
                e.emit(3, "if ev:")
                e.emit(4, f"{P}__event_rate[i] += {P}__rate_inc")
                e.emit(4, f"{P}__event_count[i] += 1")
                e.emit(3, "if bu:")
                e.emit(4, f"{P}__burst_rate[i] += {P}__rate_inc")
                e.emit(4, f"{P}__burst_count[i] += 1")
            for m_i, m in mons:
                M = f"sm{m_i}_{P}"
                e.emit(3, f"if {M}__on[0] and {M}__mask[i]:")
                for tag, used, cond in (("spikes", True, None), ("events", m.record_events, "ev"),
                                        ("bursts", m.record_bursts, "bu")):
                    if not used:
                        continue
                    ind = 4
                    if cond:
                        e.emit(4, f"if {cond}:")
                        ind = 5
                    e.emit(ind, f"c = {M}__{tag}_n[0]")
                    e.emit(ind, f"{M}__{tag}_step[c] = step")
                    e.emit(ind, f"{M}__{tag}_idx[c] = i")
                    e.emit(ind, f"{M}__{tag}_n[0] = c + 1")

    @staticmethod
    def proj_args(e: _Emitter, proj) -> str:
        Q = e.label(proj, proj.name)
        e.arg(f"{Q}__indptr", lambda proj=proj: proj.conn.indptr)
        e.arg(f"{Q}__post_idx", lambda proj=proj: proj.conn.indices)
        e.arg(f"{Q}__w", lambda proj=proj: proj.conn.weights)
        return Q

    @staticmethod
    def emit_propagate(e: _Emitter, net) -> None:
        if e.threaded:
            NumbaBackend._propagate_threaded(e, net)
            return
        for proj in net.projections:
            Pa, Pb = e.label(proj.pre, proj.pre.name), e.label(proj.post, proj.post.name)
            Q = NumbaBackend.proj_args(e, proj)
            ring = f"{Pb}__ring_{proj.channel}"
            e.arg(f"{Q}__delay", lambda proj=proj: proj.conn.delays)
            e.arg(f"{Q}__uniform_delay", lambda proj=proj: _uniform_delay(proj.conn.delays))
            # ring slots without a division per synapse: one slot per step when every synapse
            # has the same delay (uniform_delay >= 0), else s0 + delay wrapped once (delay < L)
            e.emit(2, f"L = {ring}.shape[0]")
            e.emit(2, "s0 = step % L")
            e.emit(2, f"su = s0 + {Q}__uniform_delay")
            e.emit(2, "if su >= L:")
            e.emit(3, "su -= L")
            e.emit(2, f"for q in range({Pa}__n_spiked[0]):")
            e.emit(3, f"j = {Pa}__spike_idx[q]")
            per_synapse, release = [], ""
            if proj.stp is not None:
                # shared parameters: one update per presynaptic spike (state per neuron j);
                # heterogeneous parameters: one update per synapse kk of the row (state per synapse)
                body = NumbaBackend._stp_body(e, proj, Q)
                S = f"{Q}__stp"
                e.emit(3, f"el = (step - {S}_last[j]) * dt")
                e.emit(3, f"{S}_last[j] = step")
                if proj.stp_per_synapse:
                    per_synapse = body
                else:
                    for line in body:
                        e.emit(3, line)
                release = " * rel"
            e.emit(3, f"if {Q}__uniform_delay >= 0:")
            e.emit(4, f"for kk in range({Q}__indptr[j], {Q}__indptr[j + 1]):")
            for line in per_synapse:
                e.emit(5, line)
            e.emit(5, f"{ring}[su, {Q}__post_idx[kk]] += {Q}__w[kk]{release}")
            e.emit(3, "else:")
            e.emit(4, f"for kk in range({Q}__indptr[j], {Q}__indptr[j + 1]):")
            for line in per_synapse:
                e.emit(5, line)
            e.emit(5, f"sl = s0 + {Q}__delay[kk]")
            e.emit(5, "if sl >= L:")
            e.emit(6, "sl -= L")
            e.emit(5, f"{ring}[sl, {Q}__post_idx[kk]] += {Q}__w[kk]{release}")

    @staticmethod
    def _stp_body(e: _Emitter, proj, Q: str) -> list[str]:
        e.arg(f"{Q}__stp", lambda proj=proj: proj.stp)
        e.arg(f"{Q}__stp_u", lambda proj=proj: proj.stp_u)
        e.arg(f"{Q}__stp_x", lambda proj=proj: proj.stp_x)
        e.arg(f"{Q}__stp_last", lambda proj=proj: proj.stp_last)
        at, par = ("kk", "[kk]") if proj.stp_per_synapse else ("j", "")
        S = f"{Q}__stp"
        return [f"u, x = STP.stp_relax({S}_u[{at}], {S}_x[{at}], el, {S}.U{par}, "
                f"{S}.tau_D{par}, {S}.tau_F{par}, {S}.variant{par})",
                f"rel, u, x = STP.stp_spike(u, x, {S}.U{par}, {S}.f{par}, {S}.variant{par})",
                f"{S}_u[{at}] = u",
                f"{S}_x[{at}] = x"]

    @staticmethod
    def _propagate_threaded(e: _Emitter, net) -> None:
        """Propagation split by POSTsynaptic range: chunk t delivers, for every spike in
        ascending order, the synapses of its row whose target lies in chunk t's neurons
        (``thr_ptr``/``thr_syn``: the CSR positions of row j owned by chunk t, in CSR order).
        Every ring cell therefore receives the same additions in the same order as in the
        serial loop — bit-identical sums — and no two chunks write the same cell. Per-neuron
        STP (u, x of the presynaptic neuron) is computed once per spike before the region; the
        per-synapse variant updates each synapse in the chunk that owns it."""
        plan = []
        for proj in net.projections:
            Pa, Pb = e.label(proj.pre, proj.pre.name), e.label(proj.post, proj.post.name)
            Q = NumbaBackend.proj_args(e, proj)
            e.arg(f"{Q}__delay", lambda proj=proj: proj.conn.delays)
            e.arg(f"{Q}__uniform_delay", lambda proj=proj: _uniform_delay(proj.conn.delays))
            ptr, syn = thread_split(proj.conn, e.bounds[id(proj.post)])
            e.arg(f"{Q}__thr_ptr", lambda ptr=ptr: ptr)
            e.arg(f"{Q}__thr_syn", lambda syn=syn: syn)
            per_synapse, release = [], ""
            if proj.stp is not None:
                body = NumbaBackend._stp_body(e, proj, Q)
                buf = np.zeros(proj.pre.n)
                e.arg(f"{Q}__stp_buf", lambda buf=buf: buf)
                S = f"{Q}__stp"
                e.emit(2, f"for q in range({Pa}__n_spiked[0]):")
                e.emit(3, f"j = {Pa}__spike_idx[q]")
                e.emit(3, f"el = (step - {S}_last[j]) * dt")
                e.emit(3, f"{S}_last[j] = step")
                if proj.stp_per_synapse:
                    e.emit(3, f"{Q}__stp_buf[q] = el")
                    per_synapse = [f"el = {Q}__stp_buf[q]", *body]
                else:
                    for line in body:
                        e.emit(3, line)
                    e.emit(3, f"{Q}__stp_buf[q] = rel")
                release = " * rel"
            plan.append((proj, Pa, Pb, Q, per_synapse, release))
        if not plan:
            return
        # Without in-loop plasticity (which reads this step's spike lists and changes weights
        # after delivery) the delivery of step n runs at the start of step n + 1's per-neuron
        # region (chunk t delivers into its own neurons, then reads them): one fork/join per
        # step instead of two. The loop delivers the last step's spikes before it returns.
        deferred = not any(p.plasticity is not None for p in net.projections)
        if deferred:
            saved, e.lines, e.shift = e.lines, [], 1
            NumbaBackend._deliver(e, plan, "pstep")
            e.deferred, e.lines, e.shift = e.lines, saved, 0
            return
        e.open_region()
        NumbaBackend._deliver(e, plan, "step")
        e.close_region()

    @staticmethod
    def _deliver(e: _Emitter, plan, step: str) -> None:
        for proj, Pa, Pb, Q, per_synapse, release in plan:
            ring = f"{Pb}__ring_{proj.channel}"
            e.emit(2, f"L = {ring}.shape[0]")
            e.emit(2, f"s0 = {step} % L")
            e.emit(2, f"su = s0 + {Q}__uniform_delay")
            e.emit(2, "if su >= L:")
            e.emit(3, "su -= L")
            e.emit(2, f"row0 = t * {Pa}__n")
            e.emit(2, f"for q in range({Pa}__n_spiked[0]):")
            e.emit(3, f"j = {Pa}__spike_idx[q]")
            if release and not per_synapse:
                e.emit(3, f"rel = {Q}__stp_buf[q]")
            e.emit(3, f"for k2 in range({Q}__thr_ptr[row0 + j], {Q}__thr_ptr[row0 + j + 1]):")
            e.emit(4, f"kk = {Q}__thr_syn[k2]")
            for line in per_synapse:
                e.emit(4, line)
            e.emit(4, f"if {Q}__uniform_delay >= 0:")
            e.emit(5, f"{ring}[su, {Q}__post_idx[kk]] += {Q}__w[kk]{release}")
            e.emit(4, "else:")
            e.emit(5, f"sl = s0 + {Q}__delay[kk]")
            e.emit(5, "if sl >= L:")
            e.emit(6, "sl -= L")
            e.emit(5, f"{ring}[sl, {Q}__post_idx[kk]] += {Q}__w[kk]{release}")

    @staticmethod
    def emit_plasticity(e: _Emitter, net) -> None:
        for proj in net.projections:
            ps = proj.plasticity
            if ps is None:
                continue
            rule = ps.rule
            Pa, Pb = e.label(proj.pre, proj.pre.name), e.label(proj.post, proj.post.name)
            Q = NumbaBackend.proj_args(e, proj)
            R_ = f"{Q}__rule"
            e.deps.add(inspect.getfile(rule))
            top = rule.__qualname__.split(".")[0]
            e.header.append(f"from {rule.__module__} import {top} as {R_}")
            fm = "True" if e_fastmath(e) else "False"
            for hook in rule.hooks():
                attr = ".".join(rule.__qualname__.split(".")[1:] + [hook])
                e.header.append(f"{R_}_{hook} = njit(error_model='numpy', fastmath={fm}, inline='always')"
                                f"({R_}.{attr})")
            e.arg(f"{Q}__p", lambda ps=ps: ps.params)
            for side, traces, decay in (("pre", ps.pre_traces, ps.pre_decay), ("post", ps.post_traces, ps.post_decay)):
                for name in traces:
                    e.arg(f"{Q}__{side}_{name}", lambda traces=traces, name=name: traces[name])
                    e.arg(f"{Q}__decay_{side}_{name}", lambda decay=decay, name=name: decay[name])
            for name in ps.synapse_vars:
                e.arg(f"{Q}__{name}", lambda ps=ps, name=name: ps.synapse_vars[name])
            e.emit(2, f"# plasticity of {proj.name!r}: {rule.registered_name} (decay, on_pre, on_post, per_step, "
                   "traces)")
            for side, traces, P in (("pre", ps.pre_traces, Pa), ("post", ps.post_traces, Pb)):
                for name in traces:
                    e.emit(2, f"for i in range({P}__n):")
                    e.emit(3, f"{Q}__{side}_{name}[i] *= {Q}__decay_{side}_{name}")

            call = functools.partial(_hook_call, e, proj, Q, R_)
            if rule.on_pre is not None:
                e.emit(2, f"for q in range({Pa}__n_spiked[0]):")
                e.emit(3, f"j = {Pa}__spike_idx[q]")
                e.emit(3, f"for kk in range({Q}__indptr[j], {Q}__indptr[j + 1]):")
                e.emit(4, call("on_pre", "kk", "j", f"{Q}__post_idx[kk]"))
            if rule.on_post is not None:
                e.arg(f"{Q}__col_ptr", lambda ps=ps: ps.csc[0])
                e.arg(f"{Q}__col_syn", lambda ps=ps: ps.csc[1])
                e.arg(f"{Q}__syn_pre", lambda ps=ps: ps.syn_pre)
                e.emit(2, f"for q in range({Pb}__n_spiked[0]):")
                e.emit(3, f"i = {Pb}__spike_idx[q]")
                e.emit(3, f"for c in range({Q}__col_ptr[i], {Q}__col_ptr[i + 1]):")
                e.emit(4, f"kk = {Q}__col_syn[c]")
                e.emit(4, call("on_post", "kk", f"{Q}__syn_pre[kk]", "i"))
            if rule.per_step is not None:
                e.emit(2, f"for j in range({Pa}__n):")
                e.emit(3, f"for kk in range({Q}__indptr[j], {Q}__indptr[j + 1]):")
                e.emit(4, call("per_step", "kk", "j", f"{Q}__post_idx[kk]"))
            for hook, side, traces, P in (("pre_spike", "pre", ps.pre_traces, Pa),
                                          ("post_spike", "post", ps.post_traces, Pb)):
                if not traces:
                    continue
                e.emit(2, f"for q in range({P}__n_spiked[0]):")
                e.emit(3, f"i = {P}__spike_idx[q]")
                if getattr(rule, hook) is None:
                    for name in traces:
                        e.emit(3, f"{Q}__{side}_{name}[i] += 1.0")
                    continue
                args = [f"{Q}__{side}_{a}[i]" if a in traces else _classified(e, P, a, "i") if a in TRACE_SPECIAL
                        else f"{Q}__p" for a in rule.hook_args(hook)]
                outs = [f"{Q}__{side}_{a}[i]" for a in rule.hook_writes(hook)]
                e.emit(3, f"{', '.join(outs)} = {R_}_{hook}({', '.join(args)})")


_UPDATE = {NeuronPopulation: NumbaBackend._update_neurons, PoissonSource: NumbaBackend._update_poisson,
           SpikeSource: NumbaBackend._update_spikes}


def _hook_call(e: _Emitter, proj, Q: str, R_: str, hook: str, syn: str, pre: str, post: str) -> str:
    """The loop statement that calls synapse-rule ``hook`` of ``proj`` on synapse ``syn``
    (presynaptic neuron ``pre``, postsynaptic ``post``): arguments matched by name
    (:func:`._codegen.hook_arg_exprs`), the per-synapse results stored back."""
    args = hook_arg_exprs(e, proj, Q, hook, syn, pre, post, var_expr=NumbaBackend.var_expr, classified=_classified)
    return f"{', '.join(hook_out_exprs(proj, Q, hook, syn))} = {R_}_{hook}({', '.join(args)})"


def _classified(e: _Emitter, P: str, kind: str, i: str) -> str:
    """The loop expression of ``event`` / ``burst`` of neuron ``i`` of population ``P`` at this
    step (after its bookkeeping; :func:`dendrite_sim.engine.bursts.event_now`)."""
    fn = "event_now" if kind == "event" else "burst_now"
    return f"B.{fn}(step, {P}__last_step[{i}], {P}__n_in_event[{i}])"


def e_fastmath(e: _Emitter) -> bool:
    return e.fastmath


# ----------------------------------------------------------------------------- threads
#: ``threads="auto"`` runs the threaded loop when the network has at least this many neurons (in
#: populations of neurons) and at least two cores are idle; below it the per-step fork/join
#: (≈ 5–10 µs with the default spin) costs about what it saves: COBA with 80 synapses per neuron,
#: 2 threads against 1, idle 2-core machine: 4k 0.074 / 0.062, 8k 0.10 / 0.12, 16k 0.18 / 0.24,
#: 64k 0.92 / 1.91 s per biological second (docs/performance.md).
THREAD_MIN_NEURONS = 16_000
#: Chunk boundaries are multiples of this many neurons (64 float64 = 8 cache lines: chunks
#: never share a cache line of a state array).
CHUNK_ALIGN = 64


def available_threads() -> int:
    """Threads Numba may use here (``NUMBA_NUM_THREADS``, at most the cores)."""
    import numba

    return max(1, min(int(numba.config.NUMBA_NUM_THREADS), os.cpu_count() or 1))


def idle_cores() -> float:
    """Cores not busy with other work: the core count less the 1-minute load average."""
    try:
        return (os.cpu_count() or 1) - os.getloadavg()[0]
    except OSError:                                     # no load average on this platform
        return float(os.cpu_count() or 1)


def resolve_threads(net) -> int:
    """The number of chunks of ``net``'s loop: ``net.threads`` when it is a number, else (``"auto"``)
    for networks of at least :data:`THREAD_MIN_NEURONS` neurons the idle cores (at most
    :func:`available_threads`; a barrier per step on an oversubscribed machine waits for a
    descheduled thread, which costs far more than it saves), and 1 otherwise. Results do not
    depend on the choice (bit-identical), only the speed does."""
    want = getattr(net, "threads", "auto")
    if want != "auto":
        return max(1, int(want))
    n = sum(p.n for p in net.pops.values() if isinstance(p, NeuronPopulation))
    if n < THREAD_MIN_NEURONS:
        return 1
    free = int(idle_cores() + 0.5)
    return min(available_threads(), free) if free >= 2 else 1


#: Default ``GOMP_SPINCOUNT`` of the threaded loop: a waiting thread spins this many times (about
#: 10–30 µs) before it sleeps. COBA-64k, 2 threads on an idle 2-core machine: 0.92 s per biological
#: second (serial 1.91); sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) 1.8–2.2, since each step's
#: fork wakes a sleeping thread (≈ 70 µs here); spinning without bound (``ACTIVE``) 0.90, but on a
#: busy machine a spinning waiter takes the core from the thread it waits for (5–15× slower).
SPINCOUNT = "10000"


def wait_policy() -> None:
    """How OpenMP's waiting threads wait, unless the user chose (``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT`` in the environment): spin :data:`SPINCOUNT` times, then sleep. libgomp
    reads it when Numba first starts its thread pool, so it is set before the first threaded call."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPINCOUNT


def chunk_bounds(n: int, chunks: int) -> np.ndarray:
    """``chunks + 1`` boundaries splitting ``range(n)`` into near-equal, aligned chunks."""
    b = [min(n, ((n * t // chunks) + CHUNK_ALIGN // 2) // CHUNK_ALIGN * CHUNK_ALIGN) for t in range(chunks + 1)]
    b[0], b[-1] = 0, n
    return np.maximum.accumulate(np.asarray(b, dtype=np.int64))


def thread_split(conn, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The synapses of each CSR row grouped by the chunk that owns their target.

    Returns ``(ptr, syn)``: the synapses of row j owned by chunk t are the CSR positions
    ``syn[ptr[t·n_pre + j] : ptr[t·n_pre + j + 1]]``, in CSR order (a stable sort by owner)."""
    n_pre, chunks = conn.n_pre, bounds.size - 1
    owner = np.searchsorted(bounds, conn.indices, side="right") - 1
    rows = np.repeat(np.arange(n_pre, dtype=np.int64), np.diff(conn.indptr))
    syn = np.argsort(owner, kind="stable").astype(np.int64)
    counts = np.bincount(owner.astype(np.int64) * n_pre + rows, minlength=chunks * n_pre)
    ptr = np.zeros(chunks * n_pre + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, syn


# ----------------------------------------------------------------------------- generation
def generate(net, threads: int = 1) -> Kernel:
    """The run-loop source and its argument getters for ``net``'s current structure
    (``threads`` > 1: the threaded loop with that many chunks per parallel phase)."""
    e = _Emitter()
    e.fastmath = net.fastmath
    e.threads = int(threads)
    if e.threaded:
        e.arg("n_chunks", lambda: e.threads)
        pops = []
        for pop in net.pops.values():
            if isinstance(pop, NeuronPopulation):
                P = e.label(pop, pop.name)
                bounds = chunk_bounds(pop.n, e.threads)
                e.bounds[id(pop)] = bounds
                e.arg(f"{P}__bounds", lambda bounds=bounds: bounds)
                thr_nsp = np.zeros(e.threads, dtype=np.int64)
                e.arg(f"{P}__thr_nsp", lambda a=thr_nsp: a)
                thr_spk = np.zeros(pop.n, dtype=np.int64)
                e.arg(f"{P}__thr_spk", lambda a=thr_spk: a)
                pops.append(P)
        e.region_pops = tuple(pops)
    fm = "True" if net.fastmath else "False"
    e.deps.update({__file__, *(inspect.getfile(_mod(m)) for m in _KERNEL_MODULES)})
    elementwise = sys.modules.get("dendrite_sim.core.elementwise")
    if elementwise is not None:
        e.deps.add(inspect.getfile(elementwise))
    NumbaBackend.emit_monitor_capacity(e, net)      # (argument order as the loop reads them)
    for pop in net.pops.values():
        NumbaBackend.pop_args(e, pop)
    for k, phase in enumerate(PHASES, start=1):
        e.emit(2, f"# phase {k}: {phase.name} — {phase.summary}")
        NumbaBackend.phase_impl(phase.name)(e, net)

    loop_end = ["    return n_steps"]
    if e.deferred:
        lines, head = e.lines, "    " * 2 + "for t in prange(n_chunks):"
        at = lines.index(head) + 1 + 2 * len(e.region_pops)
        lines[at:at] = ["    " * 3 + "if s > 0:", "    " * 4 + "pstep = step - 1"] + ["    " + ln for ln in e.deferred]
        lines[:] = [ln.replace("    " * 3 + "return s", "    " * 3 + "done = s\n" + "    " * 3 + "break")
                    for ln in lines]
        flush = ["    if done > 0:", "        pstep = step0 + done - 1", "        for t in prange(n_chunks):"]
        flush += ["            " + f"{P}__{b} = {P}__bounds[t{o}]" for P in e.region_pops
                  for b, o in (("lo", ""), ("hi", " + 1"))]
        flush += e.deferred
        loop_end = ["    " + "# the last step's delivery (deferred to the next step's region)", *flush,
                    "    return done"]
    deps = "".join(sorted(_file_hash(p) for p in e.deps))
    decorator = f"@njit(cache=True, error_model='numpy', fastmath={fm}, nogil=True"
    loop = [
        f"def run_loop(step0, n_steps, dt, {', '.join(e.names)}):",
        *e.prologue,
        *(["    done = n_steps"] if e.deferred else []),
        "    for s in range(n_steps):",
        "        step = step0 + s",
        *e.lines,
        *loop_end,
    ]
    regions: list[str] = []
    if e.threaded:
        loop, regions = _outline_regions(loop, decorator + ")")
    body = [
        "# Generated by dendrite_sim.engine.backends.numba: the fused run loop of one network structure,",
        "# one block per phase of dendrite_sim.engine.schedule.",
        f"# engine version {VERSION}; dependencies {hashlib.sha256(deps.encode()).hexdigest()[:16]}",
        f"# threads: {'parallel (n_chunks chunks per parallel phase)' if e.threaded else 'serial'}",
        "import numpy as np  # noqa: F401",
        "from numba import njit, prange  # noqa: F401",
        "from dendrite_sim.engine import random as R",
        "from dendrite_sim.engine import bursts as B",
        "from dendrite_sim.synapses import stp as STP",
        *e.header,
        *regions,
        "",
        "",
        decorator + (", parallel=True)" if e.threaded else ")"),
        *loop,
        "",
    ]
    source = "\n".join(body)
    return Kernel(source=source, arg_names=e.names, getters=e.getters,
                  key=hashlib.sha256(source.encode()).hexdigest()[:20])


def _outline_regions(loop: list[str], decorator: str) -> tuple[list[str], list[str]]:
    """Move the body of every parallel region (``for t in prange(n_chunks):``) of the threaded
    loop into its own serial function ``region_<k>(t, ...)``, called from the region.

    Numba compiles a ``prange`` body as an outlined gufunc whose array arguments may alias, and
    the per-neuron loops in it ran about 2× slower than the same loops in the serial form (COBA
    at 64k neurons, the threaded form on one thread: 4.2 against 1.95 s per biological second).
    A separately compiled ``njit`` function gets the serial form's code; the region only calls
    it. The arguments are the loop's variables the body reads before it assigns them (found with
    :mod:`ast`); the body's statements, their order and arithmetic are unchanged.
    Returns the new loop lines and the region functions' lines (module level)."""
    import ast
    import textwrap

    tree = ast.parse(textwrap.dedent("\n".join(loop)))
    fn = tree.body[0]
    local = {a.arg for a in fn.args.args} | {n.id for n in ast.walk(fn)
                                             if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    out: list[str] = []
    funcs: list[str] = []
    i = n_regions = 0
    while i < len(loop):
        line = loop[i]
        if line.strip() != "for t in prange(n_chunks):":
            out.append(line)
            i += 1
            continue
        ind = len(line) - len(line.lstrip())
        j, body = i + 1, []
        while j < len(loop):
            text = loop[j].strip()
            if text and not text.startswith("#") and len(loop[j]) - len(loop[j].lstrip()) <= ind:
                break
            body.append(loop[j])
            j += 1
        tail = []                                  # comments after the region stay outside it
        while body and (not body[-1].strip() or body[-1].strip().startswith("#")):
            tail.insert(0, body.pop())
        code = [ln for ln in body if ln.strip() and not ln.strip().startswith("#")]
        cut = min(len(ln) - len(ln.lstrip()) for ln in code)
        lines = []
        for k, ln in enumerate(body):              # comments take the indentation of the next code line
            if ln.strip().startswith("#"):
                nxt = next((c for c in body[k:] if c.strip() and not c.strip().startswith("#")), ln)
                ln = " " * (len(nxt) - len(nxt.lstrip())) + ln.strip()
            lines.append("    " + ln[cut:])
        lines = _unsigned_index(lines)
        sub = ast.parse("def f():\n" + "\n".join(lines))
        stored = {n.id for n in ast.walk(sub) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        args = []
        for n in ast.walk(sub):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in local \
                    and n.id not in stored and n.id != "t" and n.id not in args:
                args.append(n.id)
        name = f"region_{n_regions}"
        n_regions += 1
        funcs += ["", "", decorator, f"def {name}({', '.join(['t', *args])}):", *lines]
        out += [line, " " * (ind + 4) + f"{name}({', '.join(['t', *args])})", *tail]
        i = j
    return out, funcs


def _unsigned_index(lines: list[str]) -> list[str]:
    """Inside every loop over a chunk of neurons (``for i in range(<P>__lo, <P>__hi):``) index
    the arrays with ``iu = np.uint64(i)``: an int64 index that LLVM cannot prove non-negative
    (a loop from 0 it can) gets Numba's negative-index wraparound, a select per access that
    stops the loop from being vectorized. ``i`` itself stays int64 for everything else."""
    import re

    out: list[str] = []
    depth = -1
    for ln in lines:
        ind = len(ln) - len(ln.lstrip())
        if depth >= 0 and ln.strip() and not ln.strip().startswith("#") and ind <= depth:
            depth = -1
        if depth >= 0:
            ln = re.sub(r"(?<=\w)\[i\]", "[iu]", ln).replace(", i]", ", iu]")
        out.append(ln)
        if re.fullmatch(r"for i in range\(\w+__lo, \w+__hi\):", ln.strip()):
            depth = ind
            out.append(" " * (ind + 4) + "iu = np.uint64(i)")
    return out


def _uniform_delay(delays) -> int:
    """The common delay (steps) of all synapses, or −1 when they differ (or there are none)."""
    return int(delays[0]) if delays.size and np.all(delays == delays[0]) else -1


# ----------------------------------------------------------------------------- loading
def load(kernel: Kernel) -> Callable:
    """Write ``kernel.source`` to the cache folder (once) and import its ``run_loop``."""
    if kernel.key in _LOADED:
        return _LOADED[kernel.key]
    folder = cache_dir()
    path = folder / f"dsim_{kernel.key}.py"
    if not path.exists() or path.read_text() != kernel.source:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(kernel.source)
        os.replace(tmp, path)
    modname = f"dendrite_sim_kernel_{kernel.key}"
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    _LOADED[kernel.key] = mod.run_loop
    return mod.run_loop


BACKEND = NumbaBackend
