"""The server's answers as Pydantic models: what GET /health, GET /model and POST /predict return, and its errors.

They exist for the OpenAPI schema (and for FastAPI to check what a route returns); the values of a reading come from
`readings`, the shape that `predict --json` and the Python API share.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Verdict = Literal["digit", "uncertain", "not_a_digit"]  # verdicts.VERDICTS
VERDICT = (
    "digit: answered; uncertain: a digit, but its calibrated confidence is below the confidence threshold (two"
    " classes close); not_a_digit: unlike the digits the model knows (typicality below the reject threshold)."
    " With reject=false, always digit."
)


NO_DIGIT = "Why the image holds no digit (blank, too faint, specks): then verdict is not_a_digit, with no reading."


class Digit(BaseModel):
    digit: str | None = Field(
        description="The model's reading, its most probable class, whatever the verdict; null when the image holds no"
        " digit (see reason)."
    )
    verdict: Verdict = Field(description=VERDICT)
    confidence: float = Field(description="The digit's calibrated probability (0 when the image holds no digit).")
    reason: str | None = Field(None, description=NO_DIGIT)
    prediction_set: list[str] | None = Field(
        None,
        alias="set",
        description="With set_coverage: the classes that hold the true one with that probability, in class order.",
    )
    probabilities: list[float] | None = Field(
        description="Every class's calibrated probability (temperature-scaled); null when the image holds no digit."
    )
    input: str | None = Field(None, description="The 28x28 image fed to the model (base64 PNG), on request.")


class Number(BaseModel):
    number: str | None = Field(description="The digits read, left to right; null when the image holds no digit.")
    verdict: Verdict = Field(description="not_a_digit if any digit is, else uncertain if any digit is, else digit.")
    confidence: float = Field(description="The product of the digits' confidences (0 when there are none).")
    reason: str | None = Field(None, description=NO_DIGIT)
    digits: list[Digit]


class ModelInfo(BaseModel):
    name: str
    architecture: str
    dataset: str | None
    test_accuracy: float | None
    trained: str | None
    input_shape: list[int]
    classes: list[str]
    parameters: int
    calibrated: bool = Field(description="Whether the thresholds were fitted for this model (else defaults).")
    reject_threshold: float = Field(description="Not a digit below this typicality, unless a request gives its own.")
    confidence_threshold: float = Field(
        description="Not sure below this calibrated confidence, unless a request gives its own."
    )
    runtime: str = Field(description='What runs the model, and in which precision: e.g. "onnxruntime float32".')
    process_id: int = Field(description="The server process that answered (one of them with `serve --workers N`).")


class Health(BaseModel):
    status: str


class Problem(BaseModel):
    detail: str


def problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error answer as FastAPI's `responses` declares it: a Problem body, and any headers it carries."""
    return {"model": Problem, "description": description} | ({"headers": headers} if headers else {})


PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: problem("The body is over the upload limit, or its image would take more memory to decode than allowed."),
    415: problem("The content type is not an image, multipart or JSON, or the bytes are not an image."),
    422: problem(
        "The image is corrupt, or the JSON or a parameter is invalid, or the model cannot give the set_coverage asked."
        " (A blank image is no error: it is not_a_digit, with its reason.)"
    ),
    500: problem("The model failed on the batch this request was in; the failure is logged."),
    503: problem(
        "Too many requests in flight; try again after Retry-After seconds.",
        {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}},
    ),
}
