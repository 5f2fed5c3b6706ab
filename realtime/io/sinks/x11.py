"""Touches OpenCV cannot make: the window over the whole screen, and (kiosk) no pointer on it.

Why X11 calls (python-xlib, pure Python): OpenCV's window API has no pointer control, and its
fullscreen flag only *asks* the window manager, so on a bare X server (a kiosk's ``xinit``, no
window manager) the window keeps its size (Qt's 400x300).  Here the window is found by its title,
sized to the screen (kiosk and ``--fullscreen`` alike), and in a kiosk given an invisible pointer (a
1x1 cursor with an empty mask) that applies only over our window, so a technician's pointer
elsewhere still shows.  Where there is no X server (Wayland, macOS, Windows) it does nothing (a
kiosk logs that once; plain fullscreen has the window manager's own): the show goes on.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

log = logging.getLogger(__name__)


class X11Kiosk:
    """One X connection for the life of the window (closing it would undo nothing, but costs nothing).
    ``hide_pointer``: a kiosk (also says when it cannot work); False: fullscreen only, quietly."""

    def __init__(self, title: str, hide_pointer: bool = True) -> None:
        self.title = title
        self.hide_pointer = hide_pointer
        self._display: Any = None
        self._cursor: Any = None
        self.failed = False

    def _connect(self) -> bool:
        if self._display is not None:
            return True
        if self.failed:
            return False
        if not os.environ.get("DISPLAY"):
            self._give_up("no X display (DISPLAY is not set)")
            return False
        try:
            from Xlib import display as xdisplay

            self._display = xdisplay.Display()
            root = self._display.screen().root
            pixmap = root.create_pixmap(1, 1, 1)
            self._cursor = pixmap.create_cursor(pixmap, (0, 0, 0), (0, 0, 0), 0, 0)
            pixmap.free()
        except Exception as exc:  # noqa: BLE001 - a kiosk nicety must never end the show
            self._give_up(f"{type(exc).__name__}: {exc}")
            return False
        return True

    def _give_up(self, why: str) -> None:
        self.failed = True
        if self.hide_pointer:
            log.warning("kiosk: cannot hide the pointer or cover the screen (%s); the show goes on", why)
        else:
            log.debug("fullscreen through X11 not available (%s): the window manager's fullscreen only", why)

    def _find(self, window: Any, depth: int = 0) -> list[Any]:
        found = []
        for child in window.query_tree().children:
            try:
                name = child.get_wm_name()
            except Exception:  # noqa: BLE001 - windows come and go while we look
                name = None
            if name == self.title:
                found.append(child)
            elif depth < 2:  # window managers put a frame around top-level windows
                found += self._find(child, depth + 1)
        return found

    def _blank(self, window: Any) -> None:
        window.change_attributes(cursor=self._cursor)
        for child in window.query_tree().children:
            self._blank(child)

    def apply(self, cover: bool = True) -> bool:
        """Hide the pointer over our window (kiosk) and (``cover``) size it to the screen; True once
        that is how it already was (False: not found yet, or just moved: ask again).

        Why "already": Qt sets its own geometry while it maps a new window, which can land after
        ours (seen with --fullscreen: the window went back to 400x300), so the caller asks until
        the screen size has stuck."""
        if not self._connect():
            return True  # nothing more will ever be done: stop asking
        try:
            screen = self._display.screen()
            want = (0, 0, screen.width_in_pixels, screen.height_in_pixels)
            windows = self._find(screen.root)
            done = bool(windows)
            for w in windows:
                if cover:
                    g = w.get_geometry()
                    if (g.x, g.y, g.width, g.height) != want:
                        w.configure(x=0, y=0, width=want[2], height=want[3])
                        done = False
                if self.hide_pointer:
                    self._blank(w)
            self._display.sync()
        except Exception as exc:  # noqa: BLE001
            log.debug("kiosk: %s", exc)
            return False
        return done

    def screen_size(self) -> tuple[int, ...]:
        """(width, height) of the screen, or () without an X server."""
        if not self._connect():
            return ()
        screen = self._display.screen()
        return (screen.width_in_pixels, screen.height_in_pixels)

    def pointer_visible(self) -> Optional[bool]:
        """Whether the pointer the X server shows right now has any visible pixel (for checks and tests)."""
        if not self._connect():
            return None
        self._display.xfixes_query_version()
        image = self._display.xfixes_get_cursor_image(self._display.screen().root)
        return any(p >> 24 for p in image.cursor_image)

    def close(self) -> None:
        if self._display is not None:
            try:
                self._display.close()
            except Exception:  # noqa: BLE001
                pass
            self._display = None
