"""Regions of interest: one somatic ROI and ``n_apical`` distal apical ROIs per neuron.

Geometry follows the OpenScope credit-assignment recordings (Gillon et al. 2023 Sci Data 10:287):
a 400 µm field of view imaged at 512 × 512 pixels, L2/3 somata at ≈ 175 µm and their distal
apical dendrites at ≈ 50 µm below the pia (L5: somata ≈ 375 µm, distal tufts ≈ 20 µm).
Somatic ROIs are discs; dendritic ROIs are short segments of a branch near the cell's
lateral position (apical trunks rise roughly radially). One plane segmentation holds both,
with ``compartment``, ``cell_id`` and ``depth`` per ROI.

Each apical ROI carries a branch gain (log-normal, mean 1, c.v. ``branch_cv``) scaling how much of
the neuron's global tuft calcium event it sees.

ROI order: the n somata (ROI i is neuron i's soma), then the apical ROIs neuron by neuron.
Pixel masks are flat arrays (ROI index, x = column, y = row, weight) as NWB stores them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPARTMENTS = ("soma", "apical")


@dataclass(frozen=True)
class RoiGeometry:
    n_apical: int = 2             # apical ROIs per neuron
    soma_depth: float = 175.0     # µm below pia
    apical_depth: float = 50.0    # µm
    fov: float = 400.0            # µm field of view (square)
    pixels: int = 512             # pixels per side
    soma_radius: float = 6.0      # µm
    dendrite_length: float = 8.0  # µm
    dendrite_width: float = 1.5   # µm
    apical_spread: float = 15.0   # µm s.d. of the apical ROI's lateral offset from its soma
    branch_cv: float = 0.15       # c.v. of the branch gain


@dataclass
class RoiTable:
    cell_id: np.ndarray
    compartment: np.ndarray
    depth: np.ndarray
    x: np.ndarray
    y: np.ndarray
    gain: np.ndarray
    mask_roi: np.ndarray
    mask_x: np.ndarray
    mask_y: np.ndarray
    mask_weight: np.ndarray
    image_shape: tuple = (512, 512)
    pixel_size: float = 400.0 / 512

    @property
    def n_rois(self) -> int:
        return int(self.cell_id.size)

    def pixel_mask(self, i: int) -> np.ndarray:
        """ROI ``i``'s mask as an (n_pixels, 3) array of (x, y, weight)."""
        sel = self.mask_roi == i
        return np.stack([self.mask_x[sel], self.mask_y[sel], self.mask_weight[sel]], axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"cell_id": self.cell_id, "compartment": self.compartment, "depth": self.depth,
                "x": self.x, "y": self.y, "gain": self.gain, "mask_roi": self.mask_roi,
                "mask_x": self.mask_x, "mask_y": self.mask_y, "mask_weight": self.mask_weight}

    @classmethod
    def from_arrays(cls, a: dict, image_shape, pixel_size) -> RoiTable:
        return cls(*(np.asarray(a[k]) for k in ("cell_id", "compartment", "depth", "x", "y", "gain",
                                                "mask_roi", "mask_x", "mask_y", "mask_weight")),
                   image_shape=tuple(int(v) for v in image_shape), pixel_size=float(pixel_size))


def _disc(cx, cy, r, shape):
    h, w = shape
    x0, x1 = max(0, int(np.floor(cx - r))), min(w - 1, int(np.ceil(cx + r)))
    y0, y1 = max(0, int(np.floor(cy - r))), min(h - 1, int(np.ceil(cy + r)))
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    return xx[inside], yy[inside]


def _segment(cx, cy, length, width, angle, shape):
    h, w = shape
    reach = 0.5 * length + width
    x0, x1 = max(0, int(np.floor(cx - reach))), min(w - 1, int(np.ceil(cx + reach)))
    y0, y1 = max(0, int(np.floor(cy - reach))), min(h - 1, int(np.ceil(cy + reach)))
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    ux, uy = np.cos(angle), np.sin(angle)
    along = (xx - cx) * ux + (yy - cy) * uy
    across = -(xx - cx) * uy + (yy - cy) * ux
    inside = (np.abs(along) <= 0.5 * length) & (np.abs(across) <= 0.5 * width)
    if not inside.any():   # thinner than a pixel: keep the nearest pixel
        inside = (xx == int(round(np.clip(cx, 0, w - 1)))) & (yy == int(round(np.clip(cy, 0, h - 1))))
    return xx[inside], yy[inside]


def make_rois(n_neurons: int, rng: np.random.Generator, g: RoiGeometry | None = None) -> RoiTable:
    """Place ``n_neurons`` somata (non-overlapping where room allows) and their apical ROIs."""
    g = g or RoiGeometry()
    shape = (g.pixels, g.pixels)
    px = g.fov / g.pixels
    r = g.soma_radius / px
    lo, hi = r + 1, g.pixels - r - 2
    placed = np.zeros((n_neurons, 2))
    for i in range(n_neurons):           # rejection sampling; when crowded, the farthest candidate
        cand = rng.uniform(lo, hi, size=(64, 2))
        if i:
            d2 = ((cand[:, None, :] - placed[None, :i, :]) ** 2).sum(-1).min(axis=1)
            ok = np.flatnonzero(d2 > (2.2 * r) ** 2)
            placed[i] = cand[ok[0]] if ok.size else cand[np.argmax(d2)]
        else:
            placed[i] = cand[0]
    centres = [(float(a), float(b)) for a, b in placed]
    cell, comp, depth, xs, ys, gain = [], [], [], [], [], []
    m_roi, m_x, m_y = [], [], []

    def add(i, compartment, d, cx, cy, gn, mx, my):
        k = len(cell)
        cell.append(i)
        comp.append(compartment)
        depth.append(d)
        xs.append(cx)
        ys.append(cy)
        gain.append(gn)
        m_roi.append(np.full(mx.size, k))
        m_x.append(mx)
        m_y.append(my)

    for i, (cx, cy) in enumerate(centres):
        mx, my = _disc(cx, cy, r, shape)
        add(i, "soma", g.soma_depth, cx, cy, 1.0, mx, my)
    sig = np.sqrt(np.log1p(g.branch_cv ** 2))
    for i, (cx, cy) in enumerate(centres):
        for _ in range(g.n_apical):
            ax, ay = np.clip(np.array([cx, cy]) + rng.normal(0.0, g.apical_spread / px, 2),
                             2, g.pixels - 3)
            mx, my = _segment(ax, ay, g.dendrite_length / px, g.dendrite_width / px,
                              rng.uniform(0, np.pi), shape)
            gn = float(np.exp(rng.normal(-0.5 * sig * sig, sig))) if g.branch_cv > 0 else 1.0
            add(i, "apical", g.apical_depth, float(ax), float(ay), gn, mx, my)
    cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)
    mroi = cat(m_roi, np.int64)
    return RoiTable(np.array(cell, np.int64), np.array(comp, dtype="<U6"), np.array(depth, float),
                    np.array(xs, float), np.array(ys, float), np.array(gain, float), mroi,
                    cat(m_x, np.int64), cat(m_y, np.int64), np.ones(mroi.size, np.float32),
                    image_shape=shape, pixel_size=px)
