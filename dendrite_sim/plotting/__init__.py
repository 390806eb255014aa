"""Figures people expect: rasters, per-compartment traces, learning curves, rule maps."""

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
