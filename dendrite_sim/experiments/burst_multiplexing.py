"""Experiment ``burst_multiplexing``: two input streams multiplexed in events and bursts.

Naud & Sprekeler 2018 PNAS ("Sparse bursts optimize information transmission in a multiplexed
neural code", Fig 2–4). A population of N two-compartment burst neurons
(:mod:`dendrite_sim.neurons.naud_sprekeler`) receives

    I_soma,i(t) = μ_s + σ_s · s(t) + ξ_s,i(t)        I_dend,i(t) = μ_d + σ_d · d(t) + ξ_d,i(t)

where s and d are two slow signals common to all neurons and ξ the neuron's own noise. The
signals are Ornstein–Uhlenbeck processes of correlation time τ, sampled exactly every
``input.sample`` ms (x_{k+1} = a x_k + √(1 − a²) η_k, a = exp(−Δ/τ), η ~ N(0, 1)), each from
its own named stream of the root seed. Two independent draws of a slow process are correlated
by chance over a few seconds (r ≈ ±1/√(T/τ)); so that a cross term measures the neurons and
not the draw, d is then orthogonalised to s (Gram–Schmidt on the samples) and both are scaled
to zero mean and unit variance: their sample correlation is exactly 0. The noise ξ is balanced
excitatory and inhibitory Poisson shot noise (``noise_sources`` inputs at ``noise_rate`` each,
current steps +w = ``noise_weight`` and −w·τ_exc/τ_inh decaying with the channel's τ, 5 ms
excitatory and 10 ms inhibitory, so that the noise has zero mean), independent for every neuron
and compartment.

The network is a ``[network]`` table of the engine's spec (:mod:`dendrite_sim.engine.spec`)
generated from the validated parameters (:func:`network_table`: the population ``pyr``, per
compartment a ``current`` input holding μ + σ·s(t) — common to all neurons, so the spec's
``values`` express it — and the two noise ``poisson`` inputs) and built by
:func:`dendrite_sim.engine.spec.build`; only the spike monitor is added afterwards through the
Network API. ``dendrite-sim check`` runs the same spec on that table (stand-in values for the
signals, which need the seed), estimates the run's memory (network, signals, decoding grid,
spike records; :func:`estimate_memory`) against this machine's, and dry-builds the network
(:func:`check_network`), so that what ``run`` would refuse because of a value is refused there,
under this experiment's keys (``network.n_neurons``, ``somatic_input.noise_sources``,
``network.neuron.C_s``, ...).

Somatic input sets the *event* rate (an event = a spike after more than T_b = 16 ms of
silence); dendritic input sets the *burst* probability P (a burst = an event with a second
spike within T_b), because a backpropagating action potential turns into a dendritic plateau
and a burst only when the dendrite is depolarised. So the population event rate E(t) follows
s(t) and the burst rate B(t) = P(t)·E(t) follows d(t) (as long as the modulation of P dominates
that of E; B/E, the burst fraction, removes E altogether).

Decoders (all in Hz or release per neuron per second; averaged over the population, binned
at ``decoding.bin`` and smoothed with a causal exponential filter of time constant
``decoding.tau`` and unit area — the current of a readout synapse of that time constant):

* ``event_rate`` E(t), ``burst_rate`` B(t): events and bursts detected online by the engine
  (:mod:`dendrite_sim.engine.bursts`); ``burst_fraction`` B(t)/E(t);
* ``std`` and ``stf``: the summed synaptic release Σ_k A_k δ(t − t_k) / N of every neuron's
  spikes through Tsodyks–Markram synapses (:mod:`dendrite_sim.synapses.stp`, default presets
  ``payeur_std``, U = 0.9, τ_D = 20 ms: the later spikes of a burst find the resource mostly
  spent, so the release mainly counts events; and ``payeur_stf``, U = 0.02, f = 0.1: the second
  spike of a burst releases ≈ 5× the first, so the release weights bursts — Payeur et al. 2021);
* ``stf_over_std``: their ratio, a divisive synaptic readout of the burst fraction.

The STP release is computed **offline from the recorded spike trains** with the engine's own
kernels (:func:`~dendrite_sim.synapses.stp.stp_relax`, :func:`~dendrite_sim.synapses.stp.stp_spike`)
in :func:`stp_release`. Justification: the Tsodyks–Markram state depends only on the
presynaptic spike train, so the summed release onto a linear readout is exactly what a readout
population with all-to-all STP synapses would receive — the test checks it against such a
readout simulated in the network (the channel of a readout neuron, to 1e-9) — without
simulating readout neurons, and one recorded run can be decoded with any synapse parameters.

Correlations: Pearson correlation, after discarding ``decoding.warmup``, between a decoded
signal delayed by the lag L ∈ [0, ``decoding.max_lag``] and the input signal, where L is the lag
that maximises the decoder's correlation with its own target (somatic input for ``event_rate``
and ``std``; dendritic input for ``burst_rate``, ``burst_fraction``, ``stf`` and
``stf_over_std``). The cross terms use the same lag (a decoder has one latency). Two independent
slow signals correlate by chance with standard deviation √(2τ_sτ_d / ((τ_s + τ_d) T))
(``chance_corr_sd``, 0.10 for 200 ms signals over 19.5 s): the floor below which a cross term
means nothing.

What limits the cross terms (measured on the default scenario, least squares on the decoded
signals, R² > 0.99): in this model a burst has ≈ 3.5 spikes, and the STD release is ≈ 0.9·E +
0.36·(spikes after the first of a burst): the spikes of a burst come ≈ 9 ms apart (median),
in which payeur_std recovers ≈ 40 % of its resource, so bursts leak into the event decoder
(``corr_std_dendritic`` ≈ 0.3–0.4).
The STF release is ≈ 0.07·E + 0.19·(spikes after the first of a burst): with τ_F = 100 ms and
≈ 5 events/s an event still finds u facilitated by the previous one, so the event rate leaks into
the burst decoder (``corr_stf_somatic`` ≈ 0.3–0.45). The ratio STF/STD, a divisive readout of the
burst fraction (``stf_over_std``), removes most of the event rate.

Measured (default scenario: 2000 neurons, 20 s, seeds 1–4; 4000 neurons give the same numbers
within 0.01): event rate~somatic 0.86–0.91 (~dendritic −0.01–0.04); STD~somatic 0.72–0.81
(~dendritic 0.35–0.41); burst rate~dendritic 0.73–0.81 (~somatic 0.12–0.24); STF~dendritic
0.62–0.72 (~somatic 0.32–0.47); burst fraction~dendritic 0.81–0.87 (~somatic −0.05–0.05);
STF/STD~dendritic 0.81–0.87 (~somatic 0.16–0.27); ≈ 5.4 events/s, 7.2 spikes/s, burst fraction
0.13, 3.5 spikes per burst. 5–10 s on one core.

metrics.json keys (stable):

* ``corr_event_rate_somatic``, ``corr_burst_rate_dendritic``, ``corr_std_somatic``,
  ``corr_stf_dendritic`` — on-target correlations;
* ``corr_std_dendritic``, ``corr_stf_somatic``, ``corr_event_rate_dendritic``,
  ``corr_burst_rate_somatic`` — cross terms (small when the code multiplexes);
* ``corr_burst_fraction_dendritic``, ``corr_burst_fraction_somatic`` — the burst fraction B/E;
* ``corr_stf_over_std_dendritic``, ``corr_stf_over_std_somatic`` — the synaptic ratio STF/STD;
* ``lag_<decoder>_ms`` for ``event_rate``, ``burst_rate``, ``burst_fraction``, ``std``, ``stf``,
  ``stf_over_std``;
* ``chance_corr_sd`` (see above), ``mean_rate_hz`` (spikes per neuron per second),
  ``mean_event_rate_hz``, ``mean_burst_rate_hz``, ``burst_fraction`` (bursts / events),
  ``n_neurons``, ``duration_ms``, ``n_spikes``.

Figure ``burst_multiplexing.png`` (:func:`dendrite_sim.plotting.bursts.burst_multiplexing_figure`):
inputs, raster with bursts marked, decoded signals over the inputs.
Data ``burst_multiplexing.npz``: time (``t_ms``), the common input currents
(``somatic_input_pA``, ``dendritic_input_pA``) and every decoded signal (``<decoder>_hz``) on the
decoding grid.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
from numba import njit

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import Field
from dendrite_sim.engine import bursts as B
from dendrite_sim.engine import spec as netspec
from dendrite_sim.engine.backends import BACKEND_NAMES
from dendrite_sim.synapses import stp as stpmod

DECODERS = ("event_rate", "burst_rate", "burst_fraction", "std", "stf", "stf_over_std")
TARGET = {"event_rate": "somatic", "std": "somatic", "burst_rate": "dendritic",
          "burst_fraction": "dendritic", "stf": "dendritic", "stf_over_std": "dendritic"}


# --------------------------------------------------------------------------- input signals
def ou_signal(rng: np.random.Generator, n_samples: int, sample_ms: float, tau_ms: float) -> np.ndarray:
    """Stationary Ornstein–Uhlenbeck process of unit variance and correlation time ``tau_ms``,
    sampled exactly every ``sample_ms``: x_0 ~ N(0, 1), x_{k+1} = a x_k + √(1 − a²) η_k."""
    a = math.exp(-sample_ms / tau_ms)
    eta = rng.standard_normal(n_samples)
    eta[1:] *= math.sqrt(1.0 - a * a)
    return _ar1(eta, a)


@njit(cache=True, error_model="numpy")
def _ar1(eta, a):
    x = np.empty_like(eta)
    acc = 0.0
    for k in range(eta.size):
        acc = eta[k] if k == 0 else a * acc + eta[k]
        x[k] = acc
    return x


def orthogonal_pair(s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(s, d)`` standardised to zero mean and unit variance, ``d`` first made orthogonal to ``s``
    (Gram–Schmidt), so that their sample correlation is exactly 0."""
    s = s - s.mean()
    d = d - d.mean()
    d = d - s * (s @ d) / (s @ s)
    return s / s.std(), d / d.std()


