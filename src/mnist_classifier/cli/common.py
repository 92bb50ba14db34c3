"""What the command modules share: the console, the common options, option checks, the summary of a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..config import Interval, Rule, check_value

console = Console(soft_wrap=True)
ABOVE_ZERO = Interval(0, None, "neither")

DatasetOpt = Annotated[str, typer.Option("--dataset", help="mnist, fashion-mnist, or a name for --data-dir.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="A folder holding the four IDX files.")]
TrainSamplesOpt = Annotated[
    int | None, typer.Option("--train-samples", help="Train on only this many images (quick experiments).")
]

TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking",
        envvar="MLFLOW_TRACKING_URI",
        help="Also log to this MLflow tracking server (http://HOST:PORT; needs the mlflow extra).",
    ),
]
RegisterOpt = Annotated[
    str | None, typer.Option("--register", help="Register the model in MLflow's registry under this name.")
]


def within(*rules: Rule) -> Callable[[typer.CallbackParam, Any], Any]:
    """A Typer callback that checks an option against declared rules (config.Interval, config.Options): a value
    outside them is one line, `--NAME must ...`, and exit code 2."""

    def check(param: typer.CallbackParam, value: Any) -> Any:
        check_value(param.name or "", value, *rules)
        return value

    return check


def print_summary(metrics: dict[str, Any], run_dir: Path, report: Path) -> None:
    """A run's (or an ensemble's) headline figures, its folder and its report."""
    console.print(
        f"{metrics.get('split', 'test')} accuracy [bold]{metrics['accuracy']:.2%}[/]"
        f" ({metrics['errors']} errors of {metrics['n']:,})"
        f" · loss {metrics['loss']:.4f}"
        + (f" · trained in {metrics['train_seconds']:.1f} s" if "train_seconds" in metrics else "")
    )
    if "val_accuracy" in metrics:
        console.print(f"validation accuracy {metrics['val_accuracy']:.2%} (the members' shared split)")
    console.print(f"run directory: {run_dir}", highlight=False)
    console.print(f"report: {report}", highlight=False)
