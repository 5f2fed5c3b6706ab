"""Steady pictures in motion: flow-guided temporal stability (``--stability 0..1``).

The network stylizes every frame on its own, so textures flicker, and a plain blend with the
previous output (the old ``--smooth``) either leaves the flicker where things move or smears them.
This follows blind temporal consistency (Bonneel et al. 2015, Lai et al. 2018) at inference time,
without retraining: the previous *output* is carried along the optical flow of the *input* frames
onto the current frame, and blended with the new output where that flow can be trusted::

    out_t = raw_t + stability * confidence * (warp(out_t-1, flow) - raw_t)

``confidence`` is 0 where the forward-backward check fails (disoccluded or badly tracked pixels)
and falls off with the warped-input error, so whatever appears from behind a moving object, or
changes for real, takes the new output at once: nothing trails behind.  Because ``out_t-1`` is
itself stabilised, textures are held over many frames and follow the motion (a pan carries them
along instead of freezing them in screen space).  A scene cut (a large mean change of the small
grey input) and :meth:`reset` (style switches, new streams) start again from the raw output.

Cost: flow on grey frames at half the inference size (two DIS FAST calls: a better flow than
ULTRAFAST for 1-2 ms more, measured to remove more flicker at the same PSNR), one remap of the
output; the figures are in the README.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .flow import Flow, consistent, grid, to_grey, warp

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
DEFAULT = 0.55  # the lowest level that meets the goal on every clip in benchmarks/stability.py (README)


class FlowStabilizer:
    """Per-stream state: the previous small grey input and the previous (stabilised) output."""

    def __init__(self, amount: float = DEFAULT, flow_scale: float = 0.5, tau: float = 25.0, cut: float = 40.0,
                 preset: str = "fast") -> None:
        self.amount = float(min(1.0, max(0.0, amount)))
        self.flow_scale = flow_scale
        self.tau = tau  # warped-input error (grey levels) at which confidence falls to 1/e
        self.cut = cut  # mean grey change that counts as a new shot
        self._flow = Flow(preset)
        self._prev_grey: Optional[np.ndarray] = None
        self._prev_out: Optional[np.ndarray] = None
        self._grids: dict[tuple[int, int], np.ndarray] = {}
        self.cuts = 0

    def reset(self) -> None:
        self._prev_grey = self._prev_out = None

    def _grid(self, h: int, w: int) -> np.ndarray:
        g = self._grids.get((h, w))
        if g is None:
            g = self._grids[(h, w)] = grid(h, w)
        return g

    def __call__(self, content: np.ndarray, styled: np.ndarray) -> np.ndarray:
        """content and styled: uint8 RGB [H, W, 3] of the same size (the inference size)."""
        if self.amount <= 0.0:
            self.reset()
            return styled
        h, w = styled.shape[:2]
        sw, sh = max(16, round(w * self.flow_scale)), max(16, round(h * self.flow_scale))
        grey = to_grey(content, (sw, sh))
        prev_grey, prev_out = self._prev_grey, self._prev_out
        self._prev_grey = grey
        if prev_grey is None or prev_out is None or prev_grey.shape != grey.shape or prev_out.shape[:2] != (h, w):
            self._prev_out = styled.astype(np.float32)
            return styled
        if float(np.mean(cv2.absdiff(grey, prev_grey))) > self.cut:  # a cut: nothing to carry over
            self.cuts += 1
            self._prev_out = styled.astype(np.float32)
            return styled
        small = self._grid(sh, sw)
        back = self._flow(grey, prev_grey)
        fwd = self._flow(prev_grey, grey)
        ok = consistent(back, fwd, small)
        err = cv2.absdiff(grey, warp(prev_grey, back, small)).astype(np.float32)
        conf = np.where(ok, np.exp(-cv2.blur(err, (3, 3)) / self.tau), 0.0).astype(np.float32)
        conf = cv2.erode(conf, _CROSS)  # distrust the edges of occlusions too: no fringe trails
        if (sw, sh) != (w, h):
            back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR)
            back[..., 0] *= w / sw
            back[..., 1] *= h / sh
            conf = cv2.resize(conf, (w, h), interpolation=cv2.INTER_LINEAR)
        carried = warp(prev_out, back, self._grid(h, w))
        weight = self.amount * conf
        # raw + weight * (carried - raw) as one OpenCV pass (2.5x numpy's broadcast); both
        # inputs lie in [0, 255], so the blend does too and rounding needs no clip.
        out = cv2.blendLinear(carried, styled.astype(np.float32), weight, 1.0 - weight)
        self._prev_out = out
        return (out + 0.5).astype(np.uint8)
