"""The table of named actions and its door: :func:`action` registers a method with typed,
range-checked parameters in :data:`ACTIONS`, which keys, the web page, OSC, MIDI and the key help
all read.

Why a module of its own: the actions are defined in more than one place (the show's state in
:mod:`.controller`, the performer's tempo, takes and MIDI learn in :mod:`.performer`), and both need
the same decorator without importing each other.  :mod:`.controller` re-exports every name here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from .. import errors
from .events import API, ORIGINS


class ActionError(errors.UserError):
    """An unknown action or a bad argument: the caller gets one line naming it."""


@dataclass(frozen=True)
class Cause:
    """Which action is running and who asked: handed to the action's body, so the change it makes
    is reported with both (no thread-local guessing)."""

    action: str
    origin: str
    args: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, hash=False)  # validated, for the event


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
            raise ActionError(f"{action}: '{self.name}' must be {self.range_text()}, got {value!r}")
        return value

    def range_text(self) -> str:
        """The allowed range in words; a bound may be open (``set_style_index`` has no top: the
        number of styles changes as uploads arrive)."""
        if self.low is not None and self.high is not None:
            return f"in {self.low:g}..{self.high:g}"
        return f">= {self.low:g}" if self.low is not None else f"<= {self.high:g}"


@dataclass(frozen=True)
class Action:
    """A named action: what it does (for help texts and the API listing) and its parameters."""

    name: str
    doc: str
    params: tuple[Param, ...] = ()
    main_thread: bool = False  # queued for the live loop (files, window); returns a Future


ACTIONS: dict[str, Action] = {}


def action(doc: str, *params: Param, main_thread: bool = False):
    """Register a Controller method as an action; calls are validated against ``params`` and take a
    keyword-only ``origin`` (default :data:`~realtime.core.events.API`); the method's body gets a
    :class:`Cause` first."""
    assert all(p.name != "origin" for p in params), "'origin' is every action's own argument"

    def wrap(method: Callable) -> Callable:
        spec = Action(method.__name__, doc, tuple(params), main_thread)
        ACTIONS[spec.name] = spec

        @functools.wraps(method)
        def checked(self: Any, *args: Any, origin: str = API, **kwargs: Any) -> Any:
            if origin not in ORIGINS:
                raise ActionError(f"{spec.name}: unknown origin {origin!r} (known: {', '.join(sorted(ORIGINS))})")
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
            return method(self, Cause(spec.name, origin, dict(values)), **values)

        checked.action = spec  # type: ignore[attr-defined]
        return checked

    return wrap
