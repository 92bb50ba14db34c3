"""The HTTP API through httpx: every endpoint, every kind of bad input, concurrency, and start-up errors."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mnist_classifier.data import load_dataset
from mnist_classifier.inference import Predictor
from mnist_classifier.preprocess import load_digits
from mnist_classifier.server import create_app

from .conftest import LiveServer
from .images import broken_files, on_canvas, png

LIMIT = 200_000


@pytest.fixture(scope="module")
def client(dnn_run: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Predictor(dnn_run), max_upload_bytes=LIMIT)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("mnist")
    return data.x_test[:20], data.y_test[:20]


def check_digit(body: dict, label: int) -> None:
    assert body["digit"] == str(label)
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"])


def test_health_model_docs_and_page(client: TestClient, dnn_run: Path) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/model").json()
    assert info["name"] == dnn_run.name and info["architecture"] == "dnn" and info["dataset"] == "mnist"
    assert 0.9 < info["test_accuracy"] <= 1 and info["trained"].startswith("20")
    assert info["input_shape"] == [28, 28] and info["classes"] == list("0123456789")
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert re.findall(r'(?:src|href)="(https?:[^"]*)"', docs.text) == [], "the docs work offline: no CDN"
    assert client.get(re.findall(r'src="([^"]*swagger-ui-bundle.js)"', docs.text)[0]).status_code == 200
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/health", "/model", "/predict"}
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text and "/static/app.js" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_predict_every_way_of_sending(client: TestClient, digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    for image, label in zip(images[:5], labels[:5], strict=True):
        check_digit(client.post("/predict", files={"file": ("d.png", png(image), "image/png")}).json(), label)
        check_digit(client.post("/predict", content=png(image), headers={"content-type": "image/png"}).json(), label)
        encoded = base64.b64encode(png(image)).decode()
        check_digit(client.post("/predict", json={"image": encoded}).json(), label)
        check_digit(client.post("/predict", json={"image": f"data:image/png;base64,{encoded}"}).json(), label)
        check_digit(client.post("/predict", json={"pixels": (image / 255).tolist()}).json(), label)
    photo = png(on_canvas(images[0], 300, (900, 700), (500, 300)))
    body = client.post("/predict?include_input=true", files={"file": ("p.png", photo, "image/png")}).json()
    check_digit(body, labels[0])
    seen = Image.open(io.BytesIO(base64.b64decode(body["input"].split(",")[1])))
    assert seen.size == (28, 28)


def test_predict_a_number(client: TestClient, digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    page = Image.new("L", (640, 220), 255)
    for i in range(3):
        page.paste(Image.fromarray(255 - images[i]).resize((170, 170)), (20 + i * 210, 25))
    expected = "".join(str(label) for label in labels[:3])
    body = client.post("/predict?multi_digit=true", files={"file": ("n.png", png(page), "image/png")}).json()
    assert body["number"] == expected and len(body["digits"]) == 3
    assert body["confidence"] == pytest.approx(np.prod([d["confidence"] for d in body["digits"]]), rel=1e-5)
    body = client.post("/predict", json={"image": base64.b64encode(png(page)).decode(), "multi_digit": True}).json()
    assert body["number"] == expected


def test_deskew_option_straightens_what_the_model_sees(
    client: TestClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """`deskew` (query or JSON) feeds the model the deskewed image that the command line's --deskew makes."""
    slanted = png(Image.fromarray(digits[0][1]).transform((28, 28), Image.Transform.AFFINE, (1, 0.4, -5.6, 0, 1, 0)))
    seen = {}
    for name, response in (
        ("plain", client.post("/predict?include_input=true", content=slanted, headers={"content-type": "image/png"})),
        ("query", client.post("/predict?include_input=true&deskew=true", files={"file": ("d.png", slanted)})),
        (
            "json",
            client.post(
                "/predict?include_input=true", json={"image": base64.b64encode(slanted).decode(), "deskew": True}
            ),
        ),
    ):
        assert response.status_code == 200, response.text
        seen[name] = np.asarray(Image.open(io.BytesIO(base64.b64decode(response.json()["input"].split(",")[1]))))
    expected = load_digits(slanted, True, False, True)[0]
    np.testing.assert_array_equal(seen["query"], expected)
    np.testing.assert_array_equal(seen["json"], expected)
    assert np.abs(seen["plain"].astype(int) - expected).sum() > 1000


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("not-an-image", 415, "not an image format"),
        ("truncated", 422, "corrupt or truncated"),
        ("empty", 422, "empty"),
        ("zero-size", 422, "corrupt PNG image"),
        ("huge", 413, "too many pixels"),
        ("bomb", 413, "too many pixels"),
        ("blank", 422, "no digit found"),
    ],
)
def test_bad_images(
    client: TestClient, digits: tuple[np.ndarray, np.ndarray], name: str, status: int, message: str
) -> None:
    data = broken_files(digits[0][0])[name]
    for response in (
        client.post("/predict", files={"file": (f"{name}.png", data, "image/png")}),
        client.post("/predict", json={"image": base64.b64encode(data).decode()}),
    ):
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        assert message in detail and "\n" not in detail
    assert client.post("/predict", content=png(digits[0][0]), headers={"content-type": "image/png"}).status_code == 200


