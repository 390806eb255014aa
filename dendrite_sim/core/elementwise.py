"""The kernel language: the elementwise primitives that neuron models and synapse kernels may use.

A model's ``step``, an STP kernel or a synapse-rule hook is written once and runs on three
targets. Each primitive below is one Python function with one lowering per target:

=============  ==================================  ===================================  ==================
primitive      numpy arrays (reference backend)    Numba CPU (fused loop, scalars)      Numba CUDA
=============  ==================================  ===================================  ==================
exp            :func:`exp`'s own operations        the same function, compiled and      ``math.exp``
               (range reduction + polynomial)      inlined (vectorisable)               (libdevice)
log, expm1,    ``np.log`` … (the ufunc itself)     ``np.log`` … inlined into the        ``math.log`` …
log1p, sqrt,                                       caller's IR (``inline="always"``)    (libdevice)
tanh
power (pow)    ``np.power``                        ``np.power``                         ``math.pow``
absolute (abs) ``np.absolute``                     ``np.absolute``                      ``abs``
minimum,       ``np.minimum``, ``np.maximum``      ``np.minimum``, ``np.maximum``       branch-free
maximum                                                                                 compare + select
clip           ``minimum(maximum(x, lo), hi)``     same                                 same
select (where) ``np.where(cond, a, b)``            ``a if cond else b``                 ``a if cond else b``
=============  ==================================  ===================================  ==================

Why each lowering is what it is:

* **numpy**: calling the numpy ufunc keeps the reference backend's :class:`LibmArray` shim in
  charge (``dendrite_sim.engine.backends.numpy``): a ufunc called on such an array is routed
  element by element to the C library, which is what compiled Numba code calls, so numpy and
  numba results stay bit-identical.
* **exp** is written out (:func:`exp`: arithmetic, ``floor`` and a bit cast) instead of calling
  the C library, because compiled code cannot vectorise a loop that calls ``exp`` and neuron
  updates spend most of their time there; numpy and Numba run the same operations, so they
  stay bit-identical, and the result is within 1 ulp of the C library's.
* **Numba CPU**: the overload's body is ``np.log(x)`` (etc.) — the very call the models made
  before this module existed — and it is inlined at the Numba IR level (``inline="always"``), so it is
  lowered inside the caller with the caller's ``fastmath`` and ``error_model`` flags. The
  generated machine code, and hence every result, is the same as calling ``np.exp`` directly;
  the fused loop loses no speed. ``select`` keeps its scalar branch as a small cached function
  that LLVM inlines (a ``select`` instruction), as before.
* **CUDA**: Numba's CUDA target supports no numpy ufuncs in device code, so each primitive is
  lowered to its ``math`` function (libdevice). The lowering is registered with the CUDA
  target's own typing and lowering registries (numba-cuda keeps them apart from the CPU's) as
  ``type_callable`` + ``lower_builtin`` pairs that compile a tiny ``math``-based body inline.
  Unlike an ``@overload`` for the CUDA target this needs no GPU: ``numba.cuda.compile_ptx``
  compiles a model to PTX on a machine without a driver (the CI test does exactly that). Call
  :func:`register_cuda` once before compiling for CUDA (it imports ``numba.cuda``, about 1 s,
  which is why importing this module does not do it unless ``numba.cuda`` is already loaded).
  In Numba's CUDA *simulator* (``NUMBA_ENABLE_CUDASIM=1``) kernels run as Python, so the numpy
  lowering is used on numpy scalars and :func:`register_cuda` does nothing.

Semantics every target shares: IEEE double arithmetic as written (no reassociation unless the
caller asks for ``fastmath``); ``minimum``/``maximum``/``clip`` propagate NaN as numpy does;
``clip(x, lo, hi) = minimum(maximum(x, lo), hi)`` (``np.clip``'s result for ``lo <= hi``);
``select(cond, a, b)`` evaluates both ``a`` and ``b`` (write ``select(ok, x / select(ok, y,
1.0), 0.0)`` to keep a division by zero out of the unused branch, as ``synapses/stp.py`` does).

Models combine boolean conditions with ``&``, ``|`` and ``~`` (not ``and``/``or``), which work
on arrays and on scalars on every target.

Adding a primitive: a Python function calling the numpy ufunc, an entry in :data:`_CPU_UFUNC`
(or its own ``@overload``), a ``math``-based body in :data:`_CUDA` with its typing kind, and a
line in ``tests/test_cuda_kernels.py``'s primitive case list.
"""

from __future__ import annotations

import builtins
import math
import sys
import types as pytypes

import numpy as np
from llvmlite import ir as llvm_ir
from numba import types
from numba.extending import intrinsic, overload

