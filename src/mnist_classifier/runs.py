"""The run folder: its files, reading and writing them, its ensemble members, and loading its model safely.

Every command that takes a RUN goes through here. A run folder holds config.json (settings and meta),
model.keras, history.csv, metrics.json, confusion_matrix.csv, misclassified.npz, figures, report.html and
tensorboard/ (TensorBoard's event files); an ensemble folder holds the same files but model.keras, and lists its
member runs in config.json.
Files are written atomically (utils.atomic_path), so an interrupted run never leaves a half-written one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .config import TrainConfig, read_config_file, to_dict
from .errors import ConfigError, RunError
from .utils import atomic_path, create_folder, write_json, write_text

if TYPE_CHECKING:
    import keras

CONFIG, MODEL, HISTORY, METRICS = "config.json", "model.keras", "history.csv", "metrics.json"
RESUME = "resume.npz"  # the whole training state after the last completed epoch, while training runs
HARD = "hard.npz"  # which examples the hard epochs train on (--hard-epochs), while training runs
CONFUSION, MISCLASSIFIED = "confusion_matrix.csv", "misclassified.npz"
TENSORBOARD = "tensorboard"  # the event files of `tensorboard --logdir`: train/ and validation/ per epoch, evaluation/
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds", "elapsed")
T = TypeVar("T")


def read(path: Path, reader: Callable[[Path], T]) -> T:
    """Read one run file, turning any failure into a one-line RunError that names it."""
    try:
        return reader(path)
    except FileNotFoundError:
        raise RunError(f"{path} is missing; train or evaluate this run again to write it") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(f"{path} is unreadable ({reason}); train or evaluate this run again to rewrite it") from None


def _json_object(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def read_json(path: Path, missing_ok: bool = False) -> dict[str, Any]:
    """A run file's JSON object; with `missing_ok`, an absent file reads as {}."""
    if missing_ok and not path.exists():
        return {}
    return read(path, _json_object)


def _metrics(path: Path) -> dict[str, Any]:
    metrics = _json_object(path)
    missing = [key for key in ("accuracy", "n", "per_class") if key not in metrics]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    return metrics


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's evaluation (metrics.json), checked to hold accuracy, count and per-class figures."""
    return read(run_dir / METRICS, _metrics)


def write_history(run_dir: Path, rows: Sequence[dict[str, float]]) -> None:
    """history.csv: one row per epoch, HISTORY_COLUMNS in order."""
    lines = [",".join(HISTORY_COLUMNS)]
    lines += [",".join(f"{row[c]:.6g}" for c in HISTORY_COLUMNS) for row in rows]
    write_text(run_dir / HISTORY, "\n".join(lines) + "\n")


def history_rows(run_dir: Path) -> list[dict[str, float]]:
    """history.csv as one dict per epoch; [] without one."""
    history = read_history(run_dir) or {}
    return [dict(zip(history, map(float, values), strict=True)) for values in zip(*history.values(), strict=True)]


