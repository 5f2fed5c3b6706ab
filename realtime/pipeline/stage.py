"""The one stylize stage: the path every frame takes, in every mode (live, video, image).

Why one stage (Ultralytics' ``BasePredictor``: source -> preprocess -> inference -> postprocess):
the inference-size rule, the strength mix, the temporal filter and the colour handling used to be
written three times with three different size rules.  Here they are written once:

* ``preprocess``: BGR frames -> the inference size -> RGB uint8 batch.  Resizing happens *before*
  the colour conversion, so the conversion touches the small picture only, and the channel swaps
  are OpenCV's (0.03 ms for a 684x384 frame; numpy's ``[..., ::-1]`` copy took 1 ms).
* ``infer``: the backend's ``stylize`` (RGB uint8 in and out).  ``preprocess`` takes BGR frames
  and the size only, so it is the one place to move into a backend's graph (the GPU) later.
  ``submit`` is ``infer`` for video files: the backend may return before the batch is done, so the
  video's inference thread keeps one batch in the network while it prepares the next.
* ``postprocess``: the stream's temporal filter at the inference size, then back to BGR at the
  source size.

The stage holds no per-stream state: what a stream carries between frames (the content code, the
temporal filter's memory) is its :class:`~realtime.pipeline.state.StreamState`, passed in, so one
stage can serve any number of streams and threads.  The size rule has one entry point,
:func:`pick_inference_size`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import cv2
import numpy as np

from ..core.profile import Profile
from ..io.images import MIN_SIDE, MULTIPLE, resize
from ..effects.stability import Carry
from ..model.backends.base import Pending, Stylizer, require_mixable
from .state import StreamState


def pick_inference_size(width: int, height: int, short_side: int = 0, max_size: int = 0) -> tuple[int, int]:
    """The network's (w, h) for a source: everywhere the same rule.

    The requested short side (0 = the source's own), never above the source's (upscaling only
    costs time: the output is scaled back to the source size anyway), never above ``max_size``
    (0 = no cap), at least 16 pixels, the source's aspect ratio, multiples of 4.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"bad frame size {width}x{height}")
    own = min(width, height)
    side = min(short_side or own, own)
    if max_size:
        side = min(side, max_size)
    scale = max(side, MIN_SIDE) / own
    return _round(width * scale), _round(height * scale)


def _round(x: float) -> int:
    return max(MIN_SIDE, int(round(x / MULTIPLE)) * MULTIPLE)


def check_mixable(stylizer: Stylizer, strength: float, n_styles: int) -> None:
    """At job start, once: strength and style mixing need backends with 100-number codes."""
    if strength != 1.0:
        require_mixable(stylizer, "--strength")
    if n_styles > 1:
        require_mixable(stylizer, "several styles (switching, blends)")


def stability_carry(stylizer: Stylizer, where: str = "auto") -> Optional[Carry]:
    """The stability filter's full-size half on the backend's GPU (torch on CUDA or MPS), where
    the output already is; None (OpenCV on the CPU) for every other backend or ``where="cpu"``."""
    dev = stylizer.torch_device
    if where == "cpu" or dev is None or dev.type == "cpu":
        return None
    from ..effects.stability_torch import TorchCarry

    return TorchCarry(dev)


class StylizeStage:
    """BGR frames -> stylized BGR frames of the same size, for any stream (its state passed in)."""

    def __init__(self, stylizer: Stylizer, short_side: int = 0, max_size: int = 0, profile: Optional[Profile] = None,
                 stability_device: str = "auto") -> None:
        self.stylizer = stylizer
        self.profile = profile or Profile()
        self.short_side = short_side  # the live governor moves it between frames, on the thread that stylizes
        self.max_size = max_size
        self.carry = stability_carry(stylizer, stability_device)

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The inference (w, h) for a source of this size (:func:`pick_inference_size`)."""
        return pick_inference_size(width, height, self.short_side, self.max_size)

    def strengthen(self, state: StreamState, code: np.ndarray, strength: float, frame_bgr: np.ndarray) -> np.ndarray:
        """``code`` mixed with the stream's content code (see :meth:`StreamState.strengthen`)."""
        return state.strengthen(self.stylizer, code, strength, frame_bgr)

    # -- the path ------------------------------------------------------------------------------------
    def preprocess(self, frames: Sequence[np.ndarray], src_size: Optional[tuple[int, int]] = None) -> np.ndarray:
        """BGR frames (one size) -> RGB uint8 [B, h, w, 3] at the inference size.  ``src_size``
        (w, h): the source's size when the frames were already shrunk while decoding; the size
        rule is applied to it, not to the shrunk frames (rounding to multiples of 4 would drift)."""
        h, w = frames[0].shape[:2]
        size = self.size_for(*(src_size or (w, h)))
        w, h = size
        batch = np.empty((len(frames), h, w, 3), np.uint8)
        for i, f in enumerate(frames):  # OpenCV's channel swap: 40x numpy's reversed-stride copy
            cv2.cvtColor(resize(f, size), cv2.COLOR_BGR2RGB, dst=batch[i])
        return batch

    def infer(self, batch_rgb: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return self.stylizer.stylize(batch_rgb, codes)

    def submit(self, batch_rgb: np.ndarray, codes: np.ndarray) -> Pending:
        """:meth:`infer` for throughput (video files): may return before the batch is done."""
        return self.stylizer.submit(batch_rgb, codes)

    def postprocess(self, content_rgb: np.ndarray, styled_rgb: np.ndarray, src_size: tuple[int, int],
                    state: StreamState) -> list[np.ndarray]:
        """The stream's temporal filter at the inference size, then BGR at ``src_size`` (w, h);
        a source size other than the stream's last is a cut."""
        state.frame_size(src_size)
        if state.carry is not self.carry:
            state.use_carry(self.carry)
        return [resize(cv2.cvtColor(state.filter(c, s), cv2.COLOR_RGB2BGR), src_size)
                for c, s in zip(content_rgb, styled_rgb)]

    def __call__(self, frames: Sequence[np.ndarray], codes: np.ndarray, state: StreamState) -> list[np.ndarray]:
        """The whole path for a batch of BGR frames of one size; ``codes`` [100] or [B, 100]."""
        h, w = frames[0].shape[:2]
        with self.profile.step("preprocess"):
            batch = self.preprocess(frames)
        with self.profile.step("infer"):
            styled = self.infer(batch, codes)
        with self.profile.step("postprocess"):
            return self.postprocess(batch, styled, (w, h), state)
