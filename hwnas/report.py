"""The main job's report: baselines measured beside the chosen networks, figures, one HTML.

Two steps, both re-runnable on a finished ``hwnas run`` folder:

- :func:`measure_baselines` times a baseline family with the device table's own backend,
  precision and statistic, interleaved in one protocol run with the chosen networks (so
  every point on the plots shares one noise history): every uniform network of the space
  (the same candidate in every layer), its shallow twin (``skip`` wherever a layer allows
  it) for the narrowest and widest candidate, and 20 random architectures. Each network's
  accuracy is the supernet's with inherited weights and recalibrated BN on the validation
  split, the same procedure for chosen and baseline networks (a fair comparison; the
  engines' fine-tuned accuracy is reported separately). A line fitted from the accuracy
  table's score to that accuracy over the random networks turns the table's score (a sum
  of per-layer accuracies) into a predicted accuracy.
- :func:`write_report` draws the PNG figures with matplotlib and writes ``report.html``
  beside them: images by relative path, styles inline, no script or font fetched from the
  network, so the folder opens offline and can be archived or mailed as it is.
"""

from __future__ import annotations

import html
import json
import platform
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from hwnas_profilers.fileformat import KINDS

from .errors import UserError
from .fileio import read_json, write_json_atomic, write_text_atomic
from .run.folder import RunFolder

RANDOM_BASELINES = 20


def baseline_family(space: Any) -> list[tuple[str, list[str]]]:
    """(label, choices) of the uniform networks, two shallow twins and random networks."""
    from .arch import sample_architecture

    layers = space.layers
    common = [c for c in layers[0].choices
              if c != "skip" and all(c in layer.choices for layer in layers)]
    fam = [(f"uniform {c}", [c] * len(layers)) for c in common]
    for c in dict.fromkeys([common[0], common[-1]]) if common else []:
        shallow = ["skip" if "skip" in layer.choices else c for layer in layers]
        if shallow != [c] * len(layers):
            fam.append((f"shallow {c}", shallow))
    for i in range(RANDOM_BASELINES):
        fam.append((f"random {i}", list(sample_architecture(space, seed=10_000 + i).choices)))
    return fam


