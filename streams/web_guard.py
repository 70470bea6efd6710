"""The web server's checks at its edge, each cheap and each answered with one line.

- bodies: JSON and SDP are read only with the right ``Content-Type`` (415 otherwise), within
  the size limit (413), as UTF-8 (400), as JSON without ``NaN`` or runaway nesting (400);
- cross-site requests: a state-changing request from another origin is refused (403), and a
  show without a token answers only ``Host`` names of this machine (DNS rebinding, 403);
- sessions: ``/?token=...`` leaves an HttpOnly, SameSite=Strict cookie naming the visitor's
  rights (``view`` or ``control``), signed with a key that lives as long as the server;
(The per-client budget of refused requests is a ``streams.rate_limit.SourceLimits``.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sys
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from streams.auth import is_loopback, token_matches

Right = Literal["view", "control"]
"""``view``: the page, its files, WebRTC/WHEP viewing, status; ``control``: also cues and the
performer's camera."""

SESSION_COOKIE = "livesinger_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": ":80", "https": ":443"}


class BadRequest(Exception):
    """A request refused at the edge: ``status`` and a one-line ``message`` for the reply."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def one_line(message: str, limit: int = 300) -> str:
    """``message`` on one line of printable text, at most ``limit`` characters."""
    flat = " ".join(message.split())
    flat = "".join(c if c.isprintable() else "?" for c in flat)
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


# -- bodies ----------------------------------------------------------------------------


def _want_type(request: web.Request, wanted: str) -> None:
    if request.content_type != wanted:
        given = request.headers.get("Content-Type", "none")
        raise BadRequest(415, f"{request.method} {request.path} wants Content-Type: {wanted}, "
                              f"got {given}")
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise BadRequest(415, f"{request.method} {request.path} takes UTF-8 only, "
                              f"got charset={charset}")


async def _read(request: web.Request, what: str) -> str:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(413, f"request body too large (at most {request.client_max_size} "
                              "bytes)") from None
    except (ConnectionError, HttpProcessingError) as err:  # the client hung up mid-body
        raise BadRequest(400, f"{what} cut short: {err}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(400, f"{what} is not UTF-8 (byte {err.start}: "
                              f"{raw[err.start:err.start + 1]!r})") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: web.Request) -> object:
    """The request's JSON body (``application/json``, UTF-8), or ``BadRequest`` saying why
    not."""
    _want_type(request, "application/json")
    text = await _read(request, "body")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest(400, "body is not JSON we take: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, NaN/Infinity, integers of 4300+ digits
        raise BadRequest(400, f"body is not JSON: {err}") from None


async def read_sdp(request: web.Request) -> str:
    """The request's SDP body (``application/sdp``, UTF-8), or ``BadRequest``."""
    _want_type(request, "application/sdp")
    return await _read(request, "SDP")


def check_length(request: web.Request) -> None:
    """Refuse a declared body over the limit before a byte of it is read (413)."""
    length = request.content_length
    if length is not None and length > request.client_max_size:
        raise BadRequest(413, f"request body too large ({length} bytes, at most "
                              f"{request.client_max_size})")


# -- cross-site --------------------------------------------------------------------------


def _netloc(host: str, scheme: str) -> str:
    host = host.strip().lower()
    return host.removesuffix(DEFAULT_PORTS.get(scheme, "\0"))


def host_name(host_header: str) -> str:
    """The name or address in a ``Host`` header, without its port or IPv6 brackets."""
    host = host_header.strip()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


def cross_site_refusal(request: web.Request) -> str | None:
    """Why a state-changing request comes from another site, or ``None`` when it does not.

    Browsers send ``Origin`` (and ``Sec-Fetch-Site``) with every POST/DELETE a page makes;
    both must say this very origin. A request without them is not a page's (curl, a WHEP
    player, a console) and is left to the token."""
    if request.method in SAFE_METHODS:
        return None
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return f"cross-site {request.method} refused (Sec-Fetch-Site: {site})"
    return foreign_origin(request, request.method)


def foreign_origin(request: web.Request, what: str) -> str | None:
    """Why the request's ``Origin`` is not this server (scheme and host:port against
    ``Host``), or ``None`` when it is or when there is no ``Origin`` (not a page's request:
    left to the token). ``what`` names the refused request in the reason."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    host = request.headers.get("Host", "")
    try:
        parts = urlsplit(origin)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in DEFAULT_PORTS or \
            _netloc(parts.netloc, parts.scheme) != _netloc(host, parts.scheme):
        return (f"cross-origin {what} refused: Origin {one_line(origin, 100)} is not this "
                f"server (Host {one_line(host, 100)})")
    return None


def host_refusal(host_header: str | None, allowed: frozenset[str]) -> str | None:
    """Why a ``Host`` header names no host of this show, or ``None``: a page on another
    site that re-points its DNS name at 127.0.0.1 (DNS rebinding) sends its own name."""
    if host_header is None:
        return None
    name = host_name(host_header).lower()
    if is_loopback(name) or name in allowed:
        return None
    return (f"Host {host_header} is not a name of this server (loopback names"
            f"{', ' + ', '.join(sorted(allowed)) if allowed else ''}); refused against DNS "
            "rebinding")


# -- sessions ----------------------------------------------------------------------------


class Sessions:
    """Signed session cookies ``<right>.<mac>``: a page opened with ``?token=`` gets one, and
    its files, WebRTC offer and calls are then allowed by it. They end with the server."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _mac(self, right: Right) -> str:
        return hmac.new(self._key, right.encode(), hashlib.sha256).hexdigest()

    def cookie_for(self, right: Right) -> str:
        """The cookie value that grants ``right``."""
        return f"{right}.{self._mac(right)}"

    def right_of(self, cookie: str) -> Right | None:
        """The right a cookie grants, or ``None`` (forged, from an earlier server run)."""
        right, _, mac = cookie.partition(".")
        if right == "view" and token_matches(mac, self._mac("view")):
            return "view"
        if right == "control" and token_matches(mac, self._mac("control")):
            return "control"
        return None


def set_session(response: web.StreamResponse, cookie: str) -> None:
    """Give the browser its session cookie (not readable by scripts, never sent cross-site)."""
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="Strict", path="/")


class ClientFaultLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's own log for one server: a request it could not parse (a bad request line,
    header or chunking: the client's fault) is one DEBUG line, not an ERROR with a traceback,
    so a flood of them costs no formatting and fills no log. A fault of ours keeps its
    traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        err = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(err, HttpProcessingError):
            self.debug("%s: %s", str(msg) % args, one_line(str(err.message)))
            return
        self.error(msg, *args, exc_info=exc_info, **kwargs)
