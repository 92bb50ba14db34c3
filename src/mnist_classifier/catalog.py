"""One summary row per run folder under a folder, read from its small JSON and CSV files only: what `runs` lists.

Never imports TensorFlow, never raises over a folder: one that is unreadable, half-written or not a run at all is a
row with that status and a note saying why, so that listing hundreds of runs answers in a second.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .config import MODEL_DEFAULTS, PRESETS, Options, check_value
from .errors import RunError
from .runs import CONFIG, HISTORY, METRICS

STATUSES = ("evaluated", "finished", "unfinished", "unreadable", "not a run")
COLUMNS = (
    "name", "status", "model", "preset", "dataset", "accuracy", "val_accuracy", "epochs", "train_seconds",
    "parameters", "created", "note", "path",
)  # fmt: skip
SORTS = {  # --sort NAME: the column, and whether the best (highest) comes first
    "name": ("name", False),
    "created": ("created", False),
    "accuracy": ("accuracy", True),
    "val-accuracy": ("val_accuracy", True),
    "time": ("train_seconds", False),
    "epochs": ("epochs", False),
    "parameters": ("parameters", False),
    "model": ("model", False),
    "preset": ("preset", False),
    "dataset": ("dataset", False),
    "status": ("status", False),
}
FILTERS = ("model", "preset", "dataset", "status")
MAX_FILE_BYTES = 16 * 2**20  # a run's config.json, metrics.json or history.csv is some kB; more is not ours
MAX_FOLDERS = 10_000  # listed at most (the first by name); memory stays bounded in a folder of any size
CHANGED_AT_MOST = 2  # "fast+": the fast preset with at most this many of its settings changed


def small_file(path: Path) -> str:
    """A run file's text; OSError or ValueError when missing, unreadable or too large to be one."""
    with path.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"over {MAX_FILE_BYTES:,} bytes")
    return data.decode()


def small_json(path: Path) -> dict[str, Any]:
    data = json.loads(small_file(path))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def history_columns(path: Path) -> dict[str, list[float]]:
    """history.csv's columns as lists of numbers; {} without the file."""
    if not path.is_file():
        return {}
    rows = list(csv.DictReader(io.StringIO(small_file(path))))
    return {key: [float(row[key] or "nan") for row in rows] for key in (rows[0] if rows else ())}


def preset_of(config: dict[str, Any]) -> str:
    """The preset whose settings the run has: its name, NAME+ with one or two of them changed, or "" for none (the
    preset is not recorded; it is recognised from the settings)."""
    model = config.get("model")
    if not isinstance(model, str):
        return ""
    found, fewest = "", CHANGED_AT_MOST + 1
    for name, values in PRESETS.get(model, {}).items():
        expected = MODEL_DEFAULTS.get(model, {}) | values
        changed = sum(config.get(key) != value for key, value in expected.items())
        if changed < fewest and (changed == 0 or len(expected) > 2 * CHANGED_AT_MOST):
            found, fewest = name + ("+" if changed else ""), changed
    return found


def blank_row(path: Path) -> dict[str, Any]:
    return dict.fromkeys(COLUMNS) | {"name": path.name, "path": str(path), "note": ""}


def summarize(path: Path) -> dict[str, Any]:
    """The row of one folder: never raises for what the folder holds."""
    row = blank_row(path)
    if not (path / CONFIG).is_file():
        study = (path / "study.db").is_file() or (path / "leaderboard.csv").is_file()
        return row | {
            "status": "not a run",
            "note": "a tuning study (see its report.html)" if study else "no config.json",
        }
    try:
        return row | read_row(path)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
        return row | {"status": "unreadable", "note": reason}


