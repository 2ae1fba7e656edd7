#!/usr/bin/env bash
# Device check for a machine with a CUDA GPU (the project's `device` tool runs it there):
#   bash tests/gpu_check.sh [OUT_DIR]
# 1. the CUDA tests (same logits on CUDA and CPU, traces on CUDA);
# 2. the benchmark on CUDA (quick mode) as JSON;
# 3. a 3-minute bf16 training smoke run of the shipped recipe, to time a GPU epoch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$OUT"
python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
nvidia-smi | tee "$OUT/nvidia-smi.txt"
python -m pytest tests/test_cuda.py -v -ra 2>&1 | tee "$OUT/test_cuda.txt"
python -m rir_core.bench --quick --device cuda --json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench.txt"
timeout 240 python -m rir_core.train --config pretrained/rir_ebt_grc.train.json --device cuda \
    --amp --max-minutes 3 --out "$OUT/run" --no-progress 2>&1 | tail -n 20 | tee "$OUT/train.txt" || true
