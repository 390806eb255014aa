"""NWB export of a :class:`~dendrite_sim.imaging.session.SyntheticSession` (pynwb).

Layout (the OpenScope credit-assignment files, DANDI 000037, use the same ophys paths)::

    general: Subject (in-silico), Device, ImagingPlane (indicator, rate, location, grid spacing)
    processing/ophys/ImageSegmentation/PlaneSegmentation
        pixel_mask, compartment ("soma" | "apical"), cell_id, depth (µm), x, y, branch_gain
    processing/ophys/Fluorescence/RoiResponseSeries     raw ROI fluorescence (frames × ROIs)
    processing/ophys/Fluorescence/Neuropil              neuropil estimate per ROI
    processing/ophys/DfOverF/RoiResponseSeries          ΔF/F (Allen-style baseline)
    units                  ground-truth spike_times (resolution = simulation dt) + burst_flag per spike
    intervals/trials       one row per stimulus segment, one column per stimulus-table column
    intervals/plateaus     ground-truth dendritic plateaus (start, stop, unit_id)
                           (every interval table in ascending start_time, ties by stop_time,
                           as NWB best practice asks; the session holds plateaus by neuron)
    processing/ground_truth
        DfOverF_noiseless, Calcium (RoiResponseSeries), one TimeSeries per latent trace
        (apical voltage, burst probability, error signal...; time × neurons)
    notes                  JSON: seed, resolved scenario, provenance, indicator and imaging constants
    was_generated_by       [("dendrite_sim", version)]

Large arrays are written through an hdmf :class:`GenericDataChunkIterator` over the (possibly
memory-mapped) session arrays, gzip-compressed, one buffer of frames at a time, into a temporary
file that is renamed at the end (:func:`~dendrite_sim.io.atomic.atomic_path`).
:func:`read_nwb` reads a file back into a session.
"""

from __future__ import annotations

import json
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from hdmf.backends.hdf5.h5_utils import H5DataIO
from hdmf.common import VectorData
from hdmf.data_utils import GenericDataChunkIterator

import dendrite_sim
from dendrite_sim.imaging.calcium import GroundTruth
from dendrite_sim.imaging.indicators import Indicator
from dendrite_sim.imaging.rois import RoiTable
from dendrite_sim.imaging.session import SyntheticSession, _jsonable
from dendrite_sim.io.atomic import atomic_path

_UNITS = {"mV": ("volts", 1e-3), "V": ("volts", 1.0), "nM": ("M", 1e-9), "uM": ("M", 1e-6),
          "pA": ("amperes", 1e-12), "nA": ("amperes", 1e-9), "ms": ("seconds", 1e-3), "s": ("seconds", 1.0)}
_STIM_DOCS = {
    "frame": "stimulus frame label (A, B, C, D, U = unexpected, G = grey)",
    "orientation": "mean Gabor orientation of the frame (degrees; NaN for grey frames)",
    "expected": "True unless the frame is an unexpected U frame",
    "unexpected_sequence": "True for every frame of a sequence whose D was replaced by U",
    "block": "index of the expected / unexpected block within the session",
    "sequence": "index of the A-B-C-D/U-G sequence within the session",
    "session": "imaging session (day) index",
}


class _Chunks(GenericDataChunkIterator):
    """Streams an array (e.g. a memory map) buffer by buffer into HDF5."""

    def __init__(self, array, **kw):
        self._array = array
        super().__init__(**kw)

    def _get_data(self, selection):
        return np.asarray(self._array[selection])

    def _get_maxshape(self):
        return self._array.shape

    def _get_dtype(self):
        return self._array.dtype


