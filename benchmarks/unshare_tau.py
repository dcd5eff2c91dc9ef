"""PWSNAS's less weight sharing, its effect on the accuracy table's ranks.

    python benchmarks/unshare_tau.py [--epochs 20] [--extra 4] [--nets 40] [--json F]

One tiny-32 / digits supernet is meta-trained and shrunk by the angle metric (2 rounds, as
``hwnas train --shrink 2``). From that one checkpoint two branches train ``--extra`` more
epochs on the same batches:

  shared    the shrunk supernet as it is;
  unshared  every block given one weight copy per choice of the layer before it
            (``hwnas train --unshare``, :func:`hwnas.train.supernet.unshare_supernet`).

Each branch then builds its stage-2 table the same way (sampled prefix, no per-candidate
fine-tuning, the main job's setting). The reference both tables are judged against is
common to them: each of ``--nets`` random networks of the shrunk space, extracted from the
pre-branch checkpoint and fine-tuned ``--finetune-steps`` steps, scored on the validation
split. Kendall tau and Spearman of each table against it are the figures; each branch's
own inherited-weight accuracy is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwnas.spaces import load_space  # noqa: E402
from hwnas.tables.accuracy import AccuracyTable  # noqa: E402
from hwnas.train import TrainConfig, data_for, load_checkpoint, train_accuracy_table  # noqa: E402
from hwnas.train.loop import sgd, train_epoch  # noqa: E402
from hwnas.train.ponas import _Run  # noqa: E402
from hwnas.train.supernet import sample_path, unshare_supernet  # noqa: E402
from hwnas.train.validate import (EvalSettings, rank_correlation, real_accuracy,  # noqa: E402
                                  sample_distinct)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--extra", type=int, default=4, help="epochs of each branch")
    ap.add_argument("--nets", type=int, default=40)
    ap.add_argument("--finetune-steps", type=int, default=60)
    ap.add_argument("--later-paths", type=int, default=8)
    ap.add_argument("--out", default="runs/bench_unshare")
    ap.add_argument("--json", default="runs/bench_unshare.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    space = load_space("tiny-32")
    out = Path(args.out)
    base = TrainConfig(epochs=args.epochs, batch_size=32, finetune_steps=0,
                       later_paths=args.later_paths, bn_batches=8, prefix="sampled",
                       val_fraction=0.3, shrink_rounds=2, shrink_epochs=1, seed=0)
    data = data_for(space, "digits", base)
    t = time.perf_counter()
    res = train_accuracy_table(space, data, out / "base", base)
    base_s = time.perf_counter() - t
    ck = load_checkpoint(res.checkpoint_path)
    target = ck.target  # the shrunk space
    rows = {}
    for name in ("shared", "unshared"):
        net = ck.supernet()
        if name == "unshared":
            net = unshare_supernet(net)
        shutil.rmtree(out / name, ignore_errors=True)  # stage 2 afresh: another net
        run = _Run(target, data, out / name, base, None)
        opt = sgd(net.parameters(), base.lr * 0.1)
        t = time.perf_counter()
        for e in range(args.extra):  # the same batches and paths in both branches
            train_epoch(net, run.loader(30_000 + e), opt, lambda r, net=net: sample_path(net.space, r),
                        base.seed, 30_000 + e)
        train_s = time.perf_counter() - t
        (out / name).mkdir(parents=True, exist_ok=True)
        scores, _ = run.layerwise(net)
        table = AccuracyTable.from_rows(target, scores, {"branch": name})
        rows[name] = {"net": net.eval(), "table": table, "train_s": train_s,
                      "stage2_s": run.seconds["layerwise"],
                      "params": sum(p.numel() for p in net.parameters())}
        print(json.dumps({"branch": name, "params": rows[name]["params"],
                          "train_s": round(train_s, 1),
                          "stage2_s": round(rows[name]["stage2_s"], 1)}), flush=True)
    archs = sample_distinct(rows["shared"]["table"], args.nets, seed=12)
    ref_net = ck.supernet().eval()
    ref_set = EvalSettings(batch_size=32, bn_batches=8, finetune_steps=args.finetune_steps)
    reference = [real_accuracy(ref_net, a, data, ref_set)[1] for a in archs]
    summary = {"settings": vars(args), "base_train_s": round(base_s, 1),
               "shrunk_space": {"id": target.id, "size": target.size(),
                                "choices": [list(l.choices) for l in target.layers]},
               "nets": [list(a) for a in archs], "reference": reference, "branches": {}}
    own = EvalSettings(batch_size=32, bn_batches=8)
    for name, r in rows.items():
        pred = [r["table"].total(a) for a in archs]
        inh = [real_accuracy(r["net"], a, data, own)[0] for a in archs]
        summary["branches"][name] = {
            "params": r["params"], "train_s": round(r["train_s"], 1),
            "stage2_s": round(r["stage2_s"], 1),
            "table_vs_reference": rank_correlation(pred, reference),
            "table_vs_own_inherited": rank_correlation(pred, inh),
            "own_inherited_vs_reference": rank_correlation(inh, reference)}
        print(json.dumps({"branch": name, **{k: v for k, v in summary["branches"][name].items()
                                             if k != "params"}}), flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
