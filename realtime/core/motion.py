"""Is anybody there? A motion measure cheap enough to run on every captured frame.

Why this measure: an installation only needs to know whether the scene changed, not where, so the
frame is shrunk to a 32x24 grey thumbnail (area averaging, which also averages sensor noise away:
0.2 ms at 640x480, 0.7 ms at 1280x720 here) and compared with a thumbnail taken ``interval_s``
earlier: slow movements that change little between two consecutive frames still add up over that
interval.  Only one frame per interval is shrunk at all; the others cost a clock comparison.
"""

from __future__ import annotations

import time
from typing import Optional

import cv2
import numpy as np

THUMB = (32, 24)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A 32x24 grey float thumbnail of a BGR (or grey) frame."""
    small = cv2.resize(image, THUMB, interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return small.astype(np.float32)


class MotionMeter:
    """Fed frames (capture thread), it keeps when something last moved (read by the main thread).

    ``level`` is the mean absolute grey change (0-255) against the reference thumbnail; a level of
    at least ``threshold`` counts as motion and stamps ``last_motion``.
    """

    def __init__(self, threshold: float = 2.0, interval_s: float = 0.25, clock=time.monotonic) -> None:
        self.threshold = threshold
        self.interval_s = interval_s
        self._clock = clock
        self._ref: Optional[np.ndarray] = None
        self._ref_t = 0.0
        self.level = 0.0
        self.last_motion = clock()  # a show starts as if somebody had just moved

    def update(self, image: np.ndarray, t: Optional[float] = None) -> float:
        t = self._clock() if t is None else t
        if self._ref is not None and t - self._ref_t < self.interval_s:
            return self.level  # most frames: nothing to do until the interval has passed
        thumb = thumbnail(image)
        if self._ref is not None:
            self.level = float(np.mean(np.abs(thumb - self._ref)))
            if self.level >= self.threshold:
                self.last_motion = t
        self._ref, self._ref_t = thumb, t
        return self.level

    def quiet_s(self, now: Optional[float] = None) -> float:
        """Seconds since something last moved."""
        return max(0.0, (self._clock() if now is None else now) - self.last_motion)

    def reset(self) -> None:
        """After closing hours or a reconnect: the next frames start a fresh comparison."""
        self._ref = None
        self.last_motion = self._clock()
