"""VMC protocol (OSC over UDP): send our pose to VSeeFace/Warudo/Unity receivers, and read a
pose sent by another capture app.

Out (default to 127.0.0.1:39539, the receiver's port), one bundle per frame::

    /VMC/Ext/OK i 1
    /VMC/Ext/T f <seconds>
    /VMC/Ext/Root/Pos s "root" f px py pz qx qy qz qw
    /VMC/Ext/Bone/Pos s <HumanBodyBones name> f px py pz qx qy qz qw   (one per bone)
    /VMC/Ext/Blend/Val s <name> f <weight>                            (one per expression)
    /VMC/Ext/Blend/Apply

Coordinates are Unity's (see ``rigs.unity``, the one conversion). In (default port 39540):
the same messages build a ``PoseFrame``; a message with wrong argument types, a non-finite
number or an unknown bone or blend name is ignored and counted; rotations are made unit
length, blend weights clamped to 0..1 and the root to a stage (``rigs.pose_check``); unknown
addresses and extra arguments are ignored, as the VMC spec says. Out never sends a frame with
a non-finite number (dropped and counted).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rigs.pose import PoseFrame, Quaternion
from rigs.pose_check import (
    EXPRESSION_NAMES,
    bounded_position,
    expression_weight,
    finite_number,
    pose_is_finite,
    unit_quaternion,
)
from rigs.skeleton import BONES_BY_NAME, SKELETON, local_offset
from rigs.unity import (
    UNITY_BONE,
    VRM0_PRESET,
    VRM_BONE,
    expression_from_blend,
    position_from_unity,
    position_to_unity,
    quaternion_from_unity,
    quaternion_to_unity,
)
from streams.auth import is_loopback
from streams.osc import OscPacketError, decode_packet

log = logging.getLogger(__name__)

VMC_RECEIVER_PORT = 39539
"""Where a VMC receiver (the avatar app, "Marionette") listens: our default out port."""
VMC_PERFORMER_PORT = 39540
"""Where a VMC performer's data is received: our default in port."""

Vector = tuple[float, float, float]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class VmcOptions:
    """How poses are written as VMC."""

    blend_names: str = "vrm0"
    """``"vrm0"``: VRM 0.x presets (A, Blink_L, Joy...); ``"vrm1"``: VRM 1.0 names (aa...)."""
    hips_height_m: float = BONES_BY_NAME["hips"].rest_position_m[1]
    """Height of the hips bone above the root, sent as the Hips position."""
    bone_offsets_m: dict[str, Vector] | None = None
    """Rest local position of each bone relative to its parent (three.js axes); ``None``:
    the default avatar's skeleton (``rigs.skeleton``). Bones missing here send (0, 0, 0),
    which receivers that apply rotations only (most) ignore."""


DEFAULT_BONE_OFFSETS: dict[str, Vector] = {b.name: local_offset(b) for b in SKELETON}
"""The default avatar's rest offsets, sent when no others are configured."""


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (4 - len(data) % 4)


def osc_message(address: str, tags: str, *args: object) -> bytes:
    """Bytes of one OSC message with type tags ``tags`` (``s``, ``f``, ``i`` only)."""
    out = [_pad(address.encode()), _pad(("," + tags).encode())]
    for tag, value in zip(tags, args, strict=True):
        if tag == "s":
            out.append(_pad(str(value).encode()))
        elif tag == "f":
            out.append(struct.pack(">f", value))
        elif tag == "i":
            out.append(struct.pack(">i", value))
        else:
            raise ValueError(f"type tag {tag!r} not supported")
    return b"".join(out)


def osc_bundle(messages: list[bytes]) -> bytes:
    """An OSC bundle with timetag 'immediately' holding ``messages``."""
    parts = [b"#bundle\0", struct.pack(">Q", 1)]
    for m in messages:
        parts.append(struct.pack(">i", len(m)))
        parts.append(m)
    return b"".join(parts)