def measure_baselines(run: Any, space: Any, supernet: Any, data: Any, acc: Any,
                      dev: Any, chosen: Sequence[tuple[float, Any]], threads: int = 1,
                      quick: bool = False, say=lambda s: None,
                      engines: "dict[str, Path] | None" = None,
                      supernet_sha256: "str | None" = None) -> dict[str, Any]:
    """Measure and evaluate the baseline family and the chosen networks; write the run
    folder's baselines file (``run``: a :class:`~hwnas.run.folder.RunFolder`; reused when
    present and made for the same networks and engine files). ``engines`` (label -> engine file) are timed in the same interleaved run,
    each the way ``hwnas measure`` times one (the fastest of 3 sessions); their manifest
    fields are in the result's ``engines``. With ``supernet_sha256`` (the checkpoint's
    digest), the accuracies of a previous file of the same supernet and splits are reused:
    after a step down only the latency is measured again (the accuracies took a minute)."""
    from dataclasses import replace

    from .nn.export import export_architecture
    from .profiling import cache_dir, profiler_errors
    from .train.validate import EvalSettings, inherited_accuracies

    path = run.baselines
    fam = baseline_family(space)
    nets = [(lbl, list(ch), "baseline") for lbl, ch in fam] + \
        [(f"chosen {b:g} ms", list(a.choices), "chosen") for b, a in chosen]
    engines = dict(engines or {})
    import hashlib

    sums = {k: hashlib.sha256(Path(f).read_bytes()).hexdigest() for k, f in engines.items()}
    # the held-out split evaluated by the same procedure (its images took no part in the
    # table or the choice): what the dominance check compares
    has_test = bool(data.has_test)
    described = ("supernet, inherited weights, BN recalibrated, validation split "
                 f"({int(len(data.val_y))} images)" + (
                     f"; and on the held-out test split ({int(len(data.test_y))} images, "
                     "supernet_test_accuracy)" if has_test else ""))
    accuracy: dict[tuple[str, ...], float] = {}  # a chosen network may also be a baseline
    test_acc: dict[tuple[str, ...], float] = {}
    if path.is_file():
        old = read_json(path, "baselines")
        if [n["choices"] for n in old.get("networks", [])] == [n[1] for n in nets] and \
                (old.get("engine_files") or {}) == sums:
            say(f"baselines: reusing {path}")
            return old
        if supernet_sha256 and old.get("supernet_sha256") == supernet_sha256 and \
                old.get("accuracy") == described:
            for n in old.get("networks", []):
                if n.get("supernet_val_accuracy") is not None and \
                        (not has_test or n.get("supernet_test_accuracy") is not None):
                    accuracy[tuple(n["choices"])] = n["supernet_val_accuracy"]
                    if has_test:
                        test_acc[tuple(n["choices"])] = n["supernet_test_accuracy"]
    say(f"baselines: measuring {len(engines)} engine files, {len(fam)} baseline and "
        f"{len(chosen)} chosen networks on {dev.meta.get('backend')} "
        f"{dev.meta.get('precision')} ({dev.figure}), interleaved")
    ndir = cache_dir() / "baselines" / f"{space.name}-{space.id}"
    shape = (1, space.input[2], space.input[0], space.input[1])
    from .arch import Architecture

    files = []
    for lbl, ch, _ in nets:
        f = ndir / (("_".join(ch)) + ".onnx")
        if not f.is_file():
            export_architecture(space, Architecture.of(space, ch), f)
        files.append(f)
    with profiler_errors():
        from hwnas_profilers import Protocol, Settings
        from hwnas_profilers.protocol import Stats
        from hwnas_profilers.session import measure_models

        proto = replace(Protocol.quick() if quick else Protocol(), figure=dev.figure)
        timed, res = measure_models({k: (Path(f), shape) for k, f in engines.items()},
                                    str(dev.meta.get("backend")),
                                    Settings(precision=str(dev.meta.get("precision", "fp32")),
                                             threads=threads),
                                    protocol=proto,
                                    others={str(f): (f, shape) for f in dict.fromkeys(files)})
    from .engines.build import measured_fields
    ev = EvalSettings()
    rows = []
    for (lbl, ch, kind), f in zip(nets, files):
        arch = Architecture.of(space, ch)
        st = res.get(str(f))
        if tuple(ch) not in accuracy:
            got = inherited_accuracies(supernet, ch, data, ev, [(data.val_x, data.val_y)] + (
                [(data.test_x, data.test_y)] if has_test else []))
            accuracy[tuple(ch)] = got[0]
            if has_test:
                test_acc[tuple(ch)] = got[1]
        inherited = accuracy[tuple(ch)]
        score = acc.total(ch)
        rows.append({"label": lbl, "kind": kind, "choices": ch,
                     "predicted_ms": dev.predict(space, arch).latency_ms,
                     "measured_ms": st.figure(dev.figure) if isinstance(st, Stats) else None,
                     "measured_spread_ms": st.spread_ms if isinstance(st, Stats) else None,
                     "measured_p90_ms": st.p90_ms if isinstance(st, Stats) else None,
                     "failure": st if isinstance(st, str) else None,
                     "table_score": score, "supernet_val_accuracy": inherited,
                     "supernet_test_accuracy": test_acc.get(tuple(ch))})
    rnd = [r for r in rows if r["label"].startswith("random")]
    a, b = np.polyfit([r["table_score"] for r in rnd],
                      [r["supernet_val_accuracy"] for r in rnd], 1)
    resid = [r["supernet_val_accuracy"] - (a * r["table_score"] + b) for r in rnd]
    for r in rows:
        r["predicted_accuracy"] = float(a * r["table_score"] + b)
    d = {"kind": "hwnas.baselines", "schema": KINDS["hwnas.baselines"], "statistic": dev.figure,
         "accuracy": described, "supernet_sha256": supernet_sha256,
         "score_to_accuracy": {"slope": float(a), "intercept": float(b), "fitted_on": len(rnd),
                               "rms_residual": float(np.sqrt(np.mean(np.square(resid))))},
         "networks": rows,
         "engines": {k: measured_fields(r) for k, r in timed.items()}, "engine_files": sums}
    write_json_atomic(path, d)
    return d


def predicted_accuracy(baselines: dict[str, Any] | None, score: float) -> float | None:
    if not baselines:
        return None
    f = baselines["score_to_accuracy"]
    return float(f["slope"] * score + f["intercept"])


