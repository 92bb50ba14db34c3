"""Knowing when it does not know: AUROC, rejection, calibration, accuracy and latency of the verdicts, per run.

Usage: python benchmarks/ood.py [--run LABEL=DIR ...] [--real 600] [--per-kind 300] [--fashion 10000]

Without --run it trains the fast CNN and the default DNN first (about two minutes). Every set is kept apart from
what the method was trained on (synthetic.training_pool: Matplotlib's TRAINING_FONTS, seed 0; blends of training
digits) and chosen on (synthetic.validation_set: VALIDATION_FONTS, seed 1): in-distribution, the MNIST test set
and benchmarks/serving.py's photo-like real digits (prepared as `predict` prepares a file); out-of-distribution,
the Fashion-MNIST test set (Debian's dataset-fashion-mnist), letters drawn with serving.py's handwriting fonts
without the digit look-alikes, scribbles and shapes from seed 20 (prepared), silhouettes, noise and textures given
as 28x28 arrays (the preparation refuses most noise and textures as blank, so as files they never get a digit),
and blends of two MNIST test digits of different classes. Images the preparation refuses count as turned away,
and the table says how many. "top probability" rejects on the model's own top probability at the threshold that
keeps 95% of the real digits (picked on the real digits themselves, so a bound, not a default); "verdict" is the
stored calibration at its default thresholds ("not answered" adds the uncertain ones to the rejected).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).parent))
import serving

from mnist_classifier.data import Dataset, load_dataset, synthetic
from mnist_classifier.image_files import load_file
from mnist_classifier.inference import DefaultCalibrationWarning, Predictor, judgement, load_predictor
from mnist_classifier.preprocess import scale
from mnist_classifier.verdicts import expected_calibration_error, temperature_scaled

CLI = [sys.executable, "-m", "mnist_classifier"]
DEFAULT_RUNS = {"cnn fast": ["--model", "cnn", "--preset", "fast"], "dnn default": []}
SEED = 20  # the benchmark's non-digits; the validation set uses seed 1


def train(folder: Path) -> dict[str, Path]:
    runs = {}
    for label, options in DEFAULT_RUNS.items():
        out = folder / label.replace(" ", "-")
        subprocess.run([*CLI, "train", *options, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        runs[label] = out
    return runs


def real_digits(count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """serving.py's photo-like digits, prepared as predict prepares a file; and how many were refused."""
    with tempfile.TemporaryDirectory() as tmp:
        serving.real_images(Path(tmp), count)
        images, labels, refused = [], [], 0
        for path in sorted(Path(tmp).iterdir()):
            loaded = load_file(path, True, False, False)
            if isinstance(loaded, str):
                refused += 1
                continue
            images.append(loaded[0])
            labels.append(int(path.stem.rsplit("-", 1)[1]))
    return np.stack(images), np.array(labels), refused


def out_of_distribution(
    per_kind: int, fashion: int, mnist: Dataset
) -> tuple[dict[str, tuple[np.ndarray, int]], list[str]]:
    """Each OOD set's images and how many the preparation refused; and the letter fonts."""
    fonts, handwriting = serving.fonts()
    sets = {"Fashion-MNIST": (load_dataset("fashion-mnist").x_test[:fashion], 0)}
    sets["letters"] = synthetic.letters(fonts, per_kind, SEED)
    for i, kind in enumerate(synthetic.MAKERS, 1):
        sets[kind] = synthetic.generated(kind, per_kind, SEED * 1000 + i, raw=kind in synthetic.RAW_KINDS)
    sets["blends"] = (synthetic.blends(mnist.x_test, mnist.y_test, per_kind, SEED), 0)
    return sets, [f.stem for f in fonts] + ([] if handwriting else ["(no handwriting font installed)"])


def auroc(digits: np.ndarray, others: np.ndarray) -> float:
    """Digits high, others low."""
    return float(roc_auc_score(np.r_[np.ones(len(digits)), np.zeros(len(others))], np.r_[digits, others]))


