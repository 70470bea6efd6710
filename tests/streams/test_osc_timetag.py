"""An OSC bundle timetagged in the future is sung at that wall-clock time: through the real
``serve`` (OSC server, Director, pacer, recorder), measured in the recorded audio."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk, Note
from stage.pacer import AudioPacer
from stage.serve import ServeOptions, serve
from tests.measure import StallWatch, note_cents_errors, xrun_budget

SR = SAMPLE_RATE_HZ
CHUNK = 240  # serve's 5 ms chunks
SCHEDULING_S = 0.020
"""What a loaded machine may add to when the playout task hands a chunk over."""


def bundle_at(unix_s: float, address: str, *args: tuple[int | float | str, str]) -> bytes:
    """An OSC bundle (NTP timetag ``unix_s``) holding one message."""
    message = OscMessageBuilder(address)
    for value, tag in args:
        message.add_arg(value, tag)
    bundle = OscBundleBuilder(unix_s)  # type: ignore[arg-type]  # a float is what it takes
    bundle.add_content(OscMessage(message.build().dgram))
    return bundle.build().dgram


def wall_minus_monotonic_ns() -> int:
    """``time.time_ns() - time.monotonic_ns()``, read as close together as we can."""
    best = None
    for _ in range(5):
        a = time.monotonic_ns()
        wall = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, wall - (a + b) // 2)
    assert best is not None
    return best[1]


@pytest.mark.timeout(90)
async def test_a_future_bundle_is_sung_at_its_wall_clock_time_not_on_arrival(
        tmp_path: Path) -> None:
    handles: dict[str, object] = {}
    ports: dict[str, object] = {}
    ready = asyncio.Event()
    opts = ServeOptions(osc_port=0, http_port=None, headless=True, record=tmp_path,
                        audible_label="off")

    def on_ready(bound: dict[str, object]) -> None:
        ports.update(bound)
        ready.set()

    show = asyncio.ensure_future(serve(opts, on_ready, handles))
    await asyncio.wait_for(ready.wait(), 60)
    pacer = handles["pacer"]
    assert isinstance(pacer, AudioPacer)
    handed_ns: dict[int, int] = {}  # show sample of each chunk -> monotonic ns it went out

    def note_hand_out(chunk: AudioChunk) -> None:
        handed_ns[chunk.t] = time.monotonic_ns()

    pacer.add_sink(note_hand_out)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        with StallWatch() as watch:
            await asyncio.sleep(0.3)
            offset_ns = wall_minus_monotonic_ns()
            at_unix = time.time() + 0.3
            sock.sendto(bundle_at(at_unix, "/livesinger/note/on", (67, "i"), (0.9, "f"),
                                  ("a", "s")), ("127.0.0.1", int(ports["osc"])))  # type: ignore[call-overload]
            sent_ns = time.monotonic_ns()
            sock.sendto(bundle_at(at_unix + 0.5, "/livesinger/note/off", (67, "i")),
                        ("127.0.0.1", int(ports["osc"])))  # type: ignore[call-overload]
            await asyncio.sleep(1.2)
    finally:
        sock.close()
        show.cancel()
        await asyncio.gather(show, return_exceptions=True)
    audio, rate = sf.read(tmp_path / "audio.wav", dtype="float32")
    assert rate == SR
    assert pacer.xruns <= xrun_budget(pacer.chunks_played)
    sung = np.nonzero(np.abs(audio) > 1e-4)[0]
    assert len(sung), "nothing was sung"
    onset = int(sung[0])
    # the wall-clock instant the timetag names, as a show sample (sample s plays at
    # origin + s / 48 kHz on the monotonic clock)
    at_mono_ns = round(at_unix * 1e9) - offset_ns
    expected = (at_mono_ns - pacer.clock.origin_ns) * SR // 1_000_000_000
    assert 0 <= onset - expected <= CHUNK, (onset, expected)  # the vowel's attack aside
    allowance = CHUNK + int((SCHEDULING_S + watch.stalled_s) * SR)
    # measured independently of that arithmetic: the chunk holding the onset went out at
    # the wall-clock time of the timetag (within the chunk and the scheduling allowance)
    chunk_t = onset - onset % CHUNK
    played_unix_s = (handed_ns[chunk_t] + offset_ns + (onset - chunk_t) * 1e9 / SR) / 1e9
    assert abs(played_unix_s - at_unix) <= allowance / SR, (played_unix_s - at_unix)
    # ... not when the datagram arrived, 300 ms earlier
    arrived = pacer.clock.sample_at(sent_ns)
    assert onset - arrived >= int(0.25 * SR)
    # and it is the note asked for, ending at its own timetag
    note = Note(onset, expected + int(0.5 * SR), 67, "a", ("a",))
    assert abs(note_cents_errors(audio, [note])[0]) < 25
    assert np.abs(audio[expected + int(0.5 * SR) + int(0.3 * SR):]).max() < 1e-3
