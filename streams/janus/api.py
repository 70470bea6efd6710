"""Janus's HTTP API: a session, its plugin handles, keep-alives and events by long poll.

The flow (Janus 1.1): ``POST /janus {"janus":"create"}`` gives a session, ``POST /janus/S
{"janus":"attach","plugin":...}`` a handle; a plugin request goes to ``POST /janus/S/H``
and is answered at once (``success``) or acknowledged (``ack``) with its answer coming later
as an event; ``GET /janus/S?maxev=N`` waits up to 30 s for events. ``JanusSession.run()``
polls events and sends keep-alives until the session is lost; it then raises ``JanusGone``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

KEEPALIVE_S = 25.0
"""Well inside Janus's default ``session_timeout`` of 60 s."""
REQUEST_TIMEOUT_S = 10.0
POLL_TIMEOUT_S = 45.0
"""Janus answers a long poll within 30 s (a ``keepalive`` when nothing happened)."""
MAX_EVENTS = 10

Json = dict[str, Any]


class JanusError(RuntimeError):
    """Janus refused a request (``code`` is Janus's error code) or could not be reached."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class JanusGone(JanusError):
    """The session ended: Janus went away, restarted or timed the session out."""


class JanusHandle:
    """A plugin attached to a session: requests to it and the events it sends."""

    def __init__(self, session: JanusSession, handle_id: int, plugin: str) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.events: asyncio.Queue[Json] = asyncio.Queue(256)
        """Events not answering a request (``webrtcup``, ``media``, ``hangup``, plugin
        notices); the oldest is dropped when nobody reads them."""

    async def request(self, body: Json) -> Json:
        """A synchronous plugin request (``create``, ``rtp_forward``...): the plugin's answer.

        ``JanusError`` with the plugin's ``error_code`` when it refused."""
        reply = await self.session.post({"janus": "message", "body": body}, self.id)
        if reply.get("janus") != "success":
            raise JanusError(f"{self.plugin} {body.get('request')}: unexpected {reply}")
        return _plugin_data(reply, body)

    async def message(self, body: Json, jsep: Json | None = None,
                      timeout_s: float = REQUEST_TIMEOUT_S) -> tuple[Json, Json | None]:
        """An asynchronous plugin request (``joinandconfigure``, ``join``, ``start``...): the
        plugin's data and JSEP from the event that answers it."""
        message: Json = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        transaction = secrets.token_hex(8)
        answer = self.session.expect(transaction)
        try:
            reply = await self.session.post(message, self.id, transaction)
            if reply.get("janus") == "success":  # answered at once after all
                return _plugin_data(reply, body), reply.get("jsep")
            event = await asyncio.wait_for(answer, timeout_s)
        except TimeoutError:
            raise JanusError(f"{self.plugin} {body.get('request')}: no answer in "
                             f"{timeout_s:.0f} s") from None
        finally:
            self.session.forget(transaction)
        return _plugin_data(event, body), event.get("jsep")

    def deliver(self, event: Json) -> None:
        if self.events.full():
            self.events.get_nowait()
        self.events.put_nowait(event)


def _plugin_data(reply: Json, body: Json) -> Json:
    data = reply.get("plugindata", {}).get("data", {})
    if not isinstance(data, dict):
        raise JanusError(f"{body.get('request')}: no plugin data in {reply}")
    if "error_code" in data or "error" in data:
        raise JanusError(f"{body.get('request')}: {data.get('error')}",
                         data.get("error_code"))
    return data


class JanusSession:
    """One Janus session over HTTP; ``await create()`` first, then run ``run()`` beside the
    work that uses it (it raises ``JanusGone`` when the session is lost)."""

    def __init__(self, http: aiohttp.ClientSession, url: str,
                 keepalive_s: float = KEEPALIVE_S) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self.keepalive_s = keepalive_s
        self.id: int | None = None
        self.handles: dict[int, JanusHandle] = {}
        self._waiting: dict[str, asyncio.Future[Json]] = {}

    async def post(self, message: Json, handle_id: int | None = None,
                   transaction: str | None = None) -> Json:
        """Send one API message; the reply (``JanusError`` for an ``error`` reply)."""
        message = {**message, "transaction": transaction or secrets.token_hex(8)}
        url = self.url
        if self.id is not None:
            url += f"/{self.id}" + (f"/{handle_id}" if handle_id is not None else "")
        try:
            async with self.http.post(url, json=message,
                                      timeout=aiohttp.ClientTimeout(REQUEST_TIMEOUT_S)) as res:
                reply = await res.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
            raise JanusGone(f"{self.url}: {type(err).__name__}: {err}") from None
        if not isinstance(reply, dict):
            raise JanusError(f"{self.url}: unexpected reply {reply!r}")
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            code = error.get("code")
            cls = JanusGone if code == 458 else JanusError  # 458: no such session
            raise cls(f"{self.url}: {message['janus']}: {error.get('reason')}", code)
        return reply

    async def create(self) -> int:
        """Open the session (``JanusGone`` when Janus cannot be reached)."""
        reply = await self.post({"janus": "create"})
        self.id = int(reply["data"]["id"])
        return self.id

    async def attach(self, plugin: str) -> JanusHandle:
        """Attach a plugin (``janus.plugin.videoroom``, ``janus.plugin.streaming``)."""
        reply = await self.post({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(reply["data"]["id"]), plugin)
        self.handles[handle.id] = handle
        return handle

    def expect(self, transaction: str) -> asyncio.Future[Json]:
        """A future for the event answering ``transaction``."""
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        return future

    def forget(self, transaction: str) -> None:
        self._waiting.pop(transaction, None)

    async def run(self) -> None:
        """Poll events and keep the session alive until it is lost (``JanusGone``)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._run_keepalive())
            group.create_task(self._run_poll())

    async def _run_keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            await self.post({"janus": "keepalive"})

    async def _run_poll(self) -> None:
        url = f"{self.url}/{self.id}?maxev={MAX_EVENTS}"
        while True:
            try:
                async with self.http.get(url,
                                         timeout=aiohttp.ClientTimeout(POLL_TIMEOUT_S)) as res:
                    reply = await res.json(content_type=None)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
                raise JanusGone(f"{self.url}: events: {type(err).__name__}: {err}") from None
            for event in reply if isinstance(reply, list) else [reply]:
                self._dispatch(event)

    def _dispatch(self, event: Json) -> None:
        kind = event.get("janus")
        if kind == "error":
            code = event.get("error", {}).get("code")
            raise JanusGone(f"{self.url}: session {self.id}: "
                            f"{event.get('error', {}).get('reason')}", code)
        if kind == "keepalive":
            return
        if kind == "timeout":
            raise JanusGone(f"{self.url}: session {self.id} timed out")
        waiting = self._waiting.get(str(event.get("transaction")))
        if waiting is not None and not waiting.done() and kind == "event":
            waiting.set_result(event)
            return
        handle = self.handles.get(int(event.get("sender", 0) or 0))
        if handle is not None:
            handle.deliver(event)

    async def destroy(self) -> None:
        """End the session (nothing is raised if Janus is already gone)."""
        if self.id is None:
            return
        with contextlib.suppress(JanusError):
            await self.post({"janus": "destroy"})
        self.id = None
