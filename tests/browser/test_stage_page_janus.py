"""The stage page watching the show through a real Janus (``/?janus=URL&room=N``) in headless
Chromium: it hears the song in tune, gets the pose messages, and its show clock (learnt from
the pose messages' ``"a"``, since Janus rewrote the RTP timestamps) puts the sound where the
show played it.

Everything is real: the engine's voice, the pacer, the shared Opus encoder, the Janus
publisher (aiortc), Debian's ``janus`` with a temporary configuration, Chromium's WebRTC.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk, Note
from singer.ensemble import Ensemble, SingerLine
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from stage.pacer import AudioPacer, PacerConfig
from stage.posing import run_pose_stream
from streams.janus.local import LocalJanus, janus_binary
from streams.janus.publisher import JanusPublisher
from streams.janus.target import parse_target
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.browser.test_stage_page import LOOKAHEAD_CHUNKS, MIN_WINDOWS
from tests.streams.test_web import WEB_ROOT, Show

SR = SAMPLE_RATE_HZ
ROOM = 2468
PHRASE = [("a", 57), ("i", 64), ("o", 60), ("u", 62)]  # (vowel, MIDI pitch)
NOTE_S, GAP_S = 1.3, 0.5
"""Notes long enough for two pages drawing a few frames a second on a slow shared machine to
analyse each one a few times (once per frame drawn)."""
ONSET_LEVEL = 0.02
"""An onset: the first sample above this after at least 50 ms below the page's quiet level
(the page's own rule, ``stage.js``), found the same way in what the engine played."""

pytestmark = pytest.mark.skipif(janus_binary() is None,
                                reason="janus is not installed (Debian package 'janus')")


def played_onsets(audio: np.ndarray, first: int) -> list[int]:
    """Show samples where the engine's own audio (from show sample ``first``) starts sounding
    after a silence, by the page's rule (256-sample blocks, quiet < 0.003 RMS for 50 ms)."""
    onsets, quiet = [], 0
    for start in range(0, len(audio) - 256, 256):
        block = audio[start:start + 256]
        rms = float(np.sqrt(np.mean(block ** 2)))
        if rms < 0.003:
            quiet += 256
            continue
        if rms > 0.01 and quiet > 0.05 * SR:
            loud = np.flatnonzero(np.abs(block) > ONSET_LEVEL)
            onsets.append(first + start + (int(loud[0]) if loud.size else 0))
        if rms > 0.01:
            quiet = 0
    return onsets


def heard_at(playout: list[list[float]], epoch_ms: float) -> float | None:
    """The show sample the page says is heard at wall time ``epoch_ms`` (its playout log:
    [wall ms, show sample heard], drawn frame by frame), from the nearest entry."""
    if not playout:
        return None
    ms, sample = min(playout, key=lambda p: abs(p[0] - epoch_ms))
    if abs(ms - epoch_ms) > 200:
        return None
    return sample + (epoch_ms - ms) * SR / 1000


@pytest.mark.timeout(120)
async def test_stage_page_through_janus_hears_the_song_in_tune_in_step_with_its_poses(
        browser, tmp_path: Path) -> None:  # noqa: ANN001
    from rigs.avatar import build_default_avatar

    avatar = build_default_avatar(tmp_path / "idol.vrm")
    synth = HarmonicNoiseSynth(device="cpu")
    line = SingerLine("lead", get_voice("soprano"), hop=synth.hop)
    ensemble = Ensemble(synth, [line])
    hub = ViewerHub()
    # the direct page (the reference) gets the frames Janus relays (the publisher's 20 ms),
    # not a stage page's 10 ms: the comparison is then of the relay alone, not of frame sizes
    hub.stage_rtp_frame_samples = hub.rtp_encoder.frame_samples
    played: dict[int, np.ndarray] = {}  # chunk start -> what the engine played

    def keep(chunk: AudioChunk) -> None:
        played[chunk.t] = chunk.samples.copy()

    pacer = AudioPacer(ensemble.render_mix_samples, [hub.push_audio, keep],
                       PacerConfig(480, LOOKAHEAD_CHUNKS))
    sent_poses: list[int] = []  # show samples of the pose frames the publisher sent
    with LocalJanus() as janus:
        publisher = JanusPublisher(parse_target(f"janus:{janus.url}?room={ROOM}"),
                                   hub.rtp_encoder)

        def publish_pose(frame) -> None:  # noqa: ANN001
            before = publisher.poses_sent
            publisher.push_pose(frame)
            if publisher.poses_sent > before:
                sent_poses.append(frame.t)

        web = WebServer(hub, Show(), web_root=WEB_ROOT, avatar_path=avatar, port=0)
        await web.start()
        tasks = [asyncio.ensure_future(pacer.run()), asyncio.ensure_future(publisher.run()),
                 asyncio.ensure_future(run_pose_stream(
                     lambda: line, lambda: pacer.playout_sample,
                     [publish_pose, hub.push_pose]))]
        # the page through Janus, and beside it the same page as a direct RTP viewer of the
        # engine (its clock exact: the reference the Janus page is measured against); both
        # draw at most 20 times a second, sharing the two cores with the engine and Janus
        pages = {name: await browser.new_page(viewport={"width": 320, "height": 240})
                 for name in ("janus", "direct")}
        logs: list[str] = []
        for name, page in pages.items():
            page.on("console", lambda msg, name=name: logs.append(f"{name}: {msg.text}"))
        try:
            for _ in range(400):
                if publisher.state == "live":
                    break
                await asyncio.sleep(0.05)
            assert publisher.state == "live", publisher.stats()
            base = f"http://127.0.0.1:{web.port}/?overlay=0&fps=20"
            await pages["janus"].goto(f"{base}&janus={janus.url}&room={ROOM}")
            await pages["direct"].goto(f"{base}&audio=rtp")
            for page in pages.values():
                await page.wait_for_function(
                    "window.livesinger && window.livesinger.rtpMinusShow !== null"
                    " && window.livesinger.playoutLog.length > 20", timeout=40_000)
            # the song starts half a second from now, on the show clock
            start = pacer.playout_sample + SR // 2
            notes, t = [], start
            for vowel, midi in PHRASE:
                notes.append(Note(t, t + int(NOTE_S * SR), midi, vowel, (vowel,)))
                t += int((NOTE_S + GAP_S) * SR)
            line.set_notes(notes, changed_from=start)
            pacer.rewind(start)
            end = notes[-1].t_off + SR // 2
            while pacer.playout_sample < end + SR // 2:
                await asyncio.sleep(0.1)
            lives = {name: await page.evaluate("window.livesinger")
                     for name, page in pages.items()}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for page in pages.values():
                await page.close()
            await web.stop()

    live = lives["janus"]
    assert live["path"] == "rtp" and live["state"] == "connected", (live["state"], logs)
    assert live["audioPackets"] > 100, logs
    assert live["janusClock"] == "arrivals", live["janusClock"]  # RTCRtpScriptTransform
    # the song, heard in the browser through Janus, in tune (the page's own pitch tracker,
    # stamped on the show clock the page learnt from the pose messages)
    pitch = [(p["t"], p["hz"]) for p in live["pitchLog"]]
    unjudged = []
    for note, (vowel, midi) in zip(notes, PHRASE, strict=True):
        body = (note.t_on + 0.3 * SR, note.t_off - 0.2 * SR)
        heard = [hz for s, hz in pitch if body[0] <= s <= body[1] and hz > 0]
        # (the page analyses once per frame it draws: a handful in a note on a slow machine)
        analysed = [s for s, _ in pitch if body[0] <= s <= body[1]]
        if len(analysed) < MIN_WINDOWS:  # the page hardly drew in it (a stall): counted
            unjudged.append((vowel, len(heard), len(analysed)))
        else:
            assert len(heard) >= max(MIN_WINDOWS, 0.75 * len(analysed)), \
                (vowel, len(heard), len(analysed))
        if heard:
            cents = 1200 * np.log2(np.median(heard) / (440 * 2 ** ((midi - 69) / 12)))
            assert abs(cents) < 50, (vowel, cents)
    # a note the page drew too few frames in to judge: one of the four at most (two pages and
    # Janus share the slow machine's cores: once a page drew 2 frames in a 0.8 s body)
    assert len(unjudged) <= 1, unjudged
    # >= 99 % of the pose frames the publisher sent during the song reached the page, and
    # nothing arrived that was not sent
    got = {t for t in live["poseTimes"] if start <= t <= end}
    sent = {t for t in sent_poses if start <= t <= end}
    assert got <= sent and len(got) >= 0.99 * len(sent), (len(got), len(sent))
    # in step: each note's onset, heard at each page's output (its analyser), is placed by
    # that page's show clock; through Janus it lands where the direct page's exact clock puts
    # it, within the direct page's tolerance (-15..+5 ms)
    first = min(played)
    audio = np.zeros(max(played) + 480 - first, dtype=np.float32)
    for k, samples in played.items():  # (chunks the pacer skipped stay silent)
        audio[k - first:k - first + len(samples)] = samples
    onsets = played_onsets(audio, first)
    # each note's onset as played (an xrun's fade inside a note is not a note's onset)
    truth = [min((s for s in onsets if abs(s - n.t_on) < 0.05 * SR), default=None)
             for n in notes]
    assert None not in truth, (truth, onsets)
    lags = {name: placement_ms(page, truth) for name, page in lives.items()}
    # The Janus page's clock is anchored on packet arrivals ahead of NetEq, which holds a
    # whole packet more or less from one moment to the next: it is good to a packet, so the
    # window is widened by one RTP frame (measured on the quiet machine: +8 to +15 ms in 2 of 9
    # runs, inside it otherwise; the bench reports the real figures)
    packet_ms = 1000 * hub.rtp_encoder.frame_samples / SR
    relative = [j - d for j, d in zip(lags["janus"], lags["direct"], strict=True)]
    assert -15.0 - packet_ms <= float(np.median(relative)) <= 5.0 + packet_ms, lags
    # the page's own sync figure (a drawn frame shown minus its pose's sound heard), widened
    # by one drawn frame as on the stage page's test (these pages draw at 20 fps)
    sync = np.array(live["syncErrorsMs"])
    drawn_ms = 1000 / 20
    assert len(sync) > 50 and -15.0 - drawn_ms <= float(np.median(sync)) <= 5.0 + drawn_ms, \
        np.median(sync)


def placement_ms(live: dict, truth: list[int | None]) -> list[float]:  # type: ignore[type-arg]
    """How much later (ms) the page's show clock places each played onset than it was."""
    errors = []
    for onset in truth:
        assert onset is not None
        ms = [e for e in live["onsetsEpochMs"]
              if (p := heard_at(live["playoutLog"], e)) is not None and abs(p - onset) < SR // 4]
        assert ms, (onset, live["onsetsEpochMs"][-10:])
        placed = heard_at(live["playoutLog"], ms[0])
        assert placed is not None
        errors.append((placed - onset) / SR * 1000)
    return errors
