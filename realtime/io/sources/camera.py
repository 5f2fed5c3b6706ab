"""Cameras and network streams through OpenCV's VideoCapture.

Requested size and fps are set, then read back: capture drivers ignore requests silently and
report 0 or nonsense frame rates.  Opening fails fast with what to check.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Optional

import cv2
import numpy as np

from ...errors import MediaError
from .base import FrameSource, Pacer

log = logging.getLogger(__name__)
STREAM_TIMEOUT_MS = 10_000  # open and read timeouts of network streams (FFmpeg)


class _CaptureSource(FrameSource):
    """Shared OpenCV VideoCapture handling."""

    def __init__(self) -> None:
        self._cap: Optional[cv2.VideoCapture] = None
        self._size = (0, 0)
        self._fps = 0.0

    def _read_back(self) -> None:
        assert self._cap is not None
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._size = (w, h)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if 1.0 <= fps <= 240.0 else 0.0  # drivers report 0 or nonsense

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(_CaptureSource):
    """A webcam by index or device path; requested size and fps are set, then read back."""

    live = True

    def __init__(self, device: int | str, width: int = 0, height: int = 0, fps: float = 0.0) -> None:
        super().__init__()
        self.device = device
        self._req = (width, height, fps)
        self._first: Optional[np.ndarray] = None  # the frame open() read to prove the camera works

    def open(self) -> None:
        dev = self.device
        path = f"/dev/video{dev}" if isinstance(dev, int) else str(dev)
        if isinstance(dev, str) and dev.startswith("/dev/") and not os.path.exists(dev):
            raise MediaError(f"camera {dev} does not exist (is it plugged in? `ls /dev/video*` lists cameras)")
        cap = cv2.VideoCapture(dev)
        if not cap.isOpened():
            cap.release()
            hint = ""
            if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
                hint = f"; no permission for {path}: add yourself to the 'video' group (sudo usermod -aG video $USER, then log in again)"
            elif not os.path.exists(path):
                hint = f"; {path} does not exist: is a camera connected? (`ls /dev/video*`), or use --source synthetic / a video file"
            raise MediaError(f"cannot open camera {dev}{hint or ' (in use by another program, or no permission)'}")
        w, h, fps = self._req
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a backlog
        if w and h:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        self._cap = cap
        self._read_back()
        ok, frame = cap.read()
        if not ok or frame is None:
            self.close()
            raise MediaError(f"camera {dev} opened but delivers no frames (in use by another program?)")
        self._size = (frame.shape[1], frame.shape[0])
        if w and h and self._size != (w, h):
            log.info("camera gives %dx%d (asked for %dx%d)", *self._size, w, h)
        self._first = frame

    def read(self) -> Optional[np.ndarray]:
        if self._cap is None:
            return None
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        for _ in range(3):  # a camera can hiccup; three failures in a row mean it is gone
            ok, frame = self._cap.read()
            if ok and frame is not None:
                return frame
            time.sleep(0.01)
        log.warning("camera %s stopped delivering frames", self.device)
        return None

    def describe(self) -> str:
        return f"camera {self.device} {self._size[0]}x{self._size[1]} @ {self._fps or '?'} fps"


class StreamSource(_CaptureSource):
    """A network stream (rtsp/http): live, newest frame wins."""

    live = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._pacer: Optional[Pacer] = None

    def open(self) -> None:
        # FFmpeg's own timeouts: an unreachable host otherwise holds open() (and a read) for about
        # 30 s, and a supervised source or the style source's thread with it.
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
        if not cap.isOpened():
            cap.release()
            raise MediaError(f"cannot open stream {self.url} (unreachable, or not a video stream)")
        self._cap = cap
        self._read_back()
        # A URL of a file (http://host/clip.mp4, HLS video on demand) knows its length and ends by
        # itself: no loss to report at its end, where a live stream's end is one.  And it is read as
        # fast as it downloads: paced at its frame rate, as a file is (it played at 5x, its frames
        # dropped), where a live stream is paced by its sender.
        self.has_an_end = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) > 0
        self._pacer = Pacer(self._fps) if self.has_an_end and self._fps else None

    def read(self) -> Optional[np.ndarray]:
        if self._cap is None:
            return None
        if self._pacer is not None:
            self._pacer.wait()
        ok, frame = self._cap.read()
        return frame if ok else None

    def describe(self) -> str:
        return f"stream {self.url}"
