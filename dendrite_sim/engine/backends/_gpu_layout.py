"""The GPU kernel's arguments in device memory: packing and batch offsets (:class:`Layout`).

A kernel's parameters are limited to 32 KiB (about 580 array arguments in Numba's layout), so
:mod:`dendrite_sim.engine.backends.cupy` passes its 1-D arrays packed, one device array (an
*arena*) per (kind, dtype), and rewrites the generated source to index them. For a batch of
instances of one structure (ensembles) the same rewrite gives every argument its instance's
offset; what is equal in every instance stays one copy. Used by the cupy backend only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dendrite_sim.core.errors import ScenarioError

# kinds of kernel arguments
SCALAR, CONST, STATE, MONITOR = "scalar", "const", "state", "monitor"

@dataclass
class _Arena:
    kind: str
    dtype: np.dtype
    members: list                # (argument name, offset, size)
    size: int = 0                # per instance
    batched: bool = False        # one block of ``size`` per instance of a batch
    buf: np.ndarray | None = None
    key: tuple = ()


_GROWS = re.compile(r"^sm\d+_.*__(spikes|events|bursts)_(step|idx)$")   # spike records: they grow
_GLOBAL = ("halt",)              # one value for a whole batch: the halt flag
BLEN = "batch_len"               # per-instance lengths of the arrays whose length differs in a batch
_REFS = re.compile(r"cuda\.atomic\.add\((\w+), (\(?)|\b(\w+)\.shape\[0\]|\b(\w+)\[|\b([A-Za-z_]\w*)\b")


def _all_equal(kind: str, vals: list) -> bool:
    v0 = vals[0]
    try:
        if kind == SCALAR:
            return all(bool(v == v0) for v in vals[1:])
        h0 = np.asarray(v0)
        return all(np.asarray(v).shape == h0.shape and np.asarray(v).dtype == h0.dtype and np.array_equal(v, h0)
                   for v in vals[1:])
    except (ValueError, TypeError):           # a record holding arrays: not comparable as a whole
        return False


class Layout:
    """The kernel's arguments with the 1-D arrays packed into one device array per (kind,
    dtype): a kernel's parameters are limited to 32 KiB (about 580 array arguments in Numba's
    layout), and one copy per arena is cheaper than one per array. The generated source is
    rewritten accordingly (``pyr__v_soma[i]`` → ``arena_state_d[1024 + i]``); arrays that grow
    (spike records), 2-D arrays and arrays passed whole to a device function stay arguments.

    **Batch offsets.** With the emitters of ``nb`` instances of one structure (``nb > 0``), the
    same rewrite gives every argument its instance ``b`` (the loops' index, :class:`Emitter`):

    * an argument equal in every instance (the structure of instances built alike: CSR,
      delays, Poisson tables, parameters, keys of equal seeds) stays one copy, unchanged;
    * a batched 1-D array is a block of its arena per instance: ``arenab_state_d[b·S + off + i]``
      with S the arena's size per instance, each member sized by its largest instance (shorter
      ones padded with their last value), so connectivity may differ per instance;
    * any other array gets a leading axis, padded likewise: ``x[c, i]`` → ``x[b, c, i]``,
      atomics ``(b, slot, i)``, an array passed whole ``x`` → ``x[b]``;
    * ``x.shape[0]`` is the literal length, ``x.shape[1]`` of a stacked array, or, where the
      instances' lengths differ (spike-record capacity, a schedule), ``batch_len[b·K + k]``;
    * a scalar that differs is one value per instance, ``key`` → ``key[b]`` (a device array,
      or a tuple of records for a record such as a model's parameters).

    Shared arguments are checked equal at every launch (:meth:`check_shared`). With chunk rules
    (``volatile``), projection weights are batched: the rules change them per instance."""

    def __init__(self, emitters, nb: int = 0, volatile: bool = False):
        self.es = list(emitters) if isinstance(emitters, (list, tuple)) else [emitters]
        self.e = self.es[0]
        self.nb = nb
        self.volatile = volatile
        self.arenas: dict[str, _Arena] = {}
        self.where: dict[str, tuple[str, int, int]] = {}
        self.arg_names: list[str] = list(self.e.args)
        self.batched: set[str] = set()
        self.lens: dict[str, int] = {}
        self._checked: dict[str, tuple] = {}

    def values(self, name: str) -> list:
        """Argument ``name`` of every instance."""
        return [em.args[name].getter() for em in self.es]

    def _shared(self, a, vals: list) -> bool:
        if not self.nb or a.name in _GLOBAL:
            return True
        if a.kind == SCALAR:
            return _all_equal(SCALAR, vals)
        if a.kind != CONST or (self.volatile and a.name.endswith("__w")):
            return False
        return _all_equal(CONST, vals)

    def pack(self, src: str) -> str:
        from collections import Counter

        head, sep, body = src.partition("):\n")
        total = Counter(re.findall(r"\b\w+\b", body))
        handled = Counter(re.findall(r"\b(\w+)\[", body))
        shaped = set(re.findall(r"\b(\w+)\.shape\[0\]", body))
        handled.update(re.findall(r"\b(\w+)\.shape\[0\]", body))
        handled.update(re.findall(r"cuda\.atomic\.add\((\w+), ", body))
        for a in self.e.args.values():
            vals = self.values(a.name) if self.nb else [a.getter()]
            if not self._shared(a, vals):
                self.batched.add(a.name)
            if a.kind == SCALAR:
                continue
            hosts = [np.asarray(v) for v in vals]
            if a.name in shaped and len({h.shape[0] if h.ndim else 1 for h in hosts}) > 1:
                self.lens[a.name] = len(self.lens)
            if a.kind not in (CONST, STATE) or _GROWS.match(a.name):
                continue
            v = hosts[0]
            if any(h.ndim != 1 for h in hosts) or total[a.name] == 0 or total[a.name] != handled[a.name]:
                continue
            batched = a.name in self.batched
            arena = f"arena{'b' if batched else ''}_{a.kind}_{v.dtype.name}"
            ar = self.arenas.setdefault(arena, _Arena(a.kind, v.dtype, [], batched=batched))
            off, n = ar.size, max(h.size for h in hosts)
            ar.members.append((a.name, off, n))
            ar.size += max(1, n)
            self.where[a.name] = (arena, off, n)
        K = len(self.lens)

        def repl(m):
            atom, paren, shape, index, bare = m.groups()
            name = atom or shape or index or bare
            if shape and name in self.lens:
                return f"{BLEN}[b * {K} + {self.lens[name]}]"
            if name in self.where:
                arena, off, n = self.where[name]
                ar = self.arenas[arena]
                base = f"b * {ar.size} + {off}" if ar.batched else str(off)
                if atom:
                    return f"cuda.atomic.add({arena}, {base} + {paren}"
                if shape:
                    return str(n)
                return f"{arena}[{base} + " if index else m.group(0)
            if name not in self.batched:
                return m.group(0)
            if atom:
                if not paren:
                    raise AssertionError(f"batched atomic on {name} needs a tuple index")
                return f"cuda.atomic.add({name}, (b, "
            if shape:
                return f"{name}.shape[1]"
            return f"{name}[b, " if index else f"{name}[b]"

        body = _REFS.sub(repl, body)
        self.arg_names = ([n for n in self.e.args if n not in self.where] + list(self.arenas)
                          + ([BLEN] if self.lens else []))
        head = head[: head.index("def run_chunk(")] + "def run_chunk(step0, n_steps, dt, " + ", ".join(self.arg_names)
        return head + sep + body

    # ------------------------------------------------------------------ host values
    def gather(self, arena: str) -> np.ndarray:
        """The host buffer of ``arena`` filled from its members (of every instance if batched;
        the same object every call; constant arenas are refilled only when a member array was
        replaced, or with ``refresh_const``)."""
        ar = self.arenas[arena]
        es = self.es if ar.batched else self.es[:1]
        hosts = [[np.asarray(em.args[name].getter()) for name, _, _ in ar.members] for em in es]
        key = tuple(id(h) for hs in hosts for h in hs)
        if ar.buf is None:
            ar.buf = np.zeros(ar.size * len(es), dtype=ar.dtype)
        elif ar.kind == CONST and key == ar.key and not any(em.refresh_const for em in self.es):
            return ar.buf
        if ar.kind == CONST and ar.key:
            ar.buf = np.zeros(ar.size * len(es), dtype=ar.dtype)       # a new object: uploaded again
        S = ar.size
        for b, hs in enumerate(hosts):
            for (_name, off, n), h in zip(ar.members, hs):
                blk = ar.buf[b * S + off: b * S + off + n]
                blk[: h.size] = h.ravel()
                if 0 < h.size < n:
                    blk[h.size:] = h.ravel()[-1]
        ar.key = key
        return ar.buf

    def scatter(self, arena: str, buf: np.ndarray) -> None:
        ar = self.arenas[arena]
        for b, em in enumerate(self.es if ar.batched else self.es[:1]):
            for name, off, _n in ar.members:
                h = np.asarray(em.args[name].getter())
                if h.size:
                    h[...] = buf[b * ar.size + off: b * ar.size + off + h.size].reshape(h.shape)

    def lengths(self) -> np.ndarray:
        """``batch_len``: per instance, the length of each array whose length differs."""
        out = np.zeros(max(1, self.nb * len(self.lens)), dtype=np.int64)
        for name, k in self.lens.items():
            for b, v in enumerate(self.values(name)):
                out[b * len(self.lens) + k] = np.asarray(v).shape[0]
        return out

    @staticmethod
    def per_instance(vals: list):
        """A scalar that differs: a tuple of records, else an array of one value per instance."""
        return tuple(vals) if isinstance(vals[0], tuple) else np.asarray(vals)

    @staticmethod
    def stack(vals: list) -> np.ndarray:
        """Arrays of the instances along a leading axis, each padded to the largest (1-D ones
        with their last value, so an array passed whole keeps its meaning)."""
        hs = [np.asarray(v) for v in vals]
        shape = tuple(max(1, *dims) for dims in zip(*(h.shape for h in hs)))
        out = np.zeros((len(hs),) + shape, dtype=hs[0].dtype)
        for b, h in enumerate(hs):
            out[(b,) + tuple(slice(0, d) for d in h.shape)] = h
            if h.ndim == 1 and 0 < h.size < shape[0]:
                out[b, h.size:] = h[-1]
        return out

    @staticmethod
    def unstack(host: np.ndarray, vals) -> None:
        for b, v in enumerate(vals):
            h = np.asarray(v)
            if h.size:
                h[...] = host[(b,) + tuple(slice(0, d) for d in h.shape)]

    def check_shared(self) -> None:
        """In a batch, the arguments kept as one copy must still be equal in every instance
        (they were when the batch was built; a constant array is checked when replaced)."""
        if not self.nb:
            return
        for a in self.e.args.values():
            if a.name in self.batched or a.name in _GLOBAL or a.kind not in (SCALAR, CONST):
                continue
            vals = self.values(a.name)
            if a.kind == CONST:
                old = self._checked.get(a.name)
                if old is not None and all(x is y for x, y in zip(old, vals)):
                    continue
                self._checked[a.name] = tuple(vals)
            if not _all_equal(a.kind, vals):
                raise ScenarioError("ensemble", f"expected {a.name} to stay equal in every instance of a GPU batch "
                                    "(it was when the batch was built), got different values; build the "
                                    "ensemble again after changing it")
