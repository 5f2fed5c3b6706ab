"""A watchdog around a camera or stream: reopen it when it stalls or disappears, show a calm
placeholder while it is away, count what happened.

Why (Frigate's camera watchdog restarts a camera after 20 s without frames): USB cameras get unplugged, network streams drop, and
an unattended show must carry on by itself.  A blocking ``read`` on a dead stream can hang for
a long time, so the real source is read on a reader thread of its own; the supervised ``read``
waits for its frames with a timeout and decides: frames keep coming -> pass them on; nothing for
``stall_s`` seconds, or read errors, or an end of stream -> drop that connection, hand out
placeholder frames at the source's rate, and reopen with exponential backoff until it is back.

Opening is slow or stuck just as reading is (a stream server that accepts and never answers holds
FFmpeg's open for its whole 10 s timeout), so every open runs on a thread of its own too: the
first is waited for in short steps that Ctrl-C and SIGTERM can cut (they once waited 8-9 s for
it), a reconnect is only looked at between placeholder frames (a stuck one once froze the show's
picture and its recording for 10 s more, the placeholder never shown).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Optional

import cv2
import numpy as np

from ...core.workers import LatestSlot, Stopped
from .base import FrameSource

log = logging.getLogger(__name__)


def placeholder_frame(width: int, height: int, text: str) -> np.ndarray:
    """A dark, quiet picture with one line of text: nothing flashes while the camera is away."""
    img = np.full((max(height, 16), max(width, 16), 3), 24, np.uint8)
    scale = max(0.4, min(1.2, width / 900))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    org = (max(4, (width - tw) // 2), max(th + 4, (height + th) // 2))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (150, 150, 150), 1, cv2.LINE_AA)
    return img


class _Connection:
    """One opened instance of the real source and the thread that reads it."""

    def __init__(self, source: FrameSource, index: int) -> None:
        self.source = source
        self.stop = threading.Event()
        self.slot = LatestSlot(self.stop)
        self.failed: Optional[str] = None
        self.last_frame = time.monotonic()
        self.thread = threading.Thread(target=self._run, name=f"realtime-source-reader-{index}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                img = self.source.read()
                if img is None:
                    self.failed = "the stream ended"
                    return
                self.slot.put(img)
        except Exception as exc:  # noqa: BLE001 - a read error means reconnect, not crash
            self.failed = f"{type(exc).__name__}: {exc}"
        finally:
            self.stop.set()
            try:
                self.source.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the source failed", exc_info=True)

    def get(self, timeout: float) -> Optional[np.ndarray]:
        try:
            img = self.slot.get(timeout=timeout)
        except (Stopped, queue.Empty):  # nothing yet, or the reader ended
            return None
        self.last_frame = time.monotonic()
        return img

    def drop(self, wait_s: float = 2.0) -> None:
        self.stop.set()
        self.thread.join(wait_s)  # a read stuck in a driver ends by itself later (daemon thread)


class _Opening:
    """One try to open the real source, on a daemon thread: the show never waits for it longer than
    it wants to.  ``after``: the threads that may still hold the device (the reader of the lost
    connection, an abandoned opening), let go of first (a camera cannot be opened twice; waited for
    here, not on the capture thread).  An opening that is :meth:`abandon`-ed closes whatever it opens."""

    def __init__(self, factory: Callable[[], FrameSource], index: int, after: tuple[threading.Thread, ...] = ()) -> None:
        self._factory, self._after = factory, after
        self.done = threading.Event()
        self.source: Optional[FrameSource] = None
        self.error: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._abandoned = False
        self.thread = threading.Thread(target=self._run, name=f"realtime-source-open-{index}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        src: Optional[FrameSource] = None
        try:
            deadline = time.monotonic() + OLD_READER_S
            for thread in self._after:
                thread.join(max(0.0, deadline - time.monotonic()))
            src = self._factory()
            src.open()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever looks at this opening
            self.error = exc
            _close_quietly(src)
        else:
            with self._lock:
                if self._abandoned:
                    _close_quietly(src)
                else:
                    self.source = src
        finally:
            self.done.set()

    def wait(self) -> FrameSource:
        """The opened source, waited for in steps short enough for a signal to land (main thread);
        the open's own error is raised here."""
        try:
            while not self.done.wait(0.05):
                pass
        except BaseException:
            self.abandon()
            raise
        if self.error is not None:
            raise self.error
        assert self.source is not None
        return self.source

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            src, self.source = self.source, None
        _close_quietly(src)


def _close_quietly(src: Optional[FrameSource]) -> None:
    if src is None:
        return
    try:
        src.close()
    except Exception:  # noqa: BLE001
        log.debug("closing the source failed", exc_info=True)


OLD_READER_S = 2.0  # how long a reopen waits for the old reader to let go of the device
CLOSE_WAIT_S = 0.5  # how long close() waits for a reader (a read stuck in a driver ends later on its own)


