"""A live recording's timeline: what was changed, by whom, and when on the recording's own clock.

Why (issue #28, a performance re-rendered offline): a live show is stylized at the size and frame
rate the machine could hold; the timeline lets the same performance be stylized again from a raw
recording, at any size, every frame.  So it keeps the state the recording started with and every
control event during it, each at its *media time*: seconds from the recording's first frame on the
clock of the recorded frames' timestamps (capture times, monotonic), so an event at media time
``t`` happened before every frame whose pts is later than ``t``.

How it survives a crash: the file is one JSON document, rewritten whole (temp file, rename) at
most every :data:`SYNC_S` while it has news, from the recorder's own thread, and once more when
the recording ends (``"complete": true``; that one fsynced before its rename, and its folder after).  A rewrite was chosen over appended JSON lines because
events come at a person's pace (a few a second at most, a fader's burst folded into one rewrite),
the reader gets one format whether the show ended well or not, and a file that was renamed into
place is never torn: after ``kill -9`` or a power cut it holds everything up to the last second.

The file sits beside the recording: ``NAME.timeline.json`` for ``NAME.mp4``.  ``video`` names the
recording; ``source`` (``NAME.source.mp4``, or null) the camera's own frames kept with it
(``--record-source``), on the same clock: a replay of this timeline on that file lines up frame for
frame, and ``stylize video --timeline NAME.timeline.json`` finds it by this name.  A recording
recovered after a crash takes its timeline with it (:func:`realtime.io.recovery.recover_recording`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from ...core.controller import STRENGTH_RANGE
from ...errors import MediaError
from ..paths import OutputError, atomic_write_bytes, source_path
from ..paths import timeline_path as timeline_path

log = logging.getLogger(__name__)

FORMAT = "realtime-timeline"
VERSION = 1
SYNC_S = 1.0  # the longest a change waits before it is on the disk (a crash loses at most this much)


class Timeline:
    """The timeline of one recording.  ``initial``: called once, at the first frame, for the state
    the recording starts with (a dict); :meth:`add` takes an event's dict from any thread.
    ``source``: the recording keeps its source file (``NAME.source.mp4``), named in the file."""

    def __init__(self, video: Path, initial: Callable[[], dict[str, Any]], clock: Callable[[], float] = time.monotonic,
                 source: bool = False) -> None:
        self.video = Path(video)
        self.source: Optional[Path] = source_path(self.video) if source else None
        self.path = timeline_path(self.video)
        self._initial_of = initial
        self._clock = clock
        self._lock = threading.Lock()  # the data: events come from any thread
        self._write_lock = threading.Lock()  # one rewrite at a time (the recorder's thread, then close)
        self._t0: Optional[float] = None
        self._started: Optional[str] = None
        self._initial: dict[str, Any] = {}
        self._events: list[dict[str, Any]] = []
        self._end_s: Optional[float] = None
        self._dirty = False
        self._written = -1e9
        self.closed = False
        self._complete = False  # closed with its recording published (a recording left to recovery is not)
        self.failure: Optional[str] = None

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def start(self, t0: float) -> None:
        """The recording's first frame, captured at ``t0`` (monotonic): media time 0.  Events
        before it are in the initial state (it is read now), so they are not listed."""
        with self._lock:
            if self._t0 is not None:
                return
            self._t0 = t0
            self._started = datetime.now().astimezone().isoformat(timespec="milliseconds")
            self._initial = self._initial_of()
            self._dirty = True

    def frame(self, t: float) -> None:
        """A frame went into the recording at ``t``: the end of the timeline moves with it."""
        with self._lock:
            if self._t0 is not None:
                self._end_s = round(t - self._t0, 3)

    def add(self, entry: dict[str, Any]) -> None:
        """An event, stamped now with its media time (any thread; quick: no file work here)."""
        now = self._clock()
        with self._lock:
            if self._t0 is None or self.closed:
                return
            self._events.append({"t": round(max(0.0, now - self._t0), 3), **entry})
            self._dirty = True

    def flush(self, force: bool = False, durable: bool = False) -> None:
        """Rewrite the file if it has news and :data:`SYNC_S` passed (``force``: now).  A failure
        is logged once and kept in :attr:`failure`; the recording goes on.  The rewrites while
        recording are atomic but not fsynced (they run on the recorder's encoder thread, and an
        fsync on slow storage would hold its frames up); the last one (``durable``) is."""
        with self._write_lock:
            with self._lock:
                if not self._dirty or self._t0 is None or (not force and self._clock() - self._written < SYNC_S):
                    return
                doc = self._document()
                self._dirty = False
                self._written = self._clock()
            try:
                _write_json(self.path, doc, durable)
            except (OutputError, OSError) as exc:
                if self.failure is None:
                    log.error("timeline %s not written: %s", self.path, exc)
                self.failure = str(exc)

    def close(self, video: Optional[Path], source: Optional[Path] = None) -> Optional[Path]:
        """The recording ended as ``video`` (None: no file was kept) and its source as ``source``
        (None: none kept): the final timeline beside it, or none (a timeline written so far is
        removed with a recording that left nothing)."""
        with self._lock:
            if self.closed:
                return self.path if video is not None else None
            self.closed = True
            self._complete = True
            self._dirty = True
            self.source = Path(source) if source is not None else None
            if video is not None and Path(video) != self.video:  # the recorder chose another name
                old, self.video, self.path = self.path, Path(video), timeline_path(Path(video))
                old.unlink(missing_ok=True)
        if video is None or self._t0 is None:
            self.path.unlink(missing_ok=True)
            return None
        self.flush(force=True, durable=True)
        if self.failure is None:
            log.info("saved timeline %s (%d events)", self.path, len(self._events))
        return self.path if self.failure is None else None

    def leave(self) -> None:
        """The recording was left in its temp files for the next run to recover (a stuck encoder,
        a name it could not take): the timeline stops taking events and stays as it is, not
        complete, naming the files it was meant for, so the recovery moves it along with them."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._dirty = True
        self.flush(force=True, durable=True)

    def _document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "video": self.video.name,
            "source": self.source.name if self.source is not None else None,
            "started": self._started,
            "complete": self._complete,
            "duration_s": self._end_s if self._end_s is not None else 0.0,
            "initial": self._initial,
            "events": list(self._events),
        }