def dominance(baselines: dict[str, Any]) -> dict[str, Any]:
    """Is every baseline matched by a chosen network at no more latency and no less accuracy?
    Accuracy on the held-out test split where the run has one, else on validation."""
    rows = [r for r in baselines["networks"] if r["measured_ms"] is not None]
    key = "supernet_test_accuracy" if rows and all(
        r.get("supernet_test_accuracy") is not None for r in rows) else "supernet_val_accuracy"
    chosen = [r for r in rows if r["kind"] == "chosen"]
    base = [r for r in rows if r["kind"] == "baseline"]
    beaten, slower = [], []
    for r in base:
        ok = [c for c in chosen if c["measured_ms"] <= r["measured_ms"]]
        if not ok:
            slower.append(r["label"])  # faster than every chosen network: not comparable
            continue
        if max(c[key] for c in ok) < r[key]:
            beaten.append(r["label"])
    return {"accuracy": key, "baselines": len(base), "comparable": len(base) - len(slower),
            "dominated": len(base) - len(slower) - len(beaten), "not_dominated": beaten,
            "faster_than_every_chosen": slower}


# ------------------------------------------------------------------ figures
def _plt():
    from .errors import require

    matplotlib = require("matplotlib", "plot")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fig_frontier(path: Path, frontier, results, baselines) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    if baselines:
        pts = [(p["latency_ms"], predicted_accuracy(baselines, p["score"])) for p in frontier]
        ax.plot(*zip(*pts), "-", color="0.6", lw=1, label="frontier (predicted)")
        base = [r for r in baselines["networks"] if r["kind"] == "baseline" and r["measured_ms"]]
        for kind, mk in (("uniform", "s"), ("shallow", "v"), ("random", ".")):
            rs = [r for r in base if r["label"].startswith(kind)]
            if rs:
                ax.plot([r["measured_ms"] for r in rs], [r["supernet_val_accuracy"] for r in rs],
                        mk, color="tab:gray", ms=7 if mk != "." else 9, label=f"{kind} (measured)")
        ch = [r for r in baselines["networks"] if r["kind"] == "chosen" and r["measured_ms"]]
        ax.plot([r["predicted_ms"] for r in ch], [r["predicted_accuracy"] for r in ch], "o",
                mfc="none", color="tab:blue", ms=9, label="chosen (predicted)")
        ax.errorbar([r["measured_ms"] for r in ch], [r["supernet_val_accuracy"] for r in ch],
                    xerr=[r["measured_spread_ms"] or 0 for r in ch], fmt="o",
                    color="tab:blue", label="chosen (measured, IQR)")
        ax.set_ylabel("validation accuracy (supernet weights)")
    else:
        ax.plot([p["latency_ms"] for p in frontier], [p["score"] for p in frontier], "-",
                label="frontier (table score: no baselines measured)")
        ax.set_ylabel("table score")
    for r in results:
        ax.axvline(r["budget_ms"], color="tab:red", lw=0.6, ls=":")
    ax.set_xlabel("latency (ms)")
    ax.set_title("accuracy-latency frontier, chosen networks and baselines")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fig_scatter(path: Path, results, baselines) -> dict[str, Any]:
    plt = _plt()
    pts = [(r["predicted_ms"], r["measured_ms"], r.get("measured_spread_ms") or 0, "engine")
           for r in results if r.get("predicted_ms") and r.get("measured_ms")]
    if baselines:
        pts += [(r["predicted_ms"], r["measured_ms"], r["measured_spread_ms"] or 0, r["kind"])
                for r in baselines["networks"] if r["measured_ms"]]
    fig, ax = plt.subplots(figsize=(6, 5.5))
    stats: dict[str, Any] = {}
    if pts:
        p = np.array([x[0] for x in pts])
        m = np.array([x[1] for x in pts])
        err = np.abs(p - m) / m
        stats = {"networks": len(pts), "within_10pct": float(np.mean(err <= 0.10)),
                 "median_abs_err_pct": float(100 * np.median(err)),
                 "max_abs_err_pct": float(100 * err.max())}
        lo, hi = min(p.min(), m.min()) * 0.9, max(p.max(), m.max()) * 1.1
        ax.plot([lo, hi], [lo, hi], "-", color="0.3", lw=1)
        ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.9",
                        label="+-10%")
        for kind, color in (("baseline", "tab:gray"), ("chosen", "tab:blue"),
                            ("engine", "tab:red")):
            sel = [x for x in pts if x[3] == kind]
            if sel:
                ax.errorbar([x[0] for x in sel], [x[1] for x in sel],
                            yerr=[x[2] for x in sel], fmt="o", color=color, ms=4,
                            label=f"{kind} ({len(sel)})")
        ax.set_title(f"predicted vs measured: {100 * stats['within_10pct']:.0f}% within 10%, "
                     f"median {stats['median_abs_err_pct']:.1f}%", fontsize=10)
        ax.legend(fontsize=8)
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("measured latency (ms), error bar: IQR")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return stats


