"""The Python API over many runs: `runs` lists a folder's runs as a DataFrame, `compare` sets some side by side.

Both read the runs' small JSON and CSV files only (no model, no TensorFlow):

    import mnist_classifier as mc
    table = mc.runs("runs", sort="accuracy", model="cnn")  # one row per run folder
    comparison = mc.compare("runs/a", "runs/b")  # settings that differ, metrics, comparison.html
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import COLUMNS, MAX_FOLDERS, list_runs, select
from .comparison import Comparison, compare_runs

if TYPE_CHECKING:
    import pandas as pd

PAGE = "comparison.html"


def run_rows(
    folder: str | Path = "runs", sort: str | None = None, reverse: bool = False, **filters: str | None
) -> tuple[list[dict[str, Any]], int]:
    """The rows `runs` gives (see it), and how many folders `folder` holds in all (more than the rows when over
    catalog.MAX_FOLDERS)."""
    rows, total = list_runs(Path(folder), MAX_FOLDERS)
    return select(rows, sort, reverse, **filters), total


def runs(
    folder: str | Path = "runs", sort: str | None = None, reverse: bool = False, **filters: str | None
) -> pd.DataFrame:
    """One row per folder under `folder` (or `folder` itself when it is a run): name, status (evaluated, finished,
    unfinished, unreadable or "not a run"), model, preset, dataset, test accuracy, best validation accuracy, epochs,
    training time in seconds, parameters, created, a note saying why a run is unreadable or unfinished, and its path.
    `sort` names a column ("accuracy", "time", ...: catalog.SORTS; accuracies best first), `reverse` flips it;
    `model=`, `preset=`, `dataset=` and `status=` keep the rows that match. Reads no model: hundreds of runs take a
    second."""
    import pandas as pd

    rows, _ = run_rows(folder, sort, reverse, **filters)
    return pd.DataFrame(rows, columns=list(COLUMNS)).set_index("name")


def compare(*run_dirs: str | Path, out: str | Path | None = None) -> Comparison:
    """Compare 2 to 12 runs: the settings that differ (`settings`), the metrics side by side (`figures`), and a page
    with the training curves overlaid and the confusion matrices next to each other, written to `out` (default
    comparison.html beside the first run) and kept in `page`."""
    paths = [Path(r) for r in run_dirs]
    comparison = compare_runs(paths)
    from .report.compare import write_comparison

    comparison.page = write_comparison(comparison, Path(out) if out else paths[0].parent / PAGE)
    return comparison