# --------------------------------------------------------------------------- decoders
@njit(cache=True, error_model="numpy")
def _release_kernel(steps, idx, n, U, tau_D, tau_F, f, variant, dt):
    u = np.empty(n)
    x = np.empty(n)
    last = np.full(n, B.NEVER, dtype=np.int64)
    u0, x0 = stpmod.stp_rest_state(U, variant)
    u[:] = u0
    x[:] = x0
    out = np.empty(steps.size)
    for k in range(steps.size):
        j = idx[k]
        uj, xj = stpmod.stp_relax(u[j], x[j], (steps[k] - last[j]) * dt, U, tau_D, tau_F, variant)
        rel, up, xp = stpmod.stp_spike(uj, xj, U, f, variant)
        u[j] = up
        x[j] = xp
        last[j] = steps[k]
        out[k] = rel
    return out


def stp_release(steps, indices, n: int, params: stpmod.STPParams, dt: float) -> np.ndarray:
    """Release A_k of every spike k through a Tsodyks–Markram synapse of ``params``.

    ``steps`` (integer time steps of ``dt`` ms) and ``indices`` (neuron of each spike, in
    [0, n)) are the records of a spike monitor, in time order (any order within a step).
    Every neuron's synapse starts at rest; at each spike its state relaxes exactly over the
    time since the neuron's previous spike and then releases (the engine's kernels, in the
    engine's order, so the result equals an STP projection's per-spike release).
    """
    steps = np.ascontiguousarray(steps, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    if steps.shape != indices.shape:
        raise ValueError("steps and indices must have the same shape")
    if steps.size and (np.any(np.diff(steps) < 0) or indices.min() < 0 or indices.max() >= n):
        raise ValueError("expected spikes in time order with indices in [0, n)")
    return _release_kernel(steps, indices, int(n), float(params.U), float(params.tau_D),
                           float(params.tau_F), float(params.f), int(params.variant), float(dt))


@njit(cache=True, error_model="numpy")
def _exp_filter(x, a):
    y = np.empty_like(x)
    acc = 0.0
    for k in range(x.size):
        acc = a * acc + (1.0 - a) * x[k]
        y[k] = acc
    return y


def population_signal(times_ms, n_neurons: int, duration_ms: float, bin_ms: float, tau_ms: float,
                      weights=None) -> np.ndarray:
    """Population rate (Hz per neuron) of the records at ``times_ms`` (optionally weighted, e.g.
    by their release), binned at ``bin_ms`` over [0, ``duration_ms``) and smoothed causally:
    y_k = a y_{k−1} + (1 − a) r_k, a = exp(−bin/τ) (unit DC gain; ``tau_ms`` = 0: no smoothing)."""
    n_bins = int(round(duration_ms / bin_ms))
    k = np.floor(np.asarray(times_ms, dtype=np.float64) / bin_ms + 1e-9).astype(np.int64)
    keep = (k >= 0) & (k < n_bins)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[keep]
    counts = np.bincount(k[keep], weights=w, minlength=n_bins).astype(np.float64)
    rate = counts * (1000.0 / (bin_ms * n_neurons))
    a = math.exp(-bin_ms / tau_ms) if tau_ms > 0 else 0.0
    return _exp_filter(rate, a)


def lagged_corr(x: np.ndarray, target: np.ndarray, lag: int) -> float:
    """Pearson correlation of x(t + lag) with target(t) (lag in samples, ≥ 0)."""
    a = x[lag:]
    b = target[: target.size - lag]
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def chance_corr_sd(tau_a: float, tau_b: float, duration: float) -> float:
    """Standard deviation of the sample correlation of two *independent* OU signals of
    correlation times τ_a, τ_b over ``duration`` (large-T limit, Bartlett's formula):
    √(∫ρ_a(u)ρ_b(u) du / T) = √(2 τ_a τ_b / ((τ_a + τ_b) T)). The floor of a cross term."""
    return math.sqrt(2.0 * tau_a * tau_b / ((tau_a + tau_b) * duration))


def best_lag(x: np.ndarray, target: np.ndarray, max_lag: int) -> int:
    """The lag in [0, max_lag] samples that maximises :func:`lagged_corr`."""
    return int(np.argmax([lagged_corr(x, target, lag) for lag in range(max_lag + 1)]))


# --------------------------------------------------------------------------- experiment
_CURRENT = dict(dimension="current")


def _input_schema(mean, amplitude, tau, noise_weight):
    return {
        "mean": Field("quantity", mean, "constant current μ", **_CURRENT),
        "amplitude": Field("quantity", amplitude, "standard deviation σ of the common slow signal",
                           lo=0, **_CURRENT),
        "tau": Field("quantity", tau, "correlation time of the Ornstein–Uhlenbeck signal",
                     dimension="time", lo=0, lo_open=True),
        "noise_sources": Field("int", 100, "independent Poisson noise inputs per neuron (each sign)", lo=0),
        "noise_rate": Field("quantity", "5 Hz", "rate of each noise input", dimension="frequency", lo=0),
        "noise_weight": Field("quantity", noise_weight, "excitatory current step of one noise spike "
                              "(the inhibitory step is −w·τ_exc/τ_inh: zero mean noise)", lo=0, **_CURRENT),
    }


# --------------------------------------------------------------------------- the network spec
POP = "pyr"
SIGNAL_SECTIONS = (("soma", "somatic_input"), ("dend", "dendritic_input"))
#: Scenario keys of the engine's keys outside ``[network]`` (see :func:`dendrite_sim.engine.spec.build`).
OUTER_KEYS = {"dt": "network.dt", "backend": "network.backend", "fastmath": "network.backend",
              "duration": "network.duration"}
#: Bytes per sample of the slow signals (``input.sample``): for each of the two, the OU draw and its
#: standardisation (6 float64 arrays), the drive array, its list in the network table (a float
#: object and a pointer), the spec's validated copy (a pointer) and the engine's array.
SIGNAL_BYTES_PER_SAMPLE = 2 * (6 * 8 + 8 + 32 + 8 + 8)
#: Bytes per bin of the decoding grid: six decoded signals, the binning temporaries of
#: :func:`population_signal` (bin index, counts, rate), the inputs and time on the grid.
DECODING_BYTES_PER_BIN = 15 * 8
#: Bytes per recorded spike: the monitor's spike, event and burst records (12 bytes each) and the
#: offline decoding (integer steps and indices, releases, bin indices and weights).
SPIKE_BYTES = 3 * 12 + 6 * 8
#: Mean rate assumed for the spike records in the memory estimate (the default scenario fires
#: 7.2 spikes/s; the buffers double as they grow).
ASSUMED_RATE_HZ = 20.0
#: The spike monitor's default cap (:meth:`dendrite_sim.engine.network.Network.spike_monitor`).
MAX_SPIKES = 50_000_000


def network_table(cfg, s: np.ndarray | None = None, d: np.ndarray | None = None) -> dict:
    """The experiment's network as a ``[network]`` table of the engine's spec
    (:mod:`dendrite_sim.engine.spec`), generated from the validated ``cfg``.

    One population ``pyr`` (naud_sprekeler, ``network.n_neurons``, ``network.neuron``,
    ``network.burst_window``); per compartment a ``current`` input ``<section>.signal`` of values
    μ + σ·s(t) held for ``input.sample`` (the signal is common to all neurons, so the spec's
    ``values`` express it) and the two Poisson inputs ``<section>.noise_exc`` / ``noise_inh``
    (weights +w and −w·τ_exc/τ_inh with the model's channel time constants). The names are the
    engine's random streams: the same as before the spec, so results are unchanged.
    ``s``, ``d``: the standardised signals (:meth:`BurstMultiplexing.signals`); None (at check
    time, before a seed) puts two stand-in values μ ± σ·√(samples − 1), the largest a unit-variance
    sample can reach, so that a drive that would overflow is refused before the signals exist.
    """
    from dendrite_sim.neurons.naud_sprekeler import NaudSprekeler

    nc = cfg["network"]
    sample = cfg["input"]["sample"]
    n_samples = int(math.ceil(nc["duration"] / sample - 1e-9))
    bound = math.sqrt(max(n_samples - 1, 1))
    tau = NaudSprekeler.channels
    pops = {POP: {"model": "naud_sprekeler", "n": nc["n_neurons"], "params": dict(nc["neuron"]),
                  "burst_window": f"{nc['burst_window']!r} ms"}}
    inputs = {}
    for (comp, sec), sig in zip(SIGNAL_SECTIONS, (s, d)):
        c = cfg[sec]
        if sig is None:
            values = [c["mean"] - c["amplitude"] * bound, c["mean"] + c["amplitude"] * bound]
        else:
            values = (c["mean"] + c["amplitude"] * sig).tolist()
        inputs[f"{sec}.signal"] = {"type": "current", "target": POP, "compartment": comp, "values": values,
                                   "values_dt": f"{sample!r} ms"}
        if c["noise_sources"] > 0 and c["noise_rate"] > 0 and c["noise_weight"] > 0:
            exc, inh = f"{comp}_exc", f"{comp}_inh"
            w_inh = -c["noise_weight"] * tau[exc] / tau[inh]        # zero mean current
            for ch, w in ((exc, c["noise_weight"]), (inh, w_inh)):
                inputs[f"{sec}.noise_{ch[-3:]}"] = {"type": "poisson", "target": POP, "channel": ch,
                                                    "n_sources": c["noise_sources"],
                                                    "rate": f"{c['noise_rate']!r} Hz", "weight": f"{w!r} pA"}
    return {"populations": pops, "inputs": inputs}


def _spec_key_map() -> tuple[dict, dict]:
    """(exact keys, prefixes) of the spec's keys (``network.populations.pyr.n``) → the
    experiment's (``network.n_neurons``); list indices (``values[1]``) are dropped first."""
    fields = {f"network.populations.{POP}.n": "network.n_neurons",
              f"network.populations.{POP}.burst_window": "network.burst_window",
              f"network.populations.{POP}.params": "network.neuron"}
    for _, sec in SIGNAL_SECTIONS:
        base = f"network.inputs.{sec}"
        fields.update({f"{base}.signal.values": f"{sec}.amplitude", f"{base}.signal.array": f"{sec}.amplitude",
                       f"{base}.signal.values_dt": "input.sample", f"{base}.signal.array_dt": "input.sample"})
        for kind in ("exc", "inh"):
            fields.update({f"{base}.noise_{kind}.n_sources": f"{sec}.noise_sources",
                           f"{base}.noise_{kind}.rate": f"{sec}.noise_rate",
                           f"{base}.noise_{kind}.weight": f"{sec}.noise_weight"})
    prefixes = {f"network.populations.{POP}.params": "network.neuron", f"network.populations.{POP}": "network",
                **{f"network.inputs.{sec}": sec for _, sec in SIGNAL_SECTIONS}}
    return fields, prefixes


def _experiment_key(key: str, expected: str) -> tuple[str, str]:
    """A key of the generated table (or of the engine building it) as the scenario's own key."""
    return netspec.generated_key(key, expected, *_spec_key_map(), where="the generated network")


@contextlib.contextmanager
def scenario_keys():
    """Errors of the spec and the engine (under the spec's keys, :func:`dendrite_sim.engine.spec.scenario_keys`)
    re-raised under the experiment's scenario keys (:func:`_experiment_key`)."""
    try:
        with netspec.scenario_keys("network", OUTER_KEYS):
            yield
    except ScenarioError as e:
        raise ScenarioError(*_experiment_key(e.key, e.expected)) from None


def _larger(cfg, *keys: str) -> str:
    """Of scenario keys of ``network`` (numbers), the one furthest above its default (ratio)."""
    schema = BurstMultiplexing.sections["network"]

    def ratio(key):
        f = schema[key.split(".", 1)[1]]
        default = f.validate(f.default, key)
        return cfg["network"][key.split(".", 1)[1]] / default
    return max(keys, key=ratio)


def estimate_memory(cfg, spec: netspec.NetworkSpec) -> dict[str, float]:
    """Estimated peak bytes of a run by scenario key (the key that scales each part) and
    ``"total"``: the network (:func:`dendrite_sim.engine.spec.estimate_memory`: state,
    bookkeeping, inputs) under ``network.n_neurons``; the slow signals
    (:data:`SIGNAL_BYTES_PER_SAMPLE`) and the decoding grid (:data:`DECODING_BYTES_PER_BIN`)
    under ``network.duration``; the spike records and their decoding (:data:`SPIKE_BYTES` per
    spike at :data:`ASSUMED_RATE_HZ` with the doubling slack, at most the monitor's cap) under
    whichever of ``network.n_neurons`` and ``network.duration`` is further above its default."""
    nc = cfg["network"]
    net = netspec.estimate_memory(spec, backend=nc["backend"])
    out = {"network.n_neurons": sum(v for k, v in net.items() if k.startswith("network.populations")),
           "network.duration": 0.0}
    n_samples = math.ceil(nc["duration"] / cfg["input"]["sample"] - 1e-9)
    n_bins = round(nc["duration"] / cfg["decoding"]["bin"])
    out["network.duration"] += SIGNAL_BYTES_PER_SAMPLE * n_samples + DECODING_BYTES_PER_BIN * n_bins
    n = nc["n_neurons"]
    cap = max(MAX_SPIKES, n)
    spikes = max(min(cap, max(1024, 4 * n)), min(float(cap), 2.0 * n * ASSUMED_RATE_HZ * nc["duration"] / 1000.0))
    out[_larger(cfg, "network.n_neurons", "network.duration")] += SPIKE_BYTES * spikes
    out["total"] = float(sum(out.values()))
    return out


def check_network(cfg, *, available: int | None = None):
    """What ``run`` would refuse in the network, refused now (``dendrite-sim check``): the
    generated table against the engine's spec (:func:`network_table`, stand-in signals), the
    memory estimate of the run (:func:`estimate_memory`) against this machine's available memory
    (or ``available`` bytes), then a dry build with the spike monitor. Every error names the
    experiment's scenario key. Returns the memory estimate."""
    nc = cfg["network"]
    with scenario_keys():
        spec = netspec.parse(network_table(cfg), dt=nc["dt"])
    estimate = estimate_memory(cfg, spec)
    blame = max((k for k in estimate if k != "total"), key=estimate.get)
    netspec.check_memory(estimate, key=blame, available=available)
    with scenario_keys():
        net = netspec.build(spec, dt=nc["dt"], seed=0, backend=nc["backend"], outer=OUTER_KEYS, dry=True)
        net.spike_monitor(POP)
    return estimate


@register("experiment", "burst_multiplexing")
class BurstMultiplexing(Experiment):
    """Events carry the somatic input, bursts the dendritic one; STD and STF synapses decode them
    (Naud & Sprekeler 2018)."""

    sections = {
        "network": {
            "n_neurons": Field("int", 2000, "two-compartment neurons (naud_sprekeler)", lo=1),
            "dt": Field("quantity", "0.1 ms", "time step", dimension="time", lo=0, lo_open=True),
            "duration": Field("quantity", "20 s", "simulated time", dimension="time", lo=0, lo_open=True),
            "backend": Field("str", "numba", "engine backend", choices=BACKEND_NAMES),
            "burst_window": Field("quantity", "16 ms", "T_b: events and bursts", dimension="time",
                                  lo=0, lo_open=True),
            "neuron": Field("table", {}, "overrides of the naud_sprekeler parameters (internal units)"),
        },
        "input": {
            "sample": Field("quantity", "1 ms", "sampling interval of the slow signals (multiple of dt)",
                            dimension="time", lo=0, lo_open=True),
        },
        "somatic_input": _input_schema("350 pA", "60 pA", "200 ms", "200 pA"),
        "dendritic_input": _input_schema("-250 pA", "200 pA", "200 ms", "200 pA"),
        "decoding": {
            "warmup": Field("quantity", "500 ms", "initial time left out of the correlations",
                            dimension="time", lo=0),
            "bin": Field("quantity", "1 ms", "bin of the population signals", dimension="time",
                         lo=0, lo_open=True),
            "tau": Field("quantity", "20 ms", "time constant of the causal readout filter",
                         dimension="time", lo=0),
            "max_lag": Field("quantity", "50 ms", "largest decoder latency searched", dimension="time", lo=0),
            "std": Field("str", "payeur_std", "STP preset of the event decoder", choices=tuple(stpmod.PRESETS)),
            "stf": Field("str", "payeur_stf", "STP preset of the burst decoder", choices=tuple(stpmod.PRESETS)),
        },
        "figure": {
            "window": Field("quantity", "4 s", "time shown (after the warm-up)", dimension="time",
                            lo=0, lo_open=True),
            "raster_neurons": Field("int", 60, "neurons shown in the raster", lo=1),
        },
    }

    def validate(self, cfg):
        net, dec = cfg["network"], cfg["decoding"]
        for name, value in net["neuron"].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ScenarioError(f"network.neuron.{name}", f"expected a number in internal units "
                                    f"(ms, mV, pA, nS, pF), got {value!r}")
        dt = net["dt"]
        if dt > 10.0:
            raise ScenarioError("network.dt", f"expected a time step of at most 10 ms, got {dt:g} ms")
        for key, value in (("network.duration", net["duration"]), ("input.sample", cfg["input"]["sample"]),
                           ("decoding.bin", dec["bin"])):
            ratio = value / dt
            if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
                raise ScenarioError(key, f"expected a multiple of network.dt = {dt:g} ms, got {value:g} ms")
        if dec["warmup"] + dec["max_lag"] + 10 * dec["bin"] >= net["duration"]:
            raise ScenarioError("decoding.warmup", "expected warmup + max_lag to leave at least 10 bins "
                                f"of network.duration = {net['duration']:g} ms")
        # the network: the engine's spec (neuron parameters and their ranges, Poisson counts per
        # step, ...), the run's memory, a dry build
        check_network(cfg)

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def signals(cfg, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The standardised somatic and dendritic signals s, d (one sample per ``input.sample``)."""
        from dendrite_sim.core import rng as rngmod

        sample = cfg["input"]["sample"]
        n = int(math.ceil(cfg["network"]["duration"] / sample - 1e-9))
        s = ou_signal(rngmod.stream(seed, "signal/somatic"), n, sample, cfg["somatic_input"]["tau"])
        d = ou_signal(rngmod.stream(seed, "signal/dendritic"), n, sample, cfg["dendritic_input"]["tau"])
        return orthogonal_pair(s, d)

    @staticmethod
    def build(cfg, seed: int, s: np.ndarray, d: np.ndarray):
        """The network with its inputs and a spike monitor: ``(net, monitor)``, built by the
        engine's spec (:func:`dendrite_sim.engine.spec.build`) from :func:`network_table`."""
        nc = cfg["network"]
        with scenario_keys():
            net = netspec.build(network_table(cfg, s, d), dt=nc["dt"], seed=seed, backend=nc["backend"],
                                outer=OUTER_KEYS)
        return net, net.spike_monitor(POP)

    @staticmethod
    def decode(cfg, mon, n_neurons: int) -> dict:
        """Decoded population signals on the decoding grid (dict of arrays, Hz)."""
        nc, dec = cfg["network"], cfg["decoding"]
        T, b, tau = nc["duration"], dec["bin"], dec["tau"]
        out = {"event_rate": population_signal(mon.event_t, n_neurons, T, b, tau),
               "burst_rate": population_signal(mon.burst_t, n_neurons, T, b, tau)}
        ev = out["event_rate"]
        out["burst_fraction"] = np.divide(out["burst_rate"], ev, out=np.zeros_like(ev), where=ev > 0)
        for name in ("std", "stf"):
            rel = stp_release(mon.steps, mon.i, n_neurons, stpmod.preset(dec[name], key=f"decoding.{name}"),
                              nc["dt"])
            out[name] = population_signal(mon.t, n_neurons, T, b, tau, weights=rel)
        out["stf_over_std"] = np.divide(out["stf"], out["std"], out=np.zeros_like(ev), where=out["std"] > 0)
        return out

    @staticmethod
    def correlations(cfg, decoded: dict, s_grid: np.ndarray, d_grid: np.ndarray) -> dict:
        """The correlation metrics (see the module docstring)."""
        dec = cfg["decoding"]
        w0 = int(round(dec["warmup"] / dec["bin"]))
        max_lag = int(round(dec["max_lag"] / dec["bin"]))
        inputs = {"somatic": s_grid[w0:], "dendritic": d_grid[w0:]}
        m = {}
        for name in DECODERS:
            x = decoded[name][w0:]
            target = TARGET[name]
            lag = best_lag(x, inputs[target], max_lag)
            m[f"lag_{name}_ms"] = lag * dec["bin"]
            for inp, sig in inputs.items():
                m[f"corr_{name}_{inp}"] = lagged_corr(x, sig, lag)
        return m

    # ------------------------------------------------------------------ run
    def run(self, cfg, ctx):
        nc, dec = cfg["network"], cfg["decoding"]
        n, T = nc["n_neurons"], nc["duration"]
        s, d = self.signals(cfg, ctx.seed)
        net, mon = self.build(cfg, ctx.seed, s, d)
        net.run(T)
        decoded = self.decode(cfg, mon, n)
        # inputs on the decoding grid (sample-and-hold, as the engine applies them)
        n_bins = decoded["event_rate"].size
        grid = ((np.arange(n_bins) * dec["bin"]) / cfg["input"]["sample"] + 1e-9).astype(np.int64)
        grid = np.minimum(grid, s.size - 1)
        s_grid, d_grid = s[grid], d[grid]
        metrics = self.correlations(cfg, decoded, s_grid, d_grid)
        n_ev, n_bu = mon.event_t.size, mon.burst_t.size
        tau_s, tau_d = cfg["somatic_input"]["tau"], cfg["dendritic_input"]["tau"]
        metrics.update({
            "chance_corr_sd": chance_corr_sd(tau_s, tau_d, T - dec["warmup"]),
            "mean_rate_hz": mon.n_spikes / n / (T / 1000.0),
            "mean_event_rate_hz": n_ev / n / (T / 1000.0),
            "mean_burst_rate_hz": n_bu / n / (T / 1000.0),
            "burst_fraction": n_bu / n_ev if n_ev else 0.0,
            "n_neurons": n, "duration_ms": T, "n_spikes": mon.n_spikes,
        })
        t_grid = np.arange(n_bins) * dec["bin"]
        som, den = cfg["somatic_input"], cfg["dendritic_input"]
        ctx.save_npz("burst_multiplexing", t_ms=t_grid, somatic_input_pA=som["mean"] + som["amplitude"] * s_grid,
                     dendritic_input_pA=den["mean"] + den["amplitude"] * d_grid,
                     **{f"{k}_hz": v for k, v in decoded.items()})

        from dendrite_sim.plotting.bursts import burst_multiplexing_figure

        fig = burst_multiplexing_figure(
            t_grid, som["mean"] + som["amplitude"] * s_grid, den["mean"] + den["amplitude"] * d_grid,
            decoded, mon.t, mon.i, burst_window_ms=nc["burst_window"], dt=nc["dt"], metrics=metrics,
            t_start=dec["warmup"], window=cfg["figure"]["window"], n_raster=cfg["figure"]["raster_neurons"])
        ctx.save_figure(fig, "burst_multiplexing")
        return metrics
