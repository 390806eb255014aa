"""Imaging movie with ROI footprints: frames × pixels for testing segmentation pipelines.

Per pixel p and frame k (photons; the ROI traces of :mod:`forward` give r_i[k] = 1 + ΔF/F₀ of
ROI i without noise)::

    λ_p[k] = Σ_i P_i a_i(p) r_i[k]  +  ρ P̄ b(p) n[k]
    F_p[k] ~ Poisson(λ_p[k]) + N(0, σ_read²)        clipped to [0, 65535], uint16

Footprints a_i (Σ_p a_i(p) = 1): a soma is its disc with a dimmer nucleus (GCaMP is cytosolic:
the centre third of the radius at 40 %) blurred by the point-spread function (Gaussian, s.d.
``psf`` pixels); an apical ROI is its branch segment blurred the same way. P_i: the ROI's
resting photons per frame (:meth:`~dendrite_sim.imaging.config.ImagingParams.optics`);
b(p): a smooth neuropil field (white noise low-passed at 8 pixels, mean 1, c.v. 0.3) times the
mean resting photons per ROI pixel P̄, with the plane's neuropil time course
n[k] = 1 + g · mean_i ΔF/F₀_i (``neuropil_gain``, as in :mod:`forward`); ρ = ``neuropil_ratio``.
All somata and apical ROIs are drawn into one plane (the NWB files project both depths onto
one plane in the same way). Ground-truth masks: the ROI table's pixel masks, as a label image
per compartment (0 = background, ROI index + 1).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def footprints(rois, psf: float = 1.0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per ROI (flat pixel indices, weights summing to 1) of its blurred footprint."""
    h, w = rois.image_shape
    out = []
    order = np.argsort(rois.mask_roi, kind="stable")
    bounds = np.searchsorted(rois.mask_roi[order], np.arange(rois.n_rois + 1))
    for i in range(rois.n_rois):
        sel = order[bounds[i]:bounds[i + 1]]
        x, y = rois.mask_x[sel], rois.mask_y[sel]
        pad = int(np.ceil(3 * psf)) + 1
        x0, y0 = max(0, x.min() - pad), max(0, y.min() - pad)
        x1, y1 = min(w, x.max() + pad + 1), min(h, y.max() + pad + 1)
        patch = np.zeros((y1 - y0, x1 - x0))
        val = np.ones(x.size)
        if rois.compartment[i] == "soma":
            d = np.hypot(x - rois.x[i], y - rois.y[i])
            val[d < d.max() / 3.0] = 0.4
        patch[y - y0, x - x0] = val
        if psf > 0:
            patch = gaussian_filter(patch, psf)
        patch /= patch.sum()
        yy, xx = np.nonzero(patch > 1e-4 * patch.max())
        wgt = patch[yy, xx]
        out.append(((yy + y0) * w + (xx + x0), wgt / wgt.sum(), np.array([y0, x0])))
    return out


def label_images(rois) -> dict[str, np.ndarray]:
    """Ground-truth masks: ``{compartment: (H, W) int32 labels}``, label = ROI index + 1."""
    h, w = rois.image_shape
    out = {}
    for comp in dict.fromkeys(np.asarray(rois.compartment).astype(str)):
        img = np.zeros((h, w), np.int32)
        for i in np.flatnonzero(rois.compartment == comp):
            sel = rois.mask_roi == i
            img[rois.mask_y[sel], rois.mask_x[sel]] = i + 1
        out[comp] = img
    return out


def render_movie(session, params, duration: float = 5.0, seed: int = 0, psf: float = 1.0,
                 chunk: int = 64):
    """Yield the movie's frames in chunks ``(k0, uint16 array (n, H, W))`` over the first
    ``duration`` s of ``session`` (module docstring); deterministic in ``seed`` and the same
    for any ``chunk`` (the field, shot and read noise have their own streams)."""
    rois = session.rois
    h, w = rois.image_shape
    n_frames = min(session.n_frames, int(round(duration * session.frame_rate)))
    g_field, g_shot, g_read = np.random.default_rng(seed).spawn(3)   # separate streams: chunking-independent
    fps = footprints(rois, psf)
    photons = np.array([params.optics(str(c)).photons for c in rois.compartment])
    pbar = float(np.mean([p / max(1, np.sum(rois.mask_roi == i)) for i, p in enumerate(photons)]))
    field = gaussian_filter(g_field.standard_normal((h, w)), 8.0)
    field = 1.0 + 0.3 * field / (field.std() or 1.0)
    background = np.clip(field, 0.2, None).reshape(-1) * pbar * params.neuropil_ratio
    true = session.traces["dff_true"]
    for k0 in range(0, n_frames, chunk):
        k1 = min(n_frames, k0 + chunk)
        r = 1.0 + np.asarray(true[k0:k1], np.float64)                       # (n, ROIs)
        npil = 1.0 + params.neuropil_gain * (r - 1.0).mean(axis=1)
        lam = np.empty((k1 - k0, h * w))
        lam[:] = background[None, :]
        lam *= npil[:, None]
        for i, (pix, wgt, _) in enumerate(fps):
            lam[:, pix] += (photons[i] * r[:, i])[:, None] * wgt[None, :]
        f = g_shot.poisson(lam).astype(np.float64) + g_read.standard_normal(lam.shape) * params.read_noise
        yield k0, np.clip(np.rint(f), 0, 65535).astype(np.uint16).reshape(k1 - k0, h, w)


def write_tiff(session, params, path, duration: float = 5.0, seed: int = 0) -> dict:
    """The movie as a multi-page TIFF (zlib; needs ``tifffile``) and its ground-truth masks as
    ``<stem>_masks.tif`` (one label page per compartment). Returns paths and frame count."""
    from pathlib import Path

    import tifffile

    path = Path(path)
    movie = np.concatenate([f for _, f in render_movie(session, params, duration, seed)])   # short by design
    tifffile.imwrite(path, movie, compression="zlib", photometric="minisblack",
                     metadata={"axes": "TYX", "fps": float(session.frame_rate)})
    n = int(movie.shape[0])
    labels = label_images(session.rois)
    mask_path = path.with_name(path.stem + "_masks.tif")
    tifffile.imwrite(mask_path, np.stack(list(labels.values())), compression="zlib",
                     metadata={"compartments": list(labels)})
    return {"movie": path, "masks": mask_path, "n_frames": n, "compartments": list(labels)}
