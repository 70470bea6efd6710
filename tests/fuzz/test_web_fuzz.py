"""HTTP bodies and SDP offers (``streams.web_guard``, ``streams.web``, ``streams.webrtc.viewers``):
any body, of any content type, to any route of a real server ends in a one-line JSON 4xx or
a valid answer; never a 5xx, never a viewer left behind by an offer that failed."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection
from hypothesis import given
from hypothesis import strategies as st

from streams.cue import Cue
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.fuzz.strategies import NASTY_TEXT, mutated
from tests.streams.test_web import WEB_ROOT

pytestmark = pytest.mark.timeout(120)


class _Handler:
    async def handle(self, cue: Cue) -> object:
        return cue.kind

    def show_sample_at_unix(self, unix_s: float) -> int:
        return 0

    def status(self) -> dict[str, object]:
        return {"song": None}


async def _real_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.createDataChannel("pose")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


class _Served:
    def __init__(self, web: WebServer, loop: asyncio.AbstractEventLoop, offer: str) -> None:
        self.web, self.loop, self.offer = web, loop, offer

    def request(self, method: str, path: str, body: bytes, content_type: str | None
                ) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.web.port, timeout=20)
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        out = response.status, response.read(), response.getheader("Content-Type", "")
        conn.close()
        return out

    def viewers(self) -> int:
        return len(self.web.hub.viewers)

    def close_viewers(self) -> None:
        asyncio.run_coroutine_threadsafe(self.web.hub.close_all(), self.loop).result(20)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Served]:
    avatar: Path = tmp_path_factory.mktemp("web") / "a.vrm"
    avatar.write_bytes(b"glTF-test")
    loop = asyncio.new_event_loop()
    web = WebServer(ViewerHub(max_viewers=4), _Handler(), web_root=WEB_ROOT,
                    avatar_path=avatar, port=0, refusals_per_s=None)
    box: list[str] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(web.start())
        box.append(loop.run_until_complete(_real_offer()))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(20)
    yield _Served(web, loop, box[0])
    asyncio.run_coroutine_threadsafe(web.stop(), loop).result(20)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def check(status: int, body: bytes, content_type: str) -> None:
    assert status < 500, body
    if status >= 400:
        assert content_type.startswith("application/json"), (status, body)
        error = json.loads(body)["error"]
        assert error and "\n" not in error


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | NASTY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY_TEXT, inner, max_size=3),
    max_leaves=8)
CUES = st.fixed_dictionaries(
    {"command": st.sampled_from(["note.on", "tempo", "lyric", "expr", "go", "x"]) | NASTY_TEXT},
    optional={"args": JSON_VALUES, "singer": JSON_VALUES}).map(
    lambda d: json.dumps(d, allow_nan=True).encode())
BODIES = st.one_of(CUES, mutated(CUES), st.binary(max_size=200),
                   JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                   st.integers(1, 5000).map(lambda n: b"[" * n))
TYPES = st.sampled_from([None, "application/json", "application/sdp", "text/plain",
                         "application/json; charset=latin-1", "application/json; charset=bogus"])


@given(st.sampled_from([("POST", "/cue"), ("POST", "/offer"), ("POST", "/whep"),
                        ("PATCH", "/whep/x"), ("DELETE", "/whep/x"), ("POST", "/perform/offer"),
                        ("POST", "/status")]), BODIES, TYPES)
def test_any_body_to_any_route_gets_an_answer(served: _Served, route: tuple[str, str],
                                              body: bytes, content_type: str | None) -> None:
    method, path = route
    check(*served.request(method, path, body, content_type))
    served.close_viewers()


def _sdp_bodies(served: _Served) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(st.just(served.offer.encode())),
                     st.lists(st.sampled_from(served.offer.splitlines()), max_size=30).map(
                         lambda lines: "\r\n".join(lines).encode()))


@given(st.data())
def test_any_whep_sdp_gets_an_answer_or_a_400(served: _Served, data: st.DataObject) -> None:
    sdp = data.draw(_sdp_bodies(served))
    status, body, content_type = served.request("POST", "/whep", sdp, "application/sdp")
    check(status, body, content_type)
    assert status in (201, 400, 503), body
    served.close_viewers()


@given(st.data())
def test_any_offer_json_gets_an_answer_or_a_400(served: _Served, data: st.DataObject) -> None:
    sdp = data.draw(_sdp_bodies(served)).decode("utf-8", errors="replace")
    body = json.dumps({"type": "offer", "sdp": sdp}).encode()
    status, reply, content_type = served.request("POST", "/offer", body, "application/json")
    check(status, reply, content_type)
    assert status in (200, 400, 503), reply
    before = served.viewers()
    served.close_viewers()
    assert before <= 1 and served.viewers() == 0


def test_an_offer_aiortc_cannot_unpack_is_a_400_not_a_503(served: _Served) -> None:
    """Found by fuzzing: aiortc's "too many values to unpack" on a broken ``a=extmap`` line
    was answered 503 (viewers full) because the status was chosen by the words "too many"."""
    lines = served.offer.splitlines()
    broken = "\r\n".join("a=extmap:2 " + line if line.startswith("a=extmap:2") else line
                          for line in lines) + "\r\n"
    status, body, content_type = served.request("POST", "/whep", broken.encode(),
                                                "application/sdp")
    assert status == 400, body
    assert "cannot answer this offer" in json.loads(body)["error"]
    check(status, body, content_type)


def test_an_offer_that_breaks_aiortc_midway_is_a_400_not_a_500(served: _Served) -> None:
    """Found by fuzzing: an audio section without its ``a=mid`` line left aiortc's peer half
    built; closing it raised AttributeError and the offer got a 500."""
    broken = served.offer.replace("\r\na=mid:0", "\r\x00a=mid:0", 1)
    assert broken != served.offer
    for path, body, content_type in (
            ("/whep", broken.encode(), "application/sdp"),
            ("/offer", json.dumps({"type": "offer", "sdp": broken}).encode(),
             "application/json")):
        status, reply, reply_type = served.request("POST", path, body, content_type)
        assert status == 400, reply
        check(status, reply, reply_type)
    assert served.viewers() == 0
