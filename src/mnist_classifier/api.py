"""The Python API: what notebooks, scripts and the command line call.

`Run` is one object for a trained run or ensemble; `train`, `resume`, `ensemble` and `load_run` give one. `tune`
searches hyperparameters (what `data info` and `data show` say of a dataset is dataset_summary's).

    import mnist_classifier as mc
    run = mc.train(model="cnn", preset="fast")
    run.metrics["accuracy"], run.history, run.predict(images).digits, run.report()
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import bundled
from .config import TrainConfig, check_names, resolve
from .errors import ConfigError, ImageError, RunError
from .readings import Predictions
from .runs import CONFIG, METRICS, check_run_dir, ensemble_members, new_run_dir, read_history, read_json, read_metrics
from .utils import import_tensorflow_quietly

if TYPE_CHECKING:
    import pandas as pd

    from .export import ExportCheck
    from .inference import Predictor
    from .tuning import TuneResult

Images = np.ndarray | str | Path | Sequence[str | Path]


@dataclass(frozen=True)
class Report:
    """A run's report.html; in Jupyter it shows the headline figures inline. `os.fspath(report)` is its path."""

    path: Path

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def _repr_html_(self) -> str:
        from .report import notebook_html

        return notebook_html(self.path.parent)


class Run:
    """A run folder that `train` wrote (or an ensemble folder): its settings, metrics and history, and its model,
    which reads images in `precision` ("float32", or "int8" where the CPU has int8 units: see inference)."""

    def __init__(self, path: str | Path, precision: str = "float32") -> None:
        from .inference import PRECISIONS

        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.path = bundled.resolve(path)
        self.precision = precision
        check_run_dir(self.path)
        self.bundled: str | None = self.path.name if (self.path / bundled.MANIFEST).is_file() else None
        """The bundled model's name (read-only: `copy` it to evaluate, calibrate or report); None for a run."""

    def __repr__(self) -> str:
        metrics = read_json(self.path / METRICS, missing_ok=True)
        accuracy = (
            f", {metrics.get('split', 'test')} accuracy {metrics['accuracy']:.2%}" if "accuracy" in metrics else ""
        )
        return f"Run('{self.path}'{accuracy})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict[str, Any]:
        """config.json: every setting, and under "meta" the shapes, classes, parameters and versions."""
        return read_json(self.path / CONFIG)

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json: accuracy, loss, errors, per-class precision/recall/F1, the most confused pairs."""
        return read_metrics(self.path)

    @property
    def history(self) -> pd.DataFrame | None:
        """One row per epoch (loss, accuracy, val_loss, val_accuracy, learning_rate, seconds); None for an ensemble."""
        import pandas as pd

        history = read_history(self.path)
        return None if history is None else pd.DataFrame(history).astype({"epoch": int}).set_index("epoch")

    @property
    def members(self) -> list[Run]:
        """An ensemble's member runs; [] for a single run."""
        return [Run(member) for member in ensemble_members(self.path) or []]

    @functools.cached_property
    def predictor(self) -> Predictor:
        """The model, loaded once (the members' mean for an ensemble), run in onnxruntime where it converts."""
        from .inference import load_predictor

        return load_predictor(self.path, fast=True, precision=self.precision)

    def _arrays(self, images: Images, prepare: bool, deskew: bool) -> np.ndarray | list[np.ndarray | str]:
        """Each image's array as the model reads it, or why it has none: an image_files.NoDigit reason when it holds
        no digit, else (a file) why it cannot be read; images given as an array that are all read stay one batch
        (no copy). An array of the wrong shape or values is an ImageError."""
        from .errors import NoDigitError
        from .image_files import NoDigit, image_arrays, load_file

        if isinstance(images, np.ndarray):
            try:
                arrays = image_arrays(images, self.predictor.input_shape, prepare, deskew)
            except NoDigitError as e:
                return [NoDigit(e)]
            return arrays if arrays.shape != self.predictor.input_shape else arrays[None]

        paths = [Path(images)] if isinstance(images, str | Path) else [Path(p) for p in images]
        found: list[np.ndarray | str] = []
        for path in paths:
            loaded = load_file(path, prepare, False, deskew)
            found += [loaded] if isinstance(loaded, str) else loaded
        return found

    def _stacked(self, arrays: np.ndarray | list[np.ndarray | str]) -> np.ndarray:
        if isinstance(arrays, np.ndarray):
            return arrays
        images = [a for a in arrays if not isinstance(a, str)]
        return np.stack(images) if images else np.zeros((0, *self.predictor.input_shape), np.uint8)

    def probabilities(self, images: Images, prepare: bool = True, deskew: bool = False) -> np.ndarray:
        """The model's own class probabilities (N, classes), before calibration, of images: an array (N, 28, 28) or
        (28, 28), uint8 0..255 or float 0..1, or image files or a picture as an array (height, width[, channels]),
        each prepared MNIST-style unless `prepare` is False. An image with no digit, or a file that cannot be read, is
        an ImageError here (there is no row to give it); `predict` answers it."""
        arrays = self._arrays(images, prepare, deskew)
        for i, item in enumerate(arrays if isinstance(arrays, list) else ()):
            if isinstance(item, str):
                where = images if isinstance(images, np.ndarray | str | Path) else images[i]
                raise ImageError(item if isinstance(where, np.ndarray) else f"{where}: {item}")
        return self.predictor.probabilities(self._stacked(arrays))

    def predict(
        self,
        images: Images,
        prepare: bool = True,
        deskew: bool = False,
        reject: bool = True,
        reject_threshold: float | None = None,
        confidence_threshold: float | None = None,
        set_coverage: float | None = None,
    ) -> Predictions:
        """The digit in each image with its calibrated probability and verdict, one result per image always (see
        Predictions: a blank image is "not_a_digit" with its reason, an unreadable file carries its error and costs
        the others nothing); see `probabilities` for what images may be. The thresholds (0..1) replace the run's
        stored ones; without `reject` every verdict is "digit". `set_coverage` (0..1, exclusive, e.g. 0.99) adds
        each image's prediction set: the classes that hold the true one with that probability (split conformal)."""
        from .image_files import NoDigit
        from .verdicts import require_scores, with_thresholds

        calibration = self.predictor.calibration
        if reject_threshold is not None or confidence_threshold is not None:
            calibration = with_thresholds(calibration, reject_threshold, confidence_threshold)
        if set_coverage is not None:
            set_coverage = require_scores(calibration, set_coverage, str(self.path))
        arrays = self._arrays(images, prepare, deskew)
        judged = self.predictor.judge(self._stacked(arrays), reject, calibration)
        names = self.predictor.class_names
        masks = None if set_coverage is None else calibration.prediction_sets(judged.probabilities, set_coverage)
        if isinstance(arrays, np.ndarray):  # every image read: no row to fill in
            found = judged.probabilities.astype(np.float32, copy=False)
            n = len(found)
            return Predictions(
                [names[i] for i in found.argmax(axis=1).tolist()],
                found.max(axis=1, initial=0.0),
                found,
                list(judged.verdicts),
                classes=list(names),
                reasons=[None] * n,
                errors=[None] * n,
                sets=None if masks is None else [[names[i] for i in np.flatnonzero(mask)] for mask in masks],
            )
        probs = np.full((len(arrays), len(names)), np.nan, np.float32)
        read = np.array([not isinstance(a, str) for a in arrays], bool)
        probs[read] = judged.probabilities
        verdicts: list[str | None] = [None] * len(arrays)
        for i, verdict in zip(np.flatnonzero(read), judged.verdicts, strict=True):
            verdicts[i] = verdict
        no_digit = [a if isinstance(a, NoDigit) else None for a in arrays]
        sets: list[list[str]] | None = None
        if masks is not None:
            sets = [[] for _ in arrays]
            for i, mask in zip(np.flatnonzero(read), masks, strict=True):
                sets[i] = [name for name, inside in zip(names, mask.tolist(), strict=True) if inside]
        return Predictions(
            [names[int(p.argmax())] if ok else None for p, ok in zip(probs, read, strict=True)],
            np.where(read, np.nan_to_num(probs).max(axis=1, initial=0.0), 0.0).astype(np.float32),
            probs,
            ["not_a_digit" if reason is not None else v for reason, v in zip(no_digit, verdicts, strict=True)],
            classes=list(names),
            reasons=[str(r) if r is not None else None for r in no_digit],
            errors=[a if isinstance(a, str) and not isinstance(a, NoDigit) else None for a in arrays],
            sets=sets,
        )

    def copy(self, out: str | Path | None = None) -> Run:
        """A copy of the run folder at `out` (which must not hold a run; default runs/NAME-TIME), to evaluate,
        calibrate or report without touching the original: a bundled model's copy is a plain run."""
        from .runs import copy_run

        target = new_run_dir(Path(out) if out else None, *(("bundled", self.bundled) if self.bundled else (self.name,)))
        copy_run(self.path, target, leave=(bundled.MANIFEST, bundled.ONNX) if self.bundled else ())
        return Run(target, self.precision)

    def _writable(self, doing: str) -> None:
        if self.bundled is not None:
            raise RunError(
                f"the bundled model {self.bundled} is read-only; {doing} a copy: mc.load_run('bundled:{self.bundled}')"
                f".copy('runs/{self.bundled}') (on the command line, `evaluate` makes one itself)"
            )

    def evaluate(
        self, split: str = "test", dataset: str | None = None, data_dir: str | Path | None = None
    ) -> dict[str, Any]:
        """Evaluate a single run on train, val or test (of its own dataset, or of another of the same shape); rewrite
        its metrics and report; return the metrics."""
        self._writable("evaluate")
        import_tensorflow_quietly()
        from .evaluation import evaluate_run

        metrics = evaluate_run(self.path, split, dataset, Path(data_dir) if data_dir else None)
        finish(self.path)
        return metrics

    def calibrate(self) -> dict[str, Any]:
        """Fit the calibration and verdict thresholds again and write calibration.json (training does it itself;
        this is for runs trained before); return what was fitted and its validation figures."""
        self._writable("calibrate")
        import_tensorflow_quietly()
        from .calibrate import calibrate_run

        return calibrate_run(self.path)

    def export(self, format: str, out: str | Path) -> ExportCheck:
        """Write the model as keras, savedmodel, onnx or tflite to `out` (which must not exist), then check that the
        export gives the original's predictions on the whole test set."""
        import_tensorflow_quietly()
        from .export import export_run

        return export_run(self.path, format, Path(out))

    def report(self) -> Report:
        """Draw the figures and write report.html (again, so it shows the latest evaluation)."""
        from .report import write_report

        self._writable("report on")
        return Report(write_report(self.path))


