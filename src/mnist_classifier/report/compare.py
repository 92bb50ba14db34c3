"""The comparison page of some runs: metrics and differing settings side by side, the training curves overlaid and
the confusion matrices next to each other, in one self-contained HTML file."""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from ..comparison import Comparison
from ..utils import write_text
from .figures import data_uri, tidy, to_png
from .pages import render
from .text import format_duration, format_value, percent


def figure_text(value: Any, kind: str) -> str:
    """A metric as the tables show it; "—" where the run has none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "percent":
        return percent(value)
    if kind == "seconds":
        return format_duration(value)
    if kind == "count":
        return f"{round(value):,}"
    if kind in ("loss", "auroc"):
        return f"{value:.4f}" if kind == "loss" else f"{value:.3f}"
    return str(value)


def setting_text(value: Any) -> str:
    """A setting as the tables show it: "—" where a run lacks it, "none" for an empty list."""
    if value is None:
        return "—"
    return "none" if value == [] else format_value(value)


def curves_overlay(comparison: Comparison) -> Figure | None:
    """Validation accuracy and loss per epoch, and validation accuracy over training time, one colour per run; None
    when no run has a history (ensembles)."""
    runs = [run for run in comparison.runs if run.history.get("epoch")]
    if not runs:
        return None
    fig = Figure(figsize=(13, 4.4), layout="constrained")
    panels = fig.subplots(1, 3)
    colours = sns.color_palette("tab10" if len(comparison.runs) <= 10 else "tab20", len(comparison.runs))
    for i, run in enumerate(comparison.runs):
        if run not in runs:
            continue
        h = run.history
        panels[0].plot(h["epoch"], h["val_accuracy"], "o-", ms=3, color=colours[i], label=run.name)
        panels[1].plot(h["epoch"], h["val_loss"], "o-", ms=3, color=colours[i], label=run.name)
        panels[1].plot(h["epoch"], h["loss"], ":", color=colours[i])
        panels[2].plot(h.get("elapsed", h["epoch"]), h["val_accuracy"], "o-", ms=3, color=colours[i])
    panels[0].set(title="Validation accuracy", xlabel="Epoch")
    panels[1].set(title="Loss (validation solid, train dotted)", xlabel="Epoch")
    panels[2].set(title="Validation accuracy over training time", xlabel="Training time (s)")
    for ax, percent_y, integer_x in zip(panels, (True, False, True), (True, True, False), strict=True):
        tidy(ax, integer_x=integer_x, percent_y=percent_y)
    fig.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(4, len(runs)))
    return fig


def confusions_side_by_side(comparison: Comparison) -> Figure | None:
    """Each evaluated run's confusion matrix in counts, four to a row, coloured by its mistakes only (the diagonal,
    right answers, left white) on one scale for every run, so that where each goes wrong stands out; None when no
    run was evaluated."""
    runs = [run for run in comparison.runs if run.confusion is not None]
    if not runs:
        return None
    mistakes = [run.confusion[1] * (1 - np.eye(len(run.confusion[1]), dtype=np.int64)) for run in runs if run.confusion]
    top = max(1, *(int(m.max()) for m in mistakes))
    cols = min(4, len(runs))
    rows = math.ceil(len(runs) / cols)
    fig = Figure(figsize=(4.2 * cols, 4.1 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).flat
    for run, wrong, ax in zip(runs, mistakes, axes, strict=False):  # runs first: the unused axes stay in `axes`
        assert run.confusion is not None
        names, matrix = run.confusion
        annot = np.where(matrix > 0, matrix.astype(str), "")
        sns.heatmap(wrong, ax=ax, annot=annot, fmt="", cmap="Reds", vmin=0, vmax=top, square=True, cbar=False,
                    linewidths=0.4, linecolor="#e5e7eb", annot_kws={"fontsize": 7},
                    xticklabels=names, yticklabels=names)  # fmt: skip
        accuracy = run.metrics.get("accuracy")
        sub = f"\n{percent(accuracy)}, {int(wrong.sum()):,} errors" if accuracy is not None else ""
        ax.set_title(run.name + sub, fontsize=9)
        ax.set(xlabel="Predicted", ylabel="True")
        ax.tick_params(labelsize=7, labelrotation=0)
    for ax in list(axes):
        ax.set_visible(False)
    return fig


def write_comparison(comparison: Comparison, out: Path) -> Path:
    """Write the page to `out` (atomically), each run linked to its own report; return its path."""
    pictures = {
        "Training curves, overlaid": curves_overlay(comparison),
        "Confusion matrices (counts; the colour shows the mistakes, on one scale for every run)": (
            confusions_side_by_side(comparison)
        ),
    }
    links = []
    for run in comparison.runs:
        report = run.path / "report.html"
        links.append(os.path.relpath(report, out.parent) if report.is_file() else None)
    page = render(
        "compare.html.j2",
        title=f"{len(comparison.runs)} runs compared",
        when=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        runs=list(zip(comparison.names, links, strict=True)),
        head=["", *comparison.names],
        figures=[
            [label, *(figure_text(v, comparison.kinds[label]) for v in values)]
            for label, values in comparison.figures.items()
        ],
        settings=[
            [key, *("—" if v is None else format_value(v) for v in values)]
            for key, values in comparison.settings.items()
        ],
        pictures=[{"caption": c, "src": data_uri(to_png(f))} for c, f in pictures.items() if f is not None],
    )
    write_text(out, page)
    return out
