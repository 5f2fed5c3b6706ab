"""The output interface and the fan-out that feeds every output the same frames.

Why (supervision's ``VideoSink``, pyvirtualcam's ``Camera``): an output is small and
context-managed: ``write(frame, t)`` and ``close()``.  The live loop does not know what is
listening (a window, a recording, a preview stream, a virtual camera): it hands each shown frame
to :class:`Outputs`, which checks the frame once and isolates failures, so a broken output is
reported and detached instead of ending the show or losing the recording.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Optional

import numpy as np

log = logging.getLogger(__name__)


def check_frame(frame: np.ndarray) -> None:
    """Outputs take BGR uint8 [H, W, 3]: anything else is a bug upstream, caught here loudly."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        what = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"outputs take BGR uint8 [H, W, 3] frames, got {what}")


class Output(ABC):
    """Consumes shown frames (BGR uint8) with their capture time (monotonic seconds)."""

    #: shown in logs and the status
    name: str = "output"

    @abstractmethod
    def write(self, frame: np.ndarray, t: float) -> None:
        """Hand over one frame; must not block the caller for long."""

    @abstractmethod
    def close(self) -> Optional[Path]:
        """Finish; return the finished file, if any. Idempotent."""

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Outputs:
    """Fan-out to several outputs; one that raises is logged, closed and detached."""

    def __init__(self) -> None:
        self._items: list[Output] = []
        self._lock = threading.Lock()
        self.failed: list[tuple[str, str]] = []
        self.finished: list[Path] = []

    def add(self, output: Output) -> Output:
        with self._lock:
            self._items.append(output)
        return output

    def remove(self, output: Output) -> Optional[Path]:
        """Detach and close ``output``; returns its finished file, if any."""
        with self._lock:
            if output in self._items:
                self._items.remove(output)
        return self._close(output)

    @property
    def items(self) -> list[Output]:
        with self._lock:
            return list(self._items)

    def write(self, frame: np.ndarray, t: float) -> None:
        check_frame(frame)
        for out in self.items:
            try:
                out.write(frame, t)
            except Exception as exc:  # noqa: BLE001 - one broken output must not end the show
                log.error("output %s failed (%s: %s); detached, the show goes on", out.name, type(exc).__name__, exc)
                self.failed.append((out.name, f"{type(exc).__name__}: {exc}"))
                self.remove(out)

    def close(self) -> list[Path]:
        """Close every output (recordings are finalized); returns the files finished now."""
        with self._lock:
            items, self._items = self._items, []
        done = [p for p in (self._close(o) for o in reversed(items)) if p is not None]
        return done

    def _close(self, output: Output) -> Optional[Path]:
        try:
            path = output.close()
        except Exception as exc:  # noqa: BLE001 - keep closing the others
            log.error("closing output %s failed: %s", output.name, exc)
            return None
        if path is not None:
            self.finished.append(path)
        return path

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
