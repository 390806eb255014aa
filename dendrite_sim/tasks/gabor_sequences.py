"""Gabor sequences with unexpected frames: the OpenScope credit-assignment stimulus protocol.

Protocol (Gillon et al. 2023 Sci Data 10:287; 2024 J Neurosci; DANDI 000037):

* a sequence is the frames A, B, C, D, G, each shown for 0.3 s (G: grey screen). Every Gabor
  frame of a sequence shares the sequence's mean orientation, drawn from {0°, 45°, 90°, 135°};
* sequences run in expected blocks (30–90 s) alternating with unexpected blocks (2–4 s) in
  which D is replaced by U, a frame with new patch positions and the orientation rotated
  by 90°;
* the protocol is repeated over several imaging sessions ("days"); plasticity between sessions
  is the scenario's business.

Block lengths are drawn uniformly in seconds and rounded to whole sequences (≥ 1). The frame
table has one row per frame: ``start_time``, ``stop_time`` (s, from the session start),
``frame`` (A, B, C, D, U, G), ``orientation`` (degrees, NaN for G), ``expected`` (False only for
U frames), ``unexpected_sequence`` (every frame of a sequence containing U), ``block``,
``sequence`` and ``session``.

Drives (per frame row and neuron; pure functions of the table and a tuning record):

    basal[k, i]  = g_i[f_k] · exp(κ (cos 2(θ_k − φ_i) − 1))      for Gabor frames, 0 for G
    apical[k, i] = a_i^exp  for A–D frames,  a_i^unexp for U frames,  0 for G

φ_i: preferred orientation (von Mises on the doubled angle, period 180°); g_i[f]: selectivity
of neuron i for frame identity f (each frame type has its own patch layout); a^exp: feedback
during expected frames (prediction / context), a^unexp: feedback during U (mismatch, the error
signal the credit-assignment hypotheses route to apical dendrites). Stimuli drive the basal
(feedforward) input, feedback the apical compartment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.schema import Field, validate_section

FRAMES = ("A", "B", "C", "D", "U", "G")
GABOR_FRAMES = FRAMES[:5]

GABOR_SCHEMA: dict[str, Field] = {
    "frame_duration": Field("quantity", "0.3 s", "duration of each frame", dimension="time",
                            lo=0, lo_open=True),
    "orientations": Field("float_list", [0.0, 45.0, 90.0, 135.0], "mean orientations (degrees)",
                          min_len=1),
    "u_rotation": Field("float", 90.0, "orientation of U relative to the sequence (degrees)"),
    "session_duration": Field("quantity", "10 min", "Gabor stimulus time per session",
                              dimension="time", lo=0, lo_open=True),
    "n_sessions": Field("int", 3, "imaging sessions (days)", lo=1, hi=100),
    "expected_block_min": Field("quantity", "30 s", "shortest expected block", dimension="time", lo=0),
    "expected_block_max": Field("quantity", "90 s", "longest expected block", dimension="time", lo=0),
    "unexpected_block_min": Field("quantity", "2 s", "shortest unexpected block", dimension="time", lo=0),
    "unexpected_block_max": Field("quantity", "4 s", "longest unexpected block", dimension="time", lo=0),
    "kappa": Field("float", 2.0, "orientation tuning sharpness κ (von Mises, doubled angle)", lo=0),
    "frame_cv": Field("float", 0.5, "c.v. of the per-neuron frame-identity gains", lo=0),
    "feedback_expected": Field("float", 0.2, "mean apical feedback drive during A-D frames", lo=0),
    "feedback_unexpected": Field("float", 1.0, "mean apical feedback drive during U frames", lo=0),
    "feedback_cv": Field("float", 0.5, "c.v. of the per-neuron feedback weights", lo=0),
}


@dataclass(frozen=True)
class GaborProtocol:
    """Protocol constants in seconds and degrees."""

    frame_duration: float = 0.3
    orientations: tuple = (0.0, 45.0, 90.0, 135.0)
    u_rotation: float = 90.0
    session_duration: float = 600.0
    n_sessions: int = 3
    expected_block_min: float = 30.0
    expected_block_max: float = 90.0
    unexpected_block_min: float = 2.0
    unexpected_block_max: float = 4.0
    kappa: float = 2.0
    frame_cv: float = 0.5
    feedback_expected: float = 0.2
    feedback_unexpected: float = 1.0
    feedback_cv: float = 0.5

    @property
    def sequence_duration(self) -> float:
        return 5 * self.frame_duration

    def tuning(self, n: int, rng: np.random.Generator) -> GaborTuning:
        """Random per-neuron tuning with this protocol's tuning constants."""
        return random_tuning(n, rng, self.kappa, self.frame_cv, self.feedback_expected,
                             self.feedback_unexpected, self.feedback_cv)

    @classmethod
    def from_section(cls, section: Mapping | None, key: str = "stimulus") -> GaborProtocol:
        """From a raw ``[stimulus]`` table (values as the user wrote them)."""
        return cls.from_validated(validate_section(section, GABOR_SCHEMA, key), key)

    @classmethod
    def from_validated(cls, v: Mapping, key: str = "stimulus") -> GaborProtocol:
        """From a ``[stimulus]`` table already validated against :data:`GABOR_SCHEMA` (times in ms)."""
        v = dict(v)
        for k in ("frame_duration", "session_duration", "expected_block_min", "expected_block_max",
                  "unexpected_block_min", "unexpected_block_max"):
            v[k] = v[k] / 1000.0            # ms → s
        v["orientations"] = tuple(v["orientations"])
        p = cls(**v)
        for kind in ("expected", "unexpected"):
            if getattr(p, f"{kind}_block_min") > getattr(p, f"{kind}_block_max"):
                raise ScenarioError(f"{key}.{kind}_block_min", f"expected a value ≤ {kind}_block_max")
        return p


