"""The `tune` command: a hyperparameter search, its progress, its leaderboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import DataDirOpt, RegisterOpt, TrackingOpt, TrainSamplesOpt, console


def tune(
    model: Annotated[str | None, typer.Option(help="Model name: dnn (default: --config's, else dnn).")] = None,
    space: Annotated[
        Path | None, typer.Option(help="Search space TOML (default: the model's shipped space for the sampler).")
    ] = None,
    sampler: Annotated[str, typer.Option(help="grid, random or tpe.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median, hyperband or none (per-epoch validation accuracy).")] = "median",
    trials: Annotated[
        int | None, typer.Option(help="Trials in the study, earlier runs and other workers included.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Start no trial after this many seconds.")] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default MODEL-DATASET-SAMPLER).")] = None,
    storage: Annotated[
        str | None, typer.Option(help="sqlite:///FILE or postgresql://USER@HOST/DB (default OUT/study.db).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/tune-STUDY).")] = None,
    final_train: Annotated[
        bool, typer.Option("--final-train/--no-final-train", help="Retrain the best and test it at the end.")
    ] = True,
    dataset: Annotated[str | None, typer.Option(help="mnist or fashion-mnist.")] = None,
    data_dir: DataDirOpt = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of each trial, unless the space varies them.")] = None,
    train_samples: TrainSamplesOpt = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split, the training and the samplers.")] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads of this worker (default: all cores); workers may differ.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Settings the space leaves fixed (TOML/JSON).")
    ] = None,
    tracking: TrackingOpt = None,
    register: RegisterOpt = None,
) -> None:
    """Search hyperparameters with Optuna; re-running the same command continues the study, and commands started
    at once (on one or many machines, with the same --storage and --study) share it."""
    from .. import api
    from ..config import resolve

    base = resolve(
        config,
        model=model,
        dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
        epochs=epochs,
        train_samples=train_samples,
        seed=seed,
        threads=threads,
    )
    result = api.tune(
        space,
        sampler=sampler,
        trials=trials,
        pruner=pruner,
        timeout=timeout,
        study=study,
        storage=storage,
        out=out,
        final_train=final_train,
        config=base,
        progress=lambda line: console.print(line, highlight=False),
        tracking=tracking,
        register=register,
    )
    table = Table(title=f"study {result.study}: {', '.join(f'{n} {k}' for k, n in result.counts.items() if n)}")
    for column in result.columns[:-2]:
        table.add_column(column.replace("_", " "), justify="left" if column in ("state",) else "right")
    for row in result.rows[:20]:
        table.add_row(*(str(row[c]) for c in result.columns[:-2]))
    console.print(table)
    if result.best is not None and result.best_config is not None:
        console.print(
            f"best: trial {result.best.number}, validation accuracy [bold]{result.best.value:.2%}[/]"
            f" · config {result.best_config}",
            highlight=False,
        )
    if result.final_metrics is not None:
        console.print(
            f"final run: test accuracy [bold]{result.final_metrics['accuracy']:.2%}[/] · {result.final_dir}",
            highlight=False,
        )
    if result.report is not None:
        console.print(f"leaderboard: {result.out / 'leaderboard.csv'} · report: {result.report}", highlight=False)
