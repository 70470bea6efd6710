"""Two, then eight viewers of one singing engine, and one of them killed mid-song.

The viewers are real WebRTC peers: one recording client in this process and WHEP listeners
in processes of their own (``streams.webrtc.whep_client``), one of which is killed with SIGKILL — a
viewer whose laptop died — while the others keep listening.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import numpy as np
import pytest
from aiortc import RTCSessionDescription

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import Ensemble, SingerLine
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from stage.pacer import AudioPacer, PacerConfig
from stage.serve import realtime_gc
from streams.web import WebServer
from streams.webrtc.viewers import ViewerHub
from tests.measure import StallWatch, f0_track, xrun_budget
from tests.streams.test_viewers import Client
from tests.streams.test_web import WEB_ROOT, Show

SR = SAMPLE_RATE_HZ


async def listeners(base: str, count: int, after_s: float = 0.0) -> asyncio.subprocess.Process:
    """``count`` WHEP listeners in a process of their own, joining ``after_s`` after it has
    started (a Python process starting up takes a core for a second: that is this machine's
    load, not a viewer's)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.webrtc.whep_client", base + "/whep", "--count", str(count),
        "--stagger", "0.25", "--after", str(after_s), stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert "listening" in json.loads(line) or "waiting_s" in json.loads(line)
    return proc


async def joined(proc: asyncio.subprocess.Process, count: int) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert json.loads(line) == {"listening": count}


@pytest.mark.timeout(120)
async def test_two_then_eight_viewers_and_one_killed_mid_song(tmp_path) -> None:  # noqa: ANN001
    synth = HarmonicNoiseSynth(device="cpu")
    line = SingerLine("lead", get_voice("soprano"), hop=synth.hop)
    ensemble = Ensemble(synth, [line])
    hub = ViewerHub()
    pacer = AudioPacer(ensemble.render_mix_samples, [hub.push_audio], PacerConfig(240, 4))
    realtime_gc()  # as serve does once the show is set up
    ensemble.render_mix_samples(0, 240)  # warm up, as the engine does before its clock starts
    web = WebServer(hub, Show(), web_root=WEB_ROOT, avatar_path=tmp_path / "none.vrm", port=0)
    await web.start()
    base = f"http://127.0.0.1:{web.port}"
    recorder = Client(with_pose=False)
    viewer, answer = await hub.answer(await recorder.offer(), kind="whep")  # 20 ms frames
    await recorder.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    doomed = await listeners(base, 1, after_s=2.0)
    others = await listeners(base, 6, after_s=4.0)
    playing = asyncio.ensure_future(pacer.run())
    try:
        await joined(doomed, 1)
        assert len(hub.viewers) == 2
        # a long A4 from one second on, sung while viewers come and go
        start = pacer.playout_sample + SR // 2
        line.set_notes([Note(start, start + 6 * SR, 69, "a", ("a",))], changed_from=start)
        pacer.rewind(start)
        await asyncio.sleep(1.5)
        two_viewer_xruns = pacer.xruns
        await joined(others, 6)
        assert len(hub.viewers) == 8
        await asyncio.sleep(0.3)
        joining_xruns = pacer.xruns
        with StallWatch() as stalls:
            await asyncio.sleep(1.2)
            doomed.kill()  # no goodbye: no DELETE, no DTLS close
            await doomed.wait()
            await asyncio.sleep(2.0)
            steady_xruns = pacer.xruns - joining_xruns
        others.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(others.communicate(), 20)
        heard = json.loads(out.decode().strip().splitlines()[-1])["frames"]
    finally:
        for proc in (doomed, others):
            if proc is not None and proc.returncode is None:
                proc.kill()
        playing.cancel()
        await asyncio.gather(playing, return_exceptions=True)
        await recorder.close()
        await hub.close_all()
        await web.stop()

    # peers joining (ICE, DTLS, a new encoder each) on the engine's two cores may cost a rare
    # late chunk; eight viewers singing along, and one of them dying, cost none
    assert joining_xruns <= 0.01 * pacer.chunks_played, (two_viewer_xruns, joining_xruns)
    # (a stretch in which the whole process was not run is no viewer's doing: chunks due in
    # it may be late; the stall watch measures it)
    # (and on the slow shared machine, sum(range(3e7)) ~0.9 s, a rare late chunk: 6 of the
    # 640 once; a benchmark figure, bench webrtc's)
    allowed = int(stalls.stalled_s / 0.005) + xrun_budget(int(3.2 / 0.005), percent=2)
    assert steady_xruns <= allowed, (joining_xruns, steady_xruns, stalls.stalled_s)
    # the six who stayed heard about two seconds each (50 frames a second)
    assert len(heard) == 6 and min(heard) > 80, heard
    # the recording viewer's stream never broke: consecutive 20 ms frames all the way
    pts = np.array([p for p, _ in recorder.frames])
    assert len(pts) > 200 and set(np.diff(pts)) == {960}, sorted(set(np.diff(pts)))
    audio = np.concatenate([pcm for _, pcm in recorder.frames])
    times, f0 = f0_track(audio, 150, 800)
    sung = f0[(f0 > 0)]
    assert len(sung) > 100, len(sung)
    cents = 1200 * np.log2(np.median(sung) / 440.0)
    assert abs(cents) < 20, cents
