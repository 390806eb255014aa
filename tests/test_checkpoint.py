"""Checkpoints (issue 12 point 5): a network stopped, saved, rebuilt and restored continues
bit-identically on both CPU backends; files are atomic, the newest two kept, a damaged newest
one falls back to the one before it."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite_sim.engine import checkpoint as ck
from dendrite_sim.engine.network import Network


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
    net.run(30.0)
    keeper = ck.Checkpointer(tmp_path / "checkpoints", every_ms=25.0)
    assert keeper.due(net.t)
    keeper.write(ck.capture({"net": net, "monitors": mons}), {"t_ms": net.t})
    net.run(30.0)
    straight = observed(net, mons)
    assert straight["t"].size > 20 and straight["v"].shape == (60, 40) and (straight["w"] != build(backend)[0].projections[0].conn.weights).any()

    fresh, fresh_mons = build(backend)          # a new process would build the same objects
    saved = ck.Checkpointer(tmp_path / "checkpoints", every_ms=25.0).latest()
    assert saved.meta["progress"]["t_ms"] == pytest.approx(30.0)
    ck.restore({"net": fresh, "monitors": fresh_mons}, saved.arrays, saved.meta)
    assert fresh.t == pytest.approx(30.0)
    fresh.run(30.0)
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
