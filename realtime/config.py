"""Configuration: frozen dataclasses loaded from YAML, with unknown or mistyped keys rejected.

Why this shape: every default lives in ``configs/default.yaml`` (and, identically, in the dataclass
defaults below, which a test keeps in sync), a user's ``--config FILE`` only needs the keys it
changes, and command-line flags override both through :func:`load_config`'s ``overrides``.  Mistyped keys are
the most common config bug, so they are errors that name the key, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .backends_table import BACKEND_CHOICES, DEVICES, PRECISIONS, valid_device
# The show surfaces' sections (web, osc, midi, virtual_camera, ndi, kiosk), re-exported: `from realtime.config import X`.
from .config_surfaces import SURFACE_RANGES, KioskConfig, MidiConfig, NdiConfig, OscConfig, VirtualCameraConfig, WebConfig
from .errors import ConfigError
from .resources import DEFAULT_CONFIG_PATH
from .schedule import ScheduleError, parse_dates, parse_hours, parse_playlist


def default_cache_dir() -> str:
    """Per-user cache folder: ``$REALTIME_CACHE_DIR``, else ``$XDG_CACHE_HOME/realtime``."""
    env = os.environ.get("REALTIME_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "realtime")


def default_data_dir() -> str:
    """Per-user data folder (what the program keeps for a user, unlike a cache): ``$REALTIME_DATA_DIR``,
    else the platform's (``platformdirs``: ``~/.local/share/realtime`` on Linux, ``~/Library/Application
    Support/realtime`` on macOS, ``%LOCALAPPDATA%\\realtime`` on Windows)."""
    env = os.environ.get("REALTIME_DATA_DIR")
    if env:
        return env
    import platformdirs

    return platformdirs.user_data_dir("realtime", appauthor=False)


@dataclass(frozen=True)
class ModelConfig:
    """Where the network files come from."""

    # Local folder with the .tflite files; overrides the cache (env REALTIME_MODEL_DIR too).
    model_dir: Optional[str] = None
    # Cache folder for downloads; null means the per-user cache (see default_cache_dir).
    cache_dir: Optional[str] = None
    # Base address of the official TF Lite files (overridable for mirrors and tests).
    base_url: str = (
        "https://storage.googleapis.com/download.tensorflow.org/models/tflite/"
        "task_library/style_transfer/android"
    )
    # Download missing files automatically when a command needs them.
    auto_download: bool = True
    # Transfer network precision for the tflite backend: fp16 or int8.
    transfer: str = "fp16"
    # TF Hub handle (or local SavedModel path) for the hub backend.
    hub_handle: str = "https://tfhub.dev/google/magenta/arbitrary-image-stylization-v1-256/2"


@dataclass(frozen=True)
class EngineConfig:
    """How frames are stylized."""

    # auto or a backend of realtime/backends_table.py (`stylize image --help` lists them)
    backend: str = "auto"
    device: str = "auto"  # auto | cpu | gpu | gpu:N (each backend's devices: realtime/backends_table.py)
    threads: int = 0  # CPU threads for inference; 0 = all cores
    # auto (half precision with torch on a GPU; bf16 where the backend gains from it: openvino on a CPU
    # with AMX; else float32) | float32 | mixed (float16 compute, GPU) | bf16 (bfloat16 compute: lower precision)
    precision: str = "auto"
    # XLA-compile the transfer graph (torch: torch.compile on CUDA): auto = for live and video (fixed
    # frame size: one ~1 s compile, then 10-15% faster on CPU), not for still images of many sizes | always | never
    xla: str = "auto"
    batch_size: int = 4  # frames per inference call for video files
    stability_device: str = "auto"  # stability's full-size warp and blend: auto (torch's GPU, else CPU) | cpu
    max_size: int = 1080  # cap on the inference short side (the output keeps the source size)


@dataclass(frozen=True)
class StyleConfig:
    """Where styles come from and how they are applied."""

    dir: str = "styles"
    default: Optional[str] = None  # a name in dir; null = all of dir (live) / required (image)
    strength: float = 1.0
    crossfade_s: float = 0.5
    # Cache of style codes; null means <cache>/style_codes.
    cache_dir: Optional[str] = None
    # Styles uploaded from the control page; null means <data>/styles (see default_data_dir).  Not
    # the styles folder: an upload must not become part of every later show (issue 27).
    upload_dir: Optional[str] = None
    # Styles taken from the camera (take_style, the g key) kept in the show; the oldest leaves the
    # show (its file stays in <upload_dir>/taken) so a long night of takes cannot grow it without end.
    taken_max: int = 8


@dataclass(frozen=True)
class LiveConfig:
    """Live display, capture and recording; every flag of ``stylize live`` has its key here, so an
    unattended setup can live in one file."""

    source: str = "0"
    # A second source (same forms as source) that take_style takes its picture from (issue 28: a
    # camera that takes styles); read on its own thread, shown small on the control page; null = the
    # main source's picture is taken.
    style_source: Optional[str] = None
    width: int = 1280  # requested capture size (cameras; read back, drivers may differ)
    height: int = 720
    fps: float = 0.0  # requested camera rate / file pacing; 0 = the source's own (synthetic: 30)
    size: int = 384  # inference short side (never above the source's; capped by engine.max_size);
    # with the governor on, the largest it may use
    target_fps: Optional[float] = None  # governor: null = the source's rate (at most 30); 0 = off (size pinned)
    overlay: bool = True
    mirror: bool = False
    fullscreen: bool = False
    headless: bool = False  # no window: record, count frames, or serve other outputs
    loop: bool = False  # repeat a file source
    keep_pace: bool = False  # file source: keep real time, dropping frames like a camera
    max_frames: int = 0  # stop after N shown frames; 0 = run until quit
    stability: float = 0.55  # flow-guided stability against flicker: 0 (off, the raw network) .. 1
    record: bool = False  # record from the start
    record_path: Optional[str] = None  # recording file; null = timestamped file in record_dir
    record_dir: str = "recordings"
    # Every recording also keeps the camera's own frames, NAME.source.mp4 (unstylized, on the
    # recording's clock), named in its timeline: the raw input of a re-render (stylize video --timeline).
    record_source: bool = False
    snapshot_dir: str = "snapshots"
    crf: int = 20
    # x264 preset of live recordings: ultrafast, half of superfast's CPU (the show needs it; README)
    record_preset: str = "ultrafast"
    reconnect: bool = True  # cameras and streams: reopen when they stall or vanish (placeholder meanwhile)
    stall_s: float = 5.0  # seconds without a frame that count as a stall
    reconnect_max_s: float = 10.0  # longest wait between reconnection attempts (backoff doubles up to it)
    # An inference call with no result after this long is a hang: logged, counted, and the inference
    # worker restarted like a crash (show.worker_restarts_per_hour), else the show ends; 0 = off.
    hang_s: float = 10.0


@dataclass(frozen=True)
class VideoConfig:
    """Offline video files."""

    size: int = 0  # inference short side; 0 = source short side, capped by engine.max_size
    # x264 superfast: 55% of veryfast's encoding CPU at the same quality per byte within 0.2 dB
    # (benchmarks/x264_presets.py; figures in the README's Speed section).
    crf: int = 16
    preset: str = "superfast"
    encoder: str = "x264"  # x264 | nvenc (NVIDIA's encoder where the GPU has one; else x264, said once)
    stability: float = 0.55  # flow-guided stability against flicker: 0 (off, the raw network) .. 1
    queue_frames: int = 16


@dataclass(frozen=True)
class ShowConfig:
    """Unattended shows (installations): automatic style cycling, a status file, a heartbeat."""

    cycle_s: float = 0.0  # next style every N seconds (with the crossfade); 0 = off
    shuffle: bool = False  # random order, never the same style twice in a row (a playlist keeps its order)
    resume_s: float = 60.0  # after a person changes the style by hand, cycling waits this long
    # Each style's own time and strength, in this order: "waves 60s 1.2; mosaic 30s; dots";
    # empty = every loaded style for cycle_s at the current strength.
    playlist: str = ""
    status_file: Optional[str] = None  # JSON status, written atomically every status_every_s
    status_every_s: float = 5.0
    # Style (by name), strength, stability, cycle, overlay, crossfade and tempo survive a restart (--fresh
    # starts from the config instead); kept in state_file, null = <cache>/show-state.json.
    remember: bool = False
    state_file: Optional[str] = None
    heartbeat_min: float = 0.0  # one log line (fps, latency, drops, reconnects, memory) every N minutes; 0 = off
    worker_restarts_per_hour: int = 0  # restart a failed inference step up to N times an hour; 0 = a failure ends the show
    open_hours: str = ""  # e.g. "mon-fri 09:00-18:00; sat,sun 10:00-16:00"; empty = always open
    closed_dates: str = ""  # e.g. "2026-12-25, 2027-01-01"
    closed_image: Optional[str] = None  # picture shown while closed; null = a black screen
    # Attract mode: after idle_s seconds with nothing moving in front of the camera, the show changes
    # its behaviour (a slower cycle, another strength, or a prepared clip) until something moves.
    idle_s: float = 0.0  # 0 = off
    idle_motion: float = 2.0  # what counts as motion: mean grey change (0-255) of a 32x24 thumbnail over 0.25 s
    idle_cycle_s: float = 0.0  # style cycle while idle; 0 = the same as cycle_s
    idle_strength: Optional[float] = None  # strength while idle; null = unchanged
    idle_clip: Optional[str] = None  # video shown (looped, as it is) while idle instead of the camera
    # With a tempo known (tap_tempo, set_tempo: OSC, the page), the cycle's switches fall on beats:
    # every N beats instead of cycle_s (which still turns the cycle on and off); 0 = by seconds only.
    cycle_beats: int = 0
    # With a tempo known, a style switch's crossfade lasts this many beats instead of styles.crossfade_s
    # (and set_crossfade's seconds); 0 = by seconds only.
    crossfade_beats: float = 0.0


@dataclass(frozen=True)
class LogConfig:
    """Log files for shows that run for months (the terminal or journal gets the same lines)."""

    file: Optional[str] = None  # rotating log file; null = standard error only
    max_mb: float = 10.0  # size at which the file is rotated
    backups: int = 5  # rotated files kept (file.1 .. file.N)


@dataclass(frozen=True)
class ImageConfig:
    """Still images."""

    size: int = 0  # inference short side; 0 = the image's own, capped by engine.max_size


@dataclass(frozen=True)
class ClusterConfig:
    """``stylize video --cluster``: files and long files spread over a Ray cluster, resumable."""

    enabled: bool = False  # the --cluster flag
    address: Optional[str] = None  # null = a local Ray on this machine; "auto" or "ray://HOST:10001" = a running cluster
    segment_s: float = 30.0  # long files are cut at keyframes into segments of about this many seconds; 0 = whole files
    worker_cpus: int = 2  # CPU threads per worker where the cluster has no GPUs (one worker per GPU otherwise)
    workers: int = 0  # 0 = as many as the cluster's GPUs, or its CPUs / worker_cpus
    retries: int = 2  # times a unit is retried after its worker died
    work_dir: Optional[str] = None  # finished segments + manifests; null = <output folder>/.realtime-work (shared storage)


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    models: ModelConfig = field(default_factory=ModelConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    styles: StyleConfig = field(default_factory=StyleConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    show: ShowConfig = field(default_factory=ShowConfig)
    kiosk: KioskConfig = field(default_factory=KioskConfig)
    web: WebConfig = field(default_factory=WebConfig)
    osc: OscConfig = field(default_factory=OscConfig)
    virtual_camera: VirtualCameraConfig = field(default_factory=VirtualCameraConfig)
    ndi: NdiConfig = field(default_factory=NdiConfig)
    midi: MidiConfig = field(default_factory=MidiConfig)
    log: LogConfig = field(default_factory=LogConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    @property
    def cache_dir(self) -> Path:
        return Path(self.models.cache_dir or default_cache_dir())

    @property
    def upload_dir(self) -> Path:
        """Where styles uploaded from the control page are kept (``styles.upload_dir``)."""
        return Path(self.styles.upload_dir) if self.styles.upload_dir else Path(default_data_dir()) / "styles"


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
CHOICES: dict[str, tuple[str, ...]] = {
    "engine.backend": BACKEND_CHOICES,  # the backends, their devices and precisions: realtime/backends_table.py
    "engine.device": DEVICES,
    "engine.precision": PRECISIONS,
    "engine.xla": ("auto", "always", "never"),
    "engine.stability_device": ("auto", "cpu"),
    "models.transfer": ("fp16", "int8"),
    "video.encoder": ("x264", "nvenc"),
    "video.preset": X264_PRESETS,
    "live.record_preset": X264_PRESETS,
}

# Allowed ranges (inclusive), checked for YAML and flags alike; ``0`` is listed where it means "auto".
RANGES: dict[str, tuple[float, float, str]] = {
    "engine.threads": (0, 1024, "0 = all cores"),
    "engine.batch_size": (1, 64, ""),
    "engine.max_size": (16, 8192, "pixels"),
    "styles.strength": (0.0, 2.0, "0 = the content's look, 1 = the style"),
    "styles.crossfade_s": (0.0, 60.0, "seconds"),
    "styles.taken_max": (1, 1000, "taken styles kept in the show"),
    "live.width": (0, 8192, "0 = the camera's own"),
    "live.height": (0, 8192, "0 = the camera's own"),
    "live.fps": (0.0, 240.0, "0 = the source's own"),
    "live.size": (16, 8192, "pixels"),
    "live.max_frames": (0, 10**12, "0 = no limit"),
    "live.stability": (0.0, 1.0, "0 = off"),
    "live.crf": (0, 51, "lower = better"),
    "live.stall_s": (0.5, 3600.0, "seconds"),
    "live.reconnect_max_s": (0.5, 3600.0, "seconds"),
    "live.hang_s": (0.0, 3600.0, "seconds; 0 = off"),
    "live.target_fps": (0.0, 240.0, "frames per second; 0 = off, null = the source's rate (at most 30)"),
    "video.size": (0, 8192, "0 = the source's own; else at least 16"),
    "video.crf": (0, 51, "lower = better; 18 looks lossless"),
    "video.stability": (0.0, 1.0, "0 = off"),
    "video.queue_frames": (1, 1024, ""),
    "image.size": (0, 8192, "0 = the image's own; else at least 16"),
    "show.cycle_s": (0.0, 86400.0, "seconds; 0 = off"),
    "show.resume_s": (0.0, 86400.0, "seconds"),
    "show.status_every_s": (0.5, 3600.0, "seconds"),
    "show.heartbeat_min": (0.0, 1440.0, "minutes; 0 = off"),
    "show.worker_restarts_per_hour": (0, 3600, "0 = a failure ends the show"),
    "show.idle_s": (0.0, 86400.0, "seconds; 0 = off"),
    "show.idle_motion": (0.0, 255.0, "mean grey change"),
    "show.idle_cycle_s": (0.0, 86400.0, "seconds; 0 = as cycle_s"),
    "show.idle_strength": (0.0, 2.0, ""),
    "show.cycle_beats": (0, 1024, "beats; 0 = off"),
    "show.crossfade_beats": (0.0, 64.0, "beats; 0 = by seconds (styles.crossfade_s)"),
    "log.max_mb": (0.001, 100000.0, "megabytes"),
    "log.backups": (1, 1000, ""),
    "cluster.segment_s": (0.0, 86400.0, "seconds; 0 = whole files only"),
    "cluster.worker_cpus": (1, 1024, ""),
    "cluster.workers": (0, 100000, "0 = all the cluster holds"),
    "cluster.retries": (0, 100, ""),
    **SURFACE_RANGES,
}
MIN_SIDE_KEYS = ("video.size", "image.size")  # 0 (auto) or at least 16
# Paths where an empty text would mean the current folder by accident: null says "the default".
NON_EMPTY_KEYS = {"show.state_file": "a file path, or null for the default", "ndi.name": "a source name, or null for none"}
# Keys that changed name: an old config gets one line naming the new key.
RENAMED = {"live.smoothing": "live.stability", "video.smoothing": "video.stability"}


def _check_text(key: str, val: Any) -> None:
    """Keys whose text has a grammar of its own (opening hours, dates)."""
    parser = {"show.open_hours": parse_hours, "show.closed_dates": parse_dates, "show.playlist": parse_playlist}.get(key)
    if parser is not None:
        try:
            parser(val)
        except ScheduleError as exc:
            raise ConfigError(f"config key '{key}': {exc}") from None


def _check_value(key: str, val: Any) -> None:
    _check_text(key, val)
    if key in NON_EMPTY_KEYS and not str(val).strip():
        raise ConfigError(f"config key '{key}' must be {NON_EMPTY_KEYS[key]}")
    if key == "engine.device" and valid_device(val):  # auto|cpu|gpu, and gpu:N for the Nth GPU
        pass
    elif key in CHOICES and val not in CHOICES[key]:
        extra = "|gpu:N" if key == "engine.device" else ""
        raise ConfigError(f"config key '{key}' must be one of {'|'.join(CHOICES[key])}{extra}, got {val!r}")
    if isinstance(val, float) and not math.isfinite(val):
        raise ConfigError(f"config key '{key}' must be a finite number, got {val!r}")
    if key == "models.base_url" and not str(val).startswith(("https://", "http://")):  # else: per file, at download
        raise ConfigError(f"config key 'models.base_url' must be an http(s):// address, got {val!r}")
    if key in RANGES:
        lo, hi, note = RANGES[key]
        if not lo <= val <= hi or (key in MIN_SIDE_KEYS and 0 < val < 16):
            note = f" ({note})" if note else ""
            raise ConfigError(f"config key '{key}' must be in {lo:g}..{hi:g}{note}, got {val!r}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"config key '{key}' must be {getattr(tp, '__name__', tp)}, got {value!r}")


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<top>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if not isinstance(key, str):  # YAML reads on/off/yes/no and numbers unquoted as such
            raise ConfigError(f"config key {prefix}{key!r} is not a name (quote it if it is one: YAML reads "
                              "on, off, yes and no as true and false)")
        if prefix + key in RENAMED:
            raise ConfigError(f"config key '{prefix}{key}' is now '{RENAMED[prefix + key]}' (see the README)")
        if key not in names:
            hint = ("; is this a MIDI table? name it in a config as midi.mapping: FILE"
                    if not prefix and key in ("channel", "cc", "note", "program") else "")
            raise ConfigError(f"unknown config key '{prefix}{key}' (known: {', '.join(sorted(names))}){hint}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        key = prefix + f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, data[f.name] or {}, key + ".")
        else:
            val = _coerce(data[f.name], tp, key)
            if val is not None:
                _check_value(key, val)
            kwargs[f.name] = val
    return cls(**kwargs)


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML (libyaml's parser: 5x faster to start) in which a key given twice in one mapping
    is an error: plain YAML keeps the last and drops the first without a word (a second ``live:``
    section silently replaced the first one of an installation's config)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *defaults``: merged below, not a key
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice (the second at line {key_node.start_mark.line + 1})",
                        key_node.start_mark)
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor says what is wrong with it
                pass
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """A YAML document of ours (a config, a MIDI table), safe and strict (:class:`_StrictLoader`)."""
    return yaml.load(text, Loader=_StrictLoader)


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text (is it a YAML file?)") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {path} is not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def load_config(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults from the shipped configs/default.yaml (:mod:`realtime.resources`: the checkout's or
    the installed package's), then ``path``, then ``overrides`` ("section.key": value).

    The file is checked whole before any override is applied: a flag replaces a value, it must not
    hide a broken file (``live: [1, 2]`` or ``live: {size: big}`` with ``--source`` or ``--size``
    used to run, the bad section or key quietly replaced by the flag's)."""
    data: dict = {}
    if DEFAULT_CONFIG_PATH.is_file():
        data = _read_yaml(DEFAULT_CONFIG_PATH)
    if path is not None:
        data = _merge(data, _read_yaml(Path(path)))
    config = _build(Config, data, "")
    if not any(value is not None for value in (overrides or {}).values()):
        return config
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        data = _merge(data, {section: {key: value}})
    return _build(Config, data, "")
