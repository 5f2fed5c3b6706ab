"""What a crash leaves of a live recording, made playable again.

Why: a live recording is written as fragmented MP4 (:class:`~realtime.io.media.h264.H264Writer`
with ``fragmented=True``): a header (``ftyp``, ``moov``) up front, then a fragment (``moof`` +
``mdat``) about every second.  Whatever stops the writing before its close (``kill -9``, a power
cut, a full disk), the file is whole up to its last complete fragment and torn after it.  FFmpeg
refuses the *whole* file when a torn box follows (measured: a file cut inside its second
fragment's ``moof`` does not open at all), so :func:`scan` walks the top-level boxes to
find where the whole part ends (and how many frames it holds), and :func:`remux` reads only that
part.

This module knows nothing of names, temp files or logs (:mod:`realtime.io.paths` does, and calls
it); it imports nothing else from the package, so paths and the H.264 writer can both use it.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Optional


@dataclass(frozen=True)
class Salvaged:
    """What a salvaged file holds: video frames and their span in seconds."""

    frames: int
    seconds: float


@dataclass(frozen=True)
class Scan:
    """The playable prefix of a fragmented MP4: its length in bytes (0: not even one whole
    fragment) and the video frames the whole fragments hold."""

    length: int
    frames: int


def _children(data: bytes) -> Any:
    """(kind, payload) of the boxes inside a container box's payload."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1 and pos + 16 <= len(data):
            size, head = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        if size < head or pos + size > len(data):
            return
        yield kind, data[pos + head:pos + size]
        pos += size


def _video_tracks(moov: bytes) -> set[int]:
    tracks = set()
    for kind, trak in _children(moov):
        if kind != b"trak":
            continue
        track_id, handler = None, None
        for k, body in _children(trak):
            if k == b"tkhd" and len(body) >= 24:
                track_id = struct.unpack(">I", body[20:24] if body[0] == 1 else body[12:16])[0]
            elif k == b"mdia":
                for k2, b2 in _children(body):
                    if k2 == b"hdlr" and len(b2) >= 12:
                        handler = b2[8:12]
        if track_id is not None and handler == b"vide":
            tracks.add(track_id)
    return tracks


def _fragment_frames(moof: bytes, video: set[int]) -> int:
    frames = 0
    for kind, traf in _children(moof):
        if kind != b"traf":
            continue
        track_id, count = None, 0
        for k, body in _children(traf):
            if k == b"tfhd" and len(body) >= 8:
                track_id = struct.unpack(">I", body[4:8])[0]
            elif k == b"trun" and len(body) >= 8:
                count += struct.unpack(">I", body[4:8])[0]
        if track_id in video:
            frames += count
    return frames


def scan(path: Path) -> Scan:
    """Walk the top-level boxes of fragmented MP4 ``path``: where its whole part ends and how many
    video frames that part holds.  Reads box headers and the small ``moov``/``moof`` boxes only,
    so an hours-long recording costs a few thousand small reads, not a pass over its pictures."""
    size = os.path.getsize(path)
    good = frames = 0
    video: Optional[set[int]] = None
    pending = 0  # frames of a moof whose mdat has not been seen whole yet
    with open(path, "rb") as fh:
        pos = 0
        while pos + 8 <= size:
            fh.seek(pos)
            head = fh.read(16)
            box_size, kind = struct.unpack(">I4s", head[:8])
            head_size = 8
            if box_size == 1 and len(head) == 16:
                box_size, head_size = struct.unpack(">Q", head[8:16])[0], 16
            elif box_size == 0:  # "to the end of the file": a last box that was never closed
                break
            if box_size < head_size or pos + box_size > size:
                break  # torn: the write stopped inside this box
            if kind in (b"moov", b"moof") and box_size <= 64 << 20:
                fh.seek(pos + head_size)
                body = fh.read(box_size - head_size)
                if kind == b"moov":
                    video = _video_tracks(body)
                else:
                    pending = _fragment_frames(body, video or set()) if video is not None else 0
            pos += box_size
            if kind == b"moof":
                continue  # whole only with its mdat
            if kind == b"mdat" and pending:
                frames += pending
                pending = 0
                good = pos
            elif good:
                good = pos  # an index or padding after whole fragments (mfra, sidx, free)
    return Scan(good, frames)


def complete_length(path: Path) -> int:
    """The length of the playable prefix of fragmented MP4 ``path`` (see :func:`scan`)."""
    return scan(path).length


class _Prefix(io.RawIOBase):
    """The first ``length`` bytes of an open file, as a file (what FFmpeg is allowed to see)."""

    def __init__(self, fh: BinaryIO, length: int) -> None:
        super().__init__()
        self._fh, self._length, self._pos = fh, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        left = self._length - self._pos
        if size is None or size < 0 or size > left:
            size = left
        if size <= 0:
            return b""
        self._fh.seek(self._pos)
        data = self._fh.read(size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, min(self._length, base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos


def _open_prefix(path: Path, length: int) -> tuple[BinaryIO, Any]:
    import av

    fh = open(path, "rb")
    try:
        return fh, av.open(_Prefix(fh, length), "r", format="mp4")
    except BaseException:
        fh.close()
        raise


def remux(src: Path, dst: Path, fmt: Optional[str] = None) -> Salvaged:
    """Copy the playable prefix of fragmented MP4 ``src`` into a plain file ``dst`` (one index at
    the end, seekable in every player), packets as they are: no re-encoding.  Returns what it
    holds; with no frame, ``dst`` is not written (the caller removes it).  Raises ``OSError`` (a
    full disk) and PyAV's errors as they come."""
    import av

    length = complete_length(src)
    if length <= 0:
        return Salvaged(0, 0.0)
    fh, inp = _open_prefix(src, length)
    frames, first, last = 0, float("inf"), float("-inf")
    try:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        with av.open(str(dst), "w", format=fmt) as out:
            copies = {s.index: out.add_stream_from_template(s) for s in streams}
            for packet in inp.demux(streams):
                if not packet.size or packet.dts is None:
                    continue
                if packet.stream.type == "video":  # read before muxing: the muxer takes the packet's contents
                    frames += 1
                    if packet.pts is not None and packet.time_base is not None:
                        start = float(packet.pts * packet.time_base)
                        first = min(first, start)
                        last = max(last, start + float((packet.duration or 0) * packet.time_base))
                packet.stream = copies[packet.stream.index]
                out.mux(packet)
    finally:
        inp.close()
        fh.close()
    return Salvaged(frames, round(last - first, 3) if last >= first else 0.0)
