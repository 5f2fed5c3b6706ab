"""The live show's state and every way to change it: one table of named actions.

Why one place (Frigate's command dispatcher): keys, a schedule, a web page and tests all steer the
same show, so they must go through the same door, with the same validation, and never disagree.
Each action is a method registered in :data:`ACTIONS` with typed, range-checked parameters;
``controller.do(name, origin=..., **args)`` is the door for anything that speaks names (web, config,
scripts).  Every call says where it came from (``origin``, one of :data:`~realtime.core.events.ORIGINS`),
and every change reaches the subscribers as one :class:`~realtime.core.events.ControlEvent`.

Thread safety: the state is one frozen :class:`LiveState`, replaced under a lock, so any thread
may read a consistent snapshot or act.  Actions that touch files or the window (recording,
snapshots, fullscreen) cannot run on the caller's thread: they are queued as *main-thread tasks*
that the live loop runs between frames, one at a time in the order they came, and the caller gets
a :class:`~concurrent.futures.Future` that is always answered (a result, an error, or cancelled at
the end of the show).  So the live loop's thread is the one owner of the recording: two toggles
from two pages are a start and then a stop, never two starts.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Optional

from .. import errors
from .actions import ACTIONS, Action, ActionError, Cause, Param, action
from .events import API, ORIGINS, ControlEvent
from .performer import CROSSFADE_RANGE, TABLE_PLACES, TAP_INTERVALS, TAP_RESET_S, TEMPO_RANGE, PerformerActions
from .styleset import StyleEntry, StyleSet

__all__ = [  # the actions' names live in .actions and .performer; callers import them from here
    "ACTIONS", "Action", "ActionError", "Cause", "Controller", "LiveState", "MAIN_CHANGES", "Param", "action",
    "STABILITY_LEVELS", "STRENGTH_RANGE", "STRENGTH_STEP", "TAP_INTERVALS", "CROSSFADE_RANGE", "TAP_RESET_S", "TEMPO_RANGE",
]

log = logging.getLogger(__name__)

STRENGTH_RANGE = (0.0, 2.0)
STRENGTH_STEP = 0.1
STABILITY_LEVELS = (0.0, 0.55, 0.8)  # what cycle_stability steps through (off, the default, very steady)


# What a finished main-thread action changed (they touch files, not the LiveState).
MAIN_CHANGES: dict[str, frozenset[str]] = {
    "toggle_recording": frozenset({"recording"}),
    "start_recording": frozenset({"recording"}),
    "stop_recording": frozenset({"recording"}),
}


@dataclass(frozen=True)
class LiveState:
    """Everything a control surface can change. Immutable: replaced whole under the lock."""

    style_index: int = 0
    strength: float = 1.0
    stability: float = 0.0  # flow-guided temporal stability 0..1 (realtime.effects.stability)
    paused: bool = False
    mirror: bool = False
    side_by_side: bool = False
    overlay: bool = True
    help: bool = False
    fullscreen: bool = False
    open: bool = True  # within opening hours: camera and network run (see realtime.schedule)
    cycle_s: float = 0.0  # automatic style cycle: next style every N seconds; 0 = off
    idle: bool = False  # attract mode: nobody in front of the camera (see realtime.live.show.Attract)
    running: bool = True
    bpm: float = 0.0  # the show's tempo (tap_tempo, set_tempo); 0 = none known
    crossfade_s: float = 0.5  # a style switch's crossfade (set_crossfade; styles.crossfade_s at the start)


class Controller(PerformerActions):
    """Owns the live state; every change goes through an action (from any thread).  The performer's
    actions (tempo, take_style, midi_learn) come from :class:`~.performer.PerformerActions`."""

    def __init__(
        self,
        styles: StyleSet | Sequence[str],
        state: Optional[LiveState] = None,
        mixable: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``styles``: the show's :class:`StyleSet` (or just names: tests, benchmarks); the state's
        ``style_index`` is an index into it."""
        self.styles = styles if isinstance(styles, StyleSet) else StyleSet.of_names(styles)
        if not len(self.styles):
            raise errors.UserError("no styles to show")
        self.mixable = mixable
        self._clock = clock
        self._lock = threading.Lock()
        self._state = state or LiveState()
        self._tasks: queue.Queue[tuple[Cause, dict, Future]] = queue.Queue()
        self._tasks_lock = threading.Lock()  # queueing vs. the end of the show: every Future is answered
        self._tasks_closed = False
        self._main_handlers: dict[str, Callable[..., Any]] = {}
        self._status: list[Callable[[], dict[str, Any]]] = []
        self._listeners: list[Callable[[ControlEvent], None]] = []
        self._seq = 0
        self._init_performer()
        self.started = clock()
        self._check_state(self._state)

    # -- reading -----------------------------------------------------------------------------------
    @property
    def state(self) -> LiveState:
        return self._state

    @property
    def style_names(self) -> list[str]:
        """The names of the show's styles, in order (a snapshot of :attr:`styles`)."""
        return self.styles.names()

    def status(self) -> dict[str, Any]:
        """A read-only snapshot for overlays, status files and the API: state plus live figures."""
        s = self._state
        out: dict[str, Any] = {
            "style": self.style_names[s.style_index],
            "style_index": s.style_index,
            "styles": len(self.styles),
            **{k: v for k, v in dataclasses.asdict(s).items() if k not in ("style_index", "help")},
            "uptime_s": round(self._clock() - self.started, 1),
        }
        for provider in list(self._status):
            try:
                out.update(provider())
            except Exception:  # noqa: BLE001 - a broken figure must not break the status
                log.debug("status provider failed", exc_info=True)
        return out

    def add_status(self, provider: Callable[[], dict[str, Any]]) -> None:
        """Add figures to :meth:`status` (the live loop's fps and latency, a source's reconnects)."""
        self._status.append(provider)

    def subscribe(self, listener: Callable[[ControlEvent], None]) -> None:
        """Call ``listener(event)`` after every change, on the thread that made it: it must be quick
        and must not block (hand slow work to a queue or to the live loop)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[ControlEvent], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_style(self, style: StyleEntry | str, origin: str = API) -> int:
        """A style added while the show runs (an upload), whole: its code is computed before it
        joins the set, so no reader ever sees an index without a code.  A name already there
        gives that style's index (and no event)."""
        if origin not in ORIGINS:
            raise ActionError(f"add_style: unknown origin {origin!r}")
        index, new = self.styles.append(style if isinstance(style, StyleEntry) else StyleEntry(style))
        if new:
            self._emit(Cause("add_style", origin), frozenset({"styles"}))
        return index

    def replace_style(self, index: int, style: StyleEntry, origin: str = API) -> StyleEntry:
        """Put ``style`` (whole, code and all) in slot ``index``, whose style leaves the show (a
        taken style past ``styles.taken_max``); returns the style that left.  Indices do not move
        (see :meth:`StyleSet.replace`); a show on that slot crossfades to the new code (the live
        pipeline follows the slot's code, not only its index)."""
        if origin not in ORIGINS:
            raise ActionError(f"replace_style: unknown origin {origin!r}")
        if not 0 <= index < len(self.styles):
            raise ActionError(f"replace_style: index {index} out of range 0..{len(self.styles) - 1}")
        try:
            old = self.styles.replace(index, style)
        except ValueError as exc:
            raise ActionError(f"replace_style: {exc}") from None
        self._emit(Cause("replace_style", origin), frozenset({"styles"}))
        return old

    # -- the door for names (web, scripts, key table) ---------------------------------------------
    def do(self, name: str, /, origin: str = API, **args: Any) -> Any:
        """Run the action called ``name`` with keyword arguments, validated like a direct call
        (``name`` is positional-only: an argument called "name" is the action's to refuse)."""
        spec = ACTIONS.get(name)
        if spec is None:
            raise ActionError(f"unknown action '{name}' (known: {', '.join(sorted(ACTIONS))})")
        return getattr(self, name)(origin=origin, **args)

    # -- state actions -----------------------------------------------------------------------------
    @action("show the next style (with a crossfade)")
    def next_style(self, cause: Cause) -> int:
        return self._set(cause, style_index=lambda s: (s.style_index + 1) % len(self.styles))

    @action("show the previous style")
    def previous_style(self, cause: Cause) -> int:
        return self._set(cause, style_index=lambda s: (s.style_index - 1) % len(self.styles))

    @action("show a style by name or 0-based index", Param("style", str), )
    def set_style(self, cause: Cause, style: str) -> int:
        if style in self.style_names:
            index = self.style_names.index(style)
        elif re.fullmatch(r"-?[0-9]{1,9}", style):  # ASCII digits only: int() refuses "²" and 5000-digit texts
            index = int(style)
            if not 0 <= index < len(self.styles):
                raise ActionError(f"set_style: index {index} out of range 0..{len(self.styles) - 1}")
        else:
            raise ActionError(f"set_style: unknown style '{style}' (known: {', '.join(self.style_names)})")
        return self._set(cause, style_index=index)

    @action("show style number N (0-based)", Param("index", int, 0))
    def set_style_index(self, cause: Cause, index: int) -> int:
        if index >= len(self.styles):
            raise ActionError(f"set_style_index: index {index} out of range 0..{len(self.styles) - 1}")
        return self._set(cause, style_index=index)

    @action("style strength: 0 = the content's own look, 1 = the style, 2 = exaggerated",
            Param("value", float, *STRENGTH_RANGE))
    def set_strength(self, cause: Cause, value: float) -> float:
        return self._set(cause, strength=round(value, 4))

    @action("raise or lower the strength by a step (clamped to 0..2)", Param("delta", float, -2.0, 2.0))
    def change_strength(self, cause: Cause, delta: float) -> float:
        lo, hi = STRENGTH_RANGE
        return self._set(cause, strength=lambda s: min(hi, max(lo, round(s.strength + delta, 4))))

    @action("stability against flicker, textures held along the motion: 0 (off, the raw network) .. 1",
            Param("value", float, 0.0, 1.0))
    def set_stability(self, cause: Cause, value: float) -> float:
        return self._set(cause, stability=value)

    @action("step the stability through off / 0.55 / 0.8")
    def cycle_stability(self, cause: Cause) -> float:
        def step(s: LiveState) -> float:
            higher = [v for v in STABILITY_LEVELS if v > s.stability + 1e-6]
            return higher[0] if higher else 0.0

        return self._set(cause, stability=step)

    @action("automatic style cycle: next style every N seconds (crossfaded); 0 = off", Param("seconds", float, 0.0, 86400.0))
    def set_cycle(self, cause: Cause, seconds: float) -> float:
        return self._set(cause, cycle_s=seconds)

    @action("pause or resume the picture")
    def toggle_pause(self, cause: Cause) -> bool:
        return self._set(cause, paused=lambda s: not s.paused)

    @action("pause (true) or resume (false)", Param("paused", bool))
    def set_paused(self, cause: Cause, paused: bool) -> bool:
        return self._set(cause, paused=paused)

    @action("mirror the picture like a selfie")
    def toggle_mirror(self, cause: Cause) -> bool:
        return self._set(cause, mirror=lambda s: not s.mirror)

    @action("original | stylized side by side")
    def toggle_side_by_side(self, cause: Cause) -> bool:
        return self._set(cause, side_by_side=lambda s: not s.side_by_side)

    @action("fps / latency / style overlay on or off")
    def toggle_overlay(self, cause: Cause) -> bool:
        return self._set(cause, overlay=lambda s: not s.overlay)

    @action("the key help card on or off")
    def toggle_help(self, cause: Cause) -> bool:
        return self._set(cause, help=lambda s: not s.help)

    @action("fullscreen window on or off")
    def toggle_fullscreen(self, cause: Cause) -> bool:
        return self._set(cause, fullscreen=lambda s: not s.fullscreen)

    @action("open (true) or close (false) the show: closed releases the camera and idles the network",
            Param("open", bool))
    def set_open(self, cause: Cause, open: bool) -> bool:  # noqa: A002 - the action's public name
        return self._set(cause, open=open)

    @action("attract mode on (true) or off (false); motion in front of the camera ends it", Param("idle", bool))
    def set_idle(self, cause: Cause, idle: bool) -> bool:
        return self._set(cause, idle=idle)

    @action("end the show (files are finished first)")
    def quit(self, cause: Cause) -> bool:
        return self._set(cause, running=False)

    # -- main-thread actions (files and the window) ----------------------------------------------
    @action("start or stop recording; returns the file when one is finished", main_thread=True)
    def toggle_recording(self, cause: Cause) -> Future:
        return self._queue(cause)

    @action("start recording (to PATH, or a timestamped file)", Param("path", str, optional=True), main_thread=True)
    def start_recording(self, cause: Cause, path: Optional[str]) -> Future:
        return self._queue(cause, path=path)

    @action("stop recording; returns the finished file", main_thread=True)
    def stop_recording(self, cause: Cause) -> Future:
        return self._queue(cause)

    @action("save the shown picture and its original as PNGs; returns their paths", main_thread=True)
    def snapshot(self, cause: Cause) -> Future:
        return self._queue(cause)

    def bind_main(self, name: str, handler: Callable[..., Any]) -> None:
        """The live loop says how it runs a main-thread action."""
        self._main_handlers[name] = handler

    def run_main_tasks(self) -> int:
        """Run the queued main-thread actions (call from the main thread only); returns how many."""
        n = 0
        while True:
            try:
                cause, args, fut = self._tasks.get_nowait()
            except queue.Empty:
                return n
            n += 1
            if not fut.set_running_or_notify_cancel():
                continue
            handler = self._main_handlers.get(cause.action)
            if handler is None:  # a refusal (midi_learn in a show without MIDI): the caller's answer, and
                # an info line for callers that do not wait for one (OSC)
                log.info("%s refused: not available in this show", cause.action)
                fut.set_exception(ActionError(f"{cause.action} is not available in this show"))
                continue
            try:
                result = handler(**args)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, logged for keys
                log.error("%s failed: %s", cause.action, exc)
                fut.set_exception(exc)
                continue
            self._emit(cause, MAIN_CHANGES.get(cause.action, frozenset()))  # before the caller hears
            fut.set_result(result)

    def cancel_main_tasks(self) -> None:
        """At the end of the show: nobody will run what is still queued, nor what comes later
        (a call from another thread that raced the end is answered as cancelled, not left waiting)."""
        with self._tasks_lock:
            self._tasks_closed = True
        while True:
            try:
                _, _, fut = self._tasks.get_nowait()
            except queue.Empty:
                return
            fut.cancel()

    # -- internals ---------------------------------------------------------------------------------
    def _queue(self, cause: Cause, **args: Any) -> Future:
        fut: Future = Future()
        with self._tasks_lock:
            if self._tasks_closed or not self._state.running:
                fut.cancel()
                return fut
            self._tasks.put((cause, args, fut))
        return fut

    def _set(self, cause: Cause, **changes: Any) -> Any:
        """Replace the state; a change given as a function of the state (next style, toggles, steps)
        is worked out under the lock, so changes from many threads never get lost."""
        with self._lock:
            changes = {k: v(self._state) if callable(v) else v for k, v in changes.items()}
            new = dataclasses.replace(self._state, **changes)
            if "strength" in changes and not self.mixable and new.strength != 1.0:
                raise ActionError(f"{cause.action}: this backend has no style codes to mix (use --backend tf or tflite)")
            self._check_state(new)
            self._state = new
            self._seq += 1
            event = ControlEvent(cause.action, frozenset(changes), cause.origin, new, self._seq, cause.args)
        self._notify(event)
        return next(iter(changes.values()))

    def _emit(self, cause: Cause, changed: frozenset[str]) -> None:
        """An event for a change outside the LiveState (a style added, a recording started)."""
        with self._lock:
            self._seq += 1
            event = ControlEvent(cause.action, changed, cause.origin, self._state, self._seq, cause.args)
        self._notify(event)

    def _notify(self, event: ControlEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener must not break the action
                log.debug("listener failed", exc_info=True)

    def _check_state(self, s: LiveState) -> None:
        if not 0 <= s.style_index < len(self.styles):
            raise ActionError(f"style index {s.style_index} out of range")
        if not STRENGTH_RANGE[0] <= s.strength <= STRENGTH_RANGE[1]:
            raise ActionError(f"strength must be in {STRENGTH_RANGE[0]:g}..{STRENGTH_RANGE[1]:g}")
        if not 0.0 <= s.stability <= 1.0:
            raise ActionError("stability must be in 0..1")


def _place_performer_actions() -> None:
    """The performer's actions registered first (their module loads before this class): move each
    to its place in the table (:data:`~.performer.TABLE_PLACES`), the order the page, the OSC
    table and ``/api/actions`` list."""
    order = [name for name in ACTIONS if name not in TABLE_PLACES]
    for name, after in TABLE_PLACES.items():
        order.insert(order.index(after) + 1, name)
    specs = dict(ACTIONS)
    ACTIONS.clear()
    ACTIONS.update((name, specs[name]) for name in order)


_place_performer_actions()
