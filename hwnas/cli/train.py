"""``hwnas train``, ``hwnas proxy-rank`` and ``hwnas validate-table``."""

from __future__ import annotations

from ._output import add_json_flag, console, emit, stage_progress, table
from ._request_flags import add_old_train_device_alias, add_train_device_flag
from ._torch import load_torch


def register(sub) -> None:
    p = sub.add_parser("train", help="train a supernet (PONAS two stages) into an accuracy table")
    p.add_argument("--space", required=True, metavar="NAME|FILE")
    p.add_argument("--data", default="digits", metavar="digits|digits-hard|DIR|FILE.npz",
                   help="'digits' or 'digits-hard' (built in), an image folder (one sub-folder "
                        "per class) or a .npz with arrays x, y")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="writes supernet.pt and accuracy_table.json; a re-run resumes")
    p.add_argument("--proxy", default="full", metavar="SETTING",
                   help="EcoNAS reduced setting, e.g. 'channels=0.5,resolution=16,samples=0.5,"
                        "epochs=0.5' (default: full)")
    p.add_argument("--shrink", type=int, default=0, metavar="ROUNDS",
                   help="PWSNAS shrinking rounds after meta-training (each drops one operator "
                        "per layer, keeping at least one); writes DIR/space.json")
    p.add_argument("--unshare", type=int, default=0, metavar="EPOCHS",
                   help="PWSNAS's less weight sharing, after shrinking: every block gets one "
                        "weight copy per choice of the layer before it, then EPOCHS epochs "
                        "of training (default 0: off)")
    p.add_argument("--epochs", type=int, default=10, help="meta-training epochs (default 10)")
    p.add_argument("--finetune-steps", type=int, default=10,
                   help="stage-2 fine-tuning steps per candidate (default 10)")
    p.add_argument("--later-paths", type=int, default=3,
                   help="later paths each candidate is scored on (default 3)")
    p.add_argument("--prefix", choices=("chosen", "sampled"), default="chosen",
                   help="stage-2 earlier layers: fixed to their chosen blocks (PONAS, default) "
                        "or sampled (a marginal score that ranks arbitrary architectures)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    add_train_device_flag(p, "where to train (cuda: bf16 autocast where supported); under "
                          "torchrun each process takes its LOCAL_RANK's GPU")
    add_old_train_device_alias(p)
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="data-loading worker processes (default 0: a small in-memory set "
                        "moves to the GPU once; N > 0: batches are built by N processes from "
                        "pinned host memory, for sets too large for the GPU); the batches, "
                        "and so the table, are the same either way")
    add_json_flag(p)
    p.set_defaults(func=cmd_train)

    r = sub.add_parser("proxy-rank", help="rank consistency of a proxy table against the full one")
    r.add_argument("proxy_table", metavar="PROXY_TABLE")
    r.add_argument("full_table", metavar="FULL_TABLE")
    r.add_argument("--space", metavar="NAME|FILE", help="the space, for CSV tables")
    add_json_flag(r)
    r.set_defaults(func=cmd_proxy_rank)

    v = sub.add_parser("validate-table",
                       help="table-predicted vs real accuracy of random sub-networks (Kendall tau)")
    v.add_argument("--checkpoint", required=True, metavar="supernet.pt")
    v.add_argument("--table", required=True, metavar="TABLE")
    v.add_argument("--data", default="digits", metavar="digits|digits-hard|DIR|FILE.npz")
    v.add_argument("--samples", type=int, default=20, help="random sub-networks (default 20)")
    v.add_argument("--finetune-steps", type=int, default=0,
                   help="also measure after this many fine-tuning steps (default 0: off)")
    v.add_argument("--seed", type=int, default=None,
                   help="sampling seed (default: the checkpoint's; the data split is always the "
                        "checkpoint's)")
    v.add_argument("--threads", type=int, default=None)
    add_json_flag(v)
    v.set_defaults(func=cmd_validate)