def read_row(path: Path) -> dict[str, Any]:
    try:
        config = small_json(path / CONFIG)
    except (OSError, ValueError) as e:
        raise ValueError(f"{CONFIG}: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
    meta: dict[str, Any] = config["meta"] if isinstance(config.get("meta"), dict) else {}
    row: dict[str, Any] = {
        "model": str(config.get("model", "")),
        "preset": preset_of(config),
        "dataset": str(config.get("dataset") or ""),
        "parameters": number(meta.get("parameters")),
        "created": str(meta["created"]) if meta.get("created") else None,
    }
    if config.get("model") == "ensemble":
        row["note"] = f"{len(config.get('members') or [])} members"
    if meta.get("status", "finished") != "finished":
        done = len(history_columns(path / HISTORY).get("epoch", []))
        return row | {
            "status": "unfinished",
            "epochs": done,
            "note": f"{done} of {config.get('epochs', '?')} epochs; continue it with `train --resume`",
        }
    if not (path / METRICS).is_file():
        return row | history_figures(path) | {"status": "finished", "note": "not evaluated: run `evaluate`"}
    try:
        metrics = small_json(path / METRICS)
    except (OSError, ValueError) as e:
        raise ValueError(f"{METRICS}: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
    row |= {
        "status": "evaluated",
        "dataset": str(metrics.get("dataset") or row["dataset"]),
        "val_accuracy": number(metrics.get("best_val_accuracy")),
        "epochs": number(metrics.get("epochs")),
        "train_seconds": number(metrics.get("train_seconds")),
        "parameters": number(metrics.get("parameters")) or row["parameters"],
    }
    split = metrics.get("split", "test")
    if split == "test" and metrics.get("dataset", config.get("dataset")) == config.get("dataset"):
        row["accuracy"] = float(metrics["accuracy"])
    else:
        row["note"] = f"evaluated on {metrics.get('dataset')} {split}: {float(metrics['accuracy']):.2%}"
        row["dataset"] = str(config.get("dataset") or "")
    return row


def history_figures(path: Path) -> dict[str, Any]:
    """Training time, epochs and best validation accuracy of a run not evaluated, from history.csv."""
    history = history_columns(path / HISTORY)
    if not history.get("epoch"):
        return {}
    val = [v for v in history.get("val_accuracy", []) if not math.isnan(v)]
    return {
        "epochs": len(history["epoch"]),
        "train_seconds": history.get("elapsed", [None])[-1],
        "val_accuracy": max(val) if val else None,
    }


def folders(folder: Path, limit: int = MAX_FOLDERS) -> tuple[list[Path], int]:
    """The first `limit` run folders under `folder` by name (hidden ones, such as a tuning study's staging folder,
    left out), and how many there are in all; `folder` itself when it is a run folder."""
    if (folder / CONFIG).is_file():
        return [folder], 1
    if not folder.is_dir():
        what = "a file" if folder.exists() else "no such folder"
        raise RunError(f"{folder}: {what}; give the folder that holds the run folders (default runs/)")
    total = 0

    def names(entries: Iterable[os.DirEntry[str]]) -> Iterator[str]:
        nonlocal total
        for entry in entries:
            if not entry.name.startswith(".") and entry.is_dir():
                total += 1
                yield entry.name

    try:
        with os.scandir(folder) as entries:
            first = heapq.nsmallest(limit, names(entries))  # memory for `limit` names, however many there are
    except OSError as e:
        raise RunError(f"{folder}: cannot list it ({e.strerror})") from None
    return [folder / name for name in first], total


def check_choices(sort: str | None, filters: dict[str, str | None]) -> None:
    if sort is not None:
        check_value("sort", sort, Options(tuple(SORTS)))
    if filters.get("status") is not None:
        check_value("status", filters["status"], Options(STATUSES))
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise RunError(f"cannot filter by {unknown[0]!r}; filter by {', '.join(FILTERS)}")


def select(
    rows: Iterable[dict[str, Any]], sort: str | None = None, reverse: bool = False, **filters: str | None
) -> list[dict[str, Any]]:
    """The rows that match every filter given (a preset matches its changed form too: fast matches fast+), sorted by
    SORTS[sort] (best first for accuracies, rows without a value last)."""
    check_choices(sort, filters)
    wanted = {key: value for key, value in filters.items() if value is not None}

    def matches(row: dict[str, Any]) -> bool:
        found = {key: str(row.get(key) or "") for key in wanted}
        found["preset"] = found.get("preset", "").rstrip("+")
        return all(found[key] == value for key, value in wanted.items())

    kept = [row for row in rows if matches(row)]
    column, best_first = SORTS[sort or "name"]
    present = sorted((row for row in kept if row.get(column) is not None), key=lambda row: row["name"])
    present.sort(key=lambda row: order_key(row[column]), reverse=best_first != reverse)  # stable: ties by name
    return present + [row for row in kept if row.get(column) is None]


def order_key(value: Any) -> tuple[int, float, str]:
    """Numbers before text, so that a column that a damaged file filled with text still sorts."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def number(value: Any) -> float | None:
    """A figure read from a run file, or None when it is not a number."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def list_runs(folder: Path, limit: int = MAX_FOLDERS) -> tuple[list[dict[str, Any]], int]:
    """Every run folder's row under `folder` (at most `limit`), and how many folders there are in all."""
    paths, total = folders(folder, limit)
    return [summarize(path) for path in paths], total
