"""The one JSON shape of a reading, on made-up probabilities (no model)."""

from __future__ import annotations

import json

import numpy as np

from mnist_classifier.image_files import Reading
from mnist_classifier.readings import digit_json, no_digit_json, number_json, ranked, reading_json

NAMES = [str(i) for i in range(10)]


def probabilities(*tops: int) -> np.ndarray:
    rows = np.full((len(tops), 10), 0.02, np.float32)
    for row, top in zip(rows, tops, strict=True):
        row[top] = 0.7
        row[(top + 1) % 10] = 0.14
    return rows


def test_a_digit_reads_with_its_verdict_top_k_and_every_probability() -> None:
    digit = digit_json(NAMES, probabilities(7)[0], "uncertain", top_k=2)
    assert list(digit) == ["digit", "verdict", "confidence", "top_k", "probabilities"]
    assert digit["digit"] == "7" and digit["verdict"] == "uncertain" and digit["confidence"] == 0.7
    assert digit["top_k"] == [{"digit": "7", "probability": 0.7}, {"digit": "8", "probability": 0.14}]
    assert len(digit["probabilities"]) == 10 and abs(sum(digit["probabilities"]) - 1) < 1e-6
    assert "top_k" not in digit_json(NAMES, probabilities(7)[0], "digit")
    json.dumps(digit)


def test_a_number_takes_its_worst_verdict_and_the_product_of_confidences() -> None:
    number = number_json(NAMES, probabilities(7, 2, 1), ["digit", "uncertain", "digit"])
    assert number["number"] == "721" and number["verdict"] == "uncertain"
    assert number["confidence"] == round(0.7**3, 6) and [d["verdict"] for d in number["digits"]][1] == "uncertain"
    assert number_json(NAMES, probabilities(3, 4), ["uncertain", "not_a_digit"])["verdict"] == "not_a_digit"


def test_a_file_reads_with_its_name_first_or_its_error() -> None:
    images = np.zeros((1, 28, 28), np.uint8)
    read = reading_json(NAMES, Reading("a.png", images, probabilities(4), None, ["digit"]), top_k=1)
    assert list(read)[:2] == ["file", "digit"] and read["file"] == "a.png" and read["digit"] == "4"
    unjudged = reading_json(NAMES, Reading("b.png", images, probabilities(5)))
    assert unjudged["verdict"] == "digit", "a reading without verdicts (reject off) is a digit"
    failed = reading_json(NAMES, Reading("c.png", images[:0], probabilities()[:0], "empty file"))
    assert failed == {"file": "c.png", "error": "empty file"}


def test_an_image_with_no_digit_reads_as_not_a_digit_with_its_reason_in_the_same_shape() -> None:
    reason = "no digit found: the image is blank"
    images = np.zeros((0, 28, 28), np.uint8)
    blank = Reading("blank.png", images, probabilities()[:0], None, [], reason)
    read = reading_json(NAMES, blank, top_k=2)
    assert read == {
        "file": "blank.png",
        "digit": None,
        "verdict": "not_a_digit",
        "confidence": 0.0,
        "reason": reason,
        "top_k": [],
        "probabilities": None,
    }
    assert set(read) - {"file", "reason"} == set(digit_json(NAMES, probabilities(4)[0], "digit", top_k=2))
    number = reading_json(NAMES, blank, multi_digit=True)
    assert number == {
        "file": "blank.png",
        "number": None,
        "verdict": "not_a_digit",
        "confidence": 0.0,
        "reason": reason,
        "digits": [],
    }
    assert blank.confidence == 0.0 and blank.indices == []
    assert no_digit_json(reason, with_set=True)["set"] == [], "a set was asked: the empty set"
    json.dumps(read)


def test_a_prediction_set_is_given_only_when_asked_in_class_order() -> None:
    images = np.zeros((2, 28, 28), np.uint8)
    sets = np.zeros((2, 10), bool)
    sets[0, [7, 1]] = True
    sets[1, 2] = True
    read = reading_json(NAMES, Reading("a.png", images[:1], probabilities(7), None, ["uncertain"], None, sets[:1]))
    assert read["set"] == ["1", "7"] and list(read).index("set") == list(read).index("probabilities") - 1
    number = reading_json(NAMES, Reading("n.png", images, probabilities(7, 2), None, ["digit"] * 2, None, sets), True)
    assert [d["set"] for d in number["digits"]] == [["1", "7"], ["2"]] and "set" not in number
    assert "set" not in reading_json(NAMES, Reading("b.png", images[:1], probabilities(7), None, ["digit"]))


def test_ties_rank_in_class_order() -> None:
    assert ranked(NAMES, np.full(10, 0.1), 3) == [("0", 0.1), ("1", 0.1), ("2", 0.1)]
