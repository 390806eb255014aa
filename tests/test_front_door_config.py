"""The resolved ``config.toml`` of a ``simulate`` run shows the defaults applied inside
``[network]`` — every population, projection and input, the models' parameters and channel time
constants — and runs again to the same scenario (issue 14 point 5)."""

from pathlib import Path

import tomllib

from dendrite_sim.cli import main
from dendrite_sim.io.scenario import load

SCENARIO = """
[scenario]
experiment = "simulate"
seed = 2

[simulation]
dt = "0.1 ms"
duration = "20 ms"
backend = "numpy"

[network.populations.pyr]
model = "naud_sprekeler"
n = 4
params = {C_s = "0.4 nF"}

[network.populations.noise]
type = "poisson"
n = 3
rate = "10 Hz"

[network.projections.drive]
pre = "noise"
post = "pyr"
channel = "soma_exc"
weight = "50 pA"

[network.inputs.bias]
type = "current"
target = "pyr"
"""


def test_config_toml_holds_the_network_defaults(tmp_path, capsys):
    path = tmp_path / "net.toml"
    path.write_text(SCENARIO)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 0
    capsys.readouterr()
    net = tomllib.loads((out / "config.toml").read_text())["network"]

    pyr = net["populations"]["pyr"]
    assert pyr["type"] == "neurons" and pyr["channel_method"] == "exact" and pyr["bursts"] is True
    assert pyr["burst_window"] == "16 ms" and pyr["tau_avg"] == "1 s"
    assert pyr["params"]["C_s"] == "0.4 nF"                         # the user's value, as written
    assert pyr["params"]["tau_s"] == 16.0 and pyr["params"]["E_d"] == -38.0 and len(pyr["params"]) == 19
    assert pyr["tau"] == {"soma_exc": "5 ms", "soma_inh": "10 ms", "dend_exc": "5 ms", "dend_inh": "10 ms"}
    assert net["populations"]["noise"] == {"type": "poisson", "n": 3, "rate": "10 Hz"}
    drive = net["projections"]["drive"]
    assert drive["connectivity"] == "all_to_all" and drive["autapses"] is True
    assert "delay" not in drive and "stp" not in drive                # optional, no default
    assert net["inputs"]["bias"] == {"type": "current", "target": "pyr", "compartment": "soma",
                                     "bias": "0 pA"}

    # the resolved file loads to the same resolved scenario (idempotent) and the same numbers
    again = load(out / "config.toml")
    assert again.resolved == load(path).resolved
    assert again.cfg["network"]["populations"]["pyr"]["params"]["tau_s"] == 16.0
    out2 = tmp_path / "again"
    assert main(["run", str(out / "config.toml"), "--out", str(out2)]) == 0
    assert (Path(out2) / "metrics.json").read_bytes() == (out / "metrics.json").read_bytes()
