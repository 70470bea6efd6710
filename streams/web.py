"""The engine's web server: stage page, signaling, WHEP, status and a JSON cue endpoint.

Routes (all JSON errors are ``{"error": "..."}`` with a fitting status):

- ``GET /`` the stage page; ``GET /stage.js`` etc. its files; ``GET /vendor/...`` its npm
  packages; ``GET /avatar.vrm`` the avatar.
- ``POST /offer`` ``{"sdp", "type": "offer"}`` -> ``{"sdp", "type": "answer", "id"}``.
- ``POST /whep`` (``application/sdp``) -> ``201 Created``, ``Location: /whep/<id>``, the SDP
  answer; ``DELETE /whep/<id>`` ends it; ``OPTIONS``/``HEAD /whep`` to discover the endpoint.
- ``GET /perform`` the performer's page (camera -> engine); ``POST /perform/offer``
  ``{"sdp", "type": "offer"}`` -> ``{"sdp", "type": "answer", "id"}`` (409 while another
  performer is on, 404 when the show takes no camera); ``DELETE /perform/<id>`` leaves.
- ``GET /status`` the show's state; ``POST /cue`` ``{"command": "note.on", "args": {...},
  "singer": null}`` -> the reply.

With a token, every request must carry ``Authorization: Bearer <token>`` (or ``?token=``).
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path

from aiohttp import web

from streams.cue import CueError, CueHandler, make_cue
from streams.performer import PerformerBusy, PerformerDesk
from streams.viewers import OfferError, ViewerHub

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
                 ".json": "application/json", ".vrm": "model/gltf-binary",
                 ".glb": "model/gltf-binary", ".map": "application/json"}


async def _offer_sdp(request: web.Request) -> str | web.Response:
    """The SDP of a JSON ``{"type": "offer", "sdp": ...}`` body, or the 400 reply saying
    what is wrong with it."""
    try:
        body = await request.json()
    except json.JSONDecodeError as err:
        return _error(400, f"body is not JSON: {err}")
    if not isinstance(body, dict) or body.get("type") != "offer" or \
            not isinstance(body.get("sdp"), str):
        return _error(400, 'expected {"type": "offer", "sdp": "..."}')
    return str(body["sdp"])


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class WebServer:
    """aiohttp application serving one show."""

    def __init__(self, hub: ViewerHub, handler: CueHandler, *, web_root: Path,
                 avatar_path: Path, host: str = "127.0.0.1", port: int = 8080,
                 token: str | None = None, performer: PerformerDesk | None = None) -> None:
        self.hub = hub
        self.performer = performer
        self.handler = handler
        self.web_root = web_root.resolve()
        self.vendor_root = (web_root / "node_modules").resolve()
        self.avatar_path = avatar_path
        self.host, self.port, self.token = host, port, token
        self.app = web.Application(client_max_size=MAX_BODY_BYTES,
                                   middlewares=[self._auth, self._errors])
        r = self.app.router
        r.add_get("/", self._index)
        r.add_get("/avatar.vrm", self._avatar)
        r.add_get("/status", self._status)
        r.add_post("/cue", self._cue)
        r.add_post("/offer", self._offer)
        r.add_post("/whep", self._whep)
        r.add_route("OPTIONS", "/whep", self._whep_options)
        r.add_route("HEAD", "/whep", self._whep_options)
        r.add_delete("/whep/{id}", self._whep_delete)
        r.add_route("PATCH", "/whep/{id}", self._whep_patch)
        r.add_get("/perform", self._perform_page)
        r.add_post("/perform/offer", self._perform_offer)
        r.add_delete("/perform/{id}", self._perform_delete)
        r.add_get("/vendor/{path:.*}", self._vendor)
        r.add_get("/{path:[^/]+}", self._static)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (``port=0`` picks a free port, readable afterwards in ``port``)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every viewer (and the performer) and stop listening."""
        await self.hub.close_all()
        if self.performer is not None:
            await self.performer.close_all()
        if self._runner:
            await self._runner.cleanup()

    # -- middleware -------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        if self.token is None:
            return await handler(request)
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() \
            or request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _error(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
        return await handler(request)

    @web.middleware
    async def _errors(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body too large (at most {MAX_BODY_BYTES} bytes)")
        except web.HTTPException:
            raise
        except Exception:  # never a traceback to a client, never a dead server
            log.exception("error serving %s %s", request.method, request.path)
            return _error(500, "internal error (see the engine's log)")

    # -- files ------------------------------------------------------------------------

    async def _index(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self.web_root / "index.html")

    async def _avatar(self, _request: web.Request) -> web.StreamResponse:
        if not self.avatar_path.is_file():
            return _error(404, "no avatar file")
        return web.FileResponse(self.avatar_path, headers={"Content-Type": "model/gltf-binary"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        return self._file(self.web_root, request.match_info["path"], only_top=True)

    async def _vendor(self, request: web.Request) -> web.StreamResponse:
        return self._file(self.vendor_root, request.match_info["path"])

    def _file(self, root: Path, relative: str, only_top: bool = False) -> web.StreamResponse:
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or ".." in Path(relative).parts:
            return _error(403, "path outside the served folder")
        if only_top and target.suffix not in (".js", ".css", ".html"):
            return _error(404, f"no such file: {relative}")
        if not target.is_file():
            return _error(404, f"no such file: {relative}")
        content_type = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
        return web.FileResponse(target, headers={"Content-Type": content_type})

    # -- show -------------------------------------------------------------------------

    async def _status(self, _request: web.Request) -> web.Response:
        status = dict(self.handler.status())
        status["viewers"] = [v.stats() for v in self.hub.viewers.values()]
        if self.performer is not None:
            status["performer"] = self.performer.stats()
        return web.json_response(status)

    async def _cue(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as err:
            return _error(400, f"body is not JSON: {err}")
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            return _error(400, 'expected {"command": "...", "args": {...}, "singer": ...}')
        args = body.get("args") or {}
        if not isinstance(args, dict):
            return _error(400, "'args' must be an object")
        try:
            cue = make_cue(body["command"], args, singer=body.get("singer"), source="http")
            reply = await self.handler.handle(cue)
        except CueError as err:
            return _error(400, str(err))
        return web.json_response({"status": "ok", "data": reply})

    # -- WebRTC -----------------------------------------------------------------------

    async def _offer(self, request: web.Request) -> web.Response:
        sdp = await _offer_sdp(request)
        if isinstance(sdp, web.Response):
            return sdp
        try:
            viewer, answer = await self.hub.answer(sdp, kind="stage")
        except OfferError as err:
            return _error(503 if "too many" in str(err) else 400, str(err))
        return web.json_response({"type": "answer", "sdp": answer, "id": viewer.id})

    async def _whep(self, request: web.Request) -> web.Response:
        if request.content_type != "application/sdp":
            return _error(415, "WHEP wants Content-Type: application/sdp")
        sdp = await request.text()
        try:
            viewer, answer = await self.hub.answer(sdp, kind="whep")
        except OfferError as err:
            return _error(503 if "too many" in str(err) else 400, str(err))
        return web.Response(status=201, text=answer, content_type="application/sdp",
                            headers={"Location": f"/whep/{viewer.id}",
                                     "ETag": f'"{viewer.id}"'})

    async def _whep_options(self, _request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Accept-Post": "application/sdp",
                                                 "Allow": "OPTIONS, HEAD, POST"})

    async def _whep_delete(self, request: web.Request) -> web.Response:
        if await self.hub.close(request.match_info["id"]):
            return web.Response(status=200)
        return _error(404, f"no WHEP session {request.match_info['id']!r}")

    async def _whep_patch(self, request: web.Request) -> web.Response:
        if request.match_info["id"] not in self.hub.viewers:
            return _error(404, f"no WHEP session {request.match_info['id']!r}")
        return _error(405, "trickle ICE is not needed: the answer carries all candidates")

    # -- performer (camera in) --------------------------------------------------------

    async def _perform_page(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self.web_root / "perform.html",
                                headers={"Content-Type": "text/html"})

    async def _perform_offer(self, request: web.Request) -> web.Response:
        if self.performer is None:
            return _error(404, "this show takes no performer camera: start it with "
                               "'livesinger serve --mocap webrtc'")
        sdp = await _offer_sdp(request)
        if isinstance(sdp, web.Response):
            return sdp
        try:
            performer, answer = await self.performer.answer(sdp)
        except PerformerBusy as err:
            return _error(409, str(err))
        except OfferError as err:
            return _error(400, str(err))
        return web.json_response({"type": "answer", "sdp": answer, "id": performer.id})

    async def _perform_delete(self, request: web.Request) -> web.Response:
        if self.performer is not None and await self.performer.close(request.match_info["id"]):
            return web.Response(status=200)
        return _error(404, f"no performer {request.match_info['id']!r}")
