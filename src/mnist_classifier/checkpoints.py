"""What training keeps after each epoch: its row of history.csv, the best model, and the state to resume from."""

from __future__ import annotations

import contextlib
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .errors import RunError
from .precision import in_float32
from .runs import MODEL, RESUME, write_history
from .utils import atomic_path


class BestCheckpoint(keras.callbacks.Callback):
    """After each epoch: record its row of history.csv (with its wall time), save the model as model.keras when
    validation accuracy improves, and save the whole training state (model and optimizer) for `--resume`; each file
    is written atomically, in that order. Stops training after `patience` epochs without improvement (0 never).
    `rows` are the epochs of an earlier, interrupted run of the same folder; `whole` is the model to save when
    training fits only a part of it (models.past_deskew)."""

    def __init__(
        self,
        run_dir: Path | None,
        patience: int = 0,
        rows: Sequence[dict[str, float]] = (),
        whole: keras.Model | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.whole = whole
        self.patience = patience
        self.rows: list[dict[str, float]] = list(rows)
        self.started = self.epoch_started = 0.0

    @property
    def best(self) -> float:
        return max((row["val_accuracy"] for row in self.rows), default=-1.0)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self.started:  # a later fit of the same training (the hard epochs) counts the time between them
            self.started = time.perf_counter() - (self.rows[-1]["elapsed"] if self.rows else 0.0)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        now = time.perf_counter()
        row = {k: float(logs.get(k, float("nan"))) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        row |= {"epoch": epoch + 1, "learning_rate": float(self.model.optimizer.learning_rate)}
        row |= {"seconds": now - self.epoch_started, "elapsed": now - self.started}
        improved = row["val_accuracy"] > self.best
        self.rows.append(row)
        if self.run_dir is not None:
            write_history(self.run_dir, self.rows)
            if improved:
                with atomic_path(self.run_dir / MODEL) as tmp, averaged(self.model):
                    in_float32(self.whole or self.model).save(tmp)
            save_state(self.model, self.run_dir / RESUME)
        best_epoch = int(np.argmax([r["val_accuracy"] for r in self.rows])) + 1
        if self.patience and row["epoch"] - best_epoch >= self.patience:
            self.model.stop_training = True


@contextlib.contextmanager
def averaged(model: keras.Model) -> Iterator[None]:
    """Within: the model holds its optimizer's moving average of the weights (with --ema; its raw weights are put
    back on the way out), as the model saved and validated (keras.callbacks.SwapEMAWeights) is."""
    if not model.optimizer.use_ema:
        yield
        return
    raw = [np.array(v) for v in model.trainable_variables]
    model.optimizer.finalize_variable_values(model.trainable_variables)
    try:
        yield
    finally:
        for variable, value in zip(model.trainable_variables, raw, strict=True):
            variable.assign(value)


def state_variables(model: keras.Model) -> list[keras.Variable]:
    """The model's variables (random seeds' states included, which model.save leaves out) and its optimizer's (its
    step too): everything training needs to go on as if never stopped."""
    return [*model.variables, *model.optimizer.variables]


def save_state(model: keras.Model, path: Path) -> None:
    """The training state in one file written atomically, each variable under its path (as "dense/kernel"), so that
    a Keras that lists them in another order still restores each one into its own place."""
    values: dict[str, Any] = {v.path: np.asarray(v) for v in state_variables(model)}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **values)


def restore_state(model: keras.Model, path: Path) -> None:
    """Load what save_state wrote into a model built and compiled from the same config (in a fresh Keras session, so
    that its variables have the paths they were saved under). A state saved by position (arr_0, arr_1, ...: runs
    from before the paths) is restored in the order the variables are listed."""
    model.optimizer.build(model.trainable_variables)
    variables = state_variables(model)
    try:
        with np.load(path, allow_pickle=False) as saved:
            by_position = "arr_0" in saved.files
            keys = [f"arr_{i}" if by_position else v.path for i, v in enumerate(variables)]
            strange = sorted(set(keys) ^ set(saved.files))
            if strange:
                raise RunError(
                    f"{path}: the training state does not fit the model ({strange[0]!r} is in one, not the other);"
                    " train the run again"
                )
            for variable, key in zip(variables, keys, strict=True):
                variable.assign(saved[key])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise RunError(f"{path}: unreadable training state ({e}); train the run again") from None
