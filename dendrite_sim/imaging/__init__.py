"""Synthetic calcium imaging: indicator presets, calcium, optics, ΔF/F, ROIs and sessions.

Typical use (a scenario hands over its simulated ground truth)::

    from dendrite_sim.imaging import GroundTruth, simulate_session
    gt = GroundTruth.from_trains(spike_trains, duration=600.0, plateaus=plateaus,
                                 latents={"v_apical": v_d}, latent_rate=100.0,
                                 latent_units={"v_apical": "mV"})
    session = simulate_session(gt, indicator="GCaMP6f", imaging=cfg["imaging"],
                               stimulus=frame_table, seed=ctx.seed, path=ctx.out / "session")

then ``dendrite-sim export RUN_DIR --format nwb|npz``.
"""

from dendrite_sim.imaging.calcium import GroundTruth, classify_bursts
from dendrite_sim.imaging.config import IMAGING_SCHEMA, ImagingParams
from dendrite_sim.imaging.forward import image_population, simulate_session
from dendrite_sim.imaging.indicators import Indicator
from dendrite_sim.imaging.rois import RoiTable, make_rois
from dendrite_sim.imaging.session import SyntheticSession

__all__ = ["GroundTruth", "classify_bursts", "IMAGING_SCHEMA", "ImagingParams", "image_population",
           "simulate_session", "Indicator", "RoiTable", "make_rois", "SyntheticSession"]
