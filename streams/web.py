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
- ``GET /director`` the director's console (its page and files open to all: it holds a login
  field); ``POST /director/login`` ``{"token"}`` sets the session for a control token;
  ``GET /director/session`` says whether the session may direct; ``GET /director/ws`` the
  console's WebSocket (``streams.director_socket``); ``GET /director/cues.yaml`` the cue list
  in the ``--cues`` file format (docs/director.md).

Rights (docs/web.md): with a ``token`` every request needs it or the ``viewer_token``, as
``Authorization: Bearer <token>``, ``?token=`` (which also sets a session cookie, so the page's
files and calls are allowed) or that cookie. The viewer token watches (page, files, ``/offer``,
WHEP, ``/status``); only the control token cues (``/cue``), directs (``/director/...``) and
performs (``/perform``).
Every request is checked at the edge first (``streams.web_guard``): size, content type,
UTF-8, same origin for state-changing requests, ``Host`` names without a token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource

from streams.auth import token_matches
from streams.cue import CueError, CueHandler, make_cue
from streams.director_socket import DirectorSocket
from streams.rate_limit import SourceLimits
from streams.web_guard import (
    SESSION_COOKIE,
    BadRequest,
    ClientFaultLog,
    Right,
    Sessions,
    check_length,
    cross_site_refusal,
    host_refusal,
    one_line,
    read_json,
    read_sdp,
    set_session,
)
from streams.webrtc.performer import PerformerBusy, PerformerDesk
from streams.webrtc.viewers import OfferError, ViewerHub, ViewersFull

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
CLOSE_ABOVE_BYTES = 1024 * 1024
"""A refused body declared larger than this is not read out: the connection is closed."""
LINGER_S = 1.0
"""How long the bytes of a body left unread (a refusal answered from the length alone) are
read and dropped before the connection closes. aiohttp's default, 10 s, kept the handler
that long even after the client had gone (the linger never learns of it), and a server stop
waited for it (measured: 10.1 s)."""
NOT_CHARGED = frozenset({409, 429})
"""4xx answers that are no fault of the client's request (busy performer, throttled)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DIRECTOR_FILES = ("director.js", "director.css", "aigc.js", "aigc.css")
"""The console page's files: open to all, like the page (they hold no show data)."""
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
                 ".json": "application/json", ".vrm": "model/gltf-binary",
                 ".glb": "model/gltf-binary", ".map": "application/json"}


async def _offer_sdp(request: web.Request) -> str:
    """The SDP of a JSON ``{"type": "offer", "sdp": ...}`` body (``BadRequest`` saying what
    is wrong with it otherwise)."""
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("type") != "offer" or \
            not isinstance(body.get("sdp"), str):
        raise BadRequest(400, 'expected {"type": "offer", "sdp": "..."}')
    return str(body["sdp"])


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": one_line(message)}, status=status)


