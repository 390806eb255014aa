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

import importlib

_EXPORTS = {
    "GroundTruth": "calcium", "classify_bursts": "calcium", "IMAGING_SCHEMA": "config",
    "ImagingParams": "config", "image_population": "forward", "simulate_session": "forward",
    "Indicator": "indicators", "RoiTable": "rois", "make_rois": "rois", "SyntheticSession": "session",
}
__all__ = list(_EXPORTS)


def __getattr__(name):   # lazy: importing one submodule (e.g. the indicator registry) stays cheap
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"dendrite_sim.imaging.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'dendrite_sim.imaging' has no attribute {name!r}")
