"""OSC control in: UDP and TCP (OSC 1.1 SLIP framing) on one port, QLab-style replies.

Every message is validated into a ``Cue`` (``streams.osc_address`` holds the address space,
``docs/osc.md`` documents it) and handed to the show's ``CueHandler``. Each message is
answered, to the sender, by ``/reply/<address>`` with one string argument: the JSON object
``{"address": ..., "status": "ok" | "error", "data": ...}`` (``data`` is the handler's reply
or the error message). Nothing a sender does can stop the server: bad packets are counted,
answered and dropped; the UDP queue is bounded and drops (and counts) on overflow.

Floods stay cheap: sizes are checked before anything is decoded, a packet holds at most
``MAX_MESSAGES`` messages of at most ``MAX_ARGUMENTS`` arguments in bundles at most
``MAX_BUNDLE_DEPTH`` deep, and every error a source causes spends a token of its own bucket
(``ERROR_BURST``, refilled at ``ERROR_RATE_PER_S``): while it is empty its errors are counted
but neither answered nor logged (its valid messages still apply: a console with one fader on a
wrong address keeps working), and a TCP connection is closed. A source that is neither on
loopback nor authorised never gets more reply bytes than it sent, so the server cannot be used
to amplify a spoofed flood.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from types import TracebackType

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from streams import slip
from streams.auth import is_loopback, token_matches  # is_loopback re-exported here
from streams.cue import CueError, CueHandler
from streams.listen import ListenError
from streams.osc_address import AUTH, Route, resolve
from streams.rate_limit import SourceLimits

log = logging.getLogger(__name__)

MAX_PACKET_BYTES = 64 * 1024
"""Largest OSC packet accepted (a UDP datagram cannot be larger; TCP frames are cut here)."""
QUEUE_SIZE = 1024
"""UDP packets waiting to be handled; more are dropped and counted as ``queue_full``."""
MAX_TCP_CONNECTIONS = 64
MAX_BAD_FRAMES = 16
"""Consecutive unparseable frames after which a TCP connection is closed."""
MAX_BUNDLE_DEPTH = 8
MAX_MESSAGES = 64
"""Messages in one packet (all bundles in it together); more and the packet is refused."""
MAX_ARGUMENTS = 32
"""Arguments of one message (no command takes more than three)."""
ERROR_BURST = 32
"""Error replies one source may get in a burst..."""
ERROR_RATE_PER_S = 16.0
"""...and per second after it; past that its errors go unanswered (a TCP connection is
closed)."""
MAX_SOURCES = 1024
"""Sources whose error buckets are remembered (the least recently seen is forgotten)."""
MAX_OVERSIZE_BYTES = 64 * MAX_PACKET_BYTES
"""Bytes of one oversized SLIP frame a TCP connection may send before it is closed (it is
dropped as it arrives; this only ends a frame that never ends)."""
MAX_AUTHORISED = 1024
"""UDP senders remembered as authorised (the oldest is forgotten first)."""
NOT_AUTHORISED = "not authorised: send /livesinger/auth <token> first"
_AUTH_PREFIXES = (b"/livesinger/auth\0", b"/connect\0")

Reply = Callable[[bytes], None]


class OscPacketError(ValueError):
    """A packet that is not well-formed OSC; the message says where it went wrong."""


@dataclass(frozen=True, slots=True)
class OscIn:
    """One decoded message: address, type tags (without ``,``), values, timetag."""

    address: str
    tags: str
    values: list[object]
    unix_s: float | None
    """Unix time a bundle asked for when it lies in the future, else ``None`` (now)."""


def decode_packet(data: bytes) -> list[OscIn]:
    """Every message in an OSC packet (message or bundle), strictly checked.

    python-osc parses; a stricter walk first refuses what it would let through or loop on
    (unknown type tags, trailing bytes, lengths not a multiple of 4, negative sizes, deep
    bundles, too many messages or arguments). Raises ``OscPacketError``.
    """
    if len(data) > MAX_PACKET_BYTES:
        raise OscPacketError(f"packet of {len(data)} bytes (at most {MAX_PACKET_BYTES})")
    _check(data, 0, [MAX_MESSAGES])
    try:
        packet = OscPacket(data)
    except Exception as err:  # python-osc raises several types on bad input
        raise OscPacketError(f"could not parse: {err}") from err
    after = time.time()
    out = []
    for timed in packet.messages:
        message = timed.message
        address, i = _string(message.dgram, 0, "address")
        tags = _string(message.dgram, i, "type tags")[0][1:] if i < len(message.dgram) else ""
        out.append(OscIn(address, tags, message.params,
                         timed.time if timed.time > after else None))
    return out


def build_reply(address: str | None, status: str, data: object) -> bytes:
    """``/reply/<address>`` with the JSON reply string (``/reply`` if the address is unknown)."""
    body = json.dumps({"address": address, "status": status, "data": data}, default=str)
    builder = OscMessageBuilder("/reply" + (address or "")[:256])
    builder.add_arg(body, "s")
    return builder.build().dgram


def read_address(data: bytes) -> str | None:
    """The address at the start of a (possibly broken) message, if one can be read."""
    end = data.find(b"\0", 0, 1024)
    if not data.startswith(b"/") or end < 0:
        return None
    try:
        return data[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


class OscServer:
    """OSC over UDP and TCP/SLIP on ``host:port``, feeding ``handler``.

    Counters: ``messages_ok`` (cues the handler accepted), ``bad_packets`` (packets or frames
    that were not OSC), ``errors`` (by reason: ``bad_packet``, ``bad_frame``,
    ``unknown_address``, ``bad_arguments``, ``refused``, ``unauthorised``, ``queue_full``,
    ``internal``, ``connection_closed`` — TCP connections closed for garbage —,
    ``too_many_connections``) and ``replies_dropped`` (replies not sent: past the source's
    error budget, or larger than what an unauthorised remote source sent).
    """

    def __init__(self, handler: CueHandler, host: str = "127.0.0.1", port: int = 9000,
                 token: str | None = None, *, queue_size: int = QUEUE_SIZE) -> None:
        if token is not None and not token:
            raise ValueError("the OSC token must not be empty")
        if token is None and not is_loopback(host):
            raise ValueError(f"OSC on {host} (not loopback) needs a token: anyone who can reach "
                             "it could drive the show")
        self.handler = handler
        self.host = host
        self.port = port
        """The bound port after ``start()`` (``port=0`` picks a free one)."""
        self.token = token
        self.messages_ok = 0
        self.bad_packets = 0
        self.replies_dropped = 0
        self.errors: Counter[str] = Counter()
        self._limits = SourceLimits(ERROR_RATE_PER_S, ERROR_BURST, MAX_SOURCES)
        self._queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(queue_size)
        self._authorised: OrderedDict[Hashable, None] = OrderedDict()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._udp_task: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[object]] = set()
        self._serial = itertools.count(1)
        self._dropping = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind UDP and TCP on the same port and start serving (``ListenError`` if either
        cannot be bound; nothing is left open then)."""
        loop = asyncio.get_running_loop()
        for _attempt in range(20):  # port 0: the free UDP port may be taken on TCP
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.host, self.port))
            except OSError as err:
                raise ListenError("OSC", self.host, self.port, "udp", err) from None
            bound = int(transport.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(self._on_connection, self.host, bound)
            except OSError as err:
                transport.close()
                if self.port != 0:
                    raise ListenError("OSC", self.host, self.port, "tcp", err) from None
                continue
            self._udp, self.port = transport, bound
            break
        else:
            raise ListenError("OSC", self.host, 0, "udp+tcp",
                              OSError("no port free on both UDP and TCP"))
        self._udp_task = asyncio.create_task(self._run_udp(), name="osc-udp")
        log.info("OSC on %s:%d (udp+tcp)%s", self.host, self.port,
                 " with token" if self.token else "")

    async def stop(self) -> None:
        """Stop listening, close every TCP connection and wait for the loops to end."""
        if self._tcp is not None:
            self._tcp.close()
        tasks: list[asyncio.Task[object] | asyncio.Task[None]] = [*self._connections]
        if self._udp_task is not None:
            tasks.append(self._udp_task)
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):  # a bug: say so, but finish stopping
                log.error("OSC loop had failed: %r", result)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        if self._udp is not None:
            self._udp.close()
        self._tcp = self._udp = self._udp_task = None

    async def __aenter__(self) -> OscServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    def counters(self) -> dict[str, object]:
        """The counters as one JSON-ready dict."""
        return {"messages_ok": self.messages_ok, "bad_packets": self.bad_packets,
                "replies_dropped": self.replies_dropped, "errors": dict(self.errors)}

    # -- UDP ---------------------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        """Called by the protocol for each datagram: enqueue it, never block."""
        key = ("udp", addr[0], addr[1])
        if (self.token is not None and key not in self._authorised
                and not data.startswith(_AUTH_PREFIXES)):  # refuse floods before queueing
            self.errors["unauthorised"] += 1
            gate = _ReplyGate(self, key, addr[0], len(data),
                              functools.partial(self._udp_reply, addr))
            gate.error(lambda: build_reply(read_address(data), "error", NOT_AUTHORISED))
            return
        try:
            self._queue.put_nowait((data, addr))
        except asyncio.QueueFull:
            self.errors["queue_full"] += 1
            if not self._dropping:
                log.warning("OSC queue full (%d packets): dropping packets", self._queue.maxsize)
                self._dropping = True

    def _udp_reply(self, addr: tuple[str, int], packet: bytes) -> None:
        if self._udp is not None and not self._udp.is_closing():
            try:
                self._udp.sendto(packet, addr)
            except OSError as err:  # the sender went away; nothing to tell it
                log.debug("OSC reply to %s failed: %s", addr, err)

    async def _run_udp(self) -> None:
        try:
            while True:
                data, addr = await self._queue.get()
                gate = _ReplyGate(self, ("udp", addr[0], addr[1]), addr[0], len(data),
                                  functools.partial(self._udp_reply, addr))
                await self._process(data, gate, f"osc-udp {addr[0]}:{addr[1]}")
                if self._queue.empty():
                    self._dropping = False
                await asyncio.sleep(0)  # let the rest of the show run between packets
        finally:
            log.debug("OSC UDP loop exited")

    # -- TCP ---------------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._connections) >= MAX_TCP_CONNECTIONS:
            self.errors["too_many_connections"] += 1
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._run_tcp(reader, writer)
        finally:
            self._connections.discard(task)

    async def _run_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = ("tcp", next(self._serial))
        peer = writer.get_extra_info("peername") or ("?", 0)
        source = f"osc-tcp {peer[0]}:{peer[1]}"
        decoder: slip.SlipDecoder | slip.LengthPrefixDecoder | None = None
        encode = slip.encode

        def reply(packet: bytes) -> None:
            if not writer.is_closing():
                writer.write(encode(packet))

        bad = 0
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if decoder is None:  # OSC 1.0 length prefix (liblo) starts with a 0 byte
                    if chunk[0] == 0:
                        decoder = slip.LengthPrefixDecoder(MAX_PACKET_BYTES)
                        encode = slip.encode_length_prefixed
                    else:
                        decoder = slip.SlipDecoder(MAX_PACKET_BYTES)
                for item in decoder.feed(chunk):
                    if isinstance(item, slip.SlipError):
                        self.bad_packets += 1
                        self.errors["bad_frame"] += 1
                        gate = _ReplyGate(self, key, str(peer[0]), 0, reply)
                        gate.error(functools.partial(build_reply, None, "error",
                                                     f"bad frame: {item}"))
                        bad += 1
                    else:
                        gate = _ReplyGate(self, key, str(peer[0]), len(item), reply)
                        bad = 0 if await self._process(item, gate, source) else bad + 1
                    if bad >= MAX_BAD_FRAMES or not self._limits.ready(key):
                        break
                    await asyncio.sleep(0)
                await asyncio.wait_for(writer.drain(), 5.0)
                if (bad >= MAX_BAD_FRAMES or not self._limits.ready(key)
                        or isinstance(decoder, slip.SlipDecoder)
                        and decoder.oversize_bytes > MAX_OVERSIZE_BYTES):
                    self.errors["connection_closed"] += 1
                    log.debug("OSC %s: garbage (%d bad frames in a row), closing", source, bad)
                    break
                if isinstance(decoder, slip.LengthPrefixDecoder) and decoder.broken:
                    break
        except (ConnectionError, TimeoutError) as err:
            log.debug("OSC %s: connection ended: %r", source, err)
        finally:
            self._authorised.pop(key, None)
            self._limits.forget(key)
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (ConnectionError, TimeoutError):
                pass

    # -- messages ----------------------------------------------------------------------------

    async def _process(self, data: bytes, gate: _ReplyGate, source: str) -> bool:
        """Handle one packet and answer each of its messages; ``False`` if it was not OSC."""
        try:
            messages = decode_packet(data)
        except OscPacketError as err:
            self.bad_packets += 1
            self.errors["bad_packet"] += 1
            problem = f"bad packet: {err}"
            gate.error(lambda: build_reply(read_address(data), "error", problem))
            return False
        for message in messages:
            try:
                status, data_out, reason = await self._message(message, gate.key, source)
            except Exception as err:  # a bug here must not stop the server; logged loudly
                log.exception("OSC %s: %s failed", source, message.address)
                status, data_out, reason = "error", f"internal error: {err}", "internal"
            address = message.address
            if reason:
                self.errors[reason] += 1
                gate.error(functools.partial(build_reply, address, status, data_out))
            else:
                gate.ok(build_reply(address, status, data_out))
        return True

    async def _message(self, m: OscIn, key: Hashable, source: str) -> tuple[str, object, str]:
        """(status, reply data, error reason or "") for one message."""
        try:
            route = resolve(m.address)
        except CueError as err:
            return "error", str(err), "unknown_address"
        if route.kind == AUTH:
            return self._auth(route, m, key)
        if self.token is not None and key not in self._authorised:
            return "error", NOT_AUTHORISED, "unauthorised"
        try:
            at = None if m.unix_s is None else self.handler.show_sample_at_unix(m.unix_s)
            cue = route.osc_cue(m.address, m.tags, m.values, at_sample=at, source=source)
        except CueError as err:
            return "error", str(err), "bad_arguments"
        try:
            data = await self.handler.handle(cue)
        except CueError as err:
            return "error", str(err), "refused"
        except Exception as err:  # an engine bug must not take OSC down; it is logged loudly
            log.exception("OSC %s: handling %s failed", source, cue)
            return "error", f"internal error: {err}", "internal"
        self.messages_ok += 1
        return "ok", data, ""

    def _auth(self, route: Route, m: OscIn, key: Hashable) -> tuple[str, object, str]:
        try:
            given = str(route.osc_args(m.address, m.tags, m.values)["token"])
        except CueError as err:
            return "error", str(err), "bad_arguments"
        if self.token is None:
            return "ok", "no token needed", ""
        if not token_matches(given, self.token):
            return "error", "wrong token", "unauthorised"
        self._authorised[key] = None
        self._authorised.move_to_end(key)
        while len(self._authorised) > MAX_AUTHORISED:
            self._authorised.popitem(last=False)
        return "ok", "authorised", ""


