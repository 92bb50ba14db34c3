"""The bundled models on the command line: `models` lists them, and a command given no RUN reads with the default."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .. import bundled
from ..runs import CONFIG, MODEL
from .common import console


def chosen(model: Path | None, doing: str = "reading with") -> Path:
    """The folder a command's RUN argument names; without one (or with bundled:NAME), a bundled model's, checked,
    said in one line on stderr."""
    if model is not None and not bundled.is_bundled(model):
        return model
    found = bundled.load(str(model or bundled.DEFAULT))
    given = "no RUN given: " if model is None else ""
    typer.echo(
        f"{given}{doing} the bundled model {found.name} (test accuracy {found.accuracy:.2%};"
        " `mnist-classifier models` lists them)",
        err=True,
    )
    return found.path


def label(given: Path | None, folder: Path) -> str:
    """How a command names its model: as given, or bundled:NAME."""
    return str(given) if given is not None else f"{bundled.PREFIX}{folder.name}"


def names_model(path: Path) -> bool:
    """Whether a path names a model rather than images: bundled:NAME, a .keras file, or a folder that train or
    ensemble wrote."""
    if bundled.is_bundled(path) or path.suffix == ".keras":
        return True
    return path.is_dir() and ((path / CONFIG).is_file() or (path / MODEL).is_file())


def models() -> None:
    """List the trained models that ship with the package: any command that takes a RUN reads bundled:NAME, and
    without a RUN, the first."""
    table = Table(title="bundled models (bundled:NAME; the first is read when no RUN is given)")
    for column in ("name", "test accuracy", "size", "date", "trained by"):
        table.add_column(column, justify="right" if column in ("test accuracy", "size") else "left")
    for model in bundled.every():
        command = " ".join(model.manifest.get("command", []))
        table.add_row(model.name, f"{model.accuracy:.2%}", f"{model.size / 2**20:.1f} MiB", model.date, command)
    console.print(table)
