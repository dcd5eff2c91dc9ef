"""PyTorch GPU engines (torch-export, torch-aoti): build, parity, latency beside eager and
CUDA-graph replay.

With torch 2.11.0+cu130 on an NVIDIA H200 every torch-aoti child died with SIGSEGV inside
``aoti_load_package`` (also for a one-conv model compiled in plain torch, in the compiling
process and in a fresh one; benchmarks/RESULTS.md); hence the ``torch-export`` engine,
measured first here (mode ``export``).

Usage (on a GPU machine with torch + CUDA; writes JSON to OUT):
    OUT=dir python benchmarks/gpu_engines.py [--ckpt supernet.pt --val val.npz]

For each space and precision (fp32, fp16) a child process builds the ``.pt2`` package with
hwnas's torch-aoti emitter and then loads it *in the same process* (the case reported to
end the process without a Python error). The parent records the child's exit status; if
the child died, a second child loads the saved package in a fresh process. The child also
times the same network eagerly (BN folded) and as a CUDA-graph replay, all with CUDA
events (median of 300 calls after 50 warm-up), and the engine once more through the
profilers' protocol (``measure_model``, the figure a manifest records).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(os.environ.get("OUT", "runs/gpu_engines"))


def _events_median(fn, n: int = 300, warm: int = 50) -> float:
    import torch

    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(n):
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def child(space_name: str, precision: str, mode: str, ckpt: str, val: str) -> dict:
    import numpy as np
    import torch

    from hwnas.arch import sample_architecture
    from hwnas.engines.base import ModelFiles
    from hwnas.engines.finetune import fold_bn
    from hwnas.engines.torch_aoti import TorchAotiEmitter
    from hwnas.nn.subnet import build_subnet
    from hwnas.spaces import load_space
    from hwnas_profilers.backends.torch import cuda_graph

    space = load_space(space_name)
    shape = (1, space.input[2], space.input[0], space.input[1])
    if ckpt and space_name == "tiny-32":
        from hwnas.engines.finetune import standalone
        from hwnas.train.checkpoint import load_checkpoint

        arch = sample_architecture(space, 7)
        net = standalone(load_checkpoint(ckpt, space).supernet().eval(), arch, None)
        x = torch.from_numpy(np.load(val)["x"][:256]).float()
        inputs = "digits validation images, trained supernet weights"
    else:
        arch = sample_architecture(space, 7)
        net = build_subnet(space, arch)
        x = torch.randn(64, *shape[1:], generator=torch.Generator().manual_seed(1))
        inputs = "random inputs, freshly initialised weights (latency and numerics only)"
    folded = fold_bn(net).eval()
    files = ModelFiles(precision, Path("-"), Path("-"), folded, shape, x[:1].numpy())
    from hwnas.engines.torch_export import TorchExportEmitter

    em = (TorchExportEmitter if mode == "export" else TorchAotiEmitter)(device="cuda",
                                                                        precision=precision)
    pkg = OUT / f"{space_name}_{precision}_{'export' if mode == 'export' else 'aoti'}" / "model.pt2"
    pkg.parent.mkdir(parents=True, exist_ok=True)
    res: dict = {"space": space_name, "precision": precision, "arch": list(arch.choices),
                 "inputs": inputs, "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
    if mode in ("build", "export"):
        t = time.time()
        em.emit(files, pkg.parent)
        res["compile_s"] = round(time.time() - t, 1)
    t = time.time()
    run = em.session(pkg, shape)
    res["load_s"] = round(time.time() - t, 2)
    res["engine"] = em.name
    res["loaded_in"] = "a fresh process" if mode == "load" else "the building process"
    with torch.no_grad():
        ref = folded.cuda()(x.cuda()).float().cpu().numpy()
    got = np.concatenate([run(x[i:i + 1].numpy()) for i in range(len(x))])
    res["parity_max_abs_diff_vs_fp32_eager"] = float(np.abs(ref - got).max())
    res["top1_agreement_vs_fp32_eager"] = float(np.mean(ref.argmax(1) == got.argmax(1)))
    # latency: eager, CUDA graph, AOTI package, all batch 1 with CUDA events
    mod = em._module(files).cuda().eval()
    xs = torch.zeros(shape, device="cuda")
    with torch.inference_mode():
        res["eager_ms"] = _events_median(lambda: mod(xs))
        g, _ = cuda_graph(torch, mod, xs)
        res["cuda_graph_ms"] = _events_median(g.replay)
        if mode != "export":  # the export engine's figure is the protocol's graph replay below
            fn = torch._inductor.aoti_load_package(str(pkg))
            res["engine_ms"] = _events_median(lambda: fn(xs))
    from hwnas_profilers import Protocol, Settings, measure_model

    m = measure_model(pkg, "torch", Settings(device="cuda", precision=precision), Protocol(),
                      input_shape=shape)
    res["engine_protocol_median_ms"] = m["median_ms"]  # graph replay / package call only
    res["engine_protocol_floor_ms"] = m["floor_ms"]
    res["engine_protocol_iqr_ms"] = m["spread_ms"]
    res["engine_protocol_sessions_ms"] = m["session_figures_ms"]
    return res


def main() -> None:
    args = sys.argv[1:]
    ckpt = args[args.index("--ckpt") + 1] if "--ckpt" in args else ""
    val = args[args.index("--val") + 1] if "--val" in args else ""
    if args and args[0] == "--child":
        _, sp, pr, mode = args[:4]
        print("RESULT " + json.dumps(child(sp, pr, mode, ckpt, val)), flush=True)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    start = time.time()
    for sp in ("tiny-32", "proxyless-mobile"):
        for pr in ("fp16", "fp32"):
            if time.time() - start > 330:
                rows.append({"space": sp, "precision": pr, "skipped": "time budget of the lease"})
                continue
            row = {"space": sp, "precision": pr}
            for mode in ("export", "build", "load"):
                t = time.time()
                p = subprocess.run([sys.executable, __file__, "--child", sp, pr, mode,
                                    "--ckpt", ckpt, "--val", val],
                                   capture_output=True, text=True, timeout=420)
                row[f"{mode}_rc"] = p.returncode
                row[f"{mode}_wall_s"] = round(time.time() - t, 1)
                got = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
                if got:
                    row[mode] = json.loads(got[-1][7:])
                else:
                    row[f"{mode}_tail"] = (p.stdout + p.stderr)[-1500:]
                if mode == "build" and p.returncode == 0:
                    break  # the in-process load worked; a fresh-process load adds little
            rows.append(row)
            print(json.dumps(row)[:600], flush=True)
            (OUT / "gpu_engines.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
