"""The MIDI control table: which control change, note or program change runs which action.

Why apart from :mod:`.midi`: the table is data read and checked before anything opens (a bad
file is one line before the camera: :func:`mapping_for`), and its entries are also what MIDI learn
binds and the show's state file keeps; :class:`~.midi.MidiControl` only looks them up.  The format
(an action name, a style number, or ``{action, low, high}`` per control; ``CHANNEL:NUMBER`` keys)
is described in ``configs/midi-nanokontrol2.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from ..config import Config, load_yaml
from ..core.controller import ACTIONS
from ..errors import ConfigError
from ..resources import SHIPPED_CONFIGS

# A fader over the whole argument range is no use for these: a sensible span instead (low/high override).
FADER_RANGES: dict[str, tuple[float, float]] = {"set_cycle": (0.0, 120.0), "set_crossfade": (0.0, 10.0)}
NOT_BINDABLE = frozenset({"midi_learn", "midi_learn_cancel", "quit"})  # learning must not chain; a stray pad must not end the show
KINDS = ("cc", "note")

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
        data = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"midi.mapping: cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"midi.mapping: {path} is not a YAML table: {first}") from None
    return MidiMapping.parse(data, f"midi mapping {path.name}")


def mapping_for(cfg: Config) -> Optional[MidiMapping]:
    """``midi.enabled``: the table, read now (a bad file is one line before the camera opens)."""
    return load_mapping(cfg.midi.mapping) if cfg.midi.enabled else None
