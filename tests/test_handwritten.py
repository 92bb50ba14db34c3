"""Letters written by hand: a skeleton for every non-digit letter, drawn differently each time, never refused."""

from __future__ import annotations

import numpy as np

from mnist_classifier.data.synthetic import nondigits
from mnist_classifier.data.synthetic.handwritten import SKELETONS, dense, hand_letter


def test_every_non_digit_letter_and_no_look_alike_has_a_skeleton() -> None:
    assert set(SKELETONS) == set(nondigits.LETTERS)
    assert not set(SKELETONS) & set(nondigits.LOOK_ALIKES)


def test_a_straight_stroke_is_resampled_along_its_length() -> None:
    points = dense(np.array([[0.0, 0.0], [0.0, 0.3], [0.3, 0.3]]), step=0.1)
    assert len(points) == 7
    np.testing.assert_allclose(points[[0, 3, 6]], [[0, 0], [0, 0.3], [0.3, 0.3]])
    assert np.allclose(np.hypot(*np.diff(points, axis=0).T), 0.1)


def test_hand_letters_are_prepared_ink_that_differs_by_generator() -> None:
    images = nondigits.hand_letters_part(0, 2 * len(nondigits.LETTERS), seed=3)
    assert images.shape == (2 * len(nondigits.LETTERS), 28, 28)  # the preparation refused none
    assert (images.reshape(len(images), -1).max(axis=1) > 200).all()
    again = nondigits.hand_letters_part(0, 2, seed=3)
    np.testing.assert_array_equal(again, images[:2])
    first, second = (np.asarray(hand_letter("A", np.random.default_rng(seed))) for seed in (1, 2))
    assert not np.array_equal(first, second)
