"""ROIs, the SyntheticSession folder, the npz export, crash safety and ``dendrite-sim export``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dendrite_sim.cli import main as cli_main
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.imaging import GroundTruth, ImagingParams, SyntheticSession, make_rois, simulate_session
from dendrite_sim.imaging.rois import RoiGeometry
from dendrite_sim.imaging.session import SessionWriter
from dendrite_sim.io.export import export_all, export_run
from dendrite_sim.io.npz_export import export_npz, read_npz

ROOT = Path(__file__).resolve().parents[1]


def small_session(seed=3, duration=20.0, path=None):
    rng = np.random.default_rng(seed)
    trains = [np.sort(rng.uniform(0, duration, rng.poisson(3 * duration))) for _ in range(4)]
    n_lat = int(duration * 50)
    gt = GroundTruth.from_trains(
        trains, duration, plateaus=[[(2.0, 2.1)], [], [(5.0, 5.3)], []],
        latents={"v_apical": rng.normal(-65, 3, (n_lat, 4)).astype(np.float32),
                 "burst_prob": rng.uniform(0, 1, (n_lat, 4)).astype(np.float32)},
        latent_rate=50.0, latent_units={"v_apical": "mV", "burst_prob": "1"})
    n_seg = int(duration / 0.3)
    stim = {"start_time": 0.3 * np.arange(n_seg), "stop_time": 0.3 * np.arange(1, n_seg + 1),
            "frame": np.array(list("ABCDG") * 200)[:n_seg], "orientation": np.full(n_seg, 45.0),
            "expected": np.arange(n_seg) % 7 != 3, "block": np.arange(n_seg) // 10}
    return simulate_session(gt, indicator="GCaMP6f", imaging={"n_apical": 2}, stimulus=stim,
                            seed=seed, name="day1", path=path,
                            provenance={"scenario": "[scenario]\nexperiment = \"x\"\n"})


def assert_sessions_equal(a: SyntheticSession, b: SyntheticSession):
    assert a.name == b.name and a.frame_rate == b.frame_rate
    np.testing.assert_array_equal(a.frame_times, b.frame_times)
    assert sorted(a.traces) == sorted(b.traces)
    for k in a.traces:
        np.testing.assert_array_equal(np.asarray(a.traces[k]), np.asarray(b.traces[k]), err_msg=k)
    for k, v in a.rois.arrays().items():
        np.testing.assert_array_equal(v, b.rois.arrays()[k], err_msg=k)
    assert a.rois.image_shape == b.rois.image_shape and a.rois.pixel_size == b.rois.pixel_size
    for k in ("spike_times", "spike_unit", "burst_flag", "plateau_start", "plateau_stop", "plateau_unit"):
        np.testing.assert_array_equal(getattr(a.ground_truth, k), getattr(b.ground_truth, k), err_msg=k)
    assert sorted(a.ground_truth.latents) == sorted(b.ground_truth.latents)
    for k, v in a.ground_truth.latents.items():
        np.testing.assert_array_equal(np.asarray(v), np.asarray(b.ground_truth.latents[k]), err_msg=k)
    assert a.ground_truth.latent_units == b.ground_truth.latent_units
    assert sorted(a.stimulus) == sorted(b.stimulus)
    for k, v in a.stimulus.items():
        np.testing.assert_array_equal(v, b.stimulus[k], err_msg=k)
    assert a.indicator == b.indicator
    assert a.imaging == b.imaging
    assert a.provenance["seed"] == b.provenance["seed"]
    assert a.provenance["scenario"] == b.provenance["scenario"]


# ----------------------------------------------------------------------------- ROIs
def test_roi_geometry():
    g = RoiGeometry(n_apical=3)
    rois = make_rois(30, np.random.default_rng(0), g)
    assert rois.n_rois == 30 * 4
    assert rois.compartment[:30].tolist() == ["soma"] * 30
    assert rois.cell_id.tolist() == list(range(30)) + [i for i in range(30) for _ in range(3)]
    assert set(rois.depth[:30]) == {175.0} and set(rois.depth[30:]) == {50.0}
    px = 400 / 512
    soma_area = np.bincount(rois.mask_roi, minlength=rois.n_rois)[:30] * px * px
    assert soma_area.mean() == pytest.approx(np.pi * 6.0 ** 2, rel=0.05)   # discs of radius 6 µm
    dend_area = np.bincount(rois.mask_roi, minlength=rois.n_rois)[30:] * px * px
    assert dend_area.mean() == pytest.approx(8.0 * 1.5, rel=0.25)        # 8 × 1.5 µm segments
    assert rois.mask_x.min() >= 0 and rois.mask_x.max() < 512 and rois.mask_y.max() < 512
    d = np.hypot(rois.x[:30, None] - rois.x[None, :30], rois.y[:30, None] - rois.y[None, :30])
    assert d[np.triu_indices(30, 1)].min() > 2 * 6.0 / px                  # somata do not overlap
    gains = make_rois(500, np.random.default_rng(1), RoiGeometry(n_apical=6)).gain[500:]
    assert gains.mean() == pytest.approx(1.0, abs=0.01) and gains.std() == pytest.approx(0.15, rel=0.08)
    m = rois.pixel_mask(0)
    assert m.shape[1] == 3 and np.all(m[:, 2] == 1.0)


# ----------------------------------------------------------------------------- session folder
def test_session_folder_round_trip_and_memmap_path(tmp_path):
    mem = small_session()
    saved = mem.save(tmp_path / "session")
    back = SyntheticSession.load(saved)
    assert isinstance(back.traces["dff"], np.memmap)
    assert_sessions_equal(mem, back)
    direct = small_session(path=tmp_path / "run" / "session-day1")   # produced into memory maps
    assert_sessions_equal(mem, direct)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["session-day1"]   # no temp left


def test_session_writer_crash_leaves_nothing_under_the_final_name(tmp_path):
    target = tmp_path / "session"
    with pytest.raises(RuntimeError), SessionWriter(target, 100, 4) as w:
        w.traces["dff"][:50] = 1.0
        raise RuntimeError("crash mid-simulation")
    assert not target.exists() and list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- npz export
def test_npz_export_round_trip(tmp_path):
    s = small_session()
    out = export_npz(s, tmp_path / "s.npz", extra_provenance={"run_config_toml": "a = 1\n"})
    back = read_npz(out)
    assert_sessions_equal(s, back)
    assert back.provenance["run_config_toml"] == "a = 1\n"
    with np.load(out) as z:
        assert z["dff"].shape == (600, 12) and z["dff"].dtype == np.float32
        assert z["roi_compartment"].tolist()[:4] == ["soma"] * 4


def test_crash_injected_mid_npz_export_leaves_no_partial_file(tmp_path, monkeypatch):
    s = small_session()
    final = tmp_path / "session.npz"
    final.write_bytes(b"previous export")
    calls = {"n": 0}
    real = np.lib.format.write_array

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full (injected)")
        return real(*a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", crashing)
    with pytest.raises(OSError, match="injected"):
        export_npz(s, final)
    assert calls["n"] == 4
    assert final.read_bytes() == b"previous export"          # old file untouched
    assert [p.name for p in tmp_path.iterdir()] == ["session.npz"]   # temp removed


def test_killed_process_mid_export_leaves_no_file_under_the_final_name(tmp_path):
    small_session(path=tmp_path / "session")
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np
        real = np.lib.format.write_array
        n = [0]
        def killer(*a, **k):
            n[0] += 1
            if n[0] == 3:
                os._exit(9)           # hard crash: no cleanup, no exception handling
            return real(*a, **k)
        np.lib.format.write_array = killer
        from dendrite_sim.io.export import export_run
        export_run({str(tmp_path)!r}, "npz")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 9, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "session.npz" not in names
    assert any(n.startswith(".session.npz.") and n.endswith(".tmp") for n in names)


# ----------------------------------------------------------------------------- export_run / CLI
def test_export_run_and_cli(tmp_path, capsys):
    small_session(path=tmp_path / "session")
    (tmp_path / "config.toml").write_text("[scenario]\nexperiment = \"x\"\nseed = 3\n")
    out = export_run(tmp_path, "npz")
    assert out == tmp_path / "session.npz"
    assert read_npz(out).provenance["run_config_toml"].startswith("[scenario]")
    assert cli_main(["export", str(tmp_path), "--format", "npz"]) == 0
    assert "session.npz" in capsys.readouterr().out
    small_session(seed=4, path=tmp_path / "session-day2")
    assert [p.name for p in export_all(tmp_path, "npz")] == ["session.npz", "session-day2.npz"]


def test_export_run_errors(tmp_path, capsys):
    with pytest.raises(ScenarioError) as e:
        export_run(tmp_path, "npz")
    assert e.value.key == "RUN_DIR"
    with pytest.raises(ScenarioError) as e:
        export_run(tmp_path / "missing", "npz")
    assert e.value.key == "RUN_DIR"
    assert cli_main(["export", str(tmp_path), "--format", "npz"]) == 2
    assert capsys.readouterr().err.startswith("error: RUN_DIR: expected a run directory with")


def test_imaging_params_reach_the_session():
    s = small_session()
    assert s.imaging["n_apical"] == 2 and s.imaging["frame_rate"] == 30.0
    assert s.info["ca_per_spike_nM"] == pytest.approx(3.3719, rel=1e-4)
    assert ImagingParams(**s.imaging) == ImagingParams(n_apical=2)
