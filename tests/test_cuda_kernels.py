"""Every kernel compiles for Numba's CUDA target and computes there what numpy computes.

The kernel language (:mod:`dendrite_sim.core.elementwise`) promises that a model's ``step``, an
STP kernel or a synapse-rule hook written in it runs on numpy arrays, in the compiled CPU loop
and on a GPU. CI has no GPU, so this file checks the CUDA side in two ways that need none:

1. **PTX** — each case's function is compiled as a CUDA device function to PTX with
   ``numba.cuda.compile_ptx`` for compute capability 7.5 (the oldest that CUDA 13 targets), by
   NVIDIA's libNVVM from the ``nvidia-nvvm`` wheel (``numba-cuda[cu13]`` in the ``test`` extra of
   ``setup.cfg``). This is the real CUDA front end, type inference and lowering: a call Numba's
   CUDA target cannot compile (``np.exp``, a Python object, an ``if`` on an array) fails here.
   The PTX must not reference an external function (it would not link on a device).
2. **Simulator** — in a subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (the variable must be set
   before ``numba.cuda`` is first imported, hence the separate process), each function runs in a
   small kernel, one thread per element over a grid of several blocks with a partly filled last
   block, and its outputs are compared with the same function called once on whole numpy arrays.

Tolerance of (2): boolean outputs (spikes) must be equal; floating outputs may differ by at most
``1e-12 · max(1, max |reference|)``. The simulator evaluates each element with numpy *scalar*
operations, the reference with numpy *array* ufuncs (SIMD loops); both are IEEE double, and
their transcendental functions differ by at most a few ulp (2.2e-16 relative each). One step of
the models chains at most ~20 operations with cancellations of at most a factor ~100
(``v − E_L`` near rest), so a correct kernel stays below ~20 · 100 · 4.4e-16 ≈ 1e-12 of the
output's scale, while any real error (a wrong branch, a swapped argument) is many orders larger.
(On a real GPU libdevice's ``exp`` is within 2 ulp as well, so the same bound applies: run this
file as a script, ``python tests/test_cuda_kernels.py``, without ``NUMBA_ENABLE_CUDASIM`` on a
machine with a GPU; it prints the same report with ``"__mode__": "gpu"``.)

Adding a case (e.g. a synapse-rule hook): append a :class:`Case` to the list that
:func:`cuda_cases` returns — ``Case(name, fn, build)`` where ``fn`` is the elementwise function
and ``build(rng, n)`` returns its positional arguments. An argument that is a 1-d numpy array of
length ``n`` is per element (thread ``i`` gets element ``i``, with the array's dtype: float64,
int64 or bool); anything else (a float, an int, a parameter NamedTuple) is shared by all
elements and passed as is. Outputs are what ``fn`` returns: one value or a tuple of values.
:func:`synapse_rule_cases` is the place for synapse-rule hooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.core import elementwise as E
from dendrite_sim.core.elementwise import abs as e_abs
from dendrite_sim.core.elementwise import clip as e_clip
from dendrite_sim.core.elementwise import exp as e_exp
from dendrite_sim.core.elementwise import expm1 as e_expm1
from dendrite_sim.core.elementwise import log as e_log
from dendrite_sim.core.elementwise import log1p as e_log1p
from dendrite_sim.core.elementwise import maximum as e_maximum
from dendrite_sim.core.elementwise import minimum as e_minimum
from dendrite_sim.core.elementwise import pow as e_pow
from dendrite_sim.core.elementwise import select as e_select
from dendrite_sim.core.elementwise import sqrt as e_sqrt
from dendrite_sim.core.elementwise import tanh as e_tanh
from dendrite_sim.core.elementwise import where as e_where
from dendrite_sim.core.registry import available
from dendrite_sim.synapses import stp

CC = (7, 5)          # compute capability of the PTX: the oldest that CUDA 13's NVVM targets
N = 40               # elements per case
THREADS = 16         # threads per block: 3 blocks, the last one partly filled
TOL = 1e-12          # relative to max(1, max |reference|); see the module docstring
DT = 0.1             # ms


@dataclass(frozen=True)
class Case:
    """One elementwise function and the builder of its arguments (see the module docstring)."""

    name: str
    fn: Callable
    build: Callable[[np.random.Generator, int], tuple]

    def args(self, n: int = N) -> tuple:
        seed = int.from_bytes(self.name.encode(), "little") % 2**32   # fixed per case name
        return self.build(np.random.default_rng(seed), n)


def per_element(arg, n: int) -> bool:
    return isinstance(arg, np.ndarray) and arg.ndim == 1 and arg.shape[0] == n


# --------------------------------------------------------------------------- cases
def _named(name: str, fn: Callable) -> Callable:
    fn.__name__ = fn.__qualname__ = name
    return fn


def _with_nan(rng, x):
    x = x.copy()
    x[rng.choice(x.size, 3, replace=False)] = np.nan
    return x


def primitive_cases() -> list[Case]:
    """Each primitive of the kernel language, called from a small caller (as a model calls it:
    by a name imported from the kernel language, which :func:`~dendrite_sim.core.elementwise.cuda_version`
    rebinds to the primitive's CUDA lowering)."""
    u = lambda lo, hi: lambda rng, n: rng.uniform(lo, hi, n)
    return [
        Case("exp", _named("k_exp", lambda x: e_exp(x)), lambda rng, n: (rng.uniform(-30, 30, n),)),
        Case("log", _named("k_log", lambda x: e_log(x)), lambda rng, n: (rng.uniform(1e-3, 100, n),)),
        Case("expm1", _named("k_expm1", lambda x: e_expm1(x)), lambda rng, n: (rng.uniform(-1, 1, n) * 1e-3,)),
        Case("log1p", _named("k_log1p", lambda x: e_log1p(x)), lambda rng, n: (u(-0.9, 5)(rng, n),)),
        Case("sqrt", _named("k_sqrt", lambda x: e_sqrt(x)), lambda rng, n: (u(0, 100)(rng, n),)),
        Case("tanh", _named("k_tanh", lambda x: e_tanh(x)), lambda rng, n: (u(-5, 5)(rng, n),)),
        Case("power", _named("k_power", lambda x, y: e_pow(x, y)),
             lambda rng, n: (u(0.01, 10)(rng, n), u(-3, 3)(rng, n))),
        Case("absolute", _named("k_abs", lambda x: e_abs(x)), lambda rng, n: (u(-5, 5)(rng, n),)),
        Case("minimum", _named("k_minimum", lambda a, b: e_minimum(a, b)),
             lambda rng, n: (_with_nan(rng, u(-1, 1)(rng, n)), u(-1, 1)(rng, n))),
        Case("maximum", _named("k_maximum", lambda a, b: e_maximum(a, b)),
             lambda rng, n: (u(-1, 1)(rng, n), _with_nan(rng, u(-1, 1)(rng, n)))),
        Case("clip", _named("k_clip", lambda x, lo, hi: e_clip(x, lo, hi)),
             lambda rng, n: (_with_nan(rng, u(-2, 2)(rng, n)), -0.5, 1.0)),
        Case("select", _named("k_select", lambda c, a, b: (e_select(c, a, b), e_where(c, 1.0, 0.0))),
             lambda rng, n: (rng.random(n) < 0.5, u(-1, 1)(rng, n), u(-1, 1)(rng, n))),
    ]


#: spread of a neuron's state around its initial value, by unit (lo, hi): wide enough that the
#: spike, reset and refractory branches all occur among the N elements
_STATE_SPREAD = {"mV": (-25.0, 95.0), "pA": (0.0, 200.0), "1": (-1.0, 2.0)}


def _neuron_build(model) -> Callable:
    def build(rng, n):
        p = model.make_params()
        init = model.initial_state(n, p, rng)
        state = []
        for var in model.state_vars:
            unit = model.units.get(var, "1")
            if unit == "ms":               # countdowns: half at 0 (active), half running
                x = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0.0, 5.0, n))
            else:
                lo, hi = _STATE_SPREAD.get(unit, (-1.0, 1.0))
                x = init[var] + rng.uniform(lo, hi, n)
            state.append(np.asarray(x, dtype=np.float64))
        channels = [rng.uniform(0.0, 5.0, n) for _ in model.channels]
        drives = [rng.uniform(-100.0, 600.0, n) for _ in model.compartments]
        extra = [rng.uniform(0.0, 0.03, n)] if model.needs_uniform else []   # spike probs ≤ 0.02
        return (*state, *channels, *drives, *extra, p, DT)
    return build