def _fig_breakdown(path: Path, space, dev, results) -> None:
    plt = _plt()
    from .arch import Architecture

    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.6 * max(1, len(results))))
    cmap = plt.get_cmap("tab20")
    for row, r in enumerate(results):
        pred = dev.predict(space, Architecture.of(space, r["choices"]))
        left = cal_const = pred.latency_ms - sum(v for _, v in pred.layers)
        ax.barh(row, cal_const, color="0.8")
        for i, (_, v) in enumerate(pred.layers):
            ax.barh(row, v, left=left, color=cmap(i % 20), edgecolor="white", lw=0.3)
            left += v
    ax.set_yticks(range(len(results)), [f"{r['budget_ms']:g} ms" for r in results])
    ax.set_xlabel("predicted latency (ms): per-call overhead and calibration (grey), then "
                  "one bar per block")
    ax.set_title("per-layer latency breakdown of the chosen networks")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fig_heatmap(path: Path, acc) -> None:
    plt = _plt()
    choices = list(dict.fromkeys(c for layer in acc.space.layers for c in layer.choices))
    m = np.full((len(acc.space.layers), len(choices)), np.nan)
    for i, layer in enumerate(acc.space.layers):
        for c in layer.choices:
            m[i, choices.index(c)] = acc.score(i, c)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(choices), 1.2 + 0.35 * len(m)))
    im = ax.imshow(m, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(choices)), choices, rotation=45, ha="right")
    ax.set_yticks(range(len(m)), [f"layer {i}" for i in range(len(m))])
    fig.colorbar(im, ax=ax, label="validation accuracy (PONAS table)")
    ax.set_title("accuracy table")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------- HTML
