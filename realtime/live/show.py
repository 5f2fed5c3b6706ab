"""Unattended shows: control surfaces that run on their own, ticked by the live loop.

Why here and like this: an installation is steered by time, not by a person, so its automatic
parts are control surfaces like the keyboard: they act only through the controller (a person at
the keys or on a page and the cycle never disagree), they take an injectable clock (the tests run
a whole day in seconds), and they are ticked between frames by the main loop, so they need no
threads of their own.

* :class:`AutoCycle`: the next style every ``cycle_s`` (crossfaded by the pipeline), in order or
  shuffled without immediate repeats; a change made by hand (an event whose origin is a person's:
  key, web, api) pauses it for ``resume_s``.
  With ``cycle_beats`` and a tempo known (``tap_tempo``, ``set_tempo``), a switch falls on a beat,
  every ``cycle_beats`` beats.
* :class:`Attract`: attract mode when nothing has moved in front of the camera for a while (a
  slower cycle, another strength, or a prepared clip); the first motion ends it.
* :class:`StatusFile`: the controller's status as JSON, written atomically every few seconds, for
  technicians and monitoring.
* :class:`Heartbeat`: one log line every N minutes (fps, latency, drops, reconnects, memory).
* :class:`OpeningHours`: closes the show outside its hours (the live loop then releases the camera,
  idles the network and shows a black screen or a picture) and opens it again on time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Protocol

from ..core.controller import Controller
from ..core.events import ATTRACT, AUTO, BY_HAND, SCHEDULE, SHOW, ControlEvent
from ..core.motion import MotionMeter
from ..schedule import Schedule, parse_playlist
from ..errors import ConfigError
from ..io.paths import atomic_write_bytes, check_output_dir

log = logging.getLogger(__name__)


class Ticking(Protocol):
    """A control surface that the live loop calls between frames (main thread); one with a
    ``close()`` is called once more as the show ends."""

    def tick(self) -> None: ...


class AutoCycle:
    """Next style every ``state.cycle_s`` seconds (``idle_cycle_s`` in attract mode), or through a
    ``playlist`` of ``(style_index, seconds, strength)`` entries with each one's own time and
    strength; a manual style change pauses it for ``resume_s``.  With ``cycle_s`` 0 and
    ``idle_cycle_s`` set, it cycles only while idle.

    The interval is controller state (``set_cycle``), so a web page turns the cycle on, off or
    faster like any other action; ``cycle_s`` given here sets it at the start.
    """

    def __init__(
        self,
        controller: Controller,
        cycle_s: Optional[float] = None,
        shuffle: bool = False,
        resume_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        rng: Optional[random.Random] = None,
        idle_cycle_s: float = 0.0,
        playlist: Optional[list[tuple[int, Optional[float], Optional[float]]]] = None,
        cycle_beats: int = 0,
    ) -> None:
        self.controller = controller
        self.cycle_beats = cycle_beats
        if cycle_s is not None:
            controller.set_cycle(cycle_s, origin=SHOW)
        self.idle_cycle_s = idle_cycle_s
        self.shuffle = shuffle
        self.resume_s = resume_s
        self._clock = clock
        self._rng = rng or random.Random()
        if playlist:
            self.entries = list(playlist)
            self._pos = -1  # the first tick puts the playlist's first entry on screen
        else:
            self.entries = []  # every style, in order (styles added while running are included)
            self._pos = controller.state.style_index
        self._last = clock()  # when the style last changed
        self._hold_until = float("-inf")  # a person's choice stays until then
        self._applied: Optional[float] = None  # the strength a playlist entry set, while it holds
        self._base: Optional[float] = None  # the strength before it, for entries without their own
        self._lock = threading.Lock()  # tick runs on the live loop, people's changes arrive on any thread
        self.switches = 0
        controller.subscribe(self._on_change)

    def period(self) -> float:
        """Seconds the current style stays: the idle period in attract mode (if set), else the
        playlist entry's own time, else ``cycle_s``."""
        if self.controller.state.idle and self.idle_cycle_s > 0:
            return self.idle_cycle_s
        own = self.entries[self._pos][1] if self.entries and self._pos >= 0 else None
        return own or self.controller.state.cycle_s

    def _due(self, period: float) -> float:
        """When the next switch is due: ``period`` after the last one, or, with ``cycle_beats`` and a
        tempo, the beat nearest to ``cycle_beats`` beats after it (a playlist entry's or the idle
        time snapped to the nearest beat), never the beat of the last switch itself.

        Why snap to the nearest beat: the last switch happened on the first frame after its beat, so
        "period after it" lies a fraction of a frame past a beat; rounding up would lose a beat."""
        grid = self.controller.beat_grid() if self.cycle_beats > 0 else None
        if grid is None:
            return self._last + period
        at, beat = grid
        by_beats = not (self.controller.state.idle and self.idle_cycle_s > 0) and not (
            self.entries and self._pos >= 0 and self.entries[self._pos][1])
        due = self._last + (self.cycle_beats * beat if by_beats else period)
        snapped = at + round((due - at) / beat) * beat
        while snapped <= self._last + beat / 2:
            snapped += beat
        return snapped

    def _entries(self) -> list[tuple[int, Optional[float], Optional[float]]]:
        """The playlist, or every style in order (built only when switching: styles may be added)."""
        return self.entries or [(i, None, None) for i in range(len(self.controller.style_names))]

    def _next_pos(self) -> int:
        entries = self._entries()
        n = len(entries)
        if self._pos < 0:
            return 0
        if not self.shuffle or self.entries:  # a playlist plays in the order it was written (README)
            return (self._pos + 1) % n
        current = self.controller.state.style_index
        choices = [i for i, e in enumerate(entries) if e[0] != current] or list(range(n))
        return self._rng.choice(choices)

    def tick(self) -> None:
        now = self._clock()
        with self._lock:
            if self._pos >= 0:
                period = self.period()
                if period <= 0 or now < self._due(period) or now < self._hold_until:
                    return
                if len(self.entries or self.controller.style_names) < 2:
                    return
            self._pos = self._next_pos()
            index, _, strength = self._entries()[self._pos]
            self._last = now
        idle = self.controller.state.idle
        self.controller.set_style_index(index, origin=AUTO)  # our own events are told apart by origin
        if self.entries and self.controller.mixable and not idle:
            self._entry_strength(strength)
        self.switches += 1

    def _entry_strength(self, strength: Optional[float]) -> None:
        """A playlist entry's own strength, or, for one without, the strength the playlist found
        (it kept the entry before's: "waves 3s 1.2; mosaic 2s" showed mosaic at 1.2 too).  A
        strength set by anyone else meanwhile is the one to come back to."""
        current = self.controller.state.strength
        set_by_us = self._applied is not None and abs(current - self._applied) < 1e-9
        if strength is not None:
            if not set_by_us:
                self._base = current
            self.controller.set_strength(strength, origin=AUTO)
            self._applied = self.controller.state.strength  # as stored (rounded to 4 places), not as asked
        elif self._applied is not None:
            if set_by_us and self._base is not None:
                self.controller.set_strength(self._base, origin=AUTO)
            self._applied = None

    def _on_change(self, event: ControlEvent) -> None:
        """Someone else changed the style: carry on cycling from there; a person's choice (key, web,
        api) also stays on screen for ``resume_s`` first."""
        if "style_index" not in event.changed or event.origin == AUTO:
            return
        with self._lock:
            self._pos = next((i for i, e in enumerate(self._entries()) if e[0] == event.state.style_index), self._pos)
            self._last = self._clock()
            if event.origin not in BY_HAND:
                return  # e.g. the saved state put back at start: the normal pace from there
            self._hold_until = self._last + self.resume_s
            period = self.period()
        if period > 0:  # said only where something cycles: with the cycle off there is nothing to resume
            log.info("style chosen by hand (%s): cycling resumes in %.0f s", event.origin, max(self.resume_s, period))


