"""The WHEP listener used as a load of broadcasters: it hears the show, leaves cleanly, and
says clearly when an endpoint refuses it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from stage.pacer import AudioPacer, PacerConfig
from streams.web import WebServer
from streams.webrtc.whep_client import WhepError, listen
from tests.streams.test_web import server, tone, url  # noqa: F401  (fixture)


@pytest.mark.timeout(60)
async def test_listeners_receive_audio_and_leave_with_delete(server: WebServer) -> None:  # noqa: F811
    connected = asyncio.Event()
    pacer = AudioPacer(tone, [server.hub.push_audio], PacerConfig(480, 2))
    playing = asyncio.ensure_future(pacer.run(until_sample=3 * SAMPLE_RATE_HZ))
    listening = asyncio.ensure_future(listen(url(server, "/whep"), 3, 1.0, ready=connected))
    await asyncio.wait_for(connected.wait(), 20)
    assert len(server.hub.viewers) == 3
    frames = await listening
    await playing
    # 20 ms frames for about a second each, and nobody left behind on the engine
    assert all(f > 30 for f in frames), frames
    assert np.ptp(frames) < 20
    assert server.hub.viewers == {}


async def test_a_refused_session_is_an_error_naming_the_endpoint(server: WebServer) -> None:  # noqa: F811
    # the server takes four viewers: the fifth is refused, and the four leave again
    with pytest.raises(WhepError, match=r"/whep: 503 .*too many viewers"):
        await listen(url(server, "/whep"), 5, 0.1)
    assert server.hub.viewers == {}


def test_the_command_line_says_what_went_wrong() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "streams.webrtc.whep_client",
                           f"http://127.0.0.1:{port}/whep", "--seconds", "0.1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "whep_client: error" in done.stderr and str(port) in done.stderr
    assert "Traceback" not in done.stderr
