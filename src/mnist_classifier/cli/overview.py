"""The `runs` commands: list the runs under a folder (`runs [FOLDER]`), compare some (`runs compare A B ...`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from typer.core import TyperGroup

from ..utils import format_duration
from .common import console


class ListByDefault(TyperGroup):
    """A group whose arguments go to its `list` command unless they start with a subcommand's name (or --help), so
    that `runs`, `runs FOLDER --sort accuracy` and `runs compare A B` all read as they are written."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Any: Typer's Context is its bundled Click's
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=ListByDefault,
    help="List the runs under a folder (runs [FOLDER]: name, model, preset, dataset, accuracy, time, status), or"
    " compare some (runs compare A B ...).",
)
STYLES = {"evaluated": "green", "finished": "", "unfinished": "yellow", "unreadable": "red", "not a run": "dim"}


def print_whole(table: Table) -> None:
    """A table at its natural width even past the terminal's (which wraps the lines then): run names and figures
    are never cut to fit."""
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    Console(file=console.file, width=max(console.width, natural)).print(table, highlight=False)


def cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None or value == "":
        return "—"
    if key in ("accuracy", "val_accuracy"):
        return f"{value:.2%}"
    return format_duration(value) if key == "train_seconds" else str(value)


@app.command("list")
def list_runs(
    folder: Annotated[Path, typer.Argument(help="The folder holding the run folders, or one run folder.")] = Path(
        "runs"
    ),
    sort: Annotated[
        str | None,
        typer.Option(
            help="name, created, accuracy, val-accuracy, time, epochs, parameters, model, preset, dataset or"
            " status (accuracies best first)."
        ),
    ] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Reverse the order.")] = False,
    model: Annotated[str | None, typer.Option(help="Only runs of this model (dnn, cnn, ensemble).")] = None,
    preset: Annotated[str | None, typer.Option(help="Only runs of this preset (fast matches fast+ too).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only runs on this dataset.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only runs in this state: evaluated, finished, unfinished, unreadable, not a run."),
    ] = None,
) -> None:
    """List the runs under FOLDER (default runs/): one line each, read from their JSON files (no model is loaded)."""
    from ..overview import run_rows

    rows, total = run_rows(folder, sort, reverse, model=model, preset=preset, dataset=dataset, status=status)
    if not rows:
        console.print(f"no runs under {folder}" + (" match" if total else ""), highlight=False)
        return
    table = Table(box=None, header_style="bold")
    table.add_column("name", no_wrap=True)
    for title in ("model", "preset", "dataset"):
        table.add_column(title, no_wrap=True)
    table.add_column("accuracy", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if any(row["note"] for row in rows):
        table.add_column("note", style="dim")
    keys = ("name", "model", "preset", "dataset", "accuracy", "train_seconds", "status")
    for row in rows:
        cells = [cell(row, key) for key in keys] + ([row["note"] or ""] if len(table.columns) > len(keys) else [])
        table.add_row(*cells, style=STYLES.get(row["status"], ""))
    print_whole(table)
    shown = f"{len(rows)} of {total} folders" if len(rows) < total else f"{total} folders"
    counts = {s: sum(row["status"] == s for row in rows) for s in STYLES}
    console.print(f"{shown}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n), style="dim", highlight=False)


@app.command("compare")
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two to twelve run folders.")],
    out: Annotated[
        Path | None, typer.Option(help="The comparison page (default comparison.html beside the first run).")
    ] = None,
) -> None:
    """Print the settings that differ and the metrics side by side, and write a page with the training curves
    overlaid and the confusion matrices next to each other."""
    from ..overview import compare as compare_runs
    from ..report.compare import figure_text, setting_text

    comparison = compare_runs(*run_dirs, out=out)
    for title, rows in (
        ("metrics", [[label, *(figure_text(v, comparison.kinds[label]) for v in values)]
                     for label, values in comparison.figures.items()]),
        ("settings that differ", [[key, *map(setting_text, values)]
                                  for key, values in comparison.settings.items()]),
    ):  # fmt: skip
        table = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
        for i, name in enumerate(["", *comparison.names]):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        if rows:
            print_whole(table)
        else:
            console.print(f"{title}: none", highlight=False)
    console.print(f"comparison page: {comparison.page}", highlight=False)