class _ReplyGate:
    """What may go back to the sender of one packet.

    An error spends a token of the source's bucket and is answered only if there was one; a
    source neither on loopback nor authorised gets at most as many reply bytes as the packet
    it sent (so the server amplifies nothing). Replies held back are counted.
    """

    __slots__ = ("_server", "key", "_host", "_budget", "_send")

    def __init__(self, server: OscServer, key: Hashable, host: str, request_bytes: int,
                 send: Reply) -> None:
        self._server, self.key, self._host = server, key, host
        self._budget = request_bytes
        self._send = send

    def ok(self, packet: bytes) -> None:
        """Answer a message that was handled."""
        self._reply(packet)

    def error(self, build: Callable[[], bytes]) -> None:
        """Count an error against the source and answer it if its budget allows (``build``
        makes the reply, and it is logged, only then)."""
        if not self._server._limits.take(self.key):
            self._server.replies_dropped += 1
            return
        packet = build()
        log.debug("OSC %s: error reply of %d bytes", self.key, len(packet))
        self._reply(packet)

    def _reply(self, packet: bytes) -> None:
        server = self._server
        if not is_loopback(self._host) and self.key not in server._authorised:
            if len(packet) > self._budget:
                server.replies_dropped += 1
                return
            self._budget -= len(packet)
        self._send(packet)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: OscServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._server._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("OSC UDP socket error: %s", exc)  # e.g. a reply to a closed client port


