"""The image sets shipped in the package (synthetic/drawn.npz): whole, complete for a run on the default split, the
very images the drawers draw now, and a damaged archive costs only drawing again."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mnist_classifier.calibrate import validation_images
from mnist_classifier.config import resolve
from mnist_classifier.data import load_dataset, split_validation, synthetic
from mnist_classifier.data.datasets import DIGITS, Dataset
from mnist_classifier.training import OUTLIER_POOL, prepare

cache = importlib.import_module("mnist_classifier.data.synthetic.cache")
nondigits = importlib.import_module("mnist_classifier.data.synthetic.nondigits")
photographed = importlib.import_module("mnist_classifier.data.synthetic.photographed")
printed = importlib.import_module("mnist_classifier.data.synthetic.printed")
variants = importlib.import_module("mnist_classifier.data.synthetic.variants")


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return load_dataset("mnist")


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache folder with nothing drawn in it, and the per-process caches of the shipped and drawn sets cleared."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", str(tmp_path))
    cache.shipped.cache_clear()
    nondigits.drawn_set.cache_clear()
    yield tmp_path
    cache.shipped.cache_clear()
    nondigits.drawn_set.cache_clear()


def test_the_archive_matches_its_manifest_and_this_pool_version() -> None:
    manifest = json.loads(cache.SHIPPED.with_suffix(".json").read_text())
    content = cache.SHIPPED.read_bytes()
    assert manifest["sha256"] == hashlib.sha256(content).hexdigest() and manifest["bytes"] == len(content)
    assert manifest["pool_version"] == cache.POOL_VERSION, "POOL_VERSION changed: run `make drawn-sets`"
    assert len(content) < 16 * 2**20  # bounded: a wheel carries it
    archive = cache.shipped()
    assert archive is not None and sorted(archive.files) == sorted(manifest["sets"])
    for name, count in manifest["sets"].items():
        assert f"-v{cache.POOL_VERSION}" in name
        assert archive[name].shape == (count, 28, 28) and archive[name].dtype == np.uint8


def test_a_run_on_the_default_split_draws_nothing(
    dataset: Dataset, empty_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every set that training, calibration and evaluation ask for on the default split is shipped."""
    config = resolve()
    prepare(config, dataset)
    synthetic.training_pool(OUTLIER_POOL)
    _, _, x_val, y_val = split_validation(dataset.x_train, dataset.y_train, 0.1, config.validation_seed)
    validation_images(SimpleNamespace(class_names=DIGITS, input_shape=(28, 28)), x_val, y_val)
    synthetic.held_out_set()
    synthetic.photographed(dataset.x_test[:1000], seed=7)
    assert "note: drawing" not in capsys.readouterr().err, "a set is missing: run `make drawn-sets`"
    assert not (empty_cache / "nondigits").exists()


def test_the_shipped_images_are_what_the_drawers_draw_now(
    dataset: Dataset, empty_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first images of each kind of set, drawn again here, equal the shipped ones: a drawing changed without
    bumping POOL_VERSION (which would also leave every cache folder stale) fails here."""
    x_val = split_validation(dataset.x_train, dataset.y_train, 0.1, resolve().validation_seed)[2]
    photos = synthetic.photographed(dataset.x_test[:1000], seed=7)
    assert np.array_equal(photos[:12], photographed.photograph_part(dataset.x_test[:12], 0, 7))
    styles = [kind for kind in synthetic.VARIANTS if kind != "photographed"]
    for kind, (images, _) in synthetic.variants(x_val[:200], 1, styles).items():
        assert np.array_equal(images[:6], variants.draw_part(x_val[:6], 0, kind, 1)), kind
    fonts = synthetic.matplotlib_fonts(synthetic.TRAINING_FONTS)
    assert np.array_equal(synthetic.printed_digits(3000)[0][:12], printed.font_digits_part(0, 12, fonts, 0))
    letters = nondigits.letters_part(0, 12, tuple(fonts), 0, nondigits.LETTERS, False)
    assert np.array_equal(synthetic.training_pool(OUTLIER_POOL)[: len(letters)], letters)
    shipped = synthetic.validation_set()
    nondigits.drawn_set.cache_clear()
    cache.shipped.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(cache.ENVIRONMENT, "")
        drawn = synthetic.validation_set()
    assert "note: drawing 1,400 images (non-digits" in capsys.readouterr().err
    assert list(shipped) == list(drawn)
    assert all(np.array_equal(shipped[kind], drawn[kind]) for kind in shipped)


@pytest.mark.parametrize("damage", ["a flipped byte", "cut short"])
def test_a_damaged_archive_is_one_note_and_the_sets_are_drawn(
    damage: str, empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = empty_cache / "drawn.npz"
    content = bytearray(cache.SHIPPED.read_bytes())
    if damage == "cut short":
        del content[len(content) // 2 :]
    else:
        content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(content)
    shutil.copyfile(cache.SHIPPED.with_suffix(".json"), damaged.with_suffix(".json"))
    monkeypatch.setenv(cache.ENVIRONMENT, str(damaged))
    images = synthetic.printed_digits(3000)[0]
    err = capsys.readouterr().err
    assert "drawn.npz does not match its SHA-256; drawing its sets instead" in err and "note: drawing 3,000" in err
    cache.shipped.cache_clear()
    monkeypatch.delenv(cache.ENVIRONMENT)
    assert np.array_equal(images, synthetic.printed_digits(3000)[0])
