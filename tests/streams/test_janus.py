"""The show through a real Janus (Debian's ``janus``, a temporary configuration on ports of
its own): heard in tune and in step by real aiortc viewers, fanned out origin → edge, and
surviving Janus being killed and started again mid-song.

Janus and aioice leave loopback out of ICE, so every peer here meets on the machine's other
address (``streams.janus.local.ice_address``); the HTTP API stays on loopback.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.scores.load import load_score
from stage.serve import ServeOptions, serve
from streams.janus.fanout import Edge, fan_out
from streams.janus.local import LocalJanus, janus_binary
from streams.janus.subscriber import JanusViewer
from tests.measure import note_cents_errors, xrun_budget

SR = SAMPLE_RATE_HZ
ROOM = 4321
SONG = "twinkle"

pytestmark = pytest.mark.skipif(janus_binary() is None,
                                reason="janus is not installed (Debian package 'janus'; "
                                       "make setup installs it)")


@pytest.fixture
def janus() -> Iterator[LocalJanus]:
    with LocalJanus() as server:
        yield server


@asynccontextmanager
async def engine(record: Path, *publish: str) -> AsyncIterator[dict[str, Any]]:
    """``serve`` singing the song from its start, publishing into ``publish``; yields the
    running parts (``handles``) plus ``http`` (the web port)."""
    handles: dict[str, Any] = {}
    ready = asyncio.Event()

    def on_ready(ports: dict[str, object]) -> None:
        handles["http"] = ports["http"]
        ready.set()

    opts = ServeOptions(osc_port=None, http_port=0, headless=True, record=record, song=SONG,
                        play_song=True, publish=publish, audible_label="off")
    task = asyncio.ensure_future(serve(opts, on_ready, handles))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield handles
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(condition: Any, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def watch(viewer: JanusViewer, http: aiohttp.ClientSession, seconds: float) -> None:
    await viewer.start(http)
    await asyncio.sleep(seconds)
    await viewer.close()


def heard_notes(viewer: JanusViewer, margin_s: float = 0.3) -> tuple[np.ndarray, list[Note]]:
    """The viewer's audio on the show clock (from show sample 0) and the song's notes it
    heard whole (a margin inside both ends)."""
    first, audio = viewer.show_audio()
    placed = np.concatenate([np.zeros(first, dtype=np.float32), audio])
    lo, hi = first + margin_s * SR, first + len(audio) - margin_s * SR
    notes = [n for n in load_score(SONG).notes if n.t_on >= lo and n.t_off <= hi]
    return placed, notes


def lag_ms(placed: np.ndarray, recording: np.ndarray, start: int, n: int) -> float:
    """How much later (ms) the viewer's placement puts the show's sound than it was played:
    the peak of the cross-correlation over ``n`` samples from ``start``, within ±50 ms."""
    a = placed[start:start + n].astype(np.float64)
    b = recording[start:start + n].astype(np.float64)
    max_lag = int(0.05 * SR)
    scores = [float(np.dot(a[max(0, k):n + min(0, k)], b[max(0, -k):n - max(0, k)]))
              for k in range(-max_lag, max_lag + 1)]
    return (int(np.argmax(scores)) - max_lag) / SR * 1000


def recording(folder: Path) -> tuple[np.ndarray, list[int]]:
    audio, rate = sf.read(folder / "audio.wav", dtype="float32")
    assert rate == SR
    poses = [json.loads(line)["t"]  # (the first line is the AIGC header)
             for line in (folder / "pose.jsonl").read_text().splitlines()[1:] if line.strip()]
    return audio, poses


@pytest.mark.timeout(60)
async def test_through_janus_the_song_is_in_tune_in_step_and_every_pose_arrives(
        janus: LocalJanus, tmp_path: Path, keep_audio: Any) -> None:
    target = f"janus:{janus.url}?room={ROOM}&secret=s3cret"
    async with engine(tmp_path, target) as show, aiohttp.ClientSession() as http:
        publisher = show["publishers"][0]
        await until(lambda: publisher.state == "live", 20, "the publisher to go live")
        viewer = JanusViewer(janus.url, room=ROOM)
        await watch(viewer, http, 5.5)
        async with http.get(f"http://127.0.0.1:{show['http']}/status") as res:
            status = await res.json()
        pacer = show["pacer"]
        assert pacer.xruns <= xrun_budget(pacer.chunks_played)
    assert status["publish"][0]["state"] == "live"
    assert status["publish"][0]["target"] == f"janus:{janus.url}?room={ROOM}"  # no secret
    placed, notes = heard_notes(viewer)
    keep_audio("through_janus", placed)
    played, pose_ts = recording(tmp_path)
    # the song, heard through Janus and placed on the show clock by the pose messages' "a"
    assert len(notes) >= 4
    errors = note_cents_errors(placed, notes)
    assert max(abs(e) for e in errors) < 30, errors
    # in step: the viewer's show clock matches the clock the show was played on
    first = next(i for i, x in enumerate(np.abs(placed) > 0.01) if x)
    lag = lag_ms(placed, played, first + SR // 2, 2 * SR)
    assert -15.0 <= lag <= 5.0, f"viewer's show clock is {lag:.1f} ms off"
    # >= 99 % of the pose frames the show sent while the viewer watched arrived, and
    # nothing arrived that the show did not send
    got = Counter(p["t"] for p in viewer.poses())
    sent = Counter(t for t in pose_ts if min(got) <= t <= max(got))
    assert not got - sent
    assert got.total() >= 0.99 * sent.total(), (got.total(), sent.total())


@pytest.mark.timeout(60)
async def test_origin_forwards_to_an_edge_and_the_song_is_heard_at_the_edge(
        janus: LocalJanus, tmp_path: Path, keep_audio: Any) -> None:
    with LocalJanus() as edge_janus:
        low = edge_janus.rtp_ports[0]
        edge = Edge(edge_janus.url, "127.0.0.1", mountpoint=9, audio_port=low + 150,
                    data_port=low + 152)
        async with engine(tmp_path, f"janus:{janus.url}?room={ROOM}") as show, \
                aiohttp.ClientSession() as http:
            publisher = show["publishers"][0]
            await until(lambda: publisher.state == "live", 20, "the publisher to go live")
            await fan_out(janus.url, ROOM, edge)
            viewer = JanusViewer(edge_janus.url, mountpoint=9)
            await watch(viewer, http, 4.0)
    placed, notes = heard_notes(viewer)
    keep_audio("at_the_edge", placed)
    assert len(notes) >= 3
    errors = note_cents_errors(placed, notes)
    assert max(abs(e) for e in errors) < 30, errors
    assert len(viewer.poses()) > 100  # the pose crossed origin -> edge too (60 per second)


@pytest.mark.timeout(75)
async def test_janus_killed_mid_song_the_show_goes_on_and_viewers_hear_it_again(
        janus: LocalJanus, tmp_path: Path, keep_audio: Any) -> None:
    from tests.streams.test_viewers import Client  # a direct viewer of the engine

    async with engine(tmp_path, f"janus:{janus.url}?room={ROOM}") as show, \
            aiohttp.ClientSession() as http:
        publisher, hub, pacer = show["publishers"][0], show["hub"], show["pacer"]
        direct = Client(with_pose=False)
        _viewer, answer = await hub.answer(await direct.offer())
        from aiortc import RTCSessionDescription
        await direct.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await until(lambda: publisher.state == "live", 20, "the publisher to go live")
        before = JanusViewer(janus.url, room=ROOM)
        await watch(before, http, 2.0)
        # killed (as a crash) and started again off the event loop: starting janus waits
        # for its HTTP API, which would otherwise stall the show's clock it measures
        await asyncio.to_thread(janus.stop)
        killed_at = pacer.playout_sample
        direct_frames = len(direct.frames)
        await until(lambda: publisher.state == "down", 15, "the publisher to notice")
        async with http.get(f"http://127.0.0.1:{show['http']}/status") as res:
            down = (await res.json())["publish"][0]
        await asyncio.sleep(1.5)
        await asyncio.to_thread(janus.start)
        await until(lambda: publisher.state == "live" and publisher.publishes == 2, 20,
                    "the publisher to publish again")
        restarted_at = pacer.playout_sample
        after = JanusViewer(janus.url, room=ROOM)
        await watch(after, http, 3.5)
        direct_during = len(direct.frames) - direct_frames
        await direct.close()
        assert pacer.xruns <= xrun_budget(pacer.chunks_played)
    assert down["state"] == "down" and down["last_error"]
    # the show never stopped: the direct viewer heard every 20 ms frame meanwhile, and the
    # recording is the song, in tune, across the outage
    outage_s = (restarted_at - killed_at) / SR
    assert direct_during >= 0.9 * outage_s * 50, (direct_during, outage_s)
    played, _ = recording(tmp_path)
    outage = [n for n in load_score(SONG).notes if killed_at <= n.t_on and n.t_off <= restarted_at]
    assert outage and max(abs(e) for e in note_cents_errors(played, outage)) < 30
    # a viewer who comes back through the restarted Janus hears the song again, in tune
    placed, notes = heard_notes(after)
    keep_audio("after_restart", placed)
    assert len(notes) >= 2
    errors = note_cents_errors(placed, notes)
    assert max(abs(e) for e in errors) < 30, errors