def session_table(p: GaborProtocol, rng: np.random.Generator, session: int = 0) -> dict[str, np.ndarray]:
    """The frame table of one session (module docstring)."""
    seq_d = p.sequence_duration
    n_seq = int(np.floor(p.session_duration / seq_d + 1e-9))
    unexpected = np.zeros(n_seq, bool)
    block = np.zeros(n_seq, np.int64)
    k, b, is_u = 0, 0, False
    while k < n_seq:
        lo, hi = ((p.unexpected_block_min, p.unexpected_block_max) if is_u
                  else (p.expected_block_min, p.expected_block_max))
        n = max(1, int(round(rng.uniform(lo, hi) / seq_d)))
        unexpected[k:k + n] = is_u
        block[k:k + n] = b
        k, b, is_u = k + n, b + 1, not is_u
    theta = rng.choice(np.asarray(p.orientations, float), size=n_seq)
    frames = np.tile(np.array(["A", "B", "C", "D", "G"]), (n_seq, 1))
    frames[unexpected, 3] = "U"
    ori = np.repeat(theta[:, None], 5, axis=1)
    ori[unexpected, 3] = np.mod(theta[unexpected] + p.u_rotation, 180.0)
    ori[:, 4] = np.nan
    idx = np.arange(5 * n_seq)
    return {
        "start_time": idx * p.frame_duration,
        "stop_time": (idx + 1) * p.frame_duration,
        "frame": frames.reshape(-1),
        "orientation": ori.reshape(-1),
        "expected": frames.reshape(-1) != "U",
        "unexpected_sequence": np.repeat(unexpected, 5),
        "block": np.repeat(block, 5),
        "sequence": np.repeat(np.arange(n_seq), 5),
        "session": np.full(5 * n_seq, session, np.int64),
    }


def protocol_tables(p: GaborProtocol, seed: int) -> list[dict[str, np.ndarray]]:
    """One frame table per session, each from its own named stream ``stimulus/session<k>``."""
    return [session_table(p, rngmod.stream(seed, f"stimulus/session{k}"), k) for k in range(p.n_sessions)]


# ----------------------------------------------------------------------------- drives
@dataclass(frozen=True)
class GaborTuning:
    """Per-neuron tuning: preferred orientation φ (deg), sharpness κ, frame gains (n, 5) for
    A, B, C, D, U, and apical feedback during expected and unexpected frames."""

    pref_orientation: np.ndarray
    kappa: float
    frame_gain: np.ndarray
    feedback_expected: np.ndarray
    feedback_unexpected: np.ndarray

    @property
    def n_neurons(self) -> int:
        return int(self.pref_orientation.size)


def random_tuning(n: int, rng: np.random.Generator, kappa: float = 2.0, frame_cv: float = 0.5,
                  feedback_expected: float = 0.2, feedback_unexpected: float = 1.0,
                  feedback_cv: float = 0.5) -> GaborTuning:
    """Uniform preferred orientations; log-normal frame gains and feedback weights (mean as given)."""
    def lognormal(mean, cv, size):
        s = np.sqrt(np.log1p(cv * cv))
        return mean * np.exp(rng.normal(-0.5 * s * s, s, size)) if cv > 0 else np.full(size, float(mean))

    return GaborTuning(rng.uniform(0.0, 180.0, n), float(kappa), lognormal(1.0, frame_cv, (n, 5)),
                       lognormal(feedback_expected, feedback_cv, n),
                       lognormal(feedback_unexpected, feedback_cv, n))


def drives(table: Mapping[str, np.ndarray], tuning: GaborTuning) -> tuple[np.ndarray, np.ndarray]:
    """Basal (feedforward) and apical (feedback) drive per frame row and neuron, (rows, n)."""
    frame = np.asarray(table["frame"])
    theta = np.asarray(table["orientation"], float)
    code = np.searchsorted(np.array(GABOR_FRAMES), frame)   # A..U → 0..4 (G handled below)
    gabor = frame != "G"
    code = np.where(gabor, np.minimum(code, 4), 0)
    d = np.deg2rad(np.where(gabor, theta, 0.0)[:, None] - tuning.pref_orientation[None, :])
    orient = np.exp(tuning.kappa * (np.cos(2.0 * d) - 1.0))
    basal = np.where(gabor[:, None], tuning.frame_gain[:, code].T * orient, 0.0)
    is_u = frame == "U"
    apical = np.where(is_u[:, None], tuning.feedback_unexpected[None, :],
                      np.where(gabor[:, None], tuning.feedback_expected[None, :], 0.0))
    return basal, apical


def sample(table: Mapping[str, np.ndarray], values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Piecewise-constant lookup of per-row ``values`` (rows, n) at ``times`` (s); 0 outside rows."""
    start = np.asarray(table["start_time"], float)
    stop = np.asarray(table["stop_time"], float)
    t = np.asarray(times, float)
    row = np.searchsorted(start, t, side="right") - 1
    inside = (row >= 0) & (t < stop[np.clip(row, 0, None)])
    out = np.zeros((t.size, values.shape[1]))
    out[inside] = values[row[inside]]
    return out
