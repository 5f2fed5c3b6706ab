"""Video files: one decoder (PyAV) for every reader: live file sources, ``stylize video``, the
cluster's planner and joiner, ``stylize evaluate``.

Why one reader: rotation metadata, variable frame rates, damaged files and (later) hardware
decoding must behave the same whether a file is played live or stylized offline.  OpenCV's reader
ignores rotation and invents timestamps; FFmpeg through PyAV gives the real ones.  Times are
always seconds from the video stream's start (:func:`stream_time`), and jumping to a time is
always :func:`seek_to`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...errors import MediaError

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".gif")


def stream_time(pts: Optional[int], time_base: Any, start: float, default: float = 0.0) -> float:
    """Seconds from the video stream's start for a timestamp in ``time_base`` (``start``: the
    video stream's start in the file's clock, :attr:`VideoFile.start_time`); ``default`` when the
    packet or frame carries no timestamp."""
    return float(pts * time_base) - start if pts is not None else default


def seek_to(reader: "VideoFile", t: float) -> bool:
    """Jump to the keyframe at or before ``t`` (seconds from the video stream's start), so that
    decoding from there reaches ``t`` with every frame it needs.  False when the file cannot seek
    (a pipe, a damaged index): the caller decodes from the start and skips."""
    vs = reader.video
    try:
        reader.container.seek(int(t / vs.time_base) + (vs.start_time or 0), stream=vs, backward=True, any_frame=False)
        return True
    except Exception:  # noqa: BLE001 - unseekable: decode from the start and skip
        log.debug("%s: seek to %.3f s failed; decoding from the start", reader.path, t)
        return False


@dataclass
class DecodedFrame:
    """A decoded video frame: BGR uint8 (rotation applied), its pts and its time from the start (s).
    ``src_size`` (w, h): the source's size when ``image`` was already shrunk while decoding."""

    image: np.ndarray
    pts: int
    time: float
    src_size: Optional[tuple[int, int]] = None

    @property
    def source_size(self) -> tuple[int, int]:
        """(w, h) of the frame as the file holds it (rotation applied)."""
        return self.src_size or (self.image.shape[1], self.image.shape[0])


def rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    """Honour the display matrix: rotate counterclockwise by ``rotation`` degrees (FFmpeg's rule)."""
    k = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


class VideoFile:
    """An open video file: its streams, and its video frames decoded to BGR with rotation applied."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.container: Any = None
        self.video: Any = None

    def open(self) -> "VideoFile":
        import av

        path = self.path
        if not path.exists():
            raise MediaError(f"video not found: {path}")
        if path.is_dir():
            raise MediaError(f"expected a video file, got a folder: {path}")
        try:
            container = av.open(str(path))
        except av.error.FFmpegError as exc:
            reason = exc.strerror or type(exc).__name__
            hint = "; a truncated recording?" if "Invalid data" in reason else ""
            raise MediaError(f"not a readable video file: {path} ({reason}{hint})") from None
        except OSError as exc:
            raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            container.close()
            raise MediaError(f"{path} has no video stream ({kinds})")
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):
            container.close()
            raise MediaError(f"{path} is a still image, not a video: use `stylize image`")
        self.container = container
        self.video = container.streams.video[0]
        self.video.thread_type = "AUTO"
        return self

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = self.video = None

    def __enter__(self) -> "VideoFile":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- facts -------------------------------------------------------------------------------------
    @property
    def fps(self) -> float:
        """Nominal frame rate (0 when the file does not say)."""
        rate = self.video.average_rate or self.video.guessed_rate
        fps = float(rate) if rate else 0.0
        return fps if 1.0 <= fps <= 1000.0 else 0.0

    @property
    def start_time(self) -> float:
        vs = self.video
        return float(vs.start_time * vs.time_base) if vs.start_time else 0.0

    @property
    def size(self) -> tuple[int, int]:
        """Coded (width, height); decoded frames may be rotated from this."""
        return self.video.width, self.video.height

    def frame_count(self) -> int:
        """Frames the header promises, or an estimate from duration and rate (0 when unknown)."""
        vs = self.video
        n = vs.frames
        if not n and self.fps and self.duration:
            n = int(self.duration * self.fps)
        return n or 0

    @property
    def duration(self) -> float:
        vs = self.video
        if vs.duration:
            return float(vs.duration * vs.time_base)
        return (self.container.duration or 0) / 1e6

    # -- decoding ----------------------------------------------------------------------------------
    def convert(self, frame: Any, fit: Optional[Callable[[int, int], tuple[int, int]]] = None) -> DecodedFrame:
        """A PyAV video frame -> BGR with rotation applied, and its time from the stream's start.

        ``fit(w, h)`` -> the (w, h) wanted (the inference size, when the output is made at the
        source size from a smaller stylized picture anyway): a smaller size is made in the same
        swscale pass as the colour conversion, area-filtered, and ``src_size`` keeps the source's.
        That costs 2.5 ms for a 720p frame to 684x384, against 4.8 ms for the conversion at full
        size and OpenCV's area filter after it."""
        t = stream_time(frame.pts, self.video.time_base, self.start_time)
        rotation = frame.rotation or 0
        if fit is not None:
            quarter = int(round(rotation / 90.0)) % 2  # a quarter turn swaps width and height
            shown = (frame.height, frame.width) if quarter else (frame.width, frame.height)
            w, h = fit(*shown)
            if w < shown[0] and h < shown[1]:
                cw, ch = (h, w) if quarter else (w, h)
                small = frame.reformat(width=cw, height=ch, format="bgr24", interpolation="AREA").to_ndarray()
                return DecodedFrame(rotate(small, rotation), frame.pts or 0, t, shown)
        return DecodedFrame(rotate(frame.to_ndarray(format="bgr24"), rotation), frame.pts or 0, t)

    def frames(self) -> Iterator[DecodedFrame]:
        """Every video frame in order (damaged data ends the iteration with a MediaError)."""
        import av

        try:
            for frame in self.container.decode(self.video):
                yield self.convert(frame)
        except av.error.FFmpegError as exc:
            raise MediaError(f"{self.path}: damaged video data ({exc.strerror or type(exc).__name__})") from None


def frame_at(src: Path, t: float) -> DecodedFrame:
    """The first frame at or after ``t`` (seconds from the stream's start), at full size."""
    with VideoFile(src).open() as reader:
        if t > 0:
            seek_to(reader, t)
        for frame in reader.container.decode(reader.video):
            decoded = reader.convert(frame)
            if decoded.time >= t - 1e-6:
                return decoded
    raise MediaError(f"{src}: no frame at {t:.3f} s")
