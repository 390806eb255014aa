"""Experiment ``openscope_session``: a spiking circuit imaged over several days, OpenScope style.

What it reproduces: the Allen Institute OpenScope "credit assignment" recordings (DANDI 000037;
Gillon et al. 2023 Sci Data 10:287; Gillon et al. 2024 J Neurosci 44:e1009232023): two-photon
GCaMP6f imaging at 30 Hz of pyramidal somata and their distal apical dendrites while mice see
Gabor sequences A-B-C-D-G (0.3 s per frame) in which D is sometimes replaced by an unexpected U
(:mod:`dendrite_sim.tasks.gabor_sequences`), repeated over three sessions ("days").

The circuit (populations of the spiking engine, :mod:`dendrite_sim.engine.network`)::

    Gabor frames ──basal current──► pyr (Naud–Sprekeler two-compartment neurons, n_pyr)
                                     ▲ dend_exc (STF)          ▲ soma_inh (plastic)
    surprise ──current──► feedback (LIF, n_feedback) ──► inh (LIF, n_inh)
                                     └────────────────────────────┘
    + independent Poisson background onto every population

* ``pyr``: Naud & Sprekeler (2018) neurons (docs/models.md#neuron-naud_sprekeler). The soma receives a bias, the
  stimulus as a current I_s(t) = soma_bias + basal_gain · basal[frame(t), i] with the protocol's
  Gabor tuning (von Mises orientation tuning × frame-identity gain; :func:`drives`), and Poisson
  background (excitatory and inhibitory synaptic currents).
* ``feedback``: a top-down population (current-based LIF, Brette et al. 2007). Its neurons
  receive I_fb(t) = feedback_bias + feedback_gain · a[frame(t), j], the protocol's feedback
  signal a = feedback_expected (≈ 0.2, a weak prediction) during A–D frames,
  feedback_unexpected (≈ 1, a mismatch) during U and 0 during grey, with per-neuron log-normal
  weights — the prediction-error-like surprise signal of the credit-assignment hypotheses.
  They project to the **apical dendrites** (``dend_exc``) through facilitating synapses
  (Payeur et al. 2021 STF preset: U 0.02, τ_D 100 ms, τ_F 100 ms, f 0.1), which transmit the
  high-rate firing evoked by U far more than the sparse firing during expected frames.
* ``inh``: perisomatic interneurons (LIF) driven by the feedback population, inhibiting the
  pyramidal somata (``soma_inh``, negative current weights).

Days and plasticity. Each day is a fresh run of the same circuit — connectivity, tuning and the
learned weights carry over; fast state (voltages, adaptation, STP) and the background noise are
new. Imaging data are taken with the weights frozen during the session; between sessions the
day's experience is consolidated by a **frame-binned covariance rule** (Sejnowski 1977) on the
two plastic projections::

    Δw_ij = η · Cov_k[ x_j(k), y_i(k) ]     (k: the session's stimulus frames)
          = η · (1/K) Σ_k x_j(k) (y_i(k) − ȳ_i)

    feedback → dendrite:  x = feedback spike rate, y = burst rate of pyramidal neuron i;
                          w ← clip(w + η_fb Cov, 0, w_feedback_max)
                          (burst-gated Hebbian potentiation of apical inputs, in the spirit of
                          burst-dependent plasticity, Payeur et al. 2021)
    inh → soma:           x = interneuron spike rate, y = somatic spike rate of neuron i;
                          w ← clip(w − η_inh Cov, −w_inhibition_max, 0)   (weights are negative)
                          (Hebbian inhibitory plasticity that cancels stimulus-locked excess
                          firing: the rate form of Vogels et al. 2011 with the target rate
                          replaced by the neuron's own mean rate)

Rates are spike counts per frame / frame duration (Hz); η in pA per Hz².

Model prediction (``responses.png``, metrics ``prediction``; numbers of the documented scenario,
seed 1, calibrated to the OpenScope imaging statistics, issue 13 and docs/imaging.md). The somata
fire sparsely (≈ 0.3 Hz on grey, ≈ 2 Hz on Gabor frames) with episodes from the sharply tuned,
trial-to-trial variable basal drive (``network.basal_trial_cv``, Goris et al. 2014); the tufts
differ in their feedback weights (``network.feedback_dend_cv``). Day 1: U frames drive the
feedback neurons to ≈ 70 Hz (≈ 9 Hz during A–D), whose facilitating synapses depolarise the
dendrites; the pyramidal neurons burst (≈ 1.4 bursts/s during U, ≈ 0.16 during D) and fire
≈ 10 Hz, so both compartments respond more to U than to D (apical USI ≈ 0.69, somatic ≈ 0.75).
Feedback and bursts co-vary only around U, so the feedback → dendrite weights grow
(497 → 596 → 626 pA, means over synapses) and the U-evoked dendritic depolarisation turns into
plateaus more often (plateau fraction of U frames 0.17 → 0.28 → 0.32). The interneurons,
co-active with the somatic U response, learn to cancel it (−20 → −104 → −120 pA): somatic U
firing falls back towards the D level (10.4 → 3.2 → 2.0 Hz; D ≈ 2 Hz) and the bursts with it.
Result: the apical USI grows (0.69 → 0.93 → 1.06) while the somatic USI falls
(0.75 → 0.08 → 0.05) — the two compartments evolve in opposite directions, as
Gillon et al. 2024 report for L2/3 and L5 pyramidal neurons tracked over days (as we recall
their abstract: somata less, distal apical dendrites more sensitive to the pattern-violating U).
Caveat: the mean apical ΔF/F to U does not grow (0.150 → 0.136 → 0.140): the loss of bursts
offsets the longer plateaus; the selectivity change comes from reliability. The parameters of
the two rules were chosen to give this outcome; with weaker inhibitory plasticity both
compartments' U responses grow together, because the Naud–Sprekeler dendrite drives the soma
strongly (g_s f(V_d) up to 1.3 nA).

Check. ``dendrite-sim check`` describes the day-1 circuit as a ``[network]`` table of the
engine's spec (:func:`day_network_table`: the three populations, the three
``fixed_probability`` projections with their initial weights and STP, the bias currents and
the background Poisson inputs, a unit stand-in for the per-neuron stimulus drives) and runs the
spec's parse, a memory estimate of the run (network, drives, V_dend and latent records, spike
records, analysis; :func:`estimate_memory`) against this machine's available memory, a dry
build with the day's monitors and the engine's monitor budget for one day
(:func:`check_day_network`): what a day would refuse because of a value is refused there, under
this experiment's keys (``network.n_pyr``, ``network.background_rate``, ``analysis.record_every``,
...). The run keeps building each day through the Network API
(:func:`~dendrite_sim.architectures.openscope_circuit.simulate_day`): the connectivity is drawn
once from named streams and the learned per-synapse weights and the per-neuron (frame × neuron)
drives are handed to the engine as arrays, which a table does not hold; building from the
table would draw other synapses and change every result.

Ground truth per pyramidal neuron and day: spike times, burst flags (≥ 2 spikes within 16 ms),
plateau intervals (V_dend above ``plateau_threshold`` for at least ``plateau_min_duration``;
the ≈ 50 ms dendritic Ca²⁺ spike of every burst is shorter and is already imaged as a burst),
latents at ``latent_rate`` (float32): ``v_apical`` (V_dend, mV, mean over each latent bin), ``burst_prob``
(the engine's running burst probability P̄ = r_B/r_E, window ``tau_avg``) and ``error``
(the feedback current reaching the dendrite, ``dend_exc``, pA). Each day goes through the
imaging forward model (:func:`dendrite_sim.imaging.simulate_session`: one somatic and
``imaging.n_apical`` apical ROIs per neuron, the same ROIs every day) into the run folder
``session-day<k>``, and is exported to ``session-day<k>.nwb`` (or ``.npz``) during the run; the
folders are removed at the end unless ``analysis.keep_sessions`` (the shipped scenario keeps
only the NWB files, ≈ 72 MB per 300-s day of 360 ROIs).

Analysis. Response of an ROI to a D or U frame starting at t₀: mean ΔF/F over
[t₀, t₀ + response_window) minus the mean over [t₀ − baseline_window, t₀); ``expected`` /
``unexpected`` average it over the session's D / U frames and over ROIs of a compartment;
``usi`` is the mean over ROIs of Gillon et al.'s unexpected-event selectivity index
(μ_U − μ_D)/√((σ_U² + σ_D²)/2). Noise: robust s.d. of each ROI's ΔF/F (the Allen noise
estimate, :func:`dendrite_sim.imaging.dff.noise_std`) and Rupprecht et al.'s ν, medians over
ROIs and days. Event size: ΔF/F peak in [t, t + 0.5 s) minus the mean in [t − 0.3 s, t) after
ground-truth burst onsets t isolated by ≥ 1 s from other bursts of the neuron, median over
events and ROIs (``dff`` measured, ``dff_noiseless`` from the noiseless trace), its ratio to
the noise s.d. (``snr``) and the number of (event, ROI) measurements (``n_events``).

metrics.json keys (stable)::

    n_neurons, n_sessions, session_duration_s (per session, list), frame_rate_hz
    rois.{soma, apical, total}
    noise.{soma, apical}.{dff_sd, dff_sd_requested, nu_pct_per_sqrt_hz}
    event_size.{soma, apical}.{dff, dff_noiseless, snr, n_events}
    sessions.day<k>.{n_frames, duration_s, n_expected, n_unexpected,
        dff.{soma, apical}.{expected, unexpected, difference, expected_sem, unexpected_sem, usi},
        spikes.{rate_hz, burst_rate_hz, plateau_fraction}.{expected, unexpected, grey},
        feedback_rate_hz.{expected, unexpected, grey}, interneuron_rate_hz.{...},
        weights.{feedback_dend_pA, inhibition_soma_pA}}     (means, at the time of the session)
    prediction.{soma_usi_change, apical_usi_change, soma_difference_change,
                apical_difference_change, opposite_directions}
    files.{sessions[], exported[]}

timings.json keys (wall-clock seconds, not results; :mod:`dendrite_sim.io.results`)::

    simulate_s, imaging_s, export_s, analysis_s        (summed over days)
    sessions.day<k>.simulation.{build_s, run_s, codegen_s, first_call_s}

(expected/unexpected: D/U frames; grey: G frames; ``*_change``: last day − first day of the
session values; ``opposite_directions``: the somatic and apical USI changed with opposite
signs.)

Figures: ``dff_heatmap.png`` (ΔF/F of every ROI, somata and apical dendrites with their own colour
scales, U frames outlined, stimulus strip on top), ``responses.png`` (mean ΔF/F aligned to D and U
onsets per compartment and day; mean responses and USI over days), ``example_traces.png`` (soma
and dendrite ΔF/F of example neurons on the first and last day with ground-truth spikes, burst
spikes and plateaus underneath).
"""

