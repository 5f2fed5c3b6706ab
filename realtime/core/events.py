"""What the controller tells its subscribers: one event per change, saying who made it.

Why events with an origin: several control surfaces steer one show, and some of them must tell
each other's changes apart -- the style cycle pauses when a *person* picks a style, not when it
switched the style itself; the saved show state must not remember attract mode's temporary
strength; a control page wants to show what just happened and why.  Each action call carries its
origin (a small fixed set, below), and the event carries it to every subscriber, on whatever thread
made the change.  Nothing here depends on threads or thread-local flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .controller import LiveState

# Where a change came from.  A new control surface adds its constant here.
KEY = "key"  # the keyboard (live/keymap.py: KeyboardControl)
WEB = "web"  # the control page and its JSON API (web/app.py), uploads included
SCHEDULE = "schedule"  # opening hours (live/show.py: OpeningHours)
AUTO = "auto"  # the automatic style cycle and playlist (live/show.py: AutoCycle)
ATTRACT = "attract"  # attract mode (live/show.py: Attract)
RESTORE = "restore"  # the saved show state, put back at start (live/memory.py)
SHOW = "show"  # the live loop itself: its start-up settings, the end of a file, the window closed
API = "api"  # Python callers that name no surface: scripts, tests, benchmarks
OSC = "osc"  # Open Sound Control over UDP (control/osc.py): a performer's controller, a DAW, TouchOSC
MIDI = "midi"  # a MIDI controller (live/midi.py: MidiControl): faders, knobs and pads
ORIGINS: frozenset[str] = frozenset({KEY, WEB, SCHEDULE, AUTO, ATTRACT, RESTORE, SHOW, API, OSC, MIDI})

# Origins where a person (or their script) made the choice: the style cycle pauses for them.
# OSC and MIDI count: a performer steers them live, like the keys.
BY_HAND: frozenset[str] = frozenset({KEY, WEB, API, OSC, MIDI})


@dataclass(frozen=True)
class ControlEvent:
    """One change of the show: the action that made it, the fields it set, who asked, and the state
    right after it.

    ``changed`` names the :class:`~realtime.core.controller.LiveState` fields the action *set*, even
    where the value stayed the same (a person picking the style already on screen still chose it);
    ``styles`` for a style added to the list; ``recording`` after a recording started or stopped;
    empty for a snapshot.
    """

    action: str
    changed: frozenset[str]
    origin: str
    state: "LiveState"
    seq: int = 0  # counts changes of this controller, in the order they were made
    # The action's validated arguments (a recording's timeline replays them); not part of equality.
    args: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The event for a web page (without the state: the page gets the whole status with it)."""
        return {"action": self.action, "changed": sorted(self.changed), "origin": self.origin, "seq": self.seq}
