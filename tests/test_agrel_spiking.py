"""AGREL's spiking face (rule ``agrel_spiking``, rules/agrel_spiking.py): a three-factor synapse rule.

* the eligibility tag follows its equation on hand-made presynaptic and apical spike trains, on
  both backends, and the backends agree bit for bit. The reference is a direct numpy integration
  from the recorded postsynaptic spikes and apical potentials:

      x_j ← x_j e^{−dt/τ_pre},  r_i ← r_i e^{−dt/τ_r},  e ← e e^{−dt/τ_e}            (every step)
      e_ij += x_j (1 − r_i (1 − e^{−dt/τ_r})/(dt φ_max)) (V_A,i − θ)    (at a spike of i, then)
      x_j += 1, r_i += 1                                                  (at their spikes)

* the modulator: w ← clip(w + η δ e, w_min, w_max), e ← 0;
* the expected spiking update (mean of δ · tag over many trials on a small circuit) points along
  the rate face's expected update (exactly −∇ cross-entropy) at the circuit's phase averages:
  cosine per pathway, measured 0.9964–0.9989 over three circuits (300 trials each), asserted ≥ 0.98;
* ``check`` refuses the rule on a population without an apical potential and on the rate
  substrate, naming the key;
* (slow) a circuit learns the two-stimulus go / no-go task.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.engine.network import Network
from dendrite_sim.rules import agrel_spiking as A

DT, T_MS = 1.0, 250.0
STEPS = int(round(T_MS / DT))
TAU_PRE, TAU_RATE, TAU_E, THETA = 15.0, 40.0, 200.0, 0.1
FB_W = np.array([3.0, -2.0, 0.5, 4.0, -1.0, -3.0])   # apical weights (2 sources × 3 neurons), CSR order


def pre_trains():
    """Two presynaptic sources: a regular train (every 17 ms) and a random one (ms, on the grid)."""
    rng = np.random.default_rng(3)
    t0 = np.arange(5.0, T_MS - 5, 17.0)
    t1 = np.unique(np.round(np.sort(rng.uniform(0, T_MS - 1, 40))))
    return np.concatenate([t0, t1]), np.concatenate([np.zeros(t0.size), np.ones(t1.size)]).astype(int)


def apical_trains():
    """Two sources onto the apical dendrites (weights of both signs: V_A − θ changes sign)."""
    t = np.unique(np.round(np.sort(np.random.default_rng(5).uniform(0, T_MS - 1, 60))))
    return t, np.arange(t.size) % 2


def build(backend, post="guerguiev", **rule):
    net = Network(dt=DT, seed=2, backend=backend)
    net.spike_generator("pre", 3, *pre_trains())            # source 2 stays silent
    net.spike_generator("fb", 2, *apical_trains())
    net.population("post", 3, post, bursts=False)
    if post == "guerguiev":
        net.current("post", "basal", bias=np.array([1.0, 2.0, -1.0]))
        net.projection("fb", "post", "apical", "all_to_all", weight=FB_W)
    proj = net.projection("pre", "post", "basal" if post == "guerguiev" else "exc", "all_to_all", weight=0.3,
                          plasticity={"rule": "agrel_spiking", "tau_pre": f"{TAU_PRE} ms",
                                      "tau_rate": f"{TAU_RATE} ms", "tau_e": f"{TAU_E} ms", "theta": THETA,
                                      **rule})
    return net, proj


def run(backend, **rule):
    net, proj = build(backend, **rule)
    sm = net.spike_monitor("post", events=False, bursts=False)
    vm = net.state_monitor("post", ["v_apical"])
    net.run(T_MS)
    # the monitor records each step's state before its update; the hook reads it after
    va = np.vstack([np.asarray(vm["v_apical"]), np.asarray(net["post"].variable("v_apical"))[None]])[1:]
    return proj, np.rint(np.asarray(sm.t) / DT).astype(np.int64), np.asarray(sm.i), va


def reference(proj, post_steps, post_idx, v_apical, gate=True, saturation=True):
    pt, pi = pre_trains()
    pre_steps = np.rint(pt / DT).astype(np.int64)
    pre_of, post_of = proj.conn.pre_indices(), proj.conn.indices
    x, r, tag = np.zeros(3), np.zeros(3), np.zeros(proj.conn.nnz)
    fx, fr, fe = math.exp(-DT / TAU_PRE), math.exp(-DT / TAU_RATE), math.exp(-DT / TAU_E)
    c = -math.expm1(-DT / TAU_RATE) / DT / 0.2                     # φ_max = 0.2 /ms
    for n in range(STEPS):
        x *= fx
        r *= fr
        tag *= fe
        spiked = post_idx[post_steps == n]
        for i in spiked:
            syn = post_of == i
            s = 1.0 - r[i] * c if saturation else 1.0
            g = v_apical[n, i] - THETA if gate else 1.0
            tag[syn] += x[pre_of[syn]] * s * g
        x[pi[pre_steps == n]] += 1.0
        r[spiked] += 1.0
    return tag


@pytest.fixture(scope="module")
def runs():
    return {b: run(b) for b in ("numpy", "numba")}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_tag_equals_the_equation(runs, backend):
    proj, steps, idx, va = runs[backend]
    assert steps.size > 60                                  # the neurons fire
    assert (va > THETA).any() and (va < THETA).any()        # the gate takes both signs
    tag = A.AGRELSpiking.tags(proj)
    np.testing.assert_allclose(tag, reference(proj, steps, idx, va), rtol=1e-12, atol=1e-12)
    t = tag.reshape(3, 3)                                   # rows: presynaptic sources
    assert np.all(t[2] == 0.0)                              # a silent source tags nothing
    assert (tag > 0.5).any() and (tag < -0.5).any()
    assert np.all(proj.conn.weights == 0.3)                 # the loop never changes the weight


def test_backends_bit_identical(runs):
    (p0, s0, i0, _), (p1, s1, i1, _) = runs["numpy"], runs["numba"]
    np.testing.assert_array_equal(s0, s1)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(A.AGRELSpiking.tags(p0), A.AGRELSpiking.tags(p1))


def test_ungated_plain_hebbian_tag():
    """apical_gate = saturation = false (the output pathway): e_ij += x_j at a spike of i."""
    proj, steps, idx, va = run("numba", apical_gate=False, saturation=False)
    np.testing.assert_allclose(A.AGRELSpiking.tags(proj), reference(proj, steps, idx, va, False, False),
                               rtol=1e-12, atol=1e-12)
    assert np.all(A.AGRELSpiking.tags(proj) >= 0.0)


def test_modulator_consumes_the_tags(runs):
    net, proj = build("numpy", eta=0.5, w_min=-1.0, w_max=1.0)
    tag = np.array([2.0, -4.0, 0.0, 1.0, 3.0, -0.5, 10.0, 0.2, -0.2])
    A.AGRELSpiking.tags(proj)[:] = tag
    dw = A.AGRELSpiking.deliver(proj, -0.4)
    want = np.clip(0.3 + 0.5 * -0.4 * tag, -1.0, 1.0)
    np.testing.assert_array_equal(proj.conn.weights, want)
    np.testing.assert_allclose(dw, want - 0.3)
    assert proj.conn.weights[6] == -1.0                     # clipped at w_min
    assert np.all(A.AGRELSpiking.tags(proj) == 0.0)


def test_expected_update_points_along_the_rate_face():
    from dendrite_sim.core.circuit import Phase, layered_circuit
    from dendrite_sim.engine.circuit import SpikingCircuit, SpikingConfig
    from dendrite_sim.rules.agrel import AGREL

    circuit = layered_circuit([6, 8, 2], "symmetric", "direct")
    cfg = SpikingConfig(neuron="guerguiev", dt=1.0, backend="numba", init="normal", init_scale=3.0)
    sc = SpikingCircuit(circuit, cfg, np.random.default_rng(0), seed=3)
    names = A.attach(sc)
    x = np.linspace(0.1, 1.0, 6)
    stim, fb = Phase("stimulus", 100.0, 20.0), Phase("feedback", 100.0, 20.0)
    rule, rng = AGREL(), np.random.default_rng(1)
    spk = {q: 0.0 for q in names}
    ref = {q: 0.0 for q in names}
    w0 = {q: sc.weights(q) for q in names}
    actions = []
    for _ in range(300):
        tr = A.trial(sc, x, 0, rule, rng, stim, fb, learn=False)
        actions.append(tr.action)
        r = A.expected_tags(sc, x * cfg.input_rate / 1000.0, tr.stimulus, tr.pi, 0, rule)
        for q in names:
            spk[q] = spk[q] + tr.delta * tr.tags[q]
            ref[q] = ref[q] + r[q]
    assert 0.3 < np.mean(actions) < 0.7                     # both actions were explored
    for q in names:
        assert np.array_equal(sc.weights(q), w0[q])        # learn = False: weights frozen
        c = float((spk[q] * ref[q]).sum() / np.linalg.norm(spk[q]) / np.linalg.norm(ref[q]))
        assert c >= 0.98, (q, c)
    # the output pathway: the silenced unit's row gets no tag on a trial
    assert np.all(tr.tags[names[-1]][1 - tr.action] == 0.0)


def test_refused_where_it_cannot_run():
    with pytest.raises(ScenarioError, match="v_apical|phi_max") as e:
        build("numpy", post="lif")
    assert "plasticity" in e.value.key
    from dendrite_sim.core.interfaces import require_substrate

    with pytest.raises(ScenarioError, match="rate") as e:
        require_substrate(A.AGRELSpiking, "rate", "rule.name")
    assert e.value.key == "rule.name"
    with pytest.raises(ScenarioError, match="w_max"):
        build("numpy", w_min=1.0, w_max=0.5)


@pytest.mark.slow
def test_learns_the_two_stimulus_task():
    """Go for 45°, no-go for 135° (fig5 model, 40 inputs → 30 hidden → 2): after 200 trials
    P(go) > 0.9 for the reinforced stimulus and < 0.1 for the other."""
    from dendrite_sim.experiments.fig5_apical_reinforcement import AgrelSpikingModel, default_config, input_pattern

    cfg = default_config(hidden=30)
    model = AgrelSpikingModel(None, cfg, seed=4)
    rng = np.random.default_rng(0)
    stim = rng.integers(0, 2, 200)
    th = np.array([45.0, 135.0])[stim] + rng.uniform(-5, 5, stim.size)
    model.train(input_pattern(th, 40, 3.0), stim, 1.0)
    order = np.tile([0, 1], 10)
    x = input_pattern(np.array([45.0, 135.0])[order], 40, 3.0)
    _, p_go, _, _ = model.session(x, order)
    assert p_go[order == 0].mean() > 0.9 and p_go[order == 1].mean() < 0.1, p_go