def neuron_cases() -> list[Case]:
    """The ``step`` of every registered neuron model defined in the package.

    Models registered from elsewhere (a test's example model) are left out so that the list does
    not depend on which test modules were imported first."""
    return [Case(f"neuron:{name}", cls.step, _neuron_build(cls))
            for name, cls in sorted(available("neuron").items())
            if cls.__module__.startswith("dendrite_sim.")]


def _stp_state(rng, n):
    return rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 1.0, n)


def _maybe_zero(rng, x):
    return np.where(rng.random(x.size) < 0.3, 0.0, x)


def stp_cases() -> list[Case]:
    """The Tsodyks–Markram kernels, with per-synapse parameter arrays (all three variants mixed,
    τ = 0 and never-spiked Δ = inf among them) and with shared scalar parameters."""
    variants = lambda rng, n: rng.integers(0, 3, n).astype(np.int64)
    elapsed = lambda rng, n: np.where(rng.random(n) < 0.2, np.inf, rng.uniform(0.0, 500.0, n))
    return [
        Case("stp:rest_state", stp.stp_rest_state, lambda rng, n: (rng.uniform(0, 1, n), variants(rng, n))),
        Case("stp:relax", stp.stp_relax,
             lambda rng, n: (*_stp_state(rng, n), elapsed(rng, n), rng.uniform(0, 1, n),
                             _maybe_zero(rng, rng.uniform(10, 1000, n)), _maybe_zero(rng, rng.uniform(10, 1000, n)),
                             variants(rng, n))),
        Case("stp:relax[shared params]", stp.stp_relax,
             lambda rng, n: (*_stp_state(rng, n), elapsed(rng, n), 0.9, 20.0, 1000.0, stp.PAYEUR)),
        Case("stp:spike", stp.stp_spike,
             lambda rng, n: (*_stp_state(rng, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n), variants(rng, n))),
        Case("stp:spike[shared params]", stp.stp_spike,
             lambda rng, n: (*_stp_state(rng, n), 0.5, 0.5, stp.TSODYKS2)),
    ]


