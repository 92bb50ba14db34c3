"""write_report: the self-contained report.html, figure PNGs and model card of a run or ensemble folder; never imports
Keras."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunError
from ..runs import CONFIG, read_confusion, read_history, read_json, read_metrics, read_misclassified
from ..utils import write_bytes, write_text
from .figures import (
    CAPTIONS,
    confusion_figure,
    curves_figure,
    data_uri,
    misclassified_figure,
    reliability_figure,
    risk_coverage_figure,
    to_png,
)
from .model_card import card_data, write_card
from .pages import card, render
from .text import format_date, format_duration, format_value, percent


def _cards(metrics: dict[str, Any], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Summary cards: accuracy big, then loss, errors, training time, parameters and best epoch."""
    n, loss, best = metrics["n"], metrics.get("loss"), metrics.get("best_val_accuracy")
    epochs = f"{metrics['epochs']} epochs" if "epochs" in metrics else ""
    return [
        card("Accuracy", percent(metrics["accuracy"]), f"on {n:,} {metrics.get('split', 'test')} images", main=True),
        card("Loss", "—" if loss is None else f"{loss:.4f}"),
        card("Errors", f"{metrics.get('errors', 0):,}", f"out of {n:,}"),
        card("Training time", format_duration(metrics.get("train_seconds")), _path(epochs, metrics)),
        card("Parameters", f"{metrics.get('parameters', meta.get('parameters', 0)):,}"),
        card("Best epoch", str(metrics.get("best_epoch", "—")), f"validation {percent(best)}" if best else ""),
        *_verdict_cards(metrics.get("verdicts")),
    ]


def _path(epochs: str, metrics: dict[str, Any]) -> str:
    """The epochs and the path training took: "6 epochs · bfloat16 (amx_bf16, avx512_bf16)", or on a GPU
    "6 epochs · float32 · GPU NVIDIA H100 80GB HBM3"."""
    if "precision" not in metrics:
        return epochs
    device = metrics.get("device", {})
    if device.get("type") == "GPU":
        gpus = f" (of {device['gpus']})" if device.get("gpus", 1) > 1 else ""
        return " · ".join(filter(None, [epochs, metrics["precision"], f"GPU {device.get('name', '')}{gpus}"]))
    flags = ", ".join(metrics.get("cpu_flags", [])) or "no bf16/int8 units"
    return " · ".join(filter(None, [epochs, f"{metrics['precision']} ({flags})"]))


