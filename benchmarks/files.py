"""`predict` on folders of image files, whole command: MNIST-style PNGs, the same digits drawn dark on light, photos.

Usage: python benchmarks/files.py [--model-run DIR] [--files 10000] [--photos 1000] [--repeats 3]

Without --model-run it trains the default DNN first (about a minute). Each folder is read by `mnist-classifier
predict --json` in a fresh process (start-up, model loading and the ONNX copy from the cache included; the copy is
made once before timing), the median of --repeats runs; beside it, in the same sitting, the reading loop in this
process with the files read here and in worker processes (image_files.read_files), whose ratio is the workers' gain.
Photos are benchmarks/serving.py's photo-like digits (a few hundred pixels a side, PNG and JPEG, both polarities).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _serve import CLI, train_model
from PIL import Image
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
import serving

from mnist_classifier import image_files
from mnist_classifier.data import load_dataset
from mnist_classifier.inference import fast_predictor
from mnist_classifier.processes import usable_cores

TARGETS = {"MNIST-style": 2.0, "dark on light": 4.0}  # issue 24: whole command, 10,000 files, seconds


def write_folders(folder: Path, files: int, photos: int) -> dict[str, Path]:
    """The three folders: MNIST test digits as PNG files (NAME-LABEL.png), the same inverted, and photos."""
    data = load_dataset("mnist")
    folders = {name: folder / name for name in ("MNIST-style", "dark on light", "photos")}
    for path in folders.values():
        path.mkdir()
    for i in range(files):
        digit, label = data.x_test[i % 10_000], data.y_test[i % 10_000]
        Image.fromarray(digit).save(folders["MNIST-style"] / f"{i:05d}-{label}.png")
        Image.fromarray(255 - digit).save(folders["dark on light"] / f"{i:05d}-{label}.png")
    serving.real_images(folders["photos"], photos)
    return folders


def whole_command(run: Path, folder: Path) -> tuple[float, float]:
    """Seconds of one `predict --json` of the folder, and the share of files read as their label."""
    start = time.perf_counter()
    done = subprocess.run([*CLI, "predict", str(run), str(folder), "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 2):
        raise RuntimeError(done.stderr[-2000:])
    return seconds, serving.accuracy(json.loads(done.stdout))


def loop_seconds(run: Path, folder: Path, workers: bool) -> float:
    """The reading loop once the model is loaded, with the files read in worker processes or here."""
    predictor = fast_predictor(run)
    paths, _ = image_files.image_files([folder])
    image_files.PARALLEL_SECONDS = 0.0 if workers else float("inf")
    start = time.perf_counter()
    for _ in image_files.read_files(predictor, paths):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-run", type=Path, help="a run folder to use instead of training the default DNN")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    stamp = f"{platform.processor() or platform.machine()}, {usable_cores()} cores · commit {commit}"
    table = Table(title=f"predict on image files ({stamp} · python benchmarks/files.py)")
    for column in ("folder", "files", "whole command (median)", "files/s", "accuracy", "loop: here", "workers", "gain"):
        table.add_column(column, justify="left" if column == "folder" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        run = args.model_run or train_model(Path(tmp))
        folders = write_folders(Path(tmp), args.files, args.photos)
        whole_command(run, folders["MNIST-style"])  # the ONNX copy is made once, before timing
        for name, folder in folders.items():
            count = sum(1 for _ in folder.iterdir())
            runs = [whole_command(run, folder) for _ in range(args.repeats)]
            seconds = statistics.median(s for s, _ in runs)
            here = statistics.median(loop_seconds(run, folder, False) for _ in range(args.repeats))
            spread = statistics.median(loop_seconds(run, folder, True) for _ in range(args.repeats))
            target = TARGETS.get(name) if count == 10_000 else None
            verdict = "" if target is None else f" {'✓' if seconds <= target else '✗'} ≤ {target:.0f} s"
            table.add_row(
                name,
                f"{count:,}",
                f"{seconds:.2f} s{verdict}",
                f"{count / seconds:,.0f}",
                f"{runs[0][1]:.2%}",
                f"{here:.2f} s",
                f"{spread:.2f} s",
                f"{here / spread:.2f}x",
            )
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