PLUGIN_RULE = Path(__file__).parent / "data" / "plugins" / "dendritic_hebb.py"


def _hook_build(rule, hook: str, params) -> Callable:
    """Arguments of ``hook`` by name: weights in [0, 1], traces in [0, 3], synapse variables in
    [−1, 1], postsynaptic voltages in [−80, −40] mV, postsynaptic spikes (30 %), the parameters of
    the rule and of its ``post_model``, and dt."""
    def build(rng, n):
        args = []
        for a in rule.hook_args(hook):
            if a == "w":
                args.append(rng.uniform(0.0, 1.0, n))
            elif a in rule.pre_traces or a in rule.post_traces:
                args.append(rng.uniform(0.0, 3.0, n))
            elif a in rule.synapse_vars:
                args.append(rng.uniform(-1.0, 1.0, n))
            elif a == "p":
                args.append(params)
            elif a == "dt":
                args.append(DT)
            elif a == "post_spiked":
                args.append(rng.random(n) < 0.3)
            elif a == "post_p":                      # the parameters of the model the rule names
                args.append(available("neuron")[rule.post_model].make_params())
            else:                                    # a variable of the postsynaptic model
                args.append(rng.uniform(-80.0, -40.0, n))
        return tuple(args)
    return build


def synapse_rule_cases() -> list[Case]:
    """Hooks of in-loop synapse rules (``on_pre``, ``on_post``, ``per_step``, trace updates):
    every synapse rule registered by the package, with each of its presets, and the user's rule
    of ``tests/data/plugins/dendritic_hebb.py`` (a per-step hook reading ``v_dend``)."""
    from dendrite_sim.core import registry

    registry.load_plugin(PLUGIN_RULE, "scenario.plugins")
    cases = []
    for name, rule in sorted(available("rule").items()):
        if not getattr(rule, "is_synapse_rule", False):
            continue
        if not (rule.__module__.startswith("dendrite_sim.") or name == "dendritic_hebb"):
            continue
        param_sets = {"default": rule.Params(), **rule.presets}
        for hook in rule.hooks():
            for pname, params in param_sets.items():
                cases.append(Case(f"rule:{name}.{hook}[{pname}]", getattr(rule, hook), _hook_build(rule, hook, params)))
    return cases


