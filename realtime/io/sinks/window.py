"""The on-screen window as an output (main thread only).

Why main thread only (opencv/opencv#22602; OpenCV's ``samples/python/video_threaded.py``): macOS
and Qt crash when a window is touched from another thread.  The live loop runs on the main thread and owns this output; the
window's keys are read here too (``poll_key``), and handed to the key table by the live app.

Closing the window with the window manager's close button is a normal way to quit: it is noticed
(``closed``) instead of surfacing as an OpenCV error.  Without a display, opening fails with one
line that points at ``--headless`` instead of Qt aborting the process.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ...errors import UserError
from .base import Output
from .x11 import X11Kiosk

log = logging.getLogger(__name__)

TITLE = "stylize"


def require_display() -> None:
    """Fail with one line where a window cannot open (Qt would abort the whole process)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display to open a window on (DISPLAY is not set, e.g. over ssh): "
                        "use --headless (with --record FILE to keep the picture)")


class WindowOutput(Output):
    """Shows frames in an OpenCV window; ``decorate`` draws the overlay on a copy first."""

    name = "window"

    def __init__(self, fullscreen: bool = False, decorate: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                 title: str = TITLE, kiosk: bool = False) -> None:
        require_display()
        self.title = title
        # Kiosk: the whole screen and no pointer, applied once the window exists (and after toggles).
        self.kiosk: Optional[X11Kiosk] = X11Kiosk(title) if kiosk else None
        self._kiosk_pending = kiosk
        self._kiosk_tries = 0
        self.decorate = decorate
        self.closed = False
        self._fullscreen = fullscreen
        self._size: tuple[int, ...] = ()
        self._screen: tuple[int, ...] = ()  # the screen's size (kiosk), for black bars
        self._shown = 0
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        if fullscreen:
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)

    def set_fullscreen(self, on: bool) -> None:
        if on == self._fullscreen or self.closed:
            return
        self._fullscreen = on
        self._size = ()
        self._kiosk_pending = self.kiosk is not None
        try:
            cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN if on else cv2.WINDOW_NORMAL)
        except cv2.error:
            self.closed = True

    def write(self, frame: np.ndarray, t: float) -> None:
        if self.closed:
            return
        shown = self.decorate(frame) if self.decorate is not None else frame
        try:
            if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self.closed = True  # closed with the window manager's button
                return
            if shown.shape[:2] != self._size and not self._fullscreen:
                self._size = shown.shape[:2]
                cv2.resizeWindow(self.title, shown.shape[1], shown.shape[0])  # follow side-by-side toggles
            if self._fullscreen and self.kiosk is not None:
                shown = self._black_bars(shown)
            cv2.imshow(self.title, shown)
        except cv2.error as exc:
            log.debug("window gone: %s", exc)
            self.closed = True
            return
        self._shown += 1
        if self._kiosk_pending and self.kiosk is not None:
            cv2.waitKey(1)  # let Qt map the window before X11 calls look for it
            self._kiosk_pending = not self.kiosk.apply(cover=self._fullscreen)
            self._kiosk_tries = 0 if not self._kiosk_pending else self._kiosk_tries + 1
            if self._kiosk_tries > 100:  # not an X11 window after all (Wayland): stop looking
                log.warning("kiosk: the window was not found on the X server; pointer not hidden")
                self._kiosk_pending = False

    def _black_bars(self, picture: np.ndarray) -> np.ndarray:
        """Kiosk: pad to the screen's shape with black, as Qt would fill the rest light grey."""
        if not self._screen and self.kiosk is not None:
            self._screen = self.kiosk.screen_size()
        if not self._screen:
            return picture
        w, h = self._screen
        ph, pw = picture.shape[:2]
        if abs(pw * h - ph * w) <= max(w, h):  # same shape within a pixel
            return picture
        if pw * h > ph * w:  # wider than the screen: bars above and below
            extra = round(pw * h / w) - ph
            top, bottom, left, right = extra // 2, extra - extra // 2, 0, 0
        else:
            extra = round(ph * w / h) - pw
            top, bottom, left, right = 0, 0, extra // 2, extra - extra // 2
        return cv2.copyMakeBorder(picture, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))

    def poll_key(self, wait_ms: int = 1) -> int:
        """A key code, or -1; also runs the window's event loop (keep calling it)."""
        if self.closed:
            return -1
        try:
            key = cv2.waitKeyEx(max(1, wait_ms))
            if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self.closed = True
        except cv2.error:
            self.closed = True
            return -1
        return key

    def close(self) -> Optional[Path]:
        if self.kiosk is not None:
            self.kiosk.close()
        try:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
        except cv2.error:
            pass
        self.closed = True
        return None
