"""TensorBoard logs in a run's tensorboard/ folder: Keras' callback each epoch, the evaluation's figures after it.

`tensorboard --logdir runs/` then shows every run side by side: train/ and validation/ hold loss, accuracy and
learning rate per epoch (Keras' own `TensorBoard` callback), evaluation/ the test metrics and the verdict figures as
scalars, the report's confusion matrix and the most confident mistakes as images, at the run's last epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .runs import CONFIG, TENSORBOARD, read_json, read_metrics, read_misclassified

EVALUATION = "evaluation"
CONFUSION_FIGURE = "confusion_matrix.png"  # drawn by the report, which runs before log_evaluation
MISTAKES_SHOWN = 8
ZOOM = 4  # 28x28 digits shown at 112x112, so they read without TensorBoard's "actual size" toggle


def epoch_logger(run_dir: Path) -> keras.callbacks.TensorBoard:
    """Keras' TensorBoard callback for the run's folder: epoch scalars only (no weight histograms, graph, images or
    profile, which would cost training time and disk)."""
    return keras.callbacks.TensorBoard(
        str(run_dir / TENSORBOARD), histogram_freq=0, write_graph=False, profile_batch=0, update_freq="epoch"
    )


def numbers(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of nested dicts, keyed by their path ("held_out/letters/auroc"); lists, strings and
    booleans (curves, names, flags) and image counts ("n") are left out."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key == "n":
            continue
        if isinstance(value, dict):
            out |= numbers(value, f"{name}/")
        elif isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
            out[name] = float(value)
    return out


def evaluation_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """What an evaluation measured, by tag: accuracy, loss, errors and macro F1, and the verdict figures."""
    out: dict[str, float] = {key: float(metrics[key]) for key in ("accuracy", "loss", "errors") if key in metrics}
    if "macro_avg" in metrics:
        out["macro_f1"] = float(metrics["macro_avg"]["f1"])
    return out | numbers(metrics.get("verdicts") or {}, "verdicts/")


def log_evaluation(run_dir: Path) -> Path:
    """Log the run's evaluation (metrics.json, the report's confusion matrix, misclassified.npz) to
    tensorboard/evaluation/ at its last epoch, tags prefixed by what was evaluated ("test", "fashion-mnist test");
    return that folder."""
    metrics = read_metrics(run_dir)
    config = read_json(run_dir / CONFIG)
    names = [str(name) for name in metrics["per_class"]]  # the evaluated dataset's classes, in order
    split = str(metrics.get("split", "test"))
    own = metrics.get("dataset") in (None, config.get("dataset"))
    prefix = split if own else f"{metrics['dataset']} {split}"
    step = max(int(metrics.get("epochs", 1)) - 1, 0)
    folder = run_dir / TENSORBOARD / EVALUATION
    writer = tf.summary.create_file_writer(str(folder))
    try:
        with writer.as_default(step=step):
            for tag, value in evaluation_scalars(metrics).items():
                tf.summary.scalar(f"{prefix}/{tag}", value)
            figure = run_dir / CONFUSION_FIGURE
            if figure.is_file():
                image = tf.image.decode_png(figure.read_bytes(), channels=3)[None]
                tf.summary.image(f"{prefix}/confusion_matrix", image, description="The report's confusion matrix.")
            log_mistakes(read_misclassified(run_dir), names, f"{prefix}/mistakes")
    finally:
        writer.close()
    return folder


def log_mistakes(wrong: dict[str, np.ndarray], names: list[str], tag: str) -> None:
    """The most confident mistakes as images, their true and predicted classes in the description."""
    shown = min(MISTAKES_SHOWN, len(wrong["images"]))
    if not shown or wrong["images"].ndim != 3:
        return
    images = np.repeat(np.repeat(wrong["images"][:shown], ZOOM, axis=1), ZOOM, axis=2)[..., None]
    captions = [
        f"{i + 1}. true {names[t]} → {names[p]} ({c:.0%})"
        for i, (t, p, c) in enumerate(zip(wrong["true"][:shown], wrong["predicted"], wrong["confidence"], strict=False))
    ]
    description = f"The {shown} most confident of {len(wrong['images'])} mistakes, most confident first:  \n"
    tf.summary.image(tag, images.astype(np.uint8), max_outputs=shown, description=description + "  \n".join(captions))
