"""A congestion window for a show's data channels that never holds real-time data back.

aiortc's SCTP grows its congestion window only while the window is full when a SACK comes
(RFC 9260's rule for a sender with more to send). A show's data channels never fill it: they
carry a steady ~25 kB/s (the pose at 60 Hz, the voice every 10 ms), so the window stays at
its initial ~4 kB, about 170 ms of the show's traffic. Whenever SACKs come that much late (the
page's process not run for a moment, the engine's loop busy handling them), every voice frame
waits in aiortc's queue and the lot leaves in one burst once a SACK arrives: measured on the
stage page's voice channel (2026-12, ``docs/web.md``), up to ~170 ms of delay, which emptied
the page's buffer although the engine handed out every frame on time.

``keep_window_open(pc)`` gives a peer connection's association a window floor of
``REALTIME_WINDOW_BYTES`` (seconds of the show's traffic): the rate is the show's, fixed by
the show clock, so the window only decides whether frames wait for late SACKs, and they
should not. Loss still halves the window above the floor. This overrides one private method
of aiortc's ``RTCSctpTransport`` (pinned in ``pyproject.toml``); ``keep_window_open`` raises
if the transport no longer has the attributes it relies on.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.rtcsctptransport import RTCSctpTransport

REALTIME_WINDOW_BYTES = 128 * 1024
"""The congestion window's floor: ~5 s of a show's pose and voice."""


class _RealtimeSctpTransport(RTCSctpTransport):
    """aiortc's SCTP association with a congestion window that stays at least the floor."""

    _window_floor = REALTIME_WINDOW_BYTES

    async def _transmit(self) -> None:
        self._cwnd = max(getattr(self, "_cwnd", 0), self._window_floor)
        self._ssthresh = max(getattr(self, "_ssthresh", 0), self._window_floor)
        await super()._transmit()


def keep_window_open(pc: RTCPeerConnection) -> bool:
    """Give ``pc``'s SCTP association (if it has one yet) the real-time window floor;
    False when it has no association (an offer without data channels)."""
    transport = pc.sctp
    if transport is None:
        return False
    if not callable(getattr(RTCSctpTransport, "_transmit", None)):
        raise RuntimeError("aiortc's RTCSctpTransport changed: it has no _transmit to hold "
                           "the congestion window open in")
    if type(transport) is RTCSctpTransport:
        transport.__class__ = _RealtimeSctpTransport
    return True
