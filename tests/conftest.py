"""Test-wide settings.

Under CI (``CI`` set in the environment) hypothesis runs derandomised, so a CI run explores the
same examples every time and cannot fail by chance on an input no developer has seen; locally it
keeps exploring new examples.

``cuda_simulator_json`` runs a test file as a script in Numba's CUDA simulator (a subprocess:
``NUMBA_ENABLE_CUDASIM`` must be set before numba.cuda is imported) and returns the last JSON
line it printed; ``libnvvm`` skips a test unless PTX can be compiled here (the real CUDA target,
not the simulator, and a usable libNVVM).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _run_in_cuda_simulator(script: Path, timeout: float = 600) -> dict:
    root = str(Path(script).resolve().parents[1])
    path = os.pathsep.join([root, os.environ["PYTHONPATH"]]) if os.environ.get("PYTHONPATH") else root
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=root, capture_output=True, text=True,
                          timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"CUDA simulator run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


@pytest.fixture(scope="session")
def cuda_simulator_json():
    """``run(script)``: the script's last JSON line, run in Numba's CUDA simulator."""
    return _run_in_cuda_simulator


@pytest.fixture
def libnvvm():
    """Skip unless kernels can be compiled to PTX here, without a device."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0"):
        pytest.skip("PTX needs the real CUDA target")
    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
    except Exception as exc:
        pytest.skip(f"libNVVM is not usable ({type(exc).__name__})")
