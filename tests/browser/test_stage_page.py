"""The stage page in headless Chromium: it hears the idol, moves her mouth in time, draws her.

Everything is real: the engine's voice, the pacer, aiortc, the web server, Chromium's WebRTC,
WebCodecs and WebGL (SwiftShader), three.js and three-vrm from npm, the default VRM avatar.
Run on both ways the page takes the voice: the low-latency data channel (the default where
WebCodecs exists) and the RTP track it falls back to when WebCodecs is switched off.
"""

from __future__ import annotations

import asyncio
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import Ensemble, SingerLine
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from stage.pacer import AudioPacer, PacerConfig
from stage.posing import run_pose_stream
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.measure import StallWatch, xrun_budget
from tests.streams.test_web import WEB_ROOT, Show

SR = SAMPLE_RATE_HZ
# (vowel, MIDI pitch, expected dominant mouth expression)
PHRASE = [("a", 57, "aa"), ("i", 64, "ih"), ("o", 60, "oh"), ("u", 62, "ou")]
NOTE_S, GAP_S = 0.9, 0.5
# Chromium draws with software GL on the same two cores as the engine here, and the test's
# own aiortc, web server and Playwright share the engine's process: the engine renders 200 ms
# ahead (its default is 20 ms), as a show laptop running all that would be set. (On a slow
# shared machine, sum(range(3e7)) ~0.9 s, renders fell 100-190 ms behind at 80 ms ahead.)
LOOKAHEAD_CHUNKS = 20
MIN_WINDOWS = 3
"""Pitch windows the page must have analysed in a note's body to judge it (a median)."""


async def wait_for(page, expression: str, timeout_s: float = 20.0) -> None:  # noqa: ANN001
    await page.wait_for_function(expression, timeout=timeout_s * 1000)


NO_WEBCODECS = "delete window.AudioDecoder; delete window.EncodedAudioChunk;"


@dataclass
class Sung:
    """What one song on the stage page left behind: the page's state, the engine's side."""

    live: dict[str, Any]
    viewers: list[dict[str, object]]
    notes: list[Note]
    sent: dict[int, float]
    song_xruns: int
    excused: int
    stalls: StallWatch
    before: dict[str, float]
    start: int
    end: int
    shot: bytes
    corners: list[list[float]]
    logs: list[str]
    rtp_frames_encoded: int


PAGE_STALL_WATCH = """() => { window.__pageStallsMs = []; let last = performance.now();
    setInterval(() => { const now = performance.now();
        if (now - last > 30) window.__pageStallsMs.push(now - last - 10); last = now; }, 10); }"""
"""Records each time the page's main thread was not run for over 20 ms beyond its 10 ms tick."""


