"""Image files read by a model as `predict` reads them: every input answered with its reading or its error.

The model is loaded and the options checked before any file is read, so a mistake costs no reading; files are
then read lazily, in order, so a large folder streams. On request the 28x28 images fed to the model are saved.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .config import Interval, check_value
from .image_files import Reading, image_files, read_files
from .inference import load_predictor
from .utils import atomic_path, create_folder
from .verdicts import require_scores, with_thresholds


@dataclass
class FileReadings:
    """A model's readings of image files: the inputs that name no image (with the reason), then each file's
    Reading, in order, as it is read."""

    class_names: tuple[str, ...]
    runtime: str
    missing: list[tuple[Path, str]]
    files: list[Path]
    readings: Iterator[Reading]

    @property
    def inputs(self) -> int:
        """Every input: the files found and the paths that name none."""
        return len(self.files) + len(self.missing)


def read_images(
    model: str | Path,
    images: Sequence[str | Path],
    *,
    top_k: int = 1,
    prepare: bool = True,
    multi_digit: bool = False,
    deskew: bool = False,
    reject: bool = True,
    reject_threshold: str | float | None = None,
    confidence_threshold: str | float | None = None,
    save_preprocessed: str | Path | None = None,
    set_coverage: str | float | None = None,
    precision: str = "float32",
) -> FileReadings:
    """Read the image files and folders (searched recursively) with a run's, an ensemble's or a .keras file's
    model, started the quickest way (see inference.fast_predictor). `top_k` is checked against the model's classes
    for the caller's display; the thresholds (0..1) replace the run's; `save_preprocessed` names a folder for the
    images fed to the model; `set_coverage` (0..1, exclusive) adds each digit's prediction set; `precision` "int8"
    runs its int8 copy where the CPU has int8 units (see inference.fast_predictor)."""
    predictor = load_predictor(Path(model), fast=True, precision=precision)
    calibration = with_thresholds(predictor.calibration, reject_threshold, confidence_threshold)
    check_value("top_k", top_k, Interval(1, len(predictor.class_names)))
    coverage = None if set_coverage is None else require_scores(calibration, set_coverage, str(model), "--set")
    saver = InputSaver(Path(save_preprocessed)) if save_preprocessed is not None else None
    files, missing = image_files(Path(image) for image in images)
    readings = read_files(
        predictor, files, prepare, multi_digit, deskew, reject=reject, calibration=calibration, coverage=coverage
    )
    return FileReadings(
        predictor.class_names, predictor.runtime, missing, files, saver.saving(readings) if saver else readings
    )


class InputSaver:
    """Writes the 28x28 arrays fed to the model as PNG files named after their source, never overwriting each other."""

    def __init__(self, folder: Path) -> None:
        create_folder(folder, "--save-preprocessed")
        self.folder = folder
        self.used: set[str] = set()

    def saving(self, readings: Iterator[Reading]) -> Iterator[Reading]:
        """The readings, each one's images saved as it passes (a file that could not be read has none)."""
        for reading in readings:
            if reading.error is None:
                self.save(reading.source, reading.images)
            yield reading

    def save(self, source: str, images: np.ndarray) -> None:
        stem = Path(source).stem
        for i, image in enumerate(images):
            name = f"{stem}-{i + 1}" if len(images) > 1 else stem
            unique, n = name, 1
            while unique in self.used:
                n += 1
                unique = f"{name}-{n}"
            self.used.add(unique)
            with atomic_path(self.folder / f"{unique}.png") as tmp:
                Image.fromarray(image).save(tmp)
