"""Work units: whole files, and long files cut at keyframes into segments.

Why at keyframes: a segment then decodes on its own from its first frame (no frame before it is
needed to decode it) and its encoded output can be joined to its neighbours by stream copy.
Why a warm-up: the stability control carries the previous output into the next frame, so a
segment starts that many frames early, stylizes them and drops them; by its first encoded frame
the carried state equals the whole-file run's (the remaining difference shrinks by ``stability``
each frame, see :func:`warmup_frames`).  The keyframe scan only demuxes (no decoding): a
two-hour film is scanned in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import MediaError
from ..io.media.decode import VideoFile, stream_time
from ..pipeline.video import Span

MAX_WARMUP = 120  # frames; stability 1.0 never forgets, so a border can only be made invisible


def warmup_frames(stability: float, tolerance: float = 0.25) -> int:
    """Frames of warm-up after which a segment's carried state is within ``tolerance`` grey levels
    of the whole-file run's: a difference of up to 255 shrinks by at least ``stability`` a frame."""
    if stability <= 0:
        return 0
    if stability >= 1:
        return MAX_WARMUP
    return min(MAX_WARMUP, math.ceil(math.log(tolerance / 255.0) / math.log(stability)))


@dataclass(frozen=True)
class Probe:
    """What the keyframe scan learnt of a file: every frame's time (presentation order) and
    which of them are keyframes (seconds from the stream's start, as the decoder reports them)."""

    times: tuple[float, ...]
    keyframes: tuple[int, ...]  # indices into ``times``
    fps: float


def probe(path: Path) -> Probe:
    """Demux ``path``'s video packets (no decoding) to find its frames' times and keyframes."""
    import av

    with VideoFile(path).open() as reader:
        vs = reader.video
        start = reader.start_time
        entries: list[tuple[float, bool]] = []
        try:
            for packet in reader.container.demux(vs):
                if packet.pts is None or packet.size == 0 or packet.is_discard:
                    continue  # discarded by an edit list (a cut without re-encoding): never decoded
                entries.append((stream_time(packet.pts, vs.time_base, start), bool(packet.is_keyframe)))
        except av.error.FFmpegError:
            pass  # a damaged tail: the units cover what demuxed, the decoder reports the rest
        fps = reader.fps
    if not entries:
        raise MediaError(f"{path}: no video frames")
    entries.sort()
    times = tuple(t for t, _ in entries)
    keys = tuple(i for i, (_, k) in enumerate(entries) if k) or (0,)
    return Probe(times, keys, fps)


@dataclass(frozen=True)
class Unit:
    """One piece of work: ``index`` within its file; ``span`` is None for a whole file."""

    index: int
    span: Optional[Span]
    frames: int  # frames it encodes (for progress and the manifest's check)

    @property
    def name(self) -> str:
        return f"seg-{self.index:05d}"


def plan_units(p: Probe, segment_s: float, warmup: int, start: Optional[float] = None,
               end: Optional[float] = None) -> list[Unit]:
    """Cut the frames in ``[start, end)`` at keyframes into units of about ``segment_s`` seconds.

    A file (or range) shorter than two segments is one unit; each cut is the first keyframe at
    least ``segment_s`` after the previous cut.  Each segment after the first starts ``warmup``
    frames early (never before the range).  The style schedule and content code start at the
    range's first frame (``origin``), as in the whole-file run.
    """
    lo = 0 if start is None else next((i for i, t in enumerate(p.times) if t >= start - 1e-6), len(p.times))
    hi = len(p.times) if end is None else next((i for i, t in enumerate(p.times) if t >= end - 1e-6), len(p.times))
    if hi <= lo:
        raise MediaError("no video frames in the chosen --start/--end range")
    times = p.times
    origin = times[lo]
    if segment_s <= 0 or times[hi - 1] - origin < 2 * segment_s:
        return [Unit(0, None, hi - lo)]
    cuts = [lo]
    for k in p.keyframes:
        if lo < k < hi and times[k] - times[cuts[-1]] >= segment_s:
            cuts.append(k)
    # A short tail joins the segment before it rather than being a unit of its own.
    if len(cuts) > 1 and times[hi - 1] - times[cuts[-1]] < segment_s / 2:
        cuts.pop()
    if len(cuts) == 1:
        return [Unit(0, None, hi - lo)]
    units = []
    for i, a in enumerate(cuts):
        b = cuts[i + 1] if i + 1 < len(cuts) else hi
        seg_end = times[b] if b < hi else end
        warm = times[max(lo, a - warmup)]
        units.append(Unit(i, Span(start=times[a], end=seg_end, warm=warm, origin=origin), b - a))
    return units
