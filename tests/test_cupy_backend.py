"""The ``cupy`` (GPU) backend runs what the numpy reference runs: same spikes, voltages within
a stated tolerance.

CI has no GPU, so the generated kernel runs in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``
must be set before ``numba.cuda`` is imported, hence a subprocess, started once: this file run
as a script), with one block of 32 threads (the simulator's grid barrier supports one block;
all loops are grid-stride, so the code path is the one a GPU runs with many blocks). Two small
networks, 30–40 steps each:

* **models** — a population of every built-in neuron model (exact and euler channel decay),
  Poisson inputs on every channel, a Poisson source and a spike generator projecting with
  shared and heterogeneous STP and multi-step delays, recurrence, array drives, bursts,
  state and spike monitors — the spike monitor's buffer made so small that the kernel must
  halt mid-chunk for the host to grow it (the CPU loop's early return);
* **rules** — every built-in synapse rule with an in-loop face (triplet STDP with ``on_pre`` /
  ``on_post`` / trace hooks, burstprop's ``on_post`` with event traces, Urbanczik–Senn's and
  AGREL's ``per_step``), and a chunk rule (``local_factors``) changing a static projection's
  weights between chunks of 1 ms.

Tolerance: spikes, events and bursts (times and neurons), spike counts and integer state equal;
every float array within ``1e-9 · max(1, |reference|)``. Where the sum of a ring slot's atomic
additions is taken in another order the channel differs by rounding (≈1e-16 per addition); on
a GPU libdevice's ``exp`` differs from the C library's by ≤ 2 ulp, so a short non-chaotic run
stays many orders below 1e-9 (measured in the simulator: 0 to 1e-22 absolute).

Without the simulator and without a device, ``backend = "cupy"`` fails at construction with one
``ScenarioError`` line (key ``backend``; ``simulation.backend`` in a scenario, which
``dendrite-sim check`` prints as one ``error:`` line). With a device (CuPy, or numba-cuda with a driver), the same two networks
run on it in this process (skipped here); ``scripts/gpu_check.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import LearningRule, LocalFactors
from dendrite_sim.engine.network import Network

RTOL = 1e-9
_SCRIPT = Path(__file__).resolve()


# --------------------------------------------------------------------------- networks
def models_net(backend: str, seed: int = 5):
    net = Network(dt=0.1, seed=seed, backend=backend)
    net.poisson_group("src", 12, rate=80.0, bursts=True)
    net.spike_generator("gen", 3, times=[0.1, 0.3, 0.3, 1.2, 2.0, 2.5], indices=[0, 1, 2, 0, 1, 2],
                        bursts=True)
    names = [n for n, c in sorted(registry.available("neuron").items()) if c.__module__.startswith("dendrite_sim.")]
    mons, trs = [], []
    for q, model in enumerate(names):
        cls = registry.get("neuron", model)
        n = 6
        net.population(model, n, model, channel_method="euler" if q % 2 else "exact")
        chans = list(cls.channels)
        for c, ch in enumerate(chans):
            net.poisson_input(model, ch, 40, 20.0, 2.0)
            net.projection("src", model, ch, "fixed_probability", p=0.5, weight=3.0, delay=0.1 * (c + 1),
                           stp="payeur_std" if c == 0 else None)
        net.projection("gen", model, chans[0], "all_to_all", weight=20.0, delay=0.3,
                       stp=[{"preset": "depressing"}, {"preset": "facilitating"}] * 3 * 3 if False else "facilitating")
        net.projection(model, model, chans[0], "fixed_probability", p=0.4, weight=4.0, delay=0.2, stp="payeur_stf")
        net.current(model, cls.compartments[0], bias=np.linspace(0.0, 1500.0, n))
        if len(cls.compartments) > 1:
            net.current(model, cls.compartments[-1], array=np.linspace(0.0, 400.0, 20), array_dt=0.2)
        mons.append(net.spike_monitor(model))
        trs.append(net.state_monitor(model, [cls.state_vars[0], chans[0], f"I_{cls.compartments[0]}",
                                             "burst_prob"], neurons=[0, n - 1], every=0.2))
    # heterogeneous STP (state and parameters per synapse)
    from dendrite_sim.synapses import stp as stpmod

    net.projection("gen", "lif", "exc", "all_to_all", weight=30.0, delay=0.4, name="het",
                   stp=stpmod.stack_params([stpmod.preset(k) for k in ("depressing", "facilitating", "payeur_stf")] * 6))
    src = net.spike_monitor("src")
    src.spikes = type(src.spikes)(src.pop.n + 2)     # tiny buffer: the kernel halts, the host grows it
    mons.append(src)
    mons.append(net.spike_monitor("gen"))
    return net, mons, trs


def rules_net(backend: str, seed: int = 3):
    net = Network(dt=0.1, seed=seed, backend=backend)
    ns = registry.get("neuron", "naud_sprekeler")
    net.population("E", 16, "naud_sprekeler")
    net.poisson_group("src", 12, rate=60.0, bursts=True)
    net.spike_generator("gen", 4, times=[0.2, 0.5, 0.5, 1.0, 2.1], indices=[0, 1, 2, 3, 0])
    ch = list(ns.channels)
    net.projection("src", "E", ch[0], "fixed_probability", p=0.5, weight=0.5, name="stdp",
                   plasticity={"rule": "stdp", "preset": "visual_nearest", "w_max": 100.0})
    net.projection("gen", "E", ch[0], "all_to_all", weight=0.9, delay=0.2, name="gen_e",
                   plasticity={"rule": "stdp", "preset": "pair"})
    net.projection("src", "E", ch[-1], "fixed_probability", p=0.5, weight=20.0, name="bp",
                   plasticity={"rule": "burstprop_spiking"})
    net.current("E", "soma", bias=np.linspace(600.0, 3000.0, 16))
    net.current("E", ns.compartments[-1], bias=600.0)
    us = registry.get("neuron", "urbanczik_senn")
    net.population("U", 8, "urbanczik_senn")
    net.projection("src", "U", list(us.channels)[-1], "fixed_probability", p=0.5, weight=1.0, name="us",
                   plasticity={"rule": "urbanczik_senn"})
    g = registry.get("neuron", "guerguiev")
    net.population("G", 8, "guerguiev")
    net.projection("src", "G", list(g.channels)[0], "fixed_probability", p=0.5, weight=1.0, name="ag",
                   plasticity={"rule": "agrel_spiking"})
    # a static projection whose weights a chunk rule changes between chunks (every 1 ms)
    static = net.projection("src", "G", list(g.channels)[0], "fixed_probability", p=0.5, weight=1.0, name="static")
    net.plasticity_hook(static, PreCount(), eta=0.05, every=1.0)
    mons = [net.spike_monitor(p) for p in ("E", "U", "G", "gen", "src")]
    trs = [net.state_monitor("E", ["v_soma", "burst_prob"], neurons=[0, 5, 15], every=0.2)]
    return net, mons, trs


class PreCount(LearningRule):
    """Between chunks: Δw_ij = η · (presynaptic spikes of j in the interval)."""

    substrates = ("spiking",)

    def update(self, net, x, y, objective, rng):
        raise NotImplementedError("spiking-only test rule")

    def local_factors(self, state):
        return LocalFactors(pre=state.pre.spikes.astype(float), post=np.ones(state.post.spikes.size))


NETWORKS = {"models": (models_net, (3.0,)), "rules": (rules_net, (3.0, 1.0))}


def snapshot(net, mons, trs) -> dict:
    out = {}
    for m in mons:
        for k in ("t", "i", "event_t", "event_i", "burst_t", "burst_i"):
            out[f"{m.label}.{k}"] = getattr(m, k)
    for q, tr in enumerate(trs):
        out[f"st{q}.t"] = tr.t
        for v in tr.variables:
            out[f"st{q}.{v}"] = tr[v]
    for p in net.projections:
        out[f"{p.name}.w"] = p.conn.weights.copy()
        if p.stp is not None:
            out[f"{p.name}.stp_u"], out[f"{p.name}.stp_x"] = p.stp_u.copy(), p.stp_x.copy()
        ps = p.plasticity
        if ps is not None:
            for k, a in ps.pre_traces.items():
                out[f"{p.name}.pre_{k}"] = a.copy()
            for k, a in ps.post_traces.items():
                out[f"{p.name}.post_{k}"] = a.copy()
            for k, a in ps.synapse_vars.items():
                out[f"{p.name}.{k}"] = a.copy()
    for name, pop in net.pops.items():
        for k, arr in {**getattr(pop, "state", {}), **getattr(pop, "channels", {})}.items():
            out[f"{name}.{k}"] = arr.copy()
        for ch, ring in getattr(pop, "rings", {}).items():
            out[f"{name}.ring_{ch}"] = ring.copy()
        for k in ("spike_count", "event_count", "burst_count", "last_step", "spike_rate", "burst_rate"):
            if getattr(pop, k) is not None:
                out[f"{name}.{k}"] = getattr(pop, k).copy()
        out[f"{name}.last_spikes"] = pop.spike_idx[: int(pop.n_spiked[0])].copy()
    return out


def compare(ref: dict, got: dict) -> dict:
    """{'mismatch': [...keys...], 'max_rel': worst float difference, 'spikes': n, 'bursts': n}."""
    bad, worst = [], 0.0
    for k, r in ref.items():
        r, g = np.asarray(r), np.asarray(got.get(k))
        if r.shape != g.shape:
            bad.append(f"{k}: shape {g.shape} != {r.shape}")
        elif r.dtype.kind == "f":
            if r.size:
                d = float(np.max(np.abs(g - r) / np.maximum(1.0, np.abs(r)), initial=0.0))
                worst = max(worst, d)
                if not d <= RTOL:
                    bad.append(f"{k}: max relative difference {d:.3g}")
        elif not np.array_equal(r, g):
            bad.append(f"{k}: differs")
    n_sp = sum(np.asarray(v).size for k, v in ref.items() if k.endswith(".i") and k.startswith("spikes:"))
    n_bu = sum(np.asarray(v).size for k, v in ref.items() if k.endswith(".burst_i"))
    return {"mismatch": bad, "max_rel": worst, "spikes": n_sp, "bursts": n_bu}


def run_case(name: str, backend: str) -> dict:
    build, durations = NETWORKS[name]
    net, mons, trs = build(backend)
    for d in durations:
        net.run(d)
    return snapshot(net, mons, trs)


def main() -> None:
    """Each network on numpy and on cupy (the simulator, or a GPU); one JSON line."""
    import time

    from dendrite_sim.engine.backends import cupy as G

    report = {"__mode__": G.availability()}
    for name in NETWORKS:
        try:
            ref = run_case(name, "numpy")
            t0 = time.perf_counter()
            got = run_case(name, "cupy")
            report[name] = {**compare(ref, got), "cupy_s": time.perf_counter() - t0}
        except Exception as exc:  # report, do not stop
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report))


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def simulator_report(cuda_simulator_json):
    return cuda_simulator_json(_SCRIPT)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_simulator_matches_numpy(name, simulator_report):
    assert simulator_report["__mode__"] == "simulator"
    r = simulator_report[name]
    assert "error" not in r, r.get("error")
    assert r["mismatch"] == [], r["mismatch"]
    assert r["max_rel"] <= RTOL
    assert r["spikes"] >= 15 and r["bursts"] > 0          # the comparison saw spikes and bursts


def _no_device() -> bool:
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return False
    except Exception:
        pass
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0"):
        return False
    try:
        from numba import cuda

        return not cuda.is_available()
    except Exception:
        return True


def test_without_device_one_line_error():
    if not _no_device():
        pytest.skip("a CUDA device (or the simulator) is present")
    with pytest.raises(ScenarioError) as exc:
        Network(dt=0.1, backend="cupy")
    assert exc.value.key == "backend"
    line = exc.value.line()
    assert line.startswith('error: backend: "cupy" needs a CUDA device') and "\n" not in line


def test_cli_check_names_the_scenario_key(tmp_path, capsys):
    """``dendrite-sim check`` accepts "cupy" as a backend and, without a device, prints one line
    naming ``simulation.backend``."""
    if not _no_device():
        pytest.skip("a CUDA device (or the simulator) is present")
    src = (_SCRIPT.parents[1] / "scenarios" / "pyr_stp_4000.toml").read_text()
    assert 'backend = "numba"' in src
    path = tmp_path / "gpu.toml"
    path.write_text(src.replace('backend = "numba"', 'backend = "cupy"'))
    from dendrite_sim.cli import main as cli

    assert cli(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: simulation.backend: "cupy" needs a CUDA device')


@pytest.mark.parametrize("name", list(NETWORKS))
def test_device_matches_numpy(name):
    if _no_device():
        pytest.skip("needs CuPy with a CUDA device, or numba-cuda with a driver")
    r = compare(run_case(name, "numpy"), run_case(name, "cupy"))
    assert r["mismatch"] == [], r["mismatch"]
    assert r["spikes"] >= 15 and r["bursts"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rules", "cuba"])
def test_generated_kernel_compiles_to_ptx(name, libnvvm):
    """The generated kernel, with every device function it calls, compiles for a real GPU by
    libNVVM without a device; its only external calls are the cooperative-groups runtime
    (``cudadevrt``, linked at launch for the grid barrier). About 3 s (CUBA) to 30 s (rules)."""
    import re

    from dendrite_sim.engine.backends import cupy as G

    if name == "cuba":
        from dendrite_sim.validation import networks as N

        net = N.build("cuba", n=4000, seed=1, backend="numpy").net
    else:
        net = rules_net("numpy")[0]
    ptx = G.compile_ptx(net)
    assert ".visible .entry" in ptx
    assert set(re.findall(r"\.extern \.func[^;]*?(\w+)\s*\(", ptx)) <= {"cudaCGGetIntrinsicHandle",
                                                                         "cudaCGSynchronize"}


if __name__ == "__main__":
    main()
