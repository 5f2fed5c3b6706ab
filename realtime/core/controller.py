"""The live show's state and every way to change it: one table of named actions.

Why one place (Frigate's command dispatcher): keys, a schedule, a web page and tests all steer the
same show, so they must go through the same door, with the same validation, and never disagree.
Each action is a method registered in :data:`ACTIONS` with typed, range-checked parameters;
``controller.do(name, **args)`` is the door for anything that speaks names (web, config, scripts).

Thread safety: the state is one frozen :class:`LiveState`, replaced under a lock, so any thread
may read a consistent snapshot or act.  Actions that touch files or the window (recording,
snapshots, fullscreen) cannot run on the caller's thread: they are queued as *main-thread tasks*
that the live loop runs between frames, and the caller gets a :class:`~concurrent.futures.Future`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Optional

from .. import errors

log = logging.getLogger(__name__)

STRENGTH_RANGE = (0.0, 2.0)
STRENGTH_STEP = 0.1
STABILITY_LEVELS = (0.0, 0.55, 0.8)  # what cycle_stability steps through (off, the default, very steady)


class ActionError(errors.UserError):
    """An unknown action or a bad argument: the caller gets one line naming it."""


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


@dataclass(frozen=True)
class Param:
    """One argument of an action: its type and, for numbers, the allowed range."""

    name: str
    kind: type
    low: Optional[float] = None
    high: Optional[float] = None
    optional: bool = False

    def check(self, action: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        kind = self.kind
        ok = (
            (kind is bool and isinstance(value, bool))
            or (kind is int and isinstance(value, int) and not isinstance(value, bool))
            or (kind is float and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (kind is str and isinstance(value, str))
        )
        if not ok:
            raise ActionError(f"{action}: '{self.name}' must be {kind.__name__}, got {value!r}")
        if kind is float:
            value = float(value)
            if not math.isfinite(value):
                raise ActionError(f"{action}: '{self.name}' must be a finite number, got {value!r}")
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ActionError(f"{action}: '{self.name}' must be in {self.low:g}..{self.high:g}, got {value!r}")
        return value


@dataclass(frozen=True)
class Action:
    """A named action: what it does (for help texts and the API listing) and its parameters."""

    name: str
    doc: str
    params: tuple[Param, ...] = ()
    main_thread: bool = False  # queued for the live loop (files, window); returns a Future


ACTIONS: dict[str, Action] = {}


def action(doc: str, *params: Param, main_thread: bool = False):
    """Register a Controller method as an action; calls are validated against ``params``."""

    def wrap(method: Callable) -> Callable:
        spec = Action(method.__name__, doc, tuple(params), main_thread)
        ACTIONS[spec.name] = spec

        @functools.wraps(method)
        def checked(self: Controller, *args: Any, **kwargs: Any) -> Any:
            if len(args) > len(spec.params):
                raise ActionError(f"{spec.name} takes {len(spec.params)} argument(s)")
            values = dict(zip((p.name for p in spec.params), args))
            for k, v in kwargs.items():
                if k in values or k not in {p.name for p in spec.params}:
                    raise ActionError(f"{spec.name}: unexpected argument '{k}'")
                values[k] = v
            for p in spec.params:
                if p.name not in values:
                    if not p.optional:
                        raise ActionError(f"{spec.name}: missing argument '{p.name}'")
                    values[p.name] = None
                values[p.name] = p.check(spec.name, values[p.name])
            return method(self, **values)

        checked.action = spec  # type: ignore[attr-defined]
        return checked

    return wrap


class Controller:
    """Owns the live state; every change goes through an action (from any thread)."""

    def __init__(
        self,
        style_names: Sequence[str],
        state: Optional[LiveState] = None,
        mixable: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not style_names:
            raise errors.UserError("no styles to show")
        self.style_names = list(style_names)
        self.mixable = mixable
        self._clock = clock
        self._lock = threading.Lock()
        self._state = state or LiveState()
        self._tasks: queue.Queue[tuple[str, dict, Future]] = queue.Queue()
        self._main_handlers: dict[str, Callable[..., Any]] = {}
        self._status: list[Callable[[], dict[str, Any]]] = []
        self._listeners: list[Callable[[str, LiveState], None]] = []
        self.started = clock()
        self._check_state(self._state)

    # -- reading -----------------------------------------------------------------------------------
    @property
    def state(self) -> LiveState:
        return self._state

    def status(self) -> dict[str, Any]:
        """A read-only snapshot for overlays, status files and the API: state plus live figures."""
        s = self._state
        out: dict[str, Any] = {
            "style": self.style_names[s.style_index],
            "style_index": s.style_index,
            "styles": len(self.style_names),
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

    def subscribe(self, listener: Callable[[str, LiveState], None]) -> None:
        """Call ``listener(action_name, new_state)`` after every state change (on the acting thread)."""
        self._listeners.append(listener)

    def add_style(self, name: str) -> int:
        """A style added while the show runs (an upload): its code must already be in the pipeline."""
        with self._lock:
            if name in self.style_names:
                return self.style_names.index(name)
            self.style_names.append(name)
            index = len(self.style_names) - 1
        self._notify("add_style", self._state)
        return index

    # -- the door for names (web, scripts, key table) ---------------------------------------------
    def do(self, name: str, **args: Any) -> Any:
        """Run the action called ``name`` with keyword arguments, validated like a direct call."""
        spec = ACTIONS.get(name)
        if spec is None:
            raise ActionError(f"unknown action '{name}' (known: {', '.join(sorted(ACTIONS))})")
        return getattr(self, name)(**args)

    # -- state actions -----------------------------------------------------------------------------
    @action("show the next style (with a crossfade)")
    def next_style(self) -> int:
        return self._set(style_index=(self._state.style_index + 1) % len(self.style_names))

    @action("show the previous style")
    def previous_style(self) -> int:
        return self._set(style_index=(self._state.style_index - 1) % len(self.style_names))

    @action("show a style by name or 0-based index", Param("style", str), )
    def set_style(self, style: str) -> int:
        if style in self.style_names:
            index = self.style_names.index(style)
        elif style.lstrip("-").isdigit():
            index = int(style)
            if not 0 <= index < len(self.style_names):
                raise ActionError(f"set_style: index {index} out of range 0..{len(self.style_names) - 1}")
        else:
            raise ActionError(f"set_style: unknown style '{style}' (known: {', '.join(self.style_names)})")
        return self._set(style_index=index)

    @action("show style number N (0-based)", Param("index", int, 0))
    def set_style_index(self, index: int) -> int:
        if index >= len(self.style_names):
            raise ActionError(f"set_style_index: index {index} out of range 0..{len(self.style_names) - 1}")
        return self._set(style_index=index)

    @action("style strength: 0 = the content's own look, 1 = the style, 2 = exaggerated",
            Param("value", float, *STRENGTH_RANGE))
    def set_strength(self, value: float) -> float:
        if not self.mixable and value != 1.0:
            raise ActionError("set_strength: this backend has no style codes to mix (use --backend tf or tflite)")
        return self._set(strength=round(value, 4))

    @action("raise or lower the strength by a step (clamped to 0..2)", Param("delta", float, -2.0, 2.0))
    def change_strength(self, delta: float) -> float:
        lo, hi = STRENGTH_RANGE
        return self.set_strength(min(hi, max(lo, round(self._state.strength + delta, 4))))

    @action("stability against flicker, textures held along the motion: 0 (off, the raw network) .. 1",
            Param("value", float, 0.0, 1.0))
    def set_stability(self, value: float) -> float:
        return self._set(stability=value)

    @action("step the stability through off / 0.55 / 0.8")
    def cycle_stability(self) -> float:
        higher = [v for v in STABILITY_LEVELS if v > self._state.stability + 1e-6]
        return self._set(stability=higher[0] if higher else 0.0)

    @action("automatic style cycle: next style every N seconds (crossfaded); 0 = off", Param("seconds", float, 0.0, 86400.0))
    def set_cycle(self, seconds: float) -> float:
        return self._set(cycle_s=seconds)

    @action("pause or resume the picture")
    def toggle_pause(self) -> bool:
        return self._set(paused=not self._state.paused)

    @action("pause (true) or resume (false)", Param("paused", bool))
    def set_paused(self, paused: bool) -> bool:
        return self._set(paused=paused)

    @action("mirror the picture like a selfie")
    def toggle_mirror(self) -> bool:
        return self._set(mirror=not self._state.mirror)

    @action("original | stylized side by side")
    def toggle_side_by_side(self) -> bool:
        return self._set(side_by_side=not self._state.side_by_side)

    @action("fps / latency / style overlay on or off")
    def toggle_overlay(self) -> bool:
        return self._set(overlay=not self._state.overlay)

    @action("the key help card on or off")
    def toggle_help(self) -> bool:
        return self._set(help=not self._state.help)

    @action("fullscreen window on or off")
    def toggle_fullscreen(self) -> bool:
        return self._set(fullscreen=not self._state.fullscreen)

    @action("open (true) or close (false) the show: closed releases the camera and idles the network",
            Param("open", bool))
    def set_open(self, open: bool) -> bool:  # noqa: A002 - the action's public name
        return self._set(open=open)

    @action("attract mode on (true) or off (false); motion in front of the camera ends it", Param("idle", bool))
    def set_idle(self, idle: bool) -> bool:
        return self._set(idle=idle)

    @action("end the show (files are finished first)")
    def quit(self) -> bool:
        return self._set(running=False)

    # -- main-thread actions (files and the window) ----------------------------------------------
    @action("start or stop recording; returns the file when one is finished", main_thread=True)
    def toggle_recording(self) -> Future:
        return self._queue("toggle_recording")

    @action("start recording (to PATH, or a timestamped file)", Param("path", str, optional=True), main_thread=True)
    def start_recording(self, path: Optional[str]) -> Future:
        return self._queue("start_recording", path=path)

    @action("stop recording; returns the finished file", main_thread=True)
    def stop_recording(self) -> Future:
        return self._queue("stop_recording")

    @action("save the shown picture and its original as PNGs; returns their paths", main_thread=True)
    def snapshot(self) -> Future:
        return self._queue("snapshot")

    def bind_main(self, name: str, handler: Callable[..., Any]) -> None:
        """The live loop says how it runs a main-thread action."""
        self._main_handlers[name] = handler

    def run_main_tasks(self) -> int:
        """Run the queued main-thread actions (call from the main thread only); returns how many."""
        n = 0
        while True:
            try:
                name, args, fut = self._tasks.get_nowait()
            except queue.Empty:
                return n
            n += 1
            if not fut.set_running_or_notify_cancel():
                continue
            handler = self._main_handlers.get(name)
            try:
                if handler is None:
                    raise ActionError(f"{name} is not available in this show")
                fut.set_result(handler(**args))
            except Exception as exc:  # noqa: BLE001 - handed to the caller, logged for keys
                log.error("%s failed: %s", name, exc)
                fut.set_exception(exc)

    def cancel_main_tasks(self) -> None:
        """At the end of the show: nobody will run what is still queued."""
        while True:
            try:
                _, _, fut = self._tasks.get_nowait()
            except queue.Empty:
                return
            fut.cancel()

    # -- internals ---------------------------------------------------------------------------------
    def _queue(self, name: str, **args: Any) -> Future:
        fut: Future = Future()
        if not self._state.running:
            fut.cancel()
            return fut
        self._tasks.put((name, args, fut))
        return fut

    def _set(self, **changes: Any) -> Any:
        with self._lock:
            new = dataclasses.replace(self._state, **changes)
            self._check_state(new)
            self._state = new
        name = next(iter(changes))
        self._notify(name, new)
        return changes[name]

    def _notify(self, name: str, state: LiveState) -> None:
        for listener in list(self._listeners):
            try:
                listener(name, state)
            except Exception:  # noqa: BLE001 - a listener must not break the action
                log.debug("listener failed", exc_info=True)

    def _check_state(self, s: LiveState) -> None:
        if not 0 <= s.style_index < len(self.style_names):
            raise ActionError(f"style index {s.style_index} out of range")
        if not STRENGTH_RANGE[0] <= s.strength <= STRENGTH_RANGE[1]:
            raise ActionError(f"strength must be in {STRENGTH_RANGE[0]:g}..{STRENGTH_RANGE[1]:g}")
        if not 0.0 <= s.stability <= 1.0:
            raise ActionError("stability must be in 0..1")
