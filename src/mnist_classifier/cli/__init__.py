"""The `mnist-classifier` command: parse options, call the Python API, print what it returns.

One module per group of commands; this one assembles the Typer app in the order `--help` lists the commands.
Heavy modules (Keras, TensorFlow) are imported inside the commands that run, never at import, so `--help` of
every command answers at once.
"""

from __future__ import annotations

import sys

import typer

from ..errors import MnistClassifierError, SettingError
from . import datasets, handing, models, overview, predicting, runs, tuning

app = typer.Typer(help="Train, evaluate, tune and serve networks that read handwritten digits.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect and verify the datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.command()(runs.train)
app.command()(runs.evaluate)
app.command()(runs.calibrate)
app.command()(tuning.tune)
app.command("ensemble")(runs.ensemble_command)
app.add_typer(overview.app, name="runs")
data_app.command()(datasets.info)
data_app.command()(datasets.verify)
data_app.command()(datasets.show)
app.command()(predicting.predict)
app.command()(handing.serve)
app.command()(handing.export)
app.command()(models.models)


def command_words() -> list[list[str]]:
    """Every command, as the words that name it on the command line (`data info` is two): what a check of every
    command's `--help` walks."""
    words: list[list[str]] = []
    for name, command in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", {})
        words += [[name, sub] for sub in subcommands] if subcommands else [[name]]
    return words


def main() -> None:
    """Entry point: a user's mistake becomes one line on stderr and exit code 2."""
    try:
        app()
    except MnistClassifierError as e:
        typer.echo(f"error: {e.for_command_line() if isinstance(e, SettingError) else e}", err=True)
        sys.exit(2)
