"""Figures and one self-contained report.html for a finished run directory. Reads files only; never imports Keras."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import zipfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .errors import RunError
from .utils import write_bytes, write_text

T = TypeVar("T")
TRAIN, VAL, BEST, GREY = "#2563eb", "#ea580c", "#16a34a", "#94a3b8"
HISTORY_COLUMNS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "elapsed"}
CAPTIONS = {
    "training_curves": "Training curves: train vs validation per epoch; the green star marks the best epoch.",
    "confusion_matrix": "Confusion matrix: how many images of each true class got each prediction.",
    "confusion_matrix_normalized": "Row-normalised confusion matrix: the diagonal is each class's recall.",
    "misclassified": "The misclassified images the model was most sure about, most confident first.",
}
CSS = """
body{margin:0;background:#f4f6fa;color:#1f2937;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1120px;margin:0 auto;padding:32px 24px 64px}
header h1{margin:0;font-size:28px}header p{margin:4px 0 0;color:#6b7280}h2{margin:40px 0 12px;font-size:19px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:14px;margin-top:24px}
.card,figure,table{background:#fff;border-radius:12px;box-shadow:0 1px 3px #0000001a}.card{padding:16px 18px}
.label{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.06em}
.value{font-size:24px;font-weight:650}.sub{color:#6b7280;font-size:13px}
.card.main{grid-column:span 2;background:#1e3a8a;color:#fff}.main .label,.main .sub{color:#c7d2fe}
.main .value{font-size:46px}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:18px}.wide{grid-column:1/-1}
figure{margin:0;padding:16px}figure img{display:block;max-width:100%;margin:0 auto}
figcaption{color:#6b7280;font-size:13px;margin-top:8px}
table{border-collapse:collapse;overflow:hidden}thead th{background:#eef2f7;font-size:13px;color:#374151}
th,td{padding:7px 14px;text-align:right;font-variant-numeric:tabular-nums}th:first-child,td:first-child{text-align:left}
tbody tr:nth-child(even){background:#f9fafb}tfoot td{border-top:2px solid #e5e7eb;font-weight:600}
tr.weak{background:#fef2f2!important;color:#b91c1c}
.tag{font-size:11px;background:#fecaca;border-radius:6px;padding:1px 6px;margin-left:6px}
.kv :is(td,th),.pairs :is(td,th):nth-child(2){text-align:left}.side{display:flex;flex-wrap:wrap;gap:0 40px}
"""


def _load(path: Path, reader: Callable[[Path], T]) -> T:
    """Read one run file, turning any failure into a one-line RunError that names it."""
    try:
        return reader(path)
    except FileNotFoundError:
        raise RunError(f"{path} is missing; train or evaluate this run again to write it") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(f"{path} is unreadable ({reason}); train or evaluate this run again to rewrite it") from None


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _read_metrics(path: Path) -> dict[str, Any]:
    metrics = _read_json(path)
    missing = [key for key in ("accuracy", "n", "per_class") if key not in metrics]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    return metrics


def _read_history(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = HISTORY_COLUMNS - set(rows[0] if rows else ())
    if not rows or missing:
        raise ValueError(f"no epochs, or missing columns {sorted(missing)}")
    return {key: np.array([float(row[key] or "nan") for row in rows]) for key in rows[0]}


def _read_confusion(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    matrix = np.array([[int(v) for v in row[1:]] for row in rows], dtype=np.int64)
    if matrix.shape != (len(header) - 1, len(header) - 1):
        raise ValueError(f"expected {len(header) - 1} rows of {len(header) - 1} counts")
    return header[1:], matrix


def _read_misclassified(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in ("images", "true", "predicted", "confidence", "index")}


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _tidy(ax: Axes, integer_x: bool = True, percent_y: bool = False) -> None:
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if percent_y:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def confusion_figure(names: list[str], matrix: np.ndarray, normalized: bool) -> Figure:
    """Annotated heatmap of counts, or of row percentages (recall on the diagonal)."""
    size = max(5.0, 0.5 * len(names) + 1)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    if normalized:
        rows = matrix.sum(axis=1, keepdims=True)
        values = np.divide(100 * matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
        annot = np.where(values > 0, np.char.mod("%.1f", values), "")
        title = "Confusion matrix, % of each true class (recall on the diagonal)"
    else:
        values, annot, title = matrix, matrix.astype(str), "Confusion matrix (counts)"
    cbar = {"shrink": 0.8, "format": PercentFormatter() if normalized else None}
    sns.heatmap(values, ax=ax, annot=annot, fmt="", cmap="Blues", vmin=0, vmax=100 if normalized else None, square=True,
                linewidths=0.5, linecolor="#e5e7eb", cbar_kws=cbar, annot_kws={"fontsize": 9},
                xticklabels=names, yticklabels=names)  # fmt: skip
    long = max(map(len, names)) > 2
    ax.set_title(title, fontsize=12, pad=12)
    ax.set(xlabel="Predicted class", ylabel="True class")
    ax.tick_params(axis="x", labelrotation=45 if long else 0)
    ax.tick_params(axis="y", labelrotation=0)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right" if long else "center")
    return fig


def curves_figure(history: dict[str, np.ndarray], best_epoch: int) -> Figure:
    """Loss and accuracy per epoch (train vs validation, best epoch marked), accuracy over time, seconds per epoch."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    grid = fig.add_gridspec(2, 6)
    epochs = history["epoch"]
    best = int(np.argmin(np.abs(epochs - best_epoch)))
    for column, key in ((slice(0, 3), "loss"), (slice(3, 6), "accuracy")):
        ax = fig.add_subplot(grid[0, column])
        ax.plot(epochs, history[key], "o-", color=TRAIN, ms=3, label="train")
        ax.plot(epochs, history[f"val_{key}"], "o-", color=VAL, ms=3, label="validation")
        ax.axvline(best_epoch, color=BEST, ls="--", lw=1, label=f"best epoch ({best_epoch})")
        ax.plot(best_epoch, history[f"val_{key}"][best], "*", color=BEST, ms=13)
        ax.set(title=key.capitalize(), xlabel="Epoch")
        ax.legend(frameon=False)
        _tidy(ax, percent_y=key == "accuracy")
    ax = fig.add_subplot(grid[1, :4])
    ax.plot(history["elapsed"], history["val_accuracy"], "o-", color=VAL, ms=3)
    ax.plot(history["elapsed"][best], history["val_accuracy"][best], "*", color=BEST, ms=13)
    ax.set(title="Validation accuracy over training time", xlabel="Training time (s)")
    _tidy(ax, integer_x=False, percent_y=True)
    ax = fig.add_subplot(grid[1, 4:])
    ax.bar(epochs, history["seconds"], color=[BEST if i == best else GREY for i in range(len(epochs))])
    ax.set(title="Seconds per epoch", xlabel="Epoch")
    _tidy(ax)
    return fig


def misclassified_figure(data: dict[str, np.ndarray], names: list[str], limit: int = 64) -> Figure:
    """Grid of the most confident mistakes, titled "true → predicted (confidence)" and framed by confidence."""
    count = min(limit, len(data["images"]))
    cols = min(8, count)
    fig = Figure(figsize=(1.6 * cols, 1.85 * math.ceil(count / cols) + 0.5), layout="constrained")
    for i, ax in enumerate(fig.subplots(math.ceil(count / cols), cols, squeeze=False).flat):
        ax.set(xticks=[], yticks=[], frame_on=i < count)
        if i >= count:
            continue
        true, predicted, conf = names[data["true"][i]], names[data["predicted"][i]], float(data["confidence"][i])
        colour = "#b91c1c" if conf >= 0.9 else "#d97706" if conf >= 0.6 else "#475569"
        title = f"true {true} → {predicted} ({conf:.0%})"
        ax.imshow(data["images"][i], cmap="gray", vmin=0, vmax=255)
        ax.spines[:].set_color(colour)
        ax.spines[:].set_linewidth(2.5)
        ax.set_title(title.replace(" →", "\n→") if len(title) > 18 else title, fontsize=8.5, color=colour)
    shown = f"{count} most confident of {len(data['images'])}" if count < len(data["images"]) else f"All {count}"
    fig.suptitle(f"{shown} mistakes  (red ≥ 90%, amber ≥ 60%, grey < 60% confidence)", fontsize=11)
    return fig


def sample_grid(out: Path, x: np.ndarray, y: np.ndarray, class_names: Sequence[str], per_class: int) -> Path:
    """Write a PNG grid of the first `per_class` images of each class, one row per class; return its path."""
    fig = Figure(figsize=(0.9 * per_class + 1, 0.9 * len(class_names)), layout="constrained")
    axes = fig.subplots(len(class_names), per_class, squeeze=False)
    for label, row in enumerate(axes):
        picks = np.flatnonzero(y == label)[:per_class]
        for j, ax in enumerate(row):
            ax.set(xticks=[], yticks=[], frame_on=False)
            if j < len(picks):
                ax.imshow(x[picks[j]], cmap="gray")
        row[0].set_ylabel(class_names[label], rotation=0, ha="right", va="center", fontsize=10)
    write_bytes(out, _png(fig))
    return out


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _date(text: str) -> str:
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return text


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return json.dumps(value) if isinstance(value, dict) else str(value)


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def html_table(head: list[str], rows: list[list[str]], css: str = "", marks: list[str] | None = None,
           foot: list[str] | None = None) -> str:  # fmt: skip
    """An HTML table from already escaped cells; `marks` gives each body row a CSS class."""

    def cells(tag: str, values: list[str]) -> str:
        return "".join(f"<{tag}>{v}</{tag}>" for v in values)

    body = "".join(
        f'<tr class="{m}">{cells("td", r)}</tr>' for m, r in zip(marks or [""] * len(rows), rows, strict=True)
    )
    tfoot = f"<tfoot><tr>{cells('td', foot)}</tr></tfoot>" if foot else ""
    return f'<table class="{css}"><thead><tr>{cells("th", head)}</tr></thead><tbody>{body}</tbody>{tfoot}</table>'


def _cards(metrics: dict[str, Any], meta: dict[str, Any]) -> str:
    """Summary cards: accuracy big, then loss, errors, training time, parameters and best epoch."""
    n, loss, best = metrics["n"], metrics.get("loss"), metrics.get("best_val_accuracy")
    cards = [
        ("main", "Accuracy", percent(metrics["accuracy"]), f"on {n:,} {metrics.get('split', 'test')} images"),
        ("", "Loss", "—" if loss is None else f"{loss:.4f}", ""),
        ("", "Errors", f"{metrics.get('errors', 0):,}", f"out of {n:,}"),
        (
            "",
            "Training time",
            format_duration(metrics.get("train_seconds")),
            f"{metrics['epochs']} epochs" if "epochs" in metrics else "",
        ),
        ("", "Parameters", f"{metrics.get('parameters', meta.get('parameters', 0)):,}", ""),
        ("", "Best epoch", str(metrics.get("best_epoch", "—")), f"validation {percent(best)}" if best else ""),
    ]
    e = html.escape
    return "".join(
        f'<div class="card {c}"><div class="label">{e(k)}</div><div class="value">{e(v)}</div>'
        f'<div class="sub">{e(s)}</div></div>'
        for c, k, v, s in cards
    )


def _class_table(metrics: dict[str, Any]) -> str:
    """Precision, recall, F1 and support per class, the weakest class (lowest F1) highlighted."""
    per_class, macro, keys = metrics["per_class"], metrics.get("macro_avg"), ("precision", "recall", "f1")
    weakest = min(per_class, key=lambda c: per_class[c]["f1"])
    tag = '<span class="tag">weakest</span>'
    rows = [[html.escape(c) + (tag if c == weakest else "")] + [percent(s[k]) for k in keys] + [f"{s['support']:,}"]
            for c, s in per_class.items()]  # fmt: skip
    foot = ["macro average", *[percent(macro[k]) for k in keys], f"{macro['support']:,}"] if macro else None
    marks = ["weak" if c == weakest else "" for c in per_class]
    return html_table(["class", "precision", "recall", "F1", "support"], rows, marks=marks, foot=foot)


def _pairs_table(metrics: dict[str, Any]) -> str:
    """The most confused (true, predicted) pairs, each as a share of its true class."""
    support = {c: s["support"] for c, s in metrics["per_class"].items()}
    rows = [[html.escape(str(p["true"])), html.escape(str(p["predicted"])), f"{p['count']:,}",
             f"{100 * p['count'] / support[p['true']]:.1f}%" if support.get(p["true"]) else "—"]
            for p in metrics.get("most_confused", [])]  # fmt: skip
    return html_table(["true", "predicted as", "count", "% of true class"], rows, "pairs") if rows else "<p>None.</p>"


def _members_table(metrics: dict[str, Any]) -> str:
    """An ensemble's members with their own test accuracy beside the ensemble's."""
    members = metrics.get("members")
    if not members:
        return ""
    rows = [
        [
            html.escape(Path(m["run"]).name),
            html.escape(str(m.get("seed", "—"))),
            percent(m["accuracy"]),
            percent(m["best_val_accuracy"]) if "best_val_accuracy" in m else "—",
            format_duration(m.get("train_seconds")),
        ]
        for m in members
    ]
    foot = ["ensemble" + (" (with TTA)" if metrics.get("tta") else ""), "", percent(metrics["accuracy"]), "",
            format_duration(metrics.get("train_seconds"))]  # fmt: skip
    head = ["member", "seed", "test accuracy", "best validation accuracy", "training time"]
    return f"<h2>Ensemble members</h2>{html_table(head, rows, foot=foot)}"


def render_html(config: dict[str, Any], metrics: dict[str, Any], figures: dict[str, bytes], run_name: str) -> str:
    """The report page: header, summary cards, figures, per-class and confusion tables, settings and versions."""
    e, meta = html.escape, config.get("meta", {})
    title = f"{config.get('model', 'model')} on {metrics.get('dataset', config.get('dataset', 'dataset'))}"
    when = _date(str(metrics.get("evaluated") or meta.get("created", "")))
    images = "".join(
        f'<figure class="{"" if name.startswith("confusion") else "wide"}"><img alt="{e(CAPTIONS[name])}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}"><figcaption>{e(CAPTIONS[name])}</figcaption></figure>'
        for name, png in figures.items()
    )
    settings = [[e(k), e(_value(v))] for k, v in config.items() if k != "meta"]
    env = [[e(k), e(str(v))] for k, v in meta.get("versions", {}).items()]
    env += [[e(k), e(_value(v))] for k, v in meta.items() if k not in ("versions", "class_names")]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(title)}</title><style>{CSS}</style></head><body><main>
<header><h1>{e(title)}</h1><p>run {e(run_name)} · {e(str(metrics.get("split", "test")))} split · {e(when)}</p></header>
<section class="cards">{_cards(metrics, meta)}</section>
{_members_table(metrics)}
<h2>Figures</h2><section class="figs">{images}</section>
<h2>Per-class results</h2>{_class_table(metrics)}
<h2>Most confused pairs</h2>{_pairs_table(metrics)}
<div class="side"><div><h2>Settings</h2>{html_table(["setting", "value"], settings, "kv")}</div>
<div><h2>Environment</h2>{html_table(["item", "value"], env, "kv")}</div></div>
</main></body></html>
"""


def write_report(run_dir: Path) -> Path:
    """Draw the run's figures and write report.html (figures embedded as base64 PNG); return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is not a run directory; pass the folder a training run wrote")
    config = _load(run_dir / "config.json", _read_json)
    metrics = _load(run_dir / "metrics.json", _read_metrics)
    names, matrix = _load(run_dir / "confusion_matrix.csv", _read_confusion)
    wrong = _load(run_dir / "misclassified.npz", _read_misclassified)
    history = _load(run_dir / "history.csv", _read_history) if (run_dir / "history.csv").exists() else None
    curves = None
    if history is not None:
        best = metrics.get("best_epoch") or history["epoch"][np.argmax(np.nan_to_num(history["val_accuracy"], nan=-1))]
        curves = curves_figure(history, int(best))
    figures = {
        "training_curves": curves,
        "confusion_matrix": confusion_figure(names, matrix, normalized=False),
        "confusion_matrix_normalized": confusion_figure(names, matrix, normalized=True),
        "misclassified": misclassified_figure(wrong, names) if len(wrong["images"]) else None,
    }
    pngs: dict[str, bytes] = {}
    for name, fig in figures.items():
        if fig is None:
            (run_dir / f"{name}.png").unlink(missing_ok=True)
            continue
        pngs[name] = _png(fig)
        write_bytes(run_dir / f"{name}.png", pngs[name])
    report = run_dir / "report.html"
    write_text(report, render_html(config, metrics, pngs, run_dir.resolve().name))
    return report
