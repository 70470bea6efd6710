"""Headless Debian Chromium driven by Playwright, with real WebRTC and WebGL (SwiftShader)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM = str(Path(__file__).with_name("chromium-below-the-engine"))
"""Debian's Chromium, started at nice 10: the engine under test keeps its CPU beside it."""
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu-sandbox", "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
    "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--use-fake-ui-for-media-stream",
]


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """A fresh headless Chromium (the test fails, loudly, when it cannot start)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                            headless=True)
        try:
            yield instance
        finally:
            await instance.close()
