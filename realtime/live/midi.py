"""A MIDI controller as a control surface: faders and knobs on the sliders, pads and buttons on
styles, recording and pause (``stylize live --midi [PORT]``, config ``midi:``).

Why a table of action names: a controller is a box of numbered controls, and which control does
what belongs to the user's desk, not to the code.  So the mapping says, per control change, note
or program change, which controller action runs (:data:`~realtime.core.controller.ACTIONS`, the
same door as keys and the page, with origin ``midi``): an action with one number argument is
continuous (0..127 scaled onto the argument's range, or onto the entry's ``low..high``), one
without arguments fires on a press, a plain number shows that style.  A shipped table fits the Korg
nanoKONTROL2 (``configs/midi-nanokontrol2.yaml``, where the format is described); any other is a
YAML file of the same shape.

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
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from ..config import Config
from ..core.controller import ACTIONS, ActionError, Controller
from ..core.events import MIDI
from ..core.performer import LEARN_TIMEOUT_S
from ..errors import ConfigError
from ..resources import SHIPPED_CONFIGS

log = logging.getLogger(__name__)

POLL_S = 0.005  # the port is drained every 5 ms: far below a frame, a fraction of a core's nothing
# A fader over the whole argument range is no use for these: a sensible span instead (low/high override).
FADER_RANGES: dict[str, tuple[float, float]] = {"set_cycle": (0.0, 120.0), "set_crossfade": (0.0, 10.0)}
NOT_BINDABLE = frozenset({"midi_learn", "midi_learn_cancel", "quit"})  # learning must not chain; a stray pad must not end the show
KINDS = ("cc", "note")
MEMORY_KEY = "midi"

Key = tuple[Optional[int], int]  # (0-based channel or None = any, control or note number)


@dataclass(frozen=True)
class Binding:
    """What one control does: an action, a style number (``set_style_index``), or a continuous
    action scaled onto ``low..high``."""

    action: str
    index: Optional[int] = None
    low: Optional[float] = None
    high: Optional[float] = None
    param: Optional[str] = None  # the continuous action's argument

    @property
    def continuous(self) -> bool:
        return self.param is not None

    def to_json(self) -> Any:
        """The same shape the table takes (a number, a name, or {action, low, high})."""
        if self.index is not None:
            return self.index
        if self.continuous and (self.low, self.high) != _param_range(self.action):
            return {"action": self.action, "low": self.low, "high": self.high}
        return self.action

    def describe(self) -> str:
        return f"style {self.index}" if self.index is not None else self.action


def _param_range(action: str) -> tuple[Optional[float], Optional[float]]:
    if action in FADER_RANGES:
        return FADER_RANGES[action]
    p = ACTIONS[action].params[0]
    return p.low, p.high


def parse_binding(value: Any, where: str, kind: str = "cc") -> Binding:
    """One table entry (or a learn request) as a :class:`Binding`; a :class:`ConfigError` names
    ``where`` and what is wrong."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"{where}: a style number must be 0 or more, got {value}")
        return Binding("set_style_index", index=value)
    low = high = None
    if isinstance(value, Mapping):
        unknown = set(value) - {"action", "low", "high"}
        if unknown or not isinstance(value.get("action"), str):
            raise ConfigError(f"{where}: an entry is an action name, a style number or {{action, low, high}}, got {dict(value)!r}")
        low, high = value.get("low"), value.get("high")
        for bound in (low, high):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
                raise ConfigError(f"{where}: low and high must be numbers, got {bound!r}")
        value = value["action"]
    if not isinstance(value, str):
        raise ConfigError(f"{where}: an entry is an action name, a style number or {{action, low, high}}, got {value!r}")
    spec = ACTIONS.get(value)
    if spec is None:
        raise ConfigError(f"{where}: unknown action {value!r} (known: {', '.join(sorted(ACTIONS))})")
    if value in NOT_BINDABLE:
        raise ConfigError(f"{where}: {value} cannot be put on a MIDI control")
    required = [p for p in spec.params if not p.optional]
    if not required:
        if low is not None or high is not None:
            raise ConfigError(f"{where}: {value} takes no value, so no low/high")
        return Binding(value)
    if len(required) == 1 and len(spec.params) == 1 and required[0].kind is float:
        if kind != "cc":
            raise ConfigError(f"{where}: {value} needs a value: put it on a fader or knob (cc), not a note")
        p = required[0]
        d_low, d_high = _param_range(value)
        low = d_low if low is None else float(low)
        high = d_high if high is None else float(high)
        for bound in (low, high):
            if (p.low is not None and bound < p.low) or (p.high is not None and bound > p.high):
                raise ConfigError(f"{where}: {value}'s range is {p.range_text()}, got {bound:g}")
        return Binding(value, low=low, high=high, param=p.name)
    raise ConfigError(f"{where}: {value} needs arguments a MIDI control cannot give"
                      + (" (a style number N shows style N)" if value == "set_style_index" else ""))


