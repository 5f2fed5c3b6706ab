"""Smooth style changes: style codes are crossfaded instead of switched, so a change never pops.

Codes are points in the network's style space; a straight line between two of them gives a
continuous morph of the picture (the same arithmetic as strength and blends).  ``smoothstep`` eases
in and out so the change has no visible start or end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np


def smoothstep(a: float) -> float:
    a = min(1.0, max(0.0, a))
    return a * a * (3.0 - 2.0 * a)


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return ((1.0 - t) * a + t * b).astype(np.float32)


class CodeFader:
    """Live code with crossfades: ``set_target`` from any thread, ``current`` from the worker."""

    def __init__(self, code: np.ndarray, crossfade_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.crossfade_s = crossfade_s
        self._from = self._to = np.asarray(code, np.float32)
        self._t0 = -1e9

    def set_target(self, code: np.ndarray) -> None:
        with self._lock:
            now = self._clock()
            self._from = self._value(now)
            self._to = np.asarray(code, np.float32)
            self._t0 = now

    def _value(self, now: float) -> np.ndarray:
        if self.crossfade_s <= 0:
            return self._to
        a = smoothstep((now - self._t0) / self.crossfade_s)
        return self._to if a >= 1.0 else mix(self._from, self._to, a)

    def current(self) -> np.ndarray:
        with self._lock:
            return self._value(self._clock())


class StyleSchedule:
    """Video files: style k for ``switch_every`` seconds each, in a loop, crossfading at each change."""

    def __init__(self, codes: Sequence[np.ndarray], switch_every: float, crossfade_s: float) -> None:
        if not codes:
            raise ValueError("at least one style code")
        self.codes = [np.asarray(c, np.float32) for c in codes]
        self.switch_every = switch_every
        self.crossfade_s = min(crossfade_s, switch_every) if switch_every > 0 else 0.0

    def code_at(self, t: float) -> np.ndarray:
        n = len(self.codes)
        if n == 1 or self.switch_every <= 0:
            return self.codes[0]
        k = int(t // self.switch_every)
        into = t - k * self.switch_every
        cur = self.codes[k % n]
        if k > 0 and self.crossfade_s > 0 and into < self.crossfade_s:
            return mix(self.codes[(k - 1) % n], cur, smoothstep(into / self.crossfade_s))
        return cur
