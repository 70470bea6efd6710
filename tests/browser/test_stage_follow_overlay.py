"""The stage page's overlay shows follow mode's state from ``/status`` (docs/follow.md):
the followed part, where the performer is, their tempo and the follower's confidence, or that
its input is lost, in headless Chromium against the real web server."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.streams.test_web import WEB_ROOT, Show


class FollowingShow(Show):
    """A show whose follower is part-way through the performer's part."""

    def __init__(self) -> None:
        super().__init__()
        self.follow: dict[str, object] = {"armed": False, "arms": 0}

    def status(self) -> dict[str, object]:
        return {**super().status(), "follow": self.follow}


@pytest.mark.timeout(90)
async def test_the_overlay_shows_the_followers_state(browser, tmp_path: Path) -> None:  # noqa: ANN001
    from rigs.avatar import build_default_avatar

    show = FollowingShow()
    web = WebServer(ViewerHub(), show, web_root=WEB_ROOT,
                    avatar_path=build_default_avatar(tmp_path / "idol.vrm"), port=0)
    await web.start()
    page = await browser.new_page(viewport={"width": 640, "height": 360})
    try:
        await page.goto(f"http://127.0.0.1:{web.port}/?overlay=1")
        text = "document.getElementById('o-follow').textContent"
        await page.wait_for_function(f"{text} === 'off'", timeout=20_000)
        show.follow = {"armed": True, "arms": 1, "part": "Performer", "input": "midi Keys",
                       "started": True, "beat": 12.25, "bpm": 126.04, "confidence": 0.931,
                       "holding": True}
        await page.wait_for_function(f"{text}.startsWith('Performer')", timeout=20_000)
        shown = await page.evaluate(text)
        show.follow = {**show.follow, "input_lost": True,
                       "input_error": "MIDI port 'Keys' went away; input ports (JACK): none"}
        await page.wait_for_function(f"{text}.includes('lost')", timeout=20_000)
        lost = await page.evaluate(text)
    finally:
        await page.close()
        await web.stop()
    assert shown == "Performer: beat 12.3, 126.0 bpm, confidence 0.93, holding", shown
    assert lost == ("Performer: input lost: MIDI port 'Keys' went away; input ports (JACK): "
                    "none"), lost