from __future__ import annotations

import collections
import contextlib

import numpy as np

from dendrite_sim.analysis.imaging_responses import (
    aligned_traces,
    event_sizes,
    finite_median,
    noise_stats,
    pooled_event_metrics,
    rates_by_frame,
    response_summary,
)
from dendrite_sim.architectures.openscope_circuit import (
    STP_CHOICES,
    CircuitParams,
    DayRecord,
    PlasticityParams,
    consolidate,
    frame_fraction,
    frame_rates,
    ground_truth,
    make_circuit,
    simulate_day,
)
from dendrite_sim.core import rng as rngmod
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import spec as netspec
from dendrite_sim.engine.backends import BACKEND_NAMES
from dendrite_sim.imaging.config import IMAGING_SCHEMA, ImagingParams
from dendrite_sim.imaging.rois import COMPARTMENTS
from dendrite_sim.tasks.gabor_sequences import GABOR_SCHEMA, GaborProtocol, protocol_tables


def _q(default, doc, dim, **kw):
    return Field("quantity", default, doc, dimension=dim, **kw)


NETWORK_SCHEMA: dict[str, Field] = {
    "n_pyr": Field("int", 120, "pyramidal neurons (one somatic + n_apical apical ROIs each)", lo=1),
    "n_feedback": Field("int", 40, "top-down feedback neurons (LIF)", lo=1),
    "n_inh": Field("int", 30, "perisomatic interneurons (LIF)", lo=1),
    "dt": _q("0.1 ms", "time step", "time", lo=0, lo_open=True, hi=1.0),
    "backend": Field("str", "numba", "engine backend", choices=BACKEND_NAMES),
    "soma_bias": _q("300 pA", "constant somatic current of the pyramidal neurons", "current"),
    "basal_gain": _q("250 pA", "somatic current per unit of the protocol's basal (Gabor) drive",
                     "current", lo=0),
    "basal_trial_cv": Field("float", 0.0, "c.v. of a log-normal gain (mean 1) on the basal drive, drawn per "
                            "stimulus frame and neuron: trial-to-trial response variability", lo=0),
    "feedback_bias": _q("0 pA", "constant current of the feedback neurons", "current"),
    "feedback_gain": _q("220 pA", "feedback-neuron current per unit of the protocol's feedback "
                        "(surprise) signal", "current", lo=0),
    "inh_bias": _q("20 pA", "constant current of the interneurons", "current"),
    "background_rate": _q("5 Hz", "rate of every background Poisson source", "frequency", lo=0),
    "background_soma_exc": Field("int", 100, "excitatory background sources per pyramidal soma", lo=0),
    "background_soma_exc_weight": _q("100 pA", "their weight", "current", lo=0),
    "background_soma_inh": Field("int", 30, "inhibitory background sources per pyramidal soma", lo=0),
    "background_soma_inh_weight": _q("-100 pA", "their weight (negative)", "current", hi=0),
    "background_dend": Field("int", 0, "excitatory background sources per pyramidal apical dendrite "
                             "(independent ongoing tuft input: sparse spontaneous Ca2+ events)", lo=0),
    "background_dend_weight": _q("0 pA", "their weight", "current", lo=0),
    "background_lif": Field("int", 100, "excitatory background sources per feedback neuron and "
                            "interneuron", lo=0),
    "background_lif_weight": _q("20 pA", "their weight", "current", lo=0),
    "p_feedback_dend": Field("float", 0.5, "connection probability feedback → pyramidal dendrite",
                             lo=0, hi=1),
    "w_feedback_dend": _q("450 pA", "initial feedback → dendrite weight (mean over neurons)", "current", lo=0),
    "feedback_dend_cv": Field("float", 0.0, "c.v. over pyramidal neurons of a log-normal factor (mean 1) on "
                              "their feedback → dendrite weights: tufts differ in their top-down input", lo=0),
    "feedback_stp": Field("str", "payeur_stf", "short-term plasticity of feedback → dendrite",
                          choices=STP_CHOICES),
    "p_feedback_inh": Field("float", 0.5, "connection probability feedback → interneuron", lo=0, hi=1),
    "w_feedback_inh": _q("15 pA", "feedback → interneuron weight", "current", lo=0),
    "p_inh_soma": Field("float", 0.5, "connection probability interneuron → pyramidal soma", lo=0, hi=1),
    "w_inh_soma": _q("-20 pA", "initial interneuron → soma weight (negative)", "current", hi=0),
    "tau_avg": _q("500 ms", "window of the running burst probability (latent burst_prob)", "time",
                  lo=0, lo_open=True),
}

