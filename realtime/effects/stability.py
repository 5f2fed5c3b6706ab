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

Cost: flow on grey frames at half the inference size, at most ``FLOW_SIDE`` on the short side (two
DIS FAST calls: a better flow than ULTRAFAST for 1-2 ms more, measured to remove more flicker at the
same PSNR), one remap of the output; the figures are in the README.  The cap matters for big
frames: at 1920x1080 half-size flow was most of a frame's 70 ms on one core; the flow is smooth, so
a quarter-size field upsampled loses little (1-2 points of the flicker removed, README).
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Protocol

import cv2
import numpy as np

from .flow import Flow, consistent, grid, to_grey, warp

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
DEFAULT = 0.55  # the lowest level that meets the goal on every clip in benchmarks/stability.py (README)
FLOW_SIDE = 270  # the flow's short side at most (half of 540, a quarter of 1080)


class Carry(Protocol):
    """The full-size half of the filter: carry the previous output along the flow and blend.

    Why a seam here: everything before it works on small grey frames (cheap anywhere); everything
    after it touches every output pixel, which on a GPU backend is better done where the output
    already is (:mod:`.stability_torch`).  ``memory`` is the carry's own picture of the previous
    output (a float32 array here, a device tensor there); the filter only hands it back."""

    def start(self, styled: np.ndarray) -> Any:
        """The memory of a fresh output (a cut, the first frame)."""
        ...

    def carry(self, memory: Any, styled: np.ndarray, back: np.ndarray, conf: np.ndarray,
              amount: float) -> tuple[Any, np.ndarray]:
        """``styled`` uint8 [H, W, 3]; ``back`` [h, w, 2] flow and ``conf`` [h, w] at the flow's
        size -> (the new memory, the uint8 output)."""
        ...


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> np.ndarray:
    """Pixel coordinates for a frame size, made once per size and shared (read only)."""
    g = grid(h, w)
    g.flags.writeable = False
    return g


class OpenCVCarry:
    """The carry on the CPU with OpenCV (float32 memory: no rounding drift over held frames)."""

    def start(self, styled: np.ndarray) -> np.ndarray:
        return styled.astype(np.float32)

    def carry(self, memory: np.ndarray, styled: np.ndarray, back: np.ndarray, conf: np.ndarray,
              amount: float) -> tuple[np.ndarray, np.ndarray]:
        h, w = styled.shape[:2]
        sh, sw = back.shape[:2]
        if (sw, sh) != (w, h):
            back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR)
            back[..., 0] *= w / sw
            back[..., 1] *= h / sh
            conf = cv2.resize(conf, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            back = back.copy()
        # The sampling map in place (x + flow(x)): a full-size float pair less to allocate per frame.
        carried = cv2.remap(memory, cv2.add(back, _grid(h, w), dst=back), None, cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
        weight = amount * conf
        # raw + weight * (carried - raw) as one OpenCV pass (2.5x numpy's broadcast); both
        # inputs lie in [0, 255], so the blend does too.
        out = cv2.blendLinear(carried, styled.astype(np.float32), weight, 1.0 - weight)
        return out, cv2.convertScaleAbs(out)  # rounded to uint8 in one pass (10x numpy's +0.5 and cast)


class FlowStabilizer:
    """Per-stream state: the previous small grey input and the previous (stabilised) output."""

    def __init__(self, amount: float = DEFAULT, flow_scale: float = 0.5, tau: float = 25.0, cut: float = 40.0,
                 preset: str = "fast", flow_side: int = FLOW_SIDE, carry: Optional[Carry] = None) -> None:
        self.amount = float(min(1.0, max(0.0, amount)))
        self.flow_scale = flow_scale
        self.flow_side = flow_side  # 0: no cap
        self.tau = tau  # warped-input error (grey levels) at which confidence falls to 1/e
        self.cut = cut  # mean grey change that counts as a new shot
        self._flow = Flow(preset)
        self._carry: Carry = carry or OpenCVCarry()
        self._prev_grey: Optional[np.ndarray] = None
        self._prev_out: Any = None  # the carry's memory of the previous output
        self._prev_size: Optional[tuple[int, int]] = None
        self.cuts = 0

    @property
    def carrier(self) -> Carry:
        return self._carry

    def use_carry(self, carry: Carry) -> None:
        """Another carry (the stage's, for its backend's device): the memory starts over."""
        if carry is not self._carry:
            self._carry = carry
            self.reset()

    def reset(self) -> None:
        self._prev_grey = self._prev_out = self._prev_size = None

    def _fresh(self, styled: np.ndarray) -> np.ndarray:
        self._prev_out = self._carry.start(styled)
        self._prev_size = styled.shape[:2]
        return styled

    def __call__(self, content: np.ndarray, styled: np.ndarray) -> np.ndarray:
        """content and styled: uint8 RGB [H, W, 3] of the same size (the inference size)."""
        if self.amount <= 0.0:
            self.reset()
            return styled
        h, w = styled.shape[:2]
        scale = self.flow_scale
        if self.flow_side:
            scale = min(scale, self.flow_side / min(h, w))
        sw, sh = max(16, round(w * scale)), max(16, round(h * scale))
        grey = to_grey(content, (sw, sh))
        prev_grey = self._prev_grey
        self._prev_grey = grey
        if prev_grey is None or self._prev_out is None or prev_grey.shape != grey.shape or self._prev_size != (h, w):
            return self._fresh(styled)
        if float(np.mean(cv2.absdiff(grey, prev_grey))) > self.cut:  # a cut: nothing to carry over
            self.cuts += 1
            return self._fresh(styled)
        small = _grid(sh, sw)
        back = self._flow(grey, prev_grey)
        fwd = self._flow(prev_grey, grey)
        ok = consistent(back, fwd, small)
        err = cv2.absdiff(grey, warp(prev_grey, back, small)).astype(np.float32)
        conf = np.where(ok, np.exp(-cv2.blur(err, (3, 3)) / self.tau), 0.0).astype(np.float32)
        conf = cv2.erode(conf, _CROSS)  # distrust the edges of occlusions too: no fringe trails
        self._prev_out, out = self._carry.carry(self._prev_out, styled, back, conf, self.amount)
        return out
