"""The `data` commands: a dataset's class counts, its checksums, a grid of its images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import DataDirOpt, DatasetOpt, console


def info(
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    validation_fraction: Annotated[float, typer.Option(help="Share of training images held out.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the validation split.")] = 42,
) -> None:
    """Images per class in the train, validation and test splits."""
    from ..dataset_summary import class_counts

    data, counts = class_counts(dataset, data_dir, validation_fraction, seed)
    table = Table(title=f"{data.name}: {data.x_train.shape[1]}x{data.x_train.shape[2]} images, checksums verified")
    table.add_column("class")
    for name in counts:
        table.add_column(name, justify="right")
    for i, cls in enumerate(data.class_names):
        table.add_row(cls, *(f"{split[i]:,}" for split in counts.values()))
    table.add_row("[bold]total", *(f"[bold]{split.sum():,}" for split in counts.values()))
    console.print(table)
    console.print(f"source: {data.source}", highlight=False)


def verify(dataset: DatasetOpt = "mnist", data_dir: DataDirOpt = None) -> None:
    """Re-check every file from scratch: SHA-256 of the content, IDX structure, counts."""
    from ..data import verify_files

    for path, digest, shape in verify_files(dataset, data_dir):
        console.print(f"ok  {path.name}  {shape}  sha256 {digest}", highlight=False)
    console.print(f"{dataset}: all four files verified")


def show(
    dataset: DatasetOpt = "mnist",
    data_dir: DataDirOpt = None,
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("samples.png"),
    per_class: Annotated[int, typer.Option(help="Samples per class.")] = 10,
    split: Annotated[str, typer.Option(help="train or test.")] = "train",
) -> None:
    """Write a PNG grid of sample images, one row per class."""
    from ..dataset_summary import sample_images

    console.print(f"wrote {sample_images(out, dataset, data_dir, per_class, split)}", highlight=False)
