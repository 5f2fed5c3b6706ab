"""A moving test pattern at a fixed rate: demos and tests without a camera."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from ..synthetic import pattern_frame
from .base import FrameSource, Pacer


class SyntheticSource(FrameSource):
    """A moving test pattern at a fixed rate: demos and tests without a camera."""

    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, frames: int = 0) -> None:
        self._size, self._fps = (width, height), fps
        self._limit = frames
        self.has_an_end = frames > 0
        self._i = 0
        self._pacer = Pacer(fps)

    def open(self) -> None:
        self._pacer = Pacer(self._fps)

    def read(self) -> Optional[np.ndarray]:
        if self._limit and self._i >= self._limit:
            return None
        self._pacer.wait()
        img = cv2.cvtColor(pattern_frame(self._i, *self._size, self._fps), cv2.COLOR_RGB2BGR)
        self._i += 1
        return img

    def describe(self) -> str:
        return f"synthetic pattern {self._size[0]}x{self._size[1]} @ {self._fps:g} fps"