async def sing(browser, tmp_path: Path, path: str, repeats: int = 1) -> Sung:  # noqa: ANN001
    """Sing PHRASE ``repeats`` times to a stage page taking the voice on ``path``."""
    from rigs.avatar import build_default_avatar

    avatar = build_default_avatar(tmp_path / "idol.vrm")
    synth = HarmonicNoiseSynth(device="cpu")
    line = SingerLine("lead", get_voice("soprano"), hop=synth.hop)
    ensemble = Ensemble(synth, [line])
    hub = ViewerHub()
    sent: dict[int, float] = {}  # chunk start -> RMS of what the engine sent (xruns too)
    pacer = AudioPacer(ensemble.render_mix_samples,
                       [hub.push_audio,
                        lambda c: sent.__setitem__(c.t, float(np.sqrt(np.mean(c.samples ** 2))))],
                       PacerConfig(480, LOOKAHEAD_CHUNKS))
    web = WebServer(hub, Show(), web_root=WEB_ROOT, avatar_path=avatar, port=0)
    await web.start()
    play = asyncio.ensure_future(pacer.run())
    poses = asyncio.ensure_future(run_pose_stream(lambda: line, lambda: pacer.playout_sample,
                                                  [hub.push_pose]))
    page = await browser.new_page(viewport={"width": 480, "height": 360})
    if path == "rtp":
        await page.add_init_script(NO_WEBCODECS)  # WebCodecs switched off: the fallback
    logs: list[str] = []
    page.on("console", lambda msg: logs.append(msg.text))
    try:
        await page.goto(f"http://127.0.0.1:{web.port}/?overlay=1")
        clock_ready = ("window.livesinger && window.livesinger.rtpMinusShow !== null"
                       if path == "rtp" else "window.livesinger && window.livesinger.bufferMs")
        await wait_for(page, clock_ready)
        await wait_for(page, "window.livesinger.humanBones.length >= 15")
        # Chromium starting up and compiling the page shares these two cores with the engine;
        # what must be clean is the song itself
        xruns_before_song = pacer.xruns
        await page.evaluate(PAGE_STALL_WATCH)
        before = await page.evaluate("({u: window.livesinger.underruns, "
                                     "c: window.livesinger.concealedMs, "
                                     "l: window.livesinger.voiceLost, "
                                     "g: window.livesinger.outputGlitches, "
                                     "t: window.livesinger.bufferTargetMs || 0})")
        # the song starts half a second from now, on the show clock
        start = pacer.playout_sample + SR // 2
        notes, t = [], start
        for _ in range(repeats):
            for vowel, midi, _ in PHRASE:
                notes.append(Note(t, t + int(NOTE_S * SR), midi, vowel, (vowel,)))
                t += int((NOTE_S + GAP_S) * SR)
        line.set_notes(notes, changed_from=start)
        pacer.rewind(start)
        end = notes[-1].t_off + SR // 2
        with StallWatch() as stalls:
            while pacer.playout_sample < end + SR // 2:
                await asyncio.sleep(0.1)
        song_xruns = pacer.xruns - xruns_before_song  # (not the reading back that follows)
        await asyncio.sleep(1.0)  # the page measures each vowel once its frames are shown
        live = await page.evaluate("window.livesinger")
        live["pageStallsMs"] = await page.evaluate("window.__pageStallsMs")
        # what the same browser gives a context asking for 'interactive' (the former default)
        live["interactiveOutputMs"] = await page.evaluate("""async () => {
            const c = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
            await c.resume(); await new Promise((ok) => setTimeout(ok, 300));
            const ms = 1000 * (c.baseLatency + c.outputLatency); await c.close(); return ms; }""")
        viewers = [v.stats() for v in hub.viewers.values()]
        shot = await page.screenshot()
        # the AI-generated label and the credits sit in the corners: not part of the avatar
        corners = await page.evaluate("""() => ['aigc-label', 'aigc-credits'].map(id => {
            const r = document.getElementById(id)?.getBoundingClientRect();
            return r ? [r.left, r.top, r.right, r.bottom] : null; })
            .filter(r => r !== null)""")
    finally:
        poses.cancel()
        play.cancel()
        await asyncio.gather(play, poses, return_exceptions=True)
        await page.close()
        await web.stop()
    # chunks due while the machine did not run this process at all are the machine's doing
    excused = int(stalls.stalled_s * SR / 480) + 1
    return Sung(live, viewers, notes, sent, song_xruns, excused, stalls,
                before, start, end, shot, corners, logs, hub.rtp_encoder.frames_encoded)