def latency(predictor: Predictor, image: np.ndarray, calls: int = 1000) -> dict[str, float]:
    """Median ms per single-image call of Predictor.probabilities as it was before verdicts (at b871a72: check and
    scale, the compiled model on each batch, concatenate), of Predictor.probabilities now, and of a judgement."""
    import tensorflow as tf

    model = predictor.backend.model  # a Predictor of a run directory runs its Keras model

    @tf.function(input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)])
    def bare(x: tf.Tensor) -> tf.Tensor:
        return model(x, training=False)

    concrete = bare.get_concrete_function()

    def forward(x: np.ndarray) -> np.ndarray:
        return concrete(tf.constant(x)).numpy()

    def today() -> np.ndarray:
        images = np.asarray(image)
        if images.ndim == len(predictor.input_shape):
            images = images[None]
        if images.shape[1:] != predictor.input_shape:
            raise ValueError(f"expected images of shape {predictor.input_shape}, got {images.shape[1:]}")
        x = scale(images) if images.dtype == np.uint8 else images.astype(np.float32)
        if not np.all(np.isfinite(x)) or x.min(initial=0) < 0 or x.max(initial=0) > 1:
            raise ValueError("pixel values must be finite and within [0, 1] (or uint8 0..255)")
        out = [forward(x[i : i + predictor.batch_size]) for i in range(0, len(x), predictor.batch_size)]
        return np.concatenate(out)

    calls_by_name = {
        "today": today,
        "now": lambda: predictor.probabilities(image),
        "verdict": lambda: predictor.judge(image),
    }
    times: dict[str, list[float]] = {name: [] for name in calls_by_name}
    for _ in range(calls):  # interleaved, so that a busy moment costs each alike
        for name, call in calls_by_name.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t) * 1000) for name, t in times.items()}


def measure(predictor: Predictor, sets: dict[str, tuple[np.ndarray, int]], ids: dict[str, np.ndarray]) -> dict:
    """Figures of one run: per set, its scores today and now, and its verdicts at the default thresholds."""
    results: dict[str, dict] = {}
    for name, (images, refused) in sets.items():
        raw, distance = predictor.assess(images)
        judged = judgement(temperature_scaled(raw, predictor.calibration.temperature), distance, predictor.calibration)
        verdicts = np.array(judged.verdicts)
        results[name] = {
            "today": raw.max(axis=1),
            "now": judged.typicality - 1e-9 * distance,  # ties broken by the distance itself
            "answered": float(np.sum(verdicts == "digit")) / (len(images) + refused),
            "not_a_digit": (float(np.sum(verdicts == "not_a_digit")) + refused) / (len(images) + refused),
            "refused": refused,
            "n": len(images) + refused,
            "raw": raw,
            "calibrated": judged.probabilities,
            "verdicts": verdicts,
        }
        if name in ids:
            results[name]["labels"] = ids[name]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="LABEL=DIR of a run or ensemble (repeatable).")
    parser.add_argument("--real", type=int, default=600, help="Photo-like real digits.")
    parser.add_argument("--per-kind", type=int, default=300, help="Letters, blends and each generated kind.")
    parser.add_argument("--fashion", type=int, default=10_000, help="Fashion-MNIST test images.")
    args = parser.parse_args()
    console = Console(width=140)
    machine = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    mnist = load_dataset("mnist")
    real, real_labels, real_refused = real_digits(args.real)
    others, fonts = out_of_distribution(args.per_kind, args.fashion, mnist)
    console.print(
        f"letters: {synthetic.LETTERS} ({len(synthetic.LETTERS)}); left out as digit look-alikes:"
        f" {' '.join(synthetic.LOOK_ALIKES)}; fonts: {', '.join(fonts)}",
        highlight=False,
    )
    sets = {"MNIST test": (mnist.x_test, 0), "real digits": (real, real_refused), **others}
    ids = {"MNIST test": mnist.y_test, "real digits": real_labels}
    with tempfile.TemporaryDirectory() as tmp:
        for label, run, predictor in loaded(args.run, Path(tmp), console):
            report(console, label, run, predictor, measure(predictor, sets, ids), machine)


def loaded(given: list[str], folder: Path, console: Console) -> Iterator[tuple[str, Path, Predictor]]:
    """Each run named LABEL=DIR (without any, the DEFAULT_RUNS trained into `folder`) with its predictor, saying when
    a run has no stored calibration (its verdicts then use defaults)."""
    named = {label: Path(path) for label, path in (item.split("=", 1) for item in given)}
    for label, run in (named or train(folder)).items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DefaultCalibrationWarning)
            predictor = load_predictor(run)
        if caught:
            console.print(f"{label}: no stored calibration, defaults used", highlight=False)
        yield label, run, predictor


