"""Smooth style changes: style codes are crossfaded instead of switched, so a change never pops.

Codes are points in the network's style space; a straight line between two of them gives a
continuous morph of the picture (the same arithmetic as strength and blends).  ``smoothstep`` eases
in and out so the change has no visible start or end.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np


def smoothstep(a: float) -> float:
    a = min(1.0, max(0.0, a))
    return a * a * (3.0 - 2.0 * a)


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return ((1.0 - t) * a + t * b).astype(np.float32)


class CodeFader:
    """Live code with crossfades: ``set_target`` from any thread, ``current`` from the worker.

    Each fade keeps the length it started with: a new crossfade time (``set_crossfade``, or a tempo
    change with the crossfade in beats) applies from the next switch, never to one halfway through."""

    def __init__(self, code: np.ndarray, crossfade_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.crossfade_s = crossfade_s  # the length of a fade that is given none
        self._fade_s = crossfade_s  # the length of the current fade
        self._from = self._to = np.asarray(code, np.float32)
        self._t0 = -1e9

    def set_target(self, code: np.ndarray, crossfade_s: Optional[float] = None) -> None:
        """Fade to ``code`` over ``crossfade_s`` seconds (None: :attr:`crossfade_s`)."""
        with self._lock:
            now = self._clock()
            self._from = self._value(now)
            self._to = np.asarray(code, np.float32)
            self._t0 = now
            self._fade_s = self.crossfade_s if crossfade_s is None else crossfade_s

    def _value(self, now: float) -> np.ndarray:
        if self._fade_s <= 0:
            return self._to
        a = smoothstep((now - self._t0) / self._fade_s)
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


@dataclass(frozen=True)
class Replay:
    """A recorded performance as plain data (issue #28): from ``times[i]`` (seconds from the first
    frame) on, style ``styles[i]`` (an index into the run's codes), ``strengths[i]`` and
    ``stabilities[i]``, and a style switch there fades over ``crossfades[i]`` seconds (the show's
    crossfade time then: ``set_crossfade``, or beats at the tempo; empty: ``crossfade_s`` for every
    switch); ``times[0]`` is 0.  Plain data so that it can sit in the frozen options and travel to
    a cluster's workers, and everything is a function of media time alone, so a segment of the file
    gets the same values at its frames as the whole-file run."""

    times: tuple[float, ...]
    styles: tuple[int, ...]
    strengths: tuple[float, ...]
    stabilities: tuple[float, ...]
    crossfade_s: float = 0.0
    crossfades: tuple[float, ...] = ()

    def fade_at(self, i: int) -> float:
        """The crossfade of a switch at ``times[i]``."""
        return self.crossfades[i] if self.crossfades else self.crossfade_s

    @property
    def mixes(self) -> bool:
        """Whether any part needs the strength mix (the content's own code)."""
        return any(s != 1.0 for s in self.strengths)


class ReplaySchedule:
    """Per frame of a replay: the code (crossfading at each style switch as the live show's
    :class:`CodeFader` did: from wherever the fade was towards the new style), the strength, the
    stability, and the style slot (a new slot is a style switch: the stabiliser starts over).
    Each switch fades over the crossfade time in effect when it happened; a later change of that
    time does not touch a fade under way (as :class:`CodeFader`)."""

    def __init__(self, codes: Sequence[np.ndarray], replay: Replay) -> None:
        if not replay.times or replay.times[0] != 0.0:
            raise ValueError("a replay starts at 0")
        self.codes = [np.asarray(c, np.float32) for c in codes]
        self.replay = replay
        if replay.crossfades and len(replay.crossfades) != len(replay.times):
            raise ValueError("one crossfade per replay state")
        # Each style switch: (time, the code it fades from, the code it fades to, the fade's length).
        first = self.codes[replay.styles[0]]
        self.switches: list[tuple[float, np.ndarray, np.ndarray, float]] = [(0.0, first, first, 0.0)]
        self._switch_times = [0.0]
        for i, (t, k, prev) in enumerate(zip(replay.times[1:], replay.styles[1:], replay.styles), 1):
            if k != prev:
                self.switches.append((t, self._at(t), self.codes[k], replay.fade_at(i)))
                self._switch_times.append(t)

    def _index(self, t: float) -> int:
        return max(0, bisect.bisect_right(self.replay.times, t) - 1)

    def _at(self, t: float) -> np.ndarray:
        t0, a, b, fade = self.switches[max(0, bisect.bisect_right(self._switch_times, t) - 1)]
        if fade <= 0 or t - t0 >= fade:
            return b
        return mix(a, b, smoothstep((t - t0) / fade))

    def slot_at(self, t: float) -> int:
        return max(0, bisect.bisect_right(self._switch_times, t) - 1)

    def code_at(self, t: float) -> np.ndarray:
        return self._at(t)

    def strength_at(self, t: float) -> float:
        return self.replay.strengths[self._index(t)]

    def stability_at(self, t: float) -> float:
        return self.replay.stabilities[self._index(t)]
