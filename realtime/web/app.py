"""The control page and JSON API: one more control surface on the live controller.

Why Starlette (+ uvicorn): a small, well-kept ASGI toolkit whose streaming responses and async
handlers fit an endless MJPEG stream and a few JSON routes without a framework around them; it
runs in its own thread next to the show (see :mod:`realtime.web.server`).  Every change goes through
``controller.do`` -- the same actions, argument checks and help texts as the keys and schedules.

Changes reach every open page at once: ``GET /api/events`` is a server-sent event stream of the
controller's events, each with the resulting status (:mod:`realtime.web.events`), so the page never
polls.

Access: every route needs the token (``Authorization: Bearer``, the ``realtime_token`` cookie the
page sets after ``/?token=``, or ``?token=`` for stream URLs in OBS).  State changes only by POST;
a POST from another site's page is refused (the cookie is ``SameSite=Lax``, so other sites' POSTs
never carry it, and a foreign ``Origin`` gets 403), and the server never lets a request crash the show: bad input is a 4xx with
one clear line, anything unexpected a logged 500.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..control.osc import osc_table
from ..core.controller import ACTIONS, ActionError, Controller
from ..core.events import WEB
from ..errors import UserError
from ..io.sources import BackgroundSource
from .events import EventHub
from .library import StyleLibrary, UploadError
from .preview import BOUNDARY, MjpegPreview, TooManyClients

log = logging.getLogger(__name__)

COOKIE = "realtime_token"
PAGE = Path(__file__).resolve().parent / "static" / "index.html"
DENIED_PAGE = Path(__file__).resolve().parent / "static" / "denied.html"
MAIN_THREAD_TIMEOUT_S = 15.0  # recording and snapshots run between frames on the show's thread
NOT_FROM_THE_WEB = {"start_recording": "path"}  # arguments that would let a client write anywhere: not listed, refused
WEB_DOCS = {"start_recording": "start recording (a timestamped file in the recordings folder)"}  # their docs without them
# An action's arguments are a few short values; a larger body is refused (413) before it is parsed
# (a 50 MB body used to reach json.loads, and its error text leaked Python's internals).
MAX_ACTION_BODY = 64 * 1024
HTTP_REASONS = {404: "no such page or API route", 405: "method not allowed"}


def _error(status: int, message: str, headers: Optional[dict[str, str]] = None) -> JSONResponse:
    """Every answer that is not a success has this shape: ``{"error": "one line"}`` (README)."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int, too_large: str) -> bytes | Response:
    """The request body, counted as it arrives (a lying or missing Content-Length changes nothing):
    past ``limit`` bytes a 413 with ``too_large``; a client that left mid-body a 400."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return _error(413, too_large)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _error(413, too_large)
            chunks.append(chunk)
    except ClientDisconnect:
        return _error(400, "the request body was cut off")
    return b"".join(chunks)


def _parse_args(body: bytes) -> dict[str, Any] | Response:
    """An action's JSON arguments, or the 400 that says what is wrong with them, in words of our
    own: the parser's own messages can quote Python's internals (the digit limit of int)."""
    if not body.strip():
        return {}
    try:
        args = json.loads(body)
    except json.JSONDecodeError as exc:
        return _error(400, f"the body must be a JSON object of arguments: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except UnicodeDecodeError:
        return _error(400, "the body must be a JSON object of arguments in UTF-8 text")
    except RecursionError:
        return _error(400, "the body must be a JSON object of arguments: it is nested too deeply")
    except ValueError:  # e.g. a number of thousands of digits
        return _error(400, "the body must be a JSON object of arguments: a value in it is too long")
    if not isinstance(args, dict):
        return _error(400, "the body must be a JSON object of arguments, e.g. {\"value\": 0.8}")
    return args


class _Contained:
    """ASGI middleware: whatever a handler lets escape becomes a JSON 500 and one log line.

    Why not Starlette's ``exception_handlers={Exception: ...}``: its ServerErrorMiddleware calls
    that handler and then raises the exception again, for the server to log, so every fault put
    a traceback in the show's log (issue 27: a 100k-deep JSON body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - a request must never reach the server's traceback logging
            log.error("web request %s %s failed: %s: %.200s", scope.get("method"), scope.get("path"), type(exc).__name__, exc)
            if not started:
                await _error(500, "internal error (logged); the show goes on")(scope, receive, send)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _Handlers:
    """The page and the JSON API of one show: every handler checks the token first (and, for a
    change, that the request comes from the page's own origin), then calls the controller."""

    def __init__(self, controller: Controller, token: str, preview: Optional[MjpegPreview],
                 library: Optional[StyleLibrary], style_source: Optional[BackgroundSource] = None) -> None:
        self.controller, self.token, self.preview, self.library = controller, token, preview, library
        self.style_source = style_source
        self.snapshots: dict[str, Path] = {}  # files this server may hand out: only snapshots it took
        self.hub = EventHub(controller)
        self.page_html = PAGE.read_text(encoding="utf-8")  # once: a missing page fails at start, not per visit
        self.denied_html = DENIED_PAGE.read_text(encoding="utf-8")

    def denied_page(self, title: str, why: str) -> HTMLResponse:
        """The 401 a person sees (on a phone, mostly): the control page's look, and where the link
        with the token comes from (the QR code or the URL line printed at start)."""
        body = self.denied_html.replace("{title}", html.escape(title)).replace("{why}", html.escape(why))
        return HTMLResponse(body, 401, headers={"Cache-Control": "no-store"})

    def authorized(self, request: Request) -> bool:
        given = request.cookies.get(COOKIE) or request.query_params.get("token") or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    def foreign_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            return origin == "null"
        return urlsplit(origin).netloc != request.headers.get("host", "")

    def guard(self, request: Request, post: bool = False) -> Optional[Response]:
        if not self.authorized(request):
            return _error(401, "a valid token is needed: open the URL printed by stylize, or send 'Authorization: Bearer TOKEN'")
        if post and self.foreign_origin(request):
            return _error(403, "requests from other sites are refused")
        return None

    async def page(self, request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return self.denied_page("This link's token is not this show's",
                                        "A new token is made each time the show starts (unless REALTIME_WEB_TOKEN or "
                                        "web.token fixes one), so a link from an earlier start no longer opens it.")
            response = RedirectResponse("/", 303)  # the token leaves the address bar (and history)
            # Lax, not Strict: a link to the page opened from a chat or a QR-code app must still work;
            # cross-site POSTs never carry it, and a foreign Origin is refused anyway.
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="lax", max_age=30 * 86400)
            return response
        if not self.authorized(request):
            return self.denied_page("Open the control page from its link",
                                    "This address has no token, and this browser has not opened the link before "
                                    "(it keeps the token for 30 days once it has).")
        return HTMLResponse(self.page_html, headers={"Cache-Control": "no-store"})

    async def osc(self, request: Request) -> Response:
        """``/osc``: the OSC address table, generated from the actions (as ``--osc-help`` prints it)."""
        if not self.authorized(request):
            return self.denied_page("Open the control page from its link", "The OSC table is shown to the control page's visitors.")
        return HTMLResponse(osc_page(), headers={"Cache-Control": "no-store"})

    async def status(self, request: Request) -> Response:
        if (denied := self.guard(request)) is not None:
            return denied
        return JSONResponse(self.controller.status(), headers={"Cache-Control": "no-store"})

    async def actions(self, request: Request) -> Response:
        if (denied := self.guard(request)) is not None:
            return denied
        return JSONResponse(action_listing())

    async def do_action(self, request: Request) -> Response:
        if (denied := self.guard(request, post=True)) is not None:
            return denied
        name = request.path_params["name"]
        if name not in ACTIONS:
            return _error(404, f"unknown action '{name}' (GET /api/actions lists them)")
        body = await _read_body(request, MAX_ACTION_BODY, f"the arguments are larger than {MAX_ACTION_BODY // 1024} KB")
        if isinstance(body, Response):
            return body
        args = _parse_args(body)
        if isinstance(args, Response):
            return args
        if NOT_FROM_THE_WEB.get(name) in args:
            return _error(400, f"{name}: '{NOT_FROM_THE_WEB[name]}' cannot be chosen from the web (files go to the configured folder)")
        known = {p.name for p in ACTIONS[name].params}
        unexpected = sorted(k for k in args if k not in known)  # "origin" too: the web's origin is not the client's to say
        if unexpected:
            return _error(400, f"{name}: unexpected argument '{unexpected[0]}' (GET /api/actions lists the arguments)")
        try:
            result = self.controller.do(name, origin=WEB, **args)
            if isinstance(result, Future):
                result = await asyncio.wait_for(asyncio.wrap_future(result), MAIN_THREAD_TIMEOUT_S)
        except ActionError as exc:
            return _error(400, str(exc))
        except UserError as exc:  # the show said no and why (a recording not started, a full disk): logged there
            return _error(409, str(exc))
        except asyncio.CancelledError:
            return _error(503, f"{name}: the show is ending")
        except asyncio.TimeoutError:
            return _error(504, f"{name}: the show did not answer within {MAIN_THREAD_TIMEOUT_S:.0f} s")
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk while recording: say it, keep the show
            log.warning("web action %s failed: %s", name, exc)
            return _error(500, f"{name} failed: {exc}")
        if name == "snapshot" and result:
            for p in result:
                self.snapshots[Path(p).name] = Path(p)
            result = {"files": [f"/api/snapshots/{Path(p).name}" for p in result]}
        return JSONResponse({"action": name, "result": _jsonable(result), "state": self.controller.status()})

    async def midi_learn(self, request: Request) -> Response:
        """``POST /api/midi/learn {"action": NAME}``: the ``midi_learn`` action by its own address
        (the page's learn buttons); a show without ``--midi`` answers 400 (not available in this show)."""
        request.scope.setdefault("path_params", {})["name"] = "midi_learn"
        return await self.do_action(request)

    async def styles(self, request: Request) -> Response:
        if (denied := self.guard(request, post=request.method == "POST")) is not None:
            return denied
        if self.library is None:
            return _error(404, "this show has no style library")
        if request.method == "GET":
            return JSONResponse(self.library.listing(), headers={"Cache-Control": "no-store"})
        body = await _read_body(request, self.library.max_bytes, f"the image is larger than {round(self.library.max_bytes / 2**20, 2):g} MB")
        if isinstance(body, Response):
            return body
        try:
            added = await asyncio.to_thread(self.library.add, body)
        except UploadError as exc:
            return _error(exc.status, str(exc))
        return JSONResponse({"name": added.name, "index": added.index, "new": added.new}, status_code=201 if added.new else 200)

    async def thumb(self, request: Request) -> Response:
        if (denied := self.guard(request)) is not None:
            return denied
        text = request.path_params["index"]  # read here, not by a route converter: int() of 5000 digits raises
        index = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else -1
        # Reading and shrinking an upload takes a while: off the event loop, or every preview stream stalls.
        data = await asyncio.to_thread(self.library.thumbnail, index) if self.library is not None and index >= 0 else None
        if data is None:
            return _error(404, "no such style")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def snapshot_file(self, request: Request) -> Response:
        if (denied := self.guard(request)) is not None:
            return denied
        path = self.snapshots.get(request.path_params["name"])  # only files this server handed out
        if path is None or not path.is_file():
            return _error(404, "no such snapshot")
        return FileResponse(path, media_type="image/png", filename=path.name)

    async def stream(self, request: Request) -> Response:
        if (denied := self.guard(request)) is not None:
            return denied
        if self.preview is None:
            return _error(404, "this show has no preview stream")
        try:
            client = self.preview.register()
        except TooManyClients as exc:
            return _error(503, str(exc))
        return StreamingResponse(
            self.preview.stream(client),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def style_source_picture(self, request: Request) -> Response:
        """``/api/style-source.jpg``: the style source's newest picture, small (``?width=``, 64..1280,
        default 320), or a "not connected" card; the page reloads it about once a second."""
        if (denied := self.guard(request)) is not None:
            return denied
        if self.style_source is None:
            return _error(404, "this show has no style source (stylize live --style-source SRC)")
        text = request.query_params.get("width", "320")
        if not (text.isascii() and text.isdigit() and len(text) <= 4 and 64 <= int(text) <= 1280):
            return _error(400, "width must be a whole number of pixels from 64 to 1280")
        # Encoding (once per picture, shared by every page) is off the event loop, as thumbnails are.
        data = await asyncio.to_thread(self.style_source.jpeg, int(text))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def events(self, request: Request) -> Response:
        if (denied := self.guard(request)) is not None:
            return denied
        return self.hub.response()

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's own answers (no such route, a wrong method) in the API's error shape."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = HTTP_REASONS.get(status, exc.detail if isinstance(exc, HTTPException) else "error")
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        if status == 405 and "Allow" in headers:
            allowed = ", ".join(sorted(m.strip() for m in headers["Allow"].split(",")))  # Starlette's order is a set's
            message = f"{request.method} is not allowed on {request.url.path} (allowed: {allowed})"
        elif status == 404:
            message = f"{message}: {request.url.path}"
        return _error(status, message, headers)



def action_listing() -> list[dict[str, Any]]:
    """``GET /api/actions``: every action with the arguments the web may send (those in
    :data:`NOT_FROM_THE_WEB` are left out: the listing never offers what the handler refuses)."""
    out = []
    for a in ACTIONS.values():
        params = [p for p in a.params if NOT_FROM_THE_WEB.get(a.name) != p.name]
        doc = a.doc if len(params) == len(a.params) else WEB_DOCS.get(a.name, a.doc)
        out.append({"name": a.name, "doc": doc,
                    "params": [{"name": p.name, "type": p.kind.__name__, "min": p.low, "max": p.high, "optional": p.optional}
                               for p in params]})
    return out


def osc_page() -> str:
    """The OSC address table as a small HTML page (address, arguments with types and ranges, what it does)."""
    rows = "\n".join(f"<tr><td><code>{html.escape(a)}</code></td><td>{html.escape(g)}</td><td>{html.escape(d)}</td></tr>"
                     for a, g, d in osc_table())
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
            "<title>OSC addresses</title><style>body{font-family:sans-serif;margin:1em}td,th{padding:.3em .6em;"
            "text-align:left;vertical-align:top;border-bottom:1px solid #ccc}code{white-space:nowrap}</style></head><body>"
            "<h1>OSC addresses</h1><p>Start the show with <code>stylize live --osc [HOST:]PORT</code>; arguments are "
            "positional, in this order. <code>stylize live --osc-help</code> prints the same table.</p>"
            "<table><tr><th>address</th><th>arguments</th><th>what it does</th></tr>\n" + rows + "\n</table></body></html>")


def build_app(
    controller: Controller,
    token: str,
    preview: Optional[MjpegPreview] = None,
    library: Optional[StyleLibrary] = None,
    style_source: Optional[BackgroundSource] = None,
) -> Starlette:
    """The ASGI app for one show: the route table over :class:`_Handlers`."""
    h = _Handlers(controller, token, preview, library, style_source)

    routes = [
        Route("/", h.page),
        Route("/osc", h.osc),
        Route("/api/status", h.status),
        Route("/api/events", h.events),
        Route("/api/actions", h.actions),
        Route("/api/actions/{name}", h.do_action, methods=["POST"]),
        Route("/api/midi/learn", h.midi_learn, methods=["POST"]),
        Route("/api/styles", h.styles, methods=["GET", "POST"]),
        Route("/api/styles/{index}/thumb.jpg", h.thumb),
        Route("/api/snapshots/{name}", h.snapshot_file),
        Route("/api/style-source.jpg", h.style_source_picture),
        Route("/stream.mjpg", h.stream),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_Contained)], exception_handlers={HTTPException: h.http_error})
    app.state.events = h.hub  # tests and the show can end the streams (hub.close) or count the pages
    return app