def parse_key(key: Any, where: str) -> Key:
    """``7`` (any channel) or ``"2:7"`` (channel 2 of 1-16); numbers 0..127."""
    text = str(key).strip() if not isinstance(key, bool) else ""
    m = re.fullmatch(r"(?:([0-9]{1,2}):)?([0-9]{1,3})", text)
    if m is None or int(m[2]) > 127 or (m[1] is not None and not 1 <= int(m[1]) <= 16):
        raise ConfigError(f"{where}: {key!r} is not a number 0..127 or CHANNEL:NUMBER (channel 1-16)")
    return (int(m[1]) - 1 if m[1] is not None else None, int(m[2]))


def key_text(key: Key) -> str:
    return str(key[1]) if key[0] is None else f"{key[0] + 1}:{key[1]}"


@dataclass(frozen=True)
class MidiMapping:
    """The control table: ``cc`` and ``note`` bindings by (channel, number), what a program
    change does, and the one channel listened to (None: all)."""

    cc: Mapping[Key, Binding]
    note: Mapping[Key, Binding]
    program: Optional[str] = "set_style_index"
    channel: Optional[int] = None

    @classmethod
    def parse(cls, data: Any, where: str) -> "MidiMapping":
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a MIDI mapping is a mapping with cc, note, program, channel")
        unknown = set(data) - {"cc", "note", "program", "channel"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (known: cc, note, program, channel)")
        tables: dict[str, dict[Key, Binding]] = {}
        for kind in KINDS:
            section = data.get(kind) or {}
            if not isinstance(section, Mapping):
                raise ConfigError(f"{where}: '{kind}' must map numbers to actions")
            tables[kind] = {parse_key(k, f"{where} {kind}"): parse_binding(v, f"{where} {kind} {k}", kind) for k, v in section.items()}
        program = data.get("program", "set_style_index")
        if program not in (None, "set_style_index"):
            raise ConfigError(f"{where}: program must be set_style_index or null, got {program!r}")
        channel = data.get("channel")
        if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16):
            raise ConfigError(f"{where}: channel must be 1..16 or null, got {channel!r}")
        return cls(tables["cc"], tables["note"], program, None if channel is None else channel - 1)

    def find(self, kind: str, channel: Optional[int], number: int) -> Optional[Binding]:
        table = self.cc if kind == "cc" else self.note
        return table.get((channel, number)) or table.get((None, number))


def mapping_path(spec: str) -> Path:
    """A shipped table by name (``nanokontrol2`` -> ``configs/midi-nanokontrol2.yaml``) or a file."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", spec):
        return SHIPPED_CONFIGS / f"midi-{spec}.yaml"
    return Path(spec).expanduser()


def load_mapping(spec: str) -> MidiMapping:
    """The table ``midi.mapping`` names; a missing or broken file is one :class:`ConfigError`."""
    path = mapping_path(spec)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"midi.mapping: cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"midi.mapping: {path} is not a YAML table: {first}") from None
    return MidiMapping.parse(data, f"midi mapping {path.name}")


def mapping_for(cfg: Config) -> Optional[MidiMapping]:
    """``midi.enabled``: the table, read now (a bad file is one line before the camera opens)."""
    return load_mapping(cfg.midi.mapping) if cfg.midi.enabled else None


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
