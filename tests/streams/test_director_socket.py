"""The director's console WebSocket on a real Director, pacer and web server: cues in, state
out to every console, cue lists in the ``--cues`` format, rights, and bad input answered
with one-line errors while the show sings on (measured in what was played)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.synth import HarmonicNoiseSynth
from stage.cuelist import dump_cue_list, parse_cue_list
from stage.director import Director
from stage.pacer import AudioPacer, PacerConfig
from stage.song_loader import local_loader
from streams.director_socket import DirectorSocket
from streams.level_meter import LevelMeter
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.measure import f0_track, xrun_budget
from tests.streams.test_web import WEB_ROOT

SR = SAMPLE_RATE_HZ
CONTROL, VIEWER = "control-T0ken", "viewer-T0ken"
CUES = """
cues:
  - id: "1"
    name: Hold A4
    do:
      - note.on: {pitch: 69, syllable: a}
  - id: "2"
    name: Vibrato up
    do:
      - expr: {name: vibrato_depth, value: 1.6}
      - voice: {name: soprano, singer: alto}
"""


class Console:
    """A Director on a running pacer behind the web server's console socket."""

    def __init__(self, tmp_path: Path, **web_options: Any) -> None:
        self.director = Director(HarmonicNoiseSynth(device="cpu"), local_loader())
        self.chunks: list[AudioChunk] = []
        self.meter = LevelMeter()
        self.pacer = AudioPacer(self.director.render, [self.chunks.append, self.meter],
                                PacerConfig(240, 4))
        self.director.attach(self.pacer)
        self.socket = DirectorSocket(self.director, meter=self.meter,
                                     catalog=lambda: {"songs": ["twinkle"]})
        avatar = tmp_path / "a.vrm"
        avatar.write_bytes(b"glTF-test")
        self.web = WebServer(ViewerHub(), self.director, web_root=WEB_ROOT, avatar_path=avatar,
                             port=0, console=self.socket, **web_options)
        self.tasks: list[asyncio.Future[None]] = []

    async def __aenter__(self) -> Console:
        await self.web.start()
        self.tasks = [asyncio.ensure_future(self.pacer.run()),
                      asyncio.ensure_future(self.director.run_prefetch()),
                      asyncio.ensure_future(self.socket.run())]
        await asyncio.sleep(0.3)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.web.stop()
        self.director.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    def audio(self, start: int, end: int) -> np.ndarray:
        out = np.zeros(end - start, dtype=np.float32)
        for c in self.chunks:
            a, b = max(c.t, start), min(c.end, end)
            if a < b:
                out[a - start:b - start] = c.samples[a - c.t:b - c.t]
        return out


