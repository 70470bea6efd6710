"""The stage page behind a token, in headless Chromium: opened as ``/?token=<viewer token>``
it loads whole (its files, three.js, the avatar), draws the avatar, hears the show's audio,
and still cannot cue the show.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from stage.pacer import AudioPacer, PacerConfig
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.streams.test_web import WEB_ROOT, Show

CONTROL, VIEWER = "control-T0ken", "viewer-T0ken"


def tone(start: int, n: int) -> np.ndarray:
    t = np.arange(start, start + n) / SAMPLE_RATE_HZ
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.timeout(120)
async def test_a_viewer_token_in_the_address_loads_the_whole_page_and_cannot_cue(
        browser, tmp_path: Path) -> None:  # noqa: ANN001
    from rigs.avatar import build_default_avatar

    avatar = build_default_avatar(tmp_path / "idol.vrm")
    hub = ViewerHub()
    show = Show()
    pacer = AudioPacer(tone, [hub.push_audio], PacerConfig(480, 8))
    web = WebServer(hub, show, web_root=WEB_ROOT, avatar_path=avatar, port=0, token=CONTROL,
                    viewer_token=VIEWER)
    await web.start()
    play = asyncio.ensure_future(pacer.run())
    page = await browser.new_page(viewport={"width": 480, "height": 360})
    answers: dict[str, int] = {}
    page.on("response", lambda res: answers.__setitem__(res.url.split("?")[0], res.status))
    logs: list[str] = []
    page.on("console", lambda msg: logs.append(msg.text))
    base = f"http://127.0.0.1:{web.port}"
    try:
        await page.goto(f"{base}/?token={VIEWER}&overlay=1")
        await page.wait_for_function("window.livesinger && window.livesinger.humanBones.length"
                                     " >= 15", timeout=40_000)
        await page.wait_for_function("window.livesinger.audioPackets > 50", timeout=30_000)
        live = await page.evaluate("window.livesinger")
        # the page's own session cannot cue, whatever it sends; nor can it read the cookie
        cue = await page.evaluate("""async () => {
            const res = await fetch('/cue', { method: 'POST',
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ command: 'song.load', args: { song: 'jasmine' } }) });
            return [res.status, (await res.json()).error, document.cookie];
        }""")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/cue", json={"command": "go"},
                                 headers={"Authorization": f"Bearer {VIEWER}"}) as res:
                viewer_cue = res.status
    finally:
        await page.close()
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)
        await web.stop()

    for path in ("/", "/stage.css", "/stage.js", "/vendor/three/build/three.module.js",
                 "/vendor/@pixiv/three-vrm/lib/three-vrm.module.js", "/avatar.vrm", "/offer"):
        assert answers.get(base + path) == 200, (path, answers, logs)
    assert live["state"] == "connected", live["state"]
    assert live["avatar"] and not str(live["avatar"]).startswith("error"), live["avatar"]
    assert live["audioPackets"] > 50
    assert cue[0] == 403 and "control token" in cue[1] and cue[2] == "", cue
    assert viewer_cue == 403
    assert show.cues == []
