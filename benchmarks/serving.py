"""Serving and real images: HTTP latency and throughput, `predict` on a folder, accuracy on photo-like digits.

Usage: python benchmarks/serving.py [--model-run DIR] [--requests 4000] [--clients 8] [--rounds 3] [--workers 1]
                                    [--files 10000] [--real 600] [--http-only]

Without --model-run it trains the default DNN first (about half a minute). Everything runs
through the real command line in fresh processes: `mnist-classifier serve` answers 8 concurrent
keep-alive clients on 127.0.0.1 posting 28x28 PNGs, beside a bare FastAPI app that only reads the upload
(benchmarks/_stack.py: the ratio of their requests/s is the figure); `mnist-classifier predict --json` reads a
folder of MNIST test PNGs; and a set of digits unlike MNIST's, drawn here with handwriting-style fonts and with
random pen strokes on paper-like backgrounds, is read with and without the MNIST-style preparation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from _serve import CLI, free_port, hostile_pngs, served, train_model
from _stack import compare
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from rich.console import Console
from rich.table import Table

from mnist_classifier.data import load_dataset

FONT_FOLDERS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# Handwriting-style fonts from Debian packages (fonts-humor-sans, fonts-dkg-handwriting, fonts-breip,
# fonts-comic-neue; not fonts-femkeklaver, whose digits are outlines); DejaVu and Liberation stand in without them.
HANDWRITING = ("Humor-Sans", "dkg", "Breip", "ComicNeue-Regular", "ComicNeue-Bold", "ComicNeue-Italic")
FALLBACK = ("DejaVuSans-Oblique", "DejaVuSans", "LiberationSans-Italic", "DejaVuSansCondensed-Oblique")


def answer_seconds(port: int, body: bytes, repeats: int = 5) -> float:
    """The median time to an answer (any status) of POST /predict with a raw PNG body."""
    times = []
    for _ in range(repeats):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict", body, {"content-type": "image/png"}, method="POST"
        )
        start = time.perf_counter()
        try:
            urllib.request.urlopen(request, timeout=60).read()
        except urllib.error.HTTPError as refused:
            refused.read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_server(run: Path, count: int, clients: int, rounds: int, workers: int) -> dict[str, dict[str, float]]:
    """_stack.compare's figures, then the hostile PNGs' answer times from a server of its own."""
    figures = compare(run, count, clients, rounds, "--workers", str(workers))
    if workers > 1:  # the parent process was measured, not the workers that answer
        figures["real"]["cpu_us"] = math.nan
    port = free_port()
    with served(run, port, "--workers", str(workers)):
        figures["hostile"] = {name: answer_seconds(port, body) for name, body in hostile_pngs().items()}
    return figures


def run_predict(run: Path, target: Path, *options: str) -> tuple[list[dict], float]:
    start = time.perf_counter()
    command = [*CLI, "predict", str(run), str(target), "--json", *options]
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 2):
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout), seconds


def accuracy(results: list[dict]) -> float:
    """Share of files whose predicted digit equals the label at the end of the file's name (NAME-LABEL.ext)."""
    return sum(r.get("digit") == Path(r["file"]).stem.rsplit("-", 1)[1] for r in results) / len(results)


def bench_folder(run: Path, folder: Path, files: int, repeats: int = 3) -> dict[str, float]:
    """`predict --json` on the folder in fresh processes, end to end (start-up included): the first run with
    the model (an empty cache, so it loads TensorFlow and converts the model to ONNX) and the median of
    `repeats` later ones; then predict's reading loop in this process once the model is loaded."""
    from mnist_classifier.image_files import image_files, read_files
    from mnist_classifier.inference import fast_predictor

    data = load_dataset("mnist")
    for i in range(files):
        Image.fromarray(data.x_test[i % 10_000]).save(folder / f"{i:05d}-{data.y_test[i % 10_000]}.png")
    results, first = run_predict(run, folder)
    seconds = statistics.median(run_predict(run, folder)[1] for _ in range(repeats))
    predictor = fast_predictor(run)
    start = time.perf_counter()
    paths, _ = image_files([folder])
    read = sum(1 for reading in read_files(predictor, paths) if reading.error is None)
    loop = time.perf_counter() - start
    return {
        "files": len(results),
        "first_seconds": first,
        "seconds": seconds,
        "per_second": len(results) / seconds,
        "per_second_first": len(results) / first,
        "per_second_loaded": read / loop,
        "accuracy": accuracy(results),
    }


