"""``hwnas space list|show``."""

from __future__ import annotations

from ._output import add_force_flag, add_json_flag, check_out, console, emit, table


def register(sub) -> None:
    p = sub.add_parser("space", help="list and show search spaces")
    s = p.add_subparsers(dest="space_cmd", metavar="ACTION", required=True)
    ls = s.add_parser("list", help="built-in spaces")
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)
    sh = s.add_parser("show", help="one space (built-in name or JSON/YAML file)")
    sh.add_argument("space", metavar="NAME|FILE")
    add_json_flag(sh)
    sh.set_defaults(func=cmd_show)
    ex = s.add_parser("export", help="write a space as an editable JSON/YAML space file")
    ex.add_argument("space", metavar="NAME|FILE")
    ex.add_argument("--out", required=True, metavar="FILE.json|FILE.yaml")
    ex.add_argument("--classes", type=int, help="change the class count (your data's)")
    ex.add_argument("--name", help="name of the written space")
    add_force_flag(ex)
    add_json_flag(ex)
    ex.set_defaults(func=cmd_export)


def cmd_list(args) -> int:
    from ..spaces import BUILTIN_SPECS, builtin_spaces, load_space

    rows = []
    for name in builtin_spaces():
        sp = load_space(name)
        rows.append({"name": name, "id": sp.id, "layers": len(sp.layers), "size": sp.size(),
                     "input": list(sp.input), "description": BUILTIN_SPECS[name].get("description", "")})
    emit(args, rows, lambda r: table("search spaces", ["name", "id", "layers", "input", "size",
                                                       "description"],
                                     [[x["name"], x["id"], x["layers"], "x".join(map(str, x["input"])),
                                       f"{x['size']:.3g}", x["description"]] for x in r]))
    return 0


def cmd_show(args) -> int:
    from ..spaces import load_space

    sp = load_space(args.space)
    d = sp.describe()

    def human(d) -> None:
        c = console()
        c.print(f"[bold]{d['name']}[/bold]  id {d['id']}  input {d['input']}  "
                f"{d['num_layers']} searchable layers, {d['size']:.3g} architectures")
        c.print(f"stem  {d['stem']}")
        for f in d["fixed"]:
            c.print(f"fixed {f}")
        table("searchable layers", ["layer", "in (HxWxC)", "out", "candidates"],
              [[x["index"], "x".join(map(str, x["in"])), "x".join(map(str, x["out"])),
                " ".join(x["choices"])] for x in d["layers"]])
        c.print(f"head  {d['head']}")

    emit(args, d, human)
    return 0


def cmd_export(args) -> int:
    from pathlib import Path

    import yaml

    from ..errors import UserError
    from ..fileio import write_text_atomic
    from ..spaces import load_space, space_from_dict

    check_out(args.out, args.force, "--out")
    d = load_space(args.space).to_dict()
    if args.classes is not None:
        d["classes"] = args.classes
    if args.name:
        d["name"] = args.name
    sp = space_from_dict(d)  # validates the edit
    out = Path(args.out)
    if out.suffix.lower() in (".yaml", ".yml"):
        text = yaml.safe_dump(d, sort_keys=False)
    elif out.suffix.lower() == ".json":
        import json

        text = json.dumps(d, indent=1) + "\n"
    else:
        raise UserError(f"--out must end in .json, .yaml or .yml, got {out.name}")
    write_text_atomic(out, text)
    emit(args, {"out": str(out), "name": sp.name, "id": sp.id},
         lambda r: console().print(f"wrote space {r['name']} (id {r['id']}) to {r['out']}"))
    return 0
