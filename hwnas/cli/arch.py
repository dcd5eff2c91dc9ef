"""``hwnas arch sample|show|export``."""

from __future__ import annotations

from ._output import add_force_flag, add_json_flag, check_out, console, emit, table


def register(sub) -> None:
    p = sub.add_parser("arch", help="sample, show and export architectures")
    s = p.add_subparsers(dest="arch_cmd", metavar="ACTION", required=True)
    sa = s.add_parser("sample", help="a uniformly random architecture of a space")
    sa.add_argument("--space", required=True, metavar="NAME|FILE")
    sa.add_argument("--seed", type=int, default=None)
    sa.add_argument("--out", metavar="ARCH.json", help="also write it to this file")
    add_force_flag(sa)
    add_json_flag(sa)
    sa.set_defaults(func=cmd_sample)
    sh = s.add_parser("show", help="an architecture: blocks, FLOPs, parameters")
    sh.add_argument("arch", metavar="ARCH", help="ARCH.json or SPACE:choice,choice,...")
    sh.add_argument("--space", metavar="NAME|FILE", help="the space, for custom-space files")
    add_json_flag(sh)
    sh.set_defaults(func=cmd_show)
    ex = s.add_parser("export", help="ONNX file of an architecture (fresh weights)")
    ex.add_argument("arch", metavar="ARCH")
    ex.add_argument("--space", metavar="NAME|FILE")
    ex.add_argument("--out", required=True, metavar="FILE.onnx")
    ex.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    add_force_flag(ex)
    add_json_flag(ex)
    ex.set_defaults(func=cmd_export)


def _summary(space, arch) -> dict:
    d = arch.to_dict()
    d.update({"notation": arch.notation(), "macs": arch.total_macs(space),
              "params": arch.total_params(space),
              "blocks": [b.key() for b in arch.blocks(space)]})
    return d


def cmd_sample(args) -> int:
    from ..arch import sample_architecture
    from ..spaces import load_space

    check_out(args.out, args.force, "--out")
    sp = load_space(args.space)
    arch = sample_architecture(sp, args.seed)
    if args.out:
        arch.save(args.out)
    emit(args, _summary(sp, arch), lambda d: console().print(d["notation"]))
    return 0


def cmd_show(args) -> int:
    from ..arch import load_architecture

    sp, arch = load_architecture(args.arch, args.space)
    d = _summary(sp, arch)

    def human(d) -> None:
        console().print(f"[bold]{d['notation']}[/bold]\nspace {sp.name} (id {sp.id}), "
                        f"{d['macs'] / 1e6:.1f} M MACs, {d['params'] / 1e6:.3f} M params")
        table("blocks", ["#", "block"], [[i, k] for i, k in enumerate(d["blocks"])])

    emit(args, d, human)
    return 0


def cmd_export(args) -> int:
    from ..arch import load_architecture
    from ..errors import require

    check_out(args.out, args.force, "--out")
    sp, arch = load_architecture(args.arch, args.space)
    require("torch", "torch")
    from ..nn.export import export_architecture

    path = export_architecture(sp, arch, args.out, seed=args.seed)
    emit(args, {"onnx": str(path), "notation": arch.notation()},
         lambda d: console().print(f"wrote {d['onnx']}"))
    return 0
