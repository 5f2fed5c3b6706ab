"""The keyboard as one control surface: a table from keys to controller actions.

Why a table: the on-screen help card, the printed help and the README come from the same rows,
so a key cannot work without being documented or be documented without working; and a key does
nothing the web page or a schedule could not do too, since every row names a controller action.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from ..core.controller import ACTIONS, STRENGTH_STEP, ActionError, Controller
from ..core.events import KEY

log = logging.getLogger(__name__)

# Arrow keys as cv2.waitKeyEx reports them (GTK/Qt on Linux, Windows, and the low byte variant).
LEFT = (65361, 2424832, 81)
RIGHT = (65363, 2555904, 83)
UP = (65362, 2490368, 82)
DOWN = (65364, 2621440, 84)
ESC = 27


def _keys(chars: str, *codes: int) -> tuple[int, ...]:
    return tuple(ord(c) for c in chars) + codes


@dataclass(frozen=True)
class Binding:
    """Keys -> one controller action with fixed arguments; ``label`` groups rows in the help."""

    keys: tuple[int, ...]
    action: str
    label: str
    text: str
    args: dict[str, Any] = field(default_factory=dict)


KEYMAP: tuple[Binding, ...] = (
    Binding(_keys("n", *RIGHT), "next_style", "n / p, arrows", "next / previous style"),
    Binding(_keys("p", *LEFT), "previous_style", "n / p, arrows", "next / previous style"),
    *(Binding(_keys(str(d)), "set_style_index", "1-9", "jump to a style", {"index": d - 1}) for d in range(1, 10)),
    Binding(_keys("+=", *UP), "change_strength", "+ / -, up/down", "strength", {"delta": STRENGTH_STEP}),
    Binding(_keys("-_", *DOWN), "change_strength", "+ / -, up/down", "strength", {"delta": -STRENGTH_STEP}),
    Binding(_keys("r"), "toggle_recording", "r", "start / stop recording"),
    Binding(_keys("s"), "snapshot", "s", "snapshot (stylized + original PNG)"),
    Binding(_keys("g"), "take_style", "g", "grab: the camera's picture becomes a style"),
    Binding(_keys(" "), "toggle_pause", "space", "pause"),
    Binding(_keys("o"), "toggle_overlay", "o", "overlay on / off"),
    Binding(_keys("f"), "toggle_fullscreen", "f", "fullscreen"),
    Binding(_keys("m"), "toggle_mirror", "m", "mirror"),
    Binding(_keys("c"), "toggle_side_by_side", "c", "side by side (original | stylized)"),
    Binding(_keys("t"), "cycle_stability", "t", "stability against flicker: off / 0.55 / 0.8"),
    Binding(_keys("h"), "toggle_help", "h", "this help"),
    Binding(_keys("q", ESC), "quit", "q / Esc", "quit"),
)

_BY_KEY: dict[int, Binding] = {k: b for b in KEYMAP for k in b.keys}
assert all(b.action in ACTIONS for b in KEYMAP), "every key must name a controller action"

#: What a visitor's keys never do in kiosk mode, even with ``kiosk.keys`` on: end the show (q, Esc)
#: or leave its screen (f).  The exit keys are the only way out (issue 27: a single q ended a show).
KIOSK_LOCKED = frozenset({"quit", "toggle_fullscreen"})
EXIT_WINDOW_S = 2.0  # the exit keys must be typed within this many seconds


def help_rows(kiosk: bool = False, exit_keys: str = "") -> list[tuple[str, str]]:
    """(keys, what they do), one row per label in table order: the help card draws them as two
    aligned columns.  In kiosk mode the locked rows give way to the exit keys."""
    seen: dict[str, str] = {}
    for b in KEYMAP:
        if not (kiosk and b.action in KIOSK_LOCKED):
            seen.setdefault(b.label, b.text)
    rows = list(seen.items())
    if kiosk and exit_keys:
        rows.append((f"{exit_keys} within {EXIT_WINDOW_S:g} s", "end the show"))
    return rows


def help_lines(kiosk: bool = False, exit_keys: str = "") -> list[str]:
    """:func:`help_rows` as text lines for a terminal (monospaced: padding aligns them)."""
    rows = help_rows(kiosk, exit_keys)
    width = max(len(label) for label, _ in rows) + 2
    return [f"{label:{width}}{text}" for label, text in rows]


def lookup(key: int) -> Optional[Binding]:
    return _BY_KEY.get(key)


class KeySource(Protocol):
    def poll(self, wait_ms: int, shown: int) -> int:
        """A key code, or -1 when none was pressed; ``shown`` counts the frames shown so far."""


class ScriptedKeys:
    """Keys for headless runs and tests: ``{frame_number: key}`` pressed after that many shown frames."""

    def __init__(self, script: dict[int, str | int]) -> None:
        self.script = dict(script)

    def poll(self, wait_ms: int, shown: int) -> int:
        key = self.script.pop(shown, None)
        if key is None:
            if wait_ms > 0:
                time.sleep(wait_ms / 1000.0)
            return -1
        return ord(key) if isinstance(key, str) else key


class ExitKeys:
    """Watches for ``exit_keys`` typed in a row within :data:`EXIT_WINDOW_S` (shared by the show's
    keys and the start-up card, where the show's controller does not exist yet)."""

    def __init__(self, exit_keys: str, clock=time.monotonic) -> None:
        self.exit_keys = exit_keys
        self._clock = clock
        self._typed: list[tuple[int, float]] = []

    def typed(self, key: int) -> bool:
        """Note ``key``; True when it completes the sequence."""
        if not self.exit_keys:
            return False
        n = len(self.exit_keys)
        now = self._clock()
        self._typed = [(k, t) for k, t in self._typed[-(n - 1):] if now - t <= EXIT_WINDOW_S] if n > 1 else []
        self._typed.append((key, now))
        return [k for k, _ in self._typed] == [ord(c) for c in self.exit_keys]


def ends_the_show(key: int, kiosk: bool, exit_keys: ExitKeys) -> bool:
    """Whether ``key`` ends the show: the exit keys' last one, or (outside kiosk mode) a quit key."""
    if key < 0:
        return False
    if exit_keys.typed(key):
        return True
    binding = lookup(key)
    return not kiosk and binding is not None and binding.action == "quit"


class KeyboardControl:
    """Turns key codes into controller actions through :data:`KEYMAP`.

    ``exit_keys`` typed in a row within :data:`EXIT_WINDOW_S` end the show (OpenCV reports no
    modifier keys, so a short sequence such as ``qqq`` stands in for a chord: a visitor leaning on
    the keyboard does not type it by chance).  Kiosk (``kiosk=True``): they are the only way out,
    the :data:`KIOSK_LOCKED` actions are never run by a key; ``enabled=False`` ignores every other
    key too.
    """

    def __init__(self, controller: Controller, enabled: bool = True, exit_keys: str = "",
                 clock=time.monotonic, kiosk: bool = False) -> None:
        self.controller = controller
        self.enabled = enabled
        self.kiosk = kiosk
        self.exit_keys = exit_keys
        self._exit = ExitKeys(exit_keys, clock)

    def press(self, key: int) -> bool:
        """Act on one key code; False when the key is not bound (or -1: none)."""
        if key < 0:
            return False
        if self._exit.typed(key):
            log.info("exit keys typed: ending the show")
            self.controller.quit(origin=KEY)
            return True
        if not self.enabled:
            return False
        binding = lookup(key)
        if binding is None:
            return False
        if self.kiosk and binding.action in KIOSK_LOCKED:
            log.debug("kiosk: key %d (%s) ignored; the exit keys end the show", key, binding.action)
            return False
        try:
            self.controller.do(binding.action, origin=KEY, **binding.args)
        except ActionError as exc:  # e.g. key 7 with three styles: tell, do not crash
            log.info("%s", exc)
        return True
