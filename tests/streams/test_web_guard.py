"""The web server's edge, against a real Director on a running pacer: fuzzed bodies get a
one-line 4xx (never a 5xx, never a logged traceback), other sites cannot drive the show,
viewer and control rights are apart, oversized and repeated bad requests are refused cheaply.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from streams.web import MAX_BODY_BYTES, WebServer
from streams.web_guard import SESSION_COOKIE
from streams.webrtc.performer import PerformerDesk
from streams.webrtc.viewers import ViewerHub
from tests.stage.test_director import Show as DirectorShow
from tests.streams.test_viewers import Client
from tests.streams.test_web import WEB_ROOT, Show

FUZZ_SEED = 16
FUZZ_REQUESTS = 300
CONTROL, VIEWER = "control-T0ken", "viewer-T0ken"


async def _ignore_track(_track: object) -> None:
    return None


@pytest.fixture
async def director() -> AsyncIterator[DirectorShow]:
    async with DirectorShow() as show:
        yield show


async def serve(tmp_path: Path, handler: object, **options: object) -> WebServer:
    avatar = tmp_path / "a.vrm"
    avatar.write_bytes(b"glTF-test")
    web = WebServer(ViewerHub(max_viewers=8), handler, web_root=WEB_ROOT,  # type: ignore[arg-type]
                    avatar_path=avatar, port=0, **options)  # type: ignore[arg-type]
    await web.start()
    return web


def url(web: WebServer, path: str) -> str:
    return f"http://127.0.0.1:{web.port}{path}"


# -- fuzz --------------------------------------------------------------------------------

CUES = [{"command": "note.on", "args": {"pitch": 60, "syllable": "la"}},
        {"command": "note.off", "args": {"pitch": 60}},
        {"command": "tempo", "args": {"bpm": 120}},
        {"command": "expr", "args": {"name": "vibrato_depth", "value": 1.0}},
        {"command": "lyric", "args": {"text": "la la"}},
        {"command": "voice", "args": {"name": "soprano"}},
        {"command": "song.stop"},
        {"command": "song.load", "args": {"song": "no such song"}}]
ODD_JSON = [b"[]", b"1", b'"x"', b"null", b"{}", b'{"command": 5}',
            b'{"command": "note.on", "args": [1]}',
            b'{"command": "note.on", "args": {"pitch": "60"}}',
            b'{"command": "note.on", "args": {"pitch": NaN}}',
            b'{"command": "note.on", "args": {"pitch": Infinity}}',
            b'{"command": "note.on", "args": {"pitch": 1e999}}',
            b'{"command": "tempo", "args": {"bpm": ' + b"9" * 5000 + b"}}",
            b'{"command": "lyric", "args": {"text": "\\ud800\\u0000"}}',
            b'{"command": "lyric", "args": {"text": "\xcd\xa4"}}',
            b'{"command": "song.load", "args": {"song": "\\u0000"}}',
            b'{"command": "voice", "singer": {"x": 1}, "args": {"name": "soprano"}}',
            b'{"command": "note.on", "singer": "' + b"x" * 200 + b'", "args": {"pitch": 60}}',
            b'{"type": "offer", "sdp": 5}', b'{"type": "offer", "sdp": "v=0\\nm=audio x"}',
            b'{"type": "offer", "sdp": "v=0\\r\\nm=audio 9 UDP/TLS/RTP/SAVPF 0\\r\\n"}']
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe4\xba", b"\xcd\xa4\xff", b"\x80\x80"]
TYPES = [None, "text/plain", "application/json", "application/sdp",
         "application/json; charset=latin-1", "application/json; charset=bogus",
         "application/sdp; charset=utf-16", "multipart/form-data; boundary=x",
         "application/x-www-form-urlencoded"]


def mutate(rng: random.Random, base: bytes) -> bytes:
    """One mutation of a valid body: bytes flipped, bad UTF-8, cut, noise, odd JSON, deep
    nesting, too big, or left as it is."""
    kind = rng.randrange(9)
    if not base and kind in (1, 3):
        kind = 2
    if kind == 1:
        body = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(0x80, 0x100)
        return bytes(body)
    if kind == 2:
        at = rng.randrange(len(base) + 1)
        return base[:at] + rng.choice(BAD_UTF8) + base[at:]
    if kind == 3:
        return base[:rng.randrange(len(base))]
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == 5:
        return rng.choice(ODD_JSON)
    if kind == 6:
        return rng.choice([b"[", b'{"a":']) * rng.choice([100, 2000, 12000])
    if kind == 7:
        return base + b" " * MAX_BODY_BYTES
    return base


@pytest.mark.timeout(240)
async def test_fuzzed_bodies_get_a_one_line_4xx_and_the_server_serves_on(
        tmp_path: Path, director: DirectorShow, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    client = Client(with_pose=False)
    sdp = (await client.offer()).encode()
    await client.close()
    desk = PerformerDesk(_ignore_track)
    web = await serve(tmp_path, director.director, performer=desk, refusals_per_s=None)
    cues = ("POST", "/cue", "application/json", [json.dumps(c).encode() for c in CUES])
    whep = ("POST", "/whep", "application/sdp", [sdp])
    routes = [cues, cues, cues, whep, whep,
              ("POST", "/offer", "application/json",
               [json.dumps({"type": "offer", "sdp": sdp.decode()}).encode()]),
              ("POST", "/perform/offer", "application/json",
               [json.dumps({"type": "offer", "sdp": sdp.decode()}).encode()]),
              ("GET", "/status?token=%ff%fe", None, [b""]),
              ("DELETE", "/whep/%ff%c3", None, [b""]),
              ("PATCH", "/whep/x%00y", "application/sdp", [sdp]),
              ("DELETE", "/perform/%ed%a0%80", None, [b""]),
              ("GET", "/%ff.js", None, [b""])]
    rng = random.Random(FUZZ_SEED)
    statuses: list[int] = []
    problems: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(FUZZ_REQUESTS):
                method, path, wanted, bases = rng.choice(routes)
                body = mutate(rng, rng.choice(bases))
                ctype = wanted if rng.random() < 0.6 else rng.choice(TYPES)
                headers = {} if ctype is None else {"Content-Type": ctype}
                async with http.request(method, url(web, path), data=body, headers=headers,
                                        skip_auto_headers=["Content-Type"]) as res:
                    statuses.append(res.status)
                    raw = await res.read()
                    if res.status >= 500:
                        problems.append(f"{method} {path} {ctype} {body[:80]!r}: "
                                        f"{res.status} {raw[:200]!r}")
                    elif res.status >= 400:
                        error = json.loads(raw)["error"]
                        assert "\n" not in error and 0 < len(error) <= 300, error
                    elif path == "/whep":
                        await http.delete(url(web, res.headers["Location"]))
                    elif path == "/offer":
                        await http.delete(url(web, f"/whep/{json.loads(raw)['id']}"))
                    elif path == "/perform/offer":
                        await http.delete(url(web, f"/perform/{json.loads(raw)['id']}"))
            # the server still serves: a cue is sung, a broadcaster is answered
            async with http.post(url(web, "/cue"), json=CUES[0]) as res:
                assert res.status == 200, await res.text()
            async with http.post(url(web, "/whep"), data=sdp,
                                 headers={"Content-Type": "application/sdp"}) as res:
                assert res.status == 201
                await http.delete(url(web, res.headers["Location"]))
    finally:
        await web.stop()
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"{FUZZ_REQUESTS} fuzzed requests: {counts}")
    assert not problems, "\n".join(problems)
    assert sum(400 <= s < 500 for s in statuses) > FUZZ_REQUESTS // 2, counts
    assert sum(s < 300 for s in statuses) > 10, counts  # the unmutated ones went through
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks


# -- other sites -------------------------------------------------------------------------


@pytest.mark.timeout(120)
async def test_another_site_cannot_drive_a_loopback_show(
        tmp_path: Path, director: DirectorShow) -> None:
    web = await serve(tmp_path, director.director)
    load = json.dumps({"command": "song.load", "args": {"song": "jasmine"}})
    me = f"http://127.0.0.1:{web.port}"
    try:
        async with aiohttp.ClientSession() as http:
            refused = [
                # what a page on evil.example can send without a CORS preflight
                ({"Content-Type": "text/plain", "Origin": "https://evil.example"}, 403,
                 "cross-origin"),
                ({"Content-Type": "text/plain"}, 415, "application/json"),
                ({"Content-Type": "application/json", "Origin": "https://evil.example"}, 403,
                 "cross-origin"),
                ({"Content-Type": "application/json", "Origin": "null"}, 403, "cross-origin"),
                ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403,
                 "cross-site"),
                # DNS rebinding: evil.example now points at 127.0.0.1, so it is "same origin"
                ({"Content-Type": "application/json", "Host": f"evil.example:{web.port}",
                  "Origin": f"http://evil.example:{web.port}"}, 403, "DNS rebinding"),
            ]
            for headers, status, words in refused:
                async with http.post(url(web, "/cue"), data=load, headers=headers) as res:
                    assert res.status == status, (headers, await res.text())
                    assert words in (await res.json())["error"], headers
            async with http.get(url(web, "/status"),
                                headers={"Host": f"evil.example:{web.port}"}) as res:
                assert res.status == 403  # nor can it read the show
            assert director.director.song is None and director.director.cues_applied == 0
            # the same request from the show's own page is taken
            async with http.post(url(web, "/cue"), data=load, headers={
                    "Content-Type": "application/json", "Origin": me,
                    "Sec-Fetch-Site": "same-origin"}) as res:
                assert res.status == 200, await res.text()
            assert director.director.song is not None
            async with http.get(url(web, "/status"),
                                headers={"Host": f"localhost:{web.port}"}) as res:
                assert res.status == 200 and (await res.json())["song"]
    finally:
        await web.stop()


# -- rights ------------------------------------------------------------------------------


async def test_a_viewer_token_watches_and_cannot_control(tmp_path: Path) -> None:
    show = Show()
    web = await serve(tmp_path, show, token=CONTROL, viewer_token=VIEWER)
    cue = {"command": "note.on", "args": {"pitch": 60}}
    try:
        async with aiohttp.ClientSession() as http:
            viewer = {"Authorization": f"Bearer {VIEWER}"}
            for path in ("/status", "/stage.js", "/avatar.vrm", "/vendor/three/package.json"):
                async with http.get(url(web, path), headers=viewer) as res:
                    assert res.status == 200, path
            async with http.post(url(web, "/cue"), json=cue, headers=viewer) as res:
                assert res.status == 403 and "control token" in (await res.json())["error"]
            for method in ("GET", "HEAD"):
                async with http.request(method, url(web, "/perform"), headers=viewer) as res:
                    assert res.status == 403, method
            async with http.post(url(web, "/cue"), json=cue,
                                 headers={"Authorization": "Bearer nope"}) as res:
                assert res.status == 401
            assert show.cues == []
            async with http.post(url(web, "/cue"), json=cue,
                                 headers={"Authorization": f"Bearer {CONTROL}"}) as res:
                assert res.status == 200
            assert [c.kind for c in show.cues] == ["note.on"]
    finally:
        await web.stop()


async def test_a_token_in_the_page_address_leaves_a_session_cookie(tmp_path: Path) -> None:
    show = Show()
    web = await serve(tmp_path, show, token=CONTROL, viewer_token=VIEWER)
    cue = {"command": "note.on", "args": {"pitch": 60}}
    try:
        for token, cue_status in ((VIEWER, 403), (CONTROL, 200)):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.get(url(web, f"/?token={token}")) as res:
                    assert res.status == 200 and "importmap" in await res.text()
                    cookie = res.cookies[SESSION_COOKIE]
                    assert cookie["httponly"] and cookie["samesite"] == "Strict"
                    assert token not in cookie.value
                # the page's files and calls carry only the cookie
                for path in ("/stage.js", "/stage.css", "/vendor/three/build/three.module.js",
                             "/avatar.vrm", "/status"):
                    async with http.get(url(web, path)) as res:
                        assert res.status == 200, (token, path)
                async with http.post(url(web, "/cue"), json=cue) as res:
                    assert res.status == cue_status, token
        assert len(show.cues) == 1
        # a forged cookie is no right at all
        async with aiohttp.ClientSession(cookies={SESSION_COOKIE: "control.00"}) as http:
            async with http.get(url(web, "/stage.js")) as res:
                assert res.status == 401
    finally:
        await web.stop()


def test_a_viewer_token_needs_a_different_control_token(tmp_path: Path) -> None:
    for options, words in (({"viewer_token": VIEWER}, "control token"),
                           ({"token": CONTROL, "viewer_token": CONTROL}, "differ"),
                           ({"token": ""}, "empty")):
        with pytest.raises(ValueError, match=words):
            WebServer(ViewerHub(), Show(), web_root=WEB_ROOT, avatar_path=tmp_path / "a.vrm",
                      **options)  # type: ignore[arg-type]


# -- cheap refusals ----------------------------------------------------------------------


async def test_an_oversized_body_is_refused_from_its_length_before_it_is_sent(
        tmp_path: Path) -> None:
    show = Show()
    web = await serve(tmp_path, show)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(b"POST /cue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
        await writer.drain()
        # not a byte of the body is sent: the answer must come from the length alone
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        assert head.startswith(b"HTTP/1.1 413"), head
        assert b"Connection: close" in head  # and the rest is not read out
        assert show.cues == []
    finally:
        await web.stop()


async def test_broken_requests_are_answered_without_a_logged_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    show = Show()
    web = await serve(tmp_path, show)
    broken = [
        # a body cut short by a client that hangs up
        b"POST /cue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{\"command\"",
        # heads aiohttp's parser refuses
        b"POST /cue HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
        b"POST /cue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
        b"POST /cue HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ]
    try:
        for request in broken:
            reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
            writer.write(request)
            await writer.drain()
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert answer == b"" or answer.startswith(b"HTTP/1.") and b" 400 " in answer[:20]
        async with aiohttp.ClientSession() as http:
            async with http.post(url(web, "/cue"),
                                 json={"command": "note.on", "args": {"pitch": 60}}) as res:
                assert res.status == 200
    finally:
        await web.stop()
    assert [c.kind for c in show.cues] == ["note.on"]
    loud = [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if r.exc_info or r.levelno >= logging.WARNING]
    assert not loud, loud


async def test_a_client_that_keeps_sending_bad_requests_is_throttled(tmp_path: Path) -> None:
    show = Show()
    web = await serve(tmp_path, show, refusals_per_s=0.001, refusal_burst=5)
    try:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(8):
                async with http.post(url(web, "/cue"), data=b"\xff\xfe",
                                     headers={"Content-Type": "application/json"}) as res:
                    statuses.append(res.status)
            assert statuses == [400] * 5 + [429] * 3
            async with http.post(url(web, "/cue"),
                                 json={"command": "note.on", "args": {"pitch": 60}}) as res:
                assert res.status == 429 and "too many" in (await res.json())["error"]
            assert show.cues == [] and web.throttled == 4
    finally:
        await web.stop()


def test_serve_refuses_a_viewer_token_without_a_control_token() -> None:
    from stage.serve import ServeError, ServeOptions, check_options

    for options in ({"viewer_token": VIEWER}, {"token": CONTROL, "viewer_token": CONTROL}):
        with pytest.raises(ServeError, match="--viewer-token needs a different --token"):
            check_options(ServeOptions(**options))  # type: ignore[arg-type]
    check_options(ServeOptions(token=CONTROL, viewer_token=VIEWER))