def _write_json(path: Path, doc: dict[str, Any], durable: bool) -> None:
    """Atomically; ``durable``: on the disk before the rename (a power cut leaves the old file or the new)."""
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode("utf-8"), durable=durable)


@dataclass(frozen=True)
class TimelineState:
    """The show's state from media time ``t`` on: what a replay acts on (other actions, such as
    mirror or overlay, change nothing here and are left out)."""

    t: float
    style: str
    style_path: Optional[str]
    strength: float
    stability: float
    crossfade_s: float = 0.0  # how long a style switch at ``t`` fades (the show's crossfade time then)


@dataclass(frozen=True)
class TimelineFile:
    """A timeline as read back: the initial state at ``t = 0``, then each *change* of style,
    strength or stability in order (each with the crossfade time in effect then: a switch fades
    over it), and the crossfade time the show started with."""

    path: Path
    states: tuple[TimelineState, ...]
    crossfade_s: float
    source: Optional[Path] = None  # the recording's source file beside the timeline (None: not named)


def read_timeline(path: Path) -> TimelineFile:
    """Read ``NAME.timeline.json`` (format version 1) for a replay.  Why one check here: a replay
    runs minutes of network work, so every fault of the file is said in one line before it starts."""
    path = Path(path)

    def bad(why: str) -> MediaError:
        return MediaError(f"timeline {path}: {why}")

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MediaError(f"timeline not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(f"cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad(f"not a {FORMAT} file")
    if doc.get("version") != VERSION:
        raise bad(f"format version {doc.get('version')!r} is not supported (this program reads {VERSION})")
    initial, events = doc.get("initial"), doc.get("events")
    if not isinstance(initial, dict) or not isinstance(events, list):
        raise bad("'initial' must be an object and 'events' a list")

    def state(entry: Any, t: float, where: str) -> TimelineState:
        if not isinstance(entry, dict):
            raise bad(f"{where} is not an object")
        style, style_path = entry.get("style"), entry.get("style_path")
        strength, stability = entry.get("strength"), entry.get("stability")
        if not isinstance(style, str) or not style:
            raise bad(f"{where}: 'style' must be a name")
        if style_path is not None and not isinstance(style_path, str):
            raise bad(f"{where}: 'style_path' must be a path or null")
        for key, v in (("strength", strength), ("stability", stability)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(f"{where}: {key!r} must be a number")
        if not 0.0 <= stability <= 1.0:
            raise bad(f"{where}: 'stability' {stability} is outside 0..1")
        lo, hi = STRENGTH_RANGE  # what a show can set, so what a recording of one holds
        if not lo <= strength <= hi:
            raise bad(f"{where}: 'strength' {strength} is outside {lo:g}..{hi:g}")
        return TimelineState(t, style, style_path, float(strength), float(stability))

    def seconds(v: Any, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 60:
            raise bad(f"{where} must be seconds in 0..60")
        return float(v)

    crossfade = seconds(initial.get("crossfade_s", 0.0), "'initial.crossfade_s'")
    states = [replace(state(initial, 0.0, "initial"), crossfade_s=crossfade)]
    last_t, fade = 0.0, crossfade
    for i, ev in enumerate(events):
        t = ev.get("t") if isinstance(ev, dict) else None
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < last_t:
            raise bad(f"event {i}: 't' must be seconds, not before the event before it")
        last_t = float(t)
        where = f"event {i} ({ev.get('action', '?')})"
        # The crossfade time in effect after the event: each event carries it (beats at the tempo
        # already turned into seconds); a file written before that has only set_crossfade's seconds.
        args = ev.get("args")
        if "crossfade_s" in ev:
            fade = seconds(ev["crossfade_s"], f"{where}: 'crossfade_s'")
        elif ev.get("action") == "set_crossfade" and isinstance(args, dict) and "seconds" in args:
            fade = seconds(args["seconds"], f"{where}: 'args.seconds'")
        s = replace(state(ev, last_t, where), crossfade_s=fade)
        prev = states[-1]
        if (s.style, s.style_path, s.strength, s.stability) != (prev.style, prev.style_path, prev.strength, prev.stability):
            states.append(s)
    source = doc.get("source")
    if source is not None and (not isinstance(source, str) or not source or Path(source).name != source):
        raise bad("'source' must be the name of a file beside the timeline, or null")
    return TimelineFile(path, tuple(states), float(crossfade), path.parent / source if source else None)