PLASTICITY_SCHEMA: dict[str, Field] = {
    "enabled": Field("bool", True, "consolidate each day's co-activity into the weights"),
    "eta_feedback": Field("float", 40.0, "η of feedback → dendrite (pA per Hz²)", lo=0),
    "eta_inhibition": Field("float", 8.0, "η of interneuron → soma (pA per Hz²)", lo=0),
    "w_feedback_max": _q("2000 pA", "upper bound of feedback → dendrite weights", "current", lo=0),
    "w_inhibition_max": _q("1000 pA", "bound of the interneuron → soma weight magnitude", "current", lo=0),
}

ANALYSIS_SCHEMA: dict[str, Field] = {
    "plateau_threshold": _q("-40 mV", "dendritic voltage above which the dendrite is in a plateau",
                            "voltage"),
    "plateau_min_duration": _q("100 ms", "shortest plateau (a burst's Ca spike lasts ≈ 50 ms)",
                               "time", lo=0),
    "record_every": _q("2 ms", "sampling interval of V_dend for plateau detection", "time",
                       lo=0, lo_open=True),
    "latent_rate": _q("100 Hz", "sampling rate of the latent traces", "frequency", lo=0, lo_open=True),
    "response_window": _q("0.6 s", "response window after a D/U onset (frame + grey)", "time",
                          lo=0, lo_open=True),
    "baseline_window": _q("0.3 s", "baseline window before a D/U onset", "time", lo=0, lo_open=True),
    "example_neurons": Field("int", 3, "neurons in example_traces.png", lo=1, hi=12),
    "example_window": _q("15 s", "time shown per session in example_traces.png", "time", lo=0,
                         lo_open=True),
    "heatmap_window": _q("60 s", "time shown per session in dff_heatmap.png", "time", lo=0, lo_open=True),
    "export": Field("str", "nwb", "format written during the run", choices=("nwb", "npz", "none")),
    "keep_sessions": Field("bool", True, "keep the intermediate session folders (session-day<k>/, "
                           "for `dendrite-sim export`) beside the exported files; always kept when "
                           "export = \"none\""),
}


