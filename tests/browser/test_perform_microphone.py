"""The ``/perform`` page's microphone drives follow mode: headless Chromium's fake audio
capture plays the performer's part sung by the project's voice; the engine receives it over
WebRTC beside the camera (``serve --mocap webrtc --performer-audio page``) and the follower,
read from ``/status``, walks through the part."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow import corpus
from stage.serve import ServeOptions, serve
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.stage.test_duet_cli import duet_musicxml


@pytest.fixture
async def singing_browser(tmp_path: Path) -> AsyncIterator[object]:
    """Chromium whose microphone sings score A's performer part at 100 bpm (then rests)."""
    from playwright.async_api import async_playwright

    perf = corpus.perform(corpus.score_a(4), bpm=100.0, snr_db=30.0)
    rest = np.zeros(SAMPLE_RATE_HZ * 2, np.float32)
    wav = tmp_path / "voice.wav"
    sf.write(str(wav), np.concatenate([rest[:SAMPLE_RATE_HZ // 2], perf.audio, rest]),
             SAMPLE_RATE_HZ, subtype="PCM_16")
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}"]
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield instance
        finally:
            await instance.close()


def _status(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as got:
        return dict(json.loads(got.read()))


@pytest.mark.timeout(120)
async def test_perform_page_microphone_is_followed(singing_browser, tmp_path: Path
                                                   ) -> None:  # noqa: ANN001
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    handles: dict[str, object] = {}
    opts = ServeOptions(osc_port=None, http_port=0, headless=True, song=str(xml),
                        follow="performer", performer_audio="page", mocap="webrtc",
                        audible_label="off")
    task = asyncio.ensure_future(serve(opts, handles=handles))
    page = None
    try:
        for _ in range(1200):
            web = handles.get("web")
            pacer = handles.get("pacer")
            if web is not None and pacer is not None and pacer.chunks_played > 0:  # type: ignore[attr-defined]
                break
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
        port = int(web.port)  # type: ignore[union-attr]
        page = await singing_browser.new_page()  # type: ignore[attr-defined]
        await page.goto(f"http://127.0.0.1:{port}/perform?width=160&height=120&fps=5")
        await page.wait_for_function(
            "window.livesingerPerform && window.livesingerPerform.state.startsWith('performing')",
            timeout=30_000)
        beats: list[float] = []
        follow: dict[str, object] = {}
        for _ in range(200):  # the 16 beats take 9.6 s
            await asyncio.sleep(0.1)
            follow = (await asyncio.to_thread(_status, port))["follow"]  # type: ignore[assignment]
            if follow.get("started"):
                beats.append(float(follow["beat"]))  # type: ignore[arg-type]
            if beats and beats[-1] >= 12.0:
                break
        shown = await page.evaluate("window.livesingerPerform")
    finally:
        if page is not None:
            await page.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert shown["audio"] and shown["error"] is None, shown
    mic = follow["page_microphone"]
    assert mic["frames"] > 100 and mic["bad_frames"] == 0, mic  # type: ignore[index]
    assert follow["input"] == "page microphone" and follow["events"] >= 10, follow
    # the position walks through the part, in order, at about the sung tempo
    assert beats[-1] >= 12.0 and beats == sorted(beats), beats
    assert abs(float(follow["bpm"]) / 100.0 - 1) < 0.1, follow  # type: ignore[arg-type]
