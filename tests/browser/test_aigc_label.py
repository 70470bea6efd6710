"""The explicit AI-generated label in headless Chromium: on the stage page and the performer
page, in the show's language (「AI生成」 for a Mandarin song), large and legible in a screenshot,
with the credits a licence requires."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from singer.provenance.aigc import AigcLabel
from stage.show_provenance import ShowProvenance, WithProvenance
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.streams.test_web import WEB_ROOT, Show

LABEL_YELLOW = np.array([0xFF, 0xD4, 0x00])


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("language", "text", "page_path"),
                         [("zh", "AI生成", "/"), ("en", "AI-generated", "/"),
                          ("zh", "AI生成", "/perform")])
async def test_the_label_is_visible_in_the_show_language(
        browser, tmp_path: Path, language: str, text: str, page_path: str) -> None:  # noqa: ANN001
    from PIL import Image

    from rigs.avatar import build_default_avatar

    avatar = build_default_avatar(tmp_path / "idol.vrm")
    provenance = ShowProvenance(AigcLabel.new(), "personal", "start",
                                credits=["voice: Example Bank by A. Singer"],
                                language=lambda: language)
    web = WebServer(ViewerHub(), WithProvenance(Show(), provenance), web_root=WEB_ROOT,
                    avatar_path=avatar, port=0)
    await web.start()
    page = await browser.new_page(viewport={"width": 640, "height": 360})
    try:
        await page.goto(f"http://127.0.0.1:{web.port}{page_path}")
        await page.wait_for_function(
            f"document.getElementById('aigc-label').textContent === {text!r}", timeout=20_000)
        box = await page.locator("#aigc-label").bounding_box()
        credits = await page.locator("#aigc-credits").text_content()
        shot = Image.open(io.BytesIO(await page.screenshot())).convert("RGB")
    finally:
        await page.close()
        await web.stop()
    assert box is not None
    # text at least 5 % of the viewport's shorter side (GB 45438-2025 for video)
    assert box["height"] >= 0.05 * 360 and box["y"] >= 0 and box["x"] + box["width"] <= 640
    # what Chromium drew there: the label's yellow behind dark glyphs, on top of the page
    x0, y0 = int(box["x"]), int(box["y"])
    x1, y1 = int(box["x"] + box["width"]), int(box["y"] + box["height"])
    pixels = np.asarray(shot)[y0 + 3:y1 - 3, x0 + 3:x1 - 3].reshape(-1, 3).astype(int)
    yellow = np.all(np.abs(pixels - LABEL_YELLOW) < 40, axis=1).mean()
    dark = (pixels.sum(axis=1) < 150).mean()
    assert yellow > 0.4 and dark > 0.05, (yellow, dark)
    assert credits == "voice: Example Bank by A. Singer"