# --------------------------------------------------------------------------- the check
#: The engine's keys outside ``[network]`` → this experiment's.
OUTER_KEYS = {"dt": "network.dt", "backend": "network.backend", "fastmath": "network.backend",
              "duration": "stimulus.session_duration"}
#: Background Poisson inputs of :func:`~dendrite_sim.architectures.openscope_circuit.simulate_day`:
#: (input name in the table, population, channel, key of its sources, key of its weight).
BACKGROUND = (("background_soma_exc", "pyr", "soma_exc", "background_soma_exc", "background_soma_exc_weight"),
              ("background_soma_inh", "pyr", "soma_inh", "background_soma_inh", "background_soma_inh_weight"),
              ("background_dend", "pyr", "dend_exc", "background_dend", "background_dend_weight"),
              ("background_feedback", "feedback", "exc", "background_lif", "background_lif_weight"),
              ("background_inh", "inh", "exc", "background_lif", "background_lif_weight"))
#: Projections of the circuit: name → (pre, post, channel, key of p, key of the weight).
PROJECTIONS = {"feedback_dend": ("feedback", "pyr", "dend_exc", "p_feedback_dend", "w_feedback_dend"),
               "feedback_inh": ("feedback", "inh", "exc", "p_feedback_inh", "w_feedback_inh"),
               "inh_soma": ("inh", "pyr", "soma_inh", "p_inh_soma", "w_inh_soma")}
SIZE_KEYS = {"pyr": "network.n_pyr", "feedback": "network.n_feedback", "inh": "network.n_inh"}
#: Bytes per frame row and neuron of the drives (pyramidal and feedback neurons): the
#: temporaries of :func:`dendrite_sim.tasks.gabor_sequences.drives`, the drive kept and the
#: engine's scaled copy (about six float64 arrays at the peak).
DRIVE_BYTES = 6 * 8
#: Bytes per V_dend sample (every ``analysis.record_every``) and pyramidal neuron: the monitor's
#: record and its concatenation, the plateau detection (booleans, int8 differences) and the
#: per-frame plateau fraction (a float64 cumulative sum and its padded copy).
V_DEND_BYTES = 2 * 8 + 4 + 1 + 2 * 8
#: Bytes per latent sample (``analysis.latent_rate``) and pyramidal neuron: the two-variable
#: monitor and its concatenation, the binned V_dend and its temporary, three float32 latents.
LATENT_BYTES = 2 * 2 * 8 + 2 * 8 + 3 * 4
#: Bytes per imaging frame and ROI held by the analysis (the traces are memory-mapped files).
IMAGING_BYTES = 4 * 8
#: Mean rate assumed for the spike records (12 bytes each; spikes, events and bursts of the
#: pyramidal neurons; spikes of the LIF populations), with the doubling slack of the buffers.
ASSUMED_RATE_HZ = 20.0
#: The spike monitor's default cap (:meth:`dendrite_sim.engine.network.Network.spike_monitor`).
MAX_SPIKES = 50_000_000


def day_duration_ms(protocol: GaborProtocol) -> tuple[int, float]:
    """(frame rows, duration in ms) of every session's table
    (:func:`~dendrite_sim.tasks.gabor_sequences.session_table`: whole A-B-C-D-G sequences)."""
    n_seq = int(np.floor(protocol.session_duration / protocol.sequence_duration + 1e-9))
    rows = 5 * n_seq
    return rows, rows * protocol.frame_duration * 1000.0