class WebServer:
    """aiohttp application serving one show.

    ``token`` is the control token; ``viewer_token`` (which needs a ``token``) may only watch.
    Without a ``token`` the show answers only ``Host`` names of this machine, ``host`` and
    ``allowed_hosts``. A client may have ``refusal_burst`` requests refused (4xx) in a row,
    earning back ``refusals_per_s``; past that it is answered 429 unread (``refusals_per_s``
    ``None``: no limit).
    """

    def __init__(self, hub: ViewerHub, handler: CueHandler, *, web_root: Path,
                 avatar_path: Path, host: str = "127.0.0.1", port: int = 8080,
                 token: str | None = None, viewer_token: str | None = None,
                 performer: PerformerDesk | None = None, allowed_hosts: Iterable[str] = (),
                 refusals_per_s: float | None = 5.0, refusal_burst: int = 60,
                 console: DirectorSocket | None = None) -> None:
        if token is not None and not token or viewer_token is not None and not viewer_token:
            raise ValueError("a token must not be empty")
        if viewer_token is not None and token is None:
            raise ValueError("a viewer token needs a control token too (else anyone controls)")
        if viewer_token is not None and token_matches(viewer_token, token or ""):
            raise ValueError("the viewer token must differ from the control token")
        self.hub = hub
        self.performer = performer
        self.handler = handler
        self.web_root = web_root.resolve()
        self.vendor_root = (web_root / "node_modules").resolve()
        self.avatar_path = avatar_path
        self.host, self.port, self.token = host, port, token
        self.viewer_token = viewer_token
        wildcard = host in ("", "0.0.0.0", "::")
        self.allowed_hosts = frozenset({h.lower() for h in allowed_hosts}
                                       | (set() if wildcard else {host.lower()}))
        self.refusals = (SourceLimits(refusals_per_s, refusal_burst)
                         if refusals_per_s is not None else None)
        self.throttled = 0
        """Requests answered 429 without being read."""
        self._sessions = Sessions()
        self.console = console
        self.response_headers: dict[str, str] = {}
        """Added to every WHEP answer, e.g. ``AIGC-Label`` (the show's AI-generated label)."""
        self._rights: dict[AbstractResource | None, Right | None] = {}
        """Each route's right; ``None``: open to all (the console's page, its login)."""
        self.app = web.Application(client_max_size=MAX_BODY_BYTES,
                                   middlewares=[self._edge, self._auth])
        r = self.app.router
        view: Right = "view"
        control: Right = "control"
        if console is not None:
            for route, right in (
                    (r.add_get("/director", self._director_page), None),
                    *((r.add_get(f"/{name}", self._director_file), None)
                      for name in DIRECTOR_FILES),
                    (r.add_post("/director/login", self._director_login), None),
                    (r.add_get("/director/session", self._director_session), control),
                    (r.add_get("/director/ws", console.handle), control),
                    (r.add_get("/director/cues.yaml", self._director_cues), control)):
                self._rights[route.resource] = right
        for route, right in (
                (r.add_get("/", self._index), view),
                (r.add_get("/avatar.vrm", self._avatar), view),
                (r.add_get("/status", self._status), view),
                (r.add_post("/cue", self._cue), control),
                (r.add_post("/offer", self._offer), view),
                (r.add_post("/whep", self._whep), view),
                (r.add_route("OPTIONS", "/whep", self._whep_options), view),
                (r.add_route("HEAD", "/whep", self._whep_options), view),
                (r.add_delete("/whep/{id}", self._whep_delete), view),
                (r.add_route("PATCH", "/whep/{id}", self._whep_patch), view),
                (r.add_get("/perform", self._perform_page), control),
                (r.add_post("/perform/offer", self._perform_offer), control),
                (r.add_delete("/perform/{id}", self._perform_delete), control),
                (r.add_get("/vendor/{path:.*}", self._vendor), view),
                (r.add_get("/{path:[^/]+}", self._static), view)):
            self._rights[route.resource] = right  # its HEAD route too
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (``port=0`` picks a free port, readable afterwards in ``port``)."""
        self._runner = web.AppRunner(
            self.app, access_log=None, lingering_time=LINGER_S,
            logger=ClientFaultLog(logging.getLogger("aiohttp.server"), {}))
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
    async def _edge(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Cheap refusals first (throttled client, oversized body, another site), then every
        error as a one-line JSON reply: never a traceback to a client, never a dead server."""
        client = request.remote or "unknown"
        response: web.StreamResponse
        if self.refusals is not None and not self.refusals.ready(client):
            self.throttled += 1
            response = _error(429, f"too many refused requests from {client}; slow down")
            response.headers["Retry-After"] = "1"
            response.force_close()
            return response
        try:
            check_length(request)
            if self.token is None:
                refusal = host_refusal(request.headers.get("Host"), self.allowed_hosts)
                if refusal:
                    raise BadRequest(403, refusal)
            refusal = cross_site_refusal(request)
            if refusal:
                raise BadRequest(403, refusal)
            response = await handler(request)
        except BadRequest as err:
            response = _error(err.status, err.message)
        except web.HTTPException as err:  # aiohttp's own: no such route, method not allowed
            if err.status < 400:
                raise
            response = _error(err.status, f"{err.reason}: {request.method} {request.path}")
        except Exception:  # a defect of ours: logged once, and the show goes on
            log.exception("error serving %s %s", request.method, request.path)
            response = _error(500, "internal error (see the engine's log)")
        if 400 <= response.status < 500:
            if (request.content_length or 0) > CLOSE_ABOVE_BYTES:
                response.force_close()
            if self.refusals is not None and response.status not in NOT_CHARGED:
                self.refusals.take(client)
        return response

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The one place rights are checked: each route needs ``view`` or ``control``."""
        if self.token is None:
            return await handler(request)
        needed = self._rights.get(request.match_info.route.resource, "view")
        right, from_query = self._right_of(request)
        if needed is None and (right is not None or not from_query):
            return await handler(request)  # open to all; a wrong ?token= is still refused
        if right is None:
            raise BadRequest(401, "missing or wrong token: open the page as /?token=<token>, "
                                  "or send 'Authorization: Bearer <token>'")
        if needed == "control" and right != "control":
            raise BadRequest(403, f"{request.method} {request.path} needs the control token: "
                                  "a viewer token can watch, not control the show")
        response = await handler(request)
        if from_query:
            set_session(response, self._sessions.cookie_for(right))
        return response

    def _right_of(self, request: web.Request) -> tuple[Right | None, bool]:
        """The rights a request carries, and whether they came as ``?token=``."""
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if bearer:
            return self._right_of_token(bearer), False
        if "token" in request.query:
            return self._right_of_token(request.query["token"]), True
        cookie = request.cookies.get(SESSION_COOKIE)
        return (self._sessions.right_of(cookie) if cookie else None), False

    def _right_of_token(self, given: str) -> Right | None:
        if self.token is not None and token_matches(given, self.token):
            return "control"
        if self.viewer_token is not None and token_matches(given, self.viewer_token):
            return "view"
        return None

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
        if "\0" in relative:  # no file name holds NUL (resolve() would raise)
            return _error(404, f"no such file: {relative!r}")
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
        body = await read_json(request)
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

    # -- director's console -----------------------------------------------------------

    async def _director_page(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(self.web_root / "director.html",
                                    headers={"Content-Type": "text/html"})
        right, from_query = self._right_of(request)
        if from_query and right is not None:  # /director?token=..., as /?token= does
            set_session(response, self._sessions.cookie_for(right))
        return response

    async def _director_file(self, request: web.Request) -> web.StreamResponse:
        return self._file(self.web_root, request.path.removeprefix("/"), only_top=True)

    async def _director_login(self, request: web.Request) -> web.Response:
        """The console's login field: a control token sets the session, as ``?token=``."""
        body = await read_json(request)
        given = body.get("token") if isinstance(body, dict) else None
        if not isinstance(given, str):
            return _error(400, 'expected {"token": "..."}')
        if self.token is None:
            return web.json_response({"right": "control"})  # a loopback show: open to all
        right = self._right_of_token(given)
        if right is None:
            return _error(401, "wrong token")
        if right != "control":
            return _error(403, "a viewer token can watch, not direct the show: "
                               "the console needs the control token")
        response = web.json_response({"right": right})
        set_session(response, self._sessions.cookie_for(right))
        return response

    async def _director_session(self, _request: web.Request) -> web.Response:
        return web.json_response({"right": "control"})  # the middleware checked it

    async def _director_cues(self, _request: web.Request) -> web.Response:
        assert self.console is not None
        return web.Response(text=self.console.show.cue_file(), content_type="text/yaml",
                            headers={"Content-Disposition": 'attachment; filename="cues.yaml"'})

    # -- WebRTC -----------------------------------------------------------------------

    async def _offer(self, request: web.Request) -> web.Response:
        sdp = await _offer_sdp(request)
        try:
            viewer, answer = await self.hub.answer(sdp, kind="stage")
        except OfferError as err:
            return _error(503 if isinstance(err, ViewersFull) else 400, str(err))
        return web.json_response({"type": "answer", "sdp": answer, "id": viewer.id})

    async def _whep(self, request: web.Request) -> web.Response:
        sdp = await read_sdp(request)
        try:
            viewer, answer = await self.hub.answer(sdp, kind="whep",
                                                   mix=request.query.get("mix", "program"))
        except OfferError as err:
            return _error(503 if isinstance(err, ViewersFull) else 400, str(err))
        return web.Response(status=201, text=answer, content_type="application/sdp",
                            headers={"Location": f"/whep/{viewer.id}",
                                     "ETag": f'"{viewer.id}"', **self.response_headers})

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
