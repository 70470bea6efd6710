"""VMC out into a real python-osc server; VMC in drives the rig; one conversion both ways."""

from __future__ import annotations

import asyncio
import math
import socket

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_packet import OscPacket
from pythonosc.osc_server import AsyncIOOSCUDPServer

from rigs.idle import axis_angle
from rigs.pose import PoseFrame
from rigs.rotation import q_angle, q_rotate
from rigs.unity import (
    UNITY_BONE,
    VRM_BONE,
    position_from_unity,
    position_to_unity,
    quaternion_from_unity,
    quaternion_to_unity,
)
from streams.vmc import VmcOptions, VmcReceiver, VmcSender, osc_message

# left arm raised forward (+X -> +Z: about -Y), head turned to its left, a wink
POSE = PoseFrame(
    48000,
    {"hips": axis_angle((0.0, 1.0, 0.0), 10.0),
     "leftUpperArm": axis_angle((0.0, -1.0, 0.0), 90.0),
     "rightLowerArm": axis_angle((0.0, 1.0, 0.0), -45.0),
     "leftThumbMetacarpal": axis_angle((0.0, 0.0, 1.0), 20.0),
     "head": axis_angle((0.0, 1.0, 0.0), 30.0)},
    (0.1, 0.0, 0.2),
    {"aa": 0.5, "blinkLeft": 1.0, "happy": 0.25})


def same(a: tuple[float, ...], b: tuple[float, ...], eps: float = 1e-6) -> bool:
    return 1 - abs(sum(x * y for x, y in zip(a, b, strict=True))) < eps


def test_conversion_is_its_own_inverse_and_keeps_unity_semantics() -> None:
    q = axis_angle((0.3, -0.5, math.sqrt(1 - 0.34)), 70.0)
    assert same(quaternion_from_unity(quaternion_to_unity(q)), q)
    assert position_from_unity(position_to_unity((1.0, 2.0, 3.0))) == (1.0, 2.0, 3.0)
    # our left arm raised forward: in Unity the left arm rests along -X and must end at +Z
    unity_q = quaternion_to_unity(POSE.normalized_bones["leftUpperArm"])
    assert np.allclose(q_rotate(unity_q, np.array([-1.0, 0, 0])), [0, 0, 1], atol=1e-6)
    # a head turned to the avatar's left (+Y in three.js) looks towards Unity's -X (its left)
    unity_head = quaternion_to_unity(POSE.normalized_bones["head"])
    forward = q_rotate(unity_head, np.array([0.0, 0, 1]))
    assert forward[0] < -0.4 and forward[2] > 0.8
    assert set(VRM_BONE) >= {"Hips", "LeftThumbProximal", "LeftLittleDistal", "UpperChest"}
    assert UNITY_BONE["leftThumbMetacarpal"] == "LeftThumbProximal"


async def test_vmc_out_received_by_python_osc_server() -> None:
    got: list[tuple[str, tuple[object, ...]]] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: got.append((address, args)))
    loop = asyncio.get_running_loop()
    server = AsyncIOOSCUDPServer(("127.0.0.1", 0), dispatcher, loop)
    transport, _ = await server.create_serve_endpoint()
    port = transport.get_extra_info("sockname")[1]
    sender = VmcSender("127.0.0.1", port)
    await sender.start()
    try:
        sender.send(POSE)
        for _ in range(100):
            if got and got[-1][0] == "/VMC/Ext/Blend/Apply":
                break
            await asyncio.sleep(0.01)
    finally:
        await sender.stop()
        transport.close()
    addresses = [a for a, _ in got]
    assert addresses[0] == "/VMC/Ext/OK" and got[0][1] == (1,)
    assert addresses[1] == "/VMC/Ext/T" and got[1][1] == (1.0,)
    assert addresses[-1] == "/VMC/Ext/Blend/Apply" and got[-1][1] == ()
    root = dict((a, args) for a, args in got)["/VMC/Ext/Root/Pos"]
    assert root[0] == "root" and all(isinstance(v, float) for v in root[1:])
    assert np.allclose(root[1:4], (-0.1, 0.0, 0.2), atol=1e-6)  # Unity mirrors X
    bones = {args[0]: args[1:] for a, args in got if a == "/VMC/Ext/Bone/Pos"}
    assert set(bones) == {"Hips", "LeftUpperArm", "RightLowerArm", "LeftThumbProximal", "Head"}
    for args in bones.values():
        assert len(args) == 7 and all(isinstance(v, float) for v in args)
    assert math.isclose(bones["Hips"][1], 0.95, abs_tol=1e-6)  # the default avatar's hips
    # bone offsets are the default avatar's, mirrored into Unity's axes: her left arm (+X in
    # three.js) starts 13 cm out from the left shoulder, on Unity's -X
    assert np.allclose(bones["LeftUpperArm"][:3], (-0.13, 0.0, 0.0), atol=1e-6)
    arm = bones["LeftUpperArm"][3:]
    assert np.allclose(q_rotate(arm, np.array([-1.0, 0, 0])), [0, 0, 1], atol=1e-5)
    blends = {args[0]: args[1] for a, args in got if a == "/VMC/Ext/Blend/Val"}
    assert blends == {"A": 0.5, "Blink_L": 1.0, "Joy": 0.25}


