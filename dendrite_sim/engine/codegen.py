"""Source generation for the fused Numba run loop of one network structure.

:func:`generate` walks a :class:`~dendrite_sim.engine.network.Network` and writes the source of
one function ``run_loop(step0, n_steps, dt, *args)`` that executes ``n_steps`` time steps
entirely in compiled code: arrivals from the delay rings, Poisson drives from the counter-based
generator, drives, state monitors, every population's model ``step`` called per neuron (LLVM
inlines it), channel decay, spike collection, event/burst detection and running rates, spike
monitors, and propagation over the CSR rows of the neurons that spiked with short-term
plasticity per presynaptic neuron — in the order documented in :mod:`.network`. It returns
the number of steps done; it stops early only when a spike monitor needs a larger buffer.

The source depends only on the network's *structure* (which populations of which model, which
projections with or without STP, which inputs and monitors); sizes, parameters, weights and
state are arguments. The source (with a hash of every file it depends on, so that editing a
model or a kernel makes a new kernel) is written to ``<cache>/dsim_<hash>.py`` and imported
from there, so Numba's on-disk cache (``cache=True``) works across processes: a second process
with the same structure loads the compiled loop instead of compiling it. The cache folder is
``$DENDRITE_SIM_CACHE`` or ``~/.cache/dendrite_sim/kernels``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VERSION = "3"
_LOADED: dict[str, Callable] = {}


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

    def arg(self, name: str, getter: Callable) -> str:
        self.names.append(name)
        self.getters.append(getter)
        return name

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)


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


# ----------------------------------------------------------------------------- generation
def generate(net) -> Kernel:
    """The run-loop source and its argument getters for ``net``'s current structure."""
    e = _Emitter()
    fm = "True" if net.fastmath else "False"
    pops = list(net.pops.values())
    e.deps.update({__file__, inspect.getfile(_mod("dendrite_sim.engine.random")),
                   inspect.getfile(_mod("dendrite_sim.engine.bursts")),
                   inspect.getfile(_mod("dendrite_sim.synapses.stp")),
                   inspect.getfile(_mod("dendrite_sim.synapses.stdp")),
                   inspect.getfile(_mod("dendrite_sim.neurons.base"))})

    # ---- capacity check of spike monitors
    for m_i, m in enumerate(net.spike_monitors):
        a = m.pop.index
        on = e.arg(f"m{m_i}_on", lambda m=m: m.on)
        bufs = [("s", m.spikes, True), ("e", m.events, m.record_events), ("b", m.bursts, m.record_bursts)]
        for tag, _rec, used in bufs:
            if used:
                e.arg(f"m{m_i}_{tag}t", lambda m=m, tag=tag: _rec_of(m, tag).steps)
                e.arg(f"m{m_i}_{tag}i", lambda m=m, tag=tag: _rec_of(m, tag).idx)
                e.arg(f"m{m_i}_{tag}n", lambda m=m, tag=tag: _rec_of(m, tag).n)
        e.arg(f"m{m_i}_mask", lambda m=m: m.mask)
        conds = " or ".join(f"m{m_i}_{tag}t.size - m{m_i}_{tag}n[0] < n{a}" for tag, _r, used in bufs if used)
        e.emit(2, f"if {on}[0] and ({conds}):")
        e.emit(3, "return s")

    # ---- per-population arguments
    for pop in pops:
        a = pop.index
        e.arg(f"n{a}", lambda pop=pop: pop.n)
        e.arg(f"si{a}", lambda pop=pop: pop.spike_idx)
        e.arg(f"ns{a}", lambda pop=pop: pop.n_spiked)
        e.arg(f"cnt{a}", lambda pop=pop: pop.spike_count)
        if pop.kind == "model":
            model = pop.model
            e.deps.add(inspect.getfile(model))
            e.header.append(f"from {model.__module__} import {model.__qualname__.split('.')[0]} as _M{a}")
            attr = ".".join(model.__qualname__.split(".")[1:] + ["step"])
            e.header.append(f"_step{a} = njit(error_model='numpy', fastmath={fm}, inline='always')(_M{a}.{attr})")
            e.arg(f"p{a}", lambda pop=pop: pop.params)
            e.arg(f"sp{a}", lambda pop=pop: pop.spiked)
            for k, v in enumerate(model.state_vars):
                e.arg(f"s{a}_{k}", lambda pop=pop, v=v: pop.state[v])
            for k, ch in enumerate(model.channels):
                e.arg(f"c{a}_{k}", lambda pop=pop, ch=ch: pop.channels[ch])
                e.arg(f"dk{a}_{k}", lambda pop=pop, ch=ch: pop.decay[ch])
                if ch in pop.rings:
                    e.arg(f"r{a}_{k}", lambda pop=pop, ch=ch: pop.rings[ch])
            for k, comp in enumerate(model.compartments):
                e.arg(f"b{a}_{k}", lambda pop=pop, comp=comp: pop.bias[comp])
                e.arg(f"d{a}_{k}", lambda pop=pop, comp=comp: pop.drives[comp])
            if getattr(model, "needs_uniform", False):
                e.arg(f"uk{a}", lambda pop=pop: pop.uniform_key)
        elif pop.kind == "poisson":
            e.arg(f"gk{a}", lambda pop=pop: pop.gen_key)
            e.arg(f"gp{a}", lambda pop=pop: pop.spike_prob)
        else:
            e.arg(f"gst{a}", lambda pop=pop: pop.sched_steps)
            e.arg(f"gix{a}", lambda pop=pop: pop.sched_idx)
            e.arg(f"gptr{a}", lambda pop=pop: pop.sched_ptr)
        if pop.track_bursts:
            for nm, getter in (("bl", lambda pop: pop.last_step), ("bn", lambda pop: pop.n_in_event),
                               ("sr", lambda pop: pop.spike_rate), ("er", lambda pop: pop.event_rate),
                               ("br", lambda pop: pop.burst_rate), ("ec", lambda pop: pop.event_count),
                               ("bc", lambda pop: pop.burst_count), ("bw", lambda pop: pop.burst_window),
                               ("rd", lambda pop: pop.rate_decay), ("ri", lambda pop: pop.rate_inc)):
                e.arg(f"{nm}{a}", lambda pop=pop, getter=getter: getter(pop))

    # ---- 1. arrivals
    e.emit(2, "# 1. arrivals: delay rings, Poisson inputs")
    for pop in pops:
        a = pop.index
        for k, ch in enumerate(pop.channels):
            if ch in pop.rings:
                e.emit(2, f"slot = step % r{a}_{k}.shape[0]")
                e.emit(2, f"for i in range(n{a}):")
                e.emit(3, f"c{a}_{k}[i] += r{a}_{k}[slot, i]")
                e.emit(3, f"r{a}_{k}[slot, i] = 0.0")
    for q, inp in enumerate(net.poisson_inputs):
        a = inp.pop.index
        k = list(inp.pop.channels).index(inp.channel)
        e.arg(f"pk{q}", lambda inp=inp: inp.key)
        e.arg(f"pw{q}", lambda inp=inp: inp.weight)
        e.arg(f"pc{q}", lambda inp=inp: inp.cdf)
        e.arg(f"pz{q}", lambda inp=inp: inp.zero_threshold)
        if f"ph{a}" not in e.names:
            e.arg(f"ph{a}", lambda pop=inp.pop: pop.scratch_u64)
        # hashes in a pure integer loop (vectorises); counts only where the hash passes T0
        e.emit(2, f"key = R.step_key(pk{q}, step)")
        e.emit(2, f"for i in range(n{a}):")
        e.emit(3, f"ph{a}[i] = R.hash_at(key, i)")
        e.emit(2, f"for i in range(n{a}):")
        e.emit(3, f"if ph{a}[i] >= pz{q}:")
        e.emit(4, f"c{a}_{k}[i] += pw{q} * R.poisson_count(R.to_unit(ph{a}[i]), pc{q})")

    # ---- 2. drives
    e.emit(2, "# 2. drives")
    for pop in pops:
        if pop.kind != "model":
            continue
        a = pop.index
        for k, comp in enumerate(pop.model.compartments):
            terms = []
            for q, ai in enumerate(net.array_inputs):
                if ai.pop is not pop or ai.compartment != comp:
                    continue
                e.arg(f"av{q}", lambda ai=ai: ai.values)
                e.arg(f"ar{q}", lambda ai=ai: ai.ratio)
                e.emit(2, f"ax{q} = step // ar{q}")
                e.emit(2, f"ok{q} = ax{q} < av{q}.shape[0]")
                terms.append((q, ai.per_neuron))
            e.emit(2, f"for i in range(n{a}):")
            e.emit(3, f"x = b{a}_{k}[i]")
            for q, per_neuron in terms:
                e.emit(3, f"if ok{q}:")
                e.emit(4, f"x += av{q}[ax{q}, i]" if per_neuron else f"x += av{q}[ax{q}]")
            e.emit(3, f"d{a}_{k}[i] = x")

    # ---- 3. state monitors
    e.emit(2, "# 3. state monitors")
    for q, m in enumerate(net.state_monitors):
        a = m.pop.index
        e.arg(f"ve{q}", lambda m=m: m.every)
        e.arg(f"vi{q}", lambda m=m: m.idx)
        e.arg(f"vn{q}", lambda m=m: m.buf_n)
        e.emit(2, f"if step % ve{q} == 0:")
        e.emit(3, f"c = vn{q}[0]")
        e.emit(3, f"for q in range(vi{q}.size):")
        e.emit(4, f"i = vi{q}[q]")
        for k, var in enumerate(m.variables):
            e.arg(f"vb{q}_{k}", lambda m=m, var=var: m.buf[var])
            e.emit(4, f"vb{q}_{k}[c, q] = {_var_expr(m.pop, var)}")
        e.emit(3, f"vn{q}[0] = c + 1")

    # ---- 4.+5. updates, spike sources, channel decay
    e.emit(2, "# 4. neuron updates (5. channel decay) and spike sources")
    for pop in pops:
        a = pop.index
        if pop.kind == "model":
            model = pop.model
            args = [f"s{a}_{k}[i]" for k in range(len(model.state_vars))]
            args += [f"c{a}_{k}[i]" for k in range(len(model.channels))]
            args += [f"d{a}_{k}[i]" for k in range(len(model.compartments))]
            if getattr(model, "needs_uniform", False):
                e.emit(2, f"ukey = R.step_key(uk{a}, step)")
                args.append("R.uniform(ukey, i)")
            outs = [f"o{k}" for k in range(len(model.state_vars))] + ["spk"]
            e.emit(2, f"for i in range(n{a}):")
            e.emit(3, f"{', '.join(outs)} = _step{a}({', '.join(args)}, p{a}, dt)")
            for k in range(len(model.state_vars)):
                e.emit(3, f"s{a}_{k}[i] = o{k}")
            e.emit(3, f"sp{a}[i] = spk")
            for k in range(len(model.channels)):
                e.emit(3, f"c{a}_{k}[i] *= dk{a}_{k}")
            # spikes collected in a second pass: a store inside the update loop slows it ~2×
            e.emit(2, "nsp = 0")
            e.emit(2, f"for i in range(n{a}):")
            e.emit(3, f"if sp{a}[i]:")
            e.emit(4, f"si{a}[nsp] = i")
            e.emit(4, "nsp += 1")
        elif pop.kind == "poisson":
            e.emit(2, f"gkey = R.step_key(gk{a}, step)")
            e.emit(2, "nsp = 0")
            e.emit(2, f"for i in range(n{a}):")
            e.emit(3, f"if R.uniform(gkey, i) < gp{a}[i]:")
            e.emit(4, f"si{a}[nsp] = i")
            e.emit(4, "nsp += 1")
        else:
            e.emit(2, f"ptr = gptr{a}[0]")
            e.emit(2, "nsp = 0")
            e.emit(2, f"while ptr < gst{a}.size and gst{a}[ptr] < step:")
            e.emit(3, "ptr += 1")
            e.emit(2, f"while ptr < gst{a}.size and gst{a}[ptr] == step:")
            e.emit(3, f"si{a}[nsp] = gix{a}[ptr]")
            e.emit(3, "nsp += 1")
            e.emit(3, "ptr += 1")
            e.emit(2, f"gptr{a}[0] = ptr")
        e.emit(2, f"ns{a}[0] = nsp")

    # ---- 6. bookkeeping and spike monitors
    e.emit(2, "# 6. spike counts, events and bursts, running rates, spike monitors")
    for pop in pops:
        a = pop.index
        mons = [(m_i, m) for m_i, m in enumerate(net.spike_monitors) if m.pop is pop]
        if pop.track_bursts:
            for nm in ("sr", "er", "br"):                 # one loop per array: vectorises
                e.emit(2, f"for i in range(n{a}):")
                e.emit(3, f"{nm}{a}[i] *= rd{a}")
        e.emit(2, f"for q in range(ns{a}[0]):")
        e.emit(3, f"i = si{a}[q]")
        e.emit(3, f"cnt{a}[i] += 1")
        if pop.track_bursts:
            e.emit(3, f"ev, bu, nn = B.classify_spike(step, bl{a}[i], bn{a}[i], bw{a})")
            e.emit(3, f"bl{a}[i] = step")
            e.emit(3, f"bn{a}[i] = nn")
            e.emit(3, f"sr{a}[i] += ri{a}")
            e.emit(3, "if ev:")
            e.emit(4, f"er{a}[i] += ri{a}")
            e.emit(4, f"ec{a}[i] += 1")
            e.emit(3, "if bu:")
            e.emit(4, f"br{a}[i] += ri{a}")
            e.emit(4, f"bc{a}[i] += 1")
        for m_i, m in mons:
            e.emit(3, f"if m{m_i}_on[0] and m{m_i}_mask[i]:")
            for tag, used, cond in (("s", True, None), ("e", m.record_events, "ev"), ("b", m.record_bursts, "bu")):
                if not used:
                    continue
                ind = 4
                if cond:
                    e.emit(4, f"if {cond}:")
                    ind = 5
                e.emit(ind, f"c = m{m_i}_{tag}n[0]")
                e.emit(ind, f"m{m_i}_{tag}t[c] = step")
                e.emit(ind, f"m{m_i}_{tag}i[c] = i")
                e.emit(ind, f"m{m_i}_{tag}n[0] = c + 1")

    # ---- 7. propagation
    e.emit(2, "# 7. propagation over CSR rows of spiking neurons, STP per presynaptic neuron")
    for q, proj in enumerate(net.projections):
        a, b = proj.pre.index, proj.post.index
        k = list(proj.post.channels).index(proj.channel)
        e.arg(f"qp{q}", lambda proj=proj: proj.conn.indptr)
        e.arg(f"qi{q}", lambda proj=proj: proj.conn.indices)
        e.arg(f"qw{q}", lambda proj=proj: proj.conn.weights)
        e.arg(f"qd{q}", lambda proj=proj: proj.conn.delays)
        e.arg(f"qdu{q}", lambda proj=proj: _uniform_delay(proj.conn.delays))
        # ring slots without a division per synapse: one slot per step when every synapse has
        # the same delay (qdu >= 0), else s0 + delay wrapped once (delays < L by construction)
        e.emit(2, f"L = r{b}_{k}.shape[0]")
        e.emit(2, "s0 = step % L")
        e.emit(2, f"su = s0 + qdu{q}")
        e.emit(2, "if su >= L:")
        e.emit(3, "su -= L")
        e.emit(2, f"for q in range(ns{a}[0]):")
        e.emit(3, f"j = si{a}[q]")
        per_synapse, release = [], ""
        if proj.stp is not None:
            e.arg(f"qs{q}", lambda proj=proj: proj.stp)
            e.arg(f"qu{q}", lambda proj=proj: proj.stp_u)
            e.arg(f"qx{q}", lambda proj=proj: proj.stp_x)
            e.arg(f"ql{q}", lambda proj=proj: proj.stp_last)
            # shared parameters: one update per presynaptic spike (state per neuron j);
            # heterogeneous parameters: one update per synapse kk of the row (state per synapse)
            at, par = ("kk", "[kk]") if proj.stp_per_synapse else ("j", "")
            body = [f"u, x = STP.stp_relax(qu{q}[{at}], qx{q}[{at}], el, qs{q}.U{par}, "
                    f"qs{q}.tau_D{par}, qs{q}.tau_F{par}, qs{q}.variant{par})",
                    f"rel, u, x = STP.stp_spike(u, x, qs{q}.U{par}, qs{q}.f{par}, qs{q}.variant{par})",
                    f"qu{q}[{at}] = u",
                    f"qx{q}[{at}] = x"]
            e.emit(3, f"el = (step - ql{q}[j]) * dt")
            e.emit(3, f"ql{q}[j] = step")
            if proj.stp_per_synapse:
                per_synapse = body
            else:
                for line in body:
                    e.emit(3, line)
            release = " * rel"
        e.emit(3, f"if qdu{q} >= 0:")
        e.emit(4, f"for kk in range(qp{q}[j], qp{q}[j + 1]):")
        for line in per_synapse:
            e.emit(5, line)
        e.emit(5, f"r{b}_{k}[su, qi{q}[kk]] += qw{q}[kk]{release}")
        e.emit(3, "else:")
        e.emit(4, f"for kk in range(qp{q}[j], qp{q}[j + 1]):")
        for line in per_synapse:
            e.emit(5, line)
        e.emit(5, f"sl = s0 + qd{q}[kk]")
        e.emit(5, "if sl >= L:")
        e.emit(6, "sl -= L")
        e.emit(5, f"r{b}_{k}[sl, qi{q}[kk]] += qw{q}[kk]{release}")

    # ---- 8. spike-timing-dependent plasticity
    for q, proj in enumerate(net.projections):
        if proj.stdp is None:
            continue
        a, b = proj.pre.index, proj.post.index
        e.emit(2, f"# 8. STDP of projection {q}: decay, depress (pre), potentiate (post), raise traces")
        for nm, getter in (("tp", lambda proj: proj.stdp), ("tf", lambda proj: proj.stdp_decay),
                           ("tr1", lambda proj: proj.stdp_r1), ("tr2", lambda proj: proj.stdp_r2),
                           ("to1", lambda proj: proj.stdp_o1), ("to2", lambda proj: proj.stdp_o2),
                           ("tcp", lambda proj: proj.stdp_csc[0]), ("tcs", lambda proj: proj.stdp_csc[1]),
                           ("tsp", lambda proj: proj.stdp_csc[2])):
            e.arg(f"{nm}{q}", lambda proj=proj, getter=getter: getter(proj))
        e.emit(2, f"for i in range(n{a}):")
        e.emit(3, f"tr1{q}[i] *= tf{q}[0]")
        e.emit(3, f"tr2{q}[i] *= tf{q}[1]")
        e.emit(2, f"for i in range(n{b}):")
        e.emit(3, f"to1{q}[i] *= tf{q}[2]")
        e.emit(3, f"to2{q}[i] *= tf{q}[3]")
        e.emit(2, f"for q in range(ns{a}[0]):")
        e.emit(3, f"STDP.stdp_on_pre(si{a}[q], qp{q}, qi{q}, qw{q}, to1{q}, tr2{q}, tp{q})")
        e.emit(2, f"for q in range(ns{b}[0]):")
        e.emit(3, f"STDP.stdp_on_post(si{b}[q], tcp{q}, tcs{q}, tsp{q}, qw{q}, tr1{q}, to2{q}, tp{q})")
        e.emit(2, f"for q in range(ns{a}[0]):")
        e.emit(3, f"j = si{a}[q]")
        e.emit(3, f"tr1{q}[j] = STDP.trace_spike(tr1{q}[j], tp{q}.nearest)")
        e.emit(3, f"tr2{q}[j] = STDP.trace_spike(tr2{q}[j], tp{q}.nearest)")
        e.emit(2, f"for q in range(ns{b}[0]):")
        e.emit(3, f"i = si{b}[q]")
        e.emit(3, f"to1{q}[i] = STDP.trace_spike(to1{q}[i], tp{q}.nearest)")
        e.emit(3, f"to2{q}[i] = STDP.trace_spike(to2{q}[i], tp{q}.nearest)")

    deps = "".join(sorted(_file_hash(p) for p in e.deps))
    body = [
        "# Generated by dendrite_sim.engine.codegen: the fused run loop of one network structure.",
        f"# engine version {VERSION}; dependencies {hashlib.sha256(deps.encode()).hexdigest()[:16]}",
        "import numpy as np  # noqa: F401",
        "from numba import njit",
        "from dendrite_sim.engine import random as R",
        "from dendrite_sim.engine import bursts as B",
        "from dendrite_sim.synapses import stp as STP",
        "from dendrite_sim.synapses import stdp as STDP",
        *e.header,
        "",
        "",
        f"@njit(cache=True, error_model='numpy', fastmath={fm}, nogil=True)",
        f"def run_loop(step0, n_steps, dt, {', '.join(e.names)}):",
        "    for s in range(n_steps):",
        "        step = step0 + s",
        *e.lines,
        "    return n_steps",
        "",
    ]
    source = "\n".join(body)
    return Kernel(source=source, arg_names=e.names, getters=e.getters,
                  key=hashlib.sha256(source.encode()).hexdigest()[:20])


def _uniform_delay(delays) -> int:
    """The common delay (steps) of all synapses, or −1 when they differ (or there are none)."""
    return int(delays[0]) if delays.size and np.all(delays == delays[0]) else -1


def _rec_of(m, tag):
    return {"s": m.spikes, "e": m.events, "b": m.bursts}[tag]


def _mod(name):
    return sys.modules.get(name) or importlib.import_module(name)


def _var_expr(pop, var: str) -> str:
    a = pop.index
    if pop.kind == "model":
        model = pop.model
        if var in model.state_vars:
            return f"s{a}_{model.state_vars.index(var)}[i]"
        if var in model.channels:
            return f"c{a}_{list(model.channels).index(var)}[i]"
        if var.startswith("I_") and var[2:] in model.compartments:
            return f"d{a}_{model.compartments.index(var[2:])}[i]"
    if var == "burst_prob":
        return f"B.burst_probability(br{a}[i], er{a}[i])"
    return {"spike_rate": f"sr{a}[i]", "event_rate": f"er{a}[i]", "burst_rate": f"br{a}[i]"}[var]


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
