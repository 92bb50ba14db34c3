"""The HTTP API fuzzed from its own OpenAPI schema with Schemathesis, in-process against the ASGI app.

Every documented operation gets generated requests (valid by the schema, and for POST /predict also invalid:
bodies, content types, query parameters); no answer may be a 5xx, and every answer must match the schema: a
documented status code, content type, headers and body. A blank or unreadable image answered 422/415/413 is
correct and documented. The number of cases per test comes from the Hypothesis profile (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from mnist_classifier.inference import Predictor
from mnist_classifier.server import create_app

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def strategies(dnn_run: Path) -> dict[tuple[str, str, str], st.SearchStrategy[Any]]:
    """Case strategies for each (method, path, generation mode), from the schema the running app serves."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Predictor(dnn_run)))
    assert set(schema) == {"/health", "/model", "/predict"}
    return {
        (method, path, mode): schema[path][method].as_strategy(generation_mode=GenerationMode(mode))
        for method, path, mode in OPERATIONS
    }


OPERATIONS = [
    ("GET", "/health", "positive"),
    ("GET", "/model", "positive"),
    ("POST", "/predict", "positive"),
    ("POST", "/predict", "negative"),
]


@pytest.mark.parametrize("operation", OPERATIONS, ids=" ".join)
@settings(suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_api_conforms_to_its_schema(
    strategies: dict[tuple[str, str, str], st.SearchStrategy[Any]], operation: tuple[str, str, str], data: Any
) -> None:
    case = data.draw(strategies[operation])
    response = case.call_and_validate(checks=CHECKS)
    assert response.status_code < 500
