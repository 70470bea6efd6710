"""The show's data channels keep sending while the page's process is not run (late SACKs).

A real stage-page-like peer (aiortc, in a process of its own, offering the page's ``pose`` and
``voice`` channels) is stopped with SIGSTOP for a second of show, as a loaded machine stops a
browser; the engine's hub keeps handing out voice and pose at their play times. Every frame
must leave the engine then (none held back by the association's congestion window waiting for
SACKs that cannot come), and every voice frame must reach the page once it runs again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import numpy as np
import pytest

from rigs.pose import PoseFrame
from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from streams.webrtc.viewers import ViewerHub

PAGE = r"""
import asyncio, json, sys
from aiortc import RTCPeerConnection, RTCSessionDescription

async def main():
    pc = RTCPeerConnection()
    pose = pc.createDataChannel('pose', ordered=False, maxRetransmits=0)
    voice = pc.createDataChannel('voice', ordered=False, maxRetransmits=0)
    got = {'voice': 0, 'pose': 0}
    voice.on('message', lambda m: got.__setitem__('voice', got['voice'] + 1))
    pose.on('message', lambda m: got.__setitem__('pose', got['pose'] + 1))
    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({'sdp': pc.localDescription.sdp}), flush=True)
    loop = asyncio.get_running_loop()
    answer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    await pc.setRemoteDescription(RTCSessionDescription(answer['sdp'], 'answer'))
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == 'quit':
            break
        print(json.dumps(got), flush=True)
    await pc.close()

asyncio.run(main())
"""
BONES = ("hips", "spine", "chest", "neck", "head", "leftUpperArm", "rightUpperArm",
         "leftLowerArm", "rightLowerArm")


def pose_at(t: int) -> PoseFrame:
    """A pose message of a show's usual size (~330 bytes)."""
    return PoseFrame(t, {b: (0.0, 0.0, 0.1234, 0.9924) for b in BONES}, (0.0, 0.0, 0.0),
                     {"aa": 0.5, "blink": 0.1})


async def _line(proc: asyncio.subprocess.Process) -> dict[str, object]:
    assert proc.stdout is not None
    return json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))  # type: ignore[no-any-return]


@pytest.mark.timeout(60)
async def test_voice_and_pose_leave_while_the_page_is_stopped_and_all_voice_arrives() -> None:
    hub = ViewerHub()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PAGE, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    try:
        offer = await _line(proc)
        viewer, answer = await hub.answer(str(offer["sdp"]))
        proc.stdin.write((json.dumps({"sdp": answer}) + "\n").encode())
        for _ in range(300):
            if (viewer.voice is not None and viewer.voice.readyState == "open"
                    and viewer.channel is not None and viewer.channel.readyState == "open"):
                break
            await asyncio.sleep(0.05)
        assert viewer.voice is not None and viewer.channel is not None, "channels never opened"
        t = 0
        tone = (0.2 * np.sin(2 * np.pi * 220 * np.arange(480) / SAMPLE_RATE_HZ)
                ).astype(np.float32)
        os.kill(proc.pid, signal.SIGSTOP)  # the page's process is not run for a second
        try:
            for i in range(100):  # one second of show: 10 ms of voice, a pose every ~17 ms
                hub.push_audio(AudioChunk(t, tone))
                if i % 10 in (0, 2, 3, 5, 7, 8):
                    hub.push_pose(pose_at(t))
                t += 480
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            held = {"voice": viewer.voice.bufferedAmount, "pose": viewer.channel.bufferedAmount}
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        # every frame handed out left the engine: nothing waited for the stopped page's SACKs
        assert held == {"voice": 0, "pose": 0}, held
        assert viewer.voice_dropped == 0 and viewer.poses_dropped == 0
        sent = viewer.voice_frames
        assert sent >= 99, sent
        for _ in range(100):  # the page, running again, reads what waited for it
            proc.stdin.write(b"report\n")
            got = await _line(proc)
            if got["voice"] == sent:
                break
            await asyncio.sleep(0.05)
        assert got["voice"] == sent, (got, sent)
    finally:
        if proc.returncode is None:
            proc.stdin.write(b"quit\n")
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await hub.close_all()
