"""Fit a model on a dataset's training split and write the run directory.

The run directory gets config.json first; after each epoch history.csv, model.keras when validation accuracy
improved, and the whole training state for `--resume` (each atomically, so a crash leaves complete files and a
resumable run), and the epoch's TensorBoard scalars (tracking); at the end config.json records that training finished.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import platform
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import calibrate, hardware
from .augment import Augmentation, augment
from .checkpoints import BestCheckpoint, restore_state
from .config import TrainConfig
from .data import Dataset, load_dataset, split_validation, synthetic
from .data.datasets import DIGITS
from .layers import deskewed
from .models import build_model, past_deskew
from .precision import chosen_precision
from .preprocess import scale
from .runs import (
    HARD,
    RESUME,
    history_rows,
    mark_finished,
    new_run_dir,
    remove_partial_files,
    run_config,
    run_meta,
    training_finished,
    write_config,
    write_history,
)
from .tracking import epoch_logger
from .utils import atomic_path, set_threads
from .verdicts import CALIBRATION

TRAINING_STYLES_SEED = 0  # calibration draws its digits in other styles with seed 1, the benchmark with 20
OUTLIER_POOL = 10_000  # non-digits drawn for outlier exposure (fewer for a small training set)


@dataclass
class Splits:
    """Scaled train and validation arrays of one seeded split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def prepare(config: TrainConfig, dataset: Dataset) -> Splits:
    """The seeded split, scaled; for a digit dataset, `config.photographed` of its training digits photographed and
    prepared, the next `config.variants` of them in other styles (`in_styles`), and `config.printed_digits` printed
    ones added (at most one per 10)."""
    x_train, y_train, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, config.validation_fraction, config.validation_seed
    )
    n = config.train_samples or len(x_train)
    x_train, y_train = x_train[:n], y_train[:n]
    photographed = round(len(x_train) * config.photographed) if of_digits(dataset) else 0
    if photographed:
        x_train = np.concatenate([synthetic.photographed(x_train[:photographed]), x_train[photographed:]])
    styled = min(round(len(x_train) * config.variants), len(x_train) - photographed) if of_digits(dataset) else 0
    if styled:
        x_train = x_train.copy()
        x_train[photographed : photographed + styled] = in_styles(x_train[photographed : photographed + styled])
    printed = min(config.printed_digits, len(x_train) // 10) if of_digits(dataset) else 0
    if printed:
        images, labels = synthetic.printed_digits(printed)
        x_train, y_train = np.concatenate([x_train, images]), np.concatenate([y_train, labels.astype(y_train.dtype)])
    return Splits(scale(x_train), y_train, scale(x_val), y_val)


def in_styles(digits: np.ndarray) -> np.ndarray:
    """Digits each drawn in one of the styles users bring (synthetic.VARIANTS but the plain rendering and photographed,
    which the photographed share covers), the kinds in turn, and prepared; one the preparation loses stays as it was."""
    kinds = [kind for kind in synthetic.VARIANTS if kind not in ("plain", "photographed")]
    out = digits.copy()
    for i, kind in enumerate(kinds):
        part = digits[i :: len(kinds)]
        images, found = synthetic.variant(part, kind, seed=TRAINING_STYLES_SEED)
        out[i :: len(kinds)] = np.where(found[:, None, None], images, part)
    return out


def of_digits(dataset: Dataset) -> bool:
    """Whether the dataset is of the ten digits in MNIST's 28x28: the one our non-digits and printed digits fit."""
    return tuple(dataset.class_names) == DIGITS and dataset.x_train.shape[1:] == (28, 28)


def augmentation(config: TrainConfig) -> Augmentation:
    return Augmentation(config.shift, config.rotation, config.scale, config.elastic, config.elastic_sigma)


def training_data(
    config: TrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    start_epoch: int = 0,
    outliers: np.ndarray | None = None,
    first_step: int = 0,
    epochs: int | None = None,
) -> tf.data.Dataset:
    """Shuffled one-hot batches for the epochs from `start_epoch` on, augmented on the fly in parallel with training.

    Each batch is gathered by index and transformed as a whole (one vectorised map call per batch),
    with stateless randomness keyed by (seed, step), so seeded runs repeat exactly, resumed ones included
    (the batches of the epochs done are skipped as indices, before any image is touched). With `outliers`
    (non-digits), each batch also gets `config.outliers` times its size of them, drawn at random, whose target
    is the same probability for every class (outlier exposure). `first_step` numbers the first batch and `epochs`
    (all by default) is the epoch the batches end with: the full epochs' stop where the hard ones take over, whose
    batches go on numbering from there. The feed runs `config.threads` batches at a time and keeps two ready, without
    tf.data's autotuning, whose model thread held up the end of each feed by up to a minute (it sleeps up to 60 s
    between rounds, and an iterator waits for it when dropped: between the full and the hard epochs, 4 of 12 runs
    lost 12-60 s)."""
    aug = augmentation(config)
    images, labels = tf.constant(x), tf.one_hot(y, num_classes)
    extra = round(config.batch_size * config.outliers) if outliers is not None and len(outliers) else 0
    pool = tf.constant(outliers if extra else np.zeros((1, *x.shape[1:]), np.float32))
    uniform = tf.fill([extra, num_classes], 1 / num_classes)

    def load(step: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        seed = tf.stack([tf.constant(config.seed, tf.int64), step])
        batch, targets = tf.gather(images, index), tf.gather(labels, index)
        if extra:
            pick = tf.random.stateless_uniform([extra], -seed - 1, maxval=len(pool), dtype=tf.int64)
            batch = tf.concat([batch, tf.gather(pool, pick)], 0)
            targets = tf.concat([targets, uniform], 0)
        if aug.active:
            batch = augment(batch, aug, seed)
        return batch, targets

    order = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    steps = -(-len(x) // config.batch_size)
    batches = (
        order.batch(config.batch_size).repeat(epochs or config.epochs).enumerate(first_step).skip(start_epoch * steps)
    )
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.map(load, num_parallel_calls=config.threads).prefetch(2).with_options(options)


def late_epochs(config: TrainConfig) -> int:
    """How many of the last epochs train on the hard examples: --hard-epochs, the first epoch always excepted."""
    return min(config.hard_epochs, config.epochs - 1)


def hard_count(n: int, config: TrainConfig) -> int:
    """How many of n training digits the hard epochs keep."""
    return max(1, round(n * config.hard_fraction))


def hard_examples(
    run_dir: Path, model: keras.Model, x: np.ndarray, y: np.ndarray, pool: np.ndarray | None, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """The indices of the training digits the hard epochs train on, those `model` gives the lowest probability to
    their own class, and of the non-digits it gives the highest top probability to (those it most takes for a
    digit), `hard_fraction` of each, in their order; read from the run folder when an earlier start of this run
    chose them, else chosen and saved there (atomically) so that a resumed run trains on the same ones."""
    path = run_dir / HARD
    if path.is_file():
        with np.load(path) as saved:
            return saved["digits"], saved["nondigits"] if pool is not None else None
    started = time.perf_counter()
    sure = model.predict(x, batch_size=1024, verbose=0)[np.arange(len(y)), y]
    digits = np.sort(np.argsort(sure, kind="stable")[: hard_count(len(x), config)])
    nondigits = None
    if pool is not None:
        taken = model.predict(pool, batch_size=1024, verbose=0).max(axis=1)
        nondigits = np.sort(np.argsort(-taken, kind="stable")[: hard_count(len(pool), config)])
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, digits=digits, nondigits=np.arange(0) if nondigits is None else nondigits)
    n = late_epochs(config)
    late = "the last epoch" if n == 1 else f"the last {n} epochs"
    of_pool = "" if pool is None or nondigits is None else f" and {len(nondigits):,} of {len(pool):,} non-digits"
    print(
        f"note: {late} train on the hardest {len(digits):,} of {len(x):,} digits"
        f"{of_pool} (chosen in {time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )
    return digits, nondigits


def epochs_done(iterations: int, full: int, steps: int, hard_steps: int) -> int:
    """Epochs a training state has done: `full` epochs of `steps` steps, then hard ones of `hard_steps`."""
    return iterations // steps if iterations <= full * steps else full + (iterations - full * steps) // hard_steps


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
    decay: dict[str, Any] = {"weight_decay": config.weight_decay} if config.weight_decay else {}
    if config.ema:
        decay |= {"use_ema": True, "ema_momentum": config.ema}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr, **decay)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, **decay)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, **decay)
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, **decay)


