"""MQTT control in and status out (aiomqtt), for shows driven from a broker.

Topics under ``livesinger/<show>/`` (``docs/mqtt.md``): commands on ``cmd/<path>`` where
``<path>`` is an OSC address without ``/livesinger/`` (``cmd/note/on``,
``cmd/singer/alto/expr/vibrato_depth``, ``cmd/go``) and the payload a JSON object of the
command's arguments; replies on ``reply`` (or the payload's ``reply_to``); the show's state,
retained, on ``state``; ``online`` retained ``true``/``false`` (the last will says ``false``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import ssl
from collections import Counter, OrderedDict
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt

from streams.auth import is_loopback, token_matches
from streams.cue import CueError, CueHandler, make_cue, name
from streams.osc_address import AUTH, UnknownAddress, resolve, shown

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_IDS = 1000
"""Command ids remembered to refuse a second application (the oldest is forgotten first)."""
INCOMING_QUEUE = 1000
"""Commands waiting to be handled; aiomqtt drops (and logs) any beyond this."""
RESERVED = ("id", "reply_to", "token")


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """Where the broker is and how to log in: ``mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]``."""

    host: str
    port: int
    """1..65535; 1883 for ``mqtt://``, 8883 for ``mqtts://`` when the URL gives none."""
    tls: bool
    """``mqtts://``: TLS, the broker's certificate checked against the system's CAs (or the
    file ``SSL_CERT_FILE`` names) and its host name."""
    username: str | None = None
    password: str | None = None


def parse_url(url: str) -> MqttUrl:
    """The parts of a broker URL (percent-decoded credentials); ``ValueError`` says what is
    wrong."""
    want = "want mqtt://[USER[:PASSWORD]@]HOST[:PORT] (mqtts:// for TLS)"
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{_redact(url)!r}: {want}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{_redact(url)!r}: {want}; nothing may follow the port")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{_redact(url)!r}: port must be 1..65535") from None
    if port == 0:
        raise ValueError(f"{_redact(url)!r}: port must be 1..65535")
    tls = parts.scheme == "mqtts"
    return MqttUrl(parts.hostname, port or (8883 if tls else 1883), tls,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password is not None else None)


