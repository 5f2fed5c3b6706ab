"""The one stylize stage: the path every frame takes, in every mode (live, video, image).

Why one stage (Ultralytics' ``BasePredictor``: source -> preprocess -> inference -> postprocess):
the inference-size rule, the strength mix, the temporal filter and the colour handling used to be
written three times with three different size rules.  Here they are written once:

* ``preprocess``: BGR frames -> the inference size -> RGB uint8 batch.  Resizing happens *before*
  the colour conversion, so the conversion touches the small picture only, and the channel swaps
  are OpenCV's (0.03 ms for a 684x384 frame; numpy's ``[..., ::-1]`` copy took 1 ms).
* ``infer``: the backend's ``stylize`` (RGB uint8 in and out).  ``preprocess`` takes BGR frames
  and the size only, so it is the one place to move into a backend's graph (the GPU) later.
* ``postprocess``: the temporal filter at the inference size, then back to BGR at the source size.

Per-stream state (the size, the content's own code for the strength mix, the temporal filter's
memory) lives here; ``reset`` starts a new stream (a new file, a new image, a cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Protocol

import cv2
import numpy as np

from ..io.images import inference_size, resize
from ..model.backends.base import Stylizer, require_mixable
from ..model.styles import apply_strength
from .profile import Profile


class TemporalFilter(Protocol):
    """Per-stream filter between consecutive stylized frames (see :mod:`realtime.effects.stability`)."""

    def __call__(self, content: np.ndarray, styled: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


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
    return inference_size(width, height, side)  # which applies the 16-pixel minimum


def check_mixable(stylizer: Stylizer, strength: float, n_styles: int) -> None:
    """At job start, once: strength and style mixing need backends with 100-number codes."""
    if strength != 1.0:
        require_mixable(stylizer, "--strength")
    if n_styles > 1:
        require_mixable(stylizer, "several styles (switching, blends)")


class StylizeStage:
    """BGR frames of one source -> stylized BGR frames of the same size."""

    def __init__(
        self,
        stylizer: Stylizer,
        short_side: int = 0,
        max_size: int = 0,
        temporal: Optional[TemporalFilter] = None,
        profile: Optional[Profile] = None,
    ) -> None:
        self.stylizer = stylizer
        self.profile = profile or Profile()
        self.short_side = short_side
        self.max_size = max_size
        self.temporal = temporal
        self._src_size: Optional[tuple[int, int]] = None
        self.size: Optional[tuple[int, int]] = None
        self._content_code: Optional[np.ndarray] = None

    @property
    def src_size(self) -> Optional[tuple[int, int]]:
        """(width, height) of the frames :meth:`preprocess` saw last."""
        return self._src_size

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        return pick_inference_size(width, height, self.short_side, self.max_size)

    def reset(self) -> None:
        """A new stream: forget the content code and the temporal filter's memory."""
        self._content_code = None
        self._src_size = self.size = None
        if self.temporal is not None:
            self.temporal.reset()

    def set_temporal(self, temporal: Optional[TemporalFilter]) -> None:
        self.temporal = temporal

    def strengthen(self, code: np.ndarray, strength: float, frame_bgr: np.ndarray) -> np.ndarray:
        """Mix ``code`` with the content's own code (computed once per stream, from ``frame_bgr``)."""
        if strength == 1.0 or not self.stylizer.mixable_codes:
            return code
        if self._content_code is None:
            self._content_code = self.stylizer.style_code(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        return apply_strength(code, self._content_code, strength)

    # -- the path ------------------------------------------------------------------------------------
    def preprocess(self, frames: Sequence[np.ndarray], src_size: Optional[tuple[int, int]] = None) -> np.ndarray:
        """BGR frames (one size) -> RGB uint8 [B, h, w, 3] at the inference size.  ``src_size``
        (w, h): the source's size when the frames were already shrunk while decoding; the size
        rule is applied to it, not to the shrunk frames (rounding to multiples of 4 would drift)."""
        h, w = frames[0].shape[:2]
        src = src_size or (w, h)
        if src != self._src_size:  # first frame, or the source changed resolution
            if self._src_size is not None and self.temporal is not None:
                self.temporal.reset()
            self._src_size = src
            self.size = self.size_for(*src)
        w, h = self.size
        batch = np.empty((len(frames), h, w, 3), np.uint8)
        for i, f in enumerate(frames):  # OpenCV's channel swap: 40x numpy's reversed-stride copy
            cv2.cvtColor(resize(f, self.size), cv2.COLOR_BGR2RGB, dst=batch[i])
        return batch

    def infer(self, batch_rgb: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return self.stylizer.stylize(batch_rgb, codes)

    def postprocess(self, content_rgb: np.ndarray, styled_rgb: np.ndarray,
                    src_size: Optional[tuple[int, int]] = None) -> list[np.ndarray]:
        """Temporal filter at the inference size, then BGR at the source size.  ``src_size``
        (width, height): the frames' own size, given when this runs on a thread of its own
        (video files), since :meth:`preprocess` may already be at the next batch."""
        w, h = src_size or self._src_size  # type: ignore[misc]
        out = []
        for c, s in zip(content_rgb, styled_rgb):
            if self.temporal is not None:
                s = self.temporal(c, s)
            out.append(resize(cv2.cvtColor(s, cv2.COLOR_RGB2BGR), (w, h)))
        return out

    def __call__(self, frames: Sequence[np.ndarray], codes: np.ndarray) -> list[np.ndarray]:
        """The whole path for a batch of BGR frames of one size; ``codes`` [100] or [B, 100]."""
        with self.profile.step("preprocess"):
            batch = self.preprocess(frames)
        with self.profile.step("infer"):
            styled = self.infer(batch, codes)
        with self.profile.step("postprocess"):
            return self.postprocess(batch, styled)
