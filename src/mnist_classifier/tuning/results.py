"""A study's results: leaderboard.csv, best_config.toml and the final retrain, written by one worker at a time.

The worker that holds the study's final lock writes them (and report.html); a worker arriving meanwhile says who
is writing them and stops. The final retrain of a configuration happens once per study: a later worker finds it
recorded in the study.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from ..config import TrainConfig, read_config_file, to_dict
from ..evaluation import evaluate_run
from ..report import percent, write_report
from ..tracking import log_evaluation
from ..training import train
from ..utils import write_text
from .report import write_tuning_report
from .space import Space, trial_config
from .storage import lock
from .study import NO_POINT, NOT_FINGERPRINTED, WORKER, Progress, trial_value

if TYPE_CHECKING:
    from . import TuneSettings

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def evaluations(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials, less those that found no grid point left to evaluate (a race at the grid's end)."""
    return [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("reason") != NO_POINT]


def leaderboard(trials: list[FrozenTrial], space: Space) -> list[dict[str, Any]]:
    """Finished trials, best value first (pruned ones by the best value they reached), failed ones last."""
    done = [t for t in trials if t.state in FINISHED]
    done.sort(key=lambda t: (trial_value(t) is None, -(trial_value(t) or 0.0), t.number))
    rows = []
    for rank, t in enumerate(done, 1):
        value = trial_value(t)
        rows.append(
            {"rank": rank if value is not None else "", "trial": t.number, "state": t.state.name.lower()}
            | {"val_accuracy": "" if value is None else round(value, 6)}
            | {"epochs": t.user_attrs.get("epochs", ""), "seconds": t.user_attrs.get("seconds", "")}
            | {n: t.params.get(n, "") for n in space}
            | {"worker": t.user_attrs.get("worker", ""), "reason": t.user_attrs.get("reason", "")}
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_best_config(path: Path, config: TrainConfig, study: str, trial: FrozenTrial) -> None:
    import tomli_w

    header = (
        f"# Best configuration of study {study!r}: trial {trial.number},"
        f" validation accuracy {percent(trial.value or 0)}."
        f"\n# Train it with: mnist-classifier train --config {path.name}\n"
    )
    write_text(path, header + tomli_w.dumps({k: v for k, v in to_dict(config).items() if v is not None}))


def final_run(config: TrainConfig, out: Path, progress: Progress) -> tuple[Path, dict[str, Any]]:
    """Retrain the best configuration with its model and evaluate it on the test set, into OUT/final; a finished
    final run of the same configuration is kept. The folder appears only once training and evaluation are done."""
    final = out / "final"
    if (final / "metrics.json").is_file() and read_config_file(final / "config.json") == to_dict(config):
        if not (final / "report.html").is_file():
            write_report(final)
        return final, json.loads((final / "metrics.json").read_text())
    progress("retraining the best configuration and evaluating it on the test set")
    staging = out / f".final-{uuid.uuid4().hex[:8]}"
    try:
        train(config, staging, verbose=0)
        evaluate_run(staging, "test")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_report(final)
    log_evaluation(final)
    return final, json.loads((final / "metrics.json").read_text())


@dataclass
class TuneResult:
    """What a `tune` run leaves: the leaderboard, the best trial and the final run's test metrics; `report` is None
    when another worker is writing the results (`writer` names it)."""

    study: str
    out: Path
    rows: list[dict[str, Any]]
    counts: dict[str, int]
    best: FrozenTrial | None
    best_config: Path | None
    final_dir: Path | None
    final_metrics: dict[str, Any] | None
    report: Path | None
    columns: list[str]
    writer: str = WORKER


def finish(study: optuna.Study, url: sqlalchemy.URL, s: TuneSettings, space: Space, progress: Progress) -> TuneResult:
    """Write leaderboard.csv, best_config.toml, the final run and report.html, unless another worker is doing so."""
    trials = evaluations(study)
    rows = leaderboard(trials, space)
    columns = ["rank", "trial", "state", "val_accuracy", "epochs", "seconds", *space, "worker", "reason"]
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value or 0.0, -t.number)) if complete else None
    result = TuneResult(s.study, s.out, rows, counts, best, None, None, None, None, columns)
    name = "final-" + hashlib.sha256(s.study.encode()).hexdigest()[:12]
    with lock(url, name, wait=False) as mine:
        if not mine:
            writer = study.user_attrs.get("writer", {})
            result.writer, where = writer.get("worker", "another worker"), writer.get("out", "its output folder")
            progress(f"{result.writer} is writing this study's results into {where}; this worker is done")
            return result
        study.set_user_attr("writer", {"worker": WORKER, "out": str(s.out)})
        write_csv(s.out / "leaderboard.csv", rows, columns)
        if best is not None:
            config = trial_config(s.base, space, best.params)
            result.best_config = s.out / "best_config.toml"
            write_best_config(result.best_config, config, s.study, best)
            done = study.user_attrs.get("final", {})
            same = {k: v for k, v in to_dict(config).items() if k not in NOT_FINGERPRINTED}
            elsewhere = done.get("config") == same and done["dir"] != str((s.out / "final").resolve())
            if s.final_train and elsewhere:
                progress(f"{done['worker']} retrained the best configuration already, into {done['dir']}")
            elif s.final_train:
                result.final_dir, result.final_metrics = final_run(config, s.out, progress)
                record = {"config": same, "dir": str(result.final_dir.resolve()), "worker": WORKER}
                study.set_user_attr("final", record)
        result.report = write_tuning_report(study, s, rows, columns, best, result.final_metrics)
    return result
