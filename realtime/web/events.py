"""Controller events pushed to every open control page (server-sent events, ``GET /api/events``).

Why push, not polling: a page that asks for the status every second is up to a second behind a key
press at the installation and costs a request a second per phone; with ``EventSource`` the page
hears each change as it happens (a few milliseconds) and the server sends only when something
changed, plus a small update of the live figures (fps, latency, viewers) every few seconds.

Threads: controller events fire on whatever thread made the change (the live loop for keys and the
cycle, uvicorn's loop for the page, an upload's worker thread).  The listener does nothing there but
hand the event to the server's event loop with ``loop.call_soon_threadsafe``; on the loop, the status
is taken once and offered to every page's bounded :class:`asyncio.Queue`.  A page that reads slowly
loses its oldest messages (each carries the whole status, so the newest is all it needs); nothing
ever waits for a page.  The quit event ends every stream, as the preview's streams end when its
output closes (PITFALLS 12), so the server can stop at once; this module starts no thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any, Optional

from starlette.responses import JSONResponse, Response, StreamingResponse

from ..core.controller import Controller
from ..core.events import ControlEvent

log = logging.getLogger(__name__)

QUEUE_MESSAGES = 32  # per page: more than a burst of key presses; a stalled page drops the oldest
FIGURES_EVERY_S = 5.0  # live figures (fps, latency, uptime) between changes; also keeps proxies from closing the stream
RETRY_MS = 2000  # how soon a browser reconnects after the stream broke
MAX_PAGES = 64  # event streams at once (cheap, but not unbounded); more get 503


class TooManyPages(Exception):
    """The server already pushes to ``max_pages`` pages (it answers 503)."""


class _Page:
    """One open event stream: its queue lives on the server's loop."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Optional[bytes]] = asyncio.Queue(QUEUE_MESSAGES)
        self.dropped = 0

    def offer(self, message: Optional[bytes]) -> None:
        """On the loop: queue ``message`` (None ends the stream), dropping the oldest when full."""
        while True:
            try:
                self.queue.put_nowait(message)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()
                self.dropped += 1


def sse(kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event: ``event: KIND`` and the JSON on one ``data:`` line."""
    return f"event: {kind}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n".encode()


class EventHub:
    """Subscribed to the controller; streams each event with the resulting status to every page."""

    def __init__(self, controller: Controller, max_pages: int = MAX_PAGES, figures_every_s: float = FIGURES_EVERY_S) -> None:
        self.controller = controller
        self.max_pages = max_pages
        self.figures_every_s = figures_every_s
        self._lock = threading.Lock()  # the set of pages and the loop, read by any thread's events
        self._pages: set[_Page] = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False
        self.sent = 0
        controller.subscribe(self._on_event)

    # -- any thread ------------------------------------------------------------------------------
    def _on_event(self, event: ControlEvent) -> None:
        with self._lock:
            loop = self._loop if self._pages else None
        if loop is None:
            return  # nobody watching: no work at all
        try:
            loop.call_soon_threadsafe(self._fan_out, event)
        except RuntimeError:  # the loop is closed: the server is gone
            pass

    def close(self) -> None:
        """End every stream (the server is stopping); safe from any thread, more than once."""
        with self._lock:
            self._closed = True
            loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._end_all)
            except RuntimeError:
                pass

    @property
    def pages(self) -> int:
        return len(self._pages)

    # -- the server's loop -------------------------------------------------------------------------
    def _message(self, kind: str, event: Optional[ControlEvent]) -> bytes:
        base = event.to_json() if event is not None else {"action": None, "changed": [], "origin": None, "seq": None}
        return sse(kind, {**base, "status": self.controller.status()})

    def _fan_out(self, event: ControlEvent) -> None:
        with self._lock:
            pages = list(self._pages)
        if not pages:
            return
        message = self._message("control", event)  # the status once, for every page
        for page in pages:
            page.offer(message)
            if not event.state.running:
                page.offer(None)  # the show ended: so does the stream, after saying so
        self.sent += 1

    def _end_all(self) -> None:
        with self._lock:
            pages = list(self._pages)
        for page in pages:
            page.offer(None)

    def register(self) -> _Page:
        """A new page (call on the loop); :class:`TooManyPages` past the limit."""
        with self._lock:
            if len(self._pages) >= self.max_pages:
                raise TooManyPages(f"the show already pushes its events to {self.max_pages} pages")
            self._loop = asyncio.get_running_loop()
            page = _Page()
            self._pages.add(page)
        return page

    def unregister(self, page: _Page) -> None:
        with self._lock:
            self._pages.discard(page)

    def response(self) -> Response:
        """``GET /api/events`` for a new page, after the token check (call on the loop); 503 past the limit."""
        try:
            page = self.register()
        except TooManyPages as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return StreamingResponse(self.stream(page), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def stream(self, page: _Page) -> AsyncIterator[bytes]:
        """The body for one page: the status at once, then each change; ends with the show."""
        try:
            yield f"retry: {RETRY_MS}\n\n".encode() + self._message("status", None)
            if self._closed or not self.controller.state.running:
                return
            while True:
                try:
                    message = await asyncio.wait_for(page.queue.get(), self.figures_every_s)
                except asyncio.TimeoutError:
                    # Fresh figures; nothing changed.  Never an end here: the quit event may be on its
                    # way to the loop, and every page must hear it (the None after it ends the stream).
                    message = self._message("status", None)
                if message is None:
                    return  # after the quit event itself: every page hears that the show ended
                yield message
        finally:
            self.unregister(page)