def _stream(array, buffer_mb: float = 64.0):
    """Compressed, chunked writing of a frames × columns array; tiny arrays are written whole."""
    a = array
    if a.size == 0 or a.ndim != 2:
        return H5DataIO(np.asarray(a), compression="gzip", compression_opts=4) if a.size else np.asarray(a)
    n_t, n_c = a.shape
    row_bytes = max(1, a.itemsize * n_c)
    rows_buf = max(1, min(n_t, int(buffer_mb * 2 ** 20) // row_bytes))
    rows_chunk = max(1, min(rows_buf, (1 << 20) // row_bytes))            # ≤ 1 MB HDF5 chunks
    if rows_buf < n_t:
        rows_buf = rows_buf // rows_chunk * rows_chunk
    it = _Chunks(a, chunk_shape=(rows_chunk, n_c), buffer_shape=(rows_buf, n_c))
    return H5DataIO(it, compression="gzip", compression_opts=4, shuffle=True)


def _start_time(s: SyntheticSession) -> datetime:
    stamp = s.provenance.get("created_utc")
    if stamp:
        try:
            t = datetime.fromisoformat(stamp)
            return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime.now(timezone.utc).replace(microsecond=0)


def build_nwbfile(s: SyntheticSession, extra_provenance: dict | None = None, buffer_mb: float = 64.0):
    """The in-memory :class:`pynwb.NWBFile` of a session (arrays wrapped for streaming)."""
    from pynwb import NWBFile, TimeSeries
    from pynwb.file import Subject
    from pynwb.misc import Units
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel

    ind = s.indicator
    im = s.imaging
    seed = s.provenance.get("seed")
    notes = {"seed": seed, "provenance": {**s.provenance, **(extra_provenance or {})},
             "indicator": ind.as_dict(), "imaging": im, "info": s.info, "session_name": s.name,
             "latent_units": s.ground_truth.latent_units,
             "rois": {"image_shape": list(s.rois.image_shape), "pixel_size": s.rois.pixel_size},
             "ground_truth": {"n_neurons": s.ground_truth.n_neurons, "duration": s.ground_truth.duration,
                              "dt": s.ground_truth.dt, "latent_rate": s.ground_truth.latent_rate}}
    start = _start_time(s)
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"dendrite_sim/{seed}/{s.name}/{start.isoformat()}")
    nwb = NWBFile(
        session_description=f"Synthetic two-photon calcium imaging ({ind.name}) of a simulated "
                            f"population of pyramidal neurons, somata and distal apical dendrites; "
                            f"session {s.name!r}, seed {seed}.",
        identifier=str(ident), session_start_time=start, session_id=s.name,
        experiment_description="In-silico dataset generated by dendrite_sim from simulated ground "
                               "truth (spikes, bursts, plateaus, latent dendritic signals) through a "
                               "calcium-indicator forward model; no animal was used.",
        institution="dendrite_sim (simulation)", lab="dendrite_sim",
        keywords=["synthetic data", "calcium imaging", "apical dendrites", "credit assignment",
                  "ground truth"],
        notes=json.dumps(notes, default=_jsonable, sort_keys=True),
        source_script=f"dendrite_sim {dendrite_sim.__version__}",
        source_script_file_name="dendrite_sim/io/nwb.py",
        was_generated_by=[["dendrite_sim", str(dendrite_sim.__version__)]],
        data_collection=f"Forward model: {ind.name} (K_d {ind.k_d} nM, n {ind.hill_n}, F_max "
                        f"{ind.dff_max}, tau_rise {ind.tau_rise} s, tau_decay {ind.tau_decay} s, "
                        f"1-AP dF/F {ind.dff_1ap}); frame rate {s.frame_rate} Hz.",
        stimulus_notes="Trials table: one row per stimulus segment (see column descriptions).",
    )
    nwb.subject = Subject(subject_id=f"in-silico-seed{seed}", species="Mus musculus", sex="U",
                          age="P90D", description="In-silico population modelled on mouse V1 "
                          "pyramidal neurons (simulated by dendrite_sim); not a real animal.")
    device = nwb.create_device(name="SyntheticMicroscope",
                               description="simulated two-photon microscope (dendrite_sim forward model)")
    channel = OpticalChannel(name="Green", description="GCaMP emission",
                             emission_lambda=float(im.get("emission_wavelength", 0.52)) * 1000.0)
    plane = nwb.create_imaging_plane(
        name="ImagingPlane", optical_channel=channel, device=device, indicator=ind.name,
        description=f"Somatic ROIs at {im.get('soma_depth')} µm and distal apical ROIs at "
                    f"{im.get('apical_depth')} µm below pia, projected onto one plane (see the "
                    f"depth column of the plane segmentation).",
        excitation_lambda=float(im.get("excitation_wavelength", 0.92)) * 1000.0,
        imaging_rate=float(s.frame_rate), location=str(im.get("location", "VISp")),
        grid_spacing=[s.rois.pixel_size, s.rois.pixel_size], grid_spacing_unit="micrometers")

    # ---- ROIs
    ophys = nwb.create_processing_module("ophys", "Synthetic optical physiology: ROI traces")
    segmentation = ImageSegmentation()
    ophys.add(segmentation)
    ps = segmentation.create_plane_segmentation(
        name="PlaneSegmentation", imaging_plane=plane,
        description="One somatic ROI and distal apical ROIs per simulated neuron")
    r = s.rois
    ps.add_column("compartment", "imaged compartment: 'soma' or 'apical' (distal apical dendrite)")
    ps.add_column("cell_id", "index of the simulated neuron (= id in the units table)")
    ps.add_column("depth", "depth of the ROI below pia (micrometers)")
    ps.add_column("x", "ROI centroid, x (pixels)")
    ps.add_column("y", "ROI centroid, y (pixels)")
    ps.add_column("branch_gain", "share of the neuron's tuft calcium event seen by this ROI (1 for somata)")
    order = np.argsort(r.mask_roi, kind="stable")
    bounds = np.searchsorted(r.mask_roi[order], np.arange(r.n_rois + 1))
    for i in range(r.n_rois):
        sel = order[bounds[i]:bounds[i + 1]]
        mask = [(int(x), int(y), float(w)) for x, y, w in zip(r.mask_x[sel], r.mask_y[sel], r.mask_weight[sel])]
        ps.add_roi(pixel_mask=mask, compartment=str(r.compartment[i]), cell_id=int(r.cell_id[i]),
                   depth=float(r.depth[i]), x=float(r.x[i]), y=float(r.y[i]), branch_gain=float(r.gain[i]))

    def region():
        return ps.create_roi_table_region(region=list(range(r.n_rois)), description="all ROIs")

    fl = Fluorescence(name="Fluorescence")
    dff = DfOverF(name="DfOverF")
    ophys.add(fl)     # containers are added to the module before their series are created
    ophys.add(dff)
    timing = {"rate": float(s.frame_rate), "starting_time": float(s.frame_times[0]) if s.n_frames else 0.0}
    tr = s.traces
    fl.create_roi_response_series(
        name="RoiResponseSeries", data=_stream(tr["fluorescence"], buffer_mb), rois=region(), unit="n.a.",
        description="raw ROI fluorescence (photon counts per frame)", **timing)
    fl.create_roi_response_series(
        name="Neuropil", data=_stream(tr["neuropil"], buffer_mb), rois=region(), unit="n.a.",
        description=f"neuropil fluorescence per ROI area; corrected trace = RoiResponseSeries − "
                    f"{im.get('neuropil_coefficient')} × Neuropil", **timing)
    dff.create_roi_response_series(
        name="RoiResponseSeries", data=_stream(tr["dff"], buffer_mb), rois=region(), unit="n.a.",
        description="dF/F of the neuropil-corrected trace (AllenSDK windowed-median baseline)", **timing)

    # ---- ground truth
    gt = s.ground_truth
    truth = nwb.create_processing_module("ground_truth", "Simulated ground truth behind the imaging data")
    from pynwb.ophys import RoiResponseSeries

    if "dff_true" in tr:
        truth.add(RoiResponseSeries(name="DfOverF_noiseless", data=_stream(tr["dff_true"], buffer_mb), rois=region(),
                                    unit="n.a.", description="noiseless dF/F0 of each ROI's cell", **timing))
    if "calcium" in tr:
        truth.add(RoiResponseSeries(name="Calcium", data=_stream(tr["calcium"], buffer_mb), rois=region(), unit="M",
                                    conversion=1e-9, description="frame-averaged free [Ca2+] (stored in nM)",
                                    **timing))
    for name, arr in gt.latents.items():
        u = gt.latent_units.get(name, "n.a.")
        unit, conv = _UNITS.get(u, (u if u not in ("", "1") else "n.a.", 1.0))
        truth.add(TimeSeries(name=name, data=_stream(np.asarray(arr), buffer_mb),
                             unit=unit, conversion=conv, rate=float(gt.latent_rate), starting_time=0.0,
                             description=f"ground-truth latent '{name}' per neuron (time × neurons), "
                                         f"stored in {u or 'dimensionless units'}"))

    units = Units(name="units", description="ground-truth spikes of the simulated neurons",
                  resolution=float(gt.dt))
    units.add_column("burst_flag", "per spike: True if it belongs to a burst (>= 2 spikes within 16 ms)",
                     index=True)
    if gt.n_neurons:
        bounds = np.searchsorted(gt.spike_unit, np.arange(gt.n_neurons + 1))
        for i in range(gt.n_neurons):
            a, b = bounds[i], bounds[i + 1]
            units.add_unit(spike_times=gt.spike_times[a:b], burst_flag=gt.burst_flag[a:b], id=i)
    nwb.units = units
    if gt.plateau_start.size:
        nwb.add_time_intervals(_time_intervals(
            "plateaus", "ground-truth dendritic plateau potentials (rows in ascending start_time)",
            gt.plateau_start, gt.plateau_stop, "plateau start (s)", "plateau stop (s)",
            {"unit_id": (np.asarray(gt.plateau_unit, np.int64), "simulated neuron (id in the units table)")}))

    # ---- stimulus table
    stim = s.stimulus
    if stim:
        extra = {k: (v, _STIM_DOCS.get(k, f"stimulus column {k}")) for k, v in stim.items()
                 if k not in ("start_time", "stop_time")}
        nwb.trials = _time_intervals("trials", "stimulus segments", stim["start_time"], stim["stop_time"],
                                     "segment start (s)", "segment stop (s)", extra)
    return nwb


def time_order(start, stop) -> np.ndarray:
    """Row order of an interval table: ascending start, ties by stop (stable otherwise)."""
    return np.lexsort((np.asarray(stop, float), np.asarray(start, float)))


def _time_intervals(name: str, description: str, start, stop, start_doc: str, stop_doc: str,
                    columns: dict):
    """A :class:`pynwb.epoch.TimeIntervals` with its rows sorted by :func:`time_order`;
    ``columns`` maps a column name to ``(values, description)``, one value per row."""
    from pynwb.epoch import TimeIntervals

    start, stop = np.asarray(start, float), np.asarray(stop, float)
    order = time_order(start, stop)
    cols = [VectorData(name="start_time", data=start[order], description=start_doc),
            VectorData(name="stop_time", data=stop[order], description=stop_doc)]
    for k, (v, doc) in columns.items():
        v = np.asarray(v)[order]
        cols.append(VectorData(name=k, data=v.tolist() if v.dtype.kind in "US" else v, description=doc))
    return TimeIntervals(name=name, description=description, columns=cols)


def write_nwb(s: SyntheticSession, path: str | Path, extra_provenance: dict | None = None,
              buffer_mb: float = 64.0) -> Path:
    """Write ``s`` to ``path`` atomically (temporary file renamed when complete); large arrays are
    read ``buffer_mb`` at a time."""
    from pynwb import NWBHDF5IO

    path = Path(path)
    nwb = build_nwbfile(s, extra_provenance, buffer_mb)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The file path provided", category=UserWarning)
        with NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwb)
    return path


def read_nwb(path: str | Path) -> SyntheticSession:
    """Read a file written by :func:`write_nwb` back into a session (arrays loaded)."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        notes = json.loads(nwb.notes)
        ophys = nwb.processing["ophys"]
        ps = ophys["ImageSegmentation"]["PlaneSegmentation"]
        n_rois = len(ps.id)
        masks = [np.asarray(ps["pixel_mask"][i]) for i in range(n_rois)]
        mask_arr = [np.array([tuple(m) for m in mk], dtype=float).reshape(-1, 3) for mk in masks]
        shape = tuple(int(v) for v in notes["rois"]["image_shape"])
        rois = RoiTable(
            np.asarray(ps["cell_id"].data[:], np.int64), np.asarray(ps["compartment"].data[:], dtype="<U6"),
            np.asarray(ps["depth"].data[:], float), np.asarray(ps["x"].data[:], float),
            np.asarray(ps["y"].data[:], float), np.asarray(ps["branch_gain"].data[:], float),
            np.concatenate([np.full(len(m), i) for i, m in enumerate(mask_arr)]).astype(np.int64)
            if n_rois else np.zeros(0, np.int64),
            np.concatenate([m[:, 0] for m in mask_arr]).astype(np.int64) if n_rois else np.zeros(0, np.int64),
            np.concatenate([m[:, 1] for m in mask_arr]).astype(np.int64) if n_rois else np.zeros(0, np.int64),
            np.concatenate([m[:, 2] for m in mask_arr]).astype(np.float32) if n_rois else np.zeros(0, np.float32),
            image_shape=shape, pixel_size=float(nwb.imaging_planes["ImagingPlane"].grid_spacing[0]))
        fl, dff = ophys["Fluorescence"], ophys["DfOverF"]
        raw = fl["RoiResponseSeries"]
        traces = {"fluorescence": raw.data[:], "neuropil": fl["Neuropil"].data[:],
                  "dff": dff["RoiResponseSeries"].data[:]}
        truth = nwb.processing["ground_truth"]
        if "DfOverF_noiseless" in truth.data_interfaces:
            traces["dff_true"] = truth["DfOverF_noiseless"].data[:]
        if "Calcium" in truth.data_interfaces:
            traces["calcium"] = truth["Calcium"].data[:]
        n_frames = traces["dff"].shape[0]
        frame_times = raw.starting_time + np.arange(n_frames) / raw.rate
        g = notes["ground_truth"]
        latents = {k: v.data[:] for k, v in truth.data_interfaces.items()
                   if k not in ("DfOverF_noiseless", "Calcium")}
        units = nwb.units
        if len(units.id):
            times = units["spike_times_index"].target.data[:]
            counts = np.diff(np.concatenate([[0], units["spike_times_index"].data[:]]))
            unit_of_spike = np.repeat(np.asarray(units.id.data[:]), counts)
            flags = units["burst_flag_index"].target.data[:]
        else:
            times, unit_of_spike, flags = np.zeros(0), np.zeros(0, np.int64), np.zeros(0, bool)
        if "plateaus" in nwb.intervals:
            pl = nwb.intervals["plateaus"]
            p_s, p_e, p_u = pl["start_time"].data[:], pl["stop_time"].data[:], pl["unit_id"].data[:]
        else:
            p_s, p_e, p_u = np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
        gt = GroundTruth(g["n_neurons"], g["duration"], times, unit_of_spike, np.asarray(flags, bool),
                         p_s, p_e, p_u, latents=latents, latent_rate=g["latent_rate"],
                         latent_units=notes["latent_units"], dt=float(units.resolution))
        stim = {}
        if nwb.trials is not None:
            for col in nwb.trials.columns:
                v = col.data[:]
                stim[col.name] = np.asarray([str(x) for x in v]) if len(v) and isinstance(v[0], (str, bytes)) \
                    else np.asarray(v)
        return SyntheticSession(notes["session_name"], float(raw.rate), frame_times, traces, rois, gt,
                                Indicator(**notes["indicator"]), notes["imaging"], stim,
                                notes["provenance"], notes["info"])


# --------------------------------------------------------------------------- any ΔF/F file
_COMPARTMENT_HINTS = (("dend", "apical"), ("apical", "apical"), ("tuft", "apical"), ("soma", "soma"))


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v[()])
    return str(v) if v is not None else ""


def read_dff_traces(path: str | Path, compartment: str | None = None) -> list[dict]:
    """Every ΔF/F ``RoiResponseSeries`` of an NWB file (any producer: ours, the Allen Institute's
    DANDI 000037 files, suite2p's NWB output), read with h5py so that no extension namespace is
    needed. Returns one dict per series: ``name``, ``dff`` (frames × ROIs, float32),
    ``frame_rate`` (Hz; from ``starting_time.rate`` or the median timestamp step),
    ``compartment`` and ``cell_id`` per ROI.

    Compartments: ``compartment`` if given; else the plane segmentation's ``compartment`` column
    (our files); else a hint in the descriptions of the segmentation, its imaging plane or the
    session ("dend", "apical", "tuft" → ``apical``; "soma" → ``soma``); else ``roi``. Cells: the
    ``cell_id`` column if there is one, else one cell per ROI. A file without a ΔF/F series
    raises ScenarioError naming it."""
    import h5py

    from dendrite_sim.core.errors import ScenarioError

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ScenarioError(str(path), f"expected a readable NWB (HDF5) file ({e})") from None
    out = []
    with f:
        series = []

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and _text(obj.attrs.get("neurodata_type")) == "DfOverF":
                for key, child in obj.items():
                    if isinstance(child, h5py.Group) and "data" in child:
                        series.append((f"{name}/{key}", child))
        f.visititems(visit)
        if not series:
            raise ScenarioError(str(path), "expected an NWB file with a DfOverF RoiResponseSeries "
                                "(processing/<module>/DfOverF/<series>)")
        session_text = _text(f["session_description"][()]) if "session_description" in f else ""
        for name, g in series:
            data = np.asarray(g["data"][()], dtype=np.float32)
            if data.ndim == 1:
                data = data[:, None]
            if "starting_time" in g:
                rate = float(g["starting_time"].attrs["rate"])
            else:
                t = np.asarray(g["timestamps"][()], float)
                rate = float(1.0 / np.median(np.diff(t))) if t.size > 1 else float("nan")
            n = data.shape[1]
            comp, cells, hints = None, np.arange(n), [session_text]
            if "rois" in g:
                table = f[g["rois"].attrs["table"]]
                idx = np.asarray(g["rois"][()], np.int64)
                hints.insert(0, _text(table.attrs.get("description")))
                if "imaging_plane" in table:
                    plane = table["imaging_plane"]
                    hints.insert(1, " ".join(_text(plane[k][()]) if k in plane else ""
                                             for k in ("description", "location")))
                if "compartment" in table:
                    comp = np.asarray([_text(v) for v in table["compartment"][()]])[idx]
                if "cell_id" in table:
                    cells = np.asarray(table["cell_id"][()], np.int64)[idx]
            if compartment is not None:
                comp = np.full(n, compartment)
            if comp is None:
                label = "roi"
                for text in hints:
                    low = text.lower()
                    hit = next((c for key, c in _COMPARTMENT_HINTS if key in low), None)
                    if hit:
                        label = hit
                        break
                comp = np.full(n, label)
            label = path.name if len(series) == 1 else f"{path.name}:{name}"
            out.append({"name": label, "dff": data, "frame_rate": rate,
                        "compartment": np.asarray(comp).astype(str), "cell_id": np.asarray(cells)})
    return out


def write_movie_nwb(s: SyntheticSession, params, path: str | Path, duration: float = 5.0, seed: int = 0) -> Path:
    """The imaging movie (:func:`dendrite_sim.imaging.movie.render_movie`, first ``duration`` s)
    as ``acquisition/TwoPhotonSeries`` (uint16 photons, gzip, one chunk per frame, streamed) with
    the ground-truth footprints in ``processing/ophys/ImageSegmentation/PlaneSegmentation``
    (pixel masks, ``compartment``, ``cell_id``), written atomically."""
    from hdmf.data_utils import DataChunkIterator
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import ImageSegmentation, OpticalChannel, TwoPhotonSeries

    from dendrite_sim.imaging.movie import render_movie

    nwb = NWBFile(session_description=f"Synthetic two-photon movie of session {s.name!r} "
                                      f"(dendrite_sim forward model; no animal was used)",
                  identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"dendrite_sim/movie/{s.seed}/{s.name}/{seed}")),
                  session_start_time=_start_time(s), session_id=f"{s.name}-movie",
                  was_generated_by=[["dendrite_sim", str(dendrite_sim.__version__)]])
    device = nwb.create_device(name="SyntheticMicroscope", description="simulated two-photon microscope")
    plane = nwb.create_imaging_plane(
        name="ImagingPlane", optical_channel=OpticalChannel(name="Green", description="GCaMP emission",
                                                            emission_lambda=520.0),
        device=device, indicator=s.indicator.name, description="somata and distal apical ROIs in one plane",
        excitation_lambda=920.0, imaging_rate=float(s.frame_rate), location=str(s.imaging.get("location", "VISp")),
        grid_spacing=[s.rois.pixel_size, s.rois.pixel_size], grid_spacing_unit="micrometers")

    def frames():
        for _, chunk in render_movie(s, params, duration, seed):
            yield from chunk

    h, w = s.rois.image_shape
    data = H5DataIO(DataChunkIterator(data=frames(), maxshape=(None, h, w), dtype=np.dtype(np.uint16),
                                      buffer_size=16),
                    compression="gzip", compression_opts=4, chunks=(1, h, w))
    nwb.add_acquisition(TwoPhotonSeries(name="TwoPhotonSeries", data=data, imaging_plane=plane, unit="n.a.",
                                        rate=float(s.frame_rate), starting_time=0.0,
                                        description="photon counts per pixel and frame (shot and read noise)"))
    ophys = nwb.create_processing_module("ophys", "ground-truth footprints of the movie")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(name="PlaneSegmentation", imaging_plane=plane,
                                       description="ground-truth ROI masks", reference_images=[])
    ps.add_column("compartment", "'soma' or 'apical'")
    ps.add_column("cell_id", "simulated neuron")
    r = s.rois
    for i in range(r.n_rois):
        sel = r.mask_roi == i
        ps.add_roi(pixel_mask=[(int(x), int(y), 1.0) for x, y in zip(r.mask_x[sel], r.mask_y[sel])],
                   compartment=str(r.compartment[i]), cell_id=int(r.cell_id[i]))
    path = Path(path)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The file path provided", category=UserWarning)
        with NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwb)
    return path
