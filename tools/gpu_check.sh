#!/usr/bin/env bash
# The GPU checks in one go, for a machine with an NVIDIA GPU and a CUDA build of torch:
# the CUDA tests (tests_gpu/), then the CUDA section of the optimizer benchmark.
#
#     bash tools/gpu_check.sh [OUTPUT_FOLDER]     (default /tmp/gpu-check)
#
# Uses the `python3` on PATH (or $PYTHON) and this checkout's lib/ without installing
# it, so it also runs on a machine that has torch but not the book's environment.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${1:-${OUT:-/tmp/gpu-check}}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem \
    --format=csv 2>&1 | tee "$OUT_DIR/nvidia-smi.txt"
$PY -c "import sys, torch, numpy; print('python', sys.version.split()[0], '| torch', \
torch.__version__, 'cuda', torch.version.cuda, '| numpy', numpy.__version__)"
$PY -m pytest tests_gpu -q -p no:cacheprovider --junitxml="$OUT_DIR/junit.xml" 2>&1 \
    | tee "$OUT_DIR/pytest-gpu.log"
rc_tests=${PIPESTATUS[0]}
$PY benchmarks/optimizer_step.py --cuda-only --out "$OUT_DIR/cuda.json" 2>&1 \
    | tee "$OUT_DIR/benchmark.log"
rc_bench=${PIPESTATUS[0]}
echo "tests exit $rc_tests, benchmark exit $rc_bench"
exit $(( rc_tests != 0 || rc_bench != 0 ))
