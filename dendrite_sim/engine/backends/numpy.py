"""Reference backend: the phases of :mod:`dendrite_sim.engine.schedule`, one method per phase,
one Python iteration per time step, vectorised over neurons and synapses, calling the same model
``step``, STP kernels and synapse-rule hooks as the compiled loop.

It is written to be read next to the schedule's docstring; the numba backend must give the same
results bit for bit, and the tests check that it does.

One numerical detail: NumPy evaluates ``exp``, ``log``, ``power``, trigonometric functions...
on arrays with its own SIMD code, which differs from the C library (what compiled Numba code
calls) by up to one ulp in a few per cent of cases. To be bit-identical with the numba backend,
the arrays, parameters and ``dt`` handed to a model's ``step`` and to the STP kernels are
wrapped in :class:`LibmArray`, an ndarray view whose transcendental ufuncs run element by element through
Numba-compiled C-library calls. Arithmetic (+ − × ÷, sqrt, comparisons) is IEEE-exact in both.
"""

from __future__ import annotations

import numba
import numpy as np

from dendrite_sim.engine import bursts as B
from dendrite_sim.engine import random as R
from dendrite_sim.engine.backends.base import Backend
from dendrite_sim.engine.graph import NeuronPopulation, PoissonSource, SpikeSource
from dendrite_sim.engine.schedule import PHASE_NAMES
from dendrite_sim.synapses import stp as stpmod
from dendrite_sim.synapses.plasticity import TRACE_SPECIAL, csr_gather

# ----------------------------------------------------------------------------- libm shim
_UNARY = ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "arcsin",
          "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "cbrt")
_BINARY = ("power", "arctan2", "hypot")
_LIBM: dict = {}


def _libm(ufunc):
    """A Numba-vectorised (C library) version of a transcendental numpy ufunc, or None."""
    name = ufunc.__name__
    if name not in _UNARY and name not in _BINARY:
        return None
    if name not in _LIBM:
        fn = getattr(np, name)
        if name in _UNARY:
            _LIBM[name] = numba.vectorize(["float64(float64)"])(lambda x: fn(x))
        else:
            _LIBM[name] = numba.vectorize(["float64(float64, float64)"])(lambda x, y: fn(x, y))
    return _LIBM[name]


def _unwrap(x):
    if isinstance(x, LibmArray):
        return x.view(np.ndarray)
    if isinstance(x, (tuple, list)):
        return type(x)(_unwrap(v) for v in x)
    return x


