"""The show's state kept across restarts: style (by name), strength, stability, cycle, overlay,
crossfade time and tempo (bpm; the beat's phase is not kept: it falls on the restore, and a tap
sets it again).

Why: an installation restarts -- a power cut, a crash that systemd answers with a restart, the
nightly reboot -- and should come back as the staff left it, not with the config's first painting
at the config's strength.  A controller-event subscriber notes every change to those fields (except
attract mode's temporary strength, told apart by the event's origin); the live loop writes them as
a small JSON file between frames, at most once a second, atomically and durably (fsynced before
the rename, the folder after it: a kill or a power cut at any moment leaves the old file or the new
one, never half of one or an empty one), and the end of the show writes the last change before
the process exits.  At start the file is put back through the controller's own actions (origin
``restore``), so every value is checked like a key press would be: a style that is no longer loaded,
or a strength this backend cannot mix, is one log line and otherwise ignored.  ``stylize live
--fresh`` starts from the config instead (and the file then follows the fresh show).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from ..core.controller import ActionError, Controller, LiveState
from ..core.events import ATTRACT, RESTORE, ControlEvent
from ..io.paths import atomic_write_bytes

log = logging.getLogger(__name__)

VERSION = 1
FIELDS = frozenset({"style_index", "strength", "stability", "cycle_s", "overlay", "crossfade_s", "bpm"})
WRITE_EVERY_S = 1.0  # a slider dragged or a fast cycle is one write a second, not one per change
NUMBERS = (("strength", "set_strength", "value"), ("stability", "set_stability", "value"), ("cycle_s", "set_cycle", "seconds"),
           ("crossfade_s", "set_crossfade", "seconds"), ("bpm", "set_tempo", "bpm"))


def state_file(cfg: Any) -> Path:
    """``show.state_file``, or ``show-state.json`` in the per-user cache folder."""
    return Path(cfg.show.state_file) if cfg.show.state_file else cfg.cache_dir / "show-state.json"


def read_saved(path: Path) -> Optional[dict[str, Any]]:
    """The saved state, or None (no file yet, or one that cannot be used: said in one line)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.info("no saved show state at %s yet: starting from the config", path)
        return None
    except (OSError, ValueError) as exc:
        log.warning("the saved show state %s cannot be read (%s): starting from the config", path, exc)
        return None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        log.warning("the saved show state %s is not one this version wrote: starting from the config", path)
        return None
    return data


def restore(controller: Controller, saved: dict[str, Any]) -> list[str]:
    """Put ``saved`` back through the controller's actions; returns what came back ("style waves", ...)."""
    back: list[str] = []
    style = saved.get("style")
    if style is not None:
        if isinstance(style, str) and style in controller.style_names:  # by name: the list may have changed
            controller.set_style_index(controller.style_names.index(style), origin=RESTORE)
            back.append(f"style {style}")
        else:
            log.warning("the saved style %r is not among the loaded styles: ignored", style)
    for key, action, param in NUMBERS:
        if key not in saved:
            continue
        try:
            controller.do(action, origin=RESTORE, **{param: saved[key]})
            back.append(f"{key} {saved[key]:g}")
        except (ActionError, TypeError, ValueError) as exc:
            log.warning("the saved %s is ignored: %s", key, exc)
    overlay = saved.get("overlay")
    if isinstance(overlay, bool):
        if overlay != controller.state.overlay:
            controller.toggle_overlay(origin=RESTORE)
        back.append(f"overlay {'on' if overlay else 'off'}")
    elif overlay is not None:
        log.warning("the saved overlay %r is not true or false: ignored", overlay)
    return back


class ShowMemory:
    """Keeps the show's state in ``path``: restored at construction (unless ``fresh``), then
    written by :meth:`tick` (the live loop) after changes, and at once when the show ends."""

    def __init__(self, controller: Controller, path: str | Path, fresh: bool = False,
                 every_s: float = WRITE_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.controller = controller
        self.path = Path(path)
        self.every_s = every_s
        self._clock = clock
        self.restored: list[str] = []
        self.saved: Optional[dict[str, Any]] = None  # the file as read (None: fresh, or none usable)
        if fresh:
            log.info("--fresh: the saved show state is not used (it is replaced by this show's)")
        else:
            saved = self.saved = read_saved(self.path)
            if saved is not None:
                self.restored = restore(controller, saved)
                log.info("show state from %s: %s (--fresh starts from the config)", self.path,
                         ", ".join(self.restored) or "nothing usable")
        self._lock = threading.Lock()  # the fields, from any thread's events
        self._write_lock = threading.Lock()  # one write at a time, newest last
        self._fields = self._snapshot(controller.state)
        # Other surfaces' keys (``midi``: learned bindings) travel on, even in a show that does not use them.
        self._fields.update({k: v for k, v in (self.saved or {}).items() if k not in self._fields and k not in ("version", "saved")})
        self._dirty = fresh  # a fresh show replaces the old file at once
        self._last_write = float("-inf")
        self._failed = False
        self.writes = 0
        controller.subscribe(self._on_change)

    def _snapshot(self, state: LiveState, keys: frozenset[str] = FIELDS) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in keys:
            if key == "style_index":
                out["style"] = self.controller.style_names[state.style_index]
            else:
                out[key] = getattr(state, key)
        return out

    def _on_change(self, event: ControlEvent) -> None:
        """Any thread: note the fields (attract mode's strength is its own, not the show's)."""
        keys = event.changed & FIELDS
        if keys and event.origin != ATTRACT:
            with self._lock:
                self._fields.update(self._snapshot(event.state, keys))
                self._dirty = True
        if not event.state.running:
            self.flush()  # the show ends: the last change reaches the disk before the process exits

    def keep(self, key: str, value: Any) -> None:
        """Any thread: keep another surface's JSON-able ``value`` under ``key`` (learned MIDI
        bindings), written like a change of the show; read back from :attr:`saved` at start."""
        if key in FIELDS or key in ("version", "saved", "style"):
            raise ValueError(f"{key!r} is the show's own key")
        with self._lock:
            self._fields[key] = value
            self._dirty = True

    def tick(self) -> None:
        """Live loop: write when something changed and the last write is ``every_s`` old."""
        if self._dirty and self._clock() - self._last_write >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write now if anything changed since the last write."""
        with self._write_lock:
            with self._lock:
                if not self._dirty:
                    return
                data = {"version": VERSION, **self._fields, "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
                self._dirty = False
            self._last_write = self._clock()
            try:
                atomic_write_bytes(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(),
                                   durable=True)  # a power cut leaves the old state or the new, never an empty file
            except Exception as exc:  # noqa: BLE001 - a full disk must never end the show
                if not self._failed:
                    log.warning("cannot save the show state to %s: %s", self.path, exc)
                self._failed = True
                with self._lock:
                    self._dirty = True  # tried again at the next write time
                return
            self._failed = False
            self.writes += 1

    def close(self) -> None:
        """Write what is left and stop listening."""
        self.controller.unsubscribe(self._on_change)
        self.flush()