def fonts() -> tuple[list[Path], bool]:
    """Handwriting-style font files if any is installed (True), else common fonts (False)."""
    found = {
        p.stem: p
        for folder in FONT_FOLDERS
        if folder.is_dir()
        for p in folder.rglob("*")
        if p.suffix in {".ttf", ".otf"}
    }
    handwriting = [found[name] for name in HANDWRITING if name in found]
    return (handwriting, True) if handwriting else ([found[name] for name in FALLBACK if name in found], False)


def stroke_paths(digit: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Pen strokes of a digit as point arrays in a unit box (x right, y down), with random wobble."""

    def arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 40) -> np.ndarray:
        t = np.radians(np.linspace(start, stop, n))
        return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)

    def line(*points: tuple[float, float]) -> np.ndarray:
        return np.array(points, dtype=float)

    shapes = {
        0: [arc(0.5, 0.5, 0.32, 0.48, -90, 275)],
        1: [line((0.3, 0.22), (0.55, 0.0), (0.55, 1.0))] if rng.random() < 0.5 else [line((0.5, 0.0), (0.45, 1.0))],
        2: [np.concatenate([arc(0.5, 0.28, 0.32, 0.27, 190, 380), line((0.78, 0.42), (0.12, 1.0), (0.9, 1.0))])],
        3: [np.concatenate([arc(0.48, 0.26, 0.3, 0.25, 200, 450), arc(0.48, 0.74, 0.34, 0.26, -90, 160)])],
        4: [line((0.55, 0.0), (0.12, 0.65), (0.9, 0.65)), line((0.68, 0.3), (0.68, 1.0))],
        5: [
            line((0.85, 0.0), (0.28, 0.0), (0.24, 0.45)),
            np.concatenate([line((0.24, 0.45)), arc(0.5, 0.7, 0.33, 0.3, -120, 150)]),
        ],
        6: [np.concatenate([arc(0.75, 0.55, 0.6, 0.55, 250, 180), arc(0.5, 0.72, 0.3, 0.28, 180, 540)])],
        7: [line((0.1, 0.02), (0.9, 0.0), (0.38, 1.0))],
        8: [np.concatenate([arc(0.5, 0.25, 0.25, 0.24, 90, 450), arc(0.5, 0.73, 0.32, 0.27, -90, 270)])],
        9: [arc(0.48, 0.28, 0.3, 0.27, 0, 360), line((0.78, 0.28), (0.7, 1.0))],
    }
    wobble = rng.normal(0, 0.03, size=(1, 2))
    return [path + wobble + rng.normal(0, 0.012, size=path.shape) for path in shapes[digit]]


def paper(size: tuple[int, int], light: bool, rng: np.random.Generator) -> np.ndarray:
    """An RGB background: tinted paper (or a dark board), uneven lighting, texture and noise."""
    height, width = size[1], size[0]
    base = rng.uniform(190, 250) if light else rng.uniform(20, 80)
    tint = rng.uniform(-12, 12, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) * rng.uniform(0, 50)
    small = rng.normal(0, 1, (max(2, height // 16), max(2, width // 16)))
    blotches = np.asarray(Image.fromarray(small.astype(np.float32), "F").resize((width, height), Image.BICUBIC))
    grain = rng.normal(0, rng.uniform(2, 9), (height, width))
    shade = base + ramp - ramp.mean() + blotches * rng.uniform(2, 8) + grain
    return np.clip(shade[..., None] + tint, 0, 255)


def ink_layer(digit: int, fonts_: list[Path], rng: np.random.Generator, height: int) -> tuple[np.ndarray, str]:
    """An alpha mask (float 0..1) of one digit about `height` pixels tall, by font or by pen strokes, slanted
    and rotated; and which of the two it is."""
    canvas = Image.new("L", (height * 2, height * 2), 0)
    draw = ImageDraw.Draw(canvas)
    kind = "font" if fonts_ and rng.random() < 0.5 else "strokes"
    if kind == "font":
        font = ImageFont.truetype(str(fonts_[rng.integers(len(fonts_))]), size=int(height * 1.3))
        bold = int(rng.integers(0, max(1, height // 25) + 1))
        draw.text((height, height), str(digit), fill=255, font=font, anchor="mm", stroke_width=bold, stroke_fill=255)
    else:
        width = max(2, int(height * rng.uniform(0.05, 0.14)))
        box = height * rng.uniform(0.55, 0.8), height
        for path in stroke_paths(digit, rng):
            points = [(height / 2 + x * box[0], height / 2 + y * box[1]) for x, y in path]
            draw.line(points, fill=255, width=width, joint="curve")
            for x, y in (points[0], points[-1]):
                draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    shear = rng.uniform(-0.3, 0.3)
    canvas = canvas.transform(canvas.size, Image.AFFINE, (1, shear, -shear * height, 0, 1, 0), Image.BILINEAR)
    canvas = canvas.rotate(rng.uniform(-10, 10), Image.BILINEAR)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    bbox = canvas.getbbox()
    return np.asarray(canvas.crop(bbox) if bbox else canvas, np.float32) / 255, kind


def real_images(folder: Path, count: int, seed: int = 0) -> bool:
    """Write `count` photo-like digit images named INDEX-POLARITY-KIND-LABEL.png or .jpg; True if fonts are
    handwriting-style."""
    rng = np.random.default_rng(seed)
    font_files, handwriting = fonts()
    for i in range(count):
        digit = i % 10
        width, height = int(rng.integers(48, 640)), int(rng.integers(48, 640))
        light = bool(rng.random() < 0.5)
        ink, kind = ink_layer(digit, font_files, rng, max(14, int(min(width, height) * rng.uniform(0.3, 0.75))))
        ink = ink[: height - 2, : width - 2]
        top = int(rng.integers(0, height - ink.shape[0] + 1))
        left = int(rng.integers(0, width - ink.shape[1] + 1))
        background = paper((width, height), light, rng)
        colour = rng.uniform(10, 70, 3) * [1, 1, 1.6] if light else rng.uniform(190, 250, 3)
        region = background[top : top + ink.shape[0], left : left + ink.shape[1]]
        alpha = ink[..., None] * rng.uniform(0.75, 1.0)
        region[:] = region * (1 - alpha) + colour * alpha
        image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")
        if rng.random() < 0.3:
            image = image.convert("L")
        name = f"{i:04d}-{'darkink' if light else 'lightink'}-{kind}-{digit}"
        if rng.random() < 0.5:
            image.save(folder / f"{name}.jpg", quality=int(rng.integers(55, 95)))
        else:
            image.save(folder / f"{name}.png")
    return handwriting


def http_rows(table: Table, figures: dict[str, dict[str, float]], requests: int, clients: int, rounds: int) -> None:
    bare, real = figures["bare"], figures["real"]
    where = f"{clients} clients, {requests:,} PNG requests a round, median of {rounds} rounds"
    table.add_row(f"HTTP bare FastAPI app reading the upload ({where})", f"{bare['per_second']:,.0f} req/s", "")
    table.add_row("HTTP server: throughput, same client, same rounds", f"{real['per_second']:,.0f} req/s", "")
    table.add_row("HTTP server / bare app", f"{figures['ratio']['per_second']:.2f}", "≥ 0.70")
    table.add_row(
        "HTTP server: median latency (bare app's)", f"{real['median_ms']:.1f} ms ({bare['median_ms']:.1f})", ""
    )
    table.add_row(
        "HTTP server: 99th percentile latency (bare app's)",
        f"{real['p99_ms']:.1f} ms ({bare['p99_ms']:.1f})",
        "≤ 15 ms",
    )
    table.add_row("HTTP: errors (non-200), server / bare app", f"{real['errors']:.0f} / {bare['errors']:.0f}", "0 / 0")
    table.add_row("HTTP server: correct digits", f"{real['accuracy']:.2%}", "")
    if not math.isnan(real["cpu_us"]):
        cpu = f"{real['cpu_us']:,.0f} µs ({bare['cpu_us']:,.0f})"
        table.add_row("HTTP server: CPU time a request, its process (bare app's)", cpu, "")
    rounds_ = figures["rounds"]
    table.add_row(
        "HTTP rounds, req/s (bare, server)",
        ", ".join(f"{rounds_[f'bare_{i}']:,.0f} {rounds_[f'real_{i}']:,.0f}" for i in range(rounds)),
        "",
    )
    hostile = figures["hostile"]
    table.add_row(
        "HTTP: 7000x7000 RGBA PNG refused from its header (413)", f"{hostile['rgba-7000x7000']:.2f} s", "≤ 2 s"
    )
    table.add_row("HTTP: 16-megapixel 1-bit PNG decoded and read", f"{hostile['1bit-16mp']:.2f} s", "≤ 2 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-run", type=Path, help="A run directory to use instead of training the default DNN.")
    parser.add_argument("--requests", type=int, default=4000, help="Requests a round, for each server.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="`serve --workers`.")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--real", type=int, default=600)
    parser.add_argument("--http-only", action="store_true", help="Only the HTTP rows.")
    args = parser.parse_args()
    console = Console(width=120)
    machine = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["MNIST_CLASSIFIER_CACHE"] = str(folder / "cache")  # predict's ONNX copies start from nothing
        run = args.model_run or train_model(folder)
        http = bench_server(run, args.requests, args.clients, args.rounds, args.workers)
        if not args.http_only:
            (folder / "mnist").mkdir()
            listed = bench_folder(run, folder / "mnist", args.files)
            (folder / "real").mkdir()
            handwriting = real_images(folder / "real", args.real)
            prepared, _ = run_predict(run, folder / "real")
            raw, _ = run_predict(run, folder / "real", "--no-prepare")
    table = Table(title=f"serving and real images, model {run.name}, {machine}, serve --workers {args.workers}")
    for column in ("measure", "result", "target"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    http_rows(table, http, args.requests, args.clients, args.rounds)
    if args.http_only:
        console.print(table)
        return
    table.add_row(
        f"predict on {listed['files']:,} PNG files, whole command, median of 3 ({listed['seconds']:.1f} s)",
        f"{listed['per_second']:,.0f} images/s",
        "≥ 2,000 images/s",
    )
    table.add_row(
        f"predict on the folder, first run with the model ({listed['first_seconds']:.1f} s: converts it to ONNX)",
        f"{listed['per_second_first']:,.0f} images/s",
        "",
    )
    table.add_row(
        "predict on the folder, reading loop once the model is loaded",
        f"{listed['per_second_loaded']:,.0f} images/s",
        "",
    )
    table.add_row("predict on the folder: accuracy", f"{listed['accuracy']:.2%}", "")
    table.add_row(
        f"real-image set ({len(prepared)} images): accuracy with preparation", f"{accuracy(prepared):.2%}", "≥ 95%"
    )
    table.add_row("real-image set: accuracy without preparation (--no-prepare)", f"{accuracy(raw):.2%}", "")
    console.print(table)
    groups: dict[str, list[dict]] = {}
    for result in prepared:
        _, polarity, kind, _ = Path(result["file"]).stem.split("-")
        groups.setdefault(polarity, []).append(result)
        groups.setdefault(kind, []).append(result)
    console.print(
        "real images with preparation, by group: "
        + ", ".join(f"{name} {accuracy(rs):.2%} of {len(rs)}" for name, rs in sorted(groups.items()))
        + "; fonts: "
        + (
            "handwriting-style (Debian packages)"
            if handwriting
            else "DejaVu/Liberation (no handwriting font installed)"
        )
    )


if __name__ == "__main__":
    main()
