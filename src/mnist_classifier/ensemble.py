"""Ensembles: average the class probabilities of several trained runs, optionally over shifted copies of each
image (test-time augmentation), and write a run-like directory that `report` renders like a single run."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import calibrate
from .backends import ensemble_probabilities
from .config import TrainConfig
from .data import load_dataset
from .errors import ConfigError, RunError
from .evaluation import compute_metrics, now, split_arrays
from .inference import DefaultCalibrationWarning, Predictor, load_predictor
from .runs import CONFIG, MODEL, history_summary, new_run_dir, read_json, run_config, write_evaluation
from .utils import write_json
from .verdict_figures import verdict_figures


def member_config(run_dir: Path) -> dict[str, Any]:
    """A member's config.json, checked to be a trained single run."""
    if not (run_dir / CONFIG).is_file():
        raise RunError(f"ensemble member {run_dir}: no config.json; give run directories written by train")
    try:
        config = read_json(run_dir / CONFIG)
        [config["meta"][key] for key in ("input_shape", "num_classes", "class_names")]
    except (RunError, KeyError, TypeError) as e:
        raise RunError(f"ensemble member {run_dir}: unreadable config.json ({e}); train it again") from None
    if not (run_dir / MODEL).is_file():
        raise RunError(f"ensemble member {run_dir}: no model.keras; train it again or leave it out")
    return config


def recorded(run_dir: Path, out: Path) -> str:
    """How the ensemble's config.json names a member: relative to the ensemble folder when inside it (so the two move
    together), else its absolute path."""
    run_dir = run_dir.resolve()
    return str(run_dir.relative_to(out.resolve()) if run_dir.is_relative_to(out.resolve()) else run_dir)


def check_compatible(run_dirs: Sequence[Path], configs: Sequence[dict[str, Any]]) -> None:
    """All members must read the same dataset with the same image shape and classes."""
    first = configs[0]
    for run_dir, config in zip(run_dirs[1:], configs[1:], strict=True):
        for key, what in (("dataset", "dataset"), ("data_dir", "data folder")):
            if config.get(key) != first.get(key):
                raise ConfigError(
                    f"ensemble member {run_dir} was trained on {what} {config.get(key)!r}, but {run_dirs[0]} on"
                    f" {first.get(key)!r}; ensemble runs of one dataset"
                )
        for key in ("input_shape", "num_classes"):
            if config["meta"][key] != first["meta"][key]:
                raise ConfigError(
                    f"ensemble member {run_dir} has {key} {config['meta'][key]}, but {run_dirs[0]} has"
                    f" {first['meta'][key]}; ensemble runs of one dataset"
                )


def build_ensemble(run_dirs: Sequence[Path], out: Path | None, tta: bool = False) -> tuple[Path, dict[str, Any]]:
    """Evaluate the mean of the members' probabilities on the test set; write the ensemble folder (`out`, or
    runs/ensemble-TIME) once the members are checked; return it and its metrics."""
    if len(run_dirs) < 2:
        raise ConfigError("ensemble needs at least two run directories")
    if out is not None and (out / CONFIG).exists():
        raise ConfigError(f"--out: {out} already holds a run; choose another folder")
    configs = [member_config(run_dir) for run_dir in run_dirs]
    check_compatible(run_dirs, configs)
    first = configs[0]
    data = load_dataset(first["dataset"], Path(first["data_dir"]) if first.get("data_dir") else None)
    predictors = []
    for run_dir in run_dirs:
        try:
            predictors.append(Predictor(run_dir))
        except RunError as e:
            raise RunError(f"ensemble member {run_dir}: {e}") from None
    x, y = data.x_test, data.y_test
    own = [predictor.probabilities(x) for predictor in predictors]
    probs = ensemble_probabilities(predictors, x, tta) if tta else np.mean(own, axis=0)
    members = [
        {
            "run": str(run_dir),
            "model": config.get("model"),
            "seed": config.get("seed"),
            "accuracy": float(np.mean(p.argmax(axis=1) == y)),
            "parameters": int(config["meta"].get("parameters", 0)),
            **history_summary(run_dir),
        }
        for run_dir, config, p in zip(run_dirs, configs, own, strict=True)
    ]
    metrics = {"dataset": data.name, "split": "test", **compute_metrics(y, probs, data.class_names)}
    metrics |= {"tta": tta, "members": members}
    splits = {c.validation_split for c in map(run_config, run_dirs)}
    if len(splits) == 1:  # members share a validation split (train --ensemble): the ensemble's accuracy on it
        x_val, y_val = split_arrays(run_config(run_dirs[0]), data, "val")
        metrics["val_accuracy"] = float(np.mean(ensemble_probabilities(predictors, x_val, tta).argmax(axis=1) == y_val))
    metrics |= {
        "train_seconds": sum(m.get("train_seconds", 0.0) for m in members),
        "parameters": sum(m["parameters"] for m in members),
        "evaluated": now(),
    }
    out = new_run_dir(out, "ensemble")
    for member in members:
        member["run"] = recorded(Path(member["run"]), out)
    meta = {key: first["meta"][key] for key in ("input_shape", "num_classes", "class_names")}
    meta |= {
        "created": metrics["evaluated"],
        "parameters": metrics["parameters"],
        "versions": first["meta"].get("versions", {}),
    }
    settings = {"model": "ensemble", "dataset": first["dataset"], "data_dir": first.get("data_dir"), "tta": tta}
    write_json(out / CONFIG, settings | {"members": [m["run"] for m in members], "meta": meta})
    calibrate.calibrate_run(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DefaultCalibrationWarning)  # members of old runs: the figures say so
        metrics["verdicts"] = verdict_figures(load_predictor(out), x, y)
    return out, write_evaluation(out, metrics, data.class_names, (x, y, probs))


def train_ensemble(
    config: TrainConfig,
    out: Path,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Path:
    """Train `config.ensemble` members with seeds seed, seed+1, ... into out/member-N, then ensemble them into out.
    The members share one validation split (the ensemble's seed), so the ensemble's validation accuracy exists."""
    from .evaluation import evaluate_run
    from .training import train

    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out: {out} is not empty; choose a new folder for the ensemble")
    members = []
    for i in range(config.ensemble):
        member = dataclasses.replace(config, seed=config.seed + i, split_seed=config.validation_seed, ensemble=1)
        run_dir = train(member, out / f"member-{i + 1}", verbose, callbacks)
        evaluate_run(run_dir)
        members.append(run_dir)
    build_ensemble(members, out)
    return out
