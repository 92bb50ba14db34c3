"""Evaluate a run's model on a dataset split and write metrics.json, confusion_matrix.csv and
misclassified.npz into the run directory."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, log_loss

from .config import TrainConfig
from .data import Dataset, load_dataset, split_validation
from .errors import ConfigError
from .inference import DefaultCalibrationWarning, Predictor
from .runs import history_summary, run_config, run_meta, write_evaluation
from .verdict_figures import verdict_figures

SPLITS = ("train", "val", "test")


def split_arrays(config: TrainConfig, dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split; train and val are the run's own seeded split."""
    if split not in SPLITS:
        raise ConfigError(f"--split: unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "test":
        return dataset.x_test, dataset.y_test
    x_train, y_train, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, config.validation_fraction, config.validation_seed
    )
    return (x_train, y_train) if split == "train" else (x_val, y_val)


def compute_metrics(y: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, loss, per-class report, confusion matrix and most confused pairs."""
    labels = list(range(len(class_names)))
    predicted = probs.argmax(axis=1)
    matrix = confusion_matrix(y, predicted, labels=labels)
    report = classification_report(
        y, predicted, labels=labels, target_names=list(class_names), output_dict=True, zero_division=0
    )
    per_class = {name: rename(report[name]) for name in class_names}
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    pairs = sorted(zip(*np.nonzero(off), strict=True), key=lambda p: -off[p])[:10]
    return {
        "n": len(y),
        "accuracy": float(np.trace(matrix) / matrix.sum()),
        "loss": float(log_loss(y, np.clip(probs, 1e-7, 1), labels=labels)),
        "errors": int(off.sum()),
        "per_class": per_class,
        "macro_avg": rename(report["macro avg"]),
        "most_confused": [
            {"true": class_names[t], "predicted": class_names[p], "count": int(off[t, p])} for t, p in pairs
        ],
        "confusion_matrix": matrix.tolist(),
    }


def rename(entry: dict[str, float]) -> dict[str, float]:
    return {
        "precision": entry["precision"],
        "recall": entry["recall"],
        "f1": entry["f1-score"],
        "support": int(entry["support"]),
    }


def evaluate_run(
    run_dir: Path, split: str = "test", dataset: str | None = None, data_dir: Path | None = None
) -> dict[str, Any]:
    """Evaluate the run's model on a split and write its evaluation files; return the metrics."""
    config = run_config(run_dir)
    meta = run_meta(run_dir)
    if dataset is None and data_dir is None:
        dataset, data_dir = config.dataset, Path(config.data_dir) if config.data_dir else None
    data = load_dataset(dataset or "custom", data_dir)
    if list(data.x_train.shape[1:]) != meta.get("input_shape") or data.num_classes != meta.get("num_classes"):
        raise ConfigError(
            f"--dataset: {data.name} has {data.num_classes} classes of {data.x_train.shape[1:]} images,"
            f" but the run's model expects {meta.get('num_classes')} of {tuple(meta.get('input_shape', ()))}"
        )
    x, y = split_arrays(config, data, split)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DefaultCalibrationWarning)  # its figures say so: "calibrated": false
        predictor = Predictor(run_dir)
    probs = predictor.probabilities(x)
    metrics = {"dataset": data.name, "split": split, **compute_metrics(y, probs, data.class_names)}
    metrics |= history_summary(run_dir) | {"parameters": predictor.parameters, "evaluated": now()}
    metrics |= training_path(meta)
    metrics["verdicts"] = verdict_figures(predictor, x, y)
    return write_evaluation(run_dir, metrics, data.class_names, (x, y, probs))


def training_path(meta: dict[str, Any]) -> dict[str, Any]:
    """Which path training took, from the run's config.json: its precision, the CPU's bf16/int8 flags and the device
    (runs from before these were recorded trained in float32, on the CPU)."""
    out: dict[str, Any] = {"precision": meta.get("precision", "float32")}
    if "cpu" in meta:
        out["cpu_flags"] = meta["cpu"].get("flags", [])
    if "device" in meta:
        out["device"] = meta["device"]
    if "precision_note" in meta:
        out["precision_note"] = meta["precision_note"]
    return out


def now() -> str:
    """The time of an evaluation, as recorded in metrics.json."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