def finish(run_dir: Path) -> Run:
    """An evaluated run folder's report written and its evaluation logged to TensorBoard (tensorboard/evaluation)."""
    from .report import write_report
    from .tracking import log_evaluation

    write_report(run_dir)
    log_evaluation(run_dir)
    return Run(run_dir)


def load_run(path: str | Path | None = None, precision: str = "float32") -> Run:
    """An existing run or ensemble folder, or a model that ships with the package ("bundled:cnn-fast", and without a
    path the bundled fast CNN: `bundled_models()` lists them), its model read in `precision` (see Run)."""
    return Run(bundled.resolve(path), precision)


def bundled_models() -> list[Run]:
    """The trained models that ship with the package, each file checked against its manifest (the default first)."""
    return [Run(model.path) for model in bundled.every()]


def train(
    config: TrainConfig | None = None,
    *,
    preset: str | None = None,
    out: str | Path | None = None,
    verbose: int | str = "auto",
    **settings: Any,
) -> Run:
    """Train, evaluate on the test set and write the run folder with its report; return the Run.

    Give a TrainConfig, or settings by name (`model="cnn", preset="fast", epochs=3`) as `train` takes them on the
    command line; settings given with a TrainConfig replace its values."""
    if config is not None:
        if preset is not None:
            raise ConfigError("preset goes with settings by name, not with a TrainConfig; use mc.resolve(preset=...)")
        check_names(settings)
        config = dataclasses.replace(config, **settings).validate()
    else:
        config = resolve(None, preset, **settings)
    import_tensorflow_quietly()
    from .evaluation import evaluate_run
    from .training import train as fit

    if config.ensemble > 1:
        from .ensemble import train_ensemble

        run_dir = train_ensemble(config, new_run_dir(Path(out) if out else None, config.model, config.dataset), verbose)
    else:
        run_dir = fit(config, Path(out) if out else None, verbose)
        evaluate_run(run_dir)
    return finish(run_dir)


