"""What `data info` and `data show` say of a dataset: its images per class in each split, a grid of its images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import Interval, Options, check_field, check_value
from .data import Dataset, load_dataset, split_validation


def class_counts(
    dataset: str = "mnist", data_dir: str | Path | None = None, validation_fraction: float = 0.1, seed: int = 42
) -> tuple[Dataset, dict[str, np.ndarray]]:
    """A dataset (checksums verified) and its images per class in the train, validation and test splits, the
    validation split held out as training holds it out."""
    check_field("validation_fraction", validation_fraction)
    data = load_dataset(dataset, Path(data_dir) if data_dir else None)
    _, y_train, _, y_val = split_validation(data.x_train, data.y_train, validation_fraction, seed)
    splits = {"train": y_train, "validation": y_val, "test": data.y_test}
    return data, {name: np.bincount(y, minlength=data.num_classes) for name, y in splits.items()}


def sample_images(
    out: str | Path,
    dataset: str = "mnist",
    data_dir: str | Path | None = None,
    per_class: int = 10,
    split: str = "train",
) -> Path:
    """Write a PNG grid of a split's (train or test) first `per_class` images of each class, one row per class."""
    from .report import sample_grid  # Matplotlib and Seaborn: only for the grid, not for `data info`

    check_value("per_class", per_class, Interval(1, 50))
    check_value("split", split, Options(("train", "test")))
    data = load_dataset(dataset, Path(data_dir) if data_dir else None)
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    sample_grid(Path(out), x, y, data.class_names, per_class)
    return Path(out)