def resolve_playlist(text: str, style_names: list[str], cycle_s: float) -> list[tuple[int, Optional[float], Optional[float]]]:
    """``show.playlist`` against the loaded styles: unknown names and entries that would never
    change are one-line config errors, before the show starts."""
    entries = parse_playlist(text)
    lower = {n.lower(): i for i, n in enumerate(style_names)}
    out = []
    for e in entries:
        index = lower.get(e.style.lower())
        if index is None:
            raise ConfigError(f"show.playlist: no style named '{e.style}' (loaded: {', '.join(style_names)})")
        if not e.seconds and cycle_s <= 0:
            raise ConfigError(f"show.playlist: '{e.style}' has no time (add e.g. 60s) and show.cycle_s is 0")
        out.append((index, e.seconds, e.strength))
    return out


class Attract:
    """Attract mode: after ``idle_s`` with nothing moving, ``state.idle`` is set (the cycle slows,
    the strength changes, or the live loop shows the idle clip); the first motion clears it.

    ``quiet_s`` says how long nothing has moved (a :class:`~realtime.core.motion.MotionMeter`'s,
    fed on the capture thread); it is a callable so a test can script a day of visitors.
    """

    def __init__(self, controller: Controller, idle_s: float, quiet_s: Callable[[], float],
                 idle_strength: Optional[float] = None) -> None:
        self.controller = controller
        self.idle_s = idle_s
        self.quiet_s = quiet_s
        self.idle_strength = idle_strength if controller.mixable else None
        self._strength_before: Optional[float] = None
        self.entered = 0

    def tick(self) -> None:
        state = self.controller.state
        if not state.open or self.idle_s <= 0:
            return
        quiet = self.quiet_s()
        if not state.idle and quiet >= self.idle_s:
            self.entered += 1
            log.info("attract mode: nothing moved for %.0f s", quiet)
            if self.idle_strength is not None:
                self._strength_before = state.strength
                self.controller.set_strength(self.idle_strength, origin=ATTRACT)
            self.controller.set_idle(True, origin=ATTRACT)
        elif state.idle and quiet < self.idle_s:
            log.info("motion: the live show is back")
            if self._strength_before is not None:
                self.controller.set_strength(self._strength_before, origin=ATTRACT)
                self._strength_before = None
            self.controller.set_idle(False, origin=ATTRACT)


