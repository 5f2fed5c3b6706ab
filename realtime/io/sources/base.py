"""The frame-source interface: camera, video file, network stream, synthetic pattern.

Why an interface: the live pipeline does not care where frames come from, and the tests need
sources with no camera.  Each source says whether it is *live* (frames keep coming whether we read
them or not: the pipeline keeps only the newest, counting drops) or not (a file: nothing may be
dropped, so the pipeline blocks).  Opening fails fast with a message that says what to check;
properties a device reports are read back after setting them, because capture drivers ignore
requests silently.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Optional

import numpy as np


class FrameSource(ABC):
    """A source of BGR frames. ``read`` returns None at end of stream; ``close`` is idempotent."""

    live: bool = True
    #: the last frame ``read`` returned is a stand-in (a supervised source while its camera is away)
    away: bool = False
    #: an end of stream (``read`` -> None) is the source's natural end (a file), not a loss (a
    #: camera or stream that stopped: with --no-reconnect the show ends on it, and says so)
    has_an_end: bool = False

    @abstractmethod
    def open(self) -> None:
        """Open the device/file; raise MediaError with a useful message when it cannot."""

    @abstractmethod
    def read(self) -> Optional[np.ndarray]:
        """The next BGR frame (blocks for at most about one frame interval), or None at the end."""

    def close(self) -> None:  # noqa: B027 - optional
        pass

    _fps: float = 0.0
    _size: tuple[int, int] = (0, 0)

    @property
    def fps(self) -> float:
        """Nominal frame rate (0 when unknown)."""
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames (known after ``open``)."""
        return self._size

    def describe(self) -> str:
        return type(self).__name__

    def counters(self) -> dict[str, int]:
        """Figures for the status (reconnects, stalls); none by default."""
        return {}

    def __enter__(self) -> "FrameSource":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pacer:
    """Releases frames at a fixed rate; after a stall it restarts the schedule instead of bursting."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps
        self._next = time.monotonic()

    def wait(self) -> None:
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next + self.interval, time.monotonic() - self.interval)