def _history(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = set(HISTORY_COLUMNS) - {"learning_rate"} - set(rows[0] if rows else ())
    if not rows or missing:
        raise ValueError(f"no epochs, or missing columns {sorted(missing)}")
    return {key: np.array([float(row[key] or "nan") for row in rows]) for key in rows[0]}


def read_history(run_dir: Path) -> dict[str, np.ndarray] | None:
    """Each column of history.csv as an array; None for a folder without one (an ensemble)."""
    path = run_dir / HISTORY
    return read(path, _history) if path.exists() else None


def history_summary(run_dir: Path) -> dict[str, Any]:
    """Training time, epochs and the best epoch by validation accuracy; {} without a history."""
    history = read_history(run_dir)
    if history is None:
        return {}
    best = int(np.argmax(np.nan_to_num(history["val_accuracy"], nan=-1)))
    return {
        "train_seconds": float(history["elapsed"][-1]),
        "epochs": len(history["epoch"]),
        "best_epoch": int(history["epoch"][best]),
        "best_val_accuracy": float(history["val_accuracy"][best]),
    }


def write_confusion(run_dir: Path, matrix: list[list[int]], class_names: Sequence[str]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["true\\predicted", *class_names])
    for name, row in zip(class_names, matrix, strict=True):
        writer.writerow([name, *row])
    write_text(run_dir / CONFUSION, out.getvalue())


def _confusion(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    matrix = np.array([[int(v) for v in row[1:]] for row in rows], dtype=np.int64)
    if matrix.shape != (len(header) - 1, len(header) - 1):
        raise ValueError(f"expected {len(header) - 1} rows of {len(header) - 1} counts")
    return header[1:], matrix


def read_confusion(run_dir: Path) -> tuple[list[str], np.ndarray]:
    """The class names and the confusion matrix (true classes in rows)."""
    return read(run_dir / CONFUSION, _confusion)


def write_misclassified(run_dir: Path, images: np.ndarray, y: np.ndarray, probs: np.ndarray) -> None:
    """The wrongly predicted images, most confident first, with their true and predicted classes."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")]
    with atomic_path(run_dir / MISCLASSIFIED) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            images=images[order],
            true=y[order].astype(np.int64),
            predicted=predicted[order].astype(np.int64),
            confidence=probs[order, predicted[order]].astype(np.float32),
            index=order.astype(np.int64),
        )


def _misclassified(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in ("images", "true", "predicted", "confidence", "index")}


def read_misclassified(run_dir: Path) -> dict[str, np.ndarray]:
    return read(run_dir / MISCLASSIFIED, _misclassified)


def write_evaluation(
    run_dir: Path,
    metrics: dict[str, Any],
    class_names: Sequence[str],
    evaluated: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Write what an evaluation leaves: the confusion matrix, the mistakes among the (images, labels, probabilities)
    evaluated, and metrics.json; return the metrics without the matrix."""
    metrics = dict(metrics)
    images, y, probs = evaluated
    write_confusion(run_dir, metrics.pop("confusion_matrix"), class_names)
    write_misclassified(run_dir, images, y, probs)
    write_json(run_dir / METRICS, metrics)
    return metrics


def new_run_dir(out: Path | None, *name: str) -> Path:
    """Create the folder of a new run: `out`, which must not hold a run yet, or runs/NAME-TIME (with -2, -3, ... when
    taken: the folder is created atomically, so runs started in the same second never share one)."""
    if out is not None:
        if (out / CONFIG).exists():
            raise ConfigError(
                f"--out: {out} already holds a run; choose another folder (an interrupted run continues with --resume)"
            )
        create_folder(out, "--out")
        return out
    base = Path("runs") / f"{'-'.join(name)}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    for n in itertools.count(1):
        path = base.with_name(f"{base.name}-{n}") if n > 1 else base
        try:
            create_folder(path, "--out", exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def copy_run(source: Path, target: Path, leave: Sequence[str] = ()) -> None:
    """Copy a run folder's files (and member folders) into the empty folder `target`, each under a temporary name
    first, all but the names in `leave`."""
    for item in sorted(source.iterdir()):
        if item.name in leave or item.name.startswith("."):
            continue
        if item.is_dir():
            partial = target / f".{item.name}.partial"
            shutil.copytree(item, partial)
            partial.rename(target / item.name)
        else:
            with atomic_path(target / item.name) as tmp:
                shutil.copyfile(item, tmp)


def write_config(run_dir: Path, config: TrainConfig, meta: dict[str, Any]) -> None:
    write_json(run_dir / CONFIG, to_dict(config) | {"meta": meta})


def training_finished(run_dir: Path) -> bool:
    """Whether training wrote its last epoch (runs from before the status was recorded count as finished)."""
    return run_meta(run_dir).get("status", "finished") == "finished"


def mark_finished(run_dir: Path) -> None:
    """Record that training ended, then drop the state kept for --resume."""
    config = read_json(run_dir / CONFIG)
    config["meta"]["status"] = "finished"
    write_json(run_dir / CONFIG, config)
    (run_dir / RESUME).unlink(missing_ok=True)
    (run_dir / HARD).unlink(missing_ok=True)


def remove_partial_files(run_dir: Path) -> None:
    """The temporary files of writes that a kill interrupted (utils.atomic_path names them .NAME.XXXX.tmp.EXT)."""
    for path in run_dir.glob(".*.tmp*"):
        path.unlink(missing_ok=True)


def ensemble_members(path: Path) -> list[Path] | None:
    """The member run folders of an ensemble folder, or None for anything else. A member is recorded relative to
    the ensemble folder when inside it, else absolute; one not found there is looked for inside the folder by name,
    never relative to the current directory."""
    config = read_json(path / CONFIG, missing_ok=True) if path.is_dir() else {}
    if config.get("model") != "ensemble":
        return None
    members = [Path(m) for m in config.get("members") or []]
    return [next((c for c in (path / m, path / m.name) if (c / CONFIG).is_file()), path / m) for m in members]


def refuse_ensemble(path: Path, instead: str = "give a single run") -> None:
    """For the commands that take one model: an ensemble folder is a clear mistake, not a missing file."""
    members = ensemble_members(path)
    if members is not None:
        example = f", such as its member {members[0]}" if members else ""
        raise RunError(f"{path} is an ensemble of {len(members)} runs; {instead}{example}")


def check_run_dir(path: Path) -> None:
    """A folder that `train` (or `ensemble`) wrote, or one line saying it is not."""
    if not (path / CONFIG).is_file():
        raise RunError(f"{path}: not a run directory (no config.json); give a folder that `train` wrote")


def run_config(run_dir: Path) -> TrainConfig:
    """The settings a single run was trained with (a run from before outlier exposure, printed or photographed
    digits trained without them)."""
    check_run_dir(run_dir)
    refuse_ensemble(run_dir)
    before = {"outliers": 0.0, "printed_digits": 0, "photographed": 0.0}
    return TrainConfig(**before | read_config_file(run_dir / CONFIG)).validate()


def run_meta(run_dir: Path) -> dict[str, Any]:
    """What training recorded beside the settings: shapes, classes, parameters, versions."""
    meta = read_json(run_dir / CONFIG).get("meta")
    return meta if isinstance(meta, dict) else {}


def model_file(path: Path) -> Path:
    """The .keras file of a run directory, or the file itself."""
    file = path / MODEL if path.is_dir() else path
    if path.is_dir() and (path / CONFIG).is_file() and not training_finished(path):
        raise RunError(
            f"{path}: its training did not finish; continue it with `mnist-classifier train --resume {path}`"
        )
    if path.is_dir() and not file.is_file():
        refuse_ensemble(path, "give it to predict or serve, or give a single run")
    if not file.is_file():
        what = "a run directory without model.keras" if path.is_dir() else "no such file"
        raise RunError(f"{path}: {what}; give a run directory written by train or a .keras file")
    return file


def load_model(path: Path) -> keras.Model:
    """A run's (or a .keras file's) model for inference, loaded in Keras' safe mode: no arbitrary code runs. Its
    training set-up (optimizer, loss, metrics) is not restored: `--resume` rebuilds it from the config."""
    import keras

    from .layers import Deskew

    file = model_file(path)
    try:
        return keras.saving.load_model(file, custom_objects={"Deskew": Deskew}, safe_mode=True, compile=False)
    except Exception as e:  # Keras raises many types for a corrupt or foreign file
        reason = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise RunError(f"{file}: not a readable Keras model ({reason})") from None
