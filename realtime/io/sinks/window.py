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
X11_HOLD = 10  # frames in a row the window must be found as wanted (see X11Kiosk.apply)
X11_TRIES = 300  # frames to keep trying (10 s at 30 fps)


def require_display() -> None:
    """Fail with one line where a window cannot open (Qt would abort the whole process)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display to open a window on (DISPLAY is not set, e.g. over ssh): "
                        "use --headless (with --record FILE to keep the picture)")


def fit(picture: np.ndarray, size: Optional[tuple[int, int]]) -> np.ndarray:
    """``picture`` scaled into ``size`` (width, height), aspect kept, black bars around it; as it is
    when ``size`` is None or within 2 pixels of its own (a window manager's rounding)."""
    if size is None:
        return picture
    w, h = size
    ph, pw = picture.shape[:2]
    if abs(pw - w) <= 2 and abs(ph - h) <= 2:
        return picture
    scale = min(w / pw, h / ph)
    nw, nh = max(1, min(w, round(pw * scale))), max(1, min(h, round(ph * scale)))
    resized = cv2.resize(picture, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (h - nh) // 2, (w - nw) // 2
    return cv2.copyMakeBorder(resized, top, h - nh - top, left, w - nw - left, cv2.BORDER_CONSTANT, value=(0, 0, 0))


KIOSK_REOPENS = 100  # a kiosk window closed this often from outside: something is wrong, the show ends


class WindowOutput(Output):
    """Shows frames in an OpenCV window; ``decorate`` draws the overlay on a copy first.

    In fullscreen the picture is scaled to the screen (black bars keep its shape) *before*
    ``decorate`` draws on it, so the overlay's text is drawn at its final size:
    on a kiosk screen it was drawn at the camera's size, scaled up and cut off.  Fullscreen (``f``,
    ``--fullscreen``, kiosk) also sizes the window to the screen through X11 (:mod:`.x11`): OpenCV's
    flag only asks a window manager, and without one the window stayed at Qt's 400x300."""

    name = "window"

    def __init__(self, fullscreen: bool = False, decorate: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                 title: str = TITLE, kiosk: bool = False) -> None:
        require_display()
        self.title = title
        self.kiosk = kiosk
        # The screen's size and (kiosk) no pointer, applied once the window exists (and after toggles).
        self.x11: Optional[X11Kiosk] = X11Kiosk(title, hide_pointer=kiosk) if (kiosk or fullscreen) else None
        self._x11_pending = self.x11 is not None
        self._x11_tries = 0  # X11 calls since the last toggle
        self._x11_held = 0  # ... that found the window as wanted, in a row
        self.decorate = decorate
        self.closed = False
        self._fullscreen = fullscreen
        self._size: tuple[int, ...] = ()
        self._screen: tuple[int, ...] = ()  # the screen's size (from X11), what fullscreen shows at
        self._shown = 0
        self.reopened = 0  # kiosk: times the window was closed from outside and opened again
        self._open_window()

    def _open_window(self) -> None:
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        if self._fullscreen:
            cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)

    def _closed_from_outside(self) -> None:
        """The window manager's close (its button, Alt+F4) or the window destroyed: the show ends,
        except in a kiosk, where only the exit keys end it (a visitor's Alt+F4 ended one): there
        the window is opened again at once, full screen and without a pointer."""
        if not self.kiosk or self.reopened >= KIOSK_REOPENS:
            self.closed = True
            return
        self.reopened += 1
        log.warning("kiosk: the window was closed from outside; opened again (only the exit keys end the show)")
        try:
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                pass
            self._open_window()
        except cv2.error as exc:
            log.debug("window cannot be opened again: %s", exc)
            self.closed = True
            return
        self._shown, self._size = 0, ()
        self._x11_pending = self.x11 is not None
        self._x11_tries = self._x11_held = 0

    @property
    def fullscreen(self) -> bool:
        return self._fullscreen

    def set_fullscreen(self, on: bool) -> None:
        if on == self._fullscreen or self.closed:
            return
        self._fullscreen = on
        self._size = ()
        if on and self.x11 is None:
            self.x11 = X11Kiosk(self.title, hide_pointer=False)
        self._x11_pending = self.x11 is not None
        self._x11_tries = self._x11_held = 0
        try:
            cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN if on else cv2.WINDOW_NORMAL)
        except cv2.error:
            self.closed = True

    def display_size(self) -> Optional[tuple[int, int]]:
        """(width, height) the picture is shown at in fullscreen: the screen (from X11), or where
        there is no X11 (Wayland, macOS, Windows) the window's image area once it is on screen.
        None in a window: it is sized to the picture (``resizeWindow``), and while Qt lays a window
        out its image area reads as odd transient sizes (seen: 400x114), no size to draw at."""
        if not self._fullscreen:
            return None
        if self.x11 is not None and not self.x11.failed:
            if not self._screen:
                self._screen = self.x11.screen_size()
            if self._screen:
                return (int(self._screen[0]), int(self._screen[1]))
        if not self._shown:
            return None
        try:
            _, _, w, h = cv2.getWindowImageRect(self.title)
        except cv2.error:
            return None
        return (w, h) if w >= 32 and h >= 32 else None

    def write(self, frame: np.ndarray, t: float) -> None:
        if self.closed:
            return
        try:
            if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self._closed_from_outside()  # the window manager's button
                if self.closed:
                    return
            if frame.shape[:2] != self._size and not self._fullscreen:
                self._size = frame.shape[:2]
                cv2.resizeWindow(self.title, frame.shape[1], frame.shape[0])  # follow side-by-side toggles
            picture = fit(frame, self.display_size())
            shown = self.decorate(picture) if self.decorate is not None else picture
            cv2.imshow(self.title, shown)
        except cv2.error as exc:
            log.debug("window gone: %s", exc)
            self._closed_from_outside()
            return
        self._shown += 1
        if self._x11_pending and self.x11 is not None:
            self._apply_x11()

    def _apply_x11(self) -> None:
        """Screen size and pointer by X11 until they have held for :data:`X11_HOLD` frames in a row
        (Qt may move a window it is still mapping); given up after :data:`X11_TRIES`."""
        assert self.x11 is not None
        cv2.waitKey(1)  # let Qt map the window before X11 calls look for it
        self._x11_tries += 1
        self._x11_held = self._x11_held + 1 if self.x11.apply(cover=self._fullscreen) else 0
        if self._x11_held >= X11_HOLD or self.x11.failed:
            self._x11_pending = False
        elif self._x11_tries > X11_TRIES:  # not an X11 window after all (Wayland), or a window manager that says no
            if self.kiosk:
                log.warning("kiosk: the window could not be found or sized on the X server; pointer and size left as they are")
            self._x11_pending = False

    def poll_key(self, wait_ms: int = 1) -> int:
        """A key code, or -1; also runs the window's event loop (keep calling it)."""
        if self.closed:
            return -1
        try:
            key = cv2.waitKeyEx(max(1, wait_ms))
            if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self._closed_from_outside()
        except cv2.error:
            self._closed_from_outside()
            return -1
        return key

    def close(self) -> Optional[Path]:
        if self.x11 is not None:
            self.x11.close()
        try:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
        except cv2.error:
            pass
        self.closed = True
        return None