def day_network_table(net: dict, frame_ms: float) -> dict:
    """The network of one day (:func:`~dendrite_sim.architectures.openscope_circuit.simulate_day`)
    as a ``[network]`` table of the engine's spec (:mod:`dendrite_sim.engine.spec`), for the check.

    The same populations, projections (``fixed_probability`` with the initial weights; the run
    draws them once with :func:`~dendrite_sim.architectures.openscope_circuit.make_circuit` and
    carries the learned per-synapse weights from day to day through the Network API, so the run
    keeps that path) and inputs. The stimulus drives are per neuron and frame (``(rows, n)``
    arrays, which a table cannot hold): here a ``current`` input with the same bias, sampling
    interval and a unit drive stands in (their memory is estimated by :func:`estimate_memory`).
    """
    def q(value, unit):
        return f"{value!r} {unit}"

    pops = {"pyr": {"model": "naud_sprekeler", "n": net["n_pyr"], "tau_avg": q(net["tau_avg"], "ms")},
            "feedback": {"model": "lif", "n": net["n_feedback"], "bursts": False},
            "inh": {"model": "lif", "n": net["n_inh"], "bursts": False}}
    projections = {}
    for name, (pre, post, channel, p_key, w_key) in PROJECTIONS.items():
        projections[name] = {"pre": pre, "post": post, "channel": channel, "connectivity": "fixed_probability",
                             "p": net[p_key], "weight": q(net[w_key], "pA")}
    if net["feedback_stp"] != "none":
        projections["feedback_dend"]["stp"] = net["feedback_stp"]
    frame = q(frame_ms, "ms")
    inputs = {"basal": {"type": "current", "target": "pyr", "compartment": "soma", "bias": q(net["soma_bias"], "pA"),
                        "values": [0.0, net["basal_gain"]], "values_dt": frame},
              "surprise": {"type": "current", "target": "feedback", "compartment": "soma",
                           "bias": q(net["feedback_bias"], "pA"), "values": [0.0, net["feedback_gain"]],
                           "values_dt": frame},
              "inh_bias": {"type": "current", "target": "inh", "compartment": "soma", "bias": q(net["inh_bias"], "pA")}}
    r = net["background_rate"]
    for name, pop, channel, n_key, w_key in BACKGROUND:
        n, w = net[n_key], net[w_key]
        if n and r > 0 and w != 0:                      # as simulate_day
            inputs[name] = {"type": "poisson", "target": pop, "channel": channel, "n_sources": n,
                            "rate": q(r, "Hz"), "weight": q(w, "pA")}
    return {"populations": pops, "projections": projections, "inputs": inputs}


def _spec_key_map() -> tuple[dict, dict]:
    """(exact keys, prefixes) of the table's keys → the experiment's; list indices dropped first."""
    fields = {f"network.populations.{pop}.n": key for pop, key in SIZE_KEYS.items()}
    fields["network.populations.pyr.tau_avg"] = "network.tau_avg"
    prefixes = {f"network.populations.{pop}": key for pop, key in SIZE_KEYS.items()}
    for name, (_, _, _, p_key, w_key) in PROJECTIONS.items():
        base = f"network.projections.{name}"
        fields.update({f"{base}.p": f"network.{p_key}", f"{base}.weight": f"network.{w_key}"})
        prefixes[base] = f"network.{p_key}"
    fields["network.projections.feedback_dend.stp"] = "network.feedback_stp"
    for name, bias, gain in (("basal", "soma_bias", "basal_gain"), ("surprise", "feedback_bias", "feedback_gain"),
                             ("inh_bias", "inh_bias", None)):
        base = f"network.inputs.{name}"
        fields[f"{base}.bias"] = f"network.{bias}"
        prefixes[base] = f"network.{gain or bias}"
        if gain:
            fields.update({f"{base}.values": f"network.{gain}", f"{base}.array": f"network.{gain}",
                           f"{base}.values_dt": "stimulus.frame_duration",
                           f"{base}.array_dt": "stimulus.frame_duration"})
    for name, _, _, n_key, w_key in BACKGROUND:
        base = f"network.inputs.{name}"
        fields.update({f"{base}.n_sources": f"network.{n_key}", f"{base}.rate": "network.background_rate",
                       f"{base}.weight": f"network.{w_key}"})
        prefixes[base] = f"network.{n_key}"
    return fields, prefixes


def _experiment_key(key: str, expected: str) -> tuple[str, str]:
    """A key of the generated table (or of the engine building it) as the scenario's own key."""
    return netspec.generated_key(key, expected, *_spec_key_map(), where="the day's network")


@contextlib.contextmanager
def scenario_keys():
    """Errors of the spec and the engine re-raised under the experiment's scenario keys."""
    try:
        with netspec.scenario_keys("network", OUTER_KEYS):
            yield
    except ScenarioError as e:
        raise ScenarioError(*_experiment_key(e.key, e.expected)) from None


