"""The first seconds of ``stylize live``: a window at once, with a card that says what is loading.

Why: on a small machine loading the network, computing the style codes and warming up take 8-14 s,
and a command that shows nothing for that long looks broken.  So the window opens as soon as the
camera has (a one-line error for anything that can fail fast comes before), the slow part runs on a
worker thread (:func:`~realtime.core.workers.call_interruptibly`), and the main thread, which owns
the window (PITFALLS 1), redraws the card and reads keys while it waits.  The same card is the
control page's preview until the first stylized frame.

Quitting while it loads (q, Esc, the window's close button; in kiosk mode only the exit keys) is
honoured once the load has returned: Python cannot stop a thread inside a native call, and leaving
one behind in TensorFlow's import makes the interpreter's exit unreliable.  The card says so.
Ctrl-C and SIGTERM still end the command at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import numpy as np

from ..io.sinks.window import WindowOutput
from .keymap import ExitKeys, ends_the_show
from .overlay import card

log = logging.getLogger(__name__)

TITLE = "loading the network..."
REDRAW_S = 0.25  # the card's seconds counter moves; keys are read every POLL_MS in between
POLL_MS = 50


def startup_card(size: tuple[int, int], stage: str, elapsed_s: Optional[float] = None, hint: str = "",
                 title: str = TITLE) -> np.ndarray:
    """The card: ``title``, what is being done now, the seconds so far, and a hint (BGR uint8)."""
    lines = [stage] + ([f"{elapsed_s:.0f} s"] if elapsed_s is not None else []) + ([hint] if hint else [])
    return card(size, title, lines)


class StartupCard:
    """Shows the card in ``window`` while the network loads on another thread; ``progress`` is
    called from that thread with what it is doing, :meth:`tick` on the main thread while waiting."""

    def __init__(self, window: WindowOutput, size: tuple[int, int], kiosk: bool = False, exit_keys: str = "",
                 clock=time.monotonic) -> None:
        self.window = window
        self.size = size
        self.kiosk = kiosk
        self._exit = ExitKeys(exit_keys, clock)
        self._clock = clock
        self._t0 = clock()
        self._stage = "starting"
        self._lock = threading.Lock()
        self._drawn_at = float("-inf")
        self.stopping = False
        self.cards = 0

    def progress(self, stage: str) -> None:
        """What the load does now (any thread); the card shows it at its next redraw."""
        log.debug("start-up: %s", stage)
        with self._lock:
            self._stage = stage
        self._drawn_at = float("-inf")

    def tick(self) -> None:
        """Redraw the card when due, then read keys for up to :data:`POLL_MS` (main thread)."""
        now = self._clock()
        if now - self._drawn_at >= REDRAW_S:
            self._drawn_at = now
            self.draw(now)
        key = self.window.poll_key(POLL_MS)
        if not self.stopping and (self.window.closed or ends_the_show(key, self.kiosk, self._exit)):
            self.stopping = True
            self._drawn_at = float("-inf")
            log.info("quit while loading: stopping once the network has loaded")

    def draw(self, now: Optional[float] = None) -> None:
        now = self._clock() if now is None else now
        with self._lock:
            stage = self._stage
        size = self.window.display_size() or self.size
        if self.stopping:
            picture = startup_card(size, "the network cannot be interrupted while it loads", now - self._t0,
                                   title="stopping...")
        else:
            picture = startup_card(size, stage, now - self._t0, "" if self.kiosk else "q or Esc quits")
        self.window.write(picture, now)
        self.cards += 1