def resume(path: str | Path, verbose: int | str = "auto") -> Run:
    """Continue a run that was interrupted, from its last completed epoch (or, killed after training, from its
    evaluation); then evaluate it and write its report, as `train` would have."""
    import_tensorflow_quietly()
    from .evaluation import evaluate_run
    from .training import resume as resume_training

    if (Path(path) / METRICS).is_file():
        raise RunError(f"{path}: its training finished and was evaluated; there is nothing to resume")
    run_dir = resume_training(Path(path), verbose)
    evaluate_run(run_dir)
    return finish(run_dir)


def tune(
    space: dict[str, Any] | str | Path | None = None,
    *,
    sampler: str = "tpe",
    trials: int | None = None,
    pruner: str = "median",
    timeout: float | None = None,
    study: str | None = None,
    storage: str | None = None,
    out: str | Path | None = None,
    final_train: bool = True,
    config: TrainConfig | None = None,
    progress: Callable[[str], None] = lambda line: None,
    **settings: Any,
) -> TuneResult:
    """Search hyperparameters with Optuna, as `mnist-classifier tune` does. `space` maps settings to a list of
    values or a range {"low", "high", "log" or "step"} (or names a space TOML file); the settings it leaves fixed
    come from `config` or by name (`model="cnn", epochs=3`). `progress` gets one line for the study's plan, then
    one per trial."""
    import_tensorflow_quietly()
    from . import tuning

    check_names(settings)
    base = dataclasses.replace(config, **settings).validate() if config is not None else resolve(None, **settings)
    space = Path(space) if isinstance(space, str) else space
    plan = tuning.settings(
        base, space, sampler, pruner, trials, timeout, study, storage, Path(out) if out else None, final_train
    )
    progress(f"study {plan.study} · {plan.sampler} sampler · {plan.pruner} pruner · {plan.out}")
    return tuning.tune(plan, progress)


def ensemble(runs: Sequence[str | Path], out: str | Path | None = None, tta: bool = False) -> Run:
    """Average the runs' probabilities, evaluate the ensemble on the test set and write its folder with metrics and
    report; `tta` also averages over one-pixel shifts of each test image."""
    import_tensorflow_quietly()
    from .ensemble import build_ensemble

    folder, _ = build_ensemble([Path(run) for run in runs], Path(out) if out else None, tta)
    return finish(folder)


__all__ = [
    "Predictions",
    "Report",
    "Run",
    "bundled_models",
    "ensemble",
    "load_run",
    "resume",
    "train",
    "tune",
]
