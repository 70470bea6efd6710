"""Every network surface listens on loopback unless told otherwise, refuses to leave it
without its token (VMC in: without its senders named), compares tokens in constant time,
and keeps viewer and control rights apart."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from stage.mocap import VmcFeed, make_feed
from stage.serve import ServeError, ServeOptions, check_options
from streams import auth
from streams.cue import Cue
from streams.mqtt import MqttBridge
from streams.osc import OscServer
from streams.vmc import VmcReceiver, osc_bundle, osc_message
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.streams.test_web import WEB_ROOT

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parents[2]
CONTROL, VIEWER = "control-T0ken-x", "viewer-T0ken-y"


class _Handler:
    def __init__(self) -> None:
        self.cues: list[Cue] = []

    async def handle(self, cue: Cue) -> object:
        self.cues.append(cue)
        return "ok"

    def show_sample_at_unix(self, unix_s: float) -> int:
        return 0

    def status(self) -> dict[str, object]:
        return {"song": None}


class _Clock:
    def now_sample(self) -> int:
        return 0


def _default(callable_: object, name: str) -> object:
    return inspect.signature(callable_).parameters[name].default  # type: ignore[arg-type]


def test_every_surface_binds_to_loopback_by_default() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(ServeOptions)}
    assert defaults["host"] == "127.0.0.1"
    for surface in (OscServer, WebServer, VmcReceiver, VmcFeed):
        assert auth.is_loopback(str(_default(surface, "host"))), surface
    assert _default(MqttBridge, "url") == "mqtt://127.0.0.1:1883"


def test_off_loopback_every_surface_needs_its_token_or_its_senders() -> None:
    with pytest.raises(ServeError, match="needs --token"):
        check_options(ServeOptions(host="0.0.0.0"))
    with pytest.raises(ValueError, match="needs a token"):
        OscServer(_Handler(), host="0.0.0.0")
    with pytest.raises(ValueError, match="not on loopback: give a token"):
        MqttBridge(_Handler(), url="mqtt://broker.venue.lan:1883")
    with pytest.raises(ValueError, match=r"needs the senders it takes: vmc:HOST:PORT\?from="):
        VmcReceiver(lambda f: None, lambda: 0, host="0.0.0.0")
    with pytest.raises(Exception, match=r"from=ADDR"):
        make_feed("vmc:0.0.0.0:39540", clock=_Clock())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="viewer token must differ"):
        WebServer(ViewerHub(), _Handler(), web_root=WEB_ROOT, avatar_path=WEB_ROOT,
                  token=CONTROL, viewer_token=CONTROL)
    # with a token (or named senders) each one starts
    OscServer(_Handler(), host="0.0.0.0", token=CONTROL)
    MqttBridge(_Handler(), url="mqtt://broker.venue.lan:1883", token=CONTROL)
    VmcReceiver(lambda f: None, lambda: 0, host="0.0.0.0", allow=["192.168.1.20"])


def test_tokens_are_only_ever_compared_in_constant_time() -> None:
    """``token_matches`` (hmac.compare_digest) is the one comparison: no ``==`` or ``!=``
    against a token or secret anywhere in the engine's code."""
    assert "hmac.compare_digest" in inspect.getsource(auth.token_matches)
    offenders = []
    for path in sorted(p for d in ("streams", "stage", "singer", "rigs", "mocap")
                       for p in (ROOT / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(
                    isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                names = [ast.unparse(n) for n in (node.left, *node.comparators)]
                if any(("token" in n or "secret" in n or "password" in n)
                       and "None" not in names for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: "
                                     f"{ast.unparse(node)}")
    # two configured tokens compared at start-up (no client's input, nothing to time)
    allowed = {"stage/serve.py: opts.viewer_token == opts.token"}
    assert {o.split(":")[0] + ":" + o.split(":", 2)[2] for o in offenders} <= allowed, offenders


async def test_viewer_and_control_rights_are_apart(tmp_path: Path) -> None:
    avatar = tmp_path / "a.vrm"
    avatar.write_bytes(b"glTF")
    handler = _Handler()
    web = WebServer(ViewerHub(max_viewers=2), handler, web_root=WEB_ROOT, avatar_path=avatar,
                    port=0, token=CONTROL, viewer_token=VIEWER)
    await web.start()
    base = f"http://127.0.0.1:{web.port}"
    cue = {"command": "note.on", "args": {"pitch": 60}}
    try:
        async with aiohttp.ClientSession() as http:
            async def status(method: str, path: str, token: str | None, data: bytes = b"",
                             json: object = None, content_type: str | None = None) -> int:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if content_type:
                    headers["Content-Type"] = content_type
                async with http.request(method, base + path, headers=headers,
                                        data=data or None, json=json) as r:
                    await r.read()
                    return r.status

            for path in ("/", "/status", "/stage.js", "/avatar.vrm"):
                assert await status("GET", path, None) == 401, path
                assert await status("GET", path, "wrong-token-000") == 401, path
                assert await status("GET", path, VIEWER) == 200, path
                assert await status("GET", path, CONTROL) == 200, path
            assert await status("POST", "/whep", None, data=b"v=0",
                                content_type="application/sdp") == 401
            assert await status("POST", "/cue", None, json=cue) == 401
            assert await status("POST", "/cue", VIEWER, json=cue) == 403
            assert not handler.cues
            assert await status("POST", "/cue", CONTROL, json=cue) == 200
            assert [c.kind for c in handler.cues] == ["note.on"]
            assert await status("GET", "/perform", VIEWER) == 403
    finally:
        await web.stop()


async def test_osc_udp_and_tcp_need_the_token_off_loopback() -> None:
    """A server with a token (as one off loopback has) applies nothing before
    ``/livesinger/auth <token>``, on UDP and on TCP."""
    from streams import slip
    from tests.fuzz.strategies import osc_string

    handler = _Handler()
    go = osc_string("/livesinger/go") + osc_string(",")
    auth_msg = osc_string("/livesinger/auth") + osc_string(",s") + osc_string(CONTROL)
    async with OscServer(handler, port=0, token=CONTROL) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(go, ("127.0.0.1", server.port))
            with socket.create_connection(("127.0.0.1", server.port)) as tcp:
                tcp.sendall(slip.encode(go))
                await _settle(lambda: server.errors["unauthorised"] >= 2)
                assert handler.cues == []
                udp.sendto(auth_msg, ("127.0.0.1", server.port))
                udp.sendto(go, ("127.0.0.1", server.port))
                tcp.sendall(slip.encode(auth_msg) + slip.encode(go))
                await _settle(lambda: len(handler.cues) >= 2)
    assert [c.kind for c in handler.cues] == ["go", "go"]


async def _settle(done: object, timeout_s: float = 5.0) -> None:
    import asyncio

    deadline = time.monotonic() + timeout_s
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_vmc_in_takes_only_the_named_senders() -> None:
    """Off loopback VMC in takes packets from the ``from=`` senders only (127.0.0.2 stands in
    for the capture PC, 127.0.0.1 for anyone else on the venue network)."""
    frames: list[object] = []
    receiver = VmcReceiver(frames.append, lambda: 0, host="127.0.0.1", port=0,
                           allow=["127.0.0.2"])
    await receiver.start()
    packet = osc_bundle([osc_message("/VMC/Ext/Bone/Pos", "sfffffff", "Head",
                                     0, 0, 0, 0, 0, 0, 1),
                         osc_message("/VMC/Ext/Blend/Apply", "")])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as capture_pc:
            capture_pc.bind(("127.0.0.2", 0))
            stranger.sendto(packet, ("127.0.0.1", receiver.port))
            await _settle(lambda: receiver.refused == 1)
            assert frames == []
            capture_pc.sendto(packet, ("127.0.0.1", receiver.port))
            await _settle(lambda: len(frames) == 1)
    finally:
        await receiver.stop()
    assert receiver.refused == 1 and receiver.frames == 1