def cuda_cases() -> list[Case]:
    """Every case of this file: primitives, neuron models, STP kernels, synapse-rule hooks."""
    return primitive_cases() + neuron_cases() + stp_cases() + synapse_rule_cases()


# --------------------------------------------------------------------------- harness
def numba_type(arg, n: int):
    """The Numba type of one element (per-element arrays) or of the shared value."""
    import numba
    from numba.cuda.typing.typeof import typeof

    if per_element(arg, n):
        return numba.from_dtype(arg.dtype)
    return typeof(arg)


def reference(case: Case, args: tuple, n: int = N) -> tuple[list[np.ndarray], bool]:
    """The outputs of ``case.fn`` called once on whole numpy arrays, each of length ``n``, and
    whether ``fn`` returns a tuple."""
    with np.errstate(all="ignore"):
        out = case.fn(*args)
    many = isinstance(out, tuple)
    return [np.array(np.broadcast_to(np.asarray(o), (n,))) for o in (out if many else (out,))], many


def run_in_cuda(case: Case, args: tuple, n: int = N) -> list[np.ndarray]:
    """The outputs of ``case.fn`` run in a CUDA kernel, one thread per element (simulator or GPU)."""
    from numba import cuda

    E.register_cuda()
    ref, many = reference(case, args, n)
    dev = cuda.jit(device=True)(E.cuda_version(case.fn))
    k_out = [f"o{j}" for j in range(len(ref))]
    k_in = [f"a{j}" for j in range(len(args))]
    call = ", ".join(f"a{j}[i]" if per_element(a, n) else f"a{j}" for j, a in enumerate(args))
    lines = [f"def kernel({', '.join(k_out + k_in)}):", "    i = cuda.grid(1)", f"    if i < {n}:",
             f"        r = dev({call})"]
    if many:
        lines += [f"        o{j}[i] = r[{j}]" for j in range(len(ref))]
    else:
        lines.append("        o0[i] = r")
    scope = {"cuda": cuda, "dev": dev}
    exec("\n".join(lines), scope)
    kernel = cuda.jit(scope["kernel"])
    outs = [cuda.to_device(np.zeros(n, dtype=r.dtype)) for r in ref]
    ins = [cuda.to_device(a) if per_element(a, n) else a for a in args]
    kernel[(n + THREADS - 1) // THREADS, THREADS](*outs, *ins)
    return [o.copy_to_host() for o in outs]


def compare(got: list[np.ndarray], ref: list[np.ndarray]) -> str:
    """'' when ``got`` matches ``ref`` (see the tolerance in the module docstring), else why not."""
    if len(got) != len(ref):
        return f"{len(got)} outputs, expected {len(ref)}"
    for j, (g, r) in enumerate(zip(got, ref)):
        if r.dtype == np.bool_:
            if not np.array_equal(g.astype(bool), r):
                return f"output {j}: booleans differ at {np.flatnonzero(g.astype(bool) != r).tolist()}"
            continue
        nan = np.isnan(r)
        if not np.array_equal(np.isnan(g), nan):
            return f"output {j}: NaN at {np.flatnonzero(np.isnan(g)).tolist()}, expected {np.flatnonzero(nan).tolist()}"
        scale = max(1.0, float(np.max(np.abs(r[~nan]), initial=0.0)))
        err = float(np.max(np.abs(g[~nan] - r[~nan]), initial=0.0))
        if not err <= TOL * scale:
            return f"output {j}: max |difference| {err:.3g} > {TOL:g} · {scale:.3g}"
    return ""


def _cuda_or_skip():
    """``numba.cuda`` with libNVVM, or skip (locally) / fail (in CI) with the reason."""
    try:
        from numba import cuda
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()          # loads libNVVM; raises if it cannot be found
        return cuda
    except Exception as exc:  # ImportError, NvvmSupportError ...
        reason = (f"numba-cuda with libNVVM is not usable ({type(exc).__name__}: {exc}); "
                  "pip install -e '.[test]' installs numba-cuda[cu13]")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


CASES = cuda_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_compiles_to_ptx(case, _simulator):
    cuda = _cuda_or_skip()
    E.register_cuda()
    args = case.args()
    sig = tuple(numba_type(a, N) for a in args)
    ptx, restype = cuda.compile_ptx(E.cuda_version(case.fn), sig, device=True, cc=CC)
    assert ".visible .func" in ptx
    assert ".extern .func" not in ptx, f"{case.name}: PTX calls an external function"
    ref, many = reference(case, args)
    assert (len(restype) if many else 1) == len(ref)


# --------------------------------------------------------------------------- simulator
_SCRIPT = Path(__file__).resolve()


@pytest.fixture(scope="module")
def _simulator():
    """The simulator subprocess, started once (it runs while the PTX tests compile)."""
    root = str(_SCRIPT.parents[1])         # this checkout's package, whatever is installed
    path = os.pathsep.join([root, os.environ["PYTHONPATH"]]) if os.environ.get("PYTHONPATH") else root
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": path}
    proc = subprocess.Popen([sys.executable, str(_SCRIPT)], env=env, cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def simulator_report(_simulator):
    _cuda_or_skip()
    try:
        out, err = _simulator.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        _simulator.kill()
        out, err = _simulator.communicate()
        pytest.fail(f"CUDA simulator run timed out; stderr:\n{err[-3000:]}")
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if _simulator.returncode != 0 or not lines:
        pytest.fail(f"CUDA simulator run failed (exit {_simulator.returncode}):\n{err[-3000:]}")
    return json.loads(lines[-1])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cuda_simulator_matches_numpy(case, simulator_report):
    assert simulator_report.get("__mode__") == "simulator"
    assert case.name in simulator_report, f"{case.name} did not run in the simulator"
    assert simulator_report[case.name] == "", f"{case.name}: {simulator_report[case.name]}"


def test_every_builtin_model_and_stp_kernel_has_a_case():
    names = {c.name for c in CASES}
    import dendrite_sim.neurons as pkg

    models = {n for n, cls in available("neuron").items() if cls.__module__.startswith(pkg.__name__)}
    assert {f"neuron:{m}" for m in models} <= names
    assert {"stp:rest_state", "stp:relax", "stp:spike"} <= names


def main() -> None:
    """Run every case in CUDA (the simulator under ``NUMBA_ENABLE_CUDASIM=1``, else the GPU) and
    print one JSON line: case name → '' (matches numpy) or the reason it does not."""
    from numba.cuda.core import config

    report = {"__mode__": "simulator" if config.ENABLE_CUDASIM else "gpu"}
    for case in cuda_cases():
        args = case.args()
        try:
            report[case.name] = compare(run_in_cuda(case, args), reference(case, args)[0])
        except Exception as exc:  # report, do not stop: the other cases still tell something
            report[case.name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(report))


if __name__ == "__main__":
    main()