async def answer(ws: aiohttp.ClientWebSocketResponse, ident: object = None,
                 timeout_s: float = 10.0) -> dict[str, Any]:
    """The next reply or error (with ``ident``, that one), skipping states."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout_s)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        body = json.loads(msg.data)
        if body["type"] in ("reply", "error") and (ident is None or body["id"] == ident):
            return body


async def state_where(ws: aiohttp.ClientWebSocketResponse, test: Any,
                      timeout_s: float = 10.0) -> dict[str, Any]:
    """The first state pushed that passes ``test``."""
    async def find() -> dict[str, Any]:
        async for msg in ws:
            body = json.loads(msg.data)
            if body["type"] == "state" and test(body):
                return body
        raise AssertionError("the console closed")
    return await asyncio.wait_for(find(), timeout_s)


def median_hz(audio: np.ndarray) -> float:
    _, f0 = f0_track(audio, floor_hz=200, ceiling_hz=900)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if len(voiced) else 0.0


@pytest.mark.timeout(60)
async def test_two_consoles_load_a_cue_list_go_and_see_the_same_state(tmp_path: Path) -> None:
    async with Console(tmp_path) as show, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{show.url}/director/ws") as a, \
                http.ws_connect(f"{show.url}/director/ws") as b:
            hello = json.loads((await a.receive()).data)
            assert hello["type"] == "hello" and hello["songs"] == ["twinkle"]
            assert "vibrato_depth" in hello["expressions"]
            await a.send_json({"id": "load", "command": "cues.load", "args": {"text": CUES}})
            loaded = await answer(a, "load")
            assert loaded["data"] == {"cues": 2, "standby": "1"}, loaded
            await a.send_json({"id": 1, "command": "go"})
            go = await answer(a, 1)
            assert go["type"] == "reply" and go["data"]["cue"] == "1", go
            at = go["data"]["done"][0]["at_sample"]
            # the other console is told: cue 1 fired, cue 2 standing by, the lead singing A4
            seen = await state_where(b, lambda s: s["cues"]["last"] == "1"
                                     and s["show"]["singing"])
            assert seen["cues"]["standby"] == "2"
            assert [e["id"] for e in seen["cues"]["entries"]] == ["1", "2"]
            assert seen["show"]["singing"][0]["pitch"] == 69
            # previous/next/jump are the playhead cue; the file downloads as it was loaded
            await a.send_json({"id": 2, "command": "playhead", "args": {"id": "1"}})
            assert (await answer(a, 2))["data"]["standby"] == "1"
            loud = await state_where(b, lambda s: s["meters"]["peak_dbfs"] > -30)
            async with http.get(f"{show.url}/director/cues.yaml") as res:
                assert res.status == 200
                text = await res.text()
            await asyncio.sleep(0.6)
    again = parse_cue_list(text)
    assert [(e.id, e.name, e.commands) for e in again.entries] == \
        [(e.id, e.name, e.commands) for e in parse_cue_list(CUES).entries]
    assert dump_cue_list(again) == text
    assert loud["meters"]["rms_dbfs"] < loud["meters"]["peak_dbfs"]
    assert abs(1200 * np.log2(median_hz(show.audio(at + SR // 10, at + SR // 2)) / 440)) < 40


@pytest.mark.timeout(60)
async def test_bad_input_gets_one_line_errors_and_the_show_sings_on(tmp_path: Path) -> None:
    async with Console(tmp_path) as show, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{show.url}/director/ws") as ws:
            await ws.send_json({"id": 0, "command": "note.on", "args": {"pitch": 69}})
            start = (await answer(ws, 0))["data"]["at_sample"]
            fuzz: list[tuple[str | bytes, str]] = [
                ("{not json", "not JSON"),
                ("[1, 2]", 'expected {"command"'),
                ('{"command": "sing.louder"}', "unknown command 'sing.louder'"),
                ('{"command": "note.on", "args": {"pitch": 300}}', "pitch (MIDI) must be"),
                ('{"command": "note.on", "args": [1]}', "'args' must be an object"),
                ('{"command": "tempo", "args": {"bpm": NaN}}', "NaN is not a JSON number"),
                ('{"command": "cue.start", "args": {"id": "99"}}', "unknown cue '99'"),
                ('{"command": "cues.load", "args": {"text": "cues: 5"}}', "'cues' list"),
                ("[" * 100_000 + "]" * 100_000, "over the limit of 65536 bytes"),
                ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
                (b"\x00\x01", "binary frames are not taken"),
            ]
            for frame, _ in fuzz:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
                await asyncio.sleep(0.01)
            errors = [await answer(ws) for _ in fuzz]
            # a flood: the console's budget runs out, one error says so, the rest are dropped
            for k in range(400):
                await ws.send_str(json.dumps({"command": "thump", "id": 100 + k}))
            flood: list[dict[str, Any]] = []
            with contextlib.suppress(TimeoutError):
                while True:
                    flood.append(await asyncio.wait_for(answer(ws), 2))
            flood_errors = [b["error"] for b in flood if b["type"] == "error"]
            await asyncio.sleep(1.0)
            await ws.send_json({"id": "after", "command": "thump"})
            after = await answer(ws, "after")
            end = show.pacer.playout_sample
            await ws.send_json({"id": "off", "command": "note.off", "args": {"pitch": 69}})
            await answer(ws, "off")
        # a frame past the hard limit closes that connection only
        async with http.ws_connect(f"{show.url}/director/ws") as big:
            await big.send_str("x" * (2 * 1024 * 1024))
            closed = await asyncio.wait_for(big.receive(), 10)
            while closed.type == aiohttp.WSMsgType.TEXT:
                closed = await asyncio.wait_for(big.receive(), 10)
        async with http.ws_connect(f"{show.url}/director/ws") as fresh:
            await fresh.send_json({"id": 1, "command": "thump"})
            thump = await answer(fresh, 1)
    for (_, expected), error in zip(fuzz, errors, strict=True):
        assert error["type"] == "error" and expected in error["error"], (expected, error)
        assert "\n" not in error["error"] and "Traceback" not in error["error"]
    assert any("too many messages" in e for e in flood_errors), flood_errors
    assert len(flood_errors) == 1 and show.socket.messages_dropped > 0
    assert len(flood) - 1 + show.socket.messages_dropped == 400
    assert after["type"] == "reply" and thump["type"] == "reply"
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                           aiohttp.WSMsgType.CLOSING), closed
    # the held note sang on through all of it, at its pitch
    audio = show.audio(start + SR // 5, end)
    assert len(audio) > SR
    windows = audio[:len(audio) // 4800 * 4800].reshape(-1, 4800)
    assert np.sqrt((windows ** 2).mean(axis=1)).min() > 0.01
    assert abs(1200 * np.log2(median_hz(audio) / 440)) < 40
    # (the slow shared machine, sum(range(3e7)) ~0.9 s, lost 2 % beside the console's
    # Chromium: a benchmark figure there; a show that stutters fails)
    assert show.pacer.xruns <= xrun_budget(show.pacer.chunks_played, percent=4)


@pytest.mark.timeout(60)
async def test_panic_fades_everything_to_silence_within_200_ms(tmp_path: Path) -> None:
    async with Console(tmp_path) as show, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{show.url}/director/ws") as ws:
            await ws.send_json({"id": 1, "command": "note.on", "args": {"pitch": 64}})
            await ws.send_json({"id": 2, "command": "note.on", "args": {"pitch": 67},
                                "singer": "alto"})
            await answer(ws, 2)
            await asyncio.sleep(0.6)
            await ws.send_json({"id": 3, "command": "panic"})
            panic = (await answer(ws, 3))["data"]["at_sample"]
            await asyncio.sleep(0.8)
    before = show.audio(panic - SR // 5, panic)
    after = show.audio(panic + SR // 5, panic + int(0.7 * SR))
    assert np.sqrt((before ** 2).mean()) > 0.02
    assert np.abs(after).max() < 10 ** (-60 / 20), 20 * np.log10(np.abs(after).max())


@pytest.mark.timeout(60)
async def test_only_the_control_token_directs_and_only_from_this_origin(
        tmp_path: Path) -> None:
    async with Console(tmp_path, token=CONTROL, viewer_token=VIEWER) as show:
        ws_url = f"{show.url}/director/ws"
        statuses: dict[str, int] = {}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{show.url}/director") as res:
                statuses["page"] = res.status  # the login field is open to all
            for name, token in (("none", None), ("wrong", "nope"), ("viewer", VIEWER)):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                try:
                    async with http.ws_connect(ws_url, headers=headers):
                        statuses[name] = 101
                except aiohttp.WSServerHandshakeError as err:
                    statuses[name] = err.status
            bearer = {"Authorization": f"Bearer {CONTROL}"}
            try:
                async with http.ws_connect(ws_url, headers={
                        **bearer, "Origin": "http://evil.example"}):
                    statuses["cross-origin"] = 101
            except aiohttp.WSServerHandshakeError as err:
                statuses["cross-origin"] = err.status
            async with http.ws_connect(ws_url, headers={
                    **bearer, "Origin": show.url}) as ws:
                await ws.send_json({"id": 1, "command": "thump"})
                statuses["control"] = 101 if (await answer(ws, 1))["type"] == "reply" else 0
            logins = {}
            for name, token in (("wrong", "nope"), ("viewer", VIEWER), ("control", CONTROL)):
                async with http.post(f"{show.url}/director/login", json={"token": token}) as res:
                    logins[name] = (res.status, (await res.json()).get("error"))
            # the control login left a session: the socket opens without a token now
            async with http.ws_connect(ws_url) as ws:
                await ws.send_json({"id": 1, "command": "thump"})
                statuses["session"] = 101 if (await answer(ws, 1))["type"] == "reply" else 0
    assert statuses == {"page": 200, "none": 401, "wrong": 401, "viewer": 403,
                        "cross-origin": 403, "control": 101, "session": 101}, statuses
    assert logins["wrong"] == (401, "wrong token")
    assert logins["viewer"][0] == 403 and "viewer token" in logins["viewer"][1]
    assert logins["control"] == (200, None)
