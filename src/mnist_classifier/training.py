"""Fit a model on a dataset's training split and write the run directory.

The run directory gets config.json first, then model.keras each time validation accuracy
improves (atomically, so a crash leaves the best complete model), then history.csv.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .augment import Augmentation, augment
from .config import TrainConfig, to_dict
from .data import Dataset, load_dataset, split_validation
from .errors import ConfigError
from .models import build_model
from .preprocess import scale
from .runs import CONFIG, MODEL, default_run_dir, write_history
from .schedules import OneCycle
from .utils import atomic_path, write_json


@dataclass
class Splits:
    """Scaled train and validation arrays of one seeded split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def prepare(config: TrainConfig, dataset: Dataset) -> Splits:
    x_train, y_train, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, config.validation_fraction, config.validation_seed
    )
    n = config.train_samples or len(x_train)
    return Splits(scale(x_train[:n]), y_train[:n], scale(x_val), y_val)


def set_threads(threads: int) -> None:
    """Run TensorFlow's ops on `threads` cores; possible only before TensorFlow's first op in the process."""
    if tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        warnings.warn(f"--threads {threads} ignored: TensorFlow already started in this process", stacklevel=2)


def augmentation(config: TrainConfig) -> Augmentation:
    return Augmentation(config.shift, config.rotation, config.scale, config.elastic, config.elastic_sigma)


def training_data(config: TrainConfig, x: np.ndarray, y: np.ndarray, num_classes: int) -> tf.data.Dataset:
    """Shuffled one-hot batches for all epochs, augmented on the fly in parallel with training.

    Each batch is gathered by index and transformed as a whole (one vectorised map call per batch),
    with stateless randomness keyed by (seed, step), so seeded runs repeat exactly."""
    aug = augmentation(config)
    images, labels = tf.constant(x), tf.one_hot(y, num_classes)

    def load(step: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.gather(images, index)
        if aug.active:
            batch = augment(batch, aug, tf.stack([tf.constant(config.seed, tf.int64), step]))
        return batch, tf.gather(labels, index)

    order = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    batches = order.batch(config.batch_size).repeat(config.epochs).enumerate()
    return batches.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def seed_everything(seed: int) -> None:
    """Same seed, same metrics on CPU: seed Python, NumPy and TF, and make TF's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_optimizer(config: TrainConfig, steps: int) -> keras.optimizers.Optimizer:
    lr: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.schedule == "cosine":
        warmup = int(steps * config.warmup_fraction)
        lr = keras.optimizers.schedules.CosineDecay(
            config.learning_rate / 100 if warmup else config.learning_rate,
            max(steps - warmup, 1),
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    elif config.schedule == "onecycle":
        lr = OneCycle(config.learning_rate, steps, int(steps * config.warmup_fraction))
    decay = {"weight_decay": config.weight_decay} if config.weight_decay else {}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr, **decay)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, **decay)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, **decay)
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, **decay)


class BestCheckpoint(keras.callbacks.Callback):
    """Keep the weights of the best validation accuracy, save them atomically, restore them at the end;
    also record each epoch's row of history.csv with its wall time."""

    def __init__(self, path: Path | None) -> None:
        super().__init__()
        self.path = path
        self.best = -1.0
        self.best_weights: list[np.ndarray] | None = None
        self.rows: list[dict[str, float]] = []
        self.started = self.epoch_started = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        now = time.perf_counter()
        row = {k: float(logs.get(k, float("nan"))) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        row |= {"epoch": epoch + 1, "learning_rate": float(self.model.optimizer.learning_rate)}
        row |= {"seconds": now - self.epoch_started, "elapsed": now - self.started}
        self.rows.append(row)
        if row["val_accuracy"] > self.best:
            self.best = row["val_accuracy"]
            self.best_weights = self.model.get_weights()
            if self.path is not None:
                with atomic_path(self.path) as tmp:
                    self.model.save(tmp)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
    }


def train(
    config: TrainConfig,
    out: Path | None = None,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    save_model: bool = True,
) -> Path:
    """Train per `config`, write the run directory and return its path; `callbacks` see every epoch.
    Without `save_model` the run keeps only config.json and history.csv (a tuning trial)."""
    config.validate()
    run_dir = out or default_run_dir(config.model, config.dataset)
    if (run_dir / MODEL).exists():
        raise ConfigError(f"--out: {run_dir} already holds a trained model; choose another folder")
    set_threads(config.threads)
    dataset = load_dataset(config.dataset, Path(config.data_dir) if config.data_dir else None)
    seed_everything(config.seed)
    data = prepare(config, dataset)
    shape = dataset.x_train.shape[1:]
    model = build_model(config, shape, dataset.num_classes, float(data.x_train.mean()), float(data.x_train.std()))
    steps_per_epoch = -(-len(data.x_train) // config.batch_size)
    model.compile(
        optimizer=make_optimizer(config, config.epochs * steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=config.jit_compile,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "parameters": model.count_params(),
        "input_shape": list(shape),
        "num_classes": dataset.num_classes,
        "class_names": list(dataset.class_names),
        "train_size": len(data.x_train),
        "val_size": len(data.x_val),
    }
    write_json(run_dir / CONFIG, to_dict(config) | {"meta": meta})
    checkpoint = BestCheckpoint(run_dir / MODEL if save_model else None)
    stop = (
        keras.callbacks.EarlyStopping("val_accuracy", patience=config.patience, mode="max") if config.patience else None
    )
    model.fit(
        training_data(config, data.x_train, data.y_train, dataset.num_classes),
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=(data.x_val, keras.utils.to_categorical(data.y_val, dataset.num_classes)),
        validation_batch_size=1024,
        shuffle=False,
        callbacks=[checkpoint, *([stop] if stop else []), *callbacks],
        verbose=verbose,
    )
    write_history(run_dir, checkpoint.rows)
    return run_dir