def report(console: Console, label: str, run: Path, predictor: Predictor, r: dict, machine: str) -> None:
    real_today = r["real digits"]["today"]
    cut = float(np.quantile(real_today, 0.05))  # today's threshold: keeps 95% of the real digits
    table = Table(title=f"{label} ({run.name}): verdicts and the top probability, {machine}")
    for column in ("figure", "top probability", "verdict", "target"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    pairs = [("MNIST test", "Fashion-MNIST", "≥ 0.99"), ("real digits", "letters", "≥ 0.95")]
    for digits, other, target in pairs:
        today = auroc(r[digits]["today"], r[other]["today"])
        now = auroc(r[digits]["now"], r[other]["now"])
        table.add_row(
            f"AUROC, {digits} vs {other}",
            f"{today:.3f}",
            f"{now:.3f}",
            target,
        )
    for other in ("scribbles", "shapes", "silhouettes", "noise", "textures", "blends"):
        table.add_row(
            f"AUROC, MNIST test vs {other}",
            f"{auroc(r['MNIST test']['today'], r[other]['today']):.3f}",
            f"{auroc(r['MNIST test']['now'], r[other]['now']):.3f}",
            "",
        )
    n_real = r["real digits"]["n"]
    table.add_row(
        f"real digits answered ({n_real}, {r['real digits']['refused']} refused by the preparation)",
        f"{np.sum(real_today >= cut) / n_real:.1%}",
        f"{r['real digits']['answered']:.1%}",
        "≥ 95%",
    )
    table.add_row(
        "MNIST test answered (coverage)",
        f"{np.mean(r['MNIST test']['today'] >= cut):.1%}",
        f"{r['MNIST test']['answered']:.1%}",
        "",
    )
    targets = {"Fashion-MNIST": "≥ 95%", "letters": "≥ 80%", "silhouettes": "", "blends": ""}
    for other in ("Fashion-MNIST", "letters", "scribbles", "shapes", "silhouettes", "noise", "textures", "blends"):
        s = r[other]
        today = (np.sum(s["today"] < cut) + s["refused"]) / s["n"]
        refused = f", {s['refused']} refused by the preparation" if s["refused"] else ""
        table.add_row(
            f"{other} rejected as not a digit ({s['n']}{refused}); not answered",
            f"{today:.1%}",
            f"{s['not_a_digit']:.1%}; {1 - s['answered']:.1%}",
            targets.get(other, "≥ 99%"),
        )
    m = r["MNIST test"]
    y = m["labels"]
    before = expected_calibration_error(m["raw"], y)[0]
    after = expected_calibration_error(m["calibrated"], y)[0]
    table.add_row("expected calibration error, MNIST test", f"{before:.2%}", f"{after:.2%}", "≤ 1%")
    acc_today = float(np.mean(m["raw"].argmax(axis=1) == y))
    acc_now = float(np.mean(m["calibrated"].argmax(axis=1) == y))
    table.add_row(
        "MNIST test accuracy (all images; on the answered ones)",
        f"{acc_today:.2%}",
        f"{acc_now:.2%} ({acc_now - acc_today:+.2%}); {answered_accuracy(m):.2%}",
        "within 0.05 points",
    )
    real = r["real digits"]
    today_real = np.mean(real["raw"].argmax(axis=1) == real["labels"])
    table.add_row("real digits accuracy (all; answered)", f"{today_real:.2%}", f"{answered_accuracy(real):.2%}", "")
    if hasattr(predictor, "model"):
        ms = latency(predictor, load_dataset("mnist").x_test[0])
        table.add_row(
            "latency per single image, median of 1,000 (ms): today; with the verdict",
            f"{ms['today']:.3f}",
            f"{ms['verdict']:.3f} ({ms['verdict'] / ms['today'] - 1:+.1%})",
            "≤ +10%",
        )
        table.add_row(
            "  the verdict's own cost: Predictor.probabilities now; with the verdict",
            f"{ms['now']:.3f}",
            f"{ms['verdict']:.3f} ({ms['verdict'] / ms['now'] - 1:+.1%})",
            "",
        )
    table.add_row(
        "stored: temperature · score · reject threshold · confidence threshold",
        "",
        f"{predictor.calibration.temperature:.3f} · {predictor.calibration.score} · "
        f"{predictor.calibration.reject_threshold:.3f} · {predictor.calibration.confidence_threshold:.2f}",
        "",
    )
    console.print(table)


def answered_accuracy(s: dict) -> float:
    answered = s["verdicts"] == "digit"
    return float(np.mean(s["calibrated"][answered].argmax(axis=1) == s["labels"][answered]))


if __name__ == "__main__":
    main()
