"""A moving test pattern at a fixed rate: demos and tests without a camera."""

from __future__ import annotations

import time
from typing import Optional

import cv2
import numpy as np

from ..synthetic import pattern_frame
from .base import FrameSource


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