def _redact(url: str) -> str:
    """``url`` with its password hidden (error messages are printed and logged)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class MqttBridge:
    """Commands from an MQTT broker to ``handler``; the show's state back to the broker.

    Counters: ``messages_ok`` (cues the handler accepted), ``duplicates`` (commands whose id was
    already applied), ``errors`` by reason (``bad_payload``, ``unknown_topic``,
    ``bad_arguments``, ``refused``, ``unauthorised``, ``retained``, ``internal``, ``status``),
    ``outages`` (times the broker went away or could not be reached); ``connected``.
    """

    def __init__(self, handler: CueHandler, url: str = "mqtt://127.0.0.1:1883",
                 show: str = "default", token: str | None = None, *,
                 state_period_s: float = 1.0) -> None:
        parts = parse_url(url)
        if token is not None and not token:
            raise ValueError("the MQTT token must not be empty")
        try:
            self.show = name(show, "show")
        except CueError as err:
            raise ValueError(str(err)) from None
        self.host, self.port = parts.host, parts.port
        self._username, self._password = parts.username, parts.password
        self._tls = parts.tls
        if token is None and self._username is None and not is_loopback(self.host):
            raise ValueError(f"MQTT broker {self.host} is not on loopback: give a token (or "
                             "broker credentials) so that not everyone on it can drive the show")
        self.handler = handler
        self.token = token
        self.state_period_s = state_period_s
        self.prefix = f"livesinger/{self.show}"
        self.topics = {"online": f"{self.prefix}/online", "state": f"{self.prefix}/state",
                       "reply": f"{self.prefix}/reply", "cmd": f"{self.prefix}/cmd/#"}
        self.messages_ok = 0
        self.duplicates = 0
        self.outages = 0
        self.connected = False
        self.errors: Counter[str] = Counter()
        self._applied: OrderedDict[str, object] = OrderedDict()
        self._state_due = asyncio.Event()

    def counters(self) -> dict[str, object]:
        """The counters as one JSON-ready dict."""
        return {"connected": self.connected, "messages_ok": self.messages_ok,
                "duplicates": self.duplicates, "outages": self.outages,
                "errors": dict(self.errors)}

    async def run(self) -> None:
        """Stay connected (reconnecting with backoff) and serve until cancelled."""
        delay = BACKOFF_MIN_S
        in_outage = False
        me = asyncio.current_task()
        while True:
            # Each connection lives in a task of its own: aiomqtt may swallow a cancellation
            # (or turn it into an MqttError) inside it, but our own task's count of cancel
            # requests is untouched by that, so a stop always stays a stop.
            attempt = asyncio.ensure_future(self._connect_and_serve(in_outage))
            try:
                was_connected, failure = await attempt
            finally:
                if not attempt.done():
                    attempt.cancel()
            if me is not None and me.cancelling():
                raise asyncio.CancelledError
            if was_connected:
                in_outage, delay = False, BACKOFF_MIN_S
            if not in_outage:
                self.outages += 1
                log.warning("MQTT broker %s:%d unreachable (%s); retrying with backoff up to "
                            "%g s", self.host, self.port, failure, BACKOFF_MAX_S)
                in_outage = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _connect_and_serve(self, in_outage: bool) -> tuple[bool, BaseException | None]:
        """One connection, served until it fails: (whether it connected, why it ended)."""
        connected, failure = False, None
        try:
            async with self._client() as client:
                self.connected = connected = True
                if in_outage:
                    log.info("MQTT broker %s:%d is back", self.host, self.port)
                await self._session(client)
        except* aiomqtt.MqttError as group:
            failure = group.exceptions[0]
        finally:
            self.connected = False
        return connected, failure

    # -- one connection ----------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.host, self.port, username=self._username, password=self._password,
            identifier=f"livesinger-{self.show}-{os.getpid()}-{secrets.token_hex(3)}",
            will=aiomqtt.Will(self.topics["online"], "false", qos=1, retain=True),
            keepalive=10, timeout=5, max_queued_incoming_messages=INCOMING_QUEUE,
            tls_context=ssl.create_default_context() if self._tls else None)

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.publish(self.topics["online"], "true", qos=1, retain=True)
        await client.subscribe(self.topics["cmd"], qos=0)
        log.info("MQTT connected to %s:%d, show %r", self.host, self.port, self.show)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._run_state(client))
                group.create_task(self._run_commands(client))
        except asyncio.CancelledError:  # a clean stop: the will is not sent, so say it
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(
                    client.publish(self.topics["online"], "false", qos=1, retain=True), 1.0)
            raise

    async def _run_state(self, client: aiomqtt.Client) -> None:
        try:
            while True:
                await self._publish_state(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._state_due.wait(), self.state_period_s)
                self._state_due.clear()
        finally:
            log.debug("MQTT state loop exited")

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        try:
            state = json.dumps(self.handler.status(), default=str, allow_nan=False)
        except Exception:  # an engine bug must not take MQTT down; it is logged loudly
            self.errors["status"] += 1
            log.exception("MQTT: the show's status() failed")
            return
        await client.publish(self.topics["state"], state, qos=0, retain=True)

    async def _run_commands(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                topic = message.topic.value
                payload = message.payload if isinstance(message.payload, bytes) else b""
                reply: dict[str, object]
                if message.retain:  # a stale command kept by the broker: never replay it
                    self.errors["retained"] += 1
                    reply_topic, reply = self.topics["reply"], {
                        "topic": topic, "status": "error",
                        "error": "retained command ignored (publish commands without retain)"}
                else:
                    reply_topic, reply = await self.command(topic, payload)
                await client.publish(reply_topic, json.dumps(reply, default=str), qos=0)
        finally:
            log.debug("MQTT command loop exited")

    # -- commands ----------------------------------------------------------------------------

    async def command(self, topic: str, payload: bytes) -> tuple[str, dict[str, object]]:
        """Apply one command; returns (reply topic, reply object). Never raises for bad input."""
        reply_topic = self.topics["reply"]
        reply: dict[str, object] = {"topic": topic}
        try:
            fields = _payload(payload)
            self._check_token(fields.pop("token", None))
            reply_topic = self._reply_to(fields.pop("reply_to", None)) or reply_topic
            raw_id = fields.pop("id", None)
            cue_id = _cue_id(raw_id)
            if cue_id is not None:
                reply["id"] = raw_id
            if cue_id is not None and cue_id in self._applied:
                self.duplicates += 1
                reply.update(status="ok", data=self._applied[cue_id], duplicate=True)
                return reply_topic, reply
            data = await self._apply(topic, fields)
        except _Failure as err:
            self.errors[err.reason] += 1
            log.debug("MQTT %s: %s", topic, err)
            reply.update(status="error", error=str(err))
            return reply_topic, reply
        if cue_id is not None:
            self._applied[cue_id] = data
            while len(self._applied) > MAX_IDS:
                self._applied.popitem(last=False)
        self.messages_ok += 1
        self._state_due.set()
        reply.update(status="ok", data=data)
        return reply_topic, reply

    async def _apply(self, topic: str, fields: dict[str, object]) -> object:
        cmd = self.topics["cmd"][:-1]
        if not topic.startswith(cmd):
            raise _Failure("unknown_topic",
                           f"unknown topic {shown(topic)} (see docs/mqtt.md)")
        try:
            route = resolve("/livesinger/" + topic[len(cmd):])
            if route.kind == AUTH:
                raise UnknownAddress(topic)
        except UnknownAddress:
            raise _Failure("unknown_topic",
                           f"unknown topic {shown(topic)} (see docs/mqtt.md)") from None
        except CueError as err:
            raise _Failure("unknown_topic", str(err)) from None
        names = [p.name for p in route.params]
        extra = sorted(set(fields) - set(names))
        missing = [p.name for p in route.params if not p.optional and p.name not in fields]
        if extra or missing:
            problem = (f"unknown field {', '.join(map(repr, extra))}" if extra
                       else f"missing field {', '.join(map(repr, missing))}")
            raise _Failure("bad_arguments",
                           f"{shown(topic)}: {problem}; fields: {route.signature}")
        try:
            cue = make_cue(route.kind, {**route.fixed, **fields}, singer=route.singer,
                           source=f"mqtt {topic}")
        except CueError as err:
            raise _Failure("bad_arguments", f"{shown(topic)}: {err}") from None
        try:
            return await self.handler.handle(cue)
        except CueError as err:
            raise _Failure("refused", str(err)) from None
        except Exception as err:  # an engine bug must not take MQTT down; it is logged loudly
            log.exception("MQTT: handling %s failed", cue)
            raise _Failure("internal", f"internal error: {err}") from None

    def _check_token(self, given: object) -> None:
        if self.token is None:
            return
        if not token_matches(given, self.token):
            raise _Failure("unauthorised", "not authorised: the payload needs \"token\"")

    def _reply_to(self, value: object) -> str | None:
        if value is None:
            return None
        if (not isinstance(value, str) or not value or len(value) > 256
                or any(c in value for c in "#+\0") or value.startswith(self.prefix + "/cmd")):
            raise _Failure("bad_payload", f"reply_to must be a plain topic outside "
                           f"{self.prefix}/cmd, got {value!r}")
        return value


class _Failure(Exception):
    """A command that failed, with the counter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _payload(payload: bytes) -> dict[str, object]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _Failure("bad_payload", f"payload of {len(payload)} bytes "
                       f"(at most {MAX_PAYLOAD_BYTES})")
    if not payload.strip():
        return {}
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise _Failure("bad_payload", f"payload is not JSON: {err}") from None
    if not isinstance(value, dict):
        raise _Failure("bad_payload", f"payload must be a JSON object, got "
                       f"{type(value).__name__}")
    return value


def _cue_id(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 128:
        raise _Failure("bad_payload", f"id must be a string or an integer, got {value!r}")
    return str(value)
