"""The shown picture as a webcam that OBS, Zoom or Meet can pick (pyvirtualcam).

Why an output like the recorder: it takes the same composed frames, at their size, so a video
call sees exactly what the screen shows.  The device opens on the first frame (the size is known
then).  Without a virtual camera device pyvirtualcam raises; that becomes one line saying what to
install, and the show goes on (or ends, with ``virtual_camera.required``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...errors import UserError
from ..images import resize
from .base import Output

log = logging.getLogger(__name__)


def install_hint() -> str:
    if sys.platform.startswith("linux"):
        return ("install v4l2loopback and load it: sudo apt install v4l2loopback-dkms && "
                "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=stylize")
    return "install OBS Studio and start its Virtual Camera once (it registers the device)"


class VirtualCameraError(UserError):
    """No virtual camera device (or it refused the format)."""


class VirtualCamera(Output):
    """pyvirtualcam's ``Camera`` as an output; ``backend`` picks a pyvirtualcam backend by name."""

    name = "virtual camera"

    def __init__(self, fps: float = 30.0, device: Optional[str] = None, backend: Optional[str] = None, **options: Any) -> None:
        self.fps = fps or 30.0
        self.device = device
        self.backend = backend
        self.options = options  # passed through to the pyvirtualcam backend
        self._cam: Any = None
        self.sent = 0

    def open(self, width: int, height: int) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise VirtualCameraError(f"pyvirtualcam is not installed ({exc}): pip install pyvirtualcam") from None
        try:
            self._cam = pyvirtualcam.Camera(width, height, self.fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                            device=self.device, backend=self.backend, **self.options)
        except Exception as exc:  # noqa: BLE001 - pyvirtualcam raises RuntimeError / ValueError per platform
            why = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line per backend
            raise VirtualCameraError(f"no virtual camera{' ' + self.device if self.device else ''}: {why}; {install_hint()}") from None
        log.info("virtual camera: %s, %dx%d @ %g fps", self._cam.device, width, height, self.fps)

    def write(self, frame: np.ndarray, t: float) -> None:
        h, w = frame.shape[:2]
        if self._cam is None:
            self.open(w, h)
        # The camera keeps the size it opened with; the idle clip may come at another.
        frame = resize(frame, (self._cam.width, self._cam.height))
        self._cam.send(np.ascontiguousarray(frame))
        self.sent += 1

    def close(self) -> Optional[Path]:
        if self._cam is not None:
            try:
                self._cam.close()
            finally:
                self._cam = None
        return None
