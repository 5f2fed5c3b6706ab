"""A second source read on a thread of its own, only its newest picture kept: the style camera.

Why (issue 28, ``--style-source``): a performer holds a postcard up to a second camera while the
first one keeps filming the room; ``take_style`` takes that camera's picture, the control page shows
it small.  Nothing of the show may wait for it and nothing about it may end the show: it is opened
on its thread (a slow or missing device costs the show nothing), read there continuously (a camera
must be drained or it serves stale frames) with at most ``max_fps`` pictures kept a second (each
kept one is a reference swap; nothing is copied or converted until someone asks for it), and a
source that does not open, ends or fails is one log line, "not connected" in the status and the
preview, and another try after a backoff.  Cameras and streams come wrapped in
:class:`~realtime.io.sources.supervised.SupervisedSource` (:func:`~realtime.io.sources.open_source`
with ``reconnect``), which does their reconnecting and says so in its own lines.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import cv2
import numpy as np

from .base import FrameSource
from .supervised import placeholder_frame

log = logging.getLogger(__name__)


class BackgroundSource:
    """Keeps the newest frame of ``source`` (BGR), read on the thread ``realtime-<name>``."""

    def __init__(self, source: FrameSource, name: str = "style source", label: str = "", retry_s: float = 0.5,
                 retry_max_s: float = 10.0, max_fps: float = 15.0) -> None:
        """``label``: what it is called until it opens (the ``--style-source`` value); ``retry_s``..
        ``retry_max_s``: the backoff between tries to open it (doubling); ``max_fps``: pictures kept
        a second at most (0: every one read)."""
        self.source = source
        self.name = name
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the frame, its number and the state, read by the show and the web
        self._frame: Optional[np.ndarray] = None
        self._seq = 0  # frames kept so far
        self._connected = False
        self._why = "not opened yet"  # why it is not connected (the status says it)
        self._describe = label or type(source).__name__  # the source's own words once it is open
        self._jpeg: tuple[int, int, bytes] = (-1, 0, b"")  # (seq, width, JPEG) of the last encode
        self._thread: Optional[threading.Thread] = None
        self._starts = 0  # start() calls: a reader that ends after a newer one hands over to a new thread
        self.cpu_s = 0.0  # CPU time of the reader thread (after close: its whole life)
        self.error: Optional[BaseException] = None  # a fault of this class's own (logged; the show goes on)

    # -- the show's side ---------------------------------------------------------------------------
    def start(self) -> "BackgroundSource":
        """Start reading (it opens the source on its thread); after :meth:`close`, again (the show
        reopening after closing hours)."""
        with self._lock:
            self._stop.clear()  # a reader still stuck in its driver after close() carries on once free
            self._starts += 1  # one that is already on its way out starts its successor (see _run)
            if self._thread is None or not self._thread.is_alive():
                self._spawn()
        return self

    def _spawn(self) -> None:
        self._thread = threading.Thread(target=self._run, args=(self._starts,), name=f"realtime-{self.name.replace(' ', '-')}",
                                        daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._connected

    def latest(self) -> Optional[np.ndarray]:
        """The newest real picture (never a placeholder), or None while not connected.  Kept frames
        are never written to, so the caller may read it; it copies what it keeps."""
        with self._lock:
            return self._frame if self._connected else None

    def describe(self) -> str:
        return self._describe

    def why(self) -> str:
        """Why it is not connected (the last failure), or "" while it is."""
        return "" if self._connected else self._why

    def status(self) -> dict[str, object]:
        return {"style_source": self._describe, "style_source_connected": self._connected, "style_source_frames": self._seq}

    def jpeg(self, width: int = 320, quality: int = 70) -> bytes:
        """The newest picture as a JPEG at most ``width`` wide, or a "not connected" card; encoded
        once per kept frame however many pages ask (the web calls it off its event loop)."""
        with self._lock:
            frame, seq = (self._frame, self._seq) if self._connected else (None, -2)
        cached_seq, cached_w, data = self._jpeg
        if data and cached_seq == seq and cached_w == width:
            return data
        if frame is None:
            frame = placeholder_frame(width, width * 3 // 4, f"{self.name} not connected")
        h, w = frame.shape[:2]
        if w > width:
            frame = cv2.resize(frame, (width, max(2, round(h * width / w))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        data = buf.tobytes()
        self._jpeg = (seq, width, data)
        return data

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread and join it (it closes the source); idempotent.  A read stuck in a
        driver ends by itself (a daemon thread), with one line saying so; the show's own closing
        (the recording's end, a SIGTERM's 2 s) does not wait longer for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s (a read stuck in its driver)", self.name, timeout)

    # -- the reader thread ---------------------------------------------------------------------------
    def _away(self, why: str, said: bool) -> bool:
        """Not connected any more (or not yet): the status, the preview and take_style say so; one
        warning per loss (``said``: already said).  Returns True (it has been said)."""
        with self._lock:
            self._connected = False
            self._frame = None
            self._why = why
        if not said:
            log.warning("%s %s not connected (%s); the show goes on, retrying", self.name, self._describe, why)
        return True

    def _run(self, started: int) -> None:
        cpu0 = time.thread_time()
        opened, said, delay = False, False, self.retry_s
        try:
            while not self._stop.is_set():
                if not opened:
                    try:
                        self.source.open()
                    except Exception as exc:  # noqa: BLE001 - not there (yet): the show goes on without it
                        said = self._away(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, said)
                        self._close_source()
                        self._stop.wait(delay)
                        delay = min(delay * 2, self.retry_max_s)
                        continue
                    opened = True
                    self._describe = self.source.describe()
                try:
                    img = self.source.read()
                    why = "the source ended"
                except Exception as exc:  # noqa: BLE001 - a read error is a lost source, not a crash
                    img, why = None, f"{type(exc).__name__}: {exc}"
                if img is None:
                    if self._stop.is_set():
                        break
                    said = self._away(why, said)
                    self._close_source()
                    opened = False
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.retry_max_s)
                    continue
                if self.source.away:  # a supervised camera's placeholder: it logs and reconnects itself
                    if self._connected:
                        self._away(f"{self.name} lost: reconnecting", said=True)
                    continue
                with self._lock:
                    self._frame = img
                    self._seq += 1
                    back = not self._connected
                    self._connected = True
                if back:
                    if said:
                        log.warning("%s is back: %s", self.name, self._describe)
                    else:
                        log.info("%s connected: %s", self.name, self._describe)
                    said, delay = False, self.retry_s
                if self.min_interval:
                    self._stop.wait(self.min_interval)  # newer frames wait in the source; older ones are dropped there
        except BaseException as exc:  # noqa: BLE001 - a fault of this reader must not end the show
            self.error = exc
            log.error("%s reader stopped: %s: %s", self.name, type(exc).__name__, exc)
        finally:
            with self._lock:
                self._connected = False
                self._frame = None
                self._why = "closed"
            self._close_source()
            self.cpu_s = time.thread_time() - cpu0
            with self._lock:  # start() came again while this one was stopping: a fresh reader
                if self._starts != started and not self._stop.is_set() and self._thread is threading.current_thread():
                    self._spawn()

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception:  # noqa: BLE001 - closing what failed may fail too
            log.debug("closing %s failed", self.name, exc_info=True)