class SupervisedSource(FrameSource):
    """Wraps a factory of live sources; reconnects with backoff and shows a placeholder meanwhile."""

    live = True

    def __init__(
        self,
        factory: Callable[[], FrameSource],
        stall_s: float = 5.0,
        backoff_s: float = 0.5,
        reconnect_max_s: float = 10.0,
        name: str = "camera",
    ) -> None:
        self._factory = factory
        self.stall_s = stall_s
        self.backoff_s = backoff_s
        self.reconnect_max_s = reconnect_max_s
        self.name = name
        self.reconnects = 0
        self.stalls = 0
        self.failures = 0
        self._conn: Optional[_Connection] = None
        self._n = 0
        self._size = (0, 0)
        self._fps = 0.0
        self._describe = name
        self._retry_at = 0.0
        self._delay = backoff_s
        self._placeholder: Optional[np.ndarray] = None
        self._last_placeholder = 0.0
        self._closed = False
        self._opening: Optional[_Opening] = None  # a reconnect under way
        self._lingering: list[threading.Thread] = []  # may still hold the device: let go of before the next open

    # -- FrameSource -------------------------------------------------------------------------------
    def open(self) -> None:
        """The first open must work (a wrong device is a user error, not something to wait for)."""
        self._closed = False
        self._n += 1
        src = _Opening(self._factory, self._n, self._holders()).wait()
        self._size, self._fps, self._describe = src.size, src.fps, src.describe()
        self._connect(src)

    def reopen(self) -> None:
        """After closing hours: unlike the first open, a camera that is away now is waited for
        (placeholder and backoff), since nobody is there to fix a typo."""
        self._closed = False
        try:
            self.open()
        except Exception as exc:  # noqa: BLE001 - keep trying in read()
            log.warning("%s not there at opening time (%s); showing a placeholder and retrying", self.name, exc)
            self.failures += 1
            self._conn = None
            self._delay = self.backoff_s
            self._retry_at = time.monotonic()

    def read(self) -> Optional[np.ndarray]:
        interval = 1.0 / (self._fps or 30.0)
        while not self._closed:
            if self._conn is not None:
                img = self._conn.get(timeout=min(interval * 2, self.stall_s))
                if img is not None:
                    self.away = False
                    self._size = (img.shape[1], img.shape[0])
                    return img
                lost = self._conn.failed
                if not lost and time.monotonic() - self._conn.last_frame > self.stall_s:
                    self.stalls += 1
                    lost = f"no frame for {self.stall_s:g} s"
                if lost:
                    self.failures += 1
                    log.warning("%s lost (%s); showing a placeholder and reconnecting", self.name, lost)
                    self._conn.drop(0.0)  # let go of by the reconnect's thread, not waited for here
                    self._lingering.append(self._conn.thread)
                    self._conn = None
                    self._delay = self.backoff_s
                    self._retry_at = time.monotonic()
                elif not self.away:
                    continue  # a gap shorter than a stall: the last picture stays (a slow or bursty stream is no loss)
            if self._conn is None and self._try_reconnect():
                continue
            return self._placeholder_frame(interval)
        return None

    def close(self) -> None:
        self._closed = True
        if self._opening is not None:
            self._opening.abandon()
            self._lingering.append(self._opening.thread)
            self._opening = None
        if self._conn is not None:
            self._conn.drop(CLOSE_WAIT_S)
            self._lingering.append(self._conn.thread)
            self._conn = None

    def describe(self) -> str:
        return f"{self._describe} (reconnects after {self.stall_s:g} s without frames)"

    def counters(self) -> dict[str, int]:
        return {"reconnects": self.reconnects, "stalls": self.stalls, "source_lost": self.failures}

    # -- internals ---------------------------------------------------------------------------------
    def _connect(self, src: FrameSource) -> None:
        self._conn = _Connection(src, self._n)

    def _try_reconnect(self) -> bool:
        """Start a reconnect when its time has come, take its result when it is done; True when
        the source is back.  Never waits: the placeholder keeps coming meanwhile."""
        if self._closed:  # close() ran meanwhile (the app's, after a capture that did not stop)
            return False
        if self._opening is None:
            if time.monotonic() < self._retry_at:
                return False
            self._n += 1
            self._opening = _Opening(self._factory, self._n, self._holders())
        if not self._opening.done.is_set():
            return False
        opening, self._opening = self._opening, None
        if self._closed:
            opening.abandon()
            return False
        if opening.error is not None or opening.source is None:
            exc = opening.error
            why = (str(exc).splitlines() or [""])[0] or type(exc).__name__
            log.info("%s still away (%s); next try in %.1f s", self.name, why, self._delay)
            self._retry_at = time.monotonic() + self._delay
            self._delay = min(self._delay * 2, self.reconnect_max_s)
            return False
        self.reconnects += 1
        log.warning("%s is back (reconnect %d)", self.name, self.reconnects)
        self._connect(opening.source)
        return True

    def _holders(self) -> tuple[threading.Thread, ...]:
        self._lingering = [t for t in self._lingering if t.is_alive()]
        return tuple(self._lingering)

    def _placeholder_frame(self, interval: float) -> np.ndarray:
        wait = self._last_placeholder + interval - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, interval))
        self._last_placeholder = time.monotonic()
        w, h = self._size if all(self._size) else (640, 480)
        if self._placeholder is None or self._placeholder.shape[:2] != (h, w):
            self._placeholder = placeholder_frame(w, h, f"{self.name} unavailable - reconnecting")
        self.away = True
        return self._placeholder
