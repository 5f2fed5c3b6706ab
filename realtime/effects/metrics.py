"""Temporal-consistency metrics, as the papers measure them (``stylize evaluate``, benchmarks, tests).

* Short-term warping error (Lai et al. 2018, "Learning Blind Video Temporal Consistency", eq. 6):
  flow between consecutive *source* frames, non-occluded pixels ``M`` from the forward-backward
  check, and ``E = sum M |O_t - warp(O_t-1)|^2 / sum M`` on outputs scaled to [0, 1], averaged over
  frames.  Computed on the source itself it is the floor that flow and compression noise leave.
* Frame-difference error: ``mean |O_t - O_t-1|^2`` (what flicker on a still scene is).
* PSNR of the stabilised output against the unstabilised one: how much of the style it kept.

The flow here uses DIS's finer MEDIUM preset on full-size grey frames: an offline measure should
not share the shortcuts of the real-time filter it judges.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .flow import Flow, consistent, grid, to_grey, warp


@dataclass
class Consistency:
    frames: int
    warping_error: float  # x 1000 in reports (Lai et al. print E_warp x 10^3 too)
    frame_difference: float
    psnr_db: Optional[float] = None  # against the raw output, when given


def _pairs(frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    prev = None
    for f in frames:
        if prev is not None:
            yield prev, f
        prev = f


def warping_errors(sources: list[np.ndarray], outputs: list[np.ndarray], preset: str = "medium") -> list[float]:
    """Per frame pair (t-1, t): the masked mean squared difference of the warped previous output.

    ``sources`` and ``outputs``: RGB uint8 frames of one size (the caller resizes)."""
    if len(sources) != len(outputs):
        raise ValueError("one source frame per output frame")
    flow = Flow(preset)
    errors = []
    base = None
    for (s0, s1), (o0, o1) in zip(_pairs(sources), _pairs(outputs)):
        g0, g1 = to_grey(s0), to_grey(s1)
        if base is None:
            base = grid(*g1.shape[:2])
        back, fwd = flow(g1, g0), flow(g0, g1)
        mask = consistent(back, fwd, base)
        if not mask.any():
            continue
        carried = warp(o0.astype(np.float32) / 255.0, back, base)
        diff = np.sum((o1.astype(np.float32) / 255.0 - carried) ** 2, axis=-1) / 3.0
        errors.append(float(diff[mask].mean()))
    return errors


def frame_differences(outputs: list[np.ndarray]) -> list[float]:
    return [float(np.mean(((b.astype(np.float32) - a.astype(np.float32)) / 255.0) ** 2)) for a, b in _pairs(outputs)]


def psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """PSNR in dB over all frames together (uint8 peak 255)."""
    mse = np.mean([np.mean((x.astype(np.float32) - y.astype(np.float32)) ** 2) for x, y in zip(a, b)])
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def consistency(sources: list[np.ndarray], outputs: list[np.ndarray], raw: Optional[list[np.ndarray]] = None,
                preset: str = "medium") -> Consistency:
    we = warping_errors(sources, outputs, preset)
    fd = frame_differences(outputs)
    return Consistency(
        frames=len(outputs),
        warping_error=float(np.mean(we)) if we else 0.0,
        frame_difference=float(np.mean(fd)) if fd else 0.0,
        psnr_db=psnr(outputs, raw) if raw is not None else None,
    )