def delivery_stalls(live: dict[str, Any], sung: Sung, holds_s: float) -> int:
    """How many times, during the song, the next voice frame reached the page more than
    ``holds_s`` later than its place in the stream (from the page's arrival trace: its last
    ~15 s)."""
    rows = [r for r in live["trace"]["arrivals"] if sung.start <= r[2] <= sung.end + SR // 2]
    return sum((b[0] - a[0]) / 1000 - (b[1] - a[1]) / SR > holds_s
               for a, b in itertools.pairwise(rows))


def assert_no_gap_on_the_voice_channel(sung: Sung) -> dict[str, float]:
    """No frame lost and no rebuffer during the song, except one per cause that is not the
    page's (measured: an engine xrun, or the machine not running the engine for longer than
    the page's buffer holds)."""
    live = sung.live
    song = {"lost": live["voiceLost"] - sung.before["l"],
            "underruns": live["underruns"] - sung.before["u"],
            "concealed_ms": live["concealedMs"] - sung.before["c"],
            "buffer_ms": live["bufferMs"], "target_ms": live["bufferTargetMs"],
            # the audio render thread late past its (now small) output buffer: measured and
            # shown; on these shared cores it is the machine's (bench: output_glitches)
            "output_glitches": live["outputGlitches"] - sung.before["g"],
            "skipped_ms": live["skippedMs"]}
    # (the rebuffers found in 2026-12: each followed a stall in sending, the engine's event
    # loop or the machine, longer than the buffer: the buffer holds a 95 % quantile of the
    # jitter plus the last stall that emptied it, decaying; docs/web.md)
    # (the buffer's target grows after a stall: the smaller of the song's first and last)
    holds_s = max(0.0, min(live["bufferTargetMs"] or 0, sung.before["t"]) / 1000 - 0.01)
    starved = sung.stalls.longer_than(holds_s)
    # the page's own main thread not run for longer than its buffer holds (it feeds the
    # worklet): the machine's doing too, measured in the page
    page_starved = sum(ms / 1000 > holds_s for ms in live["pageStallsMs"])
    # a voice frame that reached the page later than the buffer held, measured at the page
    # (the engine's hand-out, the network or the browser's delivery): the buffer is sized on a
    # 95 % quantile of that lateness, so a rarer one empties it by design (docs/web.md)
    late_arrivals = delivery_stalls(live, sung, holds_s)
    assert song["lost"] == 0, song
    assert song["underruns"] <= sung.song_xruns + starved + page_starved + late_arrivals, \
        (song, sung.song_xruns, starved, live["pageStallsMs"], late_arrivals)
    assert song["concealed_ms"] < 20 + 5 * sung.excused and live["decodeErrors"] == 0, song
    return song


def assert_each_note_in_tune_with_its_mouth(sung: Sung) -> None:
    """Every note heard by the page's pitch tracker in tune, with no window missed where the
    engine sent voice, and the mouth in that vowel's shape (closed between notes)."""
    live, notes, sent = sung.live, sung.notes, sung.sent
    pitch = [(p["t"], p["hz"]) for p in live["pitchLog"]]
    mouth = live["mouthLog"]

    def engine_sent_voice(s: float) -> bool:
        """Whether the engine sent voice for the whole analysed window stamped at ``s``."""
        return all(sent.get(c, 0.0) > 0.02 for c in range(int(s) // 480 * 480 - 1440,
                                                           int(s) + 1440, 480))

    voiced_windows = unheard_windows = 0
    unjudged: list[tuple[int, str, int]] = []
    for note, (vowel, midi, shape) in zip(notes, PHRASE * (len(notes) // len(PHRASE)),
                                          strict=True):
        body = (note.t_on + 0.3 * SR, note.t_off - 0.2 * SR)
        heard = [hz for s, hz in pitch if body[0] <= s <= body[1] and hz > 0]
        # a window the engine sent an xrun's silence into is the pacer's (counted, within the
        # budget above that the machine's stalls excuse: measured, the chunks skipped here
        # are due while this process gets a few % of a core), not a window the page missed
        lost_to_xruns = [s for s, hz in pitch if body[0] <= s <= body[1] and hz <= 0
                         and not engine_sent_voice(s)]
        # the page analyses once per frame it draws: software GL on a slow shared machine
        # draws ~12 a second, so a note's 0.4 s body is a handful of windows
        analysed = [s for s, _ in pitch if body[0] <= s <= body[1]]
        if len(analysed) < MIN_WINDOWS:  # the page hardly drew in it: counted, judged below
            unjudged.append((note.t_on, vowel, len(analysed)))
            continue
        # (enough heard to judge its pitch; a window the page did not hear while the engine
        # sent voice is judged over the song below, with the page's rebuffers)
        assert len(heard) + len(lost_to_xruns) >= MIN_WINDOWS, \
            (vowel, len(heard), len(lost_to_xruns), len(analysed))
        # no audible gap: wherever the engine sent voice for the whole analysed window (an
        # engine xrun on these loaded cores is the pacer's to count), the page heard a pitch
        # (the windows an engine xrun touched are the pacer's, budgeted above: with a few
        # windows a note, one xrun can leave fewer than MIN_WINDOWS whole; these are judged
        # together over the song below)
        voiced = [hz for s, hz in pitch if body[0] <= s <= body[1] and engine_sent_voice(s)]
        voiced_windows += len(voiced)
        unheard_windows += sum(hz <= 0 for hz in voiced)
        if len(heard) >= MIN_WINDOWS:  # (else the note was the engine's xruns, asserted just above)
            cents = 1200 * np.log2(np.median(heard) / (440 * 2 ** ((midi - 69) / 12)))
            assert abs(cents) < 50, (vowel, cents)  # heard in the browser, in tune
        shapes = [m for m in mouth if body[0] <= m["t"] <= body[1]]
        assert shapes, vowel
        dominant = max(("aa", "ih", "ou", "ee", "oh"),
                       key=lambda k: np.mean([m[k] for m in shapes]))
        assert dominant == shape, (vowel, dominant)
        assert np.mean([m[shape] for m in shapes]) > 0.4
        gap = [m for m in mouth if note.t_off + 0.15 * SR <= m["t"] <= note.t_off + 0.35 * SR]
        if not gap:  # the page drew nothing in those 0.2 s (a page stall): counted below
            unjudged.append((note.t_off, "(closed)", 0))
            continue
        assert max(max(m[k] for k in ("aa", "ih", "ou", "ee", "oh")) for m in gap) < 0.15
    # a note (or the closed mouth after it) the page drew too few frames in to judge: rare (a
    # page stall: one of four notes once on the slow shared machine), never most of them
    assert len(unjudged) <= max(1, len(notes) // 10), (unjudged, live["pageStallsMs"])
    # a page starved of CPU may miss a window (80 % heard), and each rebuffer the page had
    # (bounded by their causes in assert_no_gap_on_the_voice_channel) silences the windows
    # analysed while its buffer refills: about its target at ~30 analysed frames a second
    rebuffers = max(0, int(live["underruns"] - sung.before["u"]))
    per_rebuffer = int(np.ceil((live.get("bufferTargetMs") or 0) / 33)) + 2
    assert unheard_windows <= 0.2 * voiced_windows + rebuffers * per_rebuffer, \
        (unheard_windows, voiced_windows, rebuffers)


def drawn_frame_ms(live: dict[str, Any]) -> float:
    """The page's median time between drawn frames over its last frames (its pitch windows
    are taken once per drawn frame, stamped on the show clock), and at least a 30 fps frame."""
    stamps = np.array([p["t"] for p in live["pitchLog"]][-300:], dtype=float)
    steps = np.diff(stamps)
    steps = steps[steps > 0]
    measured = 1000 * float(np.median(steps)) / SR if len(steps) else 0.0
    return max(1000 / 30, measured)


def assert_vowel_sync(live: dict[str, Any], vowels: int) -> None:
    """The page measured sync end to end (drawn mouth against heard sound) for most vowels,
    and its median is within EBU R37's window (+5 ms sound first, -15 ms picture first),
    widened by one drawn frame on these loaded cores (software GL draws 30 fps at best here,
    about 12 on the slow shared machine: the bench reports the real figure)."""
    errors = live["vowelSyncMs"]
    assert len(errors) >= vowels // 2, (len(errors), vowels)
    frame_ms = drawn_frame_ms(live)
    assert -15 - frame_ms <= np.median(errors) <= 5 + frame_ms, (errors, frame_ms)
    assert live["syncErrMsP50"] is not None and live["syncErrMsP99"] is not None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", ["datachannel", "rtp"])
async def test_stage_page_hears_the_voice_moves_the_mouth_and_draws_the_avatar(
        browser, tmp_path: Path, path: str) -> None:  # noqa: ANN001
    sung = await sing(browser, tmp_path, path)
    live, viewers, notes = sung.live, sung.viewers, sung.notes
    logs, shot, corners, excused = sung.logs, sung.shot, sung.corners, sung.excused
    # Chromium's software GL shares the two cores: allow a rare late chunk, never a stutter
    song_xruns = sung.song_xruns
    assert song_xruns <= xrun_budget((sung.end - sung.start) // 480) + excused, \
        sung.stalls.stalled_s
    assert live["audioPackets"] > 100, logs
    # the page took the voice the way it should have, and the engine sent it that way
    assert live["path"] == path and [v["path"] for v in viewers] == [path], (live["path"], logs)
    # the page asked for the smallest output latency the browser offers, and got less than
    # an 'interactive' context (here 10.7 against 42 ms)
    assert live["latencyHint"] == 0, live["latencyHint"]
    assert live["outputLatencyMs"] < live["interactiveOutputMs"], \
        (live["outputLatencyMs"], live["interactiveOutputMs"])
    if path == "datachannel":
        assert_no_gap_on_the_voice_channel(sung)
        assert sung.rtp_frames_encoded == 0  # nothing encoded for a track nobody has
    assert_each_note_in_tune_with_its_mouth(sung)
    # sync is measured against what was heard and when the frame was shown (timing is the
    # bench's: here only that it was measured, and it is not off by a whole beat)
    errors = np.abs(live["syncErrorsMs"])
    assert len(errors) > 50 and np.median(errors) < 100, np.median(errors)
    assert_vowel_sync(live, len(notes))

    # the avatar is on screen: her skin and dress (red over blue, unlike the blue stage and
    # floor) fill the middle of the picture and nothing of her is at the far sides
    from PIL import Image

    (tmp_path / "stage.png").write_bytes(shot)
    image = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    warm = image[..., 0] > image[..., 2] + 30
    for left, top, right, bottom in corners:  # screenshot pixels are CSS pixels here
        warm[max(0, int(top) - 2):int(bottom) + 3, max(0, int(left) - 2):int(right) + 3] = False
    h, w = warm.shape
    centre = warm[int(h * 0.15):int(h * 0.85), int(w * 0.4):int(w * 0.6)]
    sides = np.concatenate([warm[:, :int(w * 0.15)], warm[:, int(w * 0.85):]], axis=1)
    assert centre.mean() > 0.15, (centre.mean(), tmp_path / "stage.png")
    assert sides.mean() < 0.01, (sides.mean(), tmp_path / "stage.png")


@pytest.mark.timeout(300)
async def test_the_low_latency_path_sings_a_minute_in_tune_without_a_gap(
        browser, tmp_path: Path) -> None:  # noqa: ANN001
    """A minute on the data channel: each note in tune (the page's own pitch tracker), no
    frame lost, no rebuffer but for a measured cause that is not the page's."""
    repeats = 11  # 11 x 4 notes x 1.4 s: 61.6 s
    sung = await sing(browser, tmp_path, "datachannel", repeats=repeats)
    assert sung.live["path"] == "datachannel" and sung.viewers[0]["path"] == "datachannel"
    assert sung.song_xruns <= xrun_budget((sung.end - sung.start) // 480) + sung.excused, \
        sung.stalls.stalled_s
    assert_no_gap_on_the_voice_channel(sung)
    assert_each_note_in_tune_with_its_mouth(sung)
    assert_vowel_sync(sung.live, len(sung.notes))
