"""Scenario parameters of the imaging forward model (the ``[imaging]`` table).

Every constant of :mod:`calcium`, :mod:`optics`, :mod:`dff` and :mod:`rois` is a key here, with
units where it has a dimension. An experiment that images its network declares
``sections = {"indicator": "indicator", "imaging": IMAGING_SCHEMA, ...}`` and builds
:class:`ImagingParams` with :meth:`ImagingParams.from_section`.

Default calibration (what the defaults were chosen to resemble):

* single-spike somatic ΔF/F₀: the indicator preset (GCaMP6f 0.034, MLspike fit of the GENIE in
  vivo data, Deneux et al. 2016), so lone somatic spikes sit below the noise as in population
  imaging of transgenic GCaMP6f mice (Huang et al. 2021 eLife 10:e51675).
* baseline noise: somatic ROIs 0.08 ΔF/F₀ s.d. at 30 Hz (Rupprecht et al. 2021 noise level
  ν ≈ 1.4 %/√Hz), dendritic ROIs 0.15 (ν ≈ 2.6 %/√Hz): small dendritic ROIs collect fewer photons
  and are noisier, as in the OpenScope dendritic planes (Gillon et al. 2023). These are chosen
  within the ν ≈ 1–3 %/√Hz range Rupprecht et al. 2021 report for 30-Hz GCaMP6 population
  imaging; check them against the DANDI 000037 traces before quantitative comparisons.
* tuft events: a 2-spike burst (dendritic Ca²⁺ spike) peaks near ΔF/F₀ ≈ 1 in the apical ROI
  with GCaMP6f, a lone bAP at ≈ 0.005; the order of the large, global tuft events of BAC firing
  (Larkum et al. 1999) imaged with GCaMP6 in L5/L2-3 tufts.
* neuropil contamination ratio 0.7 (Kerlin et al. 2010; Chen et al. 2013; the Allen pipeline
  estimates it per ROI, typically 0.6–0.8).
* ΔF/F: the AllenSDK windowed-median baseline (180 s long window, 101-frame short window).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from dendrite_sim.core.schema import Field, validate_section
from dendrite_sim.imaging.calcium import CalciumParams
from dendrite_sim.imaging.indicators import Indicator, calcium_per_spike
from dendrite_sim.imaging.optics import OpticsParams, photons_for_noise
from dendrite_sim.imaging.rois import RoiGeometry


def _q(default, doc, dim, **kw):
    return Field("quantity", default, doc, dimension=dim, **kw)


def _f(default, doc, **kw):
    return Field("float", default, doc, **kw)


IMAGING_SCHEMA: dict[str, Field] = {
    "frame_rate": _q("30 Hz", "imaging frame rate (OpenScope: 30.08 Hz)", "frequency", lo=0, lo_open=True),
    "subframes": Field("int", 8, "exposure samples per frame for frame integration", lo=1, hi=1000),
    "resting_calcium": _q("50 nM", "resting free [Ca2+]", "concentration", lo=0, lo_open=True),
    "ca_per_spike": _q(None, "somatic [Ca2+] step per spike; default: from the indicator's 1-AP "
                       "ΔF/F0", "concentration", lo=0, lo_open=True, nullable=True),
    "bap_fraction": _f(0.15, "distal apical Ca step per backpropagating AP / somatic step", lo=0),
    "burst_ratio": _f(8.0, "apical Ca-spike step per burst spike / somatic step", lo=0),
    "plateau_ratio": _f(150.0, "apical influx per second of plateau / somatic step (1/s)", lo=0),
    "noise_sd_soma": _f(0.08, "requested baseline ΔF/F0 s.d. of somatic ROIs (null: use "
                        "photons_soma)", lo=0, lo_open=True, nullable=True),
    "noise_sd_apical": _f(0.15, "requested baseline ΔF/F0 s.d. of apical ROIs (null: use "
                          "photons_apical)", lo=0, lo_open=True, nullable=True),
    "photons_soma": _f(1000.0, "resting photons per frame of a somatic ROI", lo=0, lo_open=True),
    "photons_apical": _f(300.0, "resting photons per frame of an apical ROI", lo=0, lo_open=True),
    "read_noise": _f(10.0, "detector read noise per ROI and frame (photons r.m.s.)", lo=0),
    "neuropil_ratio": _f(0.5, "neuropil brightness per ROI area / resting cell", lo=0),
    "neuropil_coefficient": _f(0.7, "neuropil contamination ratio r (F_roi = F_cell + r F_np)",
                               lo=0, hi=2),
    "neuropil_gain": _f(0.5, "neuropil ΔF/F per unit of the plane's mean ΔF/F", lo=0),
    "annulus_ratio": _f(4.0, "neuropil annulus area / ROI area", lo=0, lo_open=True),
    "drift_sd": _f(0.02, "s.d. of the slow multiplicative baseline wander", lo=0),
    "drift_tau": _q("300 s", "correlation time of the baseline wander", "time", lo=0, lo_open=True),
    "bleach_fraction": _f(0.05, "asymptotic fractional loss of brightness to bleaching", lo=0, hi=1,
                          hi_open=True),
    "bleach_tau": _q("1800 s", "bleaching time constant", "time", lo=0, lo_open=True),
    "dff_long_window": _q("180 s", "long running-median baseline window (Allen: 5401 frames)",
                          "time", lo=0, lo_open=True),
    "dff_short_window": _q("3.37 s", "short running-median window (Allen: 101 frames)", "time",
                           lo=0, lo_open=True),
    "dff_noise_window": _q("1.03 s", "high-pass window of the noise estimate (Allen: 31 frames)",
                           "time", lo=0, lo_open=True),
    "n_apical": Field("int", 2, "apical ROIs per neuron", lo=0, hi=64),
    "soma_depth": _q("175 um", "depth of the somatic plane (L2/3)", "length", lo=0),
    "apical_depth": _q("50 um", "depth of the distal apical plane (L2/3)", "length", lo=0),
    "fov": _q("400 um", "field of view (square)", "length", lo=0, lo_open=True),
    "pixels": Field("int", 512, "pixels per side of the field of view", lo=16, hi=8192),
    "soma_radius": _q("6 um", "somatic ROI radius", "length", lo=0, lo_open=True),
    "dendrite_length": _q("8 um", "dendritic ROI length", "length", lo=0, lo_open=True),
    "dendrite_width": _q("1.5 um", "dendritic ROI width", "length", lo=0, lo_open=True),
    "apical_spread": _q("15 um", "s.d. of an apical ROI's lateral offset from its soma", "length", lo=0),
    "branch_cv": _f(0.15, "c.v. of the apical ROIs' share of the tuft event", lo=0),
    "location": Field("str", "VISp", "brain area of the imaging plane"),
    "excitation_wavelength": _q("920 nm", "two-photon excitation wavelength", "length", lo=0, lo_open=True),
    "emission_wavelength": _q("520 nm", "emission filter centre", "length", lo=0, lo_open=True),
}


@dataclass(frozen=True)
class ImagingParams:
    """Imaging constants in the imaging code's units: s, Hz, nM, µm, photons."""

    frame_rate: float = 30.0
    subframes: int = 8
    resting_calcium: float = 50.0
    ca_per_spike: float | None = None
    bap_fraction: float = 0.15
    burst_ratio: float = 8.0
    plateau_ratio: float = 150.0
    noise_sd_soma: float | None = 0.08
    noise_sd_apical: float | None = 0.15
    photons_soma: float = 1000.0
    photons_apical: float = 300.0
    read_noise: float = 10.0
    neuropil_ratio: float = 0.5
    neuropil_coefficient: float = 0.7
    neuropil_gain: float = 0.5
    annulus_ratio: float = 4.0
    drift_sd: float = 0.02
    drift_tau: float = 300.0
    bleach_fraction: float = 0.05
    bleach_tau: float = 1800.0
    dff_long_window: float = 180.0
    dff_short_window: float = 3.37
    dff_noise_window: float = 1.03
    n_apical: int = 2
    soma_depth: float = 175.0
    apical_depth: float = 50.0
    fov: float = 400.0
    pixels: int = 512
    soma_radius: float = 6.0
    dendrite_length: float = 8.0
    dendrite_width: float = 1.5
    apical_spread: float = 15.0
    branch_cv: float = 0.15
    location: str = "VISp"
    excitation_wavelength: float = 0.92   # µm
    emission_wavelength: float = 0.52     # µm

    @classmethod
    def from_section(cls, section: Mapping | None, key: str = "imaging") -> ImagingParams:
        """Validate a scenario table (units as strings) and convert to imaging units."""
        v = validate_section(section, IMAGING_SCHEMA, key)
        return cls.from_validated(v)

    @classmethod
    def from_validated(cls, v: Mapping) -> ImagingParams:
        """From a table already validated against :data:`IMAGING_SCHEMA` (internal units)."""
        v = dict(v)
        for k in ("drift_tau", "bleach_tau", "dff_long_window", "dff_short_window", "dff_noise_window"):
            v[k] = v[k] / 1000.0          # ms → s
        return cls(**v)

    def as_dict(self) -> dict:
        return asdict(self)

    def calcium(self, ind: Indicator) -> CalciumParams:
        dc = self.ca_per_spike if self.ca_per_spike is not None else \
            calcium_per_spike(ind, self.resting_calcium)
        return CalciumParams(self.resting_calcium, dc, self.bap_fraction, self.burst_ratio,
                             self.plateau_ratio)

    def optics(self, compartment: str) -> OpticsParams:
        """Optics of one compartment's ROIs; photons solved from the requested noise if set."""
        target = self.noise_sd_soma if compartment == "soma" else self.noise_sd_apical
        photons = self.photons_soma if compartment == "soma" else self.photons_apical
        p = OpticsParams(photons, self.read_noise, self.neuropil_ratio, self.neuropil_coefficient,
                         self.annulus_ratio, self.drift_sd, self.drift_tau, self.bleach_fraction,
                         self.bleach_tau)
        if target is not None:
            p = OpticsParams(photons_for_noise(target, p), *list(asdict(p).values())[1:])
        return p

    def geometry(self) -> RoiGeometry:
        return RoiGeometry(self.n_apical, self.soma_depth, self.apical_depth, self.fov, self.pixels,
                           self.soma_radius, self.dendrite_length, self.dendrite_width,
                           self.apical_spread, self.branch_cv)