def _versions() -> dict[str, str]:
    from importlib import metadata

    v = {"python": platform.python_version()}
    for pkg in ("hwnas", "torch", "numpy", "onnx", "onnxruntime", "openvino", "nncf",
                "matplotlib"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return v


def _table(rows: list[list[Any]], head: list[str]) -> str:
    def cell(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:.4g}"
        return html.escape("" if x is None else str(x))

    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{cell(x)}</td>" for x in r) + "</tr>" for r in rows)
            + "</table>")


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def write_report(run: RunFolder) -> Path:
    """The report page and its PNG figures of one backend and precision of a finished run
    folder (drawn from its files only)."""
    from .solver import read_frontier
    from .spaces import find_space_by_id
    from .tables.accuracy import load_accuracy_table
    from .tables.device import load_device_table

    out = run.root
    summ_path = run.summary
    if not summ_path.is_file():
        raise UserError(f"{out} has no {summ_path.name}: run 'hwnas run --out {out}' first")
    summ = read_json(summ_path, "run summary")
    space = find_space_by_id(summ["space_id"])
    if space is None:
        raise UserError(f"{summ_path}: space {summ.get('space')} is not built in")
    frontier = read_frontier(run.frontier)["points"]
    dev_path = Path(summ.get("device_table") or run.device_table)
    if not dev_path.is_file():
        raise UserError(f"{out}: the run's device table {dev_path} is missing")
    dev = load_device_table(dev_path)
    acc = load_accuracy_table(run.accuracy_table, space)
    bpath = run.baselines
    baselines = read_json(bpath, "baselines") if bpath.is_file() else None
    results = summ["results"]
    rdir = run.report_dir
    rdir.mkdir(parents=True, exist_ok=True)
    figs = [("frontier.png", "Accuracy-latency frontier"),
            ("predicted_vs_measured.png", "Predicted vs measured latency"),
            ("breakdown.png", "Per-layer latency breakdown"),
            ("accuracy_table.png", "Accuracy table")]
    _fig_frontier(rdir / figs[0][0], frontier, results, baselines)
    scatter = _fig_scatter(rdir / figs[1][0], results, baselines)
    _fig_breakdown(rdir / figs[2][0], space, dev, results)
    _fig_heatmap(rdir / figs[3][0], acc)

    manifests = []
    for r in results:
        try:
            manifests.append(read_json(r["manifest"], "engine manifest"))
        except Exception:  # noqa: BLE001 - a missing manifest shows as a gap, not a crash
            manifests.append({})
    rows = []
    for r, m in zip(results, manifests):
        lat = m.get("latency", {})
        pa = predicted_accuracy(baselines, acc.total(r["choices"]))
        rows.append([r["budget_ms"], ",".join(r["choices"]), r.get("predicted_ms"),
                     lat.get("predicted_upper_ms"), r.get("measured_ms"),
                     r.get("measured_spread_ms"), _pct(r.get("prediction_error")),
                     {True: "yes", False: "no"}.get(r.get("meets_budget"), "-"),
                     pa, r.get("val_accuracy"), r.get("test_accuracy"), r.get("engine")])
    dom = dominance(baselines) if baselines else None
    meta = dev.meta
    body = [f"<h1>hwnas run: {html.escape(summ['space'])} on {html.escape(summ['data'])}, "
            f"{html.escape(summ['backend'])} {html.escape(summ['precision'])}</h1>",
            f"<p>Folder <code>{html.escape(str(out))}</code>. Latencies are the device "
            f"table's statistic, <b>{html.escape(dev.figure)}</b> (see "
            "<code>hwnas/device_tables/README.md</code>); spread is the interquartile range.</p>",
            "<h2>Engines</h2>",
            _table(rows, ["budget ms", "architecture", "predicted ms", "upper (p90) ms",
                          "measured ms", "IQR ms", "error", "meets budget",
                          "predicted accuracy", "engine accuracy (val, fine-tuned)",
                          "engine accuracy (held-out test)", "engine file"])]
    margin = summ.get("budget_margin")
    if margin:
        body.append(f"<p>Each network was chosen within its budget less a "
                    f"{100 * float(margin['value']):.1f}% margin for prediction error "
                    f"({html.escape(str(margin['from']))}).</p>")
    if dom:
        body.append(f"<p>Baselines: {dom['dominated']} of {dom['comparable']} comparable "
                    f"baseline networks are dominated by a chosen network (no slower when "
                    f"measured, no less accurate); not dominated: "
                    f"{html.escape(', '.join(dom['not_dominated']) or 'none')}; faster than "
                    f"every chosen network: "
                    f"{html.escape(', '.join(dom['faster_than_every_chosen']) or 'none')}. "
                    f"Accuracy: {html.escape(baselines['accuracy'])}. Predicted accuracy: "
                    f"{baselines['score_to_accuracy']['slope']:.4f} x table score + "
                    f"{baselines['score_to_accuracy']['intercept']:.4f} (fitted on "
                    f"{baselines['score_to_accuracy']['fitted_on']} random networks, rms "
                    f"residual {baselines['score_to_accuracy']['rms_residual']:.4f}).</p>")
    if scatter:
        body.append(f"<p>Prediction over {scatter['networks']} measured networks: "
                    f"{100 * scatter['within_10pct']:.0f}% within 10%, median error "
                    f"{scatter['median_abs_err_pct']:.1f}%, max {scatter['max_abs_err_pct']:.1f}%.</p>")
    for f, title in figs:
        body.append(f"<h2>{html.escape(title)}</h2><img class='fig' src='{f}' alt='{html.escape(title)}'>")
    prov = {"device (table)": meta.get("device"), "runtime": meta.get("runtime"),
            "runtime version": meta.get("runtime_version"), "threads": meta.get("threads"),
            "protocol": meta.get("protocol"), "calibration": dev.calibration.to_dict(),
            "versions": _versions(), "device table": str(dev_path)}
    body.append("<h2>Device, versions, protocol</h2><pre>"
                + html.escape(json.dumps(prov, indent=1, default=str)) + "</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>hwnas report</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
            "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
            "padding:3px 6px}img.fig{max-width:100%}pre{font-size:11px;background:#f6f6f6;"
            "padding:8px;overflow:auto}</style></head><body>" + "\n".join(body)
            # the check a headless browser reads back (tests): every figure decoded
            + "<script>window.addEventListener('load',function(){var i=document.images,n=0;"
              "for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}"
              "document.body.setAttribute('data-figures',n+'/'+i.length);});</script>"
            + "</body></html>")
    path = run.report_html
    write_text_atomic(path, page)
    return path
