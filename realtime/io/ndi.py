"""NDI (NewTek/Vizrt's video over IP) through cyndilib: what the NDI output and source share.

Why cyndilib: it is the one NDI binding on PyPI with wheels that bundle the NDI runtime (libndi
6, with its avahi client), so ``pip install 'realtime[ndi]'`` is all a Linux, macOS or Windows
machine needs; NDI Tools or the SDK are not installed by hand.  It is imported lazily, here only,
so a machine without it runs everything else and ``--ndi`` / ``--source ndi:NAME`` say in one line
how to install it.

Pixels: the show's frames are BGR; NDI carries 4-byte BGRX (or UYVY, half the bytes, but a
chroma-subsampled conversion on our side).  BGRX costs one OpenCV conversion into a preallocated
buffer (0.2 ms at 720p) and the runtime compresses it itself (SpeedHQ).

Discovery: NDI finds sources by mDNS.  Where multicast does not reach (containers, VLANs, this
project's test machine) a source is still found through NDI's configuration file
(``$NDI_CONFIG_DIR/ndi-config.v1.json``, ``{"ndi": {"networks": {"ips": "HOST,..."}}}``): the
runtime then asks those hosts directly.  :func:`write_local_config` writes one for this machine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from ..errors import UserError

log = logging.getLogger(__name__)

#: the version pinned in requirements.lock and the ``ndi`` extra
CYNDILIB_VERSION = "0.1.3"
INSTALL_HINT = "pip install 'realtime[ndi]' (cyndilib, which bundles the NDI runtime)"


class NdiError(UserError):
    """No NDI runtime, a sender that cannot be created, or a source that is not there."""


def load_cyndilib() -> Any:
    """The cyndilib module, or one line saying how to get it (it loads the NDI runtime too)."""
    try:
        import cyndilib
    except ImportError as exc:
        raise NdiError(f"NDI needs cyndilib, which is not installed ({exc}): {INSTALL_HINT}") from None
    except OSError as exc:  # the bundled libndi does not load on this machine
        raise NdiError(f"the NDI runtime does not load here ({exc}); reinstall it: {INSTALL_HINT}") from None
    return cyndilib


def bgr_to_bgrx(frame: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """BGR uint8 [H, W, 3] -> BGRX uint8 [H, W, 4] (X = 255), into ``out`` when it fits (no allocation)."""
    h, w = frame.shape[:2]
    if out is None or out.shape != (h, w, 4):
        out = np.empty((h, w, 4), np.uint8)
    cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA, dst=out)  # 0.2 ms at 720p; NumPy's strided copy took 7
    return out


def bgrx_to_bgr(data: np.ndarray, width: int, height: int, stride: int = 0) -> np.ndarray:
    """A received BGRX/BGRA buffer (rows ``stride`` bytes apart, 0: packed) -> BGR uint8 [H, W, 3]."""
    stride = stride or width * 4
    if stride < width * 4 or data.size < stride * height:
        raise ValueError(f"an NDI frame of {width}x{height} needs {stride * height} bytes with a stride of {stride}, got {data.size}")
    rows = np.asarray(data, np.uint8)[: stride * height].reshape(height, stride)
    return cv2.cvtColor(rows[:, : width * 4].reshape(height, width, 4), cv2.COLOR_BGRA2BGR)  # 0.2 ms at 720p


def stream_name(full: str) -> str:
    """NDI names a source ``HOST (NAME)``; the part a sender chose is NAME."""
    full = full.strip()
    if full.endswith(")") and " (" in full:
        return full[full.index(" (") + 2 : -1]
    return full


def match_source(wanted: str, names: list[str]) -> Optional[str]:
    """The source ``wanted`` names: its full name ``HOST (NAME)``, or NAME alone (case-insensitive)
    when only one host offers it."""
    wanted = wanted.strip()
    if wanted in names:
        return wanted
    low = wanted.lower()
    hits = [n for n in names if n.lower() == low or stream_name(n).lower() == low]
    if len(hits) > 1:
        raise NdiError(f"NDI source name {wanted!r} is offered by {len(hits)} machines ({', '.join(sorted(hits))}): "
                       "give the full name, HOST (NAME)")
    return hits[0] if hits else None


def find_source(finder: Any, wanted: str, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> Any:
    """Wait up to ``timeout_s`` for the source ``wanted`` on an opened cyndilib ``Finder``; returns
    its ``Source``, or raises :class:`NdiError` naming what was seen instead."""
    deadline = clock() + timeout_s
    while True:
        names = list(finder.get_source_names())
        hit = match_source(wanted, names)
        if hit is not None:
            return finder.get_source(hit)
        left = deadline - clock()
        if left <= 0:
            seen = f"sources seen: {', '.join(sorted(names))}" if names else "no NDI source was seen at all"
            raise NdiError(f"NDI source {wanted!r} not found within {timeout_s:g} s ({seen}; "
                           "across subnets or where multicast is blocked, list the sender's host in "
                           "$NDI_CONFIG_DIR/ndi-config.v1.json, networks.ips)")
        finder.wait_for_sources(min(0.25, left))
        finder.update_sources()


def write_local_config(folder: Path, hosts: str = "127.0.0.1") -> Path:
    """An NDI configuration that finds the sources of ``hosts`` without multicast; point
    ``NDI_CONFIG_DIR`` at ``folder`` before a finder or sender is made (tests, containers)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ndi-config.v1.json"
    path.write_text(json.dumps({"ndi": {"networks": {"ips": hosts, "discovery": ""}}}))
    return path
