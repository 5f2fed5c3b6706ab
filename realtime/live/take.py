"""A camera that takes styles (issue 28): the picture in front of the camera becomes a style.

Why a thread of its own: the style network takes a noticeable moment per image (longer than a
frame), and neither the window's thread (which shows the frames) nor the inference worker (which
makes them) may wait for it.  The live loop hands the taker a copy of the current source picture;
here it is saved atomically under ``<upload_dir>/taken/taken-YYYYmmdd-HHMMSS.jpg``, coded the way
an upload from the page is (the same ``code_for``, the same cache), joins the show whole (code
first, then the name), and the show switches to it, which the pipeline crossfades.

At most ``taken_max`` taken styles stay in the show: past that, the new one takes the slot of the
oldest taken one (:meth:`~realtime.core.controller.Controller.replace_style`; no index moves), whose
file stays on disk.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from ..core.controller import Controller
from ..core.events import API
from ..core.styleset import StyleEntry
from ..errors import UserError
from ..io.paths import atomic_write_bytes
from ..model.styles import Style

log = logging.getLogger(__name__)

JPEG_QUALITY = 92


class TakeError(UserError):
    """A take that cannot be made (no picture yet, the folder full): one line, never a crash."""


@dataclass(frozen=True)
class Taken:
    """A finished take: the style's name, its slot in the show, its file, and the style it replaced."""

    name: str
    index: int
    path: Path
    replaced: Optional[str] = None


class StyleTaker:
    """Turns pictures into styles on its own thread, one at a time, in the order they came."""

    def __init__(
        self,
        controller: Controller,
        folder: Path,
        code_for: Callable[[Style], np.ndarray],
        taken_max: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``folder``: where the pictures are kept (``Config.upload_dir / "taken"``); ``code_for``:
        the style bank's, as for uploads; ``clock``: wall time, for the file names."""
        if taken_max < 1:
            raise ValueError("taken_max must be at least 1")
        self.controller = controller
        self.folder = Path(folder)
        self._code_for = code_for
        self.taken_max = taken_max
        self._clock = clock
        self._taken: collections.deque[str] = collections.deque()  # names in the show, oldest first (taker thread only)
        self._jobs: queue.Queue[Optional[tuple[np.ndarray, str, Future]]] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # submit vs. close: every Future is answered
        self._thread: Optional[threading.Thread] = None
        self.last: Optional[Future] = None  # the latest take's Future (tests, the status)

    def submit(self, picture: np.ndarray, origin: str = API) -> Future:
        """Take ``picture`` (BGR uint8, the caller's copy) as a style; the Future gets a :class:`Taken`
        or the error.  Returns at once."""
        if picture is None or picture.ndim != 3 or picture.shape[2] != 3 or picture.size == 0:
            raise TakeError("take_style: no picture to take")
        fut: Future = Future()
        with self._lock:
            if self._stop.is_set():
                fut.cancel()
                return fut
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="style-taker", daemon=True)
                self._thread.start()
            self._jobs.put((picture, origin, fut))
            self.last = fut
        return fut

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (a take in progress finishes; queued ones are cancelled) and join it."""
        with self._lock:
            self._stop.set()
            thread = self._thread
            self._jobs.put(None)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the style taker did not stop within %.0f s", timeout)
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job[2].cancel()

    # -- the taker's thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            job = self._jobs.get()
            if job is None:
                return
            picture, origin, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(self._take(picture, origin))
            except Exception as exc:  # noqa: BLE001 - answered to the caller, the show goes on
                log.error("take_style failed: %s", exc)
                fut.set_exception(exc)

    def _take(self, picture: np.ndarray, origin: str) -> Taken:
        path = self._save(picture)
        name = path.stem
        try:
            code = self._code_for(Style(name, path))
        except UserError as exc:
            raise TakeError(f"take_style: the style network refused the picture: {exc}") from None
        entry = StyleEntry(name, path, code)
        replaced = None
        slot = self.controller.styles.index_of(self._taken[0]) if len(self._taken) >= self.taken_max else None
        if slot is not None:
            replaced = self.controller.replace_style(slot, entry, origin=origin).name
            self._taken.popleft()
            index = slot
        else:
            if len(self._taken) >= self.taken_max:  # the oldest is gone from the show already
                self._taken.popleft()
            index = self.controller.add_style(entry, origin=origin)
        self._taken.append(name)
        self.controller.set_style_index(index, origin=origin)  # crossfaded by the pipeline
        log.info("took a style: %s (%dx%d)%s", path, picture.shape[1], picture.shape[0],
                 f", {replaced} left the show" if replaced else "")
        return Taken(name, index, path, replaced)

    def _save(self, picture: np.ndarray) -> Path:
        """The picture as ``taken-YYYYmmdd-HHMMSS[-N].jpg``, written atomically, never over a file."""
        ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise TakeError("take_style: the picture could not be encoded")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TakeError(f"take_style: cannot make {self.folder}: {exc.strerror or exc}") from None
        stem = "taken-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(self._clock()))
        path, n = self.folder / f"{stem}.jpg", 2
        while path.exists() or self.controller.styles.index_of(path.stem) is not None:
            path, n = self.folder / f"{stem}-{n}.jpg", n + 1
        return atomic_write_bytes(path, buf.tobytes(), overwrite=False)
