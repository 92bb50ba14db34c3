"""The drawing page in a real browser: Playwright drives Debian's Chromium against a real Uvicorn server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import LiveServer, require
from .images import on_canvas, png

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.mark.slow
def test_draw_a_digit_and_see_the_prediction(live_server: LiveServer, tmp_path: Path) -> None:
    require(CHROMIUM.is_file(), f"{CHROMIUM} is absent; install Debian's chromium package")
    from playwright.sync_api import expect, sync_playwright

    from mnist_classifier.data import load_dataset

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 820})
            page.goto(live_server.url)
            expect(page.locator("#model-info")).to_contain_text("test set")
            expect(page.locator("#bars .bar")).to_have_count(10)
            box = page.locator("#canvas").bounding_box()
            assert box is not None

            def at(x: float, y: float) -> tuple[float, float]:
                return box["x"] + x * box["width"], box["y"] + y * box["height"]

            for stroke in ([(0.3, 0.22), (0.72, 0.22), (0.45, 0.85)], [(0.42, 0.52), (0.66, 0.52)]):
                page.mouse.move(*at(*stroke[0]))
                page.mouse.down()
                for point in stroke[1:]:
                    page.mouse.move(*at(*point), steps=12)
                page.mouse.up()
            prediction = page.locator("#prediction")
            expect(prediction).to_have_attribute("data-state", "ready")
            expect(prediction).to_have_text("7")
            expect(page.locator("#confidence")).to_contain_text("% sure")
            page.wait_for_timeout(400)
            shown = page.locator("#bars .fill").evaluate_all(
                "bars => bars.map(b => b.getBoundingClientRect().width / b.parentElement.getBoundingClientRect().width)"
            )
            assert len(shown) == 10 and shown[7] == max(shown) and 0.97 <= sum(shown) <= 1.03, shown
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "drawing-page.png"))

            page.click("#clear")
            expect(prediction).to_have_attribute("data-state", "empty")

            digit = load_dataset("mnist").x_test[1]
            upload = tmp_path / "upload.png"
            upload.write_bytes(png(on_canvas(digit, 200, (400, 300), (150, 60))))
            page.set_input_files("#upload", str(upload))
            expect(prediction).to_have_text("2")
            assert np.isfinite(float(page.locator("#confidence").inner_text().split("%")[0]))

            page.goto(f"{live_server.url}/docs")
            expect(page.locator('.opblock-summary-path[data-path="/predict"]')).to_be_visible()
        finally:
            browser.close()
