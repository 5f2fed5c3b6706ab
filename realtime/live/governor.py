"""The live show's performance governor: trade inference size for frame rate, by measurement.

Why: a live show that cannot keep up drops frames and lags (7 fps and a quarter of a second on a
2-core CPU at 384), where a person expects a smooth picture; the network's cost grows with the
square of the short side, so a smaller size is the one knob that buys frame rate on any machine.
The governor moves the inference short side along a ladder (the configured size, then 336, 288,
256, 224, 192, 160) to hold at least 95% of the target rate:

* **down fast**: one rung as soon as a second of frames shows the rate below 95% of the target
  while the network is what takes the time (a source slower than the target is not our doing);
* **up slowly**: one rung only after the larger size has been predicted (time x pixel ratio) to
  fit in three quarters of the frame budget for ``up_hold_s`` (3 s) on end;
* **no hunting**: a step down soon after a step up doubles the hold before the next try (up to a
  minute), so a size that does not fit is not tried every few seconds;
* the first frame at a new size is not counted (backends compile per size).

It runs on the inference thread (it sees each frame's network time there, and the size change is
applied there, between frames, with a clean cut of the stream's temporal memory).  ``status``
reports the size and why it last moved, for the overlay, ``/api/status`` and the control page.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Optional

log = logging.getLogger(__name__)

LADDER = (384, 336, 288, 256, 224, 192, 160)
DOWN_AT = 0.95  # of the target rate
BUSY_AT = 0.85  # of the frame budget: the network is what takes the time
UP_FITS = 0.75  # of the frame budget: the larger size's predicted time must fit in this
HUNT_S = 10.0  # a step down within this long after a step up: the next try waits twice as long


def ladder_below(top: int, ladder: Sequence[int] = LADDER) -> list[int]:
    """The rungs from ``top`` (the configured size, capped by the source) down."""
    return [top, *(s for s in ladder if s < top)]


class Governor:
    """Holds ``target_fps`` by choosing the inference short side; :meth:`observe` after each frame."""

    def __init__(self, top: int, target_fps: float, clock: Callable[[], float] = time.monotonic,
                 ladder: Sequence[int] = LADDER, window_s: float = 1.0, up_hold_s: float = 3.0) -> None:
        if target_fps <= 0:
            raise ValueError("a governor needs a target frame rate")
        self.rungs = ladder_below(top, ladder)
        self.index = 0
        self.target_fps = target_fps
        self.budget_s = 1.0 / target_fps
        self.window_s = window_s
        self.up_hold_s = up_hold_s
        self._clock = clock
        self._frames: deque[tuple[float, float]] = deque()  # (when done, network seconds)
        self._since = clock()  # when the current size started being measured
        self._skip = 0
        self._last_up = float("-inf")
        self._headroom_since: Optional[float] = None  # since when the next size up has been predicted to fit
        self.moves = 0
        self.reason = f"starting at {top}"

    @property
    def short_side(self) -> int:
        return self.rungs[self.index]

    def observe(self, busy_s: float) -> Optional[int]:
        """One frame was stylized in ``busy_s`` seconds; the new short side when it moves, else None."""
        now = self._clock()
        if self._skip:
            self._skip -= 1
            self._since = now
            return None
        frames = self._frames
        frames.append((now, busy_s))
        while len(frames) > 4 and now - frames[0][0] > self.window_s:
            frames.popleft()
        if now - self._since < self.window_s or len(frames) < 4:
            return None
        span = frames[-1][0] - frames[0][0]
        fps = (len(frames) - 1) / span if span > 0 else float("inf")
        busy = statistics.median(b for _, b in frames)
        size = self.short_side
        if fps < DOWN_AT * self.target_fps and busy > BUSY_AT * self.budget_s and self.index < len(self.rungs) - 1:
            return self._move(+1, now, f"down from {size}: {fps:.1f} fps < {DOWN_AT * self.target_fps:.1f}, "
                                       f"network {busy * 1000:.0f} ms of a {self.budget_s * 1000:.0f} ms frame")
        if self.index > 0:
            larger = self.rungs[self.index - 1]
            predicted = busy * (larger / size) ** 2
            if predicted >= UP_FITS * self.budget_s:
                self._headroom_since = None
            elif self._headroom_since is None:
                self._headroom_since = now
            elif now - self._headroom_since >= self.up_hold_s:
                return self._move(-1, now, f"up from {size}: network {busy * 1000:.0f} ms, "
                                           f"{larger} predicted {predicted * 1000:.0f} ms of a {self.budget_s * 1000:.0f} ms frame")
        return None

    def _move(self, step: int, now: float, why: str) -> int:
        if step > 0 and now - self._last_up < HUNT_S:
            self.up_hold_s = min(self.up_hold_s * 2, 60.0)  # that size did not hold: wait longer before the next try
            why += f" (next try up after {self.up_hold_s:.0f} s)"
        if step < 0:
            self._last_up = now
        self.index += step
        self._frames.clear()
        self._since = now
        self._headroom_since = None
        self._skip = 1  # the first frame at the new size pays for compiling it
        self.moves += 1
        self.reason = why
        log.info("governor: %s -> %d", why, self.short_side)
        return self.short_side

    def status(self) -> dict[str, Any]:
        return {"inference_side": self.short_side, "target_fps": round(self.target_fps, 1), "governor": self.reason}


def target_for(setting: Optional[float], source_fps: float) -> float:
    """``live.target_fps``: None = the source's rate, at most 30; 0 = no governor."""
    if setting is not None:
        return setting
    return min(30.0, source_fps or 30.0)
