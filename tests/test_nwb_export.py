"""NWB export: round trip of every array, nwbinspector, chunked compressed writing, crash safety."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")
nwbinspector = pytest.importorskip("nwbinspector")

from test_imaging_session import assert_sessions_equal, small_session  # noqa: E402

from dendrite_sim.cli import main as cli_main  # noqa: E402
from dendrite_sim.io import nwb as nwbmod  # noqa: E402


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    d = tmp_path_factory.mktemp("nwb")
    s = small_session(path=d / "session")          # memory-mapped, as export_run sees it
    path = nwbmod.write_nwb(s, d / "session.nwb", extra_provenance={"run_config_toml": "seed = 3\n"},
                            buffer_mb=0.01)
    return s, path


def test_round_trip_reads_back_every_array(written):
    s, path = written
    assert_sessions_equal(s, nwbmod.read_nwb(path))


def test_layout_as_analysis_code_expects(written):
    s, path = written
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        ophys = f.processing["ophys"]
        dff = ophys["DfOverF"]["RoiResponseSeries"]
        assert dff.data.shape == (s.n_frames, s.n_rois) == (600, 12)
        assert dff.rate == 30.0 and len(dff.rois) == 12
        np.testing.assert_array_equal(dff.data[:], s.traces["dff"])
        ps = ophys["ImageSegmentation"]["PlaneSegmentation"]
        for col in ("pixel_mask", "compartment", "cell_id", "depth"):
            assert col in ps.colnames
        assert list(ps["compartment"].data[:4]) == ["soma"] * 4
        np.testing.assert_array_equal(ps["cell_id"].data[:], s.rois.cell_id)
        np.testing.assert_array_equal(ps["depth"].data[:], s.rois.depth)
        mask = np.array([tuple(m) for m in ps["pixel_mask"][5]])
        np.testing.assert_array_equal(mask, s.rois.pixel_mask(5))
        assert f.imaging_planes["ImagingPlane"].indicator == "GCaMP6f"
        assert f.imaging_planes["ImagingPlane"].imaging_rate == 30.0
        units = f.units
        assert units.resolution == s.ground_truth.dt and len(units.id) == 4
        t, fl = s.ground_truth.unit_spikes(2)
        np.testing.assert_array_equal(units["spike_times"][2], t)
        np.testing.assert_array_equal(units["burst_flag"][2], fl)
        trials = f.trials
        assert set(trials.colnames) >= {"start_time", "stop_time", "frame", "orientation", "expected", "block"}
        assert len(trials.id) == 66
        truth = f.processing["ground_truth"]
        vd = truth["v_apical"]
        assert vd.unit == "volts" and vd.conversion == 1e-3 and vd.rate == 50.0
        np.testing.assert_array_equal(vd.data[:], s.ground_truth.latents["v_apical"])
        assert truth["Calcium"].conversion == 1e-9
        notes = json.loads(f.notes)
        assert notes["seed"] == 3 and notes["provenance"]["run_config_toml"] == "seed = 3\n"
        assert notes["provenance"]["scenario"].startswith("[scenario]")
        assert notes["indicator"]["name"] == "GCaMP6f"
        import dendrite_sim
        assert list(f.was_generated_by[0]) == ["dendrite_sim", dendrite_sim.__version__]
    with h5py.File(path, "r") as h:
        ds = h["processing/ophys/DfOverF/RoiResponseSeries/data"]
        assert ds.compression == "gzip" and ds.chunks is not None and ds.chunks[1] == 12


def test_nwbinspector_finds_no_best_practice_violation(written):
    _, path = written
    msgs = list(nwbinspector.inspect_nwbfile(
        nwbfile_path=str(path), importance_threshold=nwbinspector.Importance.BEST_PRACTICE_VIOLATION))
    assert msgs == [], "\n".join(f"{m.importance.name} {m.check_function_name}: {m.message}" for m in msgs)


def test_traces_are_streamed_in_buffers(tmp_path, monkeypatch):
    s = small_session(path=tmp_path / "session")
    rows = []
    real = nwbmod._Chunks._get_data

    def spy(self, selection):
        block = real(self, selection)
        rows.append((block.shape[0], block.nbytes))
        return block

    monkeypatch.setattr(nwbmod._Chunks, "_get_data", spy)
    nwbmod.write_nwb(s, tmp_path / "s.nwb", buffer_mb=0.01)       # 10-kB buffers: 218 frames × 12 ROIs
    assert max(b for _, b in rows) <= 0.01 * 2 ** 20
    assert len(rows) >= 7 * 2                                      # 7 series, ≥ 2 buffers each


def test_crash_injected_mid_nwb_export_leaves_no_partial_file(tmp_path, monkeypatch):
    s = small_session(path=tmp_path / "session")
    final = tmp_path / "session.nwb"
    final.write_bytes(b"previous export")
    calls = {"n": 0}
    real = nwbmod._Chunks._get_data

    def crashing(self, selection):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full (injected)")
        return real(self, selection)

    monkeypatch.setattr(nwbmod._Chunks, "_get_data", crashing)
    with pytest.raises(OSError, match="injected"):
        nwbmod.write_nwb(s, final, buffer_mb=0.01)
    assert calls["n"] == 5
    assert final.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session", "session.nwb"]


def test_cli_export_nwb(tmp_path, capsys):
    small_session(path=tmp_path / "session")
    assert cli_main(["export", str(tmp_path)]) == 0          # nwb is the default format
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'session.nwb'}"
    back = nwbmod.read_nwb(tmp_path / "session.nwb")
    assert back.n_rois == 12 and back.provenance["seed"] == 3


def test_gabor_session_end_to_end(tmp_path):
    """Gabor protocol → toy spiking ground truth → imaging → NWB: trials and inspector clean,
    and the apical ROIs report the unexpected-frame bursts."""
    from dendrite_sim.imaging import GroundTruth, simulate_session
    from dendrite_sim.tasks.gabor_sequences import GaborProtocol, drives, random_tuning, session_table

    rng = np.random.default_rng(0)
    table = session_table(GaborProtocol(session_duration=150.0, expected_block_min=10.0,
                                        expected_block_max=20.0), rng)
    tuning = random_tuning(6, rng)
    basal, apical = drives(table, tuning)
    trains = []
    for i in range(6):
        spikes = []
        for k, (t0, t1) in enumerate(zip(table["start_time"], table["stop_time"])):
            n = rng.poisson((1.0 + 8.0 * basal[k, i]) * (t1 - t0))
            spikes.extend(rng.uniform(t0, t1, n))
            if table["frame"][k] == "U" and rng.uniform() < min(1.0, apical[k, i]):
                b = rng.uniform(t0, t1 - 0.02)
                spikes.extend([b, b + 0.006])                # a burst: dendritic Ca spike
        trains.append(np.sort(spikes))
    gt = GroundTruth.from_trains(trains, 150.0)
    s = simulate_session(gt, stimulus=table, seed=2, path=tmp_path / "session",
                         imaging={"noise_sd_soma": 0.05})
    path = nwbmod.write_nwb(s, tmp_path / "session.nwb")
    msgs = list(nwbinspector.inspect_nwbfile(
        nwbfile_path=str(path), importance_threshold=nwbinspector.Importance.BEST_PRACTICE_VIOLATION))
    assert msgs == [], [m.message for m in msgs]
    back = nwbmod.read_nwb(path)
    for k, v in table.items():
        np.testing.assert_array_equal(back.stimulus[k], v, err_msg=k)
    frame_of = np.searchsorted(table["start_time"], s.frame_times, side="right") - 1
    after_u = np.isin(frame_of, np.flatnonzero(table["frame"] == "U") + 1)   # the G frame after U
    after_d = np.isin(frame_of, np.flatnonzero(table["frame"] == "D") + 1)
    apical = np.asarray(s.traces["dff_true"])[:, s.rois.compartment == "apical"]
    assert apical[after_u].mean() > 3 * apical[after_d].mean()     # measured ≈ 4×


def test_interval_tables_are_written_in_start_time_order(tmp_path):
    """The session holds plateaus by neuron (0: 5 s, 8 s; 1: 1 s; 2: 5 s); the file holds them by
    start time, ties by stop time, and reads back to the session's order."""
    from dendrite_sim.imaging import GroundTruth, simulate_session

    rng = np.random.default_rng(1)
    trains = [np.sort(rng.uniform(0, 10.0, 20)) for _ in range(3)]
    gt = GroundTruth.from_trains(trains, 10.0, plateaus=[[(5.0, 5.4), (8.0, 8.2)], [(1.0, 1.3)], [(5.0, 5.2)]])
    assert gt.plateau_unit.tolist() == [0, 0, 1, 2]
    s = simulate_session(gt, seed=1, path=tmp_path / "session", provenance={"scenario": "seed = 1\n"})
    path = nwbmod.write_nwb(s, tmp_path / "session.nwb")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        pl = io.read().intervals["plateaus"]
        assert pl["start_time"].data[:].tolist() == [1.0, 5.0, 5.0, 8.0]
        assert pl["stop_time"].data[:].tolist() == [1.3, 5.2, 5.4, 8.2]
        assert pl["unit_id"].data[:].tolist() == [1, 2, 0, 0]
    msgs = list(nwbinspector.inspect_nwbfile(
        nwbfile_path=str(path), importance_threshold=nwbinspector.Importance.BEST_PRACTICE_VIOLATION))
    assert msgs == [], [m.message for m in msgs]
    assert_sessions_equal(s, nwbmod.read_nwb(path))
    assert nwbmod.time_order([2.0, 1.0, 1.0], [3.0, 4.0, 2.0]).tolist() == [2, 1, 0]
