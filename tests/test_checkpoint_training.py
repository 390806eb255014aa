"""Checkpoint and resume of spiking training (``train`` with ``substrate = "spiking"``): a run
stopped between checkpoints and resumed ends bit-identical to a run that was never stopped, on
both CPU backends."""

import json

import numpy as np
import pytest

from dendrite_sim.cli import main
from dendrite_sim.engine import spiking_trainer
from dendrite_sim.engine.circuit import SpikingCircuit

SCENARIO = "scenarios/microcircuit_regression_spiking.toml"


def short(backend):
    return ["--set", "task.n_train=12", "--set", "task.n_test=6", "--set", "training.epochs=3",
            "--set", "rule.phase_duration=30", "--set", "rule.settle=10", "--set", "spiking.test_duration=40ms",
            "--set", f"spiking.backend={backend}", "--set", "spiking.checkpoint_every=400ms"]


class Stop(KeyboardInterrupt):
    pass


def stop_after(monkeypatch, n_presentations):
    """Interrupt the process (as Ctrl-C would) at the n-th presentation of an example."""
    real = SpikingCircuit.present
    count = {"n": 0}

    def present(self, *a, **kw):
        count["n"] += 1
        if count["n"] == n_presentations:
            raise Stop
        return real(self, *a, **kw)

    monkeypatch.setattr(SpikingCircuit, "present", present)


@pytest.mark.parametrize("backend", [pytest.param("numpy", marks=pytest.mark.slow), "numba"])
def test_spiking_training_resumed_from_a_checkpoint_ends_bit_identically(backend, tmp_path, monkeypatch, capsys):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert main(["run", SCENARIO, "--out", str(straight), *short(backend)]) == 0
    # 6 + 6 + 12 + 6 presentations by the end of epoch 1 (epoch 0: train-set probe and test; then
    # training and test); stop at the 9th example of epoch 2
    with monkeypatch.context() as m:
        stop_after(m, 6 + 6 + 12 + 6 + 9)
        assert main(["run", SCENARIO, "--out", str(cut), *short(backend)]) == 130
    ckpts = sorted(p.name for p in (cut / "checkpoints").iterdir())
    assert ckpts and len(ckpts) <= 2
    assert not (cut / "metrics.json").exists()
    assert main(["run", "--resume", str(cut)]) == 0
    timings = json.loads((cut / "timings.json").read_text())
    assert timings["resumed_at"]["epoch"] == 2 and timings["resumed_at"]["example"] > 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (straight, cut))
    a.pop("wall_s_per_example"), b.pop("wall_s_per_example")
    assert a == b                                     # every loss, angle and count, bit for bit


def test_the_trainer_restores_weights_bit_identically(tmp_path, monkeypatch):
    """The weights themselves (not only the metrics), through the trainer's own hook."""
    from dendrite_sim.engine.checkpoint import Checkpointer
    from dendrite_sim.experiments.train import Train
    from dendrite_sim.io.scenario import load

    scen = load(SCENARIO, overrides=[a for a in short("numba") if a != "--set"])
    box = {}
    real_train = spiking_trainer.train

    def grab(sc, rule, objective, data, **kw):
        box.update(sc=sc, rule=rule, objective=objective, data=data, kw=kw)
        raise Stop

    class Ctx:
        seed = scen.seed

        def rng(self, name):
            from dendrite_sim.core import rng

            return rng.stream(self.seed, name)

        @staticmethod
        def progress(it, **kw):
            return it

        @staticmethod
        def checkpointer(every_ms):
            return None

    def build():
        with monkeypatch.context() as m:
            m.setattr(spiking_trainer, "train", grab)
            with pytest.raises(Stop):
                Train().run_spiking(scen.cfg, Ctx())
        kw = dict(box["kw"])
        kw.pop("checkpointer"), kw.pop("resume")
        return box["sc"], box["rule"], box["objective"], box["data"], kw

    sc, rule, obj, data, kw = build()
    real_train(sc, rule, obj, data, **kw)
    ref = {q.name: sc.weights(q.name) for q in sc.circuit.pathways if q.kind != "nudging"}
    sc, rule, obj, data, kw = build()
    ck = Checkpointer(tmp_path / "ck", every_ms=300.0)
    with monkeypatch.context() as m:
        stop_after(m, 6 + 12 + 6 + 12 + 5)
        with pytest.raises(Stop):
            real_train(sc, rule, obj, data, checkpointer=ck, **kw)
    sc, rule, obj, data, kw = build()
    hist = real_train(sc, rule, obj, data, checkpointer=Checkpointer(tmp_path / "ck", every_ms=300.0),
                      resume=True, **kw)
    assert hist.started_at != (1, 0)
    for name, W in ref.items():
        np.testing.assert_array_equal(sc.weights(name), W, err_msg=name)
