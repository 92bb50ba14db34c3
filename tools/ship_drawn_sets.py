"""`make drawn-sets`: draw every image set a run on MNIST's own split asks for, and ship them in the package.

Each model below is trained for one epoch by `mnist-classifier train`, with an empty cache folder and no shipped sets,
so that it draws what any run on the default split draws: training's photographed digits, digits in other styles,
printed digits and non-digit pool, and the validation and held-out sets of calibration and evaluation (the presets
share them). The sets are written into one compressed archive, drawn.npz, with drawn.json beside it (POOL_VERSION,
the archive's SHA-256 and size, each set's image count, the commands), and both are swapped in by renames. Run it
again after bumping POOL_VERSION or DRAWING: the shipped names then no longer match, and a first run draws again.

    python tools/ship_drawn_sets.py
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from mnist_classifier.data.synthetic.cache import ENVIRONMENT, POOL_VERSION, SHIPPED

RUNS = [["--model", "dnn"], ["--model", "cnn", "--preset", "fast"]]


def draw(work: Path) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """The sets that one epoch of each run draws, by name, and the commands that drew them."""
    env = os.environ | {"MNIST_CLASSIFIER_CACHE": str(work / "cache"), ENVIRONMENT: ""}
    commands = []
    for i, options in enumerate(RUNS):
        command = ["train", *options, "--epochs", "1", "--out", str(work / f"run-{i}")]
        subprocess.run([sys.executable, "-m", "mnist_classifier", *command], env=env, check=True)
        commands.append(["mnist-classifier", *command[:-2]])
    files = sorted((work / "cache" / "nondigits").glob("*.npy"))
    return {path.stem: np.load(path, allow_pickle=False) for path in files}, commands


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="drawn-sets-") as work:
        sets, commands = draw(Path(work))
    staged = SHIPPED.with_name(f".{SHIPPED.stem}.partial.npz")
    np.savez_compressed(staged, **sets)
    content = staged.read_bytes()
    manifest = {
        "pool_version": POOL_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sha256": hashlib.sha256(content).hexdigest(),
        "bytes": len(content),
        "commands": commands,
        "sets": {name: len(images) for name, images in sets.items()},
    }
    staged_manifest = staged.with_suffix(".json")
    staged_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    staged.rename(SHIPPED)
    staged_manifest.rename(SHIPPED.with_suffix(".json"))
    images = sum(manifest["sets"].values())
    print(f"shipped {len(sets)} sets, {images:,} images, {len(content) / 2**20:.1f} MiB: {SHIPPED.name}")


if __name__ == "__main__":
    main()