class DigitAccuracy(keras.metrics.Mean):
    """Accuracy over the digits of a batch: the non-digits of outlier exposure (equal targets) have no right class."""

    def __init__(self, name: str = "accuracy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        ops = keras.ops
        labelled = ops.cast(ops.max(y_true, axis=-1) > 0.5, "float32")
        hit = ops.cast(ops.argmax(y_true, axis=-1) == ops.argmax(y_pred, axis=-1), "float32")
        super().update_state(hit, sample_weight=labelled)


def outlier_pool(config: TrainConfig, dataset: Dataset, data: Splits) -> np.ndarray | None:
    """The non-digits shown in training (in [0, 1]) for a digit dataset with outlier exposure on: the drawn pool, and
    a fifth as many blends of two training digits."""
    if not config.outliers or not of_digits(dataset):
        return None
    size = min(OUTLIER_POOL, max(len(data.x_train) // 2, 1))
    mixed = synthetic.blends(data.x_train, data.y_train, size // 5, config.seed)
    return np.concatenate([scale(synthetic.training_pool(size)), mixed])


def training_device() -> dict[str, Any]:
    """What TensorFlow trains on (it places the model on the first GPU it sees, else the CPU): the kind, the name
    (the GPU's as its driver reports it, else the CPU's model name) and how many GPUs it sees."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return {"type": "CPU", "name": hardware.processor(), "gpus": 0}
    details = tf.config.experimental.get_device_details(gpus[0])
    return {"type": "GPU", "name": details.get("device_name", gpus[0].name), "gpus": len(gpus)}


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
    run_dir = new_run_dir(out, config.model, config.dataset)
    return fit(config, run_dir, verbose, callbacks, save_model)


def resume(run_dir: Path, verbose: int | str = "auto") -> Path:
    """Continue a run that was interrupted (killed, out of power) from its last completed epoch: model, optimizer
    state and schedule step, and the data order and augmentation of the epochs left are those it would have had.
    A run killed after its training gets the calibration training would have fitted last, if it lacks it."""
    config = run_config(run_dir)
    if not training_finished(run_dir):
        return fit(config, run_dir, verbose, (), True)
    if not (run_dir / CALIBRATION).is_file():
        calibrate.calibrate_run(run_dir)
    return run_dir


def fit(
    config: TrainConfig,
    run_dir: Path,
    verbose: int | str,
    callbacks: Sequence[keras.callbacks.Callback],
    save_model: bool,
) -> Path:
    if not set_threads(config.threads):
        warnings.warn(f"--threads {config.threads} ignored: TensorFlow already started in this process", stacklevel=2)
    dataset = load_dataset(config.dataset, Path(config.data_dir) if config.data_dir else None)
    keras.backend.clear_session()  # fresh layer names: the paths that key the saved training state
    seed_everything(config.seed)
    data = prepare(config, dataset)
    shape = dataset.x_train.shape[1:]
    steps_per_epoch = -(-len(data.x_train) // config.batch_size)
    resuming = (run_dir / RESUME).is_file()
    precision, note = chosen_precision(config)
    if resuming:  # the model it was, whatever this machine would choose
        precision, note = run_meta(run_dir).get("precision", "float32"), None
    if note:
        print(f"note: {note}", file=sys.stderr)  # one line, as the drawing of the synthetic pools says its own
    built = dataclasses.replace(config, precision=precision)
    model = build_model(built, shape, dataset.num_classes, float(data.x_train.mean()), float(data.x_train.std()))
    # nothing moves a digit between the feed and the deskew layer: straighten every image once, not in every step
    # (a DNN step 36 -> 22 ms, benchmarks/levers.py)
    once = config.deskew and not augmentation(config).active
    trainee = past_deskew(model) if once else model
    full = config.epochs - late_epochs(config)  # epochs on every example; the hard ones after them
    hard_steps = -(-hard_count(len(data.x_train), config) // config.batch_size)
    trainee.compile(
        optimizer=make_optimizer(config, full * steps_per_epoch + (config.epochs - full) * hard_steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[DigitAccuracy()],
        jit_compile=config.jit_compile,
    )
    rows: list[dict[str, float]] = []
    if resuming:
        remove_partial_files(run_dir)
        restore_state(trainee, run_dir / RESUME)
        iterations = int(trainee.optimizer.iterations.numpy())
        rows = history_rows(run_dir)[: epochs_done(iterations, full, steps_per_epoch, hard_steps)]
    else:
        meta = {
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": versions(),
            "parameters": model.count_params(),
            "input_shape": list(shape),
            "num_classes": dataset.num_classes,
            "class_names": list(dataset.class_names),
            "train_size": len(data.x_train),
            "val_size": len(data.x_val),
            "precision": precision,
            "cpu": hardware.summary(),
            "device": training_device(),
        }
        if note:
            meta["precision_note"] = note
        write_config(run_dir, config, meta | {"status": "training"})
    checkpoint = BestCheckpoint(run_dir if save_model else None, config.patience, rows, model if once else None)
    x_train, x_val, pool = data.x_train, data.x_val, outlier_pool(config, dataset, data)
    if once:
        x_train, x_val = deskewed(x_train), deskewed(x_val)
        pool = None if pool is None else deskewed(pool)
    classes, done = dataset.num_classes, len(rows)
    fitting: dict[str, Any] = {
        "validation_data": (x_val, keras.utils.to_categorical(data.y_val, classes)),
        "validation_batch_size": 1024,
        "shuffle": False,
        "callbacks": [
            checkpoint,
            *([keras.callbacks.SwapEMAWeights()] if config.ema else []),
            epoch_logger(run_dir),
            *callbacks,
        ],
        "verbose": verbose,
    }
    if done < full:
        feed = training_data(config, x_train, data.y_train, classes, done, pool, epochs=full)
        trainee.fit(feed, initial_epoch=done, epochs=full, steps_per_epoch=steps_per_epoch, **fitting)
    if full < config.epochs and not trainee.stop_training:  # not stopped early by --patience
        digits, nondigits = hard_examples(run_dir, trainee, x_train, data.y_train, pool, config)
        hard_pool = None if pool is None or nondigits is None else pool[nondigits]
        late = max(done - full, 0)
        feed = training_data(
            config, x_train[digits], data.y_train[digits], classes, late, hard_pool, full * steps_per_epoch
        )
        trainee.fit(feed, initial_epoch=full + late, epochs=config.epochs, steps_per_epoch=hard_steps, **fitting)
    write_history(run_dir, checkpoint.rows)
    mark_finished(run_dir)
    if save_model:
        calibrate.calibrate_run(run_dir)
    return run_dir