def vmc_messages(frame: PoseFrame, time_s: float, options: VmcOptions | None = None
                 ) -> list[bytes]:
    """The VMC messages of one pose frame, in the order receivers expect."""
    opts = options or VmcOptions()
    out = [osc_message("/VMC/Ext/OK", "i", 1), osc_message("/VMC/Ext/T", "f", time_s)]
    root = position_to_unity(frame.root_position_m)
    out.append(osc_message("/VMC/Ext/Root/Pos", "sfffffff", "root", *root, 0.0, 0.0, 0.0, 1.0))
    offsets = DEFAULT_BONE_OFFSETS if opts.bone_offsets_m is None else opts.bone_offsets_m
    for bone, q in frame.normalized_bones.items():
        unity = UNITY_BONE.get(bone)
        if unity is None:
            continue
        pos = (0.0, opts.hips_height_m, 0.0) if bone == "hips" else offsets.get(bone,
                                                                               (0.0, 0.0, 0.0))
        out.append(osc_message("/VMC/Ext/Bone/Pos", "sfffffff", unity,
                               *position_to_unity(pos), *quaternion_to_unity(q)))
    for name, weight in frame.expressions.items():
        blend = VRM0_PRESET.get(name, name) if opts.blend_names == "vrm0" else name
        out.append(osc_message("/VMC/Ext/Blend/Val", "sf", blend, float(weight)))
    out.append(osc_message("/VMC/Ext/Blend/Apply", ""))
    return out


def vmc_packet(frame: PoseFrame, time_s: float, options: VmcOptions | None = None) -> bytes:
    """One bundle with the whole frame (a few KB: one UDP datagram)."""
    return osc_bundle(vmc_messages(frame, time_s, options))