class StatusFile:
    """The controller's status as a JSON file, replaced atomically every ``every_s``."""

    def __init__(self, controller: Controller, path: str | os.PathLike, every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.controller = controller
        self.path = Path(path)
        self.every_s = every_s
        self._clock = clock
        self._last = float("-inf")
        self.writes = 0
        self._failed = False

    def tick(self) -> None:
        now = self._clock()
        if now - self._last < self.every_s:
            return
        self._last = now
        self.write()

    def close(self) -> None:
        """The last status, as the show ends (``running`` false, the final counts)."""
        self.write()

    def write(self) -> None:
        status: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **self.controller.status(),
                                  "memory_mb": memory_mb()}
        try:
            atomic_write_bytes(self.path, (json.dumps(status, indent=1, default=str) + "\n").encode())
        except Exception as exc:  # noqa: BLE001 - monitoring must never end the show
            if not self._failed:
                log.warning("cannot write the status file %s: %s", self.path, exc)
            self._failed = True
            return
        self._failed = False
        self.writes += 1


class Heartbeat:
    """One INFO line every ``every_min`` minutes: what a technician greps the log for."""

    def __init__(self, controller: Controller, every_min: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.controller = controller
        self.every_s = every_min * 60.0
        self._clock = clock
        self._next = clock() + self.every_s
        self.beats = 0

    def tick(self) -> None:
        now = self._clock()
        if self.every_s <= 0 or now < self._next:
            return
        self._next = now + self.every_s
        st = self.controller.status()
        self.beats += 1
        log.info(
            "heartbeat: up %.0f min, display %.1f fps, latency %.0f ms, %s dropped, %s reconnects, style %s, memory %.0f MB",
            st.get("uptime_s", 0) / 60, st.get("display_fps", 0.0), st.get("latency_ms", 0.0), st.get("dropped", 0),
            st.get("reconnects", 0), st.get("style"), memory_mb(),
        )


class OpeningHours:
    """Opens and closes the show on schedule through the controller's ``set_open`` action."""

    def __init__(self, controller: Controller, schedule: Schedule,
                 now: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self.controller = controller
        self.schedule = schedule
        self._now = now
        self.changes = 0
        self._next_cache: tuple[Optional[dt.datetime], Optional[dt.datetime]] = (None, None)  # (minute, next change)
        controller.add_status(self._status)

    def _next_change(self, now: dt.datetime) -> Optional[dt.datetime]:
        """The next open/close time, computed once a minute (the overlay asks for the status per frame)."""
        minute = now.replace(second=0, microsecond=0)
        if self._next_cache[0] != minute:
            self._next_cache = (minute, self.schedule.next_change(now, horizon_days=8))
        return self._next_cache[1]

    def tick(self) -> None:
        should = self.schedule.is_open(self._now())
        if should != self.controller.state.open:
            self.changes += 1
            nxt = self._next_change(self._now())
            log.info("%s by the schedule%s", "opening" if should else "closing",
                     f"; next change {nxt:%a %Y-%m-%d %H:%M}" if nxt else "")
            self.controller.set_open(should, origin=SCHEDULE)

    def _status(self) -> dict[str, Any]:
        now = self._now()
        nxt = self._next_change(now)
        return {"schedule_open": self.schedule.is_open(now), "next_change": nxt.isoformat() if nxt else None}


def process_age_s() -> Optional[float]:
    """Seconds since this process started (Linux /proc, 10 ms steps), so start-up figures count
    the interpreter and the imports too; None elsewhere."""
    try:
        with open("/proc/self/stat") as fh:
            started = int(fh.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")  # field 22
        with open("/proc/uptime") as fh:
            return max(0.0, float(fh.read().split()[0]) - started)
    except (OSError, ValueError, IndexError):
        return None


def memory_mb(peak: bool = False) -> float:
    """Resident memory of this process in MB, now or at its peak (Linux /proc; peak RSS elsewhere).
    /proc's peak (VmHWM) is this program's own: getrusage's also counts the parent that started it
    (Linux carries the parent's peak across fork and exec), so it overstates a child's."""
    key = "VmHWM:" if peak else "VmRSS:"
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except Exception:  # noqa: BLE001
        return 0.0


def show_surfaces(controller: Controller, cfg, clock: Callable[[], float] = time.monotonic,
                  motion: Optional[MotionMeter] = None, fresh: bool = False) -> list[Ticking]:
    """The surfaces ``show:`` in the config asks for (``motion`` feeds attract mode).  With
    ``show.remember``, the saved state is put back last (after the cycle took the config's interval),
    unless ``fresh``: call this before the pipeline reads the state, so it starts on the saved style."""
    show = cfg.show
    out: list[Ticking] = []
    if show.idle_s > 0 and motion is not None:
        out.append(Attract(controller, show.idle_s, motion.quiet_s, show.idle_strength))
    playlist = resolve_playlist(show.playlist, list(controller.style_names), show.cycle_s) if show.playlist else None
    # Always there, even with cycle_s 0: a control page can turn the cycle on (set_cycle).
    out.append(AutoCycle(controller, show.cycle_s, show.shuffle, show.resume_s, clock,
                         idle_cycle_s=show.idle_cycle_s, playlist=playlist, cycle_beats=show.cycle_beats))
    if show.status_file:
        out.append(StatusFile(controller, show.status_file, show.status_every_s, clock))
    if show.heartbeat_min > 0:
        out.append(Heartbeat(controller, show.heartbeat_min, clock))
    schedule = Schedule.parse(show.open_hours, show.closed_dates)
    if not schedule.always_open:
        out.append(OpeningHours(controller, schedule))
    if show.remember:
        from .memory import ShowMemory, state_file

        path = state_file(cfg)
        check_output_dir(path.parent, "show state folder")  # one line now, not a warning per change
        out.append(ShowMemory(controller, path, fresh=fresh, clock=clock))
    return out
