"""Predicting fast: one image and 10,000 at once, per run and per way of running it, against issue 24's targets.

Usage: python benchmarks/inference.py [--run LABEL=DIR ...] [--repeats 3] [--per-kind 200] [--fashion 2000]

Without --run it trains the fast CNN and the default DNN first (ood.train). Rows, each run: Keras `model.predict`;
`run.predict` with the Keras back-end (the path before this benchmark, a compiled concrete function);
`run.predict` now (float32 ONNX copy in onnxruntime); `run.predict` in int8 (`load_run(DIR, precision="int8")`);
and the bare ONNX sessions, float32 and int8, without our Python around them. One image: the median of 1,000 calls
(100 for `model.predict`, whose set-up costs milliseconds) on MNIST test images; images/s: 10,000 MNIST test images
in one call; each the median of --repeats rounds, the candidates interleaved in each round so that they share the
machine's noise. Then the int8 copy's verdict figures beside float32's (benchmarks/variants.py's sets, smaller), and
whether int8 is kept: faster on 10,000 images, accuracy within 0.05 points, every verdict figure within target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
import ood
import variants

import mnist_classifier as mc
from mnist_classifier import hardware, onnx_cache
from mnist_classifier.data import load_dataset
from mnist_classifier.inference import Predictor
from mnist_classifier.preprocess import scale
from mnist_classifier.runs import load_model, model_file

ONE_IMAGE_MS = 0.15  # issue 24: run.predict, one image, verdict included
IMAGES_PER_S = 200_000  # issue 24: run.predict on 10,000 images
Predict = Callable[[np.ndarray], np.ndarray]  # uint8 images -> (N, classes) probabilities


def candidates(run_dir: Path) -> dict[str, Predict]:
    """Each way of reading images with this run, as a function from uint8 images to probabilities."""
    model = load_model(run_dir)
    before = mc.load_run(run_dir)
    before.__dict__["predictor"] = Predictor(run_dir)  # the Keras back-end: what run.predict ran before
    now, int8 = mc.load_run(run_dir), mc.load_run(run_dir, precision="int8")
    float_copy = onnx_cache.location(model_file(run_dir))
    now.predictor, int8.predictor  # noqa: B018 (loaded here: converting and quantizing is no prediction)
    out: dict[str, Predict] = {
        "keras model.predict": lambda x: model.predict(scale(x), verbose=0, batch_size=len(x)),
        "run.predict, Keras back-end (before)": lambda x: before.predict(x).probabilities,
        f"run.predict now ({now.predictor.runtime})": lambda x: now.predict(x).probabilities,
        f"run.predict, precision int8 ({int8.predictor.runtime})": lambda x: int8.predict(x).probabilities,
    }
    for name, file in (("float32", float_copy), ("int8", onnx_cache.int8_location(float_copy))):
        if file.is_file():
            session = onnx_cache.Session(file)
            out[f"onnxruntime {name} alone"] = lambda x, s=session: s.probabilities(scale(x))
    return out


def one_image_ms(predict: Predict, images: np.ndarray, calls: int) -> float:
    times = []
    for i in range(calls):
        start = time.perf_counter()
        predict(images[i : i + 1])
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


def measure(run_dir: Path, x: np.ndarray, y: np.ndarray, repeats: int) -> dict[str, dict[str, float]]:
    """Per candidate: one image (ms), images/s on all of x, accuracy; medians over interleaved rounds."""
    found = candidates(run_dir)
    rows: dict[str, dict[str, list[float]]] = {name: {"ms": [], "rate": [], "accuracy": []} for name in found}
    for predict in found.values():
        predict(x[:1]), predict(x[:256])  # warm: graphs traced, sessions' buffers allocated
    for _ in range(repeats):
        for name, predict in found.items():
            calls = 100 if name.startswith("keras") else 1000
            rows[name]["ms"].append(one_image_ms(predict, x, calls))
            start = time.perf_counter()
            probs = predict(x)
            rows[name]["rate"].append(len(x) / (time.perf_counter() - start))
            rows[name]["accuracy"].append(float(np.mean(probs.argmax(axis=1) == y)))
    return {name: {k: float(np.median(v)) for k, v in row.items()} for name, row in rows.items()}


def verdict_figures(predictor: Predictor, mnist: tuple[np.ndarray, np.ndarray], digits: dict, others: dict) -> dict:
    """variants.measure's figures that decide int8: MNIST answered and not a digit, each non-digit set turned away."""
    measured = variants.measure(predictor, mnist, digits, others)
    m = measured["MNIST test"]
    figures = {"MNIST answered": (m.answered, 0.985, True), "MNIST not a digit": (m.not_a_digit, 0.005, False)}
    for kind, s in measured["digits"].items():
        figures[f"{kind}: right"] = (s.right, 0.90, True)
    for name, (share, _, _) in measured["others"].items():
        figures[f"{name} turned away"] = (share, variants.TURNED_AWAY.get(name, 0.0), True)
    return figures


