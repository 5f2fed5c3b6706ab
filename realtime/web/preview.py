"""The live picture as an MJPEG stream: one encode per frame, a newest-frame slot per client.

Why this shape (vidgear's WebGear and Frigate's birdseye do the same; PITFALLS 14): the show hands
every shown frame to this output on the main thread, which only keeps a reference (no copy, no
encode) when a client is watching and the frame-rate cap allows.  One encoder thread scales and
JPEG-encodes that frame once, then wakes every client.  Each client reads only the newest JPEG when
it is ready for one, so a slow phone skips frames instead of slowing the show or the others.
``multipart/x-mixed-replace`` works in an ``<img>``, in OBS's media source and in ``curl``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..io.sinks.base import Output

log = logging.getLogger(__name__)

BOUNDARY = "frame"


class TooManyClients(Exception):
    """The preview already has ``max_clients`` viewers (the server answers 503)."""


class _Client:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready = asyncio.Event()


class MjpegPreview(Output):
    """An output that serves the shown picture to any number of MJPEG clients."""

    name = "preview"

    def __init__(self, width: int = 640, quality: int = 70, max_fps: float = 15.0, max_clients: int = 8) -> None:
        self.width = width
        self.quality = quality
        self.min_interval = 1.0 / max_fps
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: Optional[np.ndarray] = None
        self._clients: set[_Client] = set()
        self._stop = threading.Event()
        self._last_take = float("-inf")
        self._thread: Optional[threading.Thread] = None
        self.latest: Optional[bytes] = None
        self.encoded = 0
        self.encode_s = 0.0
        self.error: Optional[BaseException] = None

    # -- the show's side (main thread) -----------------------------------------------------------
    def write(self, frame: np.ndarray, t: float) -> None:
        if not self._clients or self._stop.is_set():
            return  # nobody watching: no work at all
        now = time.monotonic()
        if now - self._last_take < self.min_interval:
            return
        self._last_take = now
        with self._wake:
            self._pending = frame  # a reference: shown frames are never modified afterwards
            self._wake.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._encode_loop, name="realtime-preview", daemon=True)
            self._thread.start()

    def show_card(self, picture: np.ndarray) -> None:
        """Serve ``picture`` (BGR) until the first shown frame replaces it: a page opened while the
        show starts sees a card saying so, not an empty box."""
        self.latest = self.encode(picture)
        self._wake_clients()

    def close(self) -> Optional[Path]:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(5)
        self._wake_clients()  # their streams see the stop and end, so the server can shut down
        return None

    # -- the encoder thread ------------------------------------------------------------------------
    def _encode_loop(self) -> None:
        try:
            while not self._stop.is_set():
                with self._wake:
                    if self._pending is None:
                        self._wake.wait(0.5)
                    frame, self._pending = self._pending, None
                if frame is None:
                    continue
                t0 = time.perf_counter()
                jpeg = self.encode(frame)
                self.encode_s += time.perf_counter() - t0
                self.latest = jpeg
                self.encoded += 1
                self._wake_clients()
        except BaseException as exc:  # noqa: BLE001 - the preview must never end the show
            self.error = exc
            log.error("preview encoder stopped: %s: %s", type(exc).__name__, exc)

    def encode(self, frame: np.ndarray) -> bytes:
        h, w = frame.shape[:2]
        if max(h, w) > self.width:
            scale = self.width / max(h, w)
            frame = cv2.resize(frame, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def _wake_clients(self) -> None:
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.loop.call_soon_threadsafe(c.ready.set)
            except RuntimeError:  # that client's loop is closed: it is gone
                pass

    # -- the server's side (event loop) --------------------------------------------------------------
    @property
    def clients(self) -> int:
        return len(self._clients)

    def register(self) -> _Client:
        """A new viewer (call on the event loop); :class:`TooManyClients` past the limit."""
        with self._lock:
            if len(self._clients) >= self.max_clients:
                raise TooManyClients(f"the preview already has {self.max_clients} viewers")
            client = _Client(asyncio.get_running_loop())
            self._clients.add(client)
        if self.latest is not None:
            client.ready.set()  # the last picture at once (a paused show still shows something)
        return client

    def unregister(self, client: _Client) -> None:
        with self._lock:
            self._clients.discard(client)

    async def stream(self, client: _Client, idle_timeout_s: float = 1.0) -> AsyncIterator[bytes]:
        """The multipart body for one client: the newest JPEG each time one is ready; ends with the show."""
        try:
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(client.ready.wait(), idle_timeout_s)
                except asyncio.TimeoutError:
                    continue  # paused or closed show: keep the connection, check the stop flag
                client.ready.clear()
                jpeg = self.latest
                if jpeg is None or self._stop.is_set():
                    continue
                yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode() + jpeg + b"\r\n"
        finally:
            self.unregister(client)

    def status(self) -> dict[str, object]:
        return {
            "preview_clients": self.clients,
            "preview_encode_ms": round(1000 * self.encode_s / self.encoded, 2) if self.encoded else 0.0,
        }
