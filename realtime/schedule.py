"""Opening hours for unattended shows: when the show runs and when it sleeps.

Why plain text: the config is flat YAML that a technician edits by hand, so the hours are written
the way a gallery's door sign reads, ``"mon-fri 09:00-18:00; sat,sun 10:00-16:00"``, plus closed
dates ``"2026-12-25, 2027-01-01"``, and are checked when the config loads (one line naming the
mistake).  An empty string means always open.  A range that ends after midnight
(``fri 20:00-02:00``) runs into the next day.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Optional

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class ScheduleError(ValueError):
    """A malformed hours or dates string (the config layer turns it into a ConfigError)."""


def _days(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip().lower()[:7]
        if "-" in part:
            a, b = (p.strip()[:3] for p in part.split("-", 1))
            if a not in DAYS or b not in DAYS:
                raise ScheduleError(f"unknown day in '{part}' (use {', '.join(DAYS)})")
            i, j = DAYS.index(a), DAYS.index(b)
            out += [(i + k) % 7 for k in range(((j - i) % 7) + 1)]
        elif part[:3] in DAYS:
            out.append(DAYS.index(part[:3]))
        else:
            raise ScheduleError(f"unknown day '{part}' (use {', '.join(DAYS)}, or ranges like mon-fri)")
    return out


def parse_hours(text: str) -> dict[int, list[tuple[int, int]]]:
    """``"mon-fri 09:00-18:00, 19:00-21:00; sat 10:00-16:00"`` -> {weekday: [(start_min, end_min)]}."""
    hours: dict[int, list[tuple[int, int]]] = {}
    for clause in filter(None, (c.strip() for c in text.split(";"))):
        m = re.match(r"^([A-Za-z,\- ]+?)\s+(\d.*)$", clause)
        if not m:
            raise ScheduleError(f"'{clause}': expected DAYS HH:MM-HH:MM (e.g. mon-fri 09:00-18:00)")
        for rng in (r.strip() for r in m.group(2).split(",")):
            r = _RANGE.match(rng)
            if not r:
                raise ScheduleError(f"'{rng}' is not a time range HH:MM-HH:MM")
            h1, m1, h2, m2 = map(int, r.groups())
            if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
                raise ScheduleError(f"'{rng}' is not a time of day")
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if start == end:
                raise ScheduleError(f"'{rng}' is empty")
            for d in _days(m.group(1)):
                if end > start:
                    hours.setdefault(d, []).append((start, end))
                else:  # past midnight: the rest of this day, then the start of the next
                    hours.setdefault(d, []).append((start, 24 * 60))
                    hours.setdefault((d + 1) % 7, []).append((0, end))
    return hours


def parse_dates(text: str) -> set[dt.date]:
    out = set()
    for item in filter(None, (t.strip() for t in text.replace(";", ",").split(","))):
        try:
            out.add(dt.date.fromisoformat(item))
        except ValueError:
            raise ScheduleError(f"'{item}' is not a date YYYY-MM-DD") from None
    return out


@dataclass(frozen=True)
class Schedule:
    """Opening hours per weekday and closed dates; no hours at all means always open."""

    hours: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    closed: frozenset = frozenset()

    @classmethod
    def parse(cls, hours: str = "", closed_dates: str = "") -> "Schedule":
        return cls(parse_hours(hours or ""), frozenset(parse_dates(closed_dates or "")))

    @property
    def always_open(self) -> bool:
        return not self.hours and not self.closed

    def is_open(self, when: dt.datetime) -> bool:
        if when.date() in self.closed:
            return False
        if not self.hours:
            return True
        minute = when.hour * 60 + when.minute
        return any(a <= minute < b for a, b in self.hours.get(when.weekday(), []))

    def next_change(self, when: dt.datetime, horizon_days: int = 14) -> Optional[dt.datetime]:
        """The next minute at which open/closed flips (None if it never does within the horizon)."""
        now_open = self.is_open(when)
        t = when.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        end = when + dt.timedelta(days=horizon_days)
        while t < end:
            if self.is_open(t) != now_open:
                return t
            t += dt.timedelta(minutes=1)
        return None


@dataclass(frozen=True)
class PlaylistEntry:
    """One painting of a show's playlist: how long it stays and how strongly it is applied."""

    style: str
    seconds: Optional[float] = None  # None = the show's cycle_s
    strength: Optional[float] = None  # None = leave the strength as it is


_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


def parse_playlist(text: str) -> list[PlaylistEntry]:
    """``"waves 60s 1.2; mosaic 30s; dots"`` -> entries: a style name, then optionally how
    long it stays (``60s``) and its strength (``1.2``, 0..2), separated by ``;``."""
    out: list[PlaylistEntry] = []
    for clause in filter(None, (c.strip() for c in text.split(";"))):
        tokens = clause.split()
        seconds: Optional[float] = None
        strength: Optional[float] = None
        while len(tokens) > 1 and (_SECONDS.match(tokens[-1]) or _NUMBER.match(tokens[-1])):
            tok = tokens.pop()
            if _SECONDS.match(tok):
                if seconds is not None:
                    raise ScheduleError(f"two durations in '{clause}'")
                seconds = float(tok[:-1])
                if not 0.5 <= seconds <= 86400:
                    raise ScheduleError(f"duration {tok} in '{clause}' must be 0.5s..86400s")
            else:
                if strength is not None:
                    raise ScheduleError(f"two strengths in '{clause}' (a duration ends in s: 60s)")
                strength = float(tok)
                if not 0.0 <= strength <= 2.0:
                    raise ScheduleError(f"strength {tok} in '{clause}' must be 0..2")
        out.append(PlaylistEntry(" ".join(tokens), seconds, strength))
    return out
