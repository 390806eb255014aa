"""The forward model: ground truth → ROI traces → :class:`SyntheticSession`.

Per ROI (soma or distal apical, see :mod:`rois`):

1. [Ca²⁺](t) on ``subframes`` exposure samples per frame (:mod:`calcium`);
2. brightness b([Ca²⁺]) through the indicator's Hill curve, averaged over each frame
   (frame integration happens on fluorescence, after the nonlinearity), giving the noiseless
   ratio r = ⟨b⟩/b(c_rest) and ``dff_true`` = r − 1;
3. the plane's neuropil n(t) = 1 + g · mean(dff_true of the plane's ROIs);
4. photons, drift, shot and read noise (:mod:`optics`): ``fluorescence`` and ``neuropil``;
5. ``dff`` = Allen-style ΔF/F (:mod:`dff`) of F_roi − r_np F_np.

Random numbers come from one named stream per ROI (``imaging/roi<i>``) under the session seed,
so the result does not depend on how ROIs are batched. Outputs are written ROI block by ROI
block into preallocated frames × ROIs arrays (memory maps for large sessions).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.imaging import calcium as ca
from dendrite_sim.imaging import dff as dffmod
from dendrite_sim.imaging import optics
from dendrite_sim.imaging.config import ImagingParams
from dendrite_sim.imaging.indicators import Indicator, brightness, resolve
from dendrite_sim.imaging.rois import RoiTable, make_rois
from dendrite_sim.imaging.session import TRACE_NAMES, SessionWriter, SyntheticSession

BLOCK = 32   # ROIs per block


def n_frames_for(duration: float, frame_rate: float) -> int:
    return int(np.floor(duration * frame_rate + 1e-9))


def _roi_calcium(gt, roi, rois, cp, grid, ind, cache):
    """[Ca²⁺] on the exposure grid for ROI ``roi`` (apical transients cached per neuron)."""
    t0, dt, n = grid
    i = int(rois.cell_id[roi])
    if rois.compartment[roi] == "soma":
        return ca.soma_calcium(gt, i, cp, t0, dt, n, ind.tau_rise, ind.tau_decay)
    if i not in cache:
        cache.clear()
        cache[i] = ca.apical_calcium(gt, i, cp, t0, dt, n, ind.tau_rise, ind.tau_decay) - cp.c_rest
    return cp.c_rest + float(rois.gain[roi]) * cache[i]


def image_population(gt: ca.GroundTruth, rois: RoiTable, params: ImagingParams, ind: Indicator,
                     seed: int, out: Mapping[str, np.ndarray] | None = None) -> dict:
    """Fill (or allocate) the frames × ROIs traces named in :data:`TRACE_NAMES`; returns them."""
    fr = params.frame_rate
    n_frames = n_frames_for(gt.duration, fr)
    n_rois = rois.n_rois
    if out is None:
        out = {k: np.zeros((n_frames, n_rois), np.float32) for k in TRACE_NAMES}
    cp = params.calcium(ind)
    grid = optics.subframe_times(n_frames, fr, params.subframes)
    b_rest = float(brightness(cp.c_rest, ind))
    # pass 1: noiseless calcium and ΔF/F₀ per ROI; plane means for the neuropil
    planes = {c: np.flatnonzero(rois.compartment == c) for c in np.unique(rois.compartment)}
    plane_sum = {c: np.zeros(n_frames) for c in planes}
    cache: dict = {}
    for b0 in range(0, n_rois, BLOCK):
        idx = range(b0, min(n_rois, b0 + BLOCK))
        c_blk = np.empty((n_frames, len(idx)))
        d_blk = np.empty((n_frames, len(idx)))
        for j, r in enumerate(idx):
            c_sub = _roi_calcium(gt, r, rois, cp, grid, ind, cache)
            c_blk[:, j] = optics.frame_average(c_sub, params.subframes)
            d_blk[:, j] = optics.frame_average(brightness(c_sub, ind), params.subframes) / b_rest - 1.0
            plane_sum[rois.compartment[r]] += d_blk[:, j]
        out["calcium"][:, b0:b0 + len(idx)] = c_blk
        out["dff_true"][:, b0:b0 + len(idx)] = d_blk
    neuropil = {c: 1.0 + params.neuropil_gain * plane_sum[c] / max(1, planes[c].size) for c in planes}
    # pass 2: photons, noise, drift, neuropil subtraction, ΔF/F
    photons = {}
    for b0 in range(0, n_rois, BLOCK):
        idx = range(b0, min(n_rois, b0 + BLOCK))
        ratio = 1.0 + np.asarray(out["dff_true"][:, b0:b0 + len(idx)], dtype=np.float64)
        f_blk = np.empty((n_frames, len(idx)))
        n_blk = np.empty((n_frames, len(idx)))
        dff_blk = np.empty((n_frames, len(idx)))
        for j, r in enumerate(idx):
            comp = str(rois.compartment[r])
            p = params.optics(comp)
            photons[comp] = p.photons
            g = rngmod.stream(seed, f"imaging/roi{r}")
            d = optics.drift(n_frames, fr, p, g)
            f_roi, f_np = optics.detect(ratio[:, j], neuropil[comp], d, p, g)
            f_blk[:, j], n_blk[:, j] = f_roi, f_np
            dff_blk[:, j], _ = dffmod.allen_dff(
                f_roi - p.neuropil_coefficient * f_np, fr, params.dff_long_window,
                params.dff_short_window, params.dff_noise_window)
        out["fluorescence"][:, b0:b0 + len(idx)] = f_blk
        out["neuropil"][:, b0:b0 + len(idx)] = n_blk
        out["dff"][:, b0:b0 + len(idx)] = dff_blk
    out = dict(out)
    out["_info"] = {"ca_per_spike_nM": cp.ca_per_spike, "resting_calcium_nM": cp.c_rest,
                    "photons_per_frame": photons,
                    "noise_sd_soma": params.noise_sd_soma, "noise_sd_apical": params.noise_sd_apical}
    return out


def simulate_session(gt: ca.GroundTruth, *, indicator="GCaMP6f", imaging: ImagingParams | Mapping | None = None,
                     rois: RoiTable | None = None, stimulus: Mapping | None = None, seed: int = 0,
                     name: str = "session", provenance: Mapping | None = None,
                     path: str | Path | None = None) -> SyntheticSession:
    """Image ``gt`` and package the result.

    ``indicator``: preset name, scenario table or :class:`Indicator`; ``imaging``:
    :class:`ImagingParams` or an ``[imaging]`` scenario table; ``rois``: default one soma and
    ``n_apical`` apical ROIs per neuron placed with the ``imaging/rois`` stream; ``stimulus``:
    column table (one row per stimulus segment); ``provenance``: recorded with the session
    (seed and resolved scenario at least). With ``path`` the traces are produced into memory
    maps inside a temporary folder that is renamed to ``path`` when complete, and the returned
    session is memory-mapped from ``path``.
    """
    ind = resolve(indicator)
    params = imaging if isinstance(imaging, ImagingParams) else ImagingParams.from_section(imaging)
    if rois is None:
        rois = make_rois(gt.n_neurons, rngmod.stream(seed, "imaging/rois"), params.geometry())
    n_frames = n_frames_for(gt.duration, params.frame_rate)
    prov = {"seed": int(seed), **dict(provenance or {})}
    stim = {k: np.asarray(v) for k, v in (stimulus or {}).items()}
    if stim:
        if "start_time" not in stim or "stop_time" not in stim:
            raise ScenarioError("stimulus", "expected a table with start_time and stop_time columns (s)")
        n_rows = {k: v.shape for k, v in stim.items()}
        if len(set(n_rows.values())) != 1 or stim["start_time"].ndim != 1:
            raise ScenarioError("stimulus", f"expected 1-D columns of equal length, got shapes {n_rows}")
    frame_times = np.arange(n_frames) / params.frame_rate

    def package(traces):
        info = traces.pop("_info")
        return SyntheticSession(name, params.frame_rate, frame_times, traces, rois, gt, ind,
                                params.as_dict(), stim, prov, info)

    if path is None:
        return package(image_population(gt, rois, params, ind, seed))
    with SessionWriter(path, n_frames, rois.n_rois) as w:
        traces = image_population(gt, rois, params, ind, seed, out=w.traces)
        w.commit(package(traces))
    return SyntheticSession.load(path)
