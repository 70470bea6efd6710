"""Static files cannot escape their folder: ``..``, percent-encoded ``%2e%2e`` and ``%2f``,
backslashes, absolute paths and a symlink inside the web root pointing outside, sent as raw
bytes to the real server (no client library normalises them first)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streams.cue import Cue
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub

pytestmark = pytest.mark.timeout(30)
SECRET = b"TOP-SECRET-0xC0FFEE"


class _Handler:
    async def handle(self, cue: Cue) -> object:
        return None

    def show_sample_at_unix(self, unix_s: float) -> int:
        return 0

    def status(self) -> dict[str, object]:
        return {}


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                 .encode("latin-1"))
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


@pytest.fixture
async def server(tmp_path: Path) -> WebServer:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.js").write_bytes(SECRET)
    (tmp_path / "secret.js").write_bytes(SECRET)
    root = tmp_path / "web"
    (root / "node_modules" / "three").mkdir(parents=True)
    (root / "index.html").write_text("<html>stage</html>")
    (root / "stage.js").write_text("// stage")
    (root / "node_modules" / "three" / "three.js").write_text("// three")
    (root / "evil.js").symlink_to(outside / "secret.js")
    (root / "node_modules" / "evil.js").symlink_to(outside / "secret.js")
    (root / "node_modules" / "out").symlink_to(outside, target_is_directory=True)
    web = WebServer(ViewerHub(), _Handler(), web_root=root, avatar_path=root / "none.vrm",
                    port=0, refusals_per_s=None)
    await web.start()
    yield web
    await web.stop()


ESCAPES = [
    "/../secret.js", "/..%2fsecret.js", "/%2e%2e/secret.js", "/%2e%2e%2fsecret.js",
    "/%2E%2E/%2E%2E/secret.js", "/..%5csecret.js", "/..\\secret.js", "/evil.js",
    "/vendor/../../secret.js", "/vendor/..%2f..%2fsecret.js", "/vendor/%2e%2e/%2e%2e/secret.js",
    "/vendor/three/..%2f..%2f..%2fsecret.js", "/vendor/evil.js", "/vendor/out/secret.js",
    "/vendor/%2fetc%2fpasswd", "/vendor//etc/passwd", "/vendor/%00", "/%252e%252e/secret.js",
    "//secret.js", "/vendor/three/%2e%2e/%2e%2e/%2e%2e/outside/secret.js",
]


@pytest.mark.parametrize("target", ESCAPES)
async def test_no_path_reaches_outside_the_web_root(server: WebServer, target: str) -> None:
    status, data = await raw_get(server.port, target)
    assert SECRET not in data, target
    assert status in (400, 403, 404), (target, data[:200])
    assert b"root:" not in data


async def test_files_inside_are_served(server: WebServer) -> None:
    assert (await raw_get(server.port, "/stage.js"))[0] == 200
    status, data = await raw_get(server.port, "/vendor/three/three.js")
    assert status == 200 and data.endswith(b"// three")
