"""`make models`: train the bundled models with the project's own command and write them into the package.

Each model is trained by `mnist-classifier train` (the command and seed below, the preset as it is now, so a
re-tuned preset is picked up), converted to ONNX as `predict` converts it (onnx_cache.convert, checked against
Keras), cut to what reading needs, given its model card and a manifest (SHA-256 and size per file, date, accuracy,
command, seed, versions), and swapped in for the old folder by renames: an interrupted run leaves the old bundle.
Each model's card is also written as a page of the docs (docs/models/NAME.md).

    python tools/bundle_models.py [NAME ...]            (default: every model below)
    python tools/bundle_models.py --cards [NAME ...]    (only the cards, manifests and docs pages, from the files)
    python tools/bundle_models.py --onnx [NAME ...]     (the same, and the ONNX copy converted again from
                                                         model.keras: after a change of layers.py's graph)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "src" / "mnist_classifier" / "bundled"
DOCS = ROOT / "docs" / "models"
# name -> (what it is, the `train` options that make it); the seed is recorded in the manifest with the command
MODELS: dict[str, tuple[str, list[str]]] = {
    "cnn-fast": ("the fast CNN (the default: read when no RUN is given)", ["--model", "cnn", "--preset", "fast"]),
    "dnn": ("the default DNN (the study's fully connected network)", ["--model", "dnn"]),
}
SEED = 42
# copied as they are; misclassified.npz (the test images it got wrong, by index) lets a test check metrics.json
KEPT = ("config.json", "metrics.json", "calibration.json", "calibration.npz", "misclassified.npz")


def train(name: str, work: Path) -> tuple[Path, list[str]]:
    """Train the model into `work` by the project's own command; return the run folder and the command."""
    options = [*MODELS[name][1], "--seed", str(SEED)]
    run = work / "run"
    subprocess.run([sys.executable, "-m", "mnist_classifier", "train", *options, "--out", str(run)], check=True)
    return run, ["mnist-classifier", "train", *options]


def cut(run: Path, target: Path) -> None:
    """The bundle's files from the run: settings, evaluation and calibration as they are, model.keras saved again
    without its optimizer state (reading never needs it), and the ONNX copy `predict` would convert and check."""
    from mnist_classifier.runs import load_model
    from mnist_classifier.utils import import_tensorflow_quietly

    import_tensorflow_quietly()
    for name in KEPT:
        shutil.copyfile(run / name, target / name)
    load_model(run).save(target / "model.keras")
    convert(target, f"{run}: its ONNX copy could not be made (see the warning above); nothing was bundled")


def convert(target: Path, failed: str) -> None:
    """The ONNX copy of `target`'s model.keras, as `predict` would convert and check it; `failed` ends the command
    when it cannot be made."""
    from mnist_classifier import onnx_cache
    from mnist_classifier.backends import KerasBackend
    from mnist_classifier.runs import load_model

    backend = KerasBackend(load_model(target / "model.keras"))
    onnx_cache.convert(backend.reader, backend.features, target / "model.onnx")
    if not (target / "model.onnx").is_file():
        raise SystemExit(failed)


def manifest(name: str, target: Path, command: list[str], created: str) -> dict:
    """What the bundle is, what made it, and each file's SHA-256 and size."""
    from mnist_classifier.bundled import MANIFEST, sha256

    config = json.loads((target / "config.json").read_text())
    metrics = json.loads((target / "metrics.json").read_text())
    listed = (p for p in sorted(target.iterdir()) if p.is_file() and p.name != MANIFEST)
    files = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in listed}
    return {
        "name": name,
        "description": MODELS[name][0],
        "created": created,
        "accuracy": metrics["accuracy"],
        "dataset": metrics["dataset"],
        "split": metrics["split"],
        "n": metrics["n"],
        "command": command,
        "seed": config["seed"],
        "versions": config["meta"]["versions"] | {"onnxruntime": version("onnxruntime")},
        "files": files,
    }


def finish(name: str, staged: Path, command: list[str], created: str) -> Path:
    """Write the staged bundle's card and manifest, rename it into place, and rewrite its docs page."""
    from mnist_classifier.bundled import MANIFEST
    from mnist_classifier.report.model_card import CARD, card_markdown
    from mnist_classifier.utils import write_json, write_text

    (staged / CARD).write_text(card_markdown(staged, name=f"bundled:{name}"))
    write_json(staged / MANIFEST, manifest(name, staged, command, created))
    target, old = BUNDLE / name, BUNDLE / f".{name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    page = card_markdown(target, variants_page="[Digit variants](../results/variants.md)", name=f"bundled:{name}")
    write_text(DOCS / f"{name}.md", page)
    return target


def bundle(name: str) -> None:
    """Train, cut, card and swap in one bundled model, and rewrite its docs page."""
    with tempfile.TemporaryDirectory(prefix=f"bundle-{name}-") as work:
        run, command = train(name, Path(work))
        staged = fresh(name)
        try:
            cut(run, staged)
            target = finish(name, staged, command, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    print(f"bundled {name}: {sum(p.stat().st_size for p in target.iterdir()) / 2**20:.2f} MiB, card and docs page")


def recard(name: str, onnx: bool = False) -> None:
    """Write a bundled model's card (and so its manifest and docs page) again from its files, without training:
    for a change of the card's wording; with `onnx`, convert its ONNX copy again from its model.keras too."""
    from mnist_classifier.bundled import CARD_FILE, load

    model = load(name)
    staged = fresh(name)
    try:
        for file in model.manifest["files"]:
            if file != CARD_FILE and not (onnx and file == "model.onnx"):
                shutil.copyfile(model.path / file, staged / file)
        if onnx:
            convert(staged, f"{name}: its ONNX copy could not be made (see the warning above); nothing changed")
        finish(name, staged, model.manifest["command"], model.manifest["created"])
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    print(f"wrote the {'ONNX copy and ' * onnx}card of {name} again")


def fresh(name: str) -> Path:
    """An empty staging folder beside the bundle (hidden: a dot name is never packaged)."""
    staged = BUNDLE / f".{name}.partial"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    return staged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[*MODELS, []], help="models to bundle (default: all)")
    parser.add_argument("--cards", action="store_true", help="only write the cards again, from the bundled files")
    parser.add_argument("--onnx", action="store_true", help="the cards and the ONNX copies, from model.keras")
    args = parser.parse_args()
    for name in args.names or list(MODELS):
        if args.cards or args.onnx:
            recard(name, onnx=args.onnx)
        else:
            bundle(name)


if __name__ == "__main__":
    main()