def _furthest(cfg, keys) -> str:
    """Of ``(scenario key, larger is more)`` pairs, the key whose value is furthest from its
    default in the direction that costs memory (ratio)."""
    schemas = {"network": NETWORK_SCHEMA, "stimulus": GABOR_SCHEMA, "analysis": ANALYSIS_SCHEMA}

    def cost(item):
        key, more = item
        section, name = key.split(".", 1)
        f = schemas[section][name]
        value, default = cfg[section][name], f.validate(f.default, key)
        return value / default if more else default / value
    return max(keys, key=cost)[0]


def estimate_memory(cfg, spec: netspec.NetworkSpec) -> dict[str, float]:
    """Estimated peak bytes of a run by scenario key (the key that scales each part) and
    ``"total"``: one day's network (:func:`dendrite_sim.engine.spec.estimate_memory`; each
    projection under the size of its larger side, plus the circuit's own copy of its synapses,
    which persists over the days), the drives (:data:`DRIVE_BYTES`), the V_dend and latent
    records and their analysis (:data:`V_DEND_BYTES`, :data:`LATENT_BYTES`), the spike records
    at :data:`ASSUMED_RATE_HZ` and the imaging analysis (:data:`IMAGING_BYTES` per frame and
    ROI). A part that grows with the neurons and the day's length is put under whichever of
    ``network.n_pyr``, ``stimulus.session_duration`` (and the sampling interval) is further from
    its default."""
    net, an = cfg["network"], cfg["analysis"]
    protocol = GaborProtocol.from_validated(cfg["stimulus"])
    rows, duration = day_duration_ms(protocol)
    out: dict[str, float] = collections.defaultdict(float)
    for part, b in netspec.estimate_memory(spec, backend=net["backend"]).items():
        kind, _, name = part.removeprefix("network.").partition(".")
        if kind == "populations":
            out[SIZE_KEYS[name]] += b
        elif kind == "projections":
            pre, post = PROJECTIONS[name][:2]
            bigger = max((pre, post), key=lambda pop: spec.populations[pop]["n"])
            nnz = netspec.expected_synapses(spec.projections[name], spec.populations)
            out[SIZE_KEYS[bigger]] += b + netspec.SYNAPSE_BYTES * nnz
    n, nf, ni = net["n_pyr"], net["n_feedback"], net["n_inh"]
    long = [("stimulus.session_duration", True)]
    out[_furthest(cfg, [("network.n_pyr", True), *long])] += DRIVE_BYTES * rows * n
    out[_furthest(cfg, [("network.n_feedback", True), *long])] += DRIVE_BYTES * rows * nf
    samples = duration / an["record_every"]
    latents = duration * an["latent_rate"] / 1000.0
    out[_furthest(cfg, [("network.n_pyr", True), *long, ("analysis.record_every", False)])] += \
        V_DEND_BYTES * samples * n
    out[_furthest(cfg, [("network.n_pyr", True), *long, ("analysis.latent_rate", True)])] += \
        LATENT_BYTES * latents * n
    for size, buffers, key in ((n, 3, "network.n_pyr"), (nf, 1, "network.n_feedback"), (ni, 1, "network.n_inh")):
        cap = max(MAX_SPIKES, size)
        records = max(min(cap, max(1024, 4 * size)), min(float(cap), 2.0 * size * ASSUMED_RATE_HZ * duration / 1000.0))
        out[_furthest(cfg, [(key, True), *long])] += 12.0 * buffers * records
    frames, rois = duration / 1000.0 * cfg["imaging"]["frame_rate"], n * (1 + cfg["imaging"]["n_apical"])
    out[_furthest(cfg, [("network.n_pyr", True), *long])] += IMAGING_BYTES * frames * rois
    out = dict(out)
    out["total"] = float(sum(out.values()))
    return out


def check_day_network(cfg, *, available: int | None = None) -> dict[str, float]:
    """What a day's simulation would refuse because of a value, refused now: the day-1 circuit
    (:func:`day_network_table`) against the engine's spec, the run's memory
    (:func:`estimate_memory`) against this machine's available memory (or ``available`` bytes),
    a dry build with the day's monitors, and the engine's monitor budget for one day's
    recordings. Every error names the experiment's scenario key. Returns the memory estimate."""
    net, an = cfg["network"], cfg["analysis"]
    protocol = GaborProtocol.from_validated(cfg["stimulus"])
    _, duration = day_duration_ms(protocol)
    with scenario_keys():
        spec = netspec.parse(day_network_table(net, protocol.frame_duration * 1000.0), dt=net["dt"])
    estimate = estimate_memory(cfg, spec)
    blame = max((k for k in estimate if k != "total"), key=estimate.get)
    netspec.check_memory(estimate, key=blame, available=available)
    with scenario_keys():
        dry = netspec.build(spec, dt=net["dt"], seed=0, backend=net["backend"], outer=OUTER_KEYS, dry=True)
    for pop in ("pyr", "feedback", "inh"):
        dry.spike_monitor(pop)
    for variables, every, key in ((["v_dend"], an["record_every"], "analysis.record_every"),
                                  (["dend_exc", "burst_prob"], 1000.0 / an["latent_rate"], "analysis.latent_rate")):
        try:
            dry.state_monitor("pyr", variables, every=every)
        except ScenarioError as e:
            raise ScenarioError(key, e.expected) from None
    need, budget = dry.memory_report(duration)["total"], dry.max_monitor_bytes
    if need > budget:
        key = _furthest(cfg, [("network.n_pyr", True), ("stimulus.session_duration", True),
                              ("analysis.record_every", False)])
        raise ScenarioError(key, f"expected one day's recordings within the engine's monitor budget of "
                            f"{netspec.format_bytes(budget)}; V_dend every {an['record_every']:g} ms and the latents "
                            f"of {net['n_pyr']} neurons over {duration / 1000.0:g} s need "
                            f"{netspec.format_bytes(need)}: fewer network.n_pyr, a shorter "
                            "stimulus.session_duration or a longer analysis.record_every")
    return estimate