def _verdict_cards(verdicts: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Calibration error before and after scaling, coverage at the operating point, AUROC against non-digits."""
    if not verdicts:
        return []
    auroc = verdicts.get("auroc_validation_nondigits")
    note = "" if verdicts.get("calibrated") else "defaults: run `calibrate`"
    return [
        card("Calibration error", percent(verdicts["ece_after"]), f"{percent(verdicts['ece_before'])} before scaling"),
        card("Answered", percent(verdicts["coverage"]), note or f"{percent(verdicts['accuracy_answered'])} right"),
        card("AUROC vs non-digits", "—" if auroc is None else f"{auroc:.3f}", f"score: {verdicts['score']}"),
    ]


def _held_out(verdicts: dict[str, Any] | None) -> dict[str, Any] | None:
    """Per set the model never saw: its images, the AUROC against the evaluated digits, and the shares rejected as
    not a digit and answered as a digit; and the accuracy with calibrated probabilities beside the raw one."""
    if not verdicts or not verdicts.get("held_out"):
        return None
    rows = []
    for name, s in verdicts["held_out"].items():
        label = "Fashion-MNIST test" if name == "fashion-mnist" else name
        if "n" not in s:
            rows.append([label, "not on this machine", "—", "—", "—"])
        else:
            rows.append([label, f"{s['n']:,}", f"{s['auroc']:.3f}", percent(s["rejected"]), percent(s["answered"])])
    raw, calibrated = verdicts["accuracy_raw"], verdicts["accuracy_calibrated"]  # written with held_out
    accuracy = f"Accuracy with the calibrated probabilities: {percent(calibrated)} ({percent(raw)} raw: scaling keeps"
    accuracy += f" every argmax, {100 * (calibrated - raw):+.2f} points)."
    if photos := verdicts.get("photographed"):
        accuracy += (
            f" The first {photos['n']:,} of these digits photographed and prepared as predict prepares a photo:"
            f" {percent(photos['answered'])} answered, {percent(photos['accuracy'])} read right."
        )
    return {"rows": rows, "accuracy": accuracy}


def _classes(metrics: dict[str, Any]) -> dict[str, Any]:
    """Precision, recall, F1 and support per class, the weakest class (lowest F1) marked."""
    per_class, macro, keys = metrics["per_class"], metrics.get("macro_avg"), ("precision", "recall", "f1")
    weakest = min(per_class, key=lambda c: per_class[c]["f1"])
    return {
        "rows": [[c, *[percent(s[k]) for k in keys], f"{s['support']:,}"] for c, s in per_class.items()],
        "marks": ["weak" if c == weakest else "" for c in per_class],
        "tags": ["weakest" if c == weakest else "" for c in per_class],
        "foot": ["macro average", *[percent(macro[k]) for k in keys], f"{macro['support']:,}"] if macro else None,
    }


def _pairs(metrics: dict[str, Any]) -> list[list[str]]:
    """The most confused (true, predicted) pairs, each as a share of its true class."""
    support = {c: s["support"] for c, s in metrics["per_class"].items()}
    return [[str(p["true"]), str(p["predicted"]), f"{p['count']:,}",
             f"{100 * p['count'] / support[p['true']]:.1f}%" if support.get(p["true"]) else "—"]
            for p in metrics.get("most_confused", [])]  # fmt: skip


def _members(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """An ensemble's members with their own test accuracy beside the ensemble's."""
    members = metrics.get("members")
    if not members:
        return None
    rows = [[Path(m["run"]).name, str(m.get("seed", "—")), percent(m["accuracy"]),
             percent(m["best_val_accuracy"]) if "best_val_accuracy" in m else "—",
             format_duration(m.get("train_seconds"))] for m in members]  # fmt: skip
    foot = ["ensemble" + (" (with TTA)" if metrics.get("tta") else ""), "", percent(metrics["accuracy"]), "",
            format_duration(metrics.get("train_seconds"))]  # fmt: skip
    return {"rows": rows, "foot": foot}


def render_html(
    config: dict[str, Any], metrics: dict[str, Any], pngs: dict[str, bytes], run_name: str, card: dict[str, Any]
) -> str:
    """The report page: header, summary cards, figures, per-class and confusion tables, the model card, settings and
    versions."""
    meta = config.get("meta", {})
    return render(
        "run.html.j2",
        title=f"{config.get('model', 'model')} on {metrics.get('dataset', config.get('dataset', 'dataset'))}",
        run_name=run_name,
        split=str(metrics.get("split", "test")),
        when=format_date(str(metrics.get("evaluated") or meta.get("created", ""))),
        summary=_cards(metrics, meta),
        members=_members(metrics),
        figures=[
            {"caption": CAPTIONS[name], "src": data_uri(png), "wide": not name.startswith("confusion")}
            for name, png in pngs.items()
        ],
        held_out=_held_out(metrics.get("verdicts")),
        classes=_classes(metrics),
        pairs=_pairs(metrics),
        card=card,
        settings=[[k, format_value(v)] for k, v in config.items() if k != "meta"],
        environment=[[k, str(v)] for k, v in meta.get("versions", {}).items()]
        + [[k, format_value(v)] for k, v in meta.items() if k not in ("versions", "class_names")],
    )


def write_report(run_dir: Path) -> Path:
    """Draw the run's figures and write report.html (figures embedded as base64 PNG); return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is not a run directory; pass the folder a training run wrote")
    config = read_json(run_dir / CONFIG)
    metrics = read_metrics(run_dir)
    names, matrix = read_confusion(run_dir)
    wrong = read_misclassified(run_dir)
    history = read_history(run_dir)
    curves = None
    if history is not None:
        best = metrics.get("best_epoch") or history["epoch"][np.argmax(np.nan_to_num(history["val_accuracy"], nan=-1))]
        curves = curves_figure(history, int(best))
    figures = {
        "training_curves": curves,
        "confusion_matrix": confusion_figure(names, matrix, normalized=False),
        "confusion_matrix_normalized": confusion_figure(names, matrix, normalized=True),
        "misclassified": misclassified_figure(wrong, names) if len(wrong["images"]) else None,
        "reliability": reliability_figure(metrics["verdicts"]) if "verdicts" in metrics else None,
        "risk_coverage": risk_coverage_figure(metrics["verdicts"]) if "verdicts" in metrics else None,
    }
    pngs: dict[str, bytes] = {}
    for name, fig in figures.items():
        if fig is None:
            (run_dir / f"{name}.png").unlink(missing_ok=True)
            continue
        pngs[name] = to_png(fig)
        write_bytes(run_dir / f"{name}.png", pngs[name])
    report = run_dir / "report.html"
    write_text(report, render_html(config, metrics, pngs, run_dir.resolve().name, card_data(run_dir)))
    write_card(run_dir)
    return report


def notebook_html(run_dir: Path) -> str:
    """The report's headline for a Jupyter cell: the summary cards and the figures write_report drew."""
    metrics = read_metrics(run_dir)
    figures = [
        {"caption": CAPTIONS[name], "src": data_uri((run_dir / f"{name}.png").read_bytes())}
        for name in ("training_curves", "confusion_matrix")
        if (run_dir / f"{name}.png").is_file()
    ]
    cards = _cards(metrics, read_json(run_dir / CONFIG).get("meta", {}))
    return render("notebook.html.j2", path=str(run_dir / "report.html"), summary=cards, figures=figures)