def _wrap(x):
    if isinstance(x, np.ndarray) and not isinstance(x, LibmArray):
        return x.view(LibmArray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(LibmArray)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    return x


class LibmArray(np.ndarray):
    """ndarray view whose transcendental ufuncs use the C library (as compiled Numba does)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = _unwrap(inputs)
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"])
        impl = _libm(ufunc) if method == "__call__" and not kwargs else None
        with np.errstate(all="ignore"):         # compiled code does not warn either
            if impl is not None and all(np.result_type(x) == np.float64 or isinstance(x, (float, int))
                                        for x in inputs):
                result = impl(*[np.asarray(x, dtype=np.float64) for x in inputs])
            else:
                result = getattr(ufunc, method)(*inputs, **kwargs)
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        return _wrap(func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))


def libm(a):
    """View ``a`` (array or scalar) as a :class:`LibmArray`."""
    return np.asarray(a).view(LibmArray)


def libm_params(p):
    """A parameter record with every field as a 0-d :class:`LibmArray`, so that expressions of
    parameters alone (``np.exp(-dt / p.tau)``) also take the C-library path."""
    return type(p)(*[libm(v) for v in p])


def plain(a) -> np.ndarray:
    return np.asarray(a).view(np.ndarray) if isinstance(a, np.ndarray) else np.asarray(a)


# ----------------------------------------------------------------------------- backend
class NumpyBackend(Backend):
    """Executes steps of a :class:`~dendrite_sim.engine.network.Network` in Python."""

    phase_prefix = "phase_"

    def __init__(self, net):
        super().__init__(net)
        self._phases = [getattr(self, self.phase_prefix + name) for name in PHASE_NAMES]

    def run_steps(self, step0: int, n_steps: int) -> int:
        net = self.net
        for s in range(n_steps):
            if any(m.needs_room() for m in net.spike_monitors):
                return s                    # Network grows the buffers and calls again
            self.step(step0 + s)
        return n_steps

    def step(self, n: int) -> None:
        """One time step: every phase of the schedule, in order."""
        for phase in self._phases:
            phase(n)

    def _pops(self, phase: str):
        """The populations that take part in ``phase`` (their kind's ``phases``)."""
        return [p for p in self.net.pops.values() if phase in p.phases]

    # ------------------------------------------------------------------ phases
    def phase_arrivals(self, n: int) -> None:
        for pop in self._pops("arrivals"):
            for ch, ring in pop.rings.items():
                slot = n % ring.shape[0]
                pop.channels[ch] += ring[slot]
                ring[slot] = 0.0

    def phase_poisson(self, n: int) -> None:
        for inp in self.net.poisson_inputs:
            counts = R.poisson_count_np(R.uniforms_np(inp.key, n, inp.pop.n), inp.cdf)
            hit = counts > 0                  # as compiled: channels change only where k > 0
            inp.pop.channels[inp.channel][hit] += inp.weight * counts[hit]

    def phase_drives(self, n: int) -> None:
        for pop in self._pops("drives"):
            for comp, drive in pop.drives.items():
                drive[:] = pop.bias[comp]
        for ai in self.net.array_inputs:
            k = n // ai.ratio
            if k < ai.values.shape[0]:
                ai.pop.drives[ai.compartment] += ai.values[k]

    def phase_record(self, n: int) -> None:
        for m in self.net.state_monitors:
            if n % m.every == 0:
                c = int(m.buf_n[0])
                for var in m.variables:
                    m.buf[var][c] = plain(m.pop.variable(var))[m.idx]
                m.buf_n[0] = c + 1

    def phase_update(self, n: int) -> None:
        for pop in self._pops("update"):
            idx = _UPDATE[type(pop)](self, pop, n)
            pop.n_spiked[0] = idx.size
            pop.spike_idx[: idx.size] = idx

    def phase_decay(self, n: int) -> None:
        for pop in self._pops("decay"):
            for ch, g in pop.channels.items():
                g *= pop.decay[ch]

    def phase_bookkeeping(self, n: int) -> None:
        for pop in self._pops("bookkeeping"):
            self._bookkeeping(pop, n)

    def phase_propagate(self, n: int) -> None:
        for proj in self.net.projections:
            self._propagate(proj, n)

    def phase_plasticity(self, n: int) -> None:
        for proj in self.net.projections:
            if proj.plasticity is not None:
                self._plasticity(proj, n)

    # ------------------------------------------------------------------ update, per kind
    def _update_neurons(self, pop, n: int) -> np.ndarray:
        model = pop.model
        args = [libm(pop.state[v]) for v in model.state_vars]
        args += [libm(pop.channels[c]) for c in model.channels]
        args += [libm(pop.drives[c]) for c in model.compartments]
        if getattr(model, "needs_uniform", False):
            args.append(libm(R.uniforms_np(pop.uniform_key, n, pop.n)))
        out = model.step(*args, libm_params(pop.params), libm(self.net.dt))
        for var, value in zip(model.state_vars, out[:-1]):
            pop.state[var][:] = plain(value)
        pop.spiked[:] = plain(out[-1])
        return np.flatnonzero(pop.spiked)

    def _update_poisson(self, pop, n: int) -> np.ndarray:
        return np.flatnonzero(R.uniforms_np(pop.gen_key, n, pop.n) < pop.spike_prob)

    def _update_spikes(self, pop, n: int) -> np.ndarray:
        """Spike generator: skip past spikes, emit this step's."""
        steps, ptr = pop.sched_steps, int(pop.sched_ptr[0])
        ptr += int(np.searchsorted(steps[ptr:], n, side="left"))
        end = ptr + int(np.searchsorted(steps[ptr:], n, side="right"))
        pop.sched_ptr[0] = end
        return pop.sched_idx[ptr:end]

    # ------------------------------------------------------------------ helpers
    def _bookkeeping(self, pop, n: int) -> None:
        k = int(pop.n_spiked[0])
        idx = pop.spike_idx[:k]
        pop.spike_count[idx] += 1
        ev = bu = np.zeros(k, dtype=bool)
        if pop.track_bursts:
            for r in (pop.spike_rate, pop.event_rate, pop.burst_rate):
                r *= pop.rate_decay
            ev, bu, nn = B.classify_spike(n, pop.last_step[idx], pop.n_in_event[idx], pop.burst_window)
            pop.last_step[idx] = n
            pop.n_in_event[idx] = nn
            pop.spike_rate[idx] += pop.rate_inc
            pop.event_rate[idx[ev]] += pop.rate_inc
            pop.event_count[idx[ev]] += 1
            pop.burst_rate[idx[bu]] += pop.rate_inc
            pop.burst_count[idx[bu]] += 1
        for m in self.net.spike_monitors:
            if m.pop is not pop or not m.on[0]:
                continue
            sel = m.mask[idx]
            _append(m.spikes, n, idx[sel])
            if m.record_events:
                _append(m.events, n, idx[sel & ev])
            if m.record_bursts:
                _append(m.bursts, n, idx[sel & bu])

    def _propagate(self, proj, n: int) -> None:
        pre = proj.pre
        k = int(pre.n_spiked[0])
        if k == 0:
            return
        j = pre.spike_idx[:k]
        conn = proj.conn
        starts = conn.indptr[j]
        counts = conn.indptr[j + 1] - starts
        total = int(counts.sum())
        # synapse indices of the spiking rows, rows in ascending order, CSR order within a row
        syn = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
        release = None
        if proj.stp is not None:
            elapsed = (n - proj.stp_last[j]) * self.net.dt
            proj.stp_last[j] = n
            if proj.stp_per_synapse:   # state and parameters per synapse
                at, elapsed = syn, np.repeat(elapsed, counts)
                p = libm_params(type(proj.stp)(*[v[syn] for v in proj.stp]))
            else:                      # state per presynaptic neuron
                at, p = j, libm_params(proj.stp)
            u, x = stpmod.stp_relax(libm(proj.stp_u[at]), libm(proj.stp_x[at]), libm(elapsed),
                                    p.U, p.tau_D, p.tau_F, p.variant)
            release, u, x = stpmod.stp_spike(u, x, p.U, p.f, p.variant)
            proj.stp_u[at] = plain(u)
            proj.stp_x[at] = plain(x)
            release = plain(release)
            if not proj.stp_per_synapse:
                release = np.repeat(release, counts)
        if total == 0:
            return
        values = conn.weights[syn]
        if release is not None:
            values = values * release
        ring = proj.post.rings[proj.channel]
        slots = (n + conn.delays[syn].astype(np.int64)) % ring.shape[0]
        np.add.at(ring, (slots, conn.indices[syn]), values)   # sequential, in this order

    def _plasticity(self, proj, n: int) -> None:
        """Phase 9 for one projection: decay, on_pre rows, on_post columns, per_step, traces."""
        ps, rule, conn = proj.plasticity, proj.plasticity.rule, proj.conn
        for traces, decay in ((ps.pre_traces, ps.pre_decay), (ps.post_traces, ps.post_decay)):
            for name, trace in traces.items():
                trace *= decay[name]
        pres = proj.pre.spike_idx[: int(proj.pre.n_spiked[0])]
        posts = proj.post.spike_idx[: int(proj.post.n_spiked[0])]
        if rule.on_pre is not None and pres.size:
            ks, owner = csr_gather(conn.indptr, pres)
            self._call_synapse_hook(proj, "on_pre", ks, owner, conn.indices[ks], n)
        if rule.on_post is not None and posts.size:
            col_ptr, col_syn, _ = ps.csc
            js, owner = csr_gather(col_ptr, posts)
            ks = col_syn[js]
            self._call_synapse_hook(proj, "on_post", ks, ps.syn_pre[ks], owner, n)
        if rule.per_step is not None and conn.nnz:
            self._call_synapse_hook(proj, "per_step", slice(None), ps.syn_pre, conn.indices, n)
        for hook, traces, idx, pop in (("pre_spike", ps.pre_traces, pres, proj.pre),
                                       ("post_spike", ps.post_traces, posts, proj.post)):
            fn = getattr(rule, hook)
            names = rule.hook_writes(hook) if fn is not None else tuple(traces)
            if not idx.size or not names:
                continue
            if fn is None:
                for name in names:
                    traces[name][idx] += 1.0
                continue
            args = [libm(traces[a][idx]) if a in traces else _classified(pop, a, n, idx) if a in TRACE_SPECIAL
                    else libm_params(ps.params) for a in rule.hook_args(hook)]
            out = fn(*args)
            out = out if isinstance(out, tuple) else (out,)
            for name, value in zip(names, out):
                traces[name][idx] = plain(value)

    def _call_synapse_hook(self, proj, hook: str, ks, pre_of, post_of, n: int) -> None:
        """Call ``hook`` on synapses ``ks`` (presynaptic neurons ``pre_of``, postsynaptic
        ``post_of``), arguments gathered by name, results scattered back."""
        ps, rule, post = proj.plasticity, proj.plasticity.rule, proj.post
        gather = {
            "w": lambda a: proj.conn.weights[ks],
            "synapse_var": lambda a: ps.synapse_vars[a][ks],
            "pre_trace": lambda a: ps.pre_traces[a][pre_of],
            "post_trace": lambda a: ps.post_traces[a][post_of],
            "dt": lambda a: self.net.dt,
            "post_spiked": lambda a: post.spiked[post_of],
            "post_state": lambda a: plain(post.variable(a))[post_of],
        }
        args = [libm_params(ps.params) if kind == "p" else libm_params(post.params) if kind == "post_p"
                else _classified(post, name, n, post_of) if kind == "post_classified" else libm(gather[kind](name))
                for kind, name in rule.hook_bindings(hook)]
        out = getattr(rule, hook)(*args)
        out = out if isinstance(out, tuple) else (out,)
        for name, value in zip(rule.hook_writes(hook), out):
            target = proj.conn.weights if name == "w" else ps.synapse_vars[name]
            target[ks] = plain(value)


_UPDATE = {NeuronPopulation: NumpyBackend._update_neurons, PoissonSource: NumpyBackend._update_poisson,
           SpikeSource: NumpyBackend._update_spikes}


def _classified(pop, kind: str, n: int, idx) -> np.ndarray:
    """``event`` / ``burst`` of neurons ``idx`` of ``pop`` at step n (after its bookkeeping)."""
    fn = B.event_now if kind == "event" else B.burst_now
    return libm(fn(n, pop.last_step[idx], pop.n_in_event[idx]))


def _append(rec, n: int, idx: np.ndarray) -> None:
    c = int(rec.n[0])
    rec.steps[c: c + idx.size] = n
    rec.idx[c: c + idx.size] = idx
    rec.n[0] = c + idx.size


BACKEND = NumpyBackend