def met(value: float, bound: float, at_least: bool) -> bool:
    return value >= bound if at_least else value <= bound


def report(console: Console, label: str, rows: dict[str, dict[str, float]], verdicts: dict, header: str) -> None:
    table = Table(title=f"{label}: predicting ({header})")
    for column in ("path", "one image ms", "images/s (10,000)", "test accuracy", "targets"):
        table.add_column(column, justify="left" if column in ("path", "targets") else "right")
    for name, row in rows.items():
        target = ""
        if name.startswith("run.predict now"):
            one, rate = row["ms"] <= ONE_IMAGE_MS, row["rate"] >= IMAGES_PER_S
            target = f"≤ {ONE_IMAGE_MS} ms {'✓' if one else '✗'} · ≥ {IMAGES_PER_S:,}/s {'✓' if rate else '✗'}"
        table.add_row(name, f"{row['ms']:.3f}", f"{row['rate']:,.0f}", f"{row['accuracy']:.2%}", target)
    console.print(table)
    figures = Table(title=f"{label}: verdict figures, float32 vs int8 (benchmarks/variants.py's sets)")
    for column in ("figure", "float32", "int8", "target"):
        figures.add_column(column, justify="left" if column == "figure" else "right")
    f32, i8 = verdicts["float32"], verdicts["int8"]
    for name, (value, bound, at_least) in f32.items():
        sign = "≥" if at_least else "≤"
        mark = "✓" if met(i8[name][0], bound, at_least) else "✗"
        figures.add_row(name, f"{value:.1%}", f"{i8[name][0]:.1%}", f"{sign} {bound:.1%} (int8 {mark})")
    console.print(figures)
    now = next(row for name, row in rows.items() if name.startswith("run.predict now"))
    int8 = next(row for name, row in rows.items() if name.startswith("run.predict, precision int8"))
    reasons = []
    speed = int8["rate"] / now["rate"]
    if speed <= 1:
        reasons.append(f"no faster on 10,000 images ({speed:.2f}x float32)")
    drop = (now["accuracy"] - int8["accuracy"]) * 100
    if drop > 0.05:
        reasons.append(f"accuracy {drop:.2f} points lower")
    missed = [name for name, (value, bound, at_least) in i8.items() if bound and not met(value, bound, at_least)]
    newly = [name for name in missed if met(*f32[name])]
    if newly:
        reasons.append(f"misses what float32 meets: {', '.join(newly)}")
    verdict = "not kept: " + "; ".join(reasons) if reasons else f"kept: {speed:.2f}x float32, accuracy -{drop:.2f} pt"
    console.print(f"int8 for {label}: {verdict} (one image {int8['ms']:.3f} vs {now['ms']:.3f} ms)", highlight=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="LABEL=DIR of a run (repeatable).")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved rounds; medians are printed.")
    parser.add_argument("--per-kind", type=int, default=200, help="Digits of each variant kind; non-digits per kind.")
    parser.add_argument("--fashion", type=int, default=2000, help="Fashion-MNIST test images.")
    args = parser.parse_args()
    console = Console(width=150)
    header = f"{variants.machine()} · commit {variants.commit()} · python benchmarks/inference.py"
    header = f"{header} {' '.join(sys.argv[1:])}".rstrip()
    console.print(header, highlight=False)
    console.print(f"int8 units: {hardware.int8_units() or 'none (int8 falls back to float32)'}", highlight=False)
    data = load_dataset("mnist")
    mnist = (data.x_test, data.y_test)
    digits = variants.digit_sets(data.x_test, data.y_test, args.per_kind)
    others, _ = ood.out_of_distribution(args.per_kind, args.fashion, data)
    with tempfile.TemporaryDirectory() as tmp:
        named = {label: Path(path) for label, path in (item.split("=", 1) for item in args.run)}
        for label, run_dir in (named or ood.train(Path(tmp))).items():
            rows = measure(run_dir, data.x_test, data.y_test, args.repeats)
            verdicts = {
                precision: verdict_figures(mc.load_run(run_dir, precision).predictor, mnist, digits, others)
                for precision in ("float32", "int8")
            }
            report(console, f"{label} ({run_dir.name})", rows, verdicts, header)


if __name__ == "__main__":
    main()
