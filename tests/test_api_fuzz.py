"""The HTTP API fuzzed from its own OpenAPI schema with Schemathesis, in-process against the ASGI app of a model.

Every documented operation gets generated requests, valid by the schema (positive) and, for POST /predict, invalid
(negative: bodies, content types, query parameters), and every Schemathesis check runs on each answer: no 5xx, a
documented status code, content type, headers and body, valid data accepted and invalid data refused. The schema
says an image body is binary and a JSON `image` a base64 string; which bytes are a digit it cannot say, so positive
cases carry real MNIST digits as PNGs (registered for the image media types, put in the JSON `image` here). The
number of cases per test comes from the Hypothesis profile (see conftest.py).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from mnist_classifier.data import load_dataset
from mnist_classifier.inference import Predictor
from mnist_classifier.server import create_app

from .images import png

# Loaded on the first draw, inside a test: from the tests' private cache, and not while pytest collects.
DIGITS = st.deferred(lambda: st.sampled_from([png(image) for image in load_dataset("mnist").x_test[:20]]))
OPERATIONS = [
    ("GET", "/health", "positive"),
    ("GET", "/model", "positive"),
    ("POST", "/predict", "positive"),
    ("POST", "/predict", "negative"),
]
for media_type in ("image/*", "image/png", "application/octet-stream"):
    schemathesis.openapi.media_type(media_type, DIGITS)


@pytest.fixture(scope="module")
def strategies(tiny_run: Path) -> dict[tuple[str, str, str], st.SearchStrategy[Any]]:
    """Case strategies for each (method, path, generation mode), from the schema the running app serves."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Predictor(tiny_run)))
    assert set(schema) == {"/health", "/model", "/predict"}
    return {
        (method, path, mode): schema[path][method].as_strategy(generation_mode=GenerationMode(mode))
        for method, path, mode in OPERATIONS
    }


@pytest.mark.parametrize("operation", OPERATIONS, ids=" ".join)
@settings(suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_api_conforms_to_its_schema(
    strategies: dict[tuple[str, str, str], st.SearchStrategy[Any]], operation: tuple[str, str, str], data: Any
) -> None:
    case = data.draw(strategies[operation])
    if operation[2] == "positive" and isinstance(case.body, dict) and "image" in case.body:
        case.body["image"] = base64.b64encode(data.draw(DIGITS)).decode()
    excluded = [negative_data_rejection] if lost_on_the_wire(case) else []
    response = case.call_and_validate(excluded_checks=excluded)
    assert response.status_code < 500


def lost_on_the_wire(case: Any) -> bool:
    """Whether a negative case's only fault may be one that sending drops: a query parameter or multipart field with
    an empty name, or a value of lists or objects, which the HTTP client leaves out. What arrives is then a valid
    request, rightly answered 200, so "invalid data rejected" is not checked for it (every other check still is)."""
    parts = list((case.query or {}).items())
    if case.media_type == "multipart/form-data" and isinstance(case.body, dict):
        parts += [(name, value) for name, value in case.body.items() if name != "file"]
    return any(name == "" or isinstance(value, list | dict) for name, value in parts)
