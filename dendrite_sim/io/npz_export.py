"""``.npz`` export of a :class:`~dendrite_sim.imaging.session.SyntheticSession` (no NWB needed).

One compressed archive, flat keys, every array as the session holds it::

    frame_times, frame_rate                      traces: fluorescence, neuropil, dff, dff_true, calcium
    roi_<column> (cell_id, compartment, depth, x, y, gain, mask_roi, mask_x, mask_y, mask_weight)
    roi_image_shape, roi_pixel_size
    spike_times, spike_unit, burst_flag, plateau_start, plateau_stop, plateau_unit
    latent_<name>, latent_rate                   stim_<column>
    meta_json   (JSON: format, name, indicator, imaging constants, provenance incl. seed and
                 resolved scenario, latent units, ground-truth scalars)

Traces are frames × ROIs (float32). Arrays are streamed into the zip member in 16-MiB pieces
(NumPy's writer for non-file streams), so memory-mapped traces are never loaded whole, and
the archive is written to a temporary file renamed at the end (:func:`atomic_path`).
:func:`read_npz` rebuilds the session.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dendrite_sim.imaging.calcium import GroundTruth
from dendrite_sim.imaging.indicators import Indicator
from dendrite_sim.imaging.rois import RoiTable
from dendrite_sim.imaging.session import SyntheticSession, _jsonable
from dendrite_sim.io.atomic import atomic_path

FORMAT = "dendrite_sim.npz_export/1"
_GT = ("spike_times", "spike_unit", "burst_flag", "plateau_start", "plateau_stop", "plateau_unit")


def export_npz(s: SyntheticSession, path: str | Path, extra_provenance: dict | None = None) -> Path:
    path = Path(path)
    gt = s.ground_truth
    arrays = {"frame_times": s.frame_times, "frame_rate": np.float64(s.frame_rate)}
    arrays.update(s.traces)
    arrays.update({f"roi_{k}": v for k, v in s.rois.arrays().items()})
    arrays["roi_image_shape"] = np.asarray(s.rois.image_shape, np.int64)
    arrays["roi_pixel_size"] = np.float64(s.rois.pixel_size)
    arrays.update({k: getattr(gt, k) for k in _GT})
    arrays.update({f"latent_{k}": v for k, v in gt.latents.items()})
    arrays["latent_rate"] = np.float64(gt.latent_rate)
    arrays.update({f"stim_{k}": np.asarray(v) for k, v in s.stimulus.items()})
    meta = {"format": FORMAT, "name": s.name, "indicator": s.indicator.as_dict(),
            "imaging": s.imaging, "provenance": {**s.provenance, **(extra_provenance or {})},
            "info": s.info, "trace_names": list(s.traces), "latent_names": list(gt.latents),
            "latent_units": gt.latent_units, "stimulus_columns": list(s.stimulus),
            "n_neurons": gt.n_neurons, "duration": gt.duration, "dt": gt.dt}
    arrays["meta_json"] = np.array(json.dumps(meta, default=_jsonable))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


def read_npz(path: str | Path) -> SyntheticSession:
    """The session stored by :func:`export_npz`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta_json"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a dendrite_sim npz export")
        rois = RoiTable.from_arrays({k[4:]: z[k] for k in z.files
                                     if k.startswith("roi_") and k not in ("roi_image_shape", "roi_pixel_size")},
                                    z["roi_image_shape"], z["roi_pixel_size"])
        gt = GroundTruth(meta["n_neurons"], meta["duration"], *(z[k] for k in _GT),
                         latents={k: z[f"latent_{k}"] for k in meta["latent_names"]},
                         latent_rate=float(z["latent_rate"]), latent_units=meta["latent_units"],
                         dt=meta["dt"])
        return SyntheticSession(meta["name"], float(z["frame_rate"]), z["frame_times"],
                                {k: z[k] for k in meta["trace_names"]}, rois, gt,
                                Indicator(**meta["indicator"]), meta["imaging"],
                                {k: z[f"stim_{k}"] for k in meta["stimulus_columns"]},
                                meta["provenance"], meta["info"])
