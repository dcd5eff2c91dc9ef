#!/usr/bin/env bash
# Re-profile the shipped CPU tables (ONNX Runtime and OpenVINO, fp32 and int8, tiny-32 and
# proxyless-mobile) with the current default protocol, one after another, each into a
# temporary file that replaces the shipped one only when complete.
#   HWNAS_CACHE=/tmp/hwnas-cache bash benchmarks/ship_cpu_tables.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for spec in proxyless-mobile:onnxruntime:fp32 proxyless-mobile:openvino:fp32 \
            tiny-32:onnxruntime:fp32 tiny-32:openvino:fp32 \
            proxyless-mobile:onnxruntime:int8 proxyless-mobile:openvino:int8 \
            tiny-32:onnxruntime:int8 tiny-32:openvino:int8; do
  IFS=: read -r space backend precision <<<"$spec"
  name="${space}_${backend}_cpu_${precision}"
  tmp=$(mktemp -d)
  start=$(date -u +%H:%M:%S)
  $PY -m hwnas profile --space "$space" --backend "$backend" --precision "$precision" \
      --threads 1 --out "$tmp/$name.json" --json > "$tmp/summary.json"
  mv "$tmp/$name.json" "hwnas/device_tables/$name.json"
  echo "$name: $start-$(date -u +%H:%M:%S) $($PY -c "import json,sys; d=json.load(open('$tmp/summary.json')); c=d['calibration']; print(c.get('method'), round(c['scale'],3), round(c['offset_ms'],3), 'loo med', round(c.get('loo_median_abs_err_pct',-1),2), 'loo w10', c.get('loo_within_10pct'), 'failed', len(d['failed']))")"
  rm -rf "$tmp"
done