def _check(data: bytes, depth: int, budget: list[int]) -> None:
    """Walk one message or bundle; ``budget`` holds how many more messages may follow."""
    if len(data) % 4:
        raise OscPacketError(f"length {len(data)} is not a multiple of 4")
    if data.startswith(b"#bundle\0"):
        if depth >= MAX_BUNDLE_DEPTH:
            raise OscPacketError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        if len(data) < 16:
            raise OscPacketError("bundle shorter than its header (#bundle and a timetag)")
        i = 16
        while i < len(data):
            size = int.from_bytes(data[i:i + 4], "big", signed=True)
            i += 4
            if size <= 0 or size % 4 or i + size > len(data):
                raise OscPacketError(f"bundle element of {size} bytes does not fit the bundle")
            _check(data[i:i + size], depth + 1, budget)
            i += size
        return
    if not data.startswith(b"/"):
        raise OscPacketError("not an OSC message or bundle (must start with '/' or '#bundle')")
    budget[0] -= 1
    if budget[0] < 0:
        raise OscPacketError(f"more than {MAX_MESSAGES} messages in one packet")
    _, i = _string(data, 0, "address")
    if i == len(data):
        return  # no type tag string: no arguments (OSC 1.0)
    tags, i = _string(data, i, "type tag string")
    if not tags.startswith(","):
        raise OscPacketError(f"type tag string {tags[:20]!r} must start with ','")
    if len(tags) - 1 > MAX_ARGUMENTS:
        raise OscPacketError(f"{len(tags) - 1} arguments (at most {MAX_ARGUMENTS})")
    for tag in tags[1:]:
        if tag in "ifrm":
            i += 4
        elif tag in "hdt":
            i += 8
        elif tag == "s":
            _, i = _string(data, i, "string argument")
        elif tag == "b":
            size = int.from_bytes(data[i:i + 4], "big", signed=True)
            if size < 0 or i + 4 + size > len(data):
                raise OscPacketError(f"blob of {size} bytes does not fit the packet")
            i += 4 + size + (-size % 4)
        elif tag not in "TFN[]":
            raise OscPacketError(f"unsupported type tag {tag!r} in ',{tags[1:20]}'")
        if i > len(data):
            raise OscPacketError(f"truncated: arguments ',{tags[1:20]}' need more bytes")
    if i != len(data):
        raise OscPacketError(f"{len(data) - i} stray bytes after the last argument")


def _string(data: bytes, start: int, what: str) -> tuple[str, int]:
    end = data.find(b"\0", start)
    if end < 0:
        raise OscPacketError(f"{what} is not terminated by a NUL byte")
    stop = end + 1 + (-(end + 1 - start) % 4)
    if stop > len(data) or data[end:stop].strip(b"\0"):
        raise OscPacketError(f"{what} is not padded with NUL to a multiple of 4 bytes")
    try:
        return data[start:end].decode("utf-8"), stop
    except UnicodeDecodeError as err:
        raise OscPacketError(f"{what} is not UTF-8: {err}") from err
