"""The worked example of docs/user_model.md: a user-defined neuron model in one file.

A quadratic integrate-and-fire neuron (Izhikevich 2007 "simple model" without its recovery
variable; Ermentrout & Kopell 1986, Latham et al. 2000) is defined and registered here, exactly
as a user would in their own file, then stepped by the same harnesses that run the built-ins
(vectorised numpy, per-neuron Numba) and, where the spiking engine is present, in a Network —
without any change to the package. Checks: its closed-form rheobase and firing period.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest
from test_neuron_models import DT, const_drive, simulate, simulate_numba, spike_times

from dendrite_sim import register
from dendrite_sim.core import registry
from dendrite_sim.core.elementwise import select
from dendrite_sim.neurons.base import NeuronModel


# ----------------------------------------------------------------- the user's file starts here
class QIFParams(NamedTuple):
    C: float = 100.0        # pF
    k: float = 0.7          # nS/mV
    v_r: float = -60.0      # mV   resting potential
    v_t: float = -40.0      # mV   instantaneous threshold
    v_peak: float = 35.0    # mV   spike cut-off
    v_reset: float = -50.0  # mV


@register("neuron", "qif_example")
class QIF(NeuronModel):
    """Quadratic integrate-and-fire neuron (Izhikevich 2007, without recovery variable).

    C dv/dt = k (v − v_r)(v − v_t) + I_exc + I_drive;  v ≥ v_peak: spike, v ← v_reset.
    Forward Euler. Rheobase k (v_t − v_r)² / 4.
    """

    state_vars = ("v_soma",)
    channels = {"exc": 5.0}          # a current channel (pA), decays with 5 ms
    compartments = ("soma",)
    Params = QIFParams
    units = {"C": "pF", "k": "nS/mV", "v_r": "mV", "v_t": "mV", "v_peak": "mV",
             "v_reset": "mV", "v_soma": "mV"}
    bounds = {"C": "> 0", "k": "> 0"}           # physical ranges: "C = 0" is refused by check

    @staticmethod
    def step(v, I_exc, I_drive, p, dt):
        v_new = v + (p.k * (v - p.v_r) * (v - p.v_t) + I_exc + I_drive) * (dt / p.C)
        spiked = v_new >= p.v_peak
        return select(spiked, p.v_reset, v_new), spiked

    @classmethod
    def initial_state(cls, n, p, rng):
        return {"v_soma": np.full(n, p.v_r)}
# ----------------------------------------------------------------- the user's file ends here


def qif_period(I, p):
    """Time from v_reset to v_peak: with x = v − (v_r + v_t)/2 and q² = (I − I_rh)/k,
    C dx/dt = k (x² + q²), so T = C/(k q) · [atan(x_peak/q) − atan(x_reset/q)]."""
    vm = 0.5 * (p.v_r + p.v_t)
    q = math.sqrt((I - p.k * (p.v_t - p.v_r) ** 2 / 4.0) / p.k)
    return p.C / (p.k * q) * (math.atan((p.v_peak - vm) / q) - math.atan((p.v_reset - vm) / q))


def test_user_model_is_registered_and_named_by_scenarios():
    assert registry.get("neuron", "qif_example") is QIF
    assert "qif_example" in registry.available("neuron")
    assert QIF.make_params({"v_peak": 30.0}).v_peak == 30.0


def test_user_model_rheobase_and_period_closed_forms():
    p = QIF.make_params()
    rheobase = p.k * (p.v_t - p.v_r) ** 2 / 4.0          # 70 pA
    currents = np.array([rheobase - 1.0, rheobase + 1.0, 150.0, 300.0, 600.0])
    _, spikes = simulate(QIF, p, const_drive(20000, [currents]))
    assert not spikes[:, 0].any() and spikes[:, 1].any()
    for j, I in enumerate(currents[2:], start=2):
        isi = np.diff(spike_times(spikes, j))
        T = qif_period(I, p)
        # Euler at dt = 0.1 ms plus up to one step of threshold crossing
        assert abs(isi.mean() - T) < 0.03 * T + DT, (I, isi.mean(), T)


def test_user_model_numpy_and_numba_agree():
    p = QIF.make_params()
    T, n = 3000, 3
    drive = const_drive(T, [[100.0, 200.0, 400.0]])
    chan = np.zeros((T, 1, n))
    chan[1000:, 0, :] = 50.0 * np.exp(-np.arange(T - 1000) * DT / 5.0)[:, None]
    rec_np, sp_np = simulate(QIF, p, drive, chan)
    rec_nb, sp_nb = simulate_numba(QIF, p, drive, chan)
    assert sp_np.sum() > 10
    np.testing.assert_array_equal(sp_np, sp_nb)
    np.testing.assert_allclose(rec_nb["v_soma"], rec_np["v_soma"], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_user_model_runs_in_the_engine_unchanged(backend):
    network = pytest.importorskip("dendrite_sim.engine.network")
    p = QIF.make_params()
    net = network.Network(dt=DT, seed=1, backend=backend)
    net.population("qif", 2, "qif_example")
    net.current("qif", "soma", bias=np.array([150.0, 300.0]))
    mon = net.spike_monitor("qif")
    net.run(500.0)
    t, i = np.asarray(mon.t), np.asarray(mon.i)
    for j, I in enumerate([150.0, 300.0]):
        isi = np.diff(np.sort(t[i == j]))
        assert len(isi) > 5 and abs(isi.mean() - qif_period(I, p)) < 0.03 * qif_period(I, p) + DT
