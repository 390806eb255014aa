"""Checkpoints (issue 12 point 5): a network stopped, saved, rebuilt and restored continues
bit-identically on both CPU backends; files are atomic, the newest two kept, a damaged newest
one falls back to the one before it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.engine import checkpoint as ck
from dendrite_sim.engine.network import Network

ROOT = Path(__file__).resolve().parents[1]


def build(backend: str) -> tuple[Network, dict]:
    net = Network(dt=0.1, seed=7, backend=backend)
    net.population("pyr", 40, "naud_sprekeler")
    net.population("inh", 10, "lif")
    net.poisson_input("pyr", "soma_exc", n_sources=200, rate="20 Hz", weight="150 pA")
    net.poisson_input("pyr", "dend_exc", n_sources=200, rate="20 Hz", weight="100 pA")
    net.poisson_input("inh", "exc", n_sources=100, rate="10 Hz", weight="50 pA")
    net.projection("pyr", "pyr", "soma_exc", "fixed_probability", p=0.2, weight="20 pA", delay="1.5 ms",
                   stp="depressing", plasticity={"rule": "stdp", "preset": "visual_all_to_all", "w_max": 40.0})
    net.projection("pyr", "inh", "exc", "fixed_probability", p=0.3, weight="30 pA", delay="0.5 ms")
    net.projection("inh", "pyr", "soma_inh", "fixed_probability", p=0.3, weight="40 pA", delay="1 ms")
    mons = {"spikes": net.spike_monitor("pyr"), "state": net.state_monitor("pyr", ["v_soma"], every=1.0),
            "weights": net.weight_monitor(net.projections[0].name, every=10.0)}
    return net, mons


def observed(net, mons) -> dict:
    out = {"t": np.array(mons["spikes"].t), "i": np.array(mons["spikes"].i),
           "v": np.array(mons["state"]["v_soma"]), "v_t": np.array(mons["state"].t),
           "w_hist": np.array(mons["weights"].w), "w": np.array(net.projections[0].conn.weights)}
    for name, arr in net["pyr"].state.items():
        out[f"state.{name}"] = np.array(arr)
    return out


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_restored_network_continues_bit_identically(backend, tmp_path):
    net, mons = build(backend)
    net.run(15.0)
    keeper = ck.Checkpointer(tmp_path / "checkpoints", every_ms=10.0)
    assert keeper.due(net.t)
    keeper.write(ck.capture({"net": net, "monitors": mons}), {"t_ms": net.t})
    net.run(15.0)
    straight = observed(net, mons)
    assert straight["t"].size > 20 and straight["v"].shape == (30, 40) and (straight["w"] != build(backend)[0].projections[0].conn.weights).any()

    fresh, fresh_mons = build(backend)          # a new process would build the same objects
    saved = ck.Checkpointer(tmp_path / "checkpoints", every_ms=10.0).latest()
    assert saved.meta["progress"]["t_ms"] == pytest.approx(15.0)
    ck.restore({"net": fresh, "monitors": fresh_mons}, saved.arrays, saved.meta)
    assert fresh.t == pytest.approx(15.0)
    fresh.run(15.0)
    resumed = observed(fresh, fresh_mons)
    for key, ref in straight.items():
        np.testing.assert_array_equal(resumed[key], ref, err_msg=key)


def test_files_are_atomic_and_the_newest_two_are_kept(tmp_path):
    net, mons = build("numpy")
    keeper = ck.Checkpointer(tmp_path, every_ms=2.0)
    for k in range(4):
        net.run(2.0)
        keeper.write(ck.capture({"net": net}), {"t_ms": net.t, "k": k})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-000003.npz", "checkpoint-000004.npz"]
    (tmp_path / "checkpoint-000004.npz").write_bytes(b"PK\x03\x04 truncated")    # a damaged newest file
    saved = ck.Checkpointer(tmp_path, every_ms=10.0).latest()
    assert saved.seq == 3 and saved.meta["progress"]["k"] == 2
    other = Network(dt=0.1, seed=7, backend="numpy")
    other.population("pyr", 5, "lif")
    with pytest.raises(ck.CheckpointMismatch):
        ck.restore({"net": other}, saved.arrays, saved.meta)


def test_generators_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    rng.random(3)
    keeper = ck.Checkpointer(tmp_path, every_ms=1.0)
    keeper.write(ck.capture({"loop": {"rng": rng, "epoch": 3, "losses": [0.5, 0.25]}}), {"epoch": 3})
    expect = rng.random(4)
    fresh = {"rng": np.random.default_rng(0), "epoch": 0, "losses": []}
    saved = keeper.latest()
    ck.restore({"loop": fresh}, saved.arrays, saved.meta)
    assert fresh["epoch"] == 3 and fresh["losses"] == [0.5, 0.25]
    np.testing.assert_array_equal(fresh["rng"].random(4), expect)


# ------------------------------------------------------------------ dendrite-sim run --resume
LONG = '''
import os

import numpy as np

from dendrite_sim import register
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import checkpoint as ck
from dendrite_sim.engine.network import Network


@register("experiment", "checkpoint_probe")
class Long(Experiment):
    """A plastic network run in epochs of 5 ms with a shuffled drive, checkpointed every 10 ms."""

    sections = {"run": {"epochs": Field("int", 8, "epochs", lo=1), "backend": Field("str", "numpy")}}

    def run(self, cfg, ctx):
        net = Network(dt=0.1, seed=ctx.seed, backend=cfg["run"]["backend"])
        net.population("pyr", 20, "lif")
        net.poisson_input("pyr", "exc", n_sources=100, rate="20 Hz", weight="80 pA")
        net.projection("pyr", "pyr", "exc", "fixed_probability", p=0.3, weight="0.5 pA", delay="1 ms",
                       plasticity={"rule": "stdp", "preset": "visual_all_to_all"})
        mon = net.spike_monitor("pyr")
        loop = {"rng": ctx.rng("drive"), "epoch": 0, "bias": [], "started_at": 0}
        keeper = ctx.checkpointer(every_ms=10.0)
        saved = keeper.latest() if ctx.resume else None
        if saved is not None:
            ck.restore({"net": net, "monitor": mon, "loop": loop}, saved.arrays, saved.meta)
            loop["started_at"] = loop["epoch"]
        stop = int(os.environ.get("CHECKPOINT_PROBE_STOP", "0"))
        while loop["epoch"] < cfg["run"]["epochs"]:
            loop["epoch"] += 1
            if loop["epoch"] == stop:
                raise KeyboardInterrupt
            b = float(loop["rng"].uniform(0, 200))
            loop["bias"].append(b)
            net["pyr"].bias["soma"][:] = b
            net.run(5.0)
            if keeper.due(net.t):
                keeper.write(ck.capture({"net": net, "monitor": mon, "loop": loop}),
                             {"epoch": loop["epoch"], "t_ms": net.t})
        ctx.record_timing("started_at_epoch", loop["started_at"])
        return {"spike_t": mon.t.tolist(), "spike_i": mon.i.tolist(), "bias": loop["bias"],
                "w": net.projections[0].conn.weights.tolist()}
'''


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_run_resume_continues_from_the_newest_checkpoint_bit_identically(backend, tmp_path, monkeypatch, capsys):
    import json

    from dendrite_sim.cli import main

    (tmp_path / "long.py").write_text(LONG)
    scen = tmp_path / "long.toml"
    scen.write_text(f'[scenario]\nexperiment = "checkpoint_probe"\nseed = 4\nplugins = ["long.py"]\n'
                    f'[run]\nbackend = "{backend}"\n')
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert main(["run", str(scen), "--out", str(straight)]) == 0
    monkeypatch.setenv("CHECKPOINT_PROBE_STOP", "6")          # stopped in epoch 6: checkpoints at 2 and 4
    assert main(["run", str(scen), "--out", str(cut)]) == 130
    assert sorted(p.name for p in (cut / "checkpoints").iterdir()) == ["checkpoint-000001.npz",
                                                                      "checkpoint-000002.npz"]
    monkeypatch.delenv("CHECKPOINT_PROBE_STOP")
    capsys.readouterr()
    assert main(["run", "--resume", str(cut)]) == 0
    assert "from checkpoint-000002.npz" in capsys.readouterr().err
    assert json.loads((cut / "timings.json").read_text())["started_at_epoch"] == 4
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (straight, cut))
    assert len(a["spike_t"]) > 10 and a == b                  # spikes, drive and weights bit for bit
    assert main(["run", "--resume", str(cut)]) == 2           # completed: nothing to resume
    assert "completed run" in capsys.readouterr().err


# ------------------------------------------------------------------ the spiking trainer's circuit
def _spiking_circuit(monkeypatch, backend):
    """The circuit, rule and data that `train` with substrate = "spiking" builds, caught at
    the call of the spiking trainer."""
    from dendrite_sim.core import rng as rngmod
    from dendrite_sim.engine import spiking_trainer
    from dendrite_sim.experiments.train import Train
    from dendrite_sim.io.scenario import load

    scen = load(str(ROOT / "scenarios" / "digits_segregated_spiking.toml"), overrides=[f"spiking.backend={backend}"])
    box = {}

    class Caught(Exception):
        pass

    def catch(sc, rule, objective, data, **kw):
        box.update(sc=sc, rule=rule, data=data)
        raise Caught

    class Ctx:
        seed = scen.seed

        def rng(self, name):
            return rngmod.stream(self.seed, name)

        @staticmethod
        def progress(it, **kw):
            return it

    monkeypatch.setattr(spiking_trainer, "train", catch)
    with pytest.raises(Caught):
        Train().run_spiking(scen.cfg, Ctx())
    return box["sc"], box["rule"], box["data"]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_spiking_training_circuit_restored_mid_training_learns_bit_identically(backend, monkeypatch):
    """What the spiking trainer's checkpoint hook needs: its circuit (network, teacher, nudgers,
    monitors) and rule captured between examples and restored into freshly built ones."""
    from dendrite_sim.engine.spiking_trainer import target_vector

    sc, rule, data = _spiking_circuit(monkeypatch, backend)
    phases = rule.phases()

    def learn(sc, rule, i):
        y = target_vector(data.y_train[i], sc.circuit.output.n, data.n_classes)
        rec = sc.present(data.x_train[i], y, phases)
        for q, (dW, _db) in rule.example_update(sc, rec).items():
            sc.add_weights(q, 0.1 * dW)
        sc.sync_feedback()
        return rec

    learn(sc, rule, 0)
    learn(sc, rule, 1)
    state = ck.capture({"circuit": sc, "rule": rule})
    ref = learn(sc, rule, 2)
    sc2, rule2, _ = _spiking_circuit(monkeypatch, backend)
    ck.restore({"circuit": sc2, "rule": rule2}, *state)
    got = learn(sc2, rule2, 2)
    for q in sc.circuit.feedforward():
        np.testing.assert_array_equal(sc2.weights(q.name), sc.weights(q.name), err_msg=q.name)
    out = sc.circuit.output.name
    for ph in phases:
        np.testing.assert_array_equal(got[ph.name].mean(out, "v_soma"), ref[ph.name].mean(out, "v_soma"))
        np.testing.assert_array_equal(got[ph.name].rate(out), ref[ph.name].rate(out))
