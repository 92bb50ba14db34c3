"""Synthetic sets drawn across processes (synthetic/parallel.py): the same bytes whatever the workers and chunks, a
worker's error raised as it is serially, and no workers for a main script that would run again in each."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from mnist_classifier.data import load_dataset, synthetic
from mnist_classifier.errors import ConfigError

parallel = importlib.import_module("mnist_classifier.data.synthetic.parallel")
nondigits = importlib.import_module("mnist_classifier.data.synthetic.nondigits")
photographed = importlib.import_module("mnist_classifier.data.synthetic.photographed")
printed = importlib.import_module("mnist_classifier.data.synthetic.printed")
variants = importlib.import_module("mnist_classifier.data.synthetic.variants")


@pytest.fixture(scope="module")
def draws() -> list[Any]:
    """One small set from each drawer, letters refused by the preparation included."""
    digits = load_dataset("mnist").x_test[:16]
    fonts = tuple(synthetic.matplotlib_fonts(synthetic.TRAINING_FONTS))
    draw = parallel.Draw
    return [
        draw(photographed.photograph_part, 16, (3,), digits),
        draw(variants.draw_part, 16, ("jpeg", 5), digits),
        draw(variants.draw_part, 16, ("photographed", 5), digits),
        draw(nondigits.letters_part, 12, (fonts, 2, nondigits.LETTERS, True)),
        draw(nondigits.hand_letters_part, 12, (6,)),
        draw(nondigits.generated_part, 12, ("scribbles", 4, False)),
        draw(nondigits.generated_part, 12, ("silhouettes", 4, True)),
        draw(printed.font_digits_part, 10, (fonts, 1)),
    ]


def test_the_same_bytes_whatever_the_workers_and_chunks(draws: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    pools = []
    in_pool = parallel.in_pool
    monkeypatch.setattr(parallel, "in_pool", lambda jobs, workers: pools.append(workers) or in_pool(jobs, workers))
    serial = parallel.drawn_sets(draws, workers=1)
    assert [len(images) for images in serial][:3] == [16, 16, 16] and not pools
    for images in serial:
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28) and images.any()
    for workers, chunk in ((1, 5), (2, 3), (2, 16)):
        again = parallel.drawn_sets(draws, workers=workers, chunk=chunk, at_least=0)
        for a, b in zip(serial, again, strict=True):
            assert a.shape == b.shape and a.tobytes() == b.tobytes(), (workers, chunk)
    assert pools == [2, 2], "both two-worker draws ran in a pool"


def test_each_image_its_own_generator() -> None:
    digits = load_dataset("mnist").x_test[:6]
    whole = synthetic.photograph(digits, 3)
    assert np.array_equal(whole[3:], photographed.photograph_part(digits[3:], 3, 3))
    assert not np.array_equal(whole[3:], photographed.photograph_part(digits[3:], 0, 3))
    assert not np.array_equal(whole, synthetic.photograph(digits, 4))


def test_a_worker_error_is_raised_as_serially() -> None:
    digits = load_dataset("mnist").x_test[:8]
    bad = [
        parallel.Draw(variants.draw_part, 8, ("jpeg", 1), digits),
        parallel.Draw(variants.draw_part, 8, ("fax", 1), digits),
    ]
    for workers in (1, 2):
        with pytest.raises(ConfigError, match="unknown digit variant 'fax'"):
            parallel.drawn_sets(bad, workers=workers, chunk=2, at_least=0)