class VmcSender:
    """Sends pose frames as VMC bundles to ``host:port``; ``send`` never blocks (UDP)."""

    def __init__(self, host: str = "127.0.0.1", port: int = VMC_RECEIVER_PORT,
                 options: VmcOptions | None = None,
                 sample_rate_hz: int = 48000) -> None:
        self.host, self.port = host, port
        self.options = options or VmcOptions()
        self.sent = 0
        self.errors = 0
        self.rejected = 0
        """Frames not sent because a number in them was not finite (or beyond float32)."""
        self._rate = sample_rate_hz
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        """Open the UDP socket."""
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(self.host, self.port))

    def send(self, frame: PoseFrame) -> None:
        """Send one frame (a pose sink); a frame sent before ``start`` is dropped, and so is
        a frame with a non-finite number (counted in ``rejected``)."""
        if self._transport is None:
            return
        try:
            if not pose_is_finite(frame):
                raise ValueError("a non-finite number")
            packet = vmc_packet(frame, frame.t / self._rate, self.options)
        except (ValueError, OverflowError) as err:  # OverflowError: beyond float32
            self.rejected += 1
            log.warning("VMC out: dropped a pose frame at sample %d with %s (%d so far)",
                        frame.t, err, self.rejected)
            return
        try:
            self._transport.sendto(packet)
            self.sent += 1
        except OSError as err:  # no receiver yet (ICMP refused) is normal for UDP
            self.errors += 1
            log.debug("VMC send failed: %s", err)

    __call__ = send

    async def stop(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class VmcState:
    """Accumulates VMC messages into poses: bones and root as they arrive, expressions
    committed by ``/VMC/Ext/Blend/Apply`` (as a receiver applies them). A packet that changed
    the pose yields one frame.

    Every value is checked as it arrives (``rigs.pose_check``): a message with a non-finite
    number, an unknown bone or blend name, or a rotation far from unit length is ignored and
    counted; rotations are made unit length, blend weights clamped to 0..1, the root to
    ``ROOT_LIMIT_M`` (counted in ``clamped``)."""

    def __init__(self) -> None:
        self.bones: dict[str, Quaternion] = {}
        self.root_m: Vector = (0.0, 0.0, 0.0)
        self.expressions: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self.time_s = 0.0
        self.ignored = 0
        """Messages ignored: wrong argument types, non-finite numbers, unknown names."""
        self.clamped = 0
        """Messages whose root position or blend weight was out of range and clamped."""
        self.unknown = 0
        """Messages with addresses VMC does not define (ignored, as the spec says)."""

    def apply(self, address: str, values: list[object]) -> bool:
        """Apply one message; True when it changed the pose (a bone, or ``Blend/Apply``)."""
        if address == "/VMC/Ext/Bone/Pos" or address == "/VMC/Ext/Root/Pos":
            if len(values) < 8 or not isinstance(values[0], str) or not all(
                    finite_number(v) is not None for v in values[1:8]):
                self.ignored += 1
                return False
            if address == "/VMC/Ext/Root/Pos":
                position = bounded_position(values[1:4])
                if position is None:  # never: three finite numbers were checked above
                    self.ignored += 1
                    return False
                self.clamped += position != tuple(values[1:4])
                self.root_m = position_from_unity(position)
                return False
            bone = VRM_BONE.get(values[0])
            rotation = unit_quaternion(values[4:8])
            if bone is None or rotation is None:
                self.ignored += 1
                return False
            self.bones[bone] = quaternion_from_unity(rotation)
            return True
        elif address == "/VMC/Ext/Blend/Val":
            name = expression_from_blend(values[0]) if values and isinstance(
                values[0], str) else None
            weight = expression_weight(values[1]) if len(values) >= 2 else None
            if name not in EXPRESSION_NAMES or weight is None:
                self.ignored += 1
                return False
            self.clamped += weight != values[1]
            self._pending[name] = weight
        elif address == "/VMC/Ext/Blend/Apply":
            self.expressions = {**self.expressions, **self._pending}
            self._pending = {}
            return True
        elif address == "/VMC/Ext/T":
            time_s = finite_number(values[0]) if values else None
            if time_s is None:
                self.ignored += 1
            else:
                self.time_s = time_s
        elif address != "/VMC/Ext/OK":
            self.unknown += 1
        return False

    def frame(self, t: int) -> PoseFrame:
        """The pose received so far, stamped with show sample ``t``."""
        return PoseFrame(t, dict(self.bones), self.root_m, dict(self.expressions))


def allowed_senders(specs: Sequence[str]) -> tuple[IpNetwork, ...]:
    """Addresses or networks (``192.168.1.20``, ``10.0.0.0/24``, ``::1``) as networks;
    ``ValueError`` naming one that is neither."""
    out = []
    for spec in specs:
        try:
            out.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{spec!r} is not an IP address or network (a name is not "
                             "taken: it could change under the show)") from None
    return tuple(out)


class VmcReceiver:
    """Listens for VMC on UDP ``host:port`` and calls ``on_frame`` with each completed pose.

    ``now`` gives the show sample a frame is stamped with (the receive time). Malformed
    packets are counted and dropped; the receiver keeps running.

    VMC senders (VSeeFace, Warudo...) cannot send a token, so off loopback the senders are
    named instead: ``allow`` lists the addresses or networks (``192.168.1.20``,
    ``10.0.0.0/24``) whose packets are taken; a packet from anywhere else is dropped and
    counted (``refused``). A non-loopback ``host`` without ``allow`` is a ``ValueError``.
    """

    def __init__(self, on_frame: Callable[[PoseFrame], None], now: Callable[[], int],
                 host: str = "127.0.0.1", port: int = VMC_PERFORMER_PORT,
                 allow: Sequence[str] = ()) -> None:
        self.allow = allowed_senders(allow)
        if not self.allow and not is_loopback(host):
            raise ValueError(f"VMC in on {host} (not loopback) needs the senders it takes: "
                             "vmc:HOST:PORT?from=ADDR[,ADDR...] (VMC cannot carry a token)")
        self.host, self.port = host, port
        self.state = VmcState()
        self.frames = 0
        self.bad_packets = 0
        self.refused = 0
        """Packets from a sender not in ``allow`` (dropped unread)."""
        self._on_frame = on_frame
        self._now = now
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        """Bind the UDP port (``port`` 0 picks one; read ``self.port`` after)."""
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.port))
        self.port = self._transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def accepts(self, sender: str) -> bool:
        """Whether packets from address ``sender`` are taken (always, without ``allow``)."""
        if not self.allow:
            return True
        try:
            address = ipaddress.ip_address(sender.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)

    def feed(self, data: bytes) -> None:
        """Handle one datagram (called by the protocol; usable directly)."""
        try:
            messages = decode_packet(data)
        except OscPacketError as err:
            self.bad_packets += 1
            log.debug("VMC: dropped a malformed packet: %s", err)
            return
        complete = False
        for m in messages:
            complete |= self.state.apply(m.address, m.values)
        if complete:
            self.frames += 1
            self._on_frame(self.state.frame(self._now()))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, receiver: VmcReceiver) -> None:
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self._receiver.accepts(addr[0]):
            self._receiver.refused += 1
            return
        self._receiver.feed(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("VMC in: %s", exc)
