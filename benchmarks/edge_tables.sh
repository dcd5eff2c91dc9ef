#!/usr/bin/env bash
# Profile the shipped tables of an edge runtime (executorch or litert, both through XNNPACK):
# tiny-32 and proxyless-mobile, fp32 and int8, one thread, the default protocol, one after
# another, each into a temporary file that replaces
# hwnas/device_tables/SPACE_BACKEND_cpu_PRECISION.json only when complete. The host
# converts the block bundle (cached) and measures it in one environment:
#   PY=/path/to/venv-with-hwnas[BACKEND]/bin/python bash benchmarks/edge_tables.sh BACKEND
# Optional: SPECS="tiny-32:fp32" to profile a subset (default: all four).
set -euo pipefail
backend=${1:?usage: edge_tables.sh executorch|litert}
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SPECS=${SPECS:-"tiny-32:fp32 tiny-32:int8 proxyless-mobile:fp32 proxyless-mobile:int8"}
for spec in $SPECS; do
  IFS=: read -r space precision <<<"$spec"
  name="${space}_${backend}_cpu_${precision}"
  tmp=$(mktemp -d)
  start=$(date -u +%H:%M:%S)
  t0=$(date +%s)
  $PY -m hwnas profile --space "$space" --backend "$backend" --precision "$precision" \
      --threads 1 --out "$tmp/$name.json" --json > "$tmp/summary.json"
  mv "$tmp/$name.json" "hwnas/device_tables/$name.json"
  echo "$name: $start-$(date -u +%H:%M:%S) ($(( $(date +%s) - t0 )) s, bundle export included) $($PY -c "import json; d=json.load(open('$tmp/summary.json')); c=d['calibration']; print(c.get('method'), round(c['scale'],3), round(c['offset_ms'],3), 'loo med', round(c.get('loo_median_abs_err_pct',-1),2), 'loo w10', c.get('loo_within_10pct'), 'failed', len(d['failed']))")"
  rm -rf "$tmp"
done
