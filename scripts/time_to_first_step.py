"""Time to the first simulated step, cold (empty caches) and warm (second process).

Each measurement runs in a fresh Python process. The child reports, from its own start:

* ``import_s``  — importing dendrite_sim, numpy and numba;
* ``build_s``   — building the network (populations, connectivity, inputs, monitors);
* ``first_step_s`` — ``net.run(dt)``: generating the fused loop's source, compiling it (cold)
  or loading it from Numba's on-disk cache (warm), and executing one step;
* ``total_s``   — process start (interpreter already running) to the end of the first step;

and the parent adds ``wall_s`` (spawn to exit, interpreter start-up included).

"Cold" points both the kernel cache (``DENDRITE_SIM_CACHE``) and Numba's cache
(``NUMBA_CACHE_DIR``) at a new empty folder; "warm" runs a second process on the same folders.

    python scripts/time_to_first_step.py                 # PYR-STP-4000
    python scripts/time_to_first_step.py --network lif   # 1000 LIF neurons, one projection
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from dendrite_sim.engine.network import Network
t1 = time.perf_counter()
net = Network(dt=0.1, seed=1, backend="numba")
if sys.argv[1] == "pyr_stp":
    net.population("pyr", 4000, "naud_sprekeler", channel_method="euler")
    net.current("pyr", "soma", bias=210.0)
    net.poisson_input("pyr", "soma_exc", 100, 5.0, 100.0)
    net.poisson_input("pyr", "soma_inh", 30, 5.0, -100.0)
    net.poisson_input("pyr", "dend_exc", 50, 5.0, 180.0)
    for ch, w, stp in (("soma_exc", 5.0, "payeur_std"), ("dend_exc", 30.0, "payeur_stf")):
        net.projection("pyr", "pyr", ch, "fixed_probability", p=0.02, autapses=False, weight=w, stp=stp)
    net.spike_monitor("pyr")
else:
    net.population("lif", 1000, "lif")
    net.poisson_input("lif", "exc", 100, 10.0, 20.0)
    net.projection("lif", "lif", "inh", "fixed_probability", p=0.05, weight=-10.0)
    net.spike_monitor("lif")
t2 = time.perf_counter()
net.run(0.1)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "first_step_s": t3 - t2, "total_s": t3 - t0,
                  "codegen_s": net.timings.get("codegen_s"), "first_call_s": net.timings.get("first_call_s")}))
"""


def measure(network: str, cache: str) -> dict:
    env = dict(os.environ, DENDRITE_SIM_CACHE=os.path.join(cache, "kernels"),
               NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, network], env=env, capture_output=True, text=True,
                         check=True)
    wall = time.perf_counter() - t0
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_s"] = wall
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", choices=("pyr_stp", "lif"), default="pyr_stp")
    ap.add_argument("--warm-repeats", type=int, default=3, help="warm processes (the best is reported too)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dsim_ttfs_") as cache:
        cold = measure(args.network, cache)
        warm = [measure(args.network, cache) for _ in range(max(1, args.warm_repeats))]
    keys = ("import_s", "build_s", "first_step_s", "total_s", "wall_s")
    print(f"time to first step, network {args.network!r} (seconds)")
    print(f"{'':14s}" + "".join(f"{k:>14s}" for k in keys))
    print(f"{'cold':14s}" + "".join(f"{cold[k]:14.3f}" for k in keys))
    for i, w in enumerate(warm):
        print(f"{f'warm #{i + 1}':14s}" + "".join(f"{w[k]:14.3f}" for k in keys))
    best = min(w["first_step_s"] for w in warm)
    print(f"first step (code generation + compile or cache load + one step): cold {cold['first_step_s']:.3f} s, "
          f"warm {best:.3f} s (best of {len(warm)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
