"""The engine's web server: WHEP for broadcasters, the stage page's files, bad requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiortc import RTCSessionDescription

from singer.contracts import SAMPLE_RATE_HZ
from stage.pacer import AudioPacer, PacerConfig
from streams.cue import Cue, CueError
from streams.web import MAX_BODY_BYTES, WebServer
from streams.webrtc.viewers import ViewerHub
from tests.streams.test_viewers import Client, dominant_hz

WEB_ROOT = Path(__file__).resolve().parents[2] / "stage" / "web"


class Show:
    """The show side of the HTTP surface: answers cues like the Director does."""

    def __init__(self) -> None:
        self.cues: list[Cue] = []

    async def handle(self, cue: Cue) -> object:
        if cue.kind == "voice" and cue.args["name"] == "nobody":
            raise CueError("unknown voice 'nobody'")
        self.cues.append(cue)
        return {"applied": cue.kind}

    def show_sample_at_unix(self, unix_s: float) -> int:
        return 0

    def status(self) -> dict[str, object]:
        return {"song": None, "cues": len(self.cues)}


@pytest.fixture
async def server(tmp_path: Path):
    avatar = tmp_path / "a.vrm"
    avatar.write_bytes(b"glTF-test")
    hub = ViewerHub(max_viewers=4)
    show = Show()
    web = WebServer(hub, show, web_root=WEB_ROOT, avatar_path=avatar, port=0)
    await web.start()
    web.show = show  # type: ignore[attr-defined]
    yield web
    await web.stop()


def url(web: WebServer, path: str) -> str:
    return f"http://127.0.0.1:{web.port}{path}"


def tone(start: int, n: int) -> np.ndarray:
    t = np.arange(start, start + n) / SAMPLE_RATE_HZ
    return (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.timeout(60)
async def test_a_whep_player_receives_audio_and_can_leave(server: WebServer) -> None:
    client = Client(with_pose=False)  # a broadcaster's player: audio only
    async with aiohttp.ClientSession() as http:
        async with http.head(url(server, "/whep")) as res:
            assert res.status == 204 and "application/sdp" in res.headers["Accept-Post"]
        async with http.post(url(server, "/whep"), data=await client.offer(),
                             headers={"Content-Type": "application/sdp"}) as res:
            assert res.status == 201
            assert res.content_type == "application/sdp"
            location = res.headers["Location"]
            answer = await res.text()
        await client.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        pacer = AudioPacer(tone, [server.hub.push_audio], PacerConfig(480, 2))
        await pacer.run(until_sample=SAMPLE_RATE_HZ)
        await asyncio.sleep(0.2)
        audio = np.concatenate([pcm for _, pcm in client.frames])
        assert len(audio) > SAMPLE_RATE_HZ // 2
        assert abs(dominant_hz(audio[-SAMPLE_RATE_HZ // 4:]) - 440) < 10
        async with http.delete(url(server, location)) as res:
            assert res.status == 200
        assert server.hub.viewers == {}
        async with http.delete(url(server, location)) as res:
            assert res.status == 404 and "no WHEP session" in (await res.json())["error"]
    await client.close()


async def test_bad_requests_get_clear_http_errors(server: WebServer) -> None:
    async with aiohttp.ClientSession() as http:
        cases = [
            ("POST", "/whep", b"v=0 nonsense", {"Content-Type": "application/sdp"}, 400,
             "not an SDP offer"),
            ("POST", "/whep", b"v=0\r\n", {"Content-Type": "text/plain"}, 415, "application/sdp"),
            ("POST", "/whep", b"x" * (MAX_BODY_BYTES + 10), {"Content-Type": "application/sdp"},
             413, "too large"),
            ("POST", "/offer", b"{not json", {"Content-Type": "application/json"}, 400,
             "not JSON"),
            ("POST", "/offer", b'{"type": "answer", "sdp": "v=0"}',
             {"Content-Type": "application/json"}, 400, "expected"),
            ("POST", "/cue", b'{"command": "note.on", "args": {"pitch": 500}}',
             {"Content-Type": "application/json"}, 400, "pitch"),
            ("POST", "/cue", b'{"command": "voice", "args": {"name": "nobody"}}',
             {"Content-Type": "application/json"}, 400, "unknown voice"),
            ("DELETE", "/whep/nope", b"", {}, 404, "no WHEP session"),
        ]
        for method, path, body, headers, status, words in cases:
            async with http.request(method, url(server, path), data=body,
                                    headers=headers) as res:
                assert res.status == status, (path, await res.text())
                assert words in (await res.json())["error"], path
        # the server still works after all that
        async with http.post(url(server, "/cue"),
                             json={"command": "note.on", "args": {"pitch": 60}}) as res:
            assert res.status == 200 and (await res.json())["data"] == {"applied": "note.on"}
        assert [c.kind for c in server.show.cues] == ["note.on"]  # type: ignore[attr-defined]


async def test_static_files_are_served_and_path_traversal_is_refused(server: WebServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(url(server, "/")) as res:
            assert res.status == 200 and "importmap" in await res.text()
        async with http.get(url(server, "/stage.js")) as res:
            assert res.status == 200 and "text/javascript" in res.headers["Content-Type"]
        async with http.get(url(server, "/vendor/three/build/three.module.js")) as res:
            assert res.status == 200
        async with http.get(url(server, "/avatar.vrm")) as res:
            assert res.status == 200 and await res.read() == b"glTF-test"
        for path in ("/vendor/../../../../etc/passwd", "/vendor/%2e%2e/%2e%2e/serve.py",
                     "/..%2F..%2Fserve.py", "/package.json"):
            async with http.get(url(server, path)) as res:
                assert res.status in (403, 404), path
                assert "root:" not in await res.text()


async def test_a_token_is_required_when_set(tmp_path: Path) -> None:
    web = WebServer(ViewerHub(), Show(), web_root=WEB_ROOT, avatar_path=tmp_path / "x.vrm",
                    port=0, token="s3cret")
    await web.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url(web, "/status")) as res:
                assert res.status == 401 and "token" in (await res.json())["error"]
            async with http.get(url(web, "/status"),
                                headers={"Authorization": "Bearer wrong"}) as res:
                assert res.status == 401
            async with http.get(url(web, "/status"),
                                headers={"Authorization": "Bearer s3cret"}) as res:
                assert res.status == 200
    finally:
        await web.stop()
