"""GPU batches: B = 8 instances of one structure in one kernel launch per chunk equal 8 single
runs on the numpy backend (``backend = "cupy"`` ensembles, :class:`dendrite_sim.engine.backends._gpu_batch.Batch`).

As in ``tests/test_cupy_backend.py`` the kernel runs in Numba's CUDA simulator, in a subprocess
(this file run as a script, one JSON line), one block of 16 threads. Two networks, 8 instances
each, run 2 ms then 1 ms (the second run reuses the batch):

* **seeds** — seeds 1..8, so every instance has its own connectivity (fixed-probability CSR of
  different lengths, batched with per-instance offsets), its own Poisson keys and its own
  spikes: a Poisson source with shared STP into Naud–Sprekeler neurons, Poisson inputs, a
  recurrent projection with per-synapse STP and 0.3 ms delays, triplet STDP (``on_pre`` /
  ``on_post`` / traces) and burstprop (``on_post`` with event traces), state and spike
  monitors. The Poisson source's spike monitor of instance k holds n + 2 + k records, so the
  batch must halt mid-chunk (at the earliest instance's step) several times and grow them;
* **vary** — one seed for all, a varied weight (per-instance weights; the CSR indices are then
  shared, one copy) and a varied model parameter (the LIF membrane time constant: one
  parameter record per instance), built from a ``[network]`` table by ``Ensemble``;
* **scenario** — ``[network.ensemble]`` with 4 seeds and ``simulation.backend = "cupy"`` run by
  ``dendrite-sim run``: each instance's ``spikes.npz`` equals its numpy run alone.

Tolerance as in ``tests/test_cupy_backend.py``: spikes, events, bursts, counts and integer
state equal; every float within ``1e-9 · max(1, |reference|)``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.engine import spec as netspec
from dendrite_sim.engine.ensemble import Ensemble, instance_table
from dendrite_sim.engine.network import Network

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cupy_backend import RTOL, _no_device, compare, snapshot  # noqa: E402

_SCRIPT = Path(__file__).resolve()
B = 8
DURATIONS = (2.0, 1.0)


# --------------------------------------------------------------------------- networks
def seeds_net(seed: int, backend: str, k: int = 0):
    """Instance ``k`` of the seeds case (its spike buffer of the source: n + 2 + k records)."""
    net = Network(dt=0.1, seed=seed, backend=backend)
    net.poisson_group("src", 10, rate=400.0, bursts=True)
    net.population("E", 10, "naud_sprekeler")
    net.population("I", 6, "lif")
    net.projection("src", "E", "soma_exc", "fixed_probability", p=0.5, weight=300.0, stp="payeur_std", name="stp")
    net.projection("src", "E", "soma_exc", "fixed_probability", p=0.5, weight=40.0, name="stdp",
                   plasticity={"rule": "stdp", "preset": "visual_nearest", "w_max": 500.0})
    net.projection("src", "E", "dend_exc", "fixed_probability", p=0.5, weight=200.0, name="bp",
                   plasticity={"rule": "burstprop_spiking"})
    from dendrite_sim.synapses import stp as stpmod

    rec = net.projection("E", "I", "exc", "all_to_all", weight=6.0, delay=0.3, name="rec",
                         stp=stpmod.stack_params([stpmod.preset("depressing"), stpmod.preset("facilitating")] * 30))
    assert rec.stp_per_synapse
    net.poisson_input("E", "soma_exc", 30, 20.0, 60.0)
    net.poisson_input("I", "exc", 30, 20.0, 4.0)
    net.current("E", "soma", bias=np.linspace(3000.0, 8000.0, 10))
    net.current("I", "soma", bias=np.linspace(500.0, 3000.0, 6))
    src = net.spike_monitor("src")
    src.spikes = type(src.spikes)(src.pop.n + 2 + k)     # tiny, per instance: the batch halts
    mons = [net.spike_monitor("E"), net.spike_monitor("I"), src]
    trs = [net.state_monitor("E", ["v_soma", "burst_prob"], neurons=[0, 9], every=0.2),
           net.state_monitor("I", ["v_soma", "exc"], neurons=[1, 4], every=0.1)]
    return net, mons, trs


NETWORK = {
    "populations": {"pyr": {"model": "naud_sprekeler", "n": 12},
                    "inh": {"model": "lif", "n": 6, "bursts": False}},
    "projections": {"ei": {"pre": "pyr", "post": "inh", "channel": "exc", "connectivity": "fixed_probability",
                           "p": 0.5, "weight": "30 pA", "stp": "payeur_std"},
                    "ie": {"pre": "inh", "post": "pyr", "channel": "soma_inh", "connectivity": "fixed_probability",
                           "p": 0.5, "weight": "-40 pA", "delay": "0.3 ms"}},
    "inputs": {"bias": {"type": "current", "target": "pyr", "bias": "6000 pA"},
               "drive": {"type": "poisson", "target": "pyr", "channel": "soma_exc", "n_sources": 40,
                         "rate": "20 Hz", "weight": "150 pA"},
               "drive_i": {"type": "poisson", "target": "inh", "channel": "exc", "n_sources": 40,
                           "rate": "20 Hz", "weight": "20 pA"},
               "bias_i": {"type": "current", "target": "inh", "bias": "300 pA"}},
}
VARY = {"projections.ei.weight": [f"{w} pA" for w in (20, 40, 60, 80, 100, 120, 140, 160)],
        "populations.inh.params.tau_m": [f"{t} ms" for t in (5, 6, 7, 8, 10, 12, 15, 20)]}


def vary_monitors(net):
    return ([net.spike_monitor("pyr"), net.spike_monitor("inh")],
            [net.state_monitor("inh", ["v_soma", "exc"], neurons=[0, 5], every=0.1)])


def single_vary(k: int, backend: str):
    spec = {"seeds": [4] * B, "vary": VARY, "n": B, "workers": None}
    net = netspec.build(instance_table(NETWORK, spec, k), dt=0.1, seed=4, backend=backend, threads=1)
    return (net, *vary_monitors(net))


def scenario_case() -> dict:
    """The scenario form: ``[network.ensemble]`` (4 seeds) with ``simulation.backend = "cupy"``
    run by ``dendrite-sim run``; each instance's spikes against its numpy run alone."""
    import tempfile

    import tomli_w

    from dendrite_sim.cli import main as cli

    seeds = [1, 2, 3, 4]
    scen = {"scenario": {"experiment": "simulate", "seed": 5},
            "simulation": {"duration": "3 ms", "backend": "cupy"},
            "network": {**NETWORK, "ensemble": {"seeds": seeds}}}
    out = {"equal": [], "n_spikes": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ens.toml"
        path.write_text(tomli_w.dumps(scen))
        out["check"] = cli(["check", str(path)])
        out["run"] = cli(["run", str(path), "--out", str(Path(tmp) / "run")])
        metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
        out["backend"] = json.loads((Path(tmp) / "run" / "timings.json").read_text())["backend"]
        out["instances"] = len(metrics["instances"])
        for k, seed in enumerate(seeds):
            data = np.load(Path(tmp) / "run" / "instances" / f"{k:03d}" / "spikes.npz")
            alone = netspec.build(json.loads(json.dumps(NETWORK)), dt=0.1, seed=seed, backend="numpy")
            mons = {p: alone.spike_monitor(p) for p in ("pyr", "inh")}
            alone.run(3.0)
            out["equal"].append(all(np.array_equal(data[f"{p}_i"], m.i) and np.array_equal(data[f"{p}_t"], m.t)
                                    for p, m in mons.items()))
            out["n_spikes"].append(int(len(mons["pyr"].i)))
    return out


# --------------------------------------------------------------------------- the run
def run_case(name: str) -> dict:
    """Every instance alone on numpy, then all as one cupy batch; the comparison per instance."""
    from dendrite_sim.engine.backends import cupy as G

    if name == "seeds":
        refs = [seeds_net(k + 1, "numpy", k) for k in range(B)]
        built = [seeds_net(k + 1, "cupy", k) for k in range(B)]
        ens = Ensemble(lambda seed: built[seed - 1][0], seeds=range(1, B + 1))
    else:
        refs = [single_vary(k, "numpy") for k in range(B)]
        ens = Ensemble(NETWORK, seeds=[4] * B, vary=VARY, backend="cupy")
        built = [(net, *vary_monitors(net)) for net in ens.instances]
    for net, *_ in refs:
        for d in DURATIONS:
            net.run(d)
    for d in DURATIONS:
        ens.run(d)
    batch = ens.instances[0]._backend_obj.batch
    lay = batch.backend.layout
    per = [compare(snapshot(*r), snapshot(*g)) for r, g in zip(refs, built)]
    return {"instances": per, "nb": batch.backend.nb, "launches": batch.launches,
            "batches": len({id(net._backend_obj.batch) for net in ens.instances}),
            "spikes": [sum(len(m.i) for m in g[1]) for g in built],
            "batched": sorted(lay.batched), "lens": sorted(lay.lens),
            "shared": sorted(n for n in lay.e.args if n not in lay.batched),
            "kernel_has_b": "b = t_ //" in batch.backend.source,
            "mode": G.availability()}


def main() -> None:
    report = {}
    for name in ("seeds", "vary", "scenario"):
        try:
            report[name] = scenario_case() if name == "scenario" else run_case(name)
        except Exception as exc:  # report, do not stop
            import traceback

            report[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
    print(json.dumps(report))


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def report(cuda_simulator_json):
    return cuda_simulator_json(_SCRIPT)


@pytest.mark.parametrize("name", ["seeds", "vary"])
def test_batch_equals_single_numpy_runs(name, report):
    r = report[name]
    assert "error" not in r, r.get("trace")
    assert r["mode"] == "simulator" and r["nb"] == B and r["batches"] == 1 and r["kernel_has_b"]
    assert len(r["instances"]) == B
    for k, c in enumerate(r["instances"]):
        assert c["mismatch"] == [], (k, c["mismatch"])
        assert c["max_rel"] <= RTOL
    assert min(r["spikes"]) >= 10                       # every instance spiked
    assert len(set(r["spikes"])) > 1                    # and the instances differ


def test_seeds_batch_halts_and_has_its_own_structure(report):
    r = report["seeds"]
    assert "error" not in r, r.get("trace")
    # 2 runs = 2 chunks without halts; the tiny source buffers force more launches
    assert r["launches"] > len(DURATIONS)
    # per-instance connectivity and keys; capacities that differ per instance
    assert {"stp__post_idx", "stdp__w", "bp__col_syn", "src__gen_key", "poisson_E_soma_exc__key"} <= set(r["batched"])
    assert r["lens"] == ["sm0_src__spikes_step"]       # the capacities that differ per instance
    # equal in every instance: one copy (parameter records, all-to-all CSR and its STP parameters)
    assert {"E__params", "rec__post_idx", "rec__stp_U", "stp__stp"} <= set(r["shared"])


def test_vary_batch_shares_connectivity(report):
    r = report["vary"]
    assert "error" not in r, r.get("trace")
    assert {"ei__post_idx", "ei__indptr", "ie__post_idx"} <= set(r["shared"])   # one seed: one CSR
    assert {"ei__w", "inh__params"} <= set(r["batched"])                           # the varied values
    assert "pyr__params" in r["shared"]


def test_scenario_form_runs_one_gpu_batch(report):
    r = report["scenario"]
    assert "error" not in r, r.get("trace")
    assert r["check"] == 0 and r["run"] == 0 and r["backend"] == "cupy" and r["instances"] == 4
    assert r["equal"] == [True] * 4 and min(r["n_spikes"]) > 0


@pytest.mark.parametrize("name", ["seeds", "vary"])
def test_device_batch_matches_numpy(name):
    if _no_device():
        pytest.skip("needs CuPy with a CUDA device, or numba-cuda with a driver")
    r = run_case(name)
    for k, c in enumerate(r["instances"]):
        assert c["mismatch"] == [], (k, c["mismatch"])
    assert r["launches"] > (len(DURATIONS) if name == "seeds" else len(DURATIONS) - 1)


@pytest.mark.slow
def test_batched_kernel_compiles_to_ptx(libnvvm):
    """The batched kernel of the seeds case (8 instances: batch offsets, per-instance lengths
    and parameter records) compiles for a real GPU by libNVVM without a device."""
    import re

    from dendrite_sim.engine.backends import cupy as G

    nets = [seeds_net(k + 1, "numpy", k)[0] for k in range(B)]
    spec = {"seeds": [4] * B, "vary": VARY, "n": B, "workers": None}
    varied = [netspec.build(instance_table(NETWORK, spec, k), dt=0.1, seed=4, backend="numpy") for k in range(B)]
    for group in (nets, varied):
        ptx = G.compile_ptx(group[0], instances=group)
        assert ".visible .entry" in ptx
        assert set(re.findall(r"\.extern \.func[^;]*?(\w+)\s*\(", ptx)) <= {"cudaCGGetIntrinsicHandle",
                                                                             "cudaCGSynchronize"}


if __name__ == "__main__":
    main()
