"""The learning hook: a LearningRule's local factors drive the shared outer-product update of a
projection between chunks; the result equals the update computed by hand from the spikes."""

import numpy as np
import pytest

from dendrite_sim.core.interfaces import LearningRule, LocalFactors
from dendrite_sim.engine.network import Network


class CountHebb(LearningRule):
    """Δw_ij = η · modulator · (post spikes of i) · (pre spikes of j) in each interval."""

    substrates = ("spiking",)

    def __init__(self):
        self.calls = []

    def update(self, net, x, y, objective, rng):
        raise NotImplementedError("spiking-only test rule")

    def local_factors(self, state):
        self.calls.append((state.t, state.elapsed, state.modulator))
        return LocalFactors(pre=state.pre.spikes.astype(float), post=state.post.spikes.astype(float),
                            modulator=state.modulator)


class BurstRule(LearningRule):
    """Burst-dependent form (Payeur et al. 2021): post = B − P̄ E, pre = event rate."""

    substrates = ("spiking",)

    def update(self, net, x, y, objective, rng):
        raise NotImplementedError

    def local_factors(self, state):
        post = state.post.bursts - state.post.burst_prob * state.post.events
        return LocalFactors(pre=state.pre.event_rate, post=post)


def _net(backend, every=10.0, eta=0.01, modulator=None, w_max=np.inf):
    net = Network(dt=0.1, seed=2, backend=backend)
    net.poisson_group("pre", 20, rate=30.0)
    net.population("post", 10, "lif")
    net.current("post", "soma", bias=np.linspace(110.0, 400.0, 10))
    proj = net.projection("pre", "post", "exc", "fixed_probability", p=0.5, weight=1.0)
    rule = CountHebb()
    net.plasticity_hook(proj, rule, eta=eta, every=every, modulator=modulator, w_max=w_max)
    pre_m, post_m = net.spike_monitor("pre"), net.spike_monitor("post")
    return net, proj, rule, pre_m, post_m


def _expected(proj, pre_m, post_m, w0, eta, every, t_end, scale=lambda t: 1.0):
    w = w0.copy()
    rows = proj.conn.pre_indices()
    for t0 in np.arange(0.0, t_end, every):
        sel = (pre_m.t >= t0 - 1e-9) & (pre_m.t < t0 + every - 1e-9)
        pre = np.bincount(pre_m.i[sel], minlength=20).astype(float)
        sel = (post_m.t >= t0 - 1e-9) & (post_m.t < t0 + every - 1e-9)
        post = np.bincount(post_m.i[sel], minlength=10).astype(float)
        w = w + (eta * scale(t0 + every) * post[proj.conn.indices]) * pre[rows]
    return w


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_hook_applies_outer_product(backend):
    net, proj, rule, pre_m, post_m = _net(backend)
    w0 = proj.conn.weights.copy()
    net.run(25.0)
    net.run(35.0)                                  # hooks at every 10 ms across run() chunks
    assert [c[0] for c in rule.calls] == pytest.approx([10, 20, 30, 40, 50, 60])
    assert all(c[1] == pytest.approx(10.0) for c in rule.calls)
    assert post_m.n_spikes > 20 and pre_m.n_spikes > 20
    assert np.any(post_m.t < 10.0)                 # the first interval has postsynaptic spikes
    np.testing.assert_allclose(proj.conn.weights, _expected(proj, pre_m, post_m, w0, 0.01, 10.0, 60.0),
                               rtol=1e-12)
    assert np.any(proj.conn.weights != w0)


