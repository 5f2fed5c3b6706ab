"""A MIDI controller as a control surface: faders and knobs on the sliders, pads and buttons on
styles, recording and pause (``stylize live --midi [PORT]``, config ``midi:``).

Why a table of action names: a controller is a box of numbered controls, and which control does
what belongs to the user's desk, not to the code.  So the mapping says, per control change, note
or program change, which controller action runs (:data:`~realtime.core.controller.ACTIONS`, the
same door as keys and the page, with origin ``midi``): an action with one number argument is
continuous (0..127 scaled onto the argument's range, or onto the entry's ``low..high``), one
without arguments fires on a press, a plain number shows that style.  A shipped table fits the Korg
nanoKONTROL2 (``configs/midi-nanokontrol2.yaml``, where the format is described); any other is a
YAML file of the same shape.  The table is read and checked in :mod:`.midi_map`; this module is the
surface that looks it up.

MIDI learn: ``midi_learn(action)`` (the page's learn buttons, ``POST /api/midi/learn``) arms the
surface; the next control change or note is bound to that action, on top of the table.  Learning
ends unbound after :data:`~realtime.core.performer.LEARN_TIMEOUT_S` (10 s) with nothing moved, or at
``midi_learn_cancel`` (the page: the lit learn button again), so a forgotten learn never catches
a fader moved minutes later.  The learned
bindings are kept in the show's state file (:class:`~.memory.ShowMemory`, key ``midi``) and come
back at the next start unless ``--fresh``.

A missing MIDI system (no ALSA sequencer in a container, no port, no backend) is one warning line:
the show goes on without it.  Messages are read by one thread that polls the port (a stop event,
joined at :meth:`MidiControl.close`); a bad message or a refused action is a log line, never a crash.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

from ..config import Config
from ..core.controller import ActionError, Controller
from ..core.events import MIDI
from ..core.performer import LEARN_TIMEOUT_S
from ..errors import ConfigError
from .midi_map import (FADER_RANGES, KINDS, NOT_BINDABLE, Binding, Key, MidiMapping, key_text, load_mapping,
                       mapping_for, mapping_path, parse_binding, parse_key)

# The table (.midi_map) was made here once: its names are still found here.
__all__ = ["FADER_RANGES", "KINDS", "NOT_BINDABLE", "Binding", "Key", "MidiMapping", "key_text", "load_mapping",
           "mapping_for", "mapping_path", "parse_binding", "parse_key", "POLL_S", "MEMORY_KEY", "open_input",
           "MidiControl", "open_midi"]

log = logging.getLogger(__name__)

POLL_S = 0.005  # the port is drained every 5 ms: far below a frame, a fraction of a core's nothing
MEMORY_KEY = "midi"


def open_input(name: Optional[str]) -> Any:
    """The input port ``name`` (exact, else the first whose name starts with or contains it), or
    the first input port; an OSError (or the backend's own error) says why not."""
    import mido  # noqa: PLC0415 - only where --midi is asked for

    if sys.platform.startswith("linux") and not os.environ.get("MIDO_BACKEND") and not os.path.exists("/dev/snd/seq"):
        # Checked first: the ALSA library would print its own lines to stderr before failing.
        raise OSError("no ALSA sequencer (/dev/snd/seq is missing: no sound hardware, or the snd-seq module is not loaded)")
    names = mido.get_input_names()
    if not names:
        raise OSError("no MIDI input port (is the controller plugged in?)")
    if name:
        matches = ([n for n in names if n == name] or [n for n in names if n.startswith(name)]
                   or [n for n in names if name.lower() in n.lower()])
        if not matches:
            raise OSError(f"no MIDI input port {name!r} (there are: {', '.join(names)})")
        chosen = matches[0]
    else:
        chosen = names[0]
    return mido.open_input(chosen)


class MidiControl:
    """The surface: :meth:`handle` turns one ``mido.Message`` into a controller action (the
    reader thread calls it; tests feed it messages directly); :meth:`learn` arms MIDI learn."""

    def __init__(self, controller: Controller, mapping: MidiMapping, memory: Any = None,
                 learn_timeout_s: float = LEARN_TIMEOUT_S, clock: Callable[[], float] = time.monotonic) -> None:
        """``memory``: the show's :class:`~.memory.ShowMemory` (None: learned bindings last for this show).
        ``learn_timeout_s``: an armed learn with nothing moved this long ends unbound."""
        self.controller = controller
        self.mapping = mapping
        self.memory = memory
        self.port_name: Optional[str] = None
        self.learn_timeout_s = learn_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._learning: Optional[str] = None
        self._learn_until = 0.0  # the clock time an armed learn ends unbound
        self._learned: dict[str, dict[Key, Binding]] = {kind: {} for kind in KINDS}
        self._last_cc: dict[Key, int] = {}
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._port: Any = None
        saved = getattr(memory, "saved", None) or {}
        if MEMORY_KEY in saved:
            self._restore(saved[MEMORY_KEY])
        controller.bind_main("midi_learn", self.learn)
        controller.bind_main("midi_learn_cancel", self.cancel_learn)
        controller.add_status(self.status)

    # -- learning ----------------------------------------------------------------------------------
    def learn(self, action: str) -> str:
        """Arm learning: the next control change or note runs ``action`` from now on (a number
        N: shows style N).  Raises :class:`ActionError` for an action no control can run."""
        try:
            parse_binding(int(action) if action.isdigit() else action, "midi_learn")
        except ConfigError as exc:
            raise ActionError(str(exc)) from None
        with self._lock:
            self._learning = action
            self._learn_until = self._clock() + self.learn_timeout_s
        log.info("MIDI learn: move a fader or knob, or press a pad, for %s (within %g s)", action, self.learn_timeout_s)
        return action

    def cancel_learn(self) -> Optional[str]:
        """End learning unbound (``midi_learn_cancel``); returns the action that was armed, or None."""
        with self._lock:
            action, self._learning = self._learning, None
        if action is not None:
            log.info("MIDI learn for %s cancelled", action)
        return action

    def _expire(self) -> None:
        """Under the lock: an armed learn past its time ends unbound (checked by the reader thread
        each poll, and before a message or the status reads it, so no late message is bound)."""
        if self._learning is not None and self._clock() >= self._learn_until:
            log.info("MIDI learn for %s: nothing moved within %g s, cancelled", self._learning, self.learn_timeout_s)
            self._learning = None

    @property
    def learning(self) -> Optional[str]:
        with self._lock:
            self._expire()
            return self._learning

    def learned(self) -> dict[str, dict[str, Any]]:
        """The learned bindings as JSON (the state file's ``midi`` key)."""
        with self._lock:
            return {kind: {key_text(k): b.to_json() for k, b in table.items()} for kind, table in self._learned.items()}

    def _restore(self, data: Any) -> None:
        try:
            for kind in KINDS:
                for k, v in (data.get(kind) or {}).items():
                    self._learned[kind][parse_key(k, "saved MIDI binding")] = parse_binding(v, f"saved MIDI {kind} {k}", kind)
        except (ConfigError, AttributeError) as exc:
            log.warning("the saved MIDI bindings are ignored: %s", exc)
            self._learned = {kind: {} for kind in KINDS}
            return
        count = sum(map(len, self._learned.values()))
        if count:
            log.info("MIDI: %d learned binding(s) from the saved show state", count)

    def _bind(self, kind: str, key: Key) -> bool:
        """Under the lock, with learning armed: bind ``key`` (False: this kind cannot take it)."""
        action = self._learning
        assert action is not None
        try:
            binding = parse_binding(int(action) if action.isdigit() else action, "midi_learn", kind)
        except ConfigError as exc:
            log.warning("MIDI learn: %s", exc)
            return False
        self._learned[kind][key] = binding
        self._learning = None
        log.info("MIDI learn: %s %s -> %s", "CC" if kind == "cc" else "note", key_text(key), binding.describe())
        return True

    # -- messages ----------------------------------------------------------------------------------
    def handle(self, msg: Any) -> Optional[str]:
        """One message: the action it ran (its name), or None (nothing bound, ignored, refused)."""
        try:
            return self._handle(msg)
        except Exception as exc:  # noqa: BLE001 - a controller's odd message must never end the show
            self._warn_once(f"msg:{type(exc).__name__}", "MIDI message %r ignored: %s", msg, exc)
            return None

    def _handle(self, msg: Any) -> Optional[str]:
        kind = getattr(msg, "type", None)
        channel = getattr(msg, "channel", None)
        if kind not in ("control_change", "note_on", "program_change"):
            return None  # note off, clock, sysex, pitch bend...
        if self.mapping.channel is not None and channel != self.mapping.channel:
            return None
        if kind == "program_change":
            if self.mapping.program is None:
                return None
            return self._run(Binding("set_style_index", index=int(msg.program)), 127, True)
        if kind == "note_on" and msg.velocity == 0:
            return None  # many controllers send note off this way
        table, number, value = ("cc", msg.control, msg.value) if kind == "control_change" else ("note", msg.note, msg.velocity)
        key: Key = (channel, number)
        learned_now = False
        with self._lock:
            previous = self._last_cc.get(key, 0) if table == "cc" else 0
            if table == "cc":
                self._last_cc[key] = value
            self._expire()
            if self._learning is not None:
                learned_now = self._bind(table, key)
            binding = self._learned[table].get(key) or self._learned[table].get((None, number)) or self.mapping.find(table, channel, number)
        if learned_now and self.memory is not None:
            self.memory.keep(MEMORY_KEY, self.learned())
        if binding is None:
            return None
        pressed = table == "note" or (value >= 64 and (previous < 64 or learned_now))
        return self._run(binding, value, pressed)

    def _run(self, binding: Binding, value: int, pressed: bool) -> Optional[str]:
        try:
            if binding.continuous:
                assert binding.low is not None and binding.high is not None and binding.param is not None
                scaled = round(binding.low + (binding.high - binding.low) * min(max(value, 0), 127) / 127.0, 4)
                self.controller.do(binding.action, origin=MIDI, **{binding.param: scaled})
            elif not pressed:
                return None
            elif binding.index is not None:
                self.controller.set_style_index(binding.index, origin=MIDI)
            else:
                self.controller.do(binding.action, origin=MIDI)  # main-thread ones: the live loop answers and logs
        except ActionError as exc:  # a style button with no style behind it, strength on an unmixable backend
            self._warn_once(binding.action, "MIDI %s refused: %s", binding.describe(), exc)
            return None
        return binding.action

    def _warn_once(self, what: str, fmt: str, *args: Any) -> None:
        """A fader moved on a backend that cannot mix sends dozens of messages: one warning, then debug."""
        level = logging.DEBUG if what in self._warned else logging.WARNING
        self._warned.add(what)
        log.log(level, fmt, *args)

    def status(self) -> dict[str, Any]:
        return {"midi": self.port_name, "midi_learning": self.learning}

    # -- the port ----------------------------------------------------------------------------------
    def start(self, port: Any) -> None:
        """Read ``port`` (a mido input: ``iter_pending``, ``close``) on a thread until :meth:`close`."""
        self._port = port
        self.port_name = str(getattr(port, "name", "") or "MIDI")
        self._thread = threading.Thread(target=self._read, name="realtime-midi", daemon=True)
        self._thread.start()
        log.info("MIDI: listening to %s", self.port_name)

    def _read(self) -> None:
        while not self._stop.is_set():
            if self._learning is not None:
                with self._lock:
                    self._expire()  # the log line at the moment learning gives up
            try:
                for msg in self._port.iter_pending():
                    self.handle(msg)
                    if self._stop.is_set():
                        return
            except Exception as exc:  # noqa: BLE001 - unplugged: the show goes on without it
                log.warning("MIDI input %s failed: %s (the show goes on without it)", self.port_name, exc)
                return
            self._stop.wait(POLL_S)

    def close(self) -> None:
        """Stop and join the reader, then close the port (never while the thread reads it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._port is not None:
            port, self._port = self._port, None
            try:
                port.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the MIDI port failed", exc_info=True)


def open_midi(cfg: Config, controller: Controller, mapping: Optional[MidiMapping], memory: Any = None,
              opener: Callable[[Optional[str]], Any] = open_input) -> Optional[MidiControl]:
    """The MIDI surface, listening; None without ``midi.enabled``, or with one warning line when
    there is no MIDI system or no such port (the show goes on without it)."""
    if mapping is None:
        return None
    try:
        port = opener(cfg.midi.port)
    except ImportError as exc:
        log.warning("MIDI needs mido and python-rtmidi (%s): the show goes on without it", exc)
        return None
    except Exception as exc:  # noqa: BLE001 - rtmidi's SystemError, OSError: no sequencer, no port
        text = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("MIDI: %s: the show goes on without it", text)
        return None
    control = MidiControl(controller, mapping, memory)
    control.start(port)
    return control