__all__ = ["exp", "log", "expm1", "log1p", "sqrt", "tanh", "power", "pow", "absolute", "abs",
           "minimum", "maximum", "clip", "select", "where", "register_cuda"]


# ----------------------------------------------------------------------------- numpy (and Python)
#: exp's argument range: above ``EXP_MAX`` e**x overflows (inf), below ``EXP_MIN`` it rounds to 0.
EXP_MAX = 709.782712893384
EXP_MIN = -745.1332191019412
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01     # ln 2 to 32 significant bits: k · _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10     # ln 2 − _LN2_HI
#: q(r) = (e^r − 1 − r)/r² on |r| ≤ ½ ln 2: degree-9 Chebyshev fit (mpmath.chebyfit, 40 digits;
#: fit error 1.1e-16, i.e. < 1.3e-17 relative in e^r), highest power first (Horner)
_EXP_Q = (2.510038549551032e-08, 2.7620088445409746e-07, 2.7557268459997064e-06, 2.4801521295954376e-05,
          0.00019841269863053618, 0.0013888888917213717, 0.008333333333330062, 0.04166666666662413,
          0.16666666666666669, 0.5000000000000001)


def bits_to_float(i):
    """The float64 whose IEEE-754 bits are the int64 ``i`` (a bit cast, elementwise)."""
    return np.asarray(i, dtype=np.int64).view(np.float64)


def to_int64(x):
    """Float to int64, truncating toward zero, elementwise (for integral values: exact)."""
    return np.asarray(x).astype(np.int64)


def exp(x):
    """e**x elementwise, the same IEEE arithmetic on every CPU target (and vectorisable).

    Range reduction x = k ln 2 + r with k = ⌊x log₂e + ½⌋, |r| ≤ ½ ln 2 (Cody & Waite 1980:
    ln 2 split in two so that k · ln2_hi is exact), then e^r = 1 + (r + r² q(r)) with q a
    degree-9 polynomial fitted to (e^r − 1 − r)/r² (Chebyshev fit, error < 1.3e-17 relative in
    e^r; the Taylor series would need degree 11 for the same) in Horner form, and the scale
    2^k applied as two exact powers of two 2^⌊k/2⌋ · 2^(k−⌊k/2⌋) built from their exponent
    bits (so results that are subnormal or close to overflow are rounded once). x > EXP_MAX
    gives inf, x < EXP_MIN 0, NaN gives NaN.

    Measured against the C library on 4·10⁶ points over the whole range (tests/test_exp.py):
    at most 1 ulp apart, 89 % identical. Why not the C library's ``exp``: compiled Numba code
    cannot vectorise a call to it (no vector math library in llvmlite), and a model's update
    loop spent most of its time there (PYR-STP-4000: the update phase 24.4 → 19.9 µs per step).
    Written once: numpy evaluates these operations on arrays and Numba compiles the same
    function for the fused CPU loop, so both backends get bit-identical results. CUDA device
    code calls libdevice's ``exp`` (within 1–2 ulp of both; tests/test_cuda_kernels.py).
    Under ``fastmath`` (a network's opt-in) LLVM may reassociate the reduction: measured up to
    ≈ 200 ulp (4e-14 relative) for |x| < 708, inf instead of the largest finite results above
    x ≈ 708.4, and NaN not propagated.
    """
    with np.errstate(over="ignore"):       # above EXP_MAX the result is inf, as documented
        y = _exp(x)
    return y[()] if isinstance(y, np.ndarray) and y.ndim == 0 and not isinstance(x, np.ndarray) else y