# --------------------------------------------------------------------------- parameter records
def analyse_day(rec: DayRecord, session, table: dict, p: CircuitParams, an: dict, imaging: ImagingParams):
    """One day's entry of ``metrics.sessions`` (without weights) and its per-ROI noise and event
    sizes, ``{compartment: {noise_sd, nu, event, event_noiseless}}`` lists, for pooling."""
    frame = np.asarray(table["frame"])
    dff = np.asarray(session.traces["dff"])
    comp = np.asarray(session.rois.compartment)
    summary = response_summary(dff, session.frame_times, comp, table, an["response_window"] / 1000.0,
                               an["baseline_window"] / 1000.0)
    rates = frame_rates(rec.pyr_t, rec.pyr_i, p.n_pyr, table)
    bursts = frame_rates(rec.burst_t, rec.burst_i, p.n_pyr, table)
    plateau = frame_fraction(rec.v_dend > an["plateau_threshold"], rec.record_every, table)
    noise = noise_stats(dff, session.frame_rate, imaging.dff_noise_window, comp)
    events = event_sizes(session)
    day = {
        "n_frames": int(session.n_frames), "duration_s": float(session.ground_truth.duration),
        "n_expected": int(np.sum(frame == "D")), "n_unexpected": int(np.sum(frame == "U")),
        "dff": summary,
        "spikes": {"rate_hz": rates_by_frame(rates, frame),
                   "burst_rate_hz": rates_by_frame(bursts, frame),
                   "plateau_fraction": rates_by_frame(plateau, frame)},
        "feedback_rate_hz": rates_by_frame(frame_rates(rec.feedback_t, rec.feedback_i, p.n_feedback, table),
                                            frame),
        "interneuron_rate_hz": rates_by_frame(frame_rates(rec.inh_t, rec.inh_i, p.n_inh, table), frame),
    }
    stats = {c: {"noise_sd": noise[c][0], "nu": noise[c][1], "event": events[c][0],
                 "event_noiseless": events[c][1]} for c in COMPARTMENTS}
    return day, stats


