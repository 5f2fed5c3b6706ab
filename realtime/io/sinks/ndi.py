"""The shown picture as an NDI source (``stylize live --ndi NAME``): OBS, vMix, Resolume,
TouchDesigner or another machine's ``--source ndi:NAME`` picks it up over the network.

Why an output like the virtual camera: it takes the same composed frames at their size.  Why a
thread of its own: handing a frame to the NDI runtime copies and compresses it, and a receiver
that stalls can make the runtime wait; the show's thread only puts the frame in a one-frame slot
(newest wins, replaced frames counted as dropped) and never waits.  Frames go out at the show's
rate (the sender is not clocked: its frame rate is only the label receivers see), so a receiver
gets every frame the screen shows, no more.  The sender is created on the first frame (the size
is known then); a failure on the sender's thread comes back to the show's thread on the next
``write``, where :class:`~.base.Outputs` detaches the output and the show goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...core.workers import EOS, LatestSlot, Stopped, Worker
from ..images import resize
from ..ndi import NdiError, bgr_to_bgrx, load_cyndilib
from .base import Output

log = logging.getLogger(__name__)

JOIN_S = 5.0  # the longest close waits for the sender's thread


def cyndilib_sender(name: str, width: int, height: int, fps: float) -> Any:
    """A cyndilib ``Sender`` for BGRX frames of this size, opened (raises :class:`NdiError`)."""
    lib = load_cyndilib()
    try:
        frame = lib.VideoSendFrame()
        frame.set_resolution(width, height)
        frame.set_frame_rate(Fraction(fps or 30.0).limit_denominator(1001))
        frame.set_fourcc(lib.FourCC.BGRX)
        sender = lib.Sender(name, clock_video=False)  # paced by the show, not by the runtime
        sender.set_video_frame(frame)
        sender.open()
    except Exception as exc:  # noqa: BLE001 - the runtime raises RuntimeError/ValueError/MemoryError
        raise NdiError(f"cannot publish NDI source {name!r}: {type(exc).__name__}: {exc}") from None
    return sender


class NdiOutput(Output):
    """Publishes the shown frames as the NDI source ``ndi_name``.  ``make_sender(name, w, h, fps)``
    returns an opened object with ``write_video(flat_uint8)`` and ``close()`` (cyndilib's
    ``Sender``; a fake in tests)."""

    name = "NDI"

    def __init__(self, ndi_name: str, fps: float = 30.0,
                 make_sender: Callable[[str, int, int, float], Any] = cyndilib_sender) -> None:
        self.ndi_name = ndi_name
        self.fps = fps or 30.0
        self._make_sender = make_sender
        self._sender: Any = None
        self.size: Optional[tuple[int, int]] = None
        self.sent = 0
        self._stop = threading.Event()
        self._slot = LatestSlot(self._stop)
        self._worker: Optional[Worker] = None
        self._closed = False

    @property
    def dropped(self) -> int:
        """Frames the sender's thread had no time for (replaced by newer ones)."""
        return self._slot.dropped

    def open(self, width: int, height: int) -> None:
        """Create the sender (one line if the runtime is missing) and start its thread."""
        if self._sender is not None:
            return
        self._sender = self._make_sender(self.ndi_name, width, height, self.fps)
        self.size = (width, height)
        self._worker = Worker("ndi-sender", self._run, lambda: None, self._stop)
        self._worker.start()
        log.info("NDI: publishing %r, %dx%d @ %g fps", self.ndi_name, width, height, self.fps)

    def write(self, frame: np.ndarray, t: float) -> None:
        if self._closed:
            return
        if self._worker is not None and not self._worker.is_alive():
            err = self._worker.error
            raise NdiError(f"the NDI sender {self.ndi_name!r} stopped: {type(err).__name__}: {err}" if err
                           else f"the NDI sender {self.ndi_name!r} stopped")
        if self._sender is None:
            self.open(frame.shape[1], frame.shape[0])
        self._slot.put(frame)  # the shown frame is not changed after it is shown; the thread copies it

    def _run(self) -> None:
        assert self.size is not None
        buf: Optional[np.ndarray] = None
        while True:
            try:
                frame = self._slot.get(timeout=0.5)
            except queue.Empty:
                continue
            except Stopped:
                return
            if frame is EOS:
                return
            buf = bgr_to_bgrx(resize(frame, self.size), buf)  # the sender keeps its size; the idle clip may differ
            self._sender.write_video(buf.reshape(-1))
            self.sent += 1

    def close(self) -> Optional[Path]:
        if self._closed:
            return None
        self._closed = True
        if self._worker is not None:
            self._slot.put(EOS)
            self._worker.join(JOIN_S)
            if self._worker.is_alive():  # a runtime call that hangs: the daemon thread is left, the show ends
                self._stop.set()
                log.warning("the NDI sender %r did not stop within %g s", self.ndi_name, JOIN_S)
        if self._sender is not None:
            sender, self._sender = self._sender, None
            if self._worker is None or not self._worker.is_alive():
                sender.close()
            log.info("NDI: %r closed (%d frames sent, %d dropped)", self.ndi_name, self.sent, self.dropped)
        return None
