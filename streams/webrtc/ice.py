"""ICE servers for every WebRTC peer connection the engine makes (one home for all of them).

aiortc's ``RTCPeerConnection()`` with no configuration asks Google's public STUN server for a
reflexive address: show networks are often offline, and nothing should leave the show's
network unasked. So the engine makes every peer connection with ``ice_configuration()``: no
ICE servers unless the operator names some (``serve --ice-server URL``, repeatable):

- ``stun:HOST[:PORT]``
- ``turn:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp]`` (``turns:`` for TLS over TCP); the
  user and password may be percent-encoded.

aiortc uses one STUN and one TURN server, so at most one of each is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri

SCHEMES = ("stun", "turn", "turns")


class IceServerError(ValueError):
    """An ICE server URL that cannot be used; the message says why."""


def parse_ice_server(url: str) -> RTCIceServer:
    """One ``--ice-server`` URL as an ``RTCIceServer`` (``IceServerError`` says what is wrong)."""
    scheme, sep, rest = url.partition(":")
    if not sep or scheme not in SCHEMES:
        raise IceServerError(f"{url!r}: want stun:HOST[:PORT] or "
                             "turn[s]:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp]")
    username = password = None
    if scheme != "stun":
        credentials, at, rest = rest.rpartition("@")
        user, colon, secret = credentials.partition(":")
        if not at or not colon or not user:
            raise IceServerError(f"{_redact(url)!r}: a TURN server needs USER:PASSWORD@ "
                                 "before its host")
        username, password = unquote(user), unquote(secret)
    plain = f"{scheme}:{rest}"
    try:
        parsed = parse_stun_turn_uri(plain)
    except ValueError:
        raise IceServerError(f"{_redact(url)!r}: not a {scheme}: URL "
                             "(HOST[:PORT], and for TURN ?transport=udp|tcp)") from None
    host, port = parsed.get("host"), parsed.get("port")
    if not host or not isinstance(port, int) or not 0 < port < 65536:
        raise IceServerError(f"{_redact(url)!r}: port must be 1..65535")
    allowed = {"stun": (None,), "turn": ("udp", "tcp"), "turns": ("tcp",)}[scheme]
    if parsed.get("transport") not in allowed:
        raise IceServerError(f"{_redact(url)!r}: transport must be "
                             f"{' or '.join(map(str, allowed))} for {scheme}:")
    return RTCIceServer(urls=plain, username=username, credential=password)


def ice_configuration(urls: Sequence[str] = ()) -> RTCConfiguration:
    """The configuration for a peer connection: exactly the ICE servers in ``urls`` (none by
    default, so no packet leaves for a public STUN server)."""
    servers = [parse_ice_server(url) for url in urls]
    for kind in ("stun", "turn"):
        same = [s.urls for s in servers if str(s.urls).startswith(kind)]
        if len(same) > 1:
            raise IceServerError(f"aiortc uses one {kind.upper()} server; got {len(same)}: "
                                 f"{', '.join(map(str, same))}")
    return RTCConfiguration(iceServers=servers)


def _redact(url: str) -> str:
    """``url`` without its password (error messages are printed and logged)."""
    scheme, _, rest = url.partition(":")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}:{credentials.partition(':')[0]}:***@{host}"