def test_backends_agree_and_modulator_and_clip():
    out = []
    for backend in ("numpy", "numba"):
        net, proj, rule, pre_m, post_m = _net(backend, modulator=lambda n: -1.0 if n.t > 30 else 2.0,
                                              w_max=1.05)
        w0 = proj.conn.weights.copy()
        net.run(60.0)
        assert [c[2] for c in rule.calls] == [2.0, 2.0, 2.0, -1.0, -1.0, -1.0]
        out.append(proj.conn.weights.copy())
        assert proj.conn.weights.max() <= 1.05
    np.testing.assert_array_equal(out[0], out[1])
    # without the clip the same modulated update is the hand computation
    net, proj, rule, pre_m, post_m = _net("numba", modulator=lambda n: -1.0 if n.t > 30 else 2.0)
    w0 = proj.conn.weights.copy()
    net.run(60.0)
    np.testing.assert_allclose(proj.conn.weights,
                               _expected(proj, pre_m, post_m, w0, 0.01, 10.0, 60.0,
                                         scale=lambda t: -1.0 if t > 30 else 2.0), rtol=1e-12)


def test_burst_rule_factors_shapes_and_sign():
    net = Network(dt=0.1, seed=4)
    net.poisson_group("pre", 15, rate=20.0, bursts=True)
    net.population("pyr", 8, "naud_sprekeler")
    net.current("pyr", "soma", bias=500.0)
    net.current("pyr", "dend", bias=np.linspace(0.0, 600.0, 8))
    proj = net.projection("pre", "pyr", "soma_exc", "all_to_all", weight=10.0)
    net.plasticity_hook(proj, BurstRule(), eta=1e-3, every=50.0)
    net.run(500.0)
    assert net.plasticity[0].updates == 10
    assert np.all(np.isfinite(proj.conn.weights))
    assert net["pyr"].burst_count.sum() > 0


def test_hook_added_mid_run_counts_only_its_intervals():
    net, proj, rule, pre_m, post_m = _net("numba")
    net.plasticity.clear()
    net.run(15.0)
    w0 = proj.conn.weights.copy()
    net.plasticity_hook(proj, rule, eta=0.01, every=10.0)
    net.run(25.0)                                  # updates at 20 (5 ms interval), 30, 40
    assert [c[0] for c in rule.calls] == pytest.approx([20, 30, 40])
    assert [c[1] for c in rule.calls] == pytest.approx([5, 10, 10])
    w = w0.copy()
    rows = proj.conn.pre_indices()
    for t0, t1 in ((15, 20), (20, 30), (30, 40)):
        pre = np.bincount(pre_m.i[(pre_m.t >= t0 - 1e-9) & (pre_m.t < t1 - 1e-9)], minlength=20)
        post = np.bincount(post_m.i[(post_m.t >= t0 - 1e-9) & (post_m.t < t1 - 1e-9)], minlength=10)
        w = w + (0.01 * post[proj.conn.indices].astype(float)) * pre[rows].astype(float)
    np.testing.assert_allclose(proj.conn.weights, w, rtol=1e-12)


def test_bad_factors_are_reported():
    class Wrong(CountHebb):
        def local_factors(self, state):
            return LocalFactors(pre=np.ones(3), post=np.ones(3))

    net, proj, _, _, _ = _net("numba")
    net.plasticity[0].rule = Wrong()
    with pytest.raises(ValueError, match="shapes"):
        net.run(10.0)


def test_attach_plasticity_to_an_existing_projection_and_refuse_a_foreign_one():
    from dendrite_sim.core.errors import ScenarioError
    from dendrite_sim.engine.network import Network

    net = Network(dt=0.1, seed=1)
    net.population("a", 5, "lif")
    net.population("b", 5, "lif")
    proj = net.projection("a", "b", "exc", "all_to_all", weight=1.0, name="ab")
    net.attach_plasticity(proj, {"rule": "stdp"}, key="projections.ab.plasticity")
    assert proj.plasticity is not None
    with pytest.raises(ScenarioError, match="projections.ab.plasticity"):
        net.attach_plasticity(proj, {"rule": "stdp"}, key="projections.ab.plasticity")
    other = Network(dt=0.1, seed=1)
    with pytest.raises(ScenarioError, match="expected a projection of this network"):
        other.attach_plasticity(proj, "stdp")