@pytest.mark.parametrize(("blend_names", "on_the_wire"), [
    ("vrm0", [("A", 0.5), ("Blink_L", 1.0), ("Joy", 0.25)]),
    ("vrm1", [("aa", 0.5), ("blinkLeft", 1.0), ("happy", 0.25)]),
])
async def test_blend_names_option_decides_the_names_on_the_wire(
        blend_names: str, on_the_wire: list[tuple[str, float]]) -> None:
    """The exact blend names in the datagram (a raw socket, parsed by python-osc): our own
    receiver accepts both spellings, so only the bytes tell whether the option was used."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.bind(("127.0.0.1", 0))
        raw.settimeout(5.0)
        sender = VmcSender("127.0.0.1", raw.getsockname()[1],
                           VmcOptions(blend_names=blend_names))
        await sender.start()
        try:
            sender.send(POSE)
            datagram = await asyncio.to_thread(raw.recv, 65536)
        finally:
            await sender.stop()
    messages = [timed.message for timed in OscPacket(datagram).messages]
    blends = [(m.address, tuple(m.params)) for m in messages
              if m.address == "/VMC/Ext/Blend/Val"]
    assert blends == [("/VMC/Ext/Blend/Val", (name, weight)) for name, weight in on_the_wire]
    assert messages[-1].address == "/VMC/Ext/Blend/Apply"


async def test_out_then_in_is_the_same_pose() -> None:
    frames: list[PoseFrame] = []
    receiver = VmcReceiver(frames.append, lambda: 123, port=0)
    await receiver.start()
    sender = VmcSender("127.0.0.1", receiver.port)
    await sender.start()
    try:
        sender.send(POSE)
        for _ in range(100):
            if frames:
                break
            await asyncio.sleep(0.01)
    finally:
        await sender.stop()
        await receiver.stop()
    back = frames[-1]
    assert back.t == 123
    assert set(back.normalized_bones) == set(POSE.normalized_bones)
    for bone, q in POSE.normalized_bones.items():
        assert same(back.normalized_bones[bone], q), bone
    assert np.allclose(back.root_position_m, POSE.root_position_m, atol=1e-6)
    assert back.expressions == POSE.expressions


def test_wrong_types_and_garbage_are_ignored() -> None:
    frames: list[PoseFrame] = []
    receiver = VmcReceiver(frames.append, lambda: 0)
    receiver.feed(b"not osc at all")
    receiver.feed(osc_message("/VMC/Ext/Bone/Pos", "ssssssss", *["x"] * 8))
    receiver.feed(osc_message("/VMC/Ext/Bone/Pos", "ifffffff", 3, *[0.0] * 7))
    receiver.feed(osc_message("/VMC/Ext/Blend/Val", "ss", "A", "loud"))
    receiver.feed(osc_message("/VMC/Ext/Unknown", "i", 3))
    assert receiver.bad_packets == 1 and receiver.state.ignored == 3
    assert receiver.state.unknown == 1 and frames == []
    # extra arguments are ignored; ints are numbers too
    receiver.feed(osc_message("/VMC/Ext/Bone/Pos", "sfffffffs", "Head", 0.0, 0.0, 0.0,
                              0.0, 0.0, 0.0, 1.0, "extra"))
    receiver.feed(osc_message("/VMC/Ext/Blend/Val", "si", "Blink", 1))
    receiver.feed(osc_message("/VMC/Ext/Blend/Apply", ""))
    assert frames[-1].normalized_bones == {"head": (0.0, 0.0, 0.0, 1.0)}
    assert frames[-1].expressions == {"blink": 1.0}


def test_vmc_in_drives_the_rig() -> None:
    """A pose from another capture app becomes our bone rotations (angles measured)."""
    frames: list[PoseFrame] = []
    receiver = VmcReceiver(frames.append, lambda: 0)
    unity_arm = quaternion_to_unity(axis_angle((0.0, 0.0, 1.0), -60.0))  # left arm down 60
    receiver.feed(osc_message("/VMC/Ext/Bone/Pos", "sfffffff", "LeftUpperArm",
                              0.0, 0.0, 0.0, *unity_arm))
    arm = frames[-1].normalized_bones["leftUpperArm"]
    direction = q_rotate(arm, np.array([1.0, 0, 0]))
    expected = np.array([math.cos(math.radians(60)), -math.sin(math.radians(60)), 0])
    assert math.degrees(math.acos(np.clip(direction @ expected, -1, 1))) < 0.01
    assert q_angle(arm, axis_angle((0.0, 0.0, 1.0), -60.0)) < 1e-3  # float32 on the wire
