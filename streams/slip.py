"""Stream framings for OSC over TCP.

OSC 1.1 (QLab, python-osc) uses SLIP (RFC 1055): ``END`` packet ``END``; bytes ``END``
(0xC0) and ``ESC`` (0xDB) inside a packet are sent as ``ESC ESC_END`` and ``ESC ESC_ESC``.
Empty frames (two ``END`` in a row, as OSC 1.1's double-``END`` encoding produces) are skipped.
OSC 1.0 (liblo's ``osc.tcp://``) sends each packet after its length as a big-endian int32:
``LengthPrefixDecoder`` reads that, so servers can take both.
"""

from __future__ import annotations

import re
import struct

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD
MAX_FRAME_BYTES = 64 * 1024
"""Largest decoded packet accepted by default (OSC over UDP cannot carry more either)."""

_END = bytes([END])
_BAD_ESCAPE = re.compile(b"\xdb(?![\xdc\xdd])")


class SlipError(ValueError):
    """A frame that could not be decoded; the message says why."""


def encode(packet: bytes) -> bytes:
    """``packet`` as one SLIP frame, with an ``END`` before and after."""
    body = packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return _END + body + _END


def decode_frame(frame: bytes) -> bytes:
    """The packet inside one frame's bytes (without ``END``), or ``SlipError``."""
    if _BAD_ESCAPE.search(frame):
        raise SlipError("bad SLIP escape: ESC (0xDB) must be followed by 0xDC or 0xDD")
    return frame.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb")


class SlipDecoder:
    """Incremental decoder for a byte stream: ``feed(data)`` returns the frames it completed.

    Memory and work stay bounded: a frame whose decoded size grows past ``max_frame_bytes``
    is dropped as its bytes arrive (at most ``max_frame_bytes`` plus its escapes are ever
    held) and reported once as a ``SlipError`` when its ``END`` comes; ``oversize_bytes``
    says how much of the frame now arriving was dropped, so a server can close a stream
    that never ends one.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.oversize_bytes = 0
        """Bytes dropped so far of the oversized frame now arriving (0 between frames)."""
        self._buffer = bytearray()
        self._escapes = 0
        self._oversize = False

    def feed(self, data: bytes) -> list[bytes | SlipError]:
        """Decoded packets and errors, in stream order, for every frame ``data`` completes."""
        out: list[bytes | SlipError] = []
        pieces = data.split(_END)
        for piece in pieces[:-1]:  # each of these ends with an END
            out.extend(self._end_frame(piece))
        self._append(pieces[-1])
        return out

    def reset(self) -> None:
        """Forget any partial frame."""
        self._buffer.clear()
        self._escapes = 0
        self._oversize = False
        self.oversize_bytes = 0

    def _append(self, piece: bytes) -> None:
        if self._oversize:
            self.oversize_bytes += len(piece)
            return
        # each escape pair decodes to one byte: the decoded size is known without decoding
        escapes = self._escapes + piece.count(ESC)
        if len(self._buffer) + len(piece) - escapes > self.max_frame_bytes:
            self.oversize_bytes += len(self._buffer) + len(piece)
            self._buffer.clear()
            self._oversize = True
        else:
            self._buffer += piece
            self._escapes = escapes

    def _end_frame(self, piece: bytes) -> list[bytes | SlipError]:
        self._append(piece)
        oversize, raw = self._oversize, bytes(self._buffer)
        self.reset()
        if oversize:
            return [SlipError(f"frame larger than {self.max_frame_bytes} bytes")]
        if not raw:
            return []
        try:
            packet = decode_frame(raw)
        except SlipError as err:
            return [err]
        return [packet]


def encode_length_prefixed(packet: bytes) -> bytes:
    """``packet`` after its length as a big-endian int32 (OSC 1.0 over TCP)."""
    return struct.pack(">i", len(packet)) + packet


class LengthPrefixDecoder:
    """Incremental decoder for OSC 1.0 length-prefixed packets; same API as ``SlipDecoder``.

    A length beyond ``max_frame_bytes`` (or negative) leaves no way to find the next packet:
    it is reported once and ``broken`` becomes true (the connection should be closed).
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.broken = False
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes | SlipError]:
        """Packets and errors, in stream order, for every packet ``data`` completes."""
        if self.broken:
            return []
        self._buffer += data
        out: list[bytes | SlipError] = []
        while len(self._buffer) >= 4:
            size = struct.unpack_from(">i", self._buffer)[0]
            if not 0 <= size <= self.max_frame_bytes:
                self.broken = True
                self._buffer.clear()
                out.append(SlipError(f"packet length {size} (at most {self.max_frame_bytes})"))
                break
            if len(self._buffer) < 4 + size:
                break
            out.append(bytes(self._buffer[4:4 + size]))
            del self._buffer[:4 + size]
        return out
