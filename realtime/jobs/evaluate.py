"""``stylize evaluate SOURCE STYLIZED [--raw RAW]``: how steady a stylized video is.

Prints the short-term warping error (Lai et al. 2018) of STYLIZED with the flow of SOURCE, the same
error of SOURCE itself (the floor that flow and compression noise leave), the frame-difference
error, and with ``--raw`` (the same video stylized with ``--stability 0``) the PSNR of STYLIZED
against it: how much of the style the stabilisation kept.  The benchmark and the tests use the
same functions (:mod:`realtime.effects.metrics`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..effects.metrics import ConsistencyMeter
from ..errors import MediaError, UserError
from ..io.images import resize
from ..io.media.decode import VideoFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateJob:
    source: str
    stylized: str
    raw: Optional[str] = None
    frames: int = 300  # at most this many frames from the start (the flow is the slow part)
    json_path: Optional[str] = None
    overwrite: bool = False  # an existing --json file may be replaced (never one of the videos)


def _rgb_frames(video: VideoFile, size: Optional[tuple[int, int]] = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames, resized to ``size`` (w, h) when given and different (with a warning when
    the shapes differ, not only the sizes: two unrelated videos give numbers that mean nothing)."""
    for i, decoded in enumerate(video.frames()):
        img = decoded.image
        if size is not None:
            h, w = img.shape[:2]
            if i == 0 and abs(w / h - size[0] / size[1]) > 0.02 * size[0] / size[1]:
                log.warning("%s is %dx%d, the stylized video %dx%d: compared at %dx%d (the same video?)",
                            video.path, w, h, *size, *size)
            img = resize(img, size)
        yield np.ascontiguousarray(img[..., ::-1])


def _check_report_path(job: EvaluateJob) -> None:
    """The report's file, before minutes of flow: never one of the videos being judged (a mistyped
    ``--json out.mp4`` replaced the stylized video with 161 bytes of JSON), never an existing file
    without ``--overwrite``, as every other output of the tool."""
    if not job.json_path:
        return
    from ..io.paths import check_output_file

    report = Path(job.json_path)
    for video in (job.source, job.stylized, job.raw):
        if video and report.exists() and Path(video).exists() and os.path.samefile(report, video):  # links too
            raise UserError(f"--json {report} would overwrite the video {video}")
    check_output_file(report, job.overwrite, "--json")


def _finite(value: float) -> Optional[float]:
    """JSON has no infinity (strict parsers, JavaScript's included, refuse Python's ``Infinity``):
    an infinite PSNR (identical videos) is written as null."""
    return value if value is not None and np.isfinite(value) else None


def run_evaluate(job: EvaluateJob) -> int:
    _check_report_path(job)
    with contextlib.ExitStack() as stack:
        stylized_video = stack.enter_context(VideoFile(job.stylized))
        source_video = stack.enter_context(VideoFile(job.source))
        raw_video = stack.enter_context(VideoFile(job.raw)) if job.raw else None
        stylized = _rgb_frames(stylized_video)
        first = next(stylized, None)
        if first is None:
            raise MediaError(f"{job.stylized}: no frames to measure")
        size = (first.shape[1], first.shape[0])  # the flow at the stylized video's size (as decoded)
        streams = [_rgb_frames(source_video, size), itertools.chain([first], stylized)]
        if raw_video is not None:
            streams.append(_rgb_frames(raw_video, size))
        meter = ConsistencyMeter()
        for frames in itertools.islice(zip(*streams), job.frames):  # in step: never all in memory
            outputs = {"source": frames[0], "stylized": frames[1]}
            if raw_video is not None:
                outputs["raw"] = frames[2]
            meter.add(frames[0], outputs, (("stylized", "raw"),) if raw_video is not None else ())
        counts = [v.frame_count() for v in (source_video, stylized_video, raw_video) if v is not None]
    n = meter.frames
    if n < 2:
        raise MediaError(f"{job.stylized}: at least two frames are needed to measure steadiness")
    if len(set(counts)) > 1 and n < job.frames:
        log.warning("the videos have different frame counts (%s): compared the first %d frames",
                    ", ".join(map(str, counts)), n)
    floor = meter.result("source").warping_error
    m = meter.result("stylized", "raw" if raw_video is not None else None)
    print(f"frames compared:            {n} at {size[0]}x{size[1]}")
    print(f"warping error (x1000):      {1000 * m.warping_error:.3f}   (lower is steadier)")
    print(f"  floor, the source itself: {1000 * floor:.3f}")
    print(f"frame difference (x1000):   {1000 * m.frame_difference:.3f}")
    report = {"frames": n, "size": list(size), "warping_error": m.warping_error, "floor": floor,
              "frame_difference": m.frame_difference}
    if raw_video is not None:
        base = meter.result("raw").warping_error
        above = base - floor
        removed = 100 * (base - m.warping_error) / above if above > 0 else 0.0
        print(f"raw warping error (x1000):  {1000 * base:.3f}   -> {removed:.1f}% of it above the floor removed")
        print(f"PSNR against raw:           {m.psnr_db:.1f} dB   (how much of the style was kept)")
        report.update(raw_warping_error=base, removed_pct=removed, psnr_db=_finite(m.psnr_db))
    if job.json_path:
        from ..io.paths import atomic_write_bytes

        atomic_write_bytes(Path(job.json_path), (json.dumps(report, indent=1) + "\n").encode())
    return 0
