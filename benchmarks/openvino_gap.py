"""Why tiny-32 OpenVINO engines measure 12-18% slower than the table predicts.

    python benchmarks/openvino_gap.py [--nets 3] [--span 10] [--json runs/bench_ov_gap.json]

The table's calibration networks are timed interleaved with ~45 compiled block models in
one process; an engine is timed by ``hwnas measure`` with only its own sessions, the
identity graph and the reference graph. Each condition runs in a fresh process, for the
same random tiny-32 networks (fp32, 1 thread), all with the table's statistic (floor):

  alone      ``hwnas_profilers.measure_model`` as the engine manifests do;
  idle_peers the same with the bundle's blocks compiled in the process but never run;
  interleaved the network as one more item of an interleaved run with every block
             (what the calibration networks see);
  bench_app  ``benchmark_app -api sync -hint latency -nthreads 1`` on the IR (its Min and
             Median lines).

Before them a fresh OpenVINO table is profiled (``hwnas profile``, as the main job does),
and each network's prediction from it is printed beside the conditions; conditions run
twice (alone first and last) so the drift within the run shows.

Nothing else may load the CPU meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import json, sys
from dataclasses import replace
from pathlib import Path
from hwnas_profilers import Protocol, Settings, get_profiler
from hwnas_profilers.bundle_run import measure_model, measure_with_reference, read_manifest
cond, net, bundle, span = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
proto = replace(Protocol(), min_span_s=span, max_span_s=2 * span)
prof = get_profiler("openvino", Settings(threads=1))
extra = []
man = read_manifest(bundle)
if cond in ("idle_peers", "interleaved"):
    extra = {b["key"]: prof.load(Path(bundle) / b["file"], b["input_shape"]) for b in man["blocks"]}
if cond == "interleaved":
    runners = dict(extra)
    runners["net"] = prof.load(Path(net), (1, 3, 32, 32))
    res, _ = measure_with_reference(prof, runners, proto)
    print(json.dumps({"floor_ms": res["net"].floor_ms, "median_ms": res["net"].median_ms}))
else:
    r = measure_model(net, "openvino", Settings(threads=1), proto, input_shape=(1, 3, 32, 32),
                      profiler=prof)
    print(json.dumps({"floor_ms": r["floor_ms"], "median_ms": r["median_ms"]}))
'''


def child(cond: str, net: Path, bundle: Path, span: float, env: dict) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, cond, str(net), str(bundle), str(span)],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_app(xml: Path, seconds: int) -> dict:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    p = subprocess.run([exe, "-m", str(xml), "-d", "CPU", "-api", "sync", "-hint", "latency",
                        "-nthreads", "1", "-t", str(seconds), "-shape", "[1,3,32,32]"],
                       capture_output=True, text=True)
    out = p.stdout
    got = {k: float(m.group(1)) for k, pat in (("min_ms", r"Min:\s+([\d.]+) ms"),
                                                ("median_ms", r"Median:\s+([\d.]+) ms"))
           if (m := re.search(pat, out))}
    return got or {"error": (p.stderr or out)[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nets", type=int, default=3)
    ap.add_argument("--span", type=float, default=10.0)
    ap.add_argument("--json", default="runs/bench_ov_gap.json")
    args = ap.parse_args()
    import openvino as ov

    from hwnas import load_space
    from hwnas.arch import sample_architecture
    from hwnas.nn.export import export_architecture
    from hwnas.profiling import export_cached_bundle

    sp = load_space("tiny-32")
    bundle = export_cached_bundle(sp, 12)
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-ovgap-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    table_file = tmp / "table.json"
    p = subprocess.run([sys.executable, "-m", "hwnas", "profile", "--space", "tiny-32",
                        "--backend", "openvino", "--threads", "1", "--out", str(table_file)],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(p.stderr[-2000:])
    from hwnas.tables.device import load_device_table

    table = load_device_table(table_file)
    rows = []
    for i in range(args.nets):
        arch = sample_architecture(sp, seed=500 + i)
        onnx = tmp / f"net{i}.onnx"
        export_architecture(sp, arch, onnx)
        xml = tmp / f"net{i}.xml"
        ov.save_model(ov.convert_model(str(onnx)), str(xml), compress_to_fp16=False)
        pred = table.predict(sp, arch)
        row = {"arch": list(arch.choices), "predicted_ms": round(pred.latency_ms, 4),
               "table_statistic": table.figure}
        for cond in ("alone", "idle_peers", "interleaved", "alone"):
            key = cond if cond not in row else "alone_again"
            row[key] = child(cond, xml, bundle, args.span, env)
        row["bench_app"] = bench_app(xml, int(args.span))
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = ROOT / args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
