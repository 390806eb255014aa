"""Fig 4 hierarchy experiment (experiments/fig4_hierarchy.py) and its figures (plotting/tuning.py).

* the per-unit changes against closed forms (cosine tuning curves of known amplitude);
* ``check`` refuses a hierarchy of fewer than 3 hidden layers;
* the short scenario runs end to end: both rules learn, the top layer's OSI rises (CI above 0),
  the relative slope change is larger in the top layer than in the first; the figures have
  titles, axis labels and legends that pass the figure test's checks.
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from dendrite_sim.analysis import tuning as tn
from dendrite_sim.cli import main
from dendrite_sim.experiments.fig4_hierarchy import grows, layer_changes
from dendrite_sim.io import results

SCEN = Path(__file__).resolve().parents[1] / "scenarios"


def cosine_curves(amplitude, phi, offset=1.0):
    theta = np.arange(16) * 180.0 / 16
    r = offset + np.asarray(amplitude)[None, :] * np.cos(np.deg2rad(2 * (theta[:, None] - np.asarray(phi)[None, :])))
    return tn.tuning_curves(r, theta, period=180.0)


def test_layer_changes_closed_form():
    phi = np.array([0.0, 20.0, 90.0])
    before = cosine_curves([0.2, 0.2, 0.2], phi)
    after = cosine_curves([0.5, 0.2, 0.1], phi)
    ch = layer_changes([before], [after], trained=[45.0, 135.0])[0]
    # |dR/dθ| of A cos(2(θ − φ)) at θ: 2A |sin(2(θ − φ))| π/180 per degree
    want = np.mean([2 * np.abs(np.sin(np.deg2rad(2 * (t - phi)))) for t in (45.0, 135.0)], axis=0) \
        * (np.array([0.5, 0.2, 0.1]) - 0.2) * np.pi / 180
    assert np.allclose(ch["delta_abs_slope"], want, atol=2e-4)
    # OSI of offset + A cos(2(θ − φ)) sampled evenly: A / (2 · offset)
    assert np.allclose(ch["delta_osi"], (np.array([0.5, 0.2, 0.1]) - 0.2) / 2, atol=1e-9)
    # relative change: divided by the mean s.d. across orientations before (A/√2)
    assert np.allclose(ch["rel_delta_abs_slope"], ch["delta_abs_slope"] / (0.2 / np.sqrt(2)), rtol=1e-6)
    assert grows([0.1, 0.2, 0.3]) and not grows([0.1, 0.3, 0.2])


def test_check_refuses_a_shallow_hierarchy(capsys):
    assert main(["check", str(SCEN / "fig4_hierarchy_short.toml"), "--set", "architecture.hidden=[10, 10]"]) == 2
    assert "architecture.hidden" in capsys.readouterr().err


def test_full_scenario_checks():
    assert main(["check", str(SCEN / "fig4_hierarchy.toml")]) == 0


def test_short_scenario(monkeypatch):
    from test_figures import _problems

    seen = {}
    orig = results.RunContext.save_figure

    def probe(self, fig, name):
        seen[name] = _problems(fig, name)
        return orig(self, fig, name)

    monkeypatch.setattr(results.RunContext, "save_figure", probe)
    with tempfile.TemporaryDirectory() as d:
        assert main(["run", str(SCEN / "fig4_hierarchy_short.toml"), "--out", d]) == 0
        m = json.loads((Path(d) / "metrics.json").read_text())
    assert set(seen) == {"tuning_curves", "tuning_change"}
    assert not [p for ps in seen.values() for p in ps], seen
    assert m["seeds"] == 2 and len(m["rules"]) == 2
    for name, r in m["rules"].items():
        assert len(r["layers"]) == 3
        assert min(r["test_accuracy"]) > 0.85, (name, r["test_accuracy"])
        top, first = r["layers"][2], r["layers"][0]
        assert top["delta_osi"]["lo"] > 0, (name, top)
        assert top["rel_delta_abs_slope"]["mean"] > first["rel_delta_abs_slope"]["mean"], name
        for la in r["layers"]:
            for s in la.values():
                assert s["lo"] <= s["mean"] <= s["hi"]
