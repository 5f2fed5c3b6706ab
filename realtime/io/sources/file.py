"""A video file played like a camera (the decoding is :mod:`realtime.io.media.decode`'s)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import MediaError
from ..media.decode import DecodedFrame, VideoFile
from .base import FrameSource, Pacer

log = logging.getLogger(__name__)


class FileSource(FrameSource):
    """A video file played like a camera, paced at its own frame rate.

    By default nothing is dropped (the pipeline blocks, so a slow network slows playback down);
    ``keep_pace=True`` makes it a live source: playback keeps real time and the frames the network
    cannot keep up with are dropped and counted, exactly as with a camera.
    """

    has_an_end = True

    def __init__(self, path: str | os.PathLike, loop: bool = False, fps: float = 0.0, pace: bool = True, keep_pace: bool = False) -> None:
        self.live = keep_pace
        self.path = Path(path)
        self.loop = loop
        self._override_fps = fps
        self.pace = pace
        self._file: Optional[VideoFile] = None
        self._frames: Optional[Iterator[DecodedFrame]] = None
        self._pacer: Optional[Pacer] = None
        self._count = 0

    def open(self) -> None:
        if self._file is not None:
            return
        self._file = VideoFile(self.path).open()
        self._frames = self._file.frames()
        self._fps = self._override_fps or self._file.fps
        if not self._fps:
            self._fps = 30.0
            log.info("%s reports no frame rate; pacing at 30 fps", self.path)
        first = self._next_frame()
        if first is None:
            self.close()
            raise MediaError(f"{self.path}: no frames could be decoded")
        self._first: Optional[np.ndarray] = first
        self._size = (first.shape[1], first.shape[0])
        self._pacer = Pacer(self._fps)

    def _next_frame(self) -> Optional[np.ndarray]:
        assert self._frames is not None
        item = next(self._frames, None)
        return None if item is None else item.image

    def read(self) -> Optional[np.ndarray]:
        if self._file is None:
            return None
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            frame = self._next_frame()
            if frame is None and self.loop and self._count:
                self._file.close()
                self._file.open()
                self._frames = self._file.frames()
                frame = self._next_frame()
            if frame is None:
                return None
        self._count += 1
        if self.pace and self._pacer is not None:
            self._pacer.wait()
        return frame

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._frames = None

    def describe(self) -> str:
        return f"file {self.path} {self._size[0]}x{self._size[1]} @ {self._fps:g} fps" + (" (loop)" if self.loop else "")
