"""The director's console in headless Chromium, driving ``serve`` (recording) like a director:
log in, load a cue list, GO with the space bar, Panic, play the on-screen keyboard. What the
engine recorded is measured (Praat): the song in tune, silence after Panic, the keys' pitches
in order; a second console sees the first one's GO; wrong tokens are refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ, Note
from stage.serve import ServeOptions, serve
from tests.measure import f0_track, note_cents_errors

SR = SAMPLE_RATE_HZ
CONTROL, VIEWER = "control-T0ken", "viewer-T0ken"
CUES = """cues:
  - id: "1"
    name: Twinkle
    do:
      - song.load: twinkle
      - song.play: 0
  - id: "2"
    name: Vibrato up
    do:
      - expr: {name: vibrato_depth, value: 1.6}
"""
KEYS = (("E4", 64), ("A4", 69), ("C5", 72))


async def js(page: Any, expression: str) -> Any:
    return await page.evaluate(expression)


async def until(page: Any, expression: str, timeout_s: float = 20.0) -> None:
    await page.wait_for_function(expression, timeout=timeout_s * 1000)


def median_cents(audio: np.ndarray, start: int, end: int, midi: float) -> float:
    hz = 440.0 * 2 ** ((midi - 69) / 12)
    _, f0 = f0_track(audio[start:end], floor_hz=hz / 2, ceiling_hz=hz * 1.5)
    voiced = f0[f0 > 0]
    return float(1200 * np.log2(np.median(voiced) / hz)) if len(voiced) else float("inf")


@pytest.mark.timeout(120)
async def test_a_director_runs_the_show_from_the_console(browser, tmp_path: Path) -> None:  # noqa: ANN001
    from singer.scores.load import load_score

    cue_file = tmp_path / "show.yaml"
    cue_file.write_text(CUES, encoding="utf-8")
    ports: dict[str, object] = {}
    ready = asyncio.Event()
    opts = ServeOptions(osc_port=None, http_port=0, headless=True, record=tmp_path / "rec",
                        token=CONTROL, viewer_token=VIEWER, lookahead_chunks=8)
    engine = asyncio.ensure_future(serve(opts, lambda p: (ports.update(p), ready.set())))
    await asyncio.wait_for(ready.wait(), 60)
    base = f"http://127.0.0.1:{ports['http']}"
    first = await browser.new_context(viewport={"width": 1440, "height": 900})
    second = await browser.new_context(viewport={"width": 1280, "height": 800})
    a, b = await first.new_page(), await second.new_page()
    logs: list[str] = []
    a.on("console", lambda msg: logs.append(msg.text))
    try:
        # wrong tokens are refused at the login field; the control token signs in
        await a.goto(f"{base}/director")
        await a.wait_for_selector("#login:not([hidden])")
        refusals = []
        for token in ("nope", VIEWER):
            await a.fill("#token", token)
            await a.get_by_role("button", name="Sign in").click()
            await until(a, f"window.director.errors.length === {len(refusals) + 1}")
            refusals.append(await a.text_content("#login-error"))
        await a.fill("#token", CONTROL)
        await a.get_by_role("button", name="Sign in").click()
        await until(a, "window.director.state !== null")
        # load the cue list from its file; the second director opens with ?token=
        await a.click("text=Cue file")
        await a.set_input_files("#cue-file", str(cue_file))
        await a.get_by_role("listitem", name="1 Twinkle").wait_for()
        await b.goto(f"{base}/director?token={CONTROL}")
        await b.get_by_role("listitem", name="2 Vibrato up").wait_for()
        # GO with the space bar
        await a.get_by_role("button", name="GO", exact=True).focus()
        await a.keyboard.press("Space")
        await until(a, "window.director.replies.some((r) => r && r.cue === '1')")
        await until(b, "document.querySelector('li[data-id=\"1\"]').classList.contains('fired')"
                       " && document.querySelector('li[data-id=\"2\"]')"
                       ".getAttribute('aria-current') === 'step'")
        seen_by_b = await b.text_content("#now-cue")
        await until(a, "Number(document.getElementById('meter-peak')"
                       ".getAttribute('aria-valuenow')) > -30")
        meter_db = float(await a.get_attribute("#meter-peak", "aria-valuenow") or "-120")
        await asyncio.sleep(4.0)
        await a.get_by_role("button", name="Panic", exact=True).click()
        await until(a, "window.director.replies.some((r) => r && r.panic)")
        await asyncio.sleep(0.8)
        # three keys of the on-screen keyboard, one after the other
        for name, _ in KEYS:
            await a.get_by_role("button", name=name, exact=True).hover()
            await a.mouse.down()
            await asyncio.sleep(0.7)
            await a.mouse.up()
            await asyncio.sleep(0.25)
        await until(a, "window.director.replies.filter((r) => r && r.pitch !== undefined"
                       " && r.at_sample !== undefined).length >= 6")
        replies = await js(a, "window.director.replies")
        await asyncio.sleep(0.5)
    finally:
        await first.close()
        await second.close()
        engine.cancel()
        summary = await asyncio.gather(engine, return_exceptions=True)
    audio, rate = sf.read(tmp_path / "rec" / "audio.wav", dtype="float32")
    assert rate == SR, summary

    assert "wrong token" in str(refusals[0]) and "viewer token" in str(refusals[1]), refusals
    assert seen_by_b == "1 Twinkle"
    assert meter_db > -30
    go = next(r for r in replies if r.get("cue") == "1")
    start = go["done"][1]["at_sample"]
    panic = next(r for r in replies if r.get("panic"))["at_sample"]
    ons = [r for r in replies if "lyric" in r]
    # the song, in tune, from GO to Panic
    score = load_score("twinkle")
    origin = score.tempo_map.beat_to_sample(0.0)
    sung = [Note(start + n.t_on - origin, start + n.t_off - origin, n.pitch_midi, n.lyric,
                 n.phonemes) for n in score.parts[0].notes]
    sung = [n for n in sung if n.t_off < panic]
    errors = note_cents_errors(audio, sung)
    assert len(errors) >= 3 and np.median(np.abs(errors)) < 40, errors
    # silence from 200 ms after Panic to the first key
    quiet = audio[panic + SR // 5:ons[0]["at_sample"] - SR // 100]
    assert len(quiet) > SR // 4 and np.abs(quiet).max() < 10 ** (-60 / 20)
    # the three keys, sung in order at their pitches
    assert [r["pitch"] for r in ons] == [p for _, p in KEYS]
    for reply in ons:
        at = reply["at_sample"]
        cents = median_cents(audio, at + SR // 5, at + int(0.6 * SR), reply["pitch"])
        assert abs(cents) < 40, (reply, cents)
    assert not [m for m in logs if "error" in m.lower() and "401" not in m
                and "403" not in m], logs