def cmd_train(args) -> int:
    from ..errors import require
    from ..spaces import load_space

    space = load_space(args.space)
    load_torch(args.threads)
    require("sklearn", "torch")
    from ..train.ponas import TrainConfig, data_for, train_accuracy_table
    from ..train.proxy import Proxy

    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      finetune_steps=args.finetune_steps, later_paths=args.later_paths,
                      prefix=args.prefix, shrink_rounds=args.shrink, seed=args.seed,
                      unshare_epochs=args.unshare, proxy=Proxy.parse(args.proxy))
    from ..train.distributed import setup

    dist = setup(args.train_device, args.workers)
    data = data_for(space, args.data, cfg)
    prog, progress = stage_progress()

    if not dist.main:  # under torchrun: rank 0 reports, the others train quietly
        train_accuracy_table(space, data, args.out, cfg, None, dist)
        return 0
    with prog:
        result = train_accuracy_table(space, data, args.out, cfg, progress, dist)
    t = result.table
    d = {"out": args.out, "table": str(result.table_path), "checkpoint": str(result.checkpoint_path),
         "space": t.space.name, "space_id": t.space.id,
         "shrunk_space": str(result.space_path) if result.space_path else None,
         "chosen": list(result.chosen), "data": data.describe(),
         "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
         "resumed_from": result.resumed_from,
         "layers": [dict(row) for row in t.scores]}

    def human(d) -> None:
        rows = [[i, c, f"{v:.4f}", f"{t.relative_loss()[i][c]:.4f}", "*" if c == d["chosen"][i] else ""]
                for i, row in enumerate(t.scores) for c, v in row]
        table(f"accuracy table ({d['space']}, id {d['space_id']})",
              ["layer", "choice", "val acc", "rel. loss", "best"], rows)
        console().print(f"wrote {d['table']} and {d['checkpoint']}"
                        + (f"; shrunk space {d['shrunk_space']}" if d["shrunk_space"] else ""))

    emit(args, d, human)
    return 0


def cmd_proxy_rank(args) -> int:
    from ..tables import load_accuracy_table

    proxy = load_accuracy_table(args.proxy_table, args.space)
    full = load_accuracy_table(args.full_table, args.space)
    from ..train.validate import rank_consistency

    d = rank_consistency(proxy, full)

    def human(d) -> None:
        table(f"rank consistency: {d['proxy']} vs {d['full']}", ["layer", "Kendall tau", "Spearman"],
              [[r["layer"], f"{r['kendall_tau']:.3f}", f"{r['spearman_rho']:.3f}"]
               for r in d["layers"]])
        m, p = d["mean_per_layer"], d["pooled"]
        console().print(f"mean per layer: tau {m['kendall_tau']:.3f}, rho {m['spearman_rho']:.3f}; "
                        f"pooled relative loss: tau {p['kendall_tau']:.3f}, rho {p['spearman_rho']:.3f}")

    emit(args, d, human)
    return 0


def cmd_validate(args) -> int:
    from ..errors import UserError
    from ..tables import load_accuracy_table

    if args.samples < 2:
        raise UserError("--samples must be >= 2")
    if args.finetune_steps < 0:
        raise UserError("--finetune-steps must be >= 0")
    tab = load_accuracy_table(args.table)
    load_torch(args.threads)
    from ..train.checkpoint import load_checkpoint
    from ..train.validate import EvalSettings, validate_table

    ck = load_checkpoint(args.checkpoint, tab.space)
    made_with = tab.provenance.get("config")
    if made_with is not None and made_with != dict(ck.config):
        raise UserError(f"{args.table} and {args.checkpoint} come from different training runs "
                        "(their settings differ); give the checkpoint the table was made from")
    net = ck.supernet()
    data = ck.data_split(args.data, source=f"checkpoint {args.checkpoint}")
    try:
        seed = int(ck.config.get("seed", 0))
        batch, bn = int(ck.config.get("batch_size", 64)), int(ck.config.get("bn_batches", 4))
    except (TypeError, ValueError):
        raise UserError(f"checkpoint {args.checkpoint} is damaged (its config holds a "
                        "non-number where a number belongs)") from None
    settings = EvalSettings(batch_size=batch, bn_batches=bn,
                            finetune_steps=args.finetune_steps,
                            seed=seed if args.seed is None else args.seed)
    prog, progress = stage_progress()
    with prog:
        d = validate_table(net, tab, data, args.samples, settings, progress)

    def human(d) -> None:
        table("table-predicted vs real accuracy", ["choices", "predicted", "inherited", "fine-tuned"],
              [[",".join(r["choices"]), f"{r['predicted']:.4f}", f"{r['inherited']:.4f}",
                "-" if r["finetuned"] is None else f"{r['finetuned']:.4f}"] for r in d["rows"]])
        line = f"{d['samples']} sub-networks: Kendall tau {d['inherited']['kendall_tau']:.3f} " \
               f"(inherited weights)"
        if "finetuned" in d:
            line += f", {d['finetuned']['kendall_tau']:.3f} (after {d['finetune_steps']} steps)"
        console().print(line)

    emit(args, d, human)
    return 0
