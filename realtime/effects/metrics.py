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


class ConsistencyMeter:
    """Streams a source video and any number of named outputs of it, frame by frame: the source's
    flow and occlusion mask are computed once per frame pair and serve every output (the benchmark
    judges seven filters and the source's own floor on the same flow; ``stylize evaluate`` reads
    the videos in step instead of holding them in memory)."""

    def __init__(self, preset: str = "medium") -> None:
        self._flow = Flow(preset)
        self._base: Optional[np.ndarray] = None
        self._prev_grey: Optional[np.ndarray] = None
        self._prev: dict[str, np.ndarray] = {}
        self.frames = 0
        self.warping: dict[str, list[float]] = {}
        self.differences: dict[str, list[float]] = {}
        self._squared: dict[tuple[str, str], list[float]] = {}

    def add(self, source: np.ndarray, outputs: dict[str, np.ndarray], psnr_pairs: tuple[tuple[str, str], ...] = ()) -> None:
        """One frame: RGB uint8 ``source`` and ``outputs`` of its size; ``psnr_pairs`` names (a, b)
        outputs whose PSNR to accumulate."""
        grey = to_grey(source)
        scaled = {k: v.astype(np.float32) / 255.0 for k, v in outputs.items()}
        if self._prev_grey is not None:
            if self._base is None:
                self._base = grid(*grey.shape[:2])
            back = self._flow(grey, self._prev_grey)
            mask = consistent(back, self._flow(self._prev_grey, grey), self._base)
            for name, out in scaled.items():
                prev = self._prev.get(name)
                if prev is None:
                    continue
                if mask.any():
                    carried = warp(prev, back, self._base)
                    self.warping.setdefault(name, []).append(float((np.sum((out - carried) ** 2, axis=-1) / 3.0)[mask].mean()))
                self.differences.setdefault(name, []).append(float(np.mean((out - prev) ** 2)))
        for a, b in psnr_pairs:
            self._squared.setdefault((a, b), []).append(float(np.mean((scaled[a] - scaled[b]) ** 2)))
        self._prev_grey, self._prev = grey, scaled
        self.frames += 1

    def result(self, name: str, raw: Optional[str] = None) -> Consistency:
        we, fd = self.warping.get(name, []), self.differences.get(name, [])
        mse = float(np.mean(self._squared[(name, raw)])) if raw is not None else None
        return Consistency(
            frames=self.frames,
            warping_error=float(np.mean(we)) if we else 0.0,
            frame_difference=float(np.mean(fd)) if fd else 0.0,
            psnr_db=None if mse is None else (float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))),
        )


def psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """PSNR in dB over all frames together (uint8 peak 255)."""
    mse = np.mean([np.mean((x.astype(np.float32) - y.astype(np.float32)) ** 2) for x, y in zip(a, b)])
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def consistency(sources: list[np.ndarray], outputs: list[np.ndarray], raw: Optional[list[np.ndarray]] = None,
                preset: str = "medium") -> Consistency:
    """The figures for one output sequence (lists in memory; see :class:`ConsistencyMeter` for more)."""
    if len(sources) != len(outputs) or (raw is not None and len(raw) != len(outputs)):
        raise ValueError("one source frame per output frame")
    meter = ConsistencyMeter(preset)
    for i, (src, out) in enumerate(zip(sources, outputs)):
        frame = {"out": out} if raw is None else {"out": out, "raw": raw[i]}
        meter.add(src, frame, (("out", "raw"),) if raw is not None else ())
    return meter.result("out", "raw" if raw is not None else None)
