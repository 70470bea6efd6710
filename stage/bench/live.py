"""Live-control benchmark: note-on over OSC -> first sample of the note in the output stream.

The engine runs in this process exactly as ``serve`` runs it; a console process of its own
sends note-ons and note-offs over UDP, while another of its sockets floods the engine with
malformed packets. Latency is measured from the audio the pacer handed to its sinks: the
first sample of each note, mapped to wall time by the show clock, minus the moment the
note-on was sent (both processes read the same monotonic clock).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
import time

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk

BAD_PACKETS = [b"/livesinger/note/on\x00,i", b"\x00\x01garbage", b"#bundle\x00\x00",
               b"/livesinger/note/on\x00\x00\x00\x00,x\x00\x00\x01\x02\x03\x04",
               b"/nope\x00\x00\x00,f\x00\x00\x00\x00\x00\x00\x00"]


def _refused(osc: object) -> int:
    """Packets the OSC server refused so far (malformed, plus well-formed but invalid)."""
    errors = getattr(osc, "errors", {})
    return int(sum(errors.values()))  # every refusal is counted once, by its reason


def _osc_note(address: str, pitch: int, velocity: float | None = None) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address)
    builder.add_arg(pitch)
    if velocity is not None:
        builder.add_arg(velocity)
    return builder.build().dgram


def run_console(port: int, notes: int, note_s: float, gap_s: float,
                bad_per_s: float) -> dict[str, object]:
    """The controller side, run in a process of its own like a real console: note-ons and
    note-offs on one socket while another floods the engine with malformed packets.

    Returns when each note-on was sent (``time.monotonic_ns``, one clock for every process)
    and how many bad packets went out over how long.
    """
    target = ("127.0.0.1", port)
    stop = threading.Event()
    flood_count = [0]

    def flood() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        start = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - start) * bad_per_s)
            while flood_count[0] < due:
                sock.sendto(BAD_PACKETS[flood_count[0] % len(BAD_PACKETS)], target)
                flood_count[0] += 1
            time.sleep(0.002)

    flooder = threading.Thread(target=flood, daemon=True)
    flood_start = time.monotonic()
    flooder.start()
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    time.sleep(0.3)
    sent_ns = []
    for i in range(notes):
        pitch = 60 + (i * 7) % 12
        sent_ns.append(time.monotonic_ns())
        ctl.sendto(_osc_note("/livesinger/note/on", pitch, 0.8), target)
        time.sleep(note_s)
        ctl.sendto(_osc_note("/livesinger/note/off", pitch), target)
        time.sleep(gap_s)
    time.sleep(0.2)
    stop.set()
    flooder.join()
    return {"sent_ns": sent_ns, "flood_sent": flood_count[0],
            "flood_s": time.monotonic() - flood_start}


async def bench_osc(notes: int = 1000, note_s: float = 0.04, gap_s: float = 0.11,
                    bad_per_s: float = 2000.0, chunk_ms: float = 5.0,
                    realtime: bool = False, synthesis: str = "process") -> dict[str, object]:
    """Measure note-on latency over ``notes`` notes while flooding with malformed packets
    (``realtime``: with synthesis scheduled as ``serve --realtime`` does; ``synthesis``:
    where the engine renders, as ``serve --synthesis``)."""
    # the engine's side only: the console process imports this module without torch
    from singer.bench import machine_name
    from stage.serve import REALTIME_PRIORITY, ServeOptions, serve

    captured: list[AudioChunk] = []
    ready = asyncio.Event()
    ports: dict[str, object] = {}
    engine: dict[str, object] = {}

    def on_ready(p: dict[str, object]) -> None:
        ports.update(p)
        ready.set()

    opts = ServeOptions(osc_port=0, http_port=None, headless=True, chunk_ms=chunk_ms,
                        realtime_priority=REALTIME_PRIORITY if realtime else None,
                        synthesis=synthesis)
    task = asyncio.ensure_future(serve(opts, on_ready, handles=engine))
    await asyncio.wait_for(ready.wait(), 120)  # a synthesis process imports torch first
    pacer = engine["pacer"]
    pacer.add_sink(captured.append)  # type: ignore[attr-defined]
    osc = engine["osc"]
    bad_before = _refused(osc)
    console = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stage.bench.live", str(ports["osc"]), str(notes), str(note_s),
        str(gap_s), str(bad_per_s), stdout=asyncio.subprocess.PIPE)
    out, _ = await console.communicate()
    if console.returncode != 0:
        raise RuntimeError(f"the OSC console process failed (exit {console.returncode})")
    sent = json.loads(out)
    sent_ns = [int(ns) for ns in sent["sent_ns"]]
    bad_after = _refused(osc)
    xruns = pacer.xruns  # type: ignore[attr-defined]
    late_edits = pacer.late_edits  # type: ignore[attr-defined]
    turnaround = np.array(pacer.edit_turnaround_ms)  # type: ignore[attr-defined]
    margin_ms = 1000 * pacer.edit_margin_s  # type: ignore[attr-defined]
    synthesis_state = pacer.synthesis_state()  # type: ignore[attr-defined]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    clock = pacer.clock  # type: ignore[attr-defined]
    first = captured[0].t
    audio = np.concatenate([c.samples for c in captured])
    latencies = []
    for ns in sent_ns:
        from_sample = max(0, clock.sample_at(ns) - first)
        # the note's first sample: silence between notes is exact zeros
        window = audio[from_sample:from_sample + SAMPLE_RATE_HZ // 10]
        if np.any(window[:SAMPLE_RATE_HZ // 1000]):
            continue  # the last note still rings: this onset cannot be told apart
        loud = np.nonzero(np.abs(window) > 1e-4)[0]
        if len(loud):
            latencies.append((clock.ns_of(first + from_sample + int(loud[0])) - ns) / 1e6)
    ms = np.array(latencies)
    return {
        "bench": "osc", "notes": notes, "notes_heard": int(len(ms)),
        "chunk_ms": chunk_ms, "synthesis": synthesis,
        "realtime": pacer.realtime_scheduling,  # type: ignore[attr-defined]
        "latency_ms_p50": round(float(np.percentile(ms, 50)), 3) if len(ms) else None,
        "latency_ms_p99": round(float(np.percentile(ms, 99)), 3) if len(ms) else None,
        "latency_ms_max": round(float(ms.max()), 3) if len(ms) else None,
        "bad_packets_sent": sent["flood_sent"],
        "bad_packets_per_s": round((bad_after - bad_before) / sent["flood_s"], 1),
        "edit_turnaround_ms_p50": round(float(np.percentile(turnaround, 50)), 3)
        if len(turnaround) else None,
        "edit_turnaround_ms_p99": round(float(np.percentile(turnaround, 99)), 3)
        if len(turnaround) else None,
        "xruns": xruns, "late_edits": late_edits, "edit_margin_ms_at_end": round(margin_ms, 1),
        "synthesis_restarts": synthesis_state.get("restarts", 0), "machine": machine_name(),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":  # the console process: python -m stage.bench.live PORT NOTES ...
    _port, _notes, _note_s, _gap_s, _bad = sys.argv[1:6]
    print(json.dumps(run_console(int(_port), int(_notes), float(_note_s), float(_gap_s),
                                 float(_bad))), flush=True)