def _exp(x):
    """:func:`exp`'s operations (numpy runs them on arrays, Numba compiles them for scalars)."""
    xc = select(x < 709.79, x, 709.79)              # keeps k in range; NaN → 709.79, fixed below
    xc = select(xc > -745.2, xc, -745.2)
    k = np.floor(xc * _LOG2E + 0.5)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    c = _EXP_Q
    q = ((((((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) * r + c[6]) * r + c[7])
         * r + c[8]) * r + c[9]
    y = 1.0 + (r + r * r * q)
    ki = to_int64(k)
    k1 = ki >> 1
    y = y * bits_to_float((k1 + 1023) << 52) * bits_to_float((ki - k1 + 1023) << 52)
    y = select(x > EXP_MAX, np.inf, select(x < EXP_MIN, 0.0, y))
    return select(x != x, x, y)


def log(x):
    """Natural logarithm elementwise."""
    return np.log(x)


def expm1(x):
    """e**x − 1 elementwise, accurate for small x."""
    return np.expm1(x)


def log1p(x):
    """ln(1 + x) elementwise, accurate for small x."""
    return np.log1p(x)


def sqrt(x):
    """Square root elementwise."""
    return np.sqrt(x)


def tanh(x):
    """Hyperbolic tangent elementwise."""
    return np.tanh(x)


def power(x, y):
    """x**y elementwise (floating point)."""
    return np.power(x, y)


def absolute(x):
    """|x| elementwise."""
    return np.absolute(x)


def minimum(a, b):
    """Elementwise minimum; NaN if either is NaN."""
    return np.minimum(a, b)


def maximum(a, b):
    """Elementwise maximum; NaN if either is NaN."""
    return np.maximum(a, b)


def clip(x, lo, hi):
    """``minimum(maximum(x, lo), hi)`` elementwise (NaN propagates)."""
    return np.minimum(np.maximum(x, lo), hi)


def select(cond, a, b):
    """Elementwise ``a if cond else b`` (numpy: ``np.where``; compiled code: a scalar branch)."""
    return np.where(cond, a, b)


where = select
pow = power          # the kernel language's names (they shadow the builtins where imported)
abs = absolute


# ----------------------------------------------------------------------------- Numba CPU
#: primitive → the numpy call its CPU overload inlines (``np.exp(x)`` in the caller's IR).
_CPU_UFUNC = {log: np.log, expm1: np.expm1, log1p: np.log1p, sqrt: np.sqrt,
              tanh: np.tanh, power: np.power, absolute: np.absolute, minimum: np.minimum,
              maximum: np.maximum}


def _register_cpu_ufunc(fn, ufunc) -> None:
    if fn in (power, minimum, maximum):
        def typer(x, y):
            return lambda x, y: ufunc(x, y)
    else:
        def typer(x):
            return lambda x: ufunc(x)
    overload(fn, inline="always", target="cpu")(typer)


for _fn, _ufunc in _CPU_UFUNC.items():
    _register_cpu_ufunc(_fn, _ufunc)


@intrinsic
def _bitcast_f64(typingctx, i):
    sig = types.float64(types.int64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())

    return sig, codegen


@overload(bits_to_float, inline="always", target="cpu")
def _bits_to_float_cpu(i):
    if isinstance(i, types.Integer):
        return lambda i: _bitcast_f64(i)
    return None


@overload(to_int64, inline="always", target="cpu")
def _to_int64_cpu(x):
    if isinstance(x, types.Float):
        return lambda x: np.int64(x)
    return None


@overload(exp, inline="always", target="cpu")
def _exp_cpu(x):
    if isinstance(x, (types.Float, types.Integer)):
        return _exp                      # the very function above, compiled for a scalar
    if isinstance(x, types.Array):       # (arrays in compiled code: the scalar version per element)
        def impl(x):
            out = np.empty(x.shape, dtype=np.float64)
            for idx in np.ndindex(x.shape):
                out[idx] = exp(x[idx])
            return out
        return impl
    return None


@overload(clip, inline="always", target="cpu")
def _clip_cpu(x, lo, hi):
    return lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)


@overload(select, jit_options={"cache": True}, target="cpu")
def _select_cpu(cond, a, b):
    from numba import types

    if any(isinstance(t, types.Array) for t in (cond, a, b)):
        return lambda cond, a, b: np.where(cond, a, b)

    def impl(cond, a, b):
        return a if cond else b

    return impl


# ----------------------------------------------------------------------------- Numba CUDA
def _cuda_select(cond, a, b):
    return a if cond else b


def _cuda_minimum(a, b):
    return a if (a < b or a != a) else b


def _cuda_maximum(a, b):
    return a if (a > b or a != a) else b


def _cuda_clip(x, lo, hi):
    y = x if (x > lo or x != x) else lo
    return y if (y < hi or y != y) else hi


#: primitive → (typing kind, ``math``-based body compiled inline in CUDA device code). Kinds:
#: "float1" (one number → float of its width), "float2", "same1" (|x| keeps the type), "unify2",
#: "unify3" (result of the common type), "select" (common type of a and b).
_CUDA = {
    exp: ("float1", lambda x: math.exp(x)),
    log: ("float1", lambda x: math.log(x)),
    expm1: ("float1", lambda x: math.expm1(x)),
    log1p: ("float1", lambda x: math.log1p(x)),
    sqrt: ("float1", lambda x: math.sqrt(x)),
    tanh: ("float1", lambda x: math.tanh(x)),
    power: ("float2", lambda x, y: math.pow(x, y)),
    absolute: ("same1", lambda x: builtins.abs(x)),   # the builtin, not this module's alias
    minimum: ("unify2", _cuda_minimum),
    maximum: ("unify2", _cuda_maximum),
    clip: ("unify3", _cuda_clip),
    select: ("select", _cuda_select),
}
_cuda_registered = False


def _make_twin(fn):
    def twin(*args):
        raise TypeError(f"{twin.__name__} exists only inside CUDA device code")
    twin.__name__ = twin.__qualname__ = f"cuda_{fn.__name__}"
    return twin


#: primitive → its CUDA twin: a distinct function object that only the CUDA registries know.
#: The CPU overloads of a primitive are registered for every target and, once the CPU has
#: compiled a caller, its resolution would be reused by CUDA typing; kernels are therefore
#: compiled for CUDA as :func:`cuda_version`, which calls the twins.
_CUDA_TWIN = {fn: _make_twin(fn) for fn in _CUDA}
_CUDA_ARITY = {"float1": 1, "same1": 1, "float2": 2, "unify2": 2, "unify3": 3, "select": 3}
_CUDA_VERSIONS: dict = {}


def cuda_version(fn):
    """``fn`` (a model step, an STP kernel, a synapse-rule hook or a primitive) as it is compiled
    for Numba's CUDA target: the same code with every kernel-language primitive it names
    replaced by its CUDA lowering (``math.*``). Registers the lowerings on first use."""
    register_cuda()
    if _in_simulator():                        # the simulator runs kernels as Python: as they are
        return fn
    if fn in _CUDA_VERSIONS:
        return _CUDA_VERSIONS[fn]
    if fn in _CUDA_TWIN:                       # a primitive itself: a wrapper of its twin
        twin, n = _CUDA_TWIN[fn], _CUDA_ARITY[_CUDA[fn][0]]
        names = ", ".join("xyz"[:n])
        ns = {"_twin": twin}
        exec(f"def {fn.__name__}({names}):\n    return _twin({names})\n", ns)
        out = ns[fn.__name__]
    else:
        twins = {id(k): v for k, v in _CUDA_TWIN.items()}
        glb = dict(fn.__globals__)
        glb.update({name: twins[id(v)] for name, v in fn.__globals__.items() if id(v) in twins})
        out = pytypes.FunctionType(fn.__code__, glb, fn.__name__, fn.__defaults__, fn.__closure__)
        out.__qualname__ = fn.__qualname__
    _CUDA_VERSIONS[fn] = out
    return out


def _in_simulator() -> bool:
    from numba.cuda.core import config as cuda_config

    return bool(cuda_config.ENABLE_CUDASIM)


def register_cuda() -> None:
    """Register the CUDA lowerings of every primitive (idempotent; needs ``numba-cuda``).

    The lowerings belong to the primitives' CUDA twins: compile :func:`cuda_version` of a
    kernel (``cuda.jit``, ``cuda.compile_ptx``), which calls this. Does nothing in the CUDA
    simulator, where kernels run as Python.
    """
    global _cuda_registered
    if _cuda_registered:
        return
    from numba import cuda  # noqa: F401 - raises ImportError with install advice if absent
    from numba.cuda.core import config as cuda_config

    if cuda_config.ENABLE_CUDASIM:
        _cuda_registered = True
        return
    from numba.cuda import types
    from numba.cuda.core.imputils import lower_builtin
    from numba.cuda.extending import type_callable

    def as_float(t):
        if isinstance(t, types.Float):
            return t
        if isinstance(t, (types.Integer, types.Boolean)):
            return types.float64
        return None

    def make_typer(kind):
        def typing(context):
            def numbers(*ts):
                return all(isinstance(t, (types.Number, types.Boolean)) for t in ts)

            if kind == "float1":
                def typer(x):
                    return as_float(x) if numbers(x) else None
            elif kind == "same1":
                def typer(x):
                    return x if numbers(x) else None
            elif kind == "float2":
                def typer(x, y):
                    return as_float(context.unify_pairs(x, y)) if numbers(x, y) else None
            elif kind == "unify2":
                def typer(a, b):
                    return context.unify_pairs(a, b) if numbers(a, b) else None
            elif kind == "unify3":
                def typer(x, lo, hi):
                    return context.unify_types(x, lo, hi) if numbers(x, lo, hi) else None
            else:  # select: any condition that converts to bool, the common type of a and b
                def typer(cond, a, b):
                    return context.unify_pairs(a, b)
            return typer
        return typing

    def make_lowering(body):
        def lower(context, builder, sig, args):
            return context.compile_internal(builder, body, sig, args)
        return lower

    arity = {"float1": 1, "same1": 1, "float2": 2, "unify2": 2, "unify3": 3, "select": 3}
    for fn, (kind, body) in _CUDA.items():
        twin = _CUDA_TWIN[fn]
        type_callable(twin)(make_typer(kind))
        lower_builtin(twin, *([types.Any] * arity[kind]))(make_lowering(body))
    _cuda_registered = True


if "numba.cuda" in sys.modules:      # a CUDA user imported numba.cuda first: register now
    register_cuda()
