"""The A-B-C-D-G / U Gabor sequence protocol and its basal / apical drives."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.tasks.gabor_sequences import (
    GaborProtocol,
    GaborTuning,
    drives,
    protocol_tables,
    random_tuning,
    sample,
    session_table,
)


@pytest.fixture(scope="module")
def long_table():
    return session_table(GaborProtocol(session_duration=3600.0), np.random.default_rng(1))


def test_frames_sequences_and_timing(long_table):
    t = long_table
    n = t["frame"].size
    assert n % 5 == 0 and n == 5 * 2400                      # 1 h of 1.5-s sequences
    seqs = t["frame"].reshape(-1, 5)
    assert {"".join(s) for s in seqs} == {"ABCDG", "ABCUG"}
    np.testing.assert_allclose(t["stop_time"] - t["start_time"], 0.3)
    np.testing.assert_allclose(t["start_time"][1:], t["stop_time"][:-1])
    assert t["start_time"][0] == 0.0 and t["stop_time"][-1] <= 3600.0 + 1e-9
    assert np.array_equal(t["expected"], t["frame"] != "U")
    assert np.array_equal(t["unexpected_sequence"].reshape(-1, 5)[:, 3], seqs[:, 3] == "U")
    assert np.array_equal(t["sequence"], np.repeat(np.arange(2400), 5))


def test_orientations_shared_within_a_sequence_and_u_rotated(long_table):
    ori = long_table["orientation"].reshape(-1, 5)
    u = long_table["frame"].reshape(-1, 5)[:, 3] == "U"
    assert set(np.unique(ori[:, 0])) == {0.0, 45.0, 90.0, 135.0}
    for k in (1, 2):
        np.testing.assert_array_equal(ori[:, k], ori[:, 0])
    np.testing.assert_array_equal(ori[~u, 3], ori[~u, 0])
    np.testing.assert_array_equal(ori[u, 3], np.mod(ori[u, 0] + 90.0, 180.0))
    assert np.all(np.isnan(ori[:, 4]))


def test_blocks_alternate_with_the_published_durations(long_table):
    seq_u = long_table["unexpected_sequence"].reshape(-1, 5)[:, 0]
    block = long_table["block"].reshape(-1, 5)[:, 0]
    assert np.all(np.diff(block) >= 0) and block[0] == 0 and not seq_u[0]
    lengths = np.bincount(block) * 1.5                        # seconds per block
    kinds = np.array([seq_u[block == b][0] for b in range(block.max() + 1)])
    assert np.all(kinds[1:] != kinds[:-1])                    # expected / unexpected alternate
    exp_len, u_len = lengths[~kinds][:-1], lengths[kinds]     # the last block may be cut short
    assert exp_len.min() >= 30 - 0.75 and exp_len.max() <= 90 + 0.75
    assert set(u_len) <= {1.5, 3.0, 4.5}
    assert np.mean(exp_len) == pytest.approx(60, rel=0.1)
    assert seq_u.mean() == pytest.approx(np.mean(u_len) / (np.mean(u_len) + 60.0), rel=0.25)


def test_sessions_are_independent_and_reproducible():
    p = GaborProtocol(session_duration=120.0)
    a, b = protocol_tables(p, seed=4), protocol_tables(p, seed=4)
    assert len(a) == 3 and [t["session"][0] for t in a] == [0, 1, 2]
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert not np.array_equal(a[0]["orientation"], a[1]["orientation"], equal_nan=True)
    c = protocol_tables(p, seed=5)
    assert not np.array_equal(a[0]["orientation"], c[0]["orientation"], equal_nan=True)


def test_drives_closed_form():
    table = {"start_time": np.array([0.0, 0.3, 0.6, 0.9]), "stop_time": np.array([0.3, 0.6, 0.9, 1.2]),
             "frame": np.array(["A", "D", "U", "G"]), "orientation": np.array([45.0, 45.0, 135.0, np.nan])}
    gains = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 0.5, 0.5, 0.5, 0.5]])
    tun = GaborTuning(np.array([45.0, 135.0]), 2.0, gains, np.array([0.2, 0.3]), np.array([1.0, 1.5]))
    basal, apical = drives(table, tun)
    e = np.exp(-4.0)                                          # orthogonal: exp(κ(cos π − 1))
    np.testing.assert_allclose(basal, [[1.0, 0.5 * e], [4.0, 0.5 * e], [5.0 * e, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(apical, [[0.2, 0.3], [0.2, 0.3], [1.0, 1.5], [0.0, 0.0]])
    got = sample(table, basal, np.array([-0.1, 0.0, 0.299, 0.3, 0.95, 1.2, 5.0]))
    np.testing.assert_allclose(got[:, 0], [0.0, 1.0, 1.0, 4.0, 0.0, 0.0, 0.0])
    tuned = random_tuning(4000, np.random.default_rng(0), frame_cv=0.5, feedback_unexpected=2.0)
    assert tuned.frame_gain.mean() == pytest.approx(1.0, rel=0.03)
    assert tuned.feedback_unexpected.mean() == pytest.approx(2.0, rel=0.03)


def test_protocol_from_scenario_section():
    p = GaborProtocol.from_section({"frame_duration": "300 ms", "session_duration": "17 min",
                                    "n_sessions": 2})
    assert p.frame_duration == pytest.approx(0.3) and p.session_duration == pytest.approx(1020.0)
    assert GaborProtocol.from_section(None) == GaborProtocol()
    tun = GaborProtocol.from_section({"kappa": 0.0, "frame_cv": 0.0, "feedback_cv": 0.0,
                                      "feedback_unexpected": 3.0}).tuning(5, np.random.default_rng(0))
    assert np.all(tun.frame_gain == 1.0) and np.all(tun.feedback_unexpected == 3.0) and tun.kappa == 0.0
    with pytest.raises(ScenarioError) as e:
        GaborProtocol.from_section({"frame_duration": "0.3"})
    assert e.value.key == "stimulus.frame_duration"
    with pytest.raises(ScenarioError) as e:
        GaborProtocol.from_section({"unexpected_block_min": "5 s", "unexpected_block_max": "4 s"})
    assert e.value.key == "stimulus.unexpected_block_min"
