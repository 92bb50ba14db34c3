"""The HTTP routes: the drawing page, GET /health, GET /model and POST /predict, on one APIRouter.

GET /model gets the predictor through `Depends`, so a test can swap it with `app.dependency_overrides`. POST /predict
takes no dependencies and reads its query string itself (bodies.query_options, documented by bodies.QUERY_PARAMETERS):
FastAPI's solving of a query model and a dependency cost a request about 0.2 ms of CPU, as much as reading its image
(serving profile, docs/results/serving.md). What it works with, the app's lifespan puts in `request.app.state`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, Response
from pydantic_core import to_json

from ..inference import Predictor
from .admission import Admission
from .batcher import Batcher
from .bodies import QUERY_PARAMETERS, REQUEST_BODY, Options, parse_json, query_options
from .reading import Decoding, read_and_predict
from .schemas import PREDICT_RESPONSES, Digit, Health, ModelInfo, Number

STATIC = Path(__file__).parent / "static"
MAX_FORM_FIELDS = 8
MAX_FORM_FIELD_BYTES = 64 * 1024
router = APIRouter()


async def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


@dataclass(frozen=True)
class Serving:
    """What POST /predict works with, made once by the app's lifespan: the model, its batcher, the decoding pools,
    the admission of requests and the upload limit."""

    predictor: Predictor
    batcher: Batcher
    decoding: Decoding
    admission: Admission
    max_upload_bytes: int


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/health")
async def health() -> Health:
    """Answers while the server runs with its model loaded."""
    return Health(status="ok")


@router.get("/model")
async def model(predictor: Annotated[Predictor, Depends(get_predictor)]) -> ModelInfo:
    """The served model: its name, dataset, test accuracy, training date and input shape."""
    metrics = predictor.metrics
    return ModelInfo(
        name=predictor.name,
        architecture=predictor.architecture,
        dataset=predictor.meta.get("dataset"),
        test_accuracy=metrics.get("accuracy") if metrics.get("split") == "test" else None,
        trained=predictor.meta.get("meta", {}).get("created"),
        input_shape=list(predictor.input_shape),
        classes=list(predictor.class_names),
        parameters=predictor.parameters,
        calibrated=predictor.calibration.fitted,
        reject_threshold=predictor.calibration.reject_threshold,
        confidence_threshold=predictor.calibration.confidence_threshold,
        runtime=predictor.runtime,
        process_id=os.getpid(),
    )


@router.post(
    "/predict",
    openapi_extra={**REQUEST_BODY, "parameters": QUERY_PARAMETERS},
    response_model=Digit | Number,
    responses=PREDICT_RESPONSES,
    response_model_exclude_unset=True,
)
async def predict(request: Request) -> Response:
    """Read the digit in an uploaded image (multipart `file`, raw image body, or JSON `image` in base64),
    or in a JSON `pixels` 28x28 array; images are prepared MNIST-style first. Each digit carries a verdict and the
    model's reading; an image that holds no digit is not_a_digit with its reason. A JSON body may also carry the
    options (a query parameter wins)."""
    options = query_options(request.query_params)
    serving: Serving = request.app.state.serving
    with serving.admission.slot():  # a place among the requests in flight while this one runs; 503 when none is free
        return await answered(request, options, serving)


async def answered(request: Request, options: Options, serving: Serving) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/json", "application/octet-stream") and not kind.startswith(
        "image/"
    ):
        raise HTTPException(
            415, f"unsupported content type {kind or 'none'!r}; send multipart/form-data, JSON or image/*"
        )
    predictor, batcher, decoding = serving.predictor, serving.batcher, serving.decoding
    body = await read_body(request, serving.max_upload_bytes)
    if not body:
        raise HTTPException(422, "empty request body; send an image or JSON")
    source: bytes | np.ndarray = body
    if kind == "application/json":
        document = await anyio.to_thread.run_sync(parse_json, body, limiter=decoding.small)
        options = options.merged(document)
        source = document.pixels_array() if document.pixels is not None else document.image_bytes()
    elif kind == "multipart/form-data":
        source = await uploaded_file(request, body)
    answer = await read_and_predict(source, options, predictor, batcher, decoding)
    return Response(to_json(answer), media_type="application/json")  # the Digit or Number shape, encoded once


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as its declared or counted size passes `limit`."""
    declared = request.headers.get("content-length")
    too_large = HTTPException(413, f"request body over the {limit:,}-byte limit; send a smaller image")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def uploaded_file(request: Request, body: bytes) -> bytes:
    """The bytes of the multipart field `file` of an already-read body, its only field; the parsed form (and any file
    it spooled to disk) is closed before returning."""

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(
            max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_FIELD_BYTES
        )
    except Exception as e:  # the multipart parser raises several types for malformed bodies
        detail = getattr(e, "detail", None) or str(e) or type(e).__name__
        raise HTTPException(422, f"malformed multipart body ({detail})".splitlines()[0]) from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "multipart body has no file field named 'file'")
        if others := sorted(set(form.keys()) - {"file"}):
            raise HTTPException(422, f"multipart body has fields other than 'file' ({others[0]!r}); send only the file")
        return await upload.read()
    finally:
        await form.close()
