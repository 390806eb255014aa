#!/usr/bin/env bash
# Wheels that the device machine's image lacks (it has numpy, numba, numba-cuda, CuPy, scipy,
# pyyaml, pytest, hypothesis; not pint, which dendrite_sim uses to read quantities with units).
# Run here (where pip reaches the package index), before the device check:
#
#   bash scripts/gpu_wheels.sh        # fills .whl/ (ignored by git), then on the device:
#   run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=600)
#
# gpu_check.sh installs everything in .whl/ into /tmp/site when the folder is there.
set -eu
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "pint==0.25.3" "flexcache==0.3" "flexparser==0.4" "platformdirs==4.14.9"
ls -l .whl
