"""``stylize evaluate SOURCE STYLIZED [--raw RAW]``: how steady a stylized video is.

Prints the short-term warping error (Lai et al. 2018) of STYLIZED with the flow of SOURCE, the same
error of SOURCE itself (the floor that flow and compression noise leave), the frame-difference
error, and with ``--raw`` (the same video stylized with ``--stability 0``) the PSNR of STYLIZED
against it: how much of the style the stabilisation kept.  The benchmark and the tests use the
same functions (:mod:`realtime.effects.metrics`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..effects.metrics import consistency
from ..errors import MediaError
from ..io.sources.file import VideoFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateJob:
    source: str
    stylized: str
    raw: Optional[str] = None
    frames: int = 300  # at most this many frames from the start (the flow is the slow part)
    json_path: Optional[str] = None


def read_frames(path: str, limit: int, size: Optional[tuple[int, int]] = None) -> list[np.ndarray]:
    """RGB uint8 frames from the start of a video, resized to ``size`` (w, h) when given."""
    out = []
    with VideoFile(path) as video:
        for decoded in video.frames():
            img = decoded.image
            if size is not None and (img.shape[1], img.shape[0]) != size:
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            out.append(np.ascontiguousarray(img[..., ::-1]))
            if len(out) >= limit:
                break
    if len(out) < 2:
        raise MediaError(f"{path}: at least two frames are needed to measure steadiness")
    return out


def run_evaluate(job: EvaluateJob) -> int:
    stylized = read_frames(job.stylized, job.frames)
    size = (stylized[0].shape[1], stylized[0].shape[0])
    source = read_frames(job.source, job.frames, size)  # the flow at the stylized video's size
    raw = read_frames(job.raw, job.frames, size) if job.raw else None
    n = min(len(stylized), len(source), len(raw) if raw is not None else len(stylized))
    if len({len(stylized), len(source)} | ({len(raw)} if raw is not None else set())) > 1:
        log.warning("the videos have different frame counts: comparing the first %d frames", n)
    stylized, source = stylized[:n], source[:n]
    raw = raw[:n] if raw is not None else None
    floor = consistency(source, source).warping_error
    m = consistency(source, stylized, raw)
    print(f"frames compared:            {n} at {size[0]}x{size[1]}")
    print(f"warping error (x1000):      {1000 * m.warping_error:.3f}   (lower is steadier)")
    print(f"  floor, the source itself: {1000 * floor:.3f}")
    print(f"frame difference (x1000):   {1000 * m.frame_difference:.3f}")
    report = {"frames": n, "size": list(size), "warping_error": m.warping_error, "floor": floor,
              "frame_difference": m.frame_difference}
    if raw is not None:
        base = consistency(source, raw)
        above = base.warping_error - floor
        removed = 100 * (base.warping_error - m.warping_error) / above if above > 0 else 0.0
        print(f"raw warping error (x1000):  {1000 * base.warping_error:.3f}   -> {removed:.1f}% of it above the floor removed")
        print(f"PSNR against raw:           {m.psnr_db:.1f} dB   (how much of the style was kept)")
        report.update(raw_warping_error=base.warping_error, removed_pct=removed, psnr_db=m.psnr_db)
    if job.json_path:
        from ..io.paths import atomic_write_bytes

        atomic_write_bytes(Path(job.json_path), (json.dumps(report, indent=1) + "\n").encode())
    return 0
