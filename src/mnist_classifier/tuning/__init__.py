"""Hyperparameter search with Optuna over TrainConfig settings, resumable and shared by any number of workers.

A space (a TOML file, or a dict in Python) names settings with a list of values (grid, or choices for random and
TPE) or a range `{low, high, log or step}`. The objective is a trial's best validation accuracy on the seeded
validation split; per-epoch values feed the pruner. Only the final retrain of the best configuration sees the test
set. The study lives in SQLite or PostgreSQL: a re-run continues it, and workers started on one or many machines
share it (see study.py for how).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from ..config import TrainConfig, to_dict
from ..errors import ConfigError
from .results import TuneResult, finish
from .space import SPACES, InlineSpace, grid_points, read_space
from .storage import lock, open_storage, parse_url
from .study import Progress, Worker, fit_trial, make_pruner, open_study

if TYPE_CHECKING:
    from ..mlflow_tracking import Tracker

__all__ = [
    "SPACES",
    "TuneResult",
    "TuneSettings",
    "fit_trial",
    "grid_points",
    "make_pruner",
    "read_space",
    "settings",
    "tune",
]

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "hyperband", "none")


@dataclass
class TuneSettings:
    """What `tune` does; `base` holds every setting the space leaves fixed; `space` is a file or an InlineSpace."""

    base: TrainConfig
    space: Path | InlineSpace
    sampler: str
    pruner: str
    trials: int | None
    timeout: float | None
    study: str
    storage: str
    out: Path
    final_train: bool


def settings(
    base: TrainConfig,
    space: Path | Mapping[str, Any] | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    trials: int | None = None,
    timeout: float | None = None,
    study: str | None = None,
    storage: str | None = None,
    out: Path | None = None,
    final_train: bool = True,
) -> TuneSettings:
    """Check the options and fill in the defaults: the model's shipped space, a study named after model, dataset
    and sampler, runs/tune-STUDY as the folder and a SQLite database in it, so re-running a command continues."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler: unknown value {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise ConfigError(f"--pruner: unknown value {pruner!r}; choose one of {', '.join(PRUNERS)}")
    if trials is not None and trials < 0:
        raise ConfigError(f"--trials must be at least 0, got {trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout must be positive, got {timeout}")
    if space is None:
        space = SPACES / f"{base.model}{'-grid' if sampler == 'grid' else ''}.toml"
        if not space.is_file():
            raise ConfigError(f"--space: no search space ships for model {base.model!r}; give a space file")
    elif isinstance(space, Mapping):
        space = InlineSpace(space)
    study = study or f"{base.model}-{base.dataset}-{sampler}"
    if not study.strip():
        raise ConfigError("--study must not be empty")
    out = out or Path("runs") / f"tune-{study}"
    storage = storage or f"sqlite:///{out / 'study.db'}"
    return TuneSettings(base, space, sampler, pruner, trials, timeout, study, storage, out, final_train)


def tune(s: TuneSettings, progress: Progress = lambda line: None, tracker: Tracker | None = None) -> TuneResult:
    """Run (or continue, or join) the study, then write leaderboard.csv, best_config.toml, the final run and
    report.html, unless another worker of the study is writing them. With a `tracker`, this worker's part is one
    MLflow run with a child run per trial, and the study's files and final run as its artifacts."""
    space = read_space(s.space, s.base, s.sampler)
    url = parse_url(s.storage)
    s.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with lock(url, "open"):
        study = open_study(open_storage(url), s, space)
    plan = {"study": s.study, "sampler": s.sampler, "pruner": s.pruner, "trials": s.trials, "space": dict(space)}
    with tracker.run(f"tune {s.study}", plan | {"base": to_dict(s.base)}) if tracker else nullcontext() as parent:
        Worker(study, s, space, progress, tracker=tracker, parent=parent).run(url)
        result = finish(study, url, s, space, progress)
        if tracker:
            log_study(tracker, parent, result)
    return result


def log_study(tracker: Tracker, parent: str | None, result: TuneResult) -> None:
    """The study's outcome on its parent run: the best validation accuracy, the leaderboard and report, and the
    final run's folder (registered if asked)."""
    if result.best is not None:
        tracker.log_metrics(parent, {"best_val_accuracy": result.best.value, "best_trial": result.best.number})
    tracker.log_files(parent, [result.out / "leaderboard.csv", result.out / "best_config.toml"], "study")
    if result.report is not None:
        tracker.log_files(parent, [result.report], "study")
    if result.final_dir is not None:
        tracker.log_run_folder(parent, result.final_dir)
