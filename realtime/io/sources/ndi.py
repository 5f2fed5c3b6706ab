"""An NDI source on the network as the live input (``--source ndi:NAME``).

Why like a camera: NDI is live (frames keep coming whether we read them or not), so it comes
wrapped in :class:`~.supervised.SupervisedSource` like cameras and streams: a sender that goes
away shows the placeholder and is looked for again with backoff.  Opening finds the source by name
within ``find_s`` seconds (NAME alone, or the full ``HOST (NAME)``) and waits for its first frame,
so a wrong name or a silent sender is one line before the network loads, naming the sources that
were seen.  The runtime converts whatever the sender sends (UYVY, BGRA, ...) to BGRX for us;
here it only loses its fourth byte.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from ..ndi import NdiError, bgrx_to_bgr, find_source, load_cyndilib
from .base import FrameSource

log = logging.getLogger(__name__)

SLICE_MS = 100  # one wait for a frame: close and the stop of a supervised reader are noticed this fast
POLL_S = 0.004  # how often a waiting read asks the frame sync for a newer frame (the sleep lets other threads run)


def parse_ndi_spec(spec: str) -> Optional[str]:
    """``ndi:NAME`` -> NAME (None: not an NDI spec); ``ndi:`` alone is an error."""
    spec = spec.strip()
    if spec[:4].lower() != "ndi:":
        return None
    name = spec[4:].strip()
    if not name:
        raise NdiError("--source ndi:NAME needs the NDI source's name, e.g. ndi:stylize or 'ndi:HOST (stylize)'")
    return name


class CyndiReceiver:
    """One connection to an NDI source through cyndilib: ``read(timeout_s)`` -> (BGR frame, fps) or None.

    Why NDI's frame sync and not ``Receiver.receive``: cyndilib 0.1.3's ``receive`` keeps the GIL
    while the runtime waits for a frame (stalling the show's other threads), and measured here it
    delivered 2 to 8 of 30 frames a second, with or without waiting; the frame sync receives on the
    runtime's own thread, ``capture_video`` returns the newest frame at once, and a frame is new
    when its timestamp is (30 of 30 a second on the same machine).
    """

    def __init__(self, name: str, find_s: float) -> None:
        lib = load_cyndilib()
        self._finder = lib.Finder()
        self._receiver: Any = None
        try:
            self._finder.open()
            source = find_source(self._finder, name, find_s)
            self.full_name = source.name
            self._receiver = lib.Receiver(color_format=lib.RecvColorFormat.BGRX_BGRA, bandwidth=lib.RecvBandwidth.highest,
                                          recv_name="stylize")
            self._frame = lib.VideoFrameSync()
            self._receiver.frame_sync.set_video_frame(self._frame)
            self._receiver.set_source(source)
        except BaseException:
            self.close()
            raise
        self._last: Any = None

    def read(self, timeout_s: float) -> Optional[tuple[np.ndarray, float]]:
        deadline = time.monotonic() + timeout_s
        f = self._frame
        while True:
            receiver = self._receiver
            if receiver is None:  # closed meanwhile
                return None
            receiver.frame_sync.capture_video()
            w, h = f.get_resolution()
            stamp = (f.get_timestamp_posix(), f.get_timecode_posix())
            if w and h and stamp != self._last:
                self._last = stamp
                rate = f.get_frame_rate()
                return bgrx_to_bgr(f.get_array(), w, h, f.get_line_stride()), float(rate) if rate else 0.0
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_S)

    def close(self) -> None:
        receiver, self._receiver = self._receiver, None
        finder, self._finder = self._finder, None
        if receiver is not None:
            _quietly(receiver.disconnect, "NDI disconnect")
        if finder is not None:
            _quietly(finder.close, "NDI finder close")


class NdiSource(FrameSource):
    """The NDI source ``name``.  ``find_s``: how long opening looks for it and waits for its first
    frame; ``lost_s``: no frame for this long ends the stream (the supervisor then reconnects).
    ``connect(name, find_s)``: a receiver like :class:`CyndiReceiver` (a fake in tests)."""

    live = True

    def __init__(self, name: str, find_s: float = 5.0, lost_s: float = 5.0,
                 connect: Callable[[str, float], Any] = CyndiReceiver) -> None:
        self.name = name
        self.find_s = find_s
        self.lost_s = lost_s
        self._connect = connect
        self._rx: Any = None
        self._first: Optional[np.ndarray] = None
        self._closed = False
        self._full = name

    def open(self) -> None:
        self._closed = False
        self._rx = self._connect(self.name, self.find_s)
        self._full = getattr(self._rx, "full_name", self.name)
        try:
            first = self._wait(self.find_s)
        except BaseException:  # a receiver that failed while waiting is not left open
            self.close()
            raise
        if first is None:
            self.close()
            raise NdiError(f"NDI source {self._full!r} was found but sent no picture within {self.find_s:g} s")
        self._first = first

    def read(self) -> Optional[np.ndarray]:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        frame = self._wait(self.lost_s)
        if frame is None and not self._closed:
            log.warning("NDI source %r sent nothing for %g s", self._full, self.lost_s)
        return frame

    def _wait(self, limit_s: float) -> Optional[np.ndarray]:
        deadline = time.monotonic() + limit_s
        while not self._closed and self._rx is not None:
            got = self._rx.read(min(SLICE_MS / 1000, max(0.001, deadline - time.monotonic())))
            if got is not None:
                frame, fps = got
                self._size = (frame.shape[1], frame.shape[0])
                if fps and 1.0 <= fps <= 240.0:
                    self._fps = fps
                return frame
            if time.monotonic() >= deadline:
                return None
        return None

    def close(self) -> None:
        self._closed = True
        if self._rx is not None:
            rx, self._rx = self._rx, None
            rx.close()

    def describe(self) -> str:
        return f"NDI source {self._full} {self._size[0]}x{self._size[1]} @ {self._fps or '?'} fps"


def _quietly(step: Callable[[], Any], what: str) -> None:
    """One step of closing, which must not fail: a failure is logged (debug) and passed over."""
    try:
        step()
    except Exception:  # noqa: BLE001 - closing must not fail
        log.debug("%s failed", what, exc_info=True)
