"""Frame sources behind one interface: camera, video file, network stream, synthetic pattern.

Why an interface: the live pipeline does not care where frames come from, and the tests need
sources with no camera.  Each source says whether it is *live* (frames keep coming whether we read
them or not: the pipeline keeps only the newest, counting drops) or not (a file: nothing may be
dropped, so the pipeline blocks).  Opening fails fast with a message that says what to check;
properties a device reports are read back after setting them, because capture drivers ignore
requests silently (PITFALLS 5).
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .errors import MediaError
from .synthetic import pattern_frame

log = logging.getLogger(__name__)


@dataclass
class Frame:
    """A captured frame: BGR uint8, its sequence number and when it was captured (monotonic s)."""

    index: int
    image: np.ndarray
    t_capture: float


class FrameSource(ABC):
    """A source of BGR frames. ``read`` returns None at end of stream; ``close`` is idempotent."""

    live: bool = True

    @abstractmethod
    def open(self) -> None:
        """Open the device/file; raise MediaError with a useful message when it cannot."""

    @abstractmethod
    def read(self) -> Optional[np.ndarray]:
        """The next BGR frame (blocks for at most about one frame interval), or None at the end."""

    def close(self) -> None:  # noqa: B027 - optional
        pass

    @property
    @abstractmethod
    def fps(self) -> float:
        """Nominal frame rate (0 when unknown)."""

    @property
    @abstractmethod
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""

    def describe(self) -> str:
        return type(self).__name__


class SyntheticSource(FrameSource):
    """A moving test pattern at a fixed rate: demos and tests without a camera."""

    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, frames: int = 0) -> None:
        self._w, self._h, self._fps = width, height, fps
        self._limit = frames
        self._i = 0
        self._next = 0.0

    def open(self) -> None:
        self._next = time.monotonic()

    def read(self) -> Optional[np.ndarray]:
        if self._limit and self._i >= self._limit:
            return None
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next + 1.0 / self._fps, time.monotonic() - 1.0 / self._fps)
        img = cv2.cvtColor(pattern_frame(self._i, self._w, self._h, self._fps), cv2.COLOR_RGB2BGR)
        self._i += 1
        return img

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        return self._w, self._h

    def describe(self) -> str:
        return f"synthetic pattern {self._w}x{self._h} @ {self._fps:g} fps"


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

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        return self._size


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

    def open(self) -> None:
        cap = cv2.VideoCapture(self.url)
        if not cap.isOpened():
            cap.release()
            raise MediaError(f"cannot open stream {self.url} (unreachable, or not a video stream)")
        self._cap = cap
        self._read_back()

    def read(self) -> Optional[np.ndarray]:
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        return frame if ok else None

    def describe(self) -> str:
        return f"stream {self.url}"


class FileSource(_CaptureSource):
    """A video file paced at its own frame rate so that it behaves like a camera.

    By default nothing is dropped (the pipeline blocks, so a slow network slows playback down);
    ``keep_pace=True`` makes it a live source: playback keeps real time and the frames the network
    cannot keep up with are dropped and counted, exactly as with a camera.
    """

    def __init__(self, path: str | os.PathLike, loop: bool = False, fps: float = 0.0, pace: bool = True, keep_pace: bool = False) -> None:
        super().__init__()
        self.live = keep_pace
        self.path = Path(path)
        self.loop = loop
        self._override_fps = fps
        self.pace = pace
        self._next = 0.0
        self._count = 0

    def open(self) -> None:
        if not self.path.is_file():
            raise MediaError(f"video not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise MediaError(f"not a readable video file: {self.path}")
        self._cap = cap
        self._read_back()
        if self._override_fps:
            self._fps = self._override_fps
        if not self._fps:
            self._fps = 30.0
            log.info("%s reports no frame rate; pacing at 30 fps", self.path)
        self._next = time.monotonic()

    def read(self) -> Optional[np.ndarray]:
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        if not ok and self.loop and self._count:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok:
            if not self._count:
                raise MediaError(f"{self.path}: no frames could be decoded")
            return None
        self._count += 1
        if self.pace:
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            # If we fall behind (slow consumer), restart the schedule instead of bursting.
            self._next = max(self._next + 1.0 / self._fps, time.monotonic() - 1.0 / self._fps)
        return frame

    def describe(self) -> str:
        return f"file {self.path} {self._size[0]}x{self._size[1]} @ {self._fps:g} fps" + (" (loop)" if self.loop else "")


def open_source(spec: str, width: int = 0, height: int = 0, fps: float = 0.0, loop: bool = False, keep_pace: bool = False) -> FrameSource:
    """A source from a --source value: index, /dev/videoN, rtsp/http URL, 'synthetic', or a file."""
    spec = str(spec).strip()
    if spec == "synthetic" or spec.startswith("synthetic:"):
        w, h = (width or 640), (height or 480)
        if ":" in spec:  # synthetic:WxH
            try:
                w, h = (int(v) for v in spec.split(":", 1)[1].lower().split("x"))
            except ValueError:
                raise MediaError(f"synthetic source size must be WxH, got {spec}") from None
        return SyntheticSource(w, h, fps or 30.0)
    if spec.isdigit():
        return CameraSource(int(spec), width, height, fps)
    if spec.startswith("/dev/"):
        return CameraSource(spec, width, height, fps)
    if "://" in spec:
        return StreamSource(spec)
    return FileSource(spec, loop=loop, fps=fps, keep_pace=keep_pace)
