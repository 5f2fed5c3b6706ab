"""The performer's actions: the tempo (tap_tempo, set_tempo, the beat grid), the crossfade time
(set_crossfade; in beats with a tempo, see :meth:`PerformerActions.crossfade_seconds`), taking a
style from the camera and MIDI learn (and its cancel).

Why apart from :mod:`.controller`: these are the surface a performer plays (pads, OSC, the page's
tap button), with state of their own (the recent taps, a time on the beat), while the controller
is the show's state and its door.  :class:`PerformerActions` is a mixin the
:class:`~.controller.Controller` composes: the actions land in the same table
(:data:`~.actions.ACTIONS`), at the places :data:`TABLE_PLACES` names, so the page, the OSC table
and the key help read as they did.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Optional

from .actions import ActionError, Cause, Param, action

if TYPE_CHECKING:
    from .controller import LiveState

TEMPO_RANGE = (20.0, 300.0)  # beats per minute a tap or set_tempo may give (0 = no tempo)
TAP_RESET_S = 2.0  # a pause longer than this between taps starts a new count
TAP_INTERVALS = 4  # the tempo is the median of the last this many tap intervals
LEARN_TIMEOUT_S = 10.0  # MIDI learn armed this long with nothing moved ends by itself (live/midi.py)
CROSSFADE_RANGE = (0.0, 60.0)  # seconds a style switch's crossfade may take (styles.crossfade_s's range)

# Where each of these actions stands in the table (after the named one): the tempo beside the
# style cycle it times, taking and learning after the files.
TABLE_PLACES: dict[str, str] = {
    "tap_tempo": "set_cycle",
    "set_tempo": "tap_tempo",
    "set_crossfade": "set_tempo",
    "take_style": "snapshot",
    "midi_learn": "take_style",
    "midi_learn_cancel": "midi_learn",
}


def crossfade_seconds_of(bpm: float, crossfade_s: float, beats: float = 0.0) -> float:
    """A style switch's crossfade in seconds for a state's tempo and crossfade time: ``beats``
    beats at ``bpm`` where both are known, else ``crossfade_s``.  A function of the state alone,
    so a recording's timeline can stamp each event with the value (a replay fades the same)."""
    if beats > 0 and bpm > 0:
        return min(CROSSFADE_RANGE[1], beats * 60.0 / bpm)
    return crossfade_s


class PerformerActions:
    """Tempo, takes and MIDI learn, on the controller's state, lock, clock and task queue."""

    # The controller's own (see Controller.__init__).
    _clock: Callable[[], float]
    _lock: threading.Lock
    _state: LiveState
    _set: Callable[..., Any]
    _queue: Callable[..., Future]

    def _init_performer(self) -> None:
        self._taps: list[float] = []  # recent tap_tempo times (controller clock), under _lock
        self._beat_at: Optional[float] = None  # a time that fell on a beat (the last tap, or set_tempo's call)

    @action("tap on the beat: two or more taps set the tempo (median of the last intervals; a 2 s pause starts over)")
    def tap_tempo(self, cause: Cause) -> float:
        """Why a median: one late or doubled tap among five must not throw the tempo off."""
        now = self._clock()
        with self._lock:
            if self._taps and now - self._taps[-1] > TAP_RESET_S:
                self._taps.clear()
            self._taps = (self._taps + [now])[-(TAP_INTERVALS + 1):]
            taps = list(self._taps)
            self._beat_at = now
        if len(taps) < 2:
            return self._state.bpm
        intervals = sorted(b - a for a, b in zip(taps, taps[1:]))
        mid = len(intervals) // 2
        median = intervals[mid] if len(intervals) % 2 else (intervals[mid - 1] + intervals[mid]) / 2
        if median <= 0:
            return self._state.bpm
        bpm = round(min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], 60.0 / median)), 2)
        return self._set(cause, bpm=bpm)

    @action("the tempo in beats per minute (20..300; 0 = none); the call falls on a beat",
            Param("bpm", float, 0.0, TEMPO_RANGE[1]))
    def set_tempo(self, cause: Cause, bpm: float) -> float:
        if 0 < bpm < TEMPO_RANGE[0]:
            raise ActionError(f"set_tempo: 'bpm' must be 0 or in {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g}, got {bpm:g}")
        with self._lock:
            self._taps.clear()
            self._beat_at = self._clock() if bpm else None
        return self._set(cause, bpm=round(bpm, 2))

    def beat_grid(self) -> Optional[tuple[float, float]]:
        """(a time on a beat, seconds per beat) on the controller's clock, or None without a tempo:
        what the style cycle snaps its switches to."""
        bpm, at = self._state.bpm, self._beat_at
        if bpm <= 0 or at is None:
            return None
        return at, 60.0 / bpm

    def crossfade_seconds(self, beats: float = 0.0) -> float:
        """How long a style switch's crossfade lasts now: ``beats`` beats at the show's tempo
        (``show.crossfade_beats``), else, with no tempo or ``beats`` 0, the seconds of
        :meth:`set_crossfade` (``styles.crossfade_s`` at the start)."""
        return crossfade_seconds_of(self._state.bpm, self._state.crossfade_s, beats)

    @action("crossfade time of a style switch in seconds (0 = a cut); with show.crossfade_beats and a tempo, "
            "the switch lasts that many beats instead", Param("seconds", float, *CROSSFADE_RANGE))
    def set_crossfade(self, cause: Cause, seconds: float) -> float:
        return self._set(cause, crossfade_s=round(seconds, 4))

    @action("take a style: the current camera picture becomes a new style (coded off the show's "
            "threads, saved under styles/taken/) and the show crossfades to it; returns the file", main_thread=True)
    def take_style(self, cause: Cause) -> Future:
        # Why main-thread: the live loop owns the shown picture; it hands a copy to the taker's own
        # thread (live/take.py), so neither it nor the inference worker waits for the style network.
        return self._queue(cause, origin=cause.origin)

    @action("MIDI learn: the next control moved on the MIDI controller is bound to ACTION (e.g. set_strength, toggle_pause)",
            Param("action", str), main_thread=True)
    def midi_learn(self, cause: Cause, action: str) -> Future:
        # Why an action: the page (and scripts) steer the MIDI surface through the same door as the
        # show; the surface (live/midi.py) binds the handler, a show without MIDI answers that it has none.
        return self._queue(cause, action=action)

    @action(f"cancel MIDI learn: the armed action is bound to nothing (learning also ends by itself after "
            f"{LEARN_TIMEOUT_S:g} s with nothing moved)", main_thread=True)
    def midi_learn_cancel(self, cause: Cause) -> Future:
        return self._queue(cause)
