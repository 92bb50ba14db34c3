"""What POST /predict accepts, declared once as Pydantic models: the options, the JSON body, and every body type.

The options follow one rule whatever the body: `Options` validates them from the query string, and the JSON body
(which may carry them too) is the same model read strictly, so `{"multi_digit": "yes"}` is refused as a bad `reject`
is. An option given in the query wins over the same option in the body. `REQUEST_BODY` describes every body the
route reads itself (multipart, raw image, JSON) for the OpenAPI schema.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from ..preprocess import SIZE
from ..verdicts import Calibration, with_thresholds


class Options(BaseModel):
    """A request's options, from its query string or its JSON body; an option it does not know (a typo) is refused."""

    model_config = ConfigDict(extra="forbid")

    multi_digit: bool = Field(False, description="Read a number written in a row: one result per digit.")
    deskew: bool = Field(False, description="Straighten slanted digits before predicting.")
    include_input: bool = Field(False, description="Also return each 28x28 image fed to the model (base64 PNG).")
    reject: bool = Field(
        True, description="Give verdicts (not_a_digit, uncertain); false: every verdict is digit (the argmax)."
    )
    reject_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Not a digit below this typicality (the share of validation digits that look as unusual);"
        " default: the model's (GET /model).",
    )
    confidence_threshold: float | None = Field(
        None, ge=0, le=1, description="Not sure below this calibrated confidence; default: the model's (GET /model)."
    )
    set_coverage: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Also give each digit's prediction set (`set`): the classes that hold the true one with this"
        " probability, e.g. 0.99 (split conformal on the model's validation digits).",
    )

    def merged(self, body: Options) -> Options:
        """These options, with the body's where these were not given."""
        names = (body.model_fields_set & set(Options.model_fields)) - self.model_fields_set
        return self.model_copy(update={name: getattr(body, name) for name in names})

    def calibration(self, stored: Calibration) -> Calibration:
        """The model's calibration, with this request's thresholds where it gives any."""
        if self.reject_threshold is None and self.confidence_threshold is None:
            return stored
        return with_thresholds(stored, self.reject_threshold, self.confidence_threshold)


DEFAULT_OPTIONS = Options.model_validate({})
QUERY_PARAMETERS: list[dict[str, Any]] = [
    {"name": name, "in": "query", "required": False, "schema": schema, "description": schema["description"]}
    for name, schema in Options.model_json_schema()["properties"].items()
]  # the options as the OpenAPI schema lists query parameters


def query_options(query: Mapping[str, str]) -> Options:
    """The options of a query string (its last value for a repeated name), validated as FastAPI validates a query
    model, without its per-request machinery: a RequestValidationError whose locations start with "query"."""
    if not query:
        return DEFAULT_OPTIONS
    try:
        return Options.model_validate(dict(query))
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


def in_range(pixels: list[list[float]] | None) -> list[list[float]] | None:
    """Refuse ragged rows, NaN, infinities and values outside [0, 1], naming the first bad value."""
    if pixels is None:
        return None
    try:
        array = np.array(pixels, dtype=np.float32)
    except ValueError:
        raise PydanticCustomError("pixels_ragged", "rows of different lengths (ragged); send a 2-D array") from None
    problems = (
        (~np.isfinite(array), "is {}; every value must be a finite number"),
        ((array < 0) | (array > 1), "= {:g} is outside [0, 1]; divide 0..255 values by 255"),
    )
    for bad, problem in problems:
        where = np.argwhere(bad)
        if len(where):
            index = "".join(f"[{i}]" for i in where[0])
            raise PydanticCustomError("pixel", f"{index} {problem.format(float(array[tuple(where[0])]))}")
    return pixels


Pixels = Annotated[
    list[list[float]] | None,
    AfterValidator(in_range),
    WithJsonSchema(
        {
            "type": "array",
            "minItems": SIZE,
            "maxItems": SIZE,
            "items": {
                "type": "array",
                "minItems": SIZE,
                "maxItems": SIZE,
                "items": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "description": f"{SIZE}x{SIZE} array in [0, 1], light ink on black, used as is",
        }
    ),
]
Base64Image = Annotated[
    str | None, WithJsonSchema({"type": "string", "description": "base64 image file (a data: URL works too)"})
]


class JsonBody(Options):
    """A JSON body: exactly one of `image` (a base64 image file) and `pixels`, and any of the options."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["image"]}, {"required": ["pixels"]}]},
    )

    image: Base64Image = None
    pixels: Pixels = None

    @model_validator(mode="after")
    def one_source(self) -> JsonBody:
        """Refuse a body with both `image` and `pixels`, or neither (as the schema's oneOf says)."""
        if (self.image is None) == (self.pixels is None):
            raise PydanticCustomError(
                "one_source", 'JSON body needs exactly one of "image" (base64 file) or "pixels" (28x28 array)'
            )
        return self

    def pixels_array(self) -> np.ndarray:
        """`pixels` as a float32 array (the shape the model expects is checked where the model is known)."""
        return np.array(self.pixels, dtype=np.float32)

    def image_bytes(self) -> bytes:
        """The bytes of `image`, without a data: URL's prefix."""
        text = self.image or ""
        text = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, '"image" is not valid base64; send the image file encoded in base64') from None


def parse_json(body: bytes) -> JsonBody:
    """A JSON body, parsed and validated: 422 if it is not JSON; if it is not a valid body, a RequestValidationError
    whose locations start with "body", answered as a bad query parameter is."""
    try:
        return JsonBody.model_validate_json(body)
    except ValidationError as error:
        errors = error.errors(include_url=False)
        if errors[0]["type"] == "json_invalid":
            raise HTTPException(422, f"body is not valid JSON ({errors[0]['msg']})") from None
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


IMAGE_FILE: dict[str, Any] = {"type": "string", "format": "binary"}
REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": IMAGE_FILE},
                    "required": ["file"],
                    "additionalProperties": False,
                },
                "encoding": {"file": {"contentType": "image/*"}},
            },
            "application/json": {"schema": JsonBody.model_json_schema()},
            "image/*": {"schema": IMAGE_FILE},
            "application/octet-stream": {"schema": IMAGE_FILE},
        },
    }
}
