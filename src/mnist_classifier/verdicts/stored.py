"""A run's calibration on disk: calibration.json (settings and the figures that chose them) beside calibration.npz."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunError
from ..runs import read, read_json
from ..utils import atomic_path, write_json
from .calibration import Calibration
from .scores import SCORES

CALIBRATION, FEATURE_STATS = "calibration.json", "calibration.npz"


def save(folder: Path, calibration: Calibration, figures: dict[str, Any]) -> None:
    """calibration.json (settings and the figures that chose them) and calibration.npz (arrays), atomically."""
    arrays = {"reference": calibration.reference, "conformal": calibration.conformal}
    if calibration.means is not None and calibration.precision is not None:
        arrays |= {"means": calibration.means, "precision": calibration.precision}
    with atomic_path(folder / FEATURE_STATS) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})  # type: ignore[arg-type]
    write_json(folder / CALIBRATION, calibration.settings() | {"figures": figures})


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def conformal(scores: np.ndarray | None) -> np.ndarray | None:
    """Stored prediction-set scores, checked: one row of finite numbers, kept sorted and float32."""
    if scores is None:
        return None
    if scores.ndim != 1 or not np.issubdtype(scores.dtype, np.floating) or not np.isfinite(scores).all():
        raise ValueError("its prediction-set scores are not one row of finite numbers")
    return np.sort(scores.astype(np.float32))


def load(folder: Path) -> Calibration | None:
    """A run's stored calibration; None for a run from before calibration (or a bare .keras file)."""
    if not (folder / CALIBRATION).is_file():
        return None
    settings = read_json(folder / CALIBRATION)
    arrays = read(folder / FEATURE_STATS, _arrays) if (folder / FEATURE_STATS).is_file() else {}
    try:
        calibration = Calibration(
            temperature=float(settings["temperature"]),
            score=str(settings["score"]),
            reject_threshold=float(settings["reject_threshold"]),
            confidence_threshold=float(settings["confidence_threshold"]),
            fitted=True,
            means=arrays.get("means"),
            precision=arrays.get("precision"),
            reference=arrays.get("reference"),
            conformal=conformal(arrays.get("conformal")),
        )
    except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
        raise RunError(
            f"{folder / CALIBRATION} is unreadable ({e}); run `mnist-classifier calibrate {folder}`"
        ) from None
    if calibration.score not in SCORES or calibration.temperature <= 0:
        raise RunError(
            f"{folder / CALIBRATION}: unknown score or bad temperature; run `mnist-classifier calibrate {folder}`"
        )
    return calibration