def test_upload_size_limit(client: TestClient) -> None:
    big = b"\0" * (LIMIT + 1)
    response = client.post("/predict", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413 and "200,000-byte limit" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"\0" * 10_000

    response = client.post("/predict", content=chunks(), headers={"content-type": "image/png"})
    assert response.status_code == 413, "a body without Content-Length is counted as it streams"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pixels": [[0.5] * 28] * 27}, '"pixels" must be a 28x28 array, got 27x28'),
        ({"pixels": [[0.5] * 28] * 27 + [[0.5] * 27]}, "ragged or not numeric"),
        ({"pixels": [["a"] * 28] * 28}, "ragged or not numeric"),
        ({"pixels": 3}, "got a single number"),
        ({"pixels": [[0.0] * 28] * 27 + [[0.0] * 27 + [float("nan")]]}, '"pixels"[27][27] is nan'),
        ({"pixels": [[0.0] * 28] * 3 + [[255.0] * 28] * 25}, '"pixels"[3][0] = 255 is outside [0, 1]'),
        ({"pixels": [[-0.1] * 28] * 28}, "outside [0, 1]"),
        ({"image": "not base64!"}, "not valid base64"),
        ({"image": 12}, "must be a base64 string"),
        ({"something": 1}, 'exactly one of "image"'),
        ([1, 2], 'exactly one of "image"'),
    ],
)
def test_bad_json(client: TestClient, body: object, message: str) -> None:
    import json

    response = client.post("/predict", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_other_bad_requests(client: TestClient) -> None:
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "not valid JSON" in response.json()["detail"]
    response = client.post("/predict", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "unsupported content type 'text/plain'" in response.json()["detail"]
    response = client.post("/predict", files={"other": ("a.png", b"x", "image/png")})
    assert response.status_code == 422 and "no file field named 'file'" in response.json()["detail"]
    response = client.post("/predict", content=b"", headers={"content-type": "image/png"})
    assert response.status_code == 422 and "empty request body" in response.json()["detail"]


def test_concurrent_requests_on_a_real_server(live_server: LiveServer) -> None:
    data = load_dataset("mnist")
    bodies = [png(image) for image in data.x_test[:200]]

    def send(i: int) -> tuple[int, str]:
        response = http.post("/predict", files={"file": ("d.png", bodies[i], "image/png")})
        return response.status_code, response.json()["digit"]

    with httpx.Client(base_url=live_server.url) as http, ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(200)))
    assert all(status == 200 for status, _ in results)
    correct = sum(digit == str(label) for (_, digit), label in zip(results, data.y_test[:200], strict=True))
    assert correct >= 190
    assert httpx.get(f"{live_server.url}/health").json() == {"status": "ok"}


def test_serve_refuses_a_file_that_is_not_a_model(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "model.keras"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    result = cli("serve", str(fake), "--port", "0")
    assert result.code == 2 and "not a readable Keras model" in result.err and result.err.count("\n") == 1
    result = cli("serve", str(tmp_path / "nowhere"), "--port", "0")
    assert result.code == 2 and "no such file" in result.err


def test_batcher_survives_a_request_cancelled_while_batched(dnn_run: Path) -> None:
    import asyncio

    from mnist_classifier.server.app import Batcher

    images = load_dataset("mnist").x_test[:3]
    predictor = Predictor(dnn_run)

    async def main() -> list[np.ndarray]:
        batcher = Batcher(predictor)
        tasks = [asyncio.create_task(batcher.probabilities(images[i : i + 1])) for i in range(3)]
        await asyncio.sleep(0)
        tasks[1].cancel()
        try:
            return list(await asyncio.wait_for(asyncio.gather(tasks[0], tasks[2]), 30))
        finally:
            batcher.executor.shutdown()

    first, third = asyncio.run(main())
    expected = predictor.probabilities(images)
    np.testing.assert_allclose(first[0], expected[0], atol=1e-6)
    np.testing.assert_allclose(third[0], expected[2], atol=1e-6)