# --------------------------------------------------------------------------- the experiment
@register("experiment", "openscope_session")
class OpenscopeSession(Experiment):
    """Spiking two-compartment circuit with apical feedback, Gabor A-B-C-D/U-G sequences over
    several days with plasticity between them, imaged (somata + apical dendrites) into NWB."""

    sections = {
        "indicator": "indicator",
        "imaging": IMAGING_SCHEMA,
        "stimulus": GABOR_SCHEMA,
        "network": NETWORK_SCHEMA,
        "plasticity": PLASTICITY_SCHEMA,
        "analysis": ANALYSIS_SCHEMA,
    }

    def validate(self, cfg):
        net, an, stim = cfg["network"], cfg["analysis"], cfg["stimulus"]
        dt = net["dt"]

        def multiple(value, of, key, what):
            k = value / of
            if abs(k - round(k)) > 1e-6 * max(1.0, k) or round(k) < 1:
                raise ScenarioError(key, f"expected a multiple of {what} ({of:g} ms), got {value:g} ms")
            return int(round(k))

        multiple(stim["frame_duration"], dt, "stimulus.frame_duration", "network.dt")
        multiple(an["record_every"], dt, "analysis.record_every", "network.dt")
        multiple(1000.0 / an["latent_rate"], an["record_every"], "analysis.latent_rate",
                 "analysis.record_every (as a period)")
        if stim["session_duration"] < 5 * stim["frame_duration"]:
            raise ScenarioError("stimulus.session_duration", "expected at least one A-B-C-D-G sequence "
                                f"({5 * stim['frame_duration'] / 1000:g} s)")
        GaborProtocol.from_validated(stim)            # block bounds (run builds the protocol)
        check_day_network(cfg)

    def run(self, cfg, ctx):
        from dendrite_sim.imaging import make_rois, simulate_session
        from dendrite_sim.imaging.indicators import resolve

        for key in ("simulate_s", "imaging_s", "export_s", "analysis_s"):
            ctx.record_timing(key, 0.0)               # timings.json, never metrics.json
        net_v, an = cfg["network"], cfg["analysis"]
        p = CircuitParams(**net_v)
        pp = PlasticityParams(**cfg["plasticity"])
        protocol = GaborProtocol.from_validated(cfg["stimulus"])
        imaging = ImagingParams.from_validated(cfg["imaging"])
        indicator = resolve(cfg["indicator"])
        tables = protocol_tables(protocol, rngmod.child_seed(ctx.seed, "openscope/stimulus"))
        circuit = make_circuit(p, protocol, ctx.seed)
        rois = make_rois(p.n_pyr, rngmod.stream(ctx.seed, "openscope/rois"), imaging.geometry())
        latent_every = 1000.0 / an["latent_rate"]

        keep = an["keep_sessions"] or an["export"] == "none"
        work = ctx.out if keep else ctx.out / ".sessions.tmp"     # removed at the end unless kept
        sessions, per_day, folders = [], {}, []
        pooled = {c: {"noise_sd": [], "nu": [], "event": [], "event_noiseless": []} for c in COMPARTMENTS}
        for k, table in enumerate(ctx.progress(tables, total=len(tables), desc="days")):
            day = f"day{k + 1}"
            weights = {"feedback_dend_pA": float(circuit.conn_feedback_dend.weights.mean()),
                       "inhibition_soma_pA": float(circuit.conn_inh_soma.weights.mean())}
            with ctx.timer("simulate_s"):
                rec = simulate_day(circuit, p, protocol, table, rngmod.child_seed(ctx.seed, f"openscope/{day}"),
                                   an["record_every"], latent_every)
                gt = ground_truth(rec, latent_every, an["plateau_threshold"], an["plateau_min_duration"], p.dt)
            for key, seconds in rec.timings.items():
                ctx.record_timing(f"sessions.{day}.simulation.{key}", seconds)
            img_seed = rngmod.child_seed(ctx.seed, f"openscope/imaging/{day}")
            with ctx.timer("imaging_s"):
                session = simulate_session(
                    gt, indicator=indicator, imaging=imaging, rois=rois, stimulus=table, seed=img_seed,
                    name=day, path=work / f"session-{day}",
                    provenance={"seed": ctx.seed, "imaging_seed": img_seed, "experiment": "openscope_session",
                                "day": k + 1, "weights_at_session": weights})
            folders.append(f"session-{day}")
            with ctx.timer("analysis_s"):
                per_day[day], dff_stats = analyse_day(rec, session, table, p, an, imaging)
                per_day[day]["weights"] = weights
                for c in COMPARTMENTS:
                    for key in ("noise_sd", "nu", "event", "event_noiseless"):
                        pooled[c][key].extend(dff_stats[c][key])
                sessions.append((session, aligned_traces(np.asarray(session.traces["dff"]), session.frame_rate,
                                                         np.asarray(session.rois.compartment), table)))
                if pp.enabled and k + 1 < len(tables):
                    consolidate(circuit, rec, table, pp)
            del rec

        # export during the run (the run folder already holds config.toml and provenance.json)
        exported = []
        if an["export"] != "none":
            from dendrite_sim.io.export import export_session, run_provenance

            with ctx.timer("export_s"):
                extra = run_provenance(ctx.out)
                for (session, _), folder in zip(sessions, folders):
                    path = export_session(session, ctx.out / f"{folder}.{an['export']}", an["export"], extra)
                    exported.append(path.name)

        # figures
        days = list(per_day)
        with ctx.timer("analysis_s"):
            from dendrite_sim.plotting import imaging as figs

            ctx.save_figure(figs.dff_heatmap_figure([s for s, _ in sessions], days,
                                                    window=an["heatmap_window"] / 1000.0), "dff_heatmap")
            ctx.save_figure(figs.response_figure({d: a for d, (_, a) in zip(days, sessions)},
                                                 {d: per_day[d]["dff"] for d in days}), "responses")
            shown = [sessions[0][0]] if len(sessions) == 1 else [sessions[0][0], sessions[-1][0]]
            ctx.save_figure(figs.example_traces_figure(
                shown, figs.pick_example_neurons(sessions[-1][0], an["example_neurons"]),
                window=an["example_window"] / 1000.0), "example_traces")

        if not keep:                       # NWB (or npz) is the product: the folders go
            import shutil

            sessions.clear()
            shutil.rmtree(work, ignore_errors=True)
            folders = []
        first, last = per_day[days[0]]["dff"], per_day[days[-1]]["dff"]

        def change(c, key):
            a, b = first[c][key], last[c][key]
            return None if a is None or b is None else float(b - a)

        su, au = change("soma", "usi"), change("apical", "usi")
        counts = {c: int(np.sum(rois.compartment == c)) for c in COMPARTMENTS}
        return {
            "n_neurons": p.n_pyr, "n_sessions": len(tables),
            "session_duration_s": [per_day[d]["duration_s"] for d in days],
            "frame_rate_hz": float(imaging.frame_rate),
            "rois": {**counts, "total": int(rois.n_rois)},
            "noise": {c: {"dff_sd": finite_median(pooled[c]["noise_sd"]),
                          "dff_sd_requested": imaging.noise_sd_soma if c == "soma" else imaging.noise_sd_apical,
                          "nu_pct_per_sqrt_hz": finite_median(pooled[c]["nu"])} for c in COMPARTMENTS},
            "event_size": {c: pooled_event_metrics(pooled[c]) for c in COMPARTMENTS},
            "sessions": per_day,
            "prediction": {"soma_usi_change": su, "apical_usi_change": au,
                           "soma_difference_change": change("soma", "difference"),
                           "apical_difference_change": change("apical", "difference"),
                           "opposite_directions": None if su is None or au is None else bool(su * au < 0)},
            "files": {"sessions": folders, "exported": exported},
        }
