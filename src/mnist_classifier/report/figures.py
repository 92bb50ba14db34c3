"""Matplotlib/Seaborn figures: confusion matrices, training curves, misclassified digits, sample grids."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import seaborn as sns
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ..utils import write_bytes

TRAIN, VAL, BEST, GREY = "#2563eb", "#ea580c", "#16a34a", "#94a3b8"
CAPTIONS = {
    "training_curves": "Training curves: train vs validation per epoch; the green star marks the best epoch.",
    "confusion_matrix": "Confusion matrix: how many images of each true class got each prediction.",
    "confusion_matrix_normalized": "Row-normalised confusion matrix: the diagonal is each class's recall.",
    "misclassified": "The misclassified images the model was most sure about, most confident first.",
    "reliability": "Reliability: accuracy against confidence per bin (bins of 20 images or more), before and after "
    "temperature scaling; on the diagonal, a confidence of 0.9 is right 90% of the time.",
    "risk_coverage": "Risk-coverage: accuracy of the most confident share of images; the dot is the operating "
    "point, the images answered as digits at the run's thresholds.",
}


def reliability_figure(verdicts: dict) -> Figure:
    """Accuracy per confidence bin before and after scaling, with the diagonal of perfect calibration."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", label="perfectly calibrated")
    for key, colour, label in (("before", VAL, "before"), ("after", TRAIN, "after")):
        bins = [b for b in verdicts[f"reliability_{key}"] if b["n"] >= 20]  # a handful of images says nothing
        ece = verdicts[f"ece_{key}"]
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            color=colour,
            label=f"{label} scaling (ECE {ece:.2%})",
        )
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="confidence (mean of the bin)", ylabel="accuracy")
    ax.set_title(f"Reliability, temperature {verdicts['temperature']:.3f}")
    ax.legend(loc="upper left")
    tidy(ax, integer_x=False)
    return fig


def risk_coverage_figure(verdicts: dict) -> Figure:
    """Accuracy of the answered images against the share answered, the operating point marked."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    curve = verdicts["risk_coverage"]
    ax.plot(curve["coverage"], curve["accuracy"], color=TRAIN, label="most confident first")
    if verdicts.get("accuracy_answered") is not None:
        ax.scatter(
            [verdicts["coverage"]],
            [verdicts["accuracy_answered"]],
            color=BEST,
            zorder=3,
            s=60,
            label=f"operating point: {verdicts['coverage']:.1%} answered, {verdicts['accuracy_answered']:.2%} right",
        )
    ax.set(xlabel="coverage (share of images answered)", ylabel="accuracy on the answered images", xlim=(0, 1.01))
    ax.set_title("Risk-coverage")
    ax.legend(loc="lower left")
    tidy(ax, integer_x=False, percent_y=True)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    return fig


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def data_uri(image: bytes) -> Markup:
    """A PNG as a data: URI for an <img src>, so the page embeds it and opens offline."""
    return Markup(f"data:image/png;base64,{base64.b64encode(image).decode()}")


def tidy(ax: Axes, integer_x: bool = True, percent_y: bool = False) -> None:
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
        tidy(ax, percent_y=key == "accuracy")
    ax = fig.add_subplot(grid[1, :4])
    ax.plot(history["elapsed"], history["val_accuracy"], "o-", color=VAL, ms=3)
    ax.plot(history["elapsed"][best], history["val_accuracy"][best], "*", color=BEST, ms=13)
    ax.set(title="Validation accuracy over training time", xlabel="Training time (s)")
    tidy(ax, integer_x=False, percent_y=True)
    ax = fig.add_subplot(grid[1, 4:])
    ax.bar(epochs, history["seconds"], color=[BEST if i == best else GREY for i in range(len(epochs))])
    ax.set(title="Seconds per epoch", xlabel="Epoch")
    tidy(ax)
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
    write_bytes(out, to_png(fig))
    return out
