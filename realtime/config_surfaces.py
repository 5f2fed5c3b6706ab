"""The show surfaces' config sections: the control page (``web:``), OSC (``osc:``), MIDI (``midi:``),
the virtual camera (``virtual_camera:``) and the kiosk screen (``kiosk:``), with their allowed ranges.

Why apart from :mod:`realtime.config`: these are the ways a show is steered and shown, each a small
section of its own that grows with its surface; :mod:`realtime.config` builds them into
:class:`~realtime.config.Config`, checks :data:`SURFACE_RANGES` with the rest and re-exports every
name here (``from realtime.config import MidiConfig`` keeps working).  This module imports nothing
of the project: it sits in the layer just below :mod:`realtime.config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class WebConfig:
    """The control page and JSON API (``--web [HOST:]PORT``): phones, scripts, OBS."""

    enabled: bool = False
    host: str = "127.0.0.1"  # 0.0.0.0 (or a LAN address) lets phones on the network in, with the token
    port: int = 8080
    token: Optional[str] = None  # null = $REALTIME_WEB_TOKEN, else a random one printed at start
    preview_width: int = 640  # preview stream: longest side in pixels
    preview_quality: int = 70  # JPEG quality of the preview
    preview_fps: float = 15.0  # preview frame-rate cap (encoded once per frame for every client)
    max_clients: int = 8  # preview streams at once; more get 503
    upload_mb: float = 15.0  # largest style upload


@dataclass(frozen=True)
class OscConfig:
    """Open Sound Control over UDP (``--osc [HOST:]PORT``): every action at ``/realtime/<action>``."""

    enabled: bool = False
    host: str = "127.0.0.1"  # OSC has no password: listen beyond this machine only on a trusted network
    port: int = 9000


@dataclass(frozen=True)
class VirtualCameraConfig:
    """The shown picture as a webcam for OBS, Zoom or Meet (pyvirtualcam: v4l2loopback, OBS Virtual Camera)."""

    enabled: bool = False
    device: Optional[str] = None  # e.g. /dev/video10; null = the first virtual camera found
    fps: float = 0.0  # 0 = the source's frame rate
    required: bool = False  # true: no virtual camera device ends the command; false: the show goes on


@dataclass(frozen=True)
class NdiConfig:
    """NDI video over the network (cyndilib, ``pip install 'realtime[ndi]'``): the shown picture out
    (``--ndi NAME``) and ``--source ndi:NAME`` in."""

    name: Optional[str] = None  # publish the shown picture as this NDI source; null = not published
    fps: float = 0.0  # the frame rate receivers are told; 0 = the source's (frames go out at the show's rate)
    find_s: float = 5.0  # --source ndi:NAME: how long the source is looked for and its first frame waited for


@dataclass(frozen=True)
class MidiConfig:
    """A MIDI controller steering the show (``--midi [PORT]``): faders and knobs on the sliders,
    pads and buttons on styles, recording and pause (realtime/live/midi.py)."""

    enabled: bool = False
    port: Optional[str] = None  # an input port's name (or the start of it); null = the first input port
    # The control table: a shipped one by name (configs/midi-NAME.yaml) or a YAML file's path
    mapping: str = "nanokontrol2"


@dataclass(frozen=True)
class KioskConfig:
    """A screen nobody should be able to leave by accident (installations)."""

    enabled: bool = False  # fullscreen over the whole screen, no pointer, no decorations, overlay off
    keys: bool = True  # false: every key is ignored except the exit keys
    exit_keys: str = "qqq"  # typed within 2 s, these always end the show; "" = only a signal ends it


# Allowed ranges (inclusive) of these sections' keys, merged into realtime.config.RANGES.
SURFACE_RANGES: dict[str, tuple[float, float, str]] = {
    "osc.port": (0, 65535, "0 = any free port"),
    "web.port": (0, 65535, "0 = any free port"),
    "web.preview_width": (64, 4096, "pixels"),
    "web.preview_quality": (10, 100, ""),
    "web.preview_fps": (0.5, 120.0, "frames per second"),
    "web.max_clients": (1, 256, ""),
    "web.upload_mb": (0.1, 1024.0, "megabytes"),
    "virtual_camera.fps": (0.0, 240.0, "0 = the source's"),
    "ndi.fps": (0.0, 240.0, "0 = the source's"),
    "ndi.find_s": (0.1, 600.0, "seconds"),
}
