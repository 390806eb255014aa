#!/usr/bin/env bash
# The one prepared device check of the GPU backend (backend = "cupy"), for a machine with a GPU.
#
#   bash scripts/gpu_check.sh            # writes its results under $OUT (default ./gpu_check_out)
#
# 1. equality on the device: tests/test_cupy_backend.py and tests/test_cupy_batch.py without
#    the CUDA simulator (the two networks, and the two 8-instance batches, against numpy on the
#    device; the simulator tests run too, in their subprocesses);
# 2. the kernel-language cases on the device (tests/test_cuda_kernels.py run as a script:
#    one JSON line, "__mode__": "gpu", every case '' when it matches numpy);
# 3. scripts/bench_gpu.py --quick (0.2 s biological; CUBA/COBA/PYR-STP at 4k, 64k, 10^6;
#    Brian2 cpp_standalone at 4k where Brian2 is installed; the batched 64 x PYR-STP-4000).
# Each part has its own time limit, so a slow or failing part still leaves the others' results;
# the limits add up to 540 s, inside the device tool's 600 s per command (kernel compiles are most
# of parts 1 and 3). With the device tool, after `bash scripts/gpu_wheels.sh` here:
#
#   run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=600)
set -u
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
if [ -d .whl ]; then                 # packages the device image lacks (scripts/gpu_wheels.sh)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
unset NUMBA_ENABLE_CUDASIM
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3
  python3 -c "import numba, numba.cuda as c; print('numba', numba.__version__, 'cuda available', c.is_available())" 2>&1
  python3 -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

echo "== 1. equality tests on the device"
timeout 150 python3 -m pytest -q -rs -p no:cacheprovider tests/test_cupy_backend.py > "$OUT/test_cupy_backend.txt" 2>&1
echo "rc=$?" >> "$OUT/test_cupy_backend.txt"; tail -5 "$OUT/test_cupy_backend.txt"
timeout 120 python3 -m pytest -q -rs -p no:cacheprovider tests/test_cupy_batch.py > "$OUT/test_cupy_batch.txt" 2>&1
echo "rc=$?" >> "$OUT/test_cupy_batch.txt"; tail -5 "$OUT/test_cupy_batch.txt"

echo "== 2. kernel-language cases on the device"
timeout 60 python3 tests/test_cuda_kernels.py > "$OUT/cuda_kernels.json" 2> "$OUT/cuda_kernels.err"
echo "rc=$?" >> "$OUT/cuda_kernels.err"
python3 - "$OUT/cuda_kernels.json" <<'PY'
import json, sys
try:
    r = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
    bad = {k: v for k, v in r.items() if k != "__mode__" and v}
    print("mode", r.get("__mode__"), "cases", len(r) - 1, "failing", len(bad), list(bad.items())[:5])
except Exception as exc:
    print("no report:", exc)
PY

echo "== 3. bench_gpu.py --quick"
timeout 210 python3 scripts/bench_gpu.py --quick --out "$OUT/bench_gpu.md" > "$OUT/bench_gpu.txt" 2>&1
echo "rc=$?" >> "$OUT/bench_gpu.txt"; tail -20 "$OUT/bench_gpu.txt"
