"""Optical flow building blocks shared by the stabiliser and the evaluation metric.

Why DIS (Kroeger et al. 2016, in OpenCV): dense, CPU-only and fast enough to run per frame live
(PITFALLS 17: about 4 ms at 640x480 on this machine with the ULTRAFAST preset, less on the small
grey frames used here); the evaluation uses a slower, finer preset since it runs offline.

Conventions: ``backward_flow(cur, prev)`` gives, for each pixel ``x`` of the current frame, the
displacement ``f(x)`` with ``cur(x) ~ prev(x + f(x))``, so ``warp(prev_image, f)`` brings anything
from the previous frame onto the current one.  Occlusion follows Sundaram et al. 2010: the forward
flow at ``x + f(x)`` must bring the point back (``f(x) + g(x + f(x)) ~ 0``), else ``x`` was not
visible in the previous frame (disoccluded) or the flow is wrong there.
"""

from __future__ import annotations

import threading
from typing import Optional

import cv2
import numpy as np

# DIS's pyramid breaks on small frames (opencv-python 5.0): FAST and ULTRAFAST crash the process
# (SIGSEGV) or fail an assertion on frames under 32 rows that are wider than about 80 (a 1280x32
# letterbox strip at half size), and every preset refuses frames under 12 on both sides.  Found by
# a user's 200x20 clip; measured over sizes 12..16384 in both directions.
MIN_SIDE = 32

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class Flow:
    """A DIS flow estimator (one per thread: OpenCV's DIS object keeps state between calls)."""

    def __init__(self, preset: str = "ultrafast") -> None:
        self.preset = preset
        self._local = threading.local()

    def _dis(self) -> cv2.DISOpticalFlow:
        dis = getattr(self._local, "dis", None)
        if dis is None:
            dis = cv2.DISOpticalFlow_create(PRESETS[self.preset])
            self._local.dis = dis
        return dis

    def __call__(self, frm: np.ndarray, to: np.ndarray) -> np.ndarray:
        """Flow [H, W, 2] float32 from grey uint8 ``frm`` to ``to``: ``frm(x) ~ to(x + flow(x))``.

        A frame with a side under :data:`MIN_SIDE` is stretched to it for DIS and its flow brought
        back to the frame's size (in the frame's pixels): such frames are rare, and a crash of the
        whole process over a thin strip of video is not an answer."""
        h, w = frm.shape[:2]
        if h >= MIN_SIDE and w >= MIN_SIDE:
            return self._dis().calc(frm, to, None)
        big = (max(w, MIN_SIDE), max(h, MIN_SIDE))
        flow = self._dis().calc(cv2.resize(frm, big, interpolation=cv2.INTER_LINEAR),
                                cv2.resize(to, big, interpolation=cv2.INTER_LINEAR), None)
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA)
        flow[..., 0] *= w / big[0]
        flow[..., 1] *= h / big[1]
        return flow


def grid(h: int, w: int) -> np.ndarray:
    """Pixel coordinates [H, W, 2] (x, y) as float32."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([xs, ys])


def warp(image: np.ndarray, flow: np.ndarray, base: Optional[np.ndarray] = None) -> np.ndarray:
    """``image`` sampled at ``x + flow(x)`` (bilinear; outside the frame: the nearest edge pixel)."""
    h, w = flow.shape[:2]
    m = (base if base is not None else grid(h, w)) + flow
    # One two-channel map: OpenCV would copy the two strided channel views on every call.
    return cv2.remap(image, m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistent(backward: np.ndarray, forward: np.ndarray, base: Optional[np.ndarray] = None) -> np.ndarray:
    """Bool [H, W]: pixels of the current frame whose backward flow the forward flow undoes
    (Sundaram et al.: ``|f + g(x+f)|^2 < 0.01 (|f|^2 + |g(x+f)|^2) + 0.5``), and that land inside
    the previous frame."""
    h, w = backward.shape[:2]
    base = base if base is not None else grid(h, w)
    target = base + backward
    tx, ty = target[..., 0], target[..., 1]
    back_at = cv2.remap(forward, target, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = _norm2(backward + back_at)
    tol = 0.01 * (_norm2(backward) + _norm2(back_at)) + 0.5
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return (err < tol) & inside


def _norm2(f: np.ndarray) -> np.ndarray:
    """Squared length of each 2-vector of [H, W, 2] (written out: numpy's sum over a last axis of
    two is ten times slower)."""
    x, y = f[..., 0], f[..., 1]
    return x * x + y * y


def to_grey(image_rgb: np.ndarray, size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """uint8 grey, resized to ``size`` (w, h) with area averaging when given."""
    grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY) if image_rgb.ndim == 3 else image_rgb
    if size is not None and (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey
