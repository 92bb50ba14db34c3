"""The HTTP API through httpx: every endpoint, every kind of bad input, concurrency, and start-up errors.

Server logic runs on FakePredictor (no TensorFlow); what needs *a* model uses the tiny shared run, and only what
asserts accuracy or verdicts of a trained model uses `dnn_run`.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
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
from mnist_classifier.server.batcher import INLINE_IMAGES, INLINE_SECONDS, Batcher, BatchFailed
from mnist_classifier.server.bodies import Options
from mnist_classifier.server.reading import Decoding, read_and_predict
from mnist_classifier.server.schemas import Digit, Number
from mnist_classifier.verdicts import FALLBACK, VERDICTS

from .conftest import LiveServer
from .images import broken_files, on_canvas, png

LIMIT = 200_000


@pytest.fixture(scope="module")
def client(tiny_run: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Predictor(tiny_run), max_upload_bytes=LIMIT)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def accurate_client(dnn_run: Path) -> Iterator[TestClient]:
    """The server of a trained model, for the tests that assert what it reads."""
    with TestClient(create_app(Predictor(dnn_run))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("mnist")
    return data.x_test[:20], data.y_test[:20]


def check_digit(body: dict, label: int | str) -> None:
    Digit.model_validate(body)
    assert body["digit"] == str(label)
    assert body["verdict"] in VERDICTS
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"])


def test_health_model_docs_and_page(client: TestClient, tiny_run: Path) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/model").json()
    assert info["name"] == tiny_run.name and info["architecture"] == "dnn" and info["dataset"] == "mnist"
    assert info["test_accuracy"] == json.loads((tiny_run / "metrics.json").read_text())["accuracy"]
    assert info["trained"].startswith("20")
    assert info["input_shape"] == [28, 28] and info["classes"] == list("0123456789")
    assert info["runtime"] == "keras (tensorflow) float32" and info["process_id"] == os.getpid()
    stored = Predictor(tiny_run).calibration
    assert info["calibrated"] is True
    assert (info["reject_threshold"], info["confidence_threshold"]) == (
        stored.reject_threshold,
        stored.confidence_threshold,
    )
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert re.findall(r'(?:src|href)="(https?:[^"]*)"', docs.text) == [], "the docs work offline: no CDN"
    assert client.get(re.findall(r'src="([^"]*swagger-ui-bundle.js)"', docs.text)[0]).status_code == 200
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/health", "/model", "/predict"}
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    for model in ("Digit", "Number"):
        verdict = schema["components"]["schemas"][model]["properties"]["verdict"]
        assert verdict["enum"] == list(VERDICTS) and "not_a_digit" in verdict["description"]
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/predict"]["post"]["parameters"]}
    assert parameters["reject"]["type"] == "boolean"
    for name in ("reject_threshold", "confidence_threshold"):
        number = next(s for s in parameters[name]["anyOf"] if s["type"] == "number")
        assert (number["minimum"], number["maximum"]) == (0, 1)
    bodies = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(bodies) == {"multipart/form-data", "application/json", "image/*", "application/octet-stream"}
    json_body = bodies["application/json"]["schema"]
    assert set(json_body["properties"]) == {"image", "pixels", *Options.model_fields}
    assert json_body["additionalProperties"] is False and len(json_body["oneOf"]) == 2
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text and "/static/app.js" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_predict_every_way_of_sending(
    client: TestClient, tiny_run: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """Every body type gives the library's reading of the same image: prepared MNIST-style from a file, as is
    from pixels."""
    predictor = Predictor(tiny_run)
    images = digits[0][:5]
    prepared = np.stack([load_digits(png(image), True)[0] for image in images])
    from_file = predictor.probabilities(prepared).argmax(axis=1)
    as_is = predictor.probabilities(images).argmax(axis=1)
    for image, label, raw in zip(images, from_file, as_is, strict=True):
        encoded = base64.b64encode(png(image)).decode()
        for response in (
            client.post("/predict", files={"file": ("d.png", png(image), "image/png")}),
            client.post("/predict", content=png(image), headers={"content-type": "image/png"}),
            client.post("/predict", content=png(image), headers={"content-type": "application/octet-stream"}),
            client.post("/predict", json={"image": encoded}),
            client.post("/predict", json={"image": f"data:image/png;base64,{encoded}"}),
        ):
            check_digit(response.json(), label)
        check_digit(client.post("/predict", json={"pixels": (image / 255).tolist()}).json(), raw)
    photo = png(on_canvas(images[0], 300, (900, 700), (500, 300)))
    body = client.post("/predict?include_input=true", files={"file": ("p.png", photo, "image/png")}).json()
    check_digit(body, predictor.probabilities(np.stack(load_digits(photo, True))).argmax())
    seen = Image.open(io.BytesIO(base64.b64decode(body["input"].split(",")[1])))
    assert seen.size == (28, 28)


def test_predict_a_number(client: TestClient, tiny_run: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    """A row of three digits is read as the library reads the three digits it finds."""
    images = digits[0]
    page = Image.new("L", (640, 220), 255)
    for i in range(3):
        page.paste(Image.fromarray(255 - images[i]).resize((170, 170)), (20 + i * 210, 25))
    found = np.stack(load_digits(png(page), True, True))
    expected = "".join(str(d) for d in Predictor(tiny_run).probabilities(found).argmax(axis=1))
    body = client.post("/predict?multi_digit=true", files={"file": ("n.png", png(page), "image/png")}).json()
    assert body["number"] == expected and len(body["digits"]) == 3
    Number.model_validate(body)
    assert body["confidence"] == pytest.approx(np.prod([d["confidence"] for d in body["digits"]]), abs=1e-5)
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


def pixels(image: np.ndarray) -> list:
    return (image / 255).tolist()


def test_every_reading_carries_a_verdict_of_calibrated_probabilities(
    accurate_client: TestClient, dnn_run: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """The verdicts and calibrated probabilities are the library's (Predictor.judge) for the same pixels; a
    Fashion-MNIST pullover is not a digit."""
    predictor = Predictor(dnn_run)
    pullover = load_dataset("fashion-mnist").x_test[1]
    images = np.concatenate([digits[0][:5], pullover[None]])
    judged = predictor.judge(images)
    for image, probs, verdict in zip(images, judged.probabilities, judged.verdicts, strict=True):
        body = accurate_client.post("/predict", json={"pixels": pixels(image)}).json()
        assert body["verdict"] == verdict and body["digit"] == str(probs.argmax())
        np.testing.assert_allclose(body["probabilities"], probs, atol=1e-6)
    assert judged.verdicts[0] == "digit" and judged.verdicts[-1] == "not_a_digit"


def test_reject_false_answers_the_argmax_as_a_digit(
    client: TestClient, tiny_run: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    boot = load_dataset("fashion-mnist").x_test[0]
    images = np.concatenate([digits[0][:3], boot[None]])
    argmax = Predictor(tiny_run).probabilities(images).argmax(axis=1)
    for image, expected in zip(images, argmax, strict=True):
        for response in (
            client.post("/predict?reject=false", content=png(image), headers={"content-type": "image/png"}),
            client.post("/predict", json={"pixels": pixels(image), "reject": False}),
        ):
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["verdict"] == "digit" and body["digit"] == str(expected)


def test_thresholds_decide_the_verdicts(
    client: TestClient, tiny_run: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """typicality < reject_threshold: not a digit, so 1 rejects all but a digit as typical as the most typical
    validation digits (typicality exactly 1); confidence < confidence_threshold: not sure, so 1 doubts all but a
    calibrated probability of exactly 1; 0 accepts everything."""
    images = digits[0][:10]
    typicality = Predictor(tiny_run).judge(images).typicality
    for image, typical in zip(images, typicality, strict=True):
        upload = {"content": png(image), "headers": {"content-type": "image/png"}}
        body = client.post("/predict?reject_threshold=1", json={"pixels": pixels(image)}).json()
        assert body["verdict"] == ("not_a_digit" if typical < 1 else "digit")
        body = client.post("/predict", json={"pixels": pixels(image), "reject_threshold": 1}).json()
        assert body["verdict"] == ("not_a_digit" if typical < 1 else "digit")
        body = client.post("/predict?reject_threshold=0&confidence_threshold=1", **upload).json()
        assert body["verdict"] == ("uncertain" if body["confidence"] < 1 else "digit")
        body = client.post("/predict?reject_threshold=0&confidence_threshold=0", **upload).json()
        assert body["verdict"] == "digit"
        body = client.post(
            "/predict?reject_threshold=0",
            json={"pixels": pixels(image), "reject_threshold": 1, "confidence_threshold": 0},
        ).json()
        assert body["verdict"] == "digit", "a query parameter wins over the same key in the JSON body"
    assert (typicality < 1).sum() >= 8


def test_a_number_has_a_verdict_of_its_own(client: TestClient, digits: tuple[np.ndarray, np.ndarray]) -> None:
    page = Image.new("L", (430, 220), 255)
    for i in range(2):
        page.paste(Image.fromarray(255 - digits[0][i]).resize((170, 170)), (20 + i * 210, 25))
    upload = {"files": {"file": ("n.png", png(page), "image/png")}}
    body = client.post("/predict?multi_digit=true", **upload).json()
    each = [d["verdict"] for d in body["digits"]]
    assert len(each) == 2 and set(each) <= set(VERDICTS)
    assert body["verdict"] == (
        "not_a_digit" if "not_a_digit" in each else "uncertain" if "uncertain" in each else "digit"
    )
    body = client.post("/predict?multi_digit=true&reject_threshold=0&confidence_threshold=1", **upload).json()
    assert body["verdict"] == "uncertain" or all(d["confidence"] == 1 for d in body["digits"])
    body = client.post("/predict?multi_digit=true&reject=false&reject_threshold=1", **upload).json()
    assert body["verdict"] == "digit" and [d["verdict"] for d in body["digits"]] == ["digit", "digit"]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc", "nan", "inf", ""])
@pytest.mark.parametrize("name", ["reject_threshold", "confidence_threshold"])
def test_a_bad_threshold_in_the_query_is_422(
    client: TestClient, digits: tuple[np.ndarray, np.ndarray], name: str, value: str
) -> None:
    response = client.post(f"/predict?{name}={value}", content=png(digits[0][0]), headers={"content-type": "image/png"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"query {name}: ") and "\n" not in detail


def test_the_query_string_is_read_as_a_query_model_is(
    fake_client: TestClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """/predict reads its query itself (bodies.query_options) the way FastAPI reads a query model: an option it does
    not know is refused, naming it; a repeated option takes its last value; the schema lists every option."""
    upload = {"content": png(digits[0][0]), "headers": {"content-type": "image/png"}}
    typo = fake_client.post("/predict?rejct=false", **upload)
    assert typo.status_code == 422 and typo.json()["detail"] == "query rejct: Extra inputs are not permitted"
    assert fake_client.post("/predict?reject=true&reject=false", **upload).json()["verdict"] == "digit"
    assert fake_client.post("/predict?reject=false&reject=true", **upload).json()["verdict"] == "uncertain"
    listed = fake_client.get("/openapi.json").json()["paths"]["/predict"]["post"]["parameters"]
    assert [(p["name"], p["in"]) for p in listed] == [(name, "query") for name in Options.model_fields]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"reject_threshold": 1.5}, "body reject_threshold: Input should be less than or equal to 1"),
        ({"reject_threshold": -0.1}, "body reject_threshold: Input should be greater than or equal to 0"),
        ({"confidence_threshold": "0.5"}, "body confidence_threshold: Input should be a valid number"),
        ({"confidence_threshold": True}, "body confidence_threshold: Input should be a valid number"),
        ({"reject_threshold": [0.5]}, "body reject_threshold: Input should be a valid number"),
        ({"reject_threshold": 10**400}, "body reject_threshold: "),
        ({"reject": "no"}, "body reject: Input should be a valid boolean"),
        ({"multi_digit": "yes"}, "body multi_digit: Input should be a valid boolean"),
        ({"deskew": 1}, "body deskew: Input should be a valid boolean"),
        ({"include_input": "true"}, "body include_input: Input should be a valid boolean"),
        ({"multidigit": True}, "body multidigit: Extra inputs are not permitted"),
    ],
)
def test_a_bad_option_in_the_json_body_is_422(
    fake_client: TestClient, digits: tuple[np.ndarray, np.ndarray], extra: dict, message: str
) -> None:
    """Options follow one rule whatever the body: a JSON value that is not of the option's type is refused like a
    bad query parameter (`{"multi_digit": "yes"}` used to be ignored), and so is an option that does not exist."""
    body = json.dumps({"pixels": pixels(digits[0][0]), **extra})
    response = fake_client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(message) and "\n" not in response.json()["detail"]
    assert fake_client.post("/predict?reject=maybe", json={"pixels": pixels(digits[0][0])}).status_code == 422


def test_a_query_option_wins_over_the_same_option_in_the_json_body(
    fake_client: TestClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """The fake's confidence is 0.1: uncertain at a confidence threshold above it, digit at one below."""
    image = pixels(digits[0][0])
    for query, body, verdict in (
        ("", {"confidence_threshold": 0.5}, "uncertain"),
        ("?confidence_threshold=0.05", {"confidence_threshold": 0.5}, "digit"),
        ("?reject=true", {"reject": False, "confidence_threshold": 0.5}, "uncertain"),
        ("", {"reject": False, "confidence_threshold": 0.5}, "digit"),
    ):
        answer = fake_client.post(f"/predict{query}", json={"pixels": image, **body}).json()
        assert answer["verdict"] == verdict, (query, body, answer)
    assert "input" in fake_client.post("/predict", json={"pixels": image, "include_input": True}).json()
    answer = fake_client.post("/predict?include_input=false", json={"pixels": image, "include_input": True}).json()
    assert "input" not in answer


# The hostile inputs every server answers alike (tests/test_ray_serve.py sends them to Ray Serve's replicas too).
BAD_IMAGES = [
    ("not-an-image", 415, "not an image format"),
    ("truncated", 422, "corrupt or truncated"),
    ("empty", 422, "empty"),
    ("zero-size", 422, "corrupt PNG image"),
    ("huge", 413, "too many pixels"),
    ("bomb", 413, "too many pixels"),
]
BAD_JSON = [
    ({"pixels": [[0.5] * 28] * 27}, '"pixels" must be a 28x28 array, got 27x28'),
    ({"pixels": [[0.5] * 28] * 27 + [[0.5] * 27]}, "body pixels: rows of different lengths (ragged)"),
    ({"pixels": [["a"] * 28] * 28}, "body pixels 0 0: Input should be a valid number"),
    ({"pixels": 3}, "body pixels: Input should be a valid array"),
    ({"pixels": [[0.0] * 28] * 27 + [[0.0] * 27 + [float("nan")]]}, "body pixels: [27][27] is nan"),
    ({"pixels": [[0.0] * 28] * 3 + [[255.0] * 28] * 25}, "body pixels: [3][0] = 255 is outside [0, 1]"),
    ({"pixels": [[-0.1] * 28] * 28}, "outside [0, 1]"),
    ({"image": "not base64!"}, "not valid base64"),
    ({"image": 12}, "body image: Input should be a valid string"),
    ({"image": None}, 'exactly one of "image"'),
    ({"something": 1}, "body something: Extra inputs are not permitted"),
    ({"image": "aGk=", "pixels": [[0.5] * 28] * 28}, 'exactly one of "image"'),
    ([1, 2], "body: Input should be an object"),
]


@pytest.mark.parametrize(("name", "status", "message"), BAD_IMAGES)
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


def test_a_blank_image_is_not_a_digit_with_its_reason_and_costs_the_batch_nothing(
    fake_client: TestClient, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """A blank image is answered as the CLI and the API answer it (readings.no_digit_json), every way it is sent;
    sent with digits at once (batched together by the server), it leaves their answers as they are alone."""
    blank = broken_files(digits[0][0])["blank"]
    expected = {"digit": None, "verdict": "not_a_digit", "confidence": 0.0, "probabilities": None}
    for response in (
        fake_client.post("/predict", files={"file": ("blank.png", blank, "image/png")}),
        fake_client.post("/predict", json={"image": base64.b64encode(blank).decode()}),
        fake_client.post("/predict?include_input=true", content=blank, headers={"content-type": "image/png"}),
    ):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.pop("reason").startswith("no digit found: the image is blank") and body == expected
    number = fake_client.post("/predict?multi_digit=true", content=blank, headers={"content-type": "image/png"})
    assert number.status_code == 200 and number.json()["number"] is None and number.json()["digits"] == []
    assert number.json()["verdict"] == "not_a_digit" and "reason" in number.json()

    app = create_app(FakePredictor(delay=0.05))  # type: ignore[arg-type]
    uploads = [{"files": {"file": ("d.png", png(image), "image/png")}} for image in digits[0][:6]]
    uploads.insert(3, {"files": {"file": ("blank.png", blank, "image/png")}})
    answers = post_all(app, uploads)
    assert [a.status_code for a in answers] == [200] * 7
    assert [a.json()["digit"] for a in answers] == ["0", "0", "0", None, "0", "0", "0"]
    assert all("reason" not in a.json() for i, a in enumerate(answers) if i != 3)


def test_prediction_sets_on_request(client: TestClient, fake_client: TestClient, tiny_run: Path) -> None:
    """`set_coverage` in the query or the JSON body adds each digit's set, the library's; only when asked. A model
    without scores, or a coverage they cannot give, is a 422 that says why."""
    image = load_dataset("mnist").x_test[0]
    predictor = Predictor(tiny_run)
    judged = predictor.judge(image[None])
    expected = [str(i) for i in np.flatnonzero(predictor.calibration.prediction_sets(judged.probabilities, 0.95)[0])]
    assert "set" not in client.post("/predict", json={"pixels": pixels(image)}).json()
    for response in (
        client.post("/predict?set_coverage=0.95", json={"pixels": pixels(image)}),
        client.post("/predict", json={"pixels": pixels(image), "set_coverage": 0.95}),
    ):
        assert response.status_code == 200, response.text
        assert response.json()["set"] == expected
    number = client.post(
        "/predict?multi_digit=true&set_coverage=0.95", content=png(image), headers={"content-type": "image/png"}
    )
    assert [d["set"] for d in number.json()["digits"]] == [expected]
    for query, message in [
        ("set_coverage=1", "query set_coverage: Input should be less than 1"),
        ("set_coverge=0.99", "query set_coverge: Extra inputs are not permitted"),
    ]:
        response = client.post(f"/predict?{query}", json={"pixels": pixels(image)})
        assert response.status_code == 422 and message in response.json()["detail"], response.text
    response = fake_client.post("/predict?set_coverage=0.9", json={"pixels": pixels(image)})
    assert response.status_code == 422 and "no prediction-set scores" in response.json()["detail"]


def test_upload_size_limit(client: TestClient) -> None:
    big = b"\0" * (LIMIT + 1)
    response = client.post("/predict", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413 and "200,000-byte limit" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"\0" * 10_000

    response = client.post("/predict", content=chunks(), headers={"content-type": "image/png"})
    assert response.status_code == 413, "a body without Content-Length is counted as it streams"


@pytest.mark.parametrize(("body", "message"), BAD_JSON)
def test_bad_json(fake_client: TestClient, body: object, message: str) -> None:
    response = fake_client.post("/predict", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_other_bad_requests(fake_client: TestClient) -> None:
    client = fake_client
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "not valid JSON" in response.json()["detail"]
    response = client.post("/predict", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "unsupported content type 'text/plain'" in response.json()["detail"]
    response = client.post("/predict", files={"other": ("a.png", b"x", "image/png")})
    assert response.status_code == 422 and "no file field named 'file'" in response.json()["detail"]
    response = client.post("/predict", files={"file": ("a.png", b"x", "image/png")}, data={"note": "hi"})
    assert response.status_code == 422 and "fields other than 'file' ('note')" in response.json()["detail"]
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
    result = cli("serve", str(tmp_path / "nowhere"), "--port", "0", "--workers", "2")
    assert result.code == 2 and "no such file" in result.err, "refused before any process starts"
    for workers in ("0", str(2 * (os.cpu_count() or 1) + 1)):
        result = cli("serve", str(fake), "--workers", workers)
        assert result.code == 2 and result.err.startswith("error: --workers must be in [1, ") and workers in result.err


def test_serve_workers_answer_from_processes_of_their_own(python_process, tiny_run: Path) -> None:  # type: ignore[no-untyped-def]
    """`serve --workers 2`: two processes, each with its model, answer on one port; SIGTERM stops them all."""
    import signal
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = ("-m", "mnist_classifier", "serve", str(tiny_run), "--port", str(port), "--workers", "2")
    server = python_process.start(*command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while len(pids) < 2 and time.monotonic() < deadline and server.poll() is None:
            try:
                with httpx.Client(base_url=url, timeout=30) as http:  # a new connection: either process may take it
                    pids.add(http.get("/model").json()["process_id"])
            except httpx.TransportError:
                time.sleep(0.2)
        assert len(pids) == 2 and server.pid not in pids, (pids, server.pid)
        digit = load_dataset("mnist").x_test[0]
        answers = [httpx.post(f"{url}/predict", files={"file": ("d.png", png(digit), "image/png")}) for _ in range(4)]
        assert all(r.status_code == 200 and r.json()["verdict"] in VERDICTS for r in answers)
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(60)
    assert code == 0, server.stderr.read().decode()[-2000:]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_batcher_survives_a_request_cancelled_while_batched(tiny_run: Path) -> None:
    images = load_dataset("mnist").x_test[:3]
    predictor = Predictor(tiny_run)

    async def main() -> list[tuple[np.ndarray, np.ndarray]]:
        batcher = Batcher(predictor)
        tasks = [asyncio.create_task(batcher.assess(images[i : i + 1])) for i in range(3)]
        await asyncio.sleep(0)
        tasks[1].cancel()
        try:
            return list(await asyncio.wait_for(asyncio.gather(tasks[0], tasks[2]), 30))
        finally:
            await batcher.close()

    first, third = asyncio.run(main())
    probs, distances = predictor.assess(images, predictor.calibration.temperature)
    np.testing.assert_allclose(first[0][0], probs[0], atol=1e-6)
    np.testing.assert_allclose(third[0][0], probs[2], atol=1e-6)
    np.testing.assert_allclose([first[1][0], third[1][0]], distances[[0, 2]], rtol=1e-4)


class FakePredictor:
    """A stand-in for Predictor without TensorFlow: uniform probabilities (distance 0) after `delay` seconds, or
    once `gate` is set; a RuntimeError from every call whose number is in `failing` (counted from 0)."""

    name, architecture, meta, metrics, parameters, runtime = "fake", "dnn", {}, {}, 0, "fake float32"
    input_shape = (28, 28)
    class_names = tuple("0123456789")
    calibration = FALLBACK

    def __init__(
        self, delay: float = 0.0, failing: frozenset[int] = frozenset(), gate: threading.Event | None = None
    ) -> None:
        self.delay, self.failing, self.gate, self.calls, self.sizes = delay, failing, gate, 0, []
        self.threads: list[str] = []  # where each call ran

    def assess(self, images: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        call, self.calls = self.calls, self.calls + 1
        self.sizes.append(len(images))
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        if self.gate is not None and not self.gate.wait(30):
            raise RuntimeError("the test never opened the gate")
        if call in self.failing:
            raise RuntimeError("injected failure in the forward pass")
        return np.full((len(images), 10), 0.1, np.float32), np.zeros(len(images))


@pytest.fixture(scope="module")
def fake_client() -> Iterator[TestClient]:
    """The server of FakePredictor, for what the server decides whatever the model."""
    with TestClient(create_app(FakePredictor(), max_upload_bytes=LIMIT)) as test_client:  # type: ignore[arg-type]
        yield test_client


@asynccontextmanager
async def served(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the app, with its lifespan started (and ended afterwards) as a server would."""
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def post_all(app: object, requests: list[dict], timeout: float = 60) -> list[httpx.Response]:
    """Send all requests at once to the app in-process; fails if any is still unanswered after `timeout` s."""

    async def main() -> list[httpx.Response]:
        async with served(app) as http:
            calls = (http.post("/predict", **request) for request in requests)
            return list(await asyncio.wait_for(asyncio.gather(*calls), timeout))

    return asyncio.run(main())


def test_a_failing_forward_pass_fails_only_its_batch(
    digits: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    """A forward pass that raises answers 500 to the requests of its batch, logs one line, and every other
    request still gets its answer: nothing waits for ever."""
    predictor = FakePredictor(delay=0.05, failing=frozenset({0, 2}))
    app = create_app(predictor, threads=2, max_batch=8)  # type: ignore[arg-type]
    bodies = [{"json": {"pixels": (digits[0][i % 20] / 255).tolist()}} for i in range(24)]
    bodies += [{"content": png(digits[0][i]), "headers": {"content-type": "image/png"}} for i in range(8)]
    with caplog.at_level("ERROR", logger="mnist_classifier.server.batcher"):
        responses = post_all(app, bodies)
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 500}, statuses
    assert predictor.calls >= 4 and max(predictor.sizes) <= 8
    assert statuses.count(500) == predictor.sizes[0] + predictor.sizes[2]
    failed = next(r for r in responses if r.status_code == 500)
    assert failed.json() == {"detail": "the model failed on this request's batch (logged); try again"}
    lines = [r.getMessage() for r in caplog.records if "prediction failed" in r.getMessage()]
    assert len(lines) == 2 and "RuntimeError: injected failure in the forward pass" in lines[0]
    assert all("\n" not in line for line in lines)


def test_a_batch_of_mismatched_shapes_fails_with_500_not_a_hang() -> None:
    """np.concatenate of a 28x28 upload and a 32x32 array raises inside the batch: both calls fail, the next works."""

    async def main() -> list[object]:
        batcher = Batcher(FakePredictor())  # type: ignore[arg-type]
        try:
            calls = [
                batcher.assess(np.zeros((1, 28, 28), np.uint8)),
                batcher.assess(np.zeros((1, 32, 32), np.float32)),
            ]
            results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
            return [*results, await asyncio.wait_for(batcher.assess(np.zeros((2, 28, 28), np.uint8)), 10)]
        finally:
            await batcher.close()

    first, second, after = asyncio.run(main())
    assert isinstance(first, BatchFailed) and isinstance(second, BatchFailed)
    assert "ValueError" in str(first)
    assert isinstance(after, tuple) and after[0].shape == (2, 10) and after[1].shape == (2,)


def test_batches_are_capped() -> None:
    predictor = FakePredictor()

    async def main() -> None:
        batcher = Batcher(predictor, max_batch=5)  # type: ignore[arg-type]
        try:
            sizes = [1, 3, 2, 4, 1, 7, 1]
            calls = [batcher.assess(np.zeros((n, 28, 28), np.uint8)) for n in sizes]
            results = await asyncio.wait_for(asyncio.gather(*calls), 10)
            assert [(len(probs), len(distances)) for probs, distances in results] == [(n, n) for n in sizes]
        finally:
            await batcher.close()

    asyncio.run(main())
    assert predictor.sizes == [4, 2, 5, 7, 1], "oldest first, at most 5 images unless one request is larger"


@pytest.mark.parametrize("delay", [0.0, 0.005])
def test_small_quick_batches_run_on_the_event_loop_and_the_rest_in_the_model_thread(delay: float) -> None:
    """The first call runs in the model thread (its cost unknown); later batches of at most INLINE_IMAGES run on the
    event loop while such a call takes under INLINE_SECONDS; a slower model's and larger batches stay in the thread."""
    predictor = FakePredictor(delay=delay)

    async def main() -> None:
        batcher = Batcher(predictor)  # type: ignore[arg-type]
        try:
            for size in (1, 1, INLINE_IMAGES, INLINE_IMAGES + 1, 2):
                probs, distances = await asyncio.wait_for(batcher.assess(np.zeros((size, 28, 28), np.uint8)), 10)
                assert len(probs) == len(distances) == size
        finally:
            await batcher.close()

    asyncio.run(main())
    assert INLINE_SECONDS < 0.005
    loop, model = threading.main_thread().name, "model_0"
    expected = [model, loop, loop, model, loop] if delay == 0 else [model] * 5
    assert predictor.threads == expected


def test_a_full_queue_answers_503_at_once(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """With `max_queue` requests held by the model, more are answered 503 with Retry-After while those still wait,
    and never reach the model; /health still answers; once the model is free, the held ones get their answers."""
    gate = threading.Event()
    predictor = FakePredictor(gate=gate)
    app = create_app(predictor, max_queue=3)  # type: ignore[arg-type]
    request = {"json": {"pixels": (digits[0][0] / 255).tolist()}}

    async def main() -> tuple[list[httpx.Response], list[httpx.Response], httpx.Response]:
        async with served(app) as http:
            held = [asyncio.create_task(http.post("/predict", **request)) for _ in range(3)]
            while app.state.admission.in_flight < 3:  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
            refused = await asyncio.wait_for(asyncio.gather(*(http.post("/predict", **request) for _ in range(5))), 30)
            health = await http.get("/health")
            assert not any(task.done() for task in held), "the refused were answered while the model held the rest"
            gate.set()
            return list(await asyncio.wait_for(asyncio.gather(*held), 30)), refused, health

    answered, refused, health = asyncio.run(main())
    assert [r.status_code for r in answered] == [200] * 3
    assert [r.status_code for r in refused] == [503] * 5
    assert all(r.headers["retry-after"] == "1" and "server busy" in r.json()["detail"] for r in refused)
    assert health.status_code == 200
    assert sum(predictor.sizes) == 3, "a refused request never reaches the model"


def test_images_are_decoded_in_a_bounded_pool_off_the_event_loop(
    digits: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small PNG that needs preparation (a digit with a margin, dark ink on light) is decoded in a worker thread,
    and at most `threads` images are decoded at once."""
    from mnist_classifier.server import reading

    running, most, threads = 0, 0, set()
    lock = threading.Lock()
    real = reading.load_digits

    def watched(*args: object) -> list[np.ndarray]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.current_thread())
        time.sleep(0.05)
        try:
            return real(*args)  # type: ignore[arg-type]
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(reading, "load_digits", watched)
    app = create_app(FakePredictor(), threads=2)  # type: ignore[arg-type]
    responses = post_all(
        app,
        [
            {
                "content": png(np.pad(255 - digits[0][i], 6, constant_values=255)),
                "headers": {"content-type": "image/png"},
            }
            for i in range(10)
        ],
    )
    assert all(r.status_code == 200 for r in responses)
    assert most == 2 and threading.main_thread() not in threads


def test_only_a_small_mnist_style_file_is_read_on_the_event_loop(
    digits: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MNIST digit's PNG is read where it arrives (cheaper than a thread hop); on the event loop, any other file is
    only opened: a few-KB PNG declaring 16 megapixels, or a 28x28 one that needs preparation, is decoded in a worker
    thread."""
    from PIL import ImageFile

    from mnist_classifier.server import reading

    decoded: list[tuple[tuple[int, int], bool]] = []
    real_load = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> object:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        decoded.append((self.size, on_loop))
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    prepared = []
    real_digits = reading.load_digits
    monkeypatch.setattr(reading, "load_digits", lambda *args: prepared.append(1) or real_digits(*args))
    bomb = Image.new("1", (4000, 4000), 0)
    bomb.paste(1, (1900, 1000, 2100, 3000))
    grey_page = (160 - digits[0][0] // 2).astype(np.uint8)  # dark ink on grey: neither MNIST's nor its inverse
    files = {"mnist": png(digits[0][0]), "inverted": png(255 - digits[0][0]), "grey": png(grey_page), "bomb": png(bomb)}
    assert len(files["bomb"]) < reading.INLINE_FILE_BYTES
    with TestClient(create_app(FakePredictor())) as client:  # type: ignore[arg-type]
        seen = {}
        for name, upload in files.items():
            decoded.clear()
            prepared.clear()
            response = client.post("/predict", files={"file": ("d.png", upload, "image/png")})
            assert response.status_code == 200, response.text
            seen[name] = (sorted(set(decoded)), len(prepared))
    assert seen["mnist"] == ([((28, 28), True)], 0), "read on the loop, never prepared"
    assert seen["inverted"] == ([((28, 28), True)], 0), "MNIST's inverse: read on the loop, never prepared"
    assert seen["grey"] == ([((28, 28), False), ((28, 28), True)], 1), "checked on the loop, prepared in a thread"
    assert seen["bomb"] == ([((4000, 4000), False)], 1), "only its header read on the loop"


def test_json_bodies_and_png_answers_are_made_off_the_event_loop(
    digits: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON body is parsed, and an `include_input` PNG encoded, in worker threads: a large body or many PNGs
    never hold up the other requests."""
    from mnist_classifier.server import reading, routes

    threads: dict[str, set[threading.Thread]] = {"parse_json": set(), "png_base64": set()}

    def watch(module: object, name: str) -> None:
        real = getattr(module, name)

        def watched(*args: object) -> object:
            threads[name].add(threading.current_thread())
            return real(*args)

        monkeypatch.setattr(module, name, watched)

    watch(routes, "parse_json")
    watch(reading, "png_base64")
    responses = post_all(
        create_app(FakePredictor()),  # type: ignore[arg-type]
        [
            {"json": {"pixels": pixels(digits[0][0]), "include_input": True}},
            {"json": {"image": base64.b64encode(png(digits[0][1])).decode()}, "params": {"include_input": "true"}},
        ],
    )
    assert [r.status_code for r in responses] == [200, 200] and all("input" in r.json() for r in responses)
    assert all(threads[name] and threading.main_thread() not in threads[name] for name in threads), threads


def test_shutdown_waits_for_the_model_without_blocking_the_event_loop() -> None:
    """Closing the batcher while the model thread is busy leaves the event loop free: here the coroutine that frees
    the model runs during the close (a close that blocked the loop would wait for it for ever)."""
    gate = threading.Event()

    async def main() -> None:
        batcher = Batcher(FakePredictor(gate=gate))  # type: ignore[arg-type]
        call = asyncio.create_task(batcher.assess(np.zeros((1, 28, 28), np.uint8)))
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(batcher.close())
        await asyncio.sleep(0.05)
        assert not closing.done(), "close waits for the batch the model is reading"
        gate.set()
        await asyncio.wait_for(closing, 30)
        assert (await call)[0].shape == (1, 10)

    timer = threading.Timer(20, gate.set)  # frees a blocked loop, so a failure fails instead of hanging
    timer.start()
    try:
        asyncio.run(main())
    finally:
        timer.cancel()


def test_read_and_predict_without_http(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """The predict route's work is a plain coroutine of bytes or pixels: a test needs no request to call it."""
    predictor = FakePredictor()

    async def main() -> list[object]:
        batcher = Batcher(predictor)  # type: ignore[arg-type]
        decoding = Decoding.pools(2**26, 1)
        try:
            return [
                await read_and_predict(png(digits[0][0]), Options(include_input=True), predictor, batcher, decoding),  # type: ignore[arg-type]
                await read_and_predict(digits[0][0] / 255, Options(multi_digit=True), predictor, batcher, decoding),  # type: ignore[arg-type]
            ]
        finally:
            await batcher.close()

    from_file, from_pixels = asyncio.run(main())
    assert from_file["digit"] == "0" and from_file["input"].startswith("data:image/png;base64,")
    assert from_pixels["verdict"] in VERDICTS and "input" not in from_pixels
    Digit.model_validate(from_file)
    Digit.model_validate(from_pixels)  # pixels are one digit, multi_digit or not
    assert predictor.sizes == [1, 1]


def test_dependencies_can_be_overridden(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """The routes reach the predictor through `Depends`, so a test can swap it after the app is made."""
    from mnist_classifier.server.routes import get_predictor

    app = create_app(FakePredictor())  # type: ignore[arg-type]
    other = FakePredictor()
    other.name = "other"
    app.dependency_overrides[get_predictor] = lambda: other
    with TestClient(app) as client:
        assert client.get("/model").json()["name"] == "other"


def test_the_multipart_form_is_closed(digits: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.datastructures import FormData

    closed = []
    real = FormData.close

    async def close(self: FormData) -> None:
        closed.append(self)
        await real(self)

    monkeypatch.setattr(FormData, "close", close)
    app = create_app(FakePredictor())  # type: ignore[arg-type]
    files = {"files": {"file": ("d.png", png(digits[0][0]), "image/png")}}
    no_file = {"files": {"other": ("d.png", b"x", "image/png")}}
    assert [r.status_code for r in post_all(app, [files, no_file])] == [200, 422]
    assert len(closed) == 2
    many = {"data": {f"field{i}": "x" for i in range(20)}, "files": {"file": ("d.png", b"x", "image/png")}}
    response = post_all(app, [many])[0]
    assert response.status_code == 422 and "Too many fields" in response.json()["detail"]


def test_hostile_pngs_are_refused_from_their_header_or_read_within_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 7000x7000 transparent RGBA PNG (200 KB) is refused from its header, its pixels never decoded; the
    16-megapixel 1-bit PNG (a few KB) is decoded within the budget, reduced, and read. (Their timing is
    benchmarks/serving.py's.)"""
    from PIL import ImageDraw, ImageFile

    decoded: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> object:
        decoded.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    rgba = Image.new("RGBA", (7000, 7000), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(2500, 1500), (3500, 5500)], fill=(20, 20, 20, 255), width=60)
    bits = Image.new("1", (4000, 4000), 0)
    ImageDraw.Draw(bits).line([(2000, 1000), (2000, 3000)], fill=1, width=40)
    with TestClient(create_app(FakePredictor())) as client:  # type: ignore[arg-type]
        for image, status in ((rgba, 413), (bits, 200)):
            upload = png(image)
            decoded.clear()
            response = client.post("/predict", files={"file": ("h.png", upload, "image/png")})
            assert response.status_code == status, response.text
            if status == 413:
                assert response.json()["detail"].startswith("image is 7000x7000 RGBA: too many pixels to read")
                assert decoded == [], "refused before decoding"
            else:
                assert (4000, 4000) in decoded
