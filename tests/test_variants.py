"""Digit variants (synthetic.variants): shapes, determinism, found digits, each kind's one change; and the benchmark's
per-kind measure on a tiny model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mnist_classifier.data import load_dataset, synthetic
from mnist_classifier.data.synthetic.variants import draw, rendered
from mnist_classifier.errors import ConfigError

BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "variants.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/variants.py as a module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("variants_benchmark", BENCHMARK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_dataset("mnist").x_test[:24]


@pytest.fixture(scope="module")
def every_kind(digits: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return synthetic.variants(digits, seed=5)


def test_every_kind_gives_prepared_digits_and_finds_most(
    digits: np.ndarray, every_kind: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    assert list(every_kind) == list(synthetic.VARIANTS)
    assert {f"low-{n}-{m}" for n in (8, 10, 12, 16) for m in ("nearest", "bilinear")} <= set(synthetic.VARIANTS)
    for kind, (images, found) in every_kind.items():
        assert images.shape == digits.shape and images.dtype == np.uint8, kind
        assert found.shape == (len(digits),) and found.dtype == bool, kind
        assert found.mean() >= 0.9, kind
        assert not images[~found].any(), kind
        assert (images[found].max(axis=(1, 2)) > 200).all(), kind  # prepared: full-strength ink on black
        assert (images[found][:, [0, -1], :].max() < 64) and (images[found][:, :, [0, -1]].max() < 64), kind


def test_variants_are_deterministic_and_cached(
    digits: np.ndarray, every_kind: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    for kind in ("low-10-nearest", "thick-pen", "photographed"):
        drawn = draw(digits, kind, 5)
        assert np.array_equal(drawn, every_kind[kind][0]), kind
        assert np.array_equal(synthetic.variant(digits, kind, 5)[0], drawn), kind
    assert not np.array_equal(draw(digits, "thick-pen", 6), every_kind["thick-pen"][0])


def test_each_kind_changes_the_plain_rendering(digits: np.ndarray) -> None:
    few = digits[:6]
    plain = [np.asarray(image, np.float32) for image in rendered(few, "plain", 3)]
    for kind in synthetic.VARIANTS:
        if kind in ("plain", "photographed"):
            continue
        files = [np.asarray(image, np.float32) for image in rendered(few, kind, 3)]
        changed = [
            a.shape != b.shape or (np.abs(a - b).max() > 15 or np.abs(a - b).mean() > 2)
            for a, b in zip(files, plain, strict=True)
        ]
        assert all(changed), kind


def test_kinds_look_as_named(digits: np.ndarray) -> None:
    few = digits[:6]

    def border(image: np.ndarray) -> float:
        return float(np.median(np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])))

    for chalk in rendered(few, "chalk", 1):
        pixels = np.asarray(chalk)
        assert border(pixels) < 80 and pixels.max() > 170
    for grey in rendered(few, "low-contrast", 1):
        pixels = np.asarray(grey, np.float32)
        assert 100 < border(pixels) < 190 and np.percentile(pixels, 99.9) - pixels.min() < 90
    for page in rendered(few, "small-off-centre", 1):
        assert min(page.size) >= 260
    for scan in rendered(few, "low-8-nearest", 1):
        rows = np.asarray(scan, np.int16)
        steps = np.unique(np.nonzero(np.abs(np.diff(rows, axis=0)) > 40)[0])
        assert 0 < len(steps) <= 9  # 8 blocks a side: ink changes only where one row of blocks meets the next
    for clean in rendered(few, "clean-scan", 1):
        pixels = np.asarray(clean)
        assert border(pixels) == 255 and pixels.min() == 0


def test_an_unknown_kind_or_bad_digits_is_a_clear_error(digits: np.ndarray) -> None:
    with pytest.raises(ConfigError, match=r"unknown digit variant 'fax'.*low-8-nearest"):
        synthetic.variant(digits, "fax", 0)
    with pytest.raises(ConfigError, match="unknown digit variant"):
        synthetic.variants(digits, 0, ["plain", "fax"])
    with pytest.raises(ConfigError, match=r"\(N, 28, 28\) uint8"):
        synthetic.variant(digits.astype(np.float32), "plain", 0)


def test_held_out_printed_digits_are_labelled_in_order() -> None:
    images, labels = synthetic.held_out_printed(12, 20)
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [*range(10), 0, 1]
    assert (images.max(axis=(1, 2)) > 200).all()


def test_the_benchmarks_shares_add_up_on_a_tiny_model(bench: ModuleType, tiny_run: Path) -> None:
    from mnist_classifier.inference import load_predictor

    predictor = load_predictor(tiny_run)
    mnist = load_dataset("mnist")
    sets = bench.digit_sets(mnist.x_test, mnist.y_test, 20, kinds=("plain", "low-8-nearest", "photographed"))
    assert list(sets) == ["plain", "low-8-nearest", "photographed", bench.PRINTED]
    refused = sets["plain"][2].copy()
    refused[:3] = False  # as if the preparation had found no digit in three
    sets["refused"] = (sets["plain"][0], sets["plain"][1], refused)
    for kind, (images, labels, found) in sets.items():
        s = bench.shares(predictor, images, labels, found)
        assert s.n == 20, kind
        assert s.answered + s.not_a_digit + s.uncertain == pytest.approx(1), kind
        assert 0 <= s.right <= min(s.answered, s.read_right) <= 1, kind
        assert s.read_right > 0.3, kind  # a tiny model still reads most digits right
    plain = bench.shares(predictor, *sets["plain"])
    less = bench.shares(predictor, *sets["refused"])
    assert less.not_a_digit >= 3 / 20 and less.read_right <= plain.read_right
    assert bench.turned_away(predictor, mnist.x_test[:0], 4) == 1.0
    assert 0 <= bench.turned_away(predictor, load_dataset("fashion-mnist").x_test[:20], 0) <= 1
