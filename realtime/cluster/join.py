"""Join stylized segments into one file by stream copy, with the source's sound added once.

Why stream copy: the segments were encoded with identical settings, each starting at a keyframe,
so their H.264 packets follow each other as they are (no second encode, no quality loss, seconds
for a film).  Each segment's packets are shifted by where its first frame sits in the source, so
the output has exactly the source's timestamps, like the single-machine path.  The sound takes
the single-machine path's rules (copied or re-encoded, cut at the picture's end) through the same
:mod:`realtime.io.media.audio` and :class:`~realtime.io.media.h264.H264Writer`.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

from ..errors import MediaError
from ..io.media.audio import AudioRoute, demux_sound, plan_audio
from ..io.media.decode import VideoFile, stream_time
from ..io.media.h264 import H264Writer

log = logging.getLogger(__name__)


def join_segments(src: Path, parts: Sequence[tuple[Path, int]], dst: Path, *, origin: float,
                  start: Optional[float] = None, end: Optional[float] = None, audio: bool = True,
                  overwrite: bool = False) -> str:
    """Write ``dst`` from ``parts`` ([(segment file, source pts of its first frame)], in order)
    and ``src``'s sound from ``start`` (--start; None = all) to the picture's end; ``origin`` is the
    first frame's time.  Returns how the sound went (copied / re-encoded / none)."""
    import av

    try:
        with VideoFile(src).open() as reader, H264Writer(dst) as writer:
            vs = reader.video
            routes, mode = plan_audio(writer.container, list(reader.container.streams.audio) if audio else [])
            pts0 = parts[0][1]
            frame_s = 1.0 / (reader.fps or 30.0)
            with av.open(str(parts[0][0])) as first:
                writer.copy_stream(first.streams.video[0], vs.time_base, audio=routes, audio_zero=origin + reader.start_time)
            video_end = _video_end(parts, vs.time_base, pts0, origin, frame_s)
            for _, kind, item in heapq.merge(_video_packets(parts, vs.time_base, pts0, origin),
                                             _audio_items(reader, routes, start, video_end if end is None else min(video_end, end)),
                                             key=lambda e: (e[0], e[1])):
                if kind == 0:
                    writer.mux_packet(item)
                else:
                    writer.mux_sound(item)
            writer.finish()
            writer.publish(overwrite=overwrite)
        return mode
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot join the segments of {src}: {exc}") from None


def _video_end(parts: Sequence[tuple[Path, int]], tb: Fraction, pts0: int, origin: float, frame_s: float) -> float:
    """Time (from the stream's start) at which the last segment's picture ends."""
    import av

    path, first_pts = parts[-1]
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        last = max((p.pts for p in c.demux(s) if p.pts is not None), default=0)
        return origin + float((first_pts - pts0) * tb + last * s.time_base) + frame_s


def _video_packets(parts: Sequence[tuple[Path, int]], tb: Fraction, pts0: int, origin: float) -> Iterator[tuple[float, int, Any]]:
    """(time, 0, packet) for every segment's packets, re-timed into the source's time base."""
    import av

    last_dts: Optional[int] = None
    for path, first_pts in parts:
        shift = first_pts - pts0  # in the source's time base
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            for p in c.demux(s):
                if p.size == 0:
                    continue
                pts = _rescale(p.pts, s.time_base, tb) + shift if p.pts is not None else None
                dts = _rescale(p.dts, s.time_base, tb) + shift if p.dts is not None else pts
                if last_dts is not None and dts is not None and dts <= last_dts:
                    dts = last_dts + 1  # a segment's reordering delay overlaps its neighbour's by a tick
                if pts is not None and dts is not None and dts > pts:
                    raise MediaError(f"{path}: segment timestamps cannot be joined")
                if p.duration:
                    p.duration = _rescale(p.duration, s.time_base, tb)
                p.pts, p.dts, p.time_base = pts, dts, tb
                last_dts = dts
                yield origin + float((dts if dts is not None else 0) * tb), 0, p


def _audio_items(reader: VideoFile, routes: dict[int, AudioRoute], start: Optional[float], stop: float) -> Iterator[tuple[float, int, Any]]:
    """(time, 1, AudioPacket/AudioFrame) for the source's sound in [start, stop) (decode order)."""
    if not routes:
        return
    for packet in reader.container.demux(*(r.source for r in routes.values())):
        if packet.size == 0 or packet.pts is None:
            continue
        t = stream_time(packet.pts, packet.time_base, reader.start_time)
        if (start is not None and t < start - 1e-6) or t >= stop - 1e-6:
            continue
        for item in demux_sound(packet, routes[packet.stream.index]):
            yield t, 1, item


def _rescale(v: int, src_tb: Fraction, dst_tb: Fraction) -> int:
    return int(round(Fraction(v) * src_tb / dst_tb))
