"""What tells some runs apart: the settings that differ between them, and their metrics side by side.

Read from each run's small files (config.json, metrics.json, history.csv, confusion_matrix.csv), never TensorFlow;
a run folder that cannot be read is one line naming it, a run not evaluated yet compares with "—" for its metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .catalog import MAX_FILE_BYTES, number, preset_of, small_json, summarize
from .errors import RunError
from .runs import CONFIG, CONFUSION, HISTORY, METRICS, read_confusion, read_history

if TYPE_CHECKING:
    import pandas as pd

MAX_RUNS = 12  # the comparison page draws one colour and one confusion matrix for each


@dataclass
class Compared:
    """One run as a comparison reads it: metrics {} and confusion None when it was not evaluated."""

    path: Path
    name: str
    status: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    confusion: tuple[list[str], np.ndarray] | None


@dataclass
class Comparison:
    """Runs side by side: `settings` holds only the settings that differ (one value per run), `figures` every
    metric (None where a run has none) with `kinds` saying how each reads; `page` is the HTML page once written."""

    runs: list[Compared]
    settings: dict[str, list[Any]]
    figures: dict[str, list[Any]]
    kinds: dict[str, str] = field(default_factory=dict)
    page: Path | None = None

    @property
    def names(self) -> list[str]:
        return [run.name for run in self.runs]

    def table(self) -> pd.DataFrame:
        """The metrics, then the settings that differ, one column per run."""
        import pandas as pd

        return pd.DataFrame.from_dict(self.figures | self.settings, orient="index", columns=self.names)


def part(values: dict[str, Any], key: str) -> dict[str, Any]:
    """values[key] when it is a dict, else {}: a damaged file compares with blanks, not a traceback."""
    found = values.get(key)
    return found if isinstance(found, dict) else {}


def verdict(key: str) -> Callable[[Compared], Any]:
    return lambda run: part(run.metrics, "verdicts").get(key)


def best_val_accuracy(run: Compared) -> float | None:
    found = run.metrics.get("best_val_accuracy")
    values = [v for v in run.history.get("val_accuracy", []) if v == v]
    return found if found is not None else max(values, default=None)


def training_seconds(run: Compared) -> float | None:
    elapsed = run.history.get("elapsed")
    return run.metrics.get("train_seconds", elapsed[-1] if elapsed else None)


FIGURES: dict[str, tuple[str, Callable[[Compared], Any]]] = {  # label: (kind, value of a run)
    "status": ("text", lambda run: run.status),
    "test accuracy": ("percent", lambda run: run.metrics.get("accuracy")),
    "test loss": ("loss", lambda run: run.metrics.get("loss")),
    "errors": ("count", lambda run: run.metrics.get("errors")),
    "best validation accuracy": ("percent", best_val_accuracy),
    "best epoch": ("count", lambda run: run.metrics.get("best_epoch")),
    "epochs": ("count", lambda run: run.metrics.get("epochs", len(run.history.get("epoch", [])) or None)),
    "training time": ("seconds", training_seconds),
    "parameters": ("count", lambda run: run.metrics.get("parameters", part(run.config, "meta").get("parameters"))),
    "calibration error (ECE)": ("percent", verdict("ece_after")),
    "answered as digits": ("percent", verdict("coverage")),
    "right when answered": ("percent", verdict("accuracy_answered")),
    "AUROC vs non-digits": ("auroc", verdict("auroc_validation_nondigits")),
}


def checked_size(path: Path) -> Path:
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        raise RunError(f"{path} is over {MAX_FILE_BYTES:,} bytes: not a file a run writes")
    return path


def read_run(path: Path) -> Compared:
    """A run folder's files for a comparison; one line naming the folder when it is not a readable run."""
    row = summarize(path)
    if row["status"] in ("not a run", "unreadable"):
        raise RunError(f"{path}: {row['status']} ({row['note']}); give run folders that `train` wrote")
    try:
        config = small_json(path / CONFIG)
        metrics = small_json(path / METRICS) if (path / METRICS).is_file() else {}
    except (OSError, ValueError) as e:
        raise RunError(f"{path}: unreadable ({(str(e).splitlines() or [type(e).__name__])[0]})") from None
    checked_size(path / HISTORY)
    history = {key: values.tolist() for key, values in (read_history(path) or {}).items()}
    checked_size(path / CONFUSION)
    confusion = read_confusion(path) if metrics and (path / CONFUSION).is_file() else None
    return Compared(path, path.name, row["status"], config, metrics, history, confusion)


def setting_values(run: Compared) -> dict[str, Any]:
    """A run's settings, the preset they match and the precision and library versions it trained with."""
    meta = part(run.config, "meta")
    out = {key: value for key, value in run.config.items() if key != "meta"}
    out["preset (recognised)"] = preset_of(run.config) or None
    if "precision" in meta:
        out["trained in"] = meta["precision"]
    return out | {f"{name} version": version for name, version in part(meta, "versions").items()}


def differing(values: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The keys whose values are not the same in every dict (a key missing from one counts as None), in the order
    they first appear."""
    keys = list(dict.fromkeys(key for value in values for key in value))
    out: dict[str, list[Any]] = {}
    for key in keys:
        column = [value.get(key) for value in values]
        if len({json.dumps(v, sort_keys=True, default=str) for v in column}) > 1:
            out[key] = column
    return out


def compare_runs(paths: Sequence[Path]) -> Comparison:
    """The comparison of 2 to MAX_RUNS different run folders; the page is for report.write_comparison."""
    if not 2 <= len(paths) <= MAX_RUNS:
        raise RunError(f"give 2 to {MAX_RUNS} run folders to compare, got {len(paths)}")
    resolved = [path.resolve() for path in paths]
    if len(set(resolved)) < len(resolved):
        raise RunError("the same run folder is given twice; give different runs to compare")
    runs = [read_run(path) for path in paths]
    if len({run.name for run in runs}) < len(runs):
        for run in runs:
            run.name = str(run.path)
    figures = {label: [clean(value(run)) for run in runs] for label, (_, value) in FIGURES.items()}
    kinds = {label: kind for label, (kind, _) in FIGURES.items()}
    return Comparison(runs, differing([setting_values(run) for run in runs]), figures, kinds)


def clean(value: Any) -> Any:
    """A metric as a number (None when missing or not a number), text kept as it is."""
    return value if isinstance(value, str) else number(value)
