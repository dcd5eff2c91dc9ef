"""The main job's report: figures and one HTML page, drawn from a finished run folder.

:func:`write_report` reads a :class:`~hwnas.run.folder.RunFolder` (its summary, frontier,
tables and baselines, measured by :mod:`hwnas.run.baselines`), draws the PNG figures with
matplotlib and writes ``report.html`` beside them: images by relative path, styles inline,
no script or font fetched from the network, so the folder opens offline and can be
archived or mailed as it is. It measures nothing, and imports no engine, training or
profiling code (as OpenVINO's benchmark_app keeps ``StatisticsReport`` apart from
measuring).
"""

from __future__ import annotations

import html
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .fileio import write_text_atomic
from .run.folder import RunFolder


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
        left = cal_const = pred.latency_ms - sum(v for _, v in pred.block_rows)
        ax.barh(row, cal_const, color="0.8")
        for i, (_, v) in enumerate(pred.block_rows):
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


FIGURES = (("frontier.png", "Accuracy-latency frontier"),
           ("predicted_vs_measured.png", "Predicted vs measured latency"),
           ("breakdown.png", "Per-layer latency breakdown"),
           ("accuracy_table.png", "Accuracy table"))


@dataclass(frozen=True)
class _Run:
    """What the report draws, read from the run folder."""

    folder: RunFolder
    summary: dict[str, Any]
    space: Any
    frontier: list[dict[str, Any]]
    dev: Any
    dev_path: Path
    acc: Any
    baselines: dict[str, Any] | None

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.summary["results"]


def write_report(run: RunFolder) -> Path:
    """The report page and its PNG figures of one backend and precision of a finished run
    folder (drawn from its files only)."""
    from .runfiles import report_dir

    r = _read(run)
    rdir = report_dir(run)  # never through a link or a tag out of the run folder
    rdir.mkdir(parents=True, exist_ok=True)
    _fig_frontier(rdir / FIGURES[0][0], r.frontier, r.results, r.baselines)
    scatter = _fig_scatter(rdir / FIGURES[1][0], r.results, r.baselines)
    _fig_breakdown(rdir / FIGURES[2][0], r.space, r.dev, r.results)
    _fig_heatmap(rdir / FIGURES[3][0], r.acc)
    body = [*_head(r), *_notes(r, scatter), *_calibration(r), *_precision(r)]
    for f, title in FIGURES:
        body.append(f"<h2>{html.escape(title)}</h2><img class='fig' src='{f}' "
                    f"alt='{html.escape(title)}'>")
    body.append(_provenance(r))
    write_text_atomic(run.report_html, _page(body))
    return run.report_html


def _read(run: RunFolder) -> _Run:
    from .runfiles import read_baselines, read_summary
    from .solver import read_frontier
    from .spaces import find_space_by_id
    from .tables.accuracy import load_accuracy_table
    from .tables.device import load_device_table

    out, summ_path = run.root, run.summary
    if not summ_path.is_file():
        raise UserError(f"{out} has no {summ_path.name}: run 'hwnas run --out {out}' first")
    summ = read_summary(summ_path)  # bounded, typed: a hand-edited file is one line
    space = find_space_by_id(summ["space_id"])
    if space is None:
        raise UserError(f"{summ_path}: space {summ.get('space')} is not built in")
    dev_path = Path(summ.get("device_table") or run.device_table)
    if not dev_path.is_file():
        raise UserError(f"{out}: the run's device table {dev_path} is missing")
    return _Run(run, summ, space, read_frontier(run.frontier)["points"],
                load_device_table(dev_path), dev_path,
                load_accuracy_table(run.accuracy_table, space),
                read_baselines(run.baselines) if run.baselines.is_file() else None)


def _head(r: _Run) -> list[str]:
    """The title, the folder and statistic, and the table of engines."""
    summ = r.summary
    rows = [[x["budget_ms"], ",".join(x["choices"]), x.get("predicted_ms"),
             x.get("predicted_upper_ms"), x.get("measured_ms"), x.get("measured_spread_ms"),
             _pct(x.get("prediction_error")),
             {True: "yes", False: "no"}.get(x.get("meets_budget"), "-"),
             predicted_accuracy(r.baselines, r.acc.total(x["choices"])),
             x.get("val_accuracy"), x.get("test_accuracy"), x.get("engine")]
            for x in r.results]
    return [f"<h1>hwnas run: {html.escape(summ['space'])} on {html.escape(summ['data'])}, "
            f"{html.escape(summ['backend'])} {html.escape(summ['precision'])}</h1>",
            f"<p>Folder <code>{html.escape(str(r.folder.root))}</code>. Latencies are the "
            f"device table's statistic, <b>{html.escape(r.dev.figure)}</b> (see "
            "<code>hwnas/device_tables/README.md</code>); spread is the interquartile range.</p>",
            "<h2>Engines</h2>",
            _table(rows, ["budget ms", "architecture", "predicted ms", "upper (p90) ms",
                          "measured ms", "IQR ms", "error", "meets budget",
                          "predicted accuracy", "engine accuracy (val, fine-tuned)",
                          "engine accuracy (held-out test)", "engine file"])]


