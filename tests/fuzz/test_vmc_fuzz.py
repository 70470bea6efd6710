"""VMC in (``streams.vmc``): any datagram is dropped and counted or applied; what the
receiver makes of it is always a pose every viewer can take (unit rotations of humanoid
bones, preset expressions weighted 0..1, the root on the stage, strict JSON)."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rigs.pose import PoseFrame
from rigs.pose_check import EXPRESSION_NAMES, ROOT_LIMIT_M
from rigs.skeleton import HUMANOID_BONES
from rigs.unity import UNITY_BONE
from streams.vmc import VmcReceiver, osc_bundle, osc_message
from tests.fuzz.strategies import NASTY_TEXT, mutated, osc_packets

pytestmark = pytest.mark.timeout(60)

FLOATS = st.floats(width=32)
BONE_NAMES = st.sampled_from(sorted(UNITY_BONE.values())) | NASTY_TEXT
BLEND_NAMES = st.sampled_from(["A", "I", "U", "E", "O", "Blink", "Blink_L", "Joy", "aa",
                               "happy", "Fun"]) | NASTY_TEXT


def _f(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


VMC_MESSAGES = st.one_of(
    st.builds(lambda b, v: osc_message("/VMC/Ext/Bone/Pos", "sfffffff", b, *v), BONE_NAMES,
              st.lists(FLOATS, min_size=7, max_size=7)),
    st.builds(lambda v: osc_message("/VMC/Ext/Root/Pos", "sfffffff", "root", *v),
              st.lists(FLOATS, min_size=7, max_size=7)),
    st.builds(lambda n, w: osc_message("/VMC/Ext/Blend/Val", "sf", n, w), BLEND_NAMES, FLOATS),
    st.just(osc_message("/VMC/Ext/Blend/Apply", "")),
    st.builds(lambda t: osc_message("/VMC/Ext/T", "f", t), FLOATS),
    st.builds(lambda i: osc_message("/VMC/Ext/OK", "i", i), st.integers(-2**31, 2**31 - 1)),
    st.builds(lambda s: osc_message("/VMC/Ext/Bone/Pos", "s", s), NASTY_TEXT),
    st.builds(lambda i: osc_message("/VMC/Ext/Blend/Val", "i", i), st.integers(0, 9)),
)
VMC_PACKETS = st.lists(VMC_MESSAGES, min_size=1, max_size=12).map(lambda ms: osc_bundle(ms))
ANY = st.one_of(VMC_PACKETS, mutated(VMC_PACKETS), osc_packets, st.binary(max_size=200))


def _check(frame: PoseFrame) -> None:
    for bone, q in frame.normalized_bones.items():
        assert bone in HUMANOID_BONES
        assert abs(math.hypot(*q) - 1.0) < 1e-6
    for name, weight in frame.expressions.items():
        assert name in EXPRESSION_NAMES and 0.0 <= weight <= 1.0
    assert all(abs(c) <= ROOT_LIMIT_M for c in frame.root_position_m)
    frame.to_json()  # strict JSON: raises on NaN


@given(st.lists(ANY, min_size=1, max_size=6))
def test_any_datagrams_become_valid_poses_or_are_counted(datagrams: list[bytes]) -> None:
    frames: list[PoseFrame] = []
    receiver = VmcReceiver(frames.append, lambda: 0)
    for data in datagrams:
        receiver.feed(data)
    for frame in frames:
        _check(frame)
    _check(receiver.state.frame(0))
    assert receiver.frames == len(frames)
    assert math.isfinite(receiver.state.time_s)
