#!/usr/bin/env bash
# GPU checks, for a machine with a CUDA device:
#   1. tests/test_cuda.py: every metric and proxy on the GPU equals its CPU value, the caller's model
#      stays on the CPU, benchmark.score_all on the GPU gives no NaN;
#   2. the pNTK's speed and memory on the GPU: benchmarks/pntk_speed.py --device cuda, N = 64.
# Output goes to the terminal and, when $OUT is set, also to $OUT/cuda_check.log. The exit status is
# non-zero when torch sees no CUDA device (the tests would only skip), a test fails, or the speed
# check fails.
#
#     bash benchmarks/cuda_check.sh          # PYTHON=/path/to/python chooses the interpreter
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python="${PYTHON:-python3}"

checks() {
    "$python" - <<'PY' || return 1
import sys

import torch

if not torch.cuda.is_available():
    sys.exit(f"cuda_check: torch {torch.__version__} sees no CUDA device")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}")
PY
    "$python" -m pytest tests/test_cuda.py -v -rs -p no:cacheprovider
    local tests=$?
    "$python" benchmarks/pntk_speed.py --device cuda --n 64
    local speed=$?
    echo "cuda_check: tests exit $tests, speed check exit $speed"
    [ "$tests" -eq 0 ] && [ "$speed" -eq 0 ]
}

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    checks 2>&1 | tee "$OUT/cuda_check.log"
    exit "${PIPESTATUS[0]}"
fi
checks