def _notes(r: _Run, scatter: dict[str, Any]) -> list[str]:
    """The margin, the baselines' dominance and the prediction error, in sentences."""
    body = []
    margin = r.summary.get("budget_margin")
    if margin:
        body.append(f"<p>Each network was chosen within its budget less a "
                    f"{100 * float(margin['value']):.1f}% margin for prediction error "
                    f"({html.escape(str(margin['from']))}).</p>")
    if r.baselines:
        dom, fit = dominance(r.baselines), r.baselines["score_to_accuracy"]
        body.append(f"<p>Baselines: {dom['dominated']} of {dom['comparable']} comparable "
                    f"baseline networks are dominated by a chosen network (no slower when "
                    f"measured, no less accurate); not dominated: "
                    f"{html.escape(', '.join(dom['not_dominated']) or 'none')}; faster than "
                    f"every chosen network: "
                    f"{html.escape(', '.join(dom['faster_than_every_chosen']) or 'none')}. "
                    f"Accuracy: {html.escape(r.baselines['accuracy'])}. Predicted accuracy: "
                    f"{fit['slope']:.4f} x table score + {fit['intercept']:.4f} (fitted on "
                    f"{fit['fitted_on']} random networks, rms residual "
                    f"{fit['rms_residual']:.4f}).</p>")
    if scatter:
        body.append(f"<p>Prediction over {scatter['networks']} measured networks: "
                    f"{100 * scatter['within_10pct']:.0f}% within 10%, median error "
                    f"{scatter['median_abs_err_pct']:.1f}%, max "
                    f"{scatter['max_abs_err_pct']:.1f}%.</p>")
    return body


def _calibration(r: _Run) -> list[str]:
    """Whether the device table was refitted on the run's frontier, and the prediction
    error by group of whole networks (random, frontier, engines, chosen, baselines)."""
    cal = r.summary.get("calibration") or {}
    body = ["<h2>Prediction error by group of networks</h2>"]
    st = cal.get("status")
    if st == "skipped":
        body.append(f"<p>The device table was <b>not</b> refitted on this run's frontier "
                    f"({html.escape(str(cal.get('why')))}).</p>")
    elif st in ("recalibrated", "reused"):
        body.append(f"<p>Before engines were chosen, the device table's calibration lines were "
                    f"fitted on {cal.get('frontier_nets')} networks of this run's frontier "
                    f"and {cal.get('random_nets')} random networks, measured together "
                    f"({html.escape(str(cal.get('date')))}"
                    + (", an earlier run of the same accuracy table" if st == "reused" else "")
                    + "): the networks a search picks are not random ones.</p>")
    rows = [[g["group"], g["basis"], g.get("nets"), _share(g.get("within_5pct")),
             _share(g.get("within_10pct")), g.get("median_abs_err_pct"),
             g.get("max_abs_err_pct")] for g in r.dev.error_groups()]
    if not rows:
        return body + ["<p>The device table records no error by group.</p>"]
    return body + [_table(rows, ["group", "basis", "networks", "within 5%", "within 10%",
                                 "median |error| %", "max |error| %"])]


def _share(x: Any) -> str:
    return "-" if not isinstance(x, (int, float)) else f"{100 * x:.0f}%"


def _precision(r: _Run) -> list[str]:
    """A lower precision beside fp32: measured ratio beside predicted, plainly."""
    from .run.precision import precision_comparison

    c = precision_comparison(r.folder, r.space, r.summary, r.dev, r.baselines)
    if c is None:
        return []
    p = html.escape(c["precision"])
    body = [f"<h2>{p} beside fp32</h2>"]
    both = c["measured_in_both"]
    if both["median_measured_ratio"] is not None:
        from .tables.compare import precision_verdict

        m = both["median_measured_ratio"]
        pr = both["median_predicted_ratio"]
        body.append(f"<p>Measured on this machine over the {both['networks']} networks both "
                    f"the {p} and the fp32 run timed: {p}/fp32 = <b>{m:.2f}x</b> (median), "
                    f"<b>{html.escape(precision_verdict(m, 'on this machine'))}</b>"
                    + (f"; the tables predicted {pr:.2f}x" if pr is not None else "")
                    + ".</p>")
    rows = [[e["budget_ms"], e["measured_ms"], e["predicted_ms"], e["fp32_ms"],
             e["fp32_basis"], e["measured_ratio"], e["predicted_ratio"], e["verdict"]]
            for e in c["engines"]]
    body.append(f"<p>Engines (fp32 figures: measured by this folder's fp32 run where it timed "
                f"the same network, else predicted by {html.escape(str(c['fp32_table']))}; "
                f"statistic {html.escape(c['statistic'])}):</p>")
    body.append(_table(rows, ["budget ms", f"{p} measured ms", f"{p} predicted ms",
                              "fp32 ms", "fp32 basis", f"{p}/fp32 measured",
                              f"{p}/fp32 predicted", "verdict"]))
    return body


def _provenance(r: _Run) -> str:
    meta = r.dev.meta
    prov = {"device (table)": meta.get("device"), "runtime": meta.get("runtime"),
            "runtime version": meta.get("runtime_version"), "threads": meta.get("threads"),
            "protocol": meta.get("protocol"), "calibration": r.dev.calibration.to_dict(),
            "versions": _versions(), "device table": str(r.dev_path)}
    return ("<h2>Device, versions, protocol</h2><pre>"
            + html.escape(json.dumps(prov, indent=1, default=str)) + "</pre>")


def _page(body: list[str]) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><title>hwnas report</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
            "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
            "padding:3px 6px}img.fig{max-width:100%}pre{font-size:11px;background:#f6f6f6;"
            "padding:8px;overflow:auto}</style></head><body>" + "\n".join(body)
            # the check a headless browser reads back (tests): every figure decoded
            + "<script>window.addEventListener('load',function(){var i=document.images,n=0;"
              "for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}"
              "document.body.setAttribute('data-figures',n+'/'+i.length);});</script>"
            + "</body></html>")
