#!/usr/bin/env bash
# Measure GPU device tables with the torch backend (CUDA events) on an NVIDIA machine.
# Usage: OUT=dir bash benchmarks/gpu_tables.sh   (needs torch with CUDA, onnx, numpy, pyyaml, rich)
set -euo pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
export HWNAS_CACHE=${HWNAS_CACHE:-/tmp/hwnas-cache}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
for sp in tiny-32 proxyless-mobile; do
  for pr in fp32 fp16; do
    start=$(date +%s)
    python3 -m hwnas profile --space "$sp" --backend torch --device cuda --precision "$pr" \
      --out "$OUT/${sp}_torch_cuda_${pr}.json" --json > "$OUT/${sp}_${pr}.log" 2>&1 || {
        echo "FAILED $sp $pr"; tail -5 "$OUT/${sp}_${pr}.log"; continue; }
    echo "$sp $pr: $(( $(date +%s) - start )) s"
    python3 - "$OUT/${sp}_torch_cuda_${pr}.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print({k: d["calibration"].get(k) for k in ("scale", "offset_ms", "method", "fitted_on",
                                             "loo_median_abs_err_pct", "loo_within_10pct")},
      sum(e["status"] == "ok" for e in d["entries"].values()), "ok entries")
PY
  done
done
