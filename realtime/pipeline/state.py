"""What one stream carries from one frame to the next, in one object with one way to start over.

Why: the content's own code (for the strength mix) and the temporal filter's memory used to live
inside the stage, reached into from outside (``stage.temporal.amount = ...``) and reset in six
places.  A :class:`StreamState` is owned by the one object that runs a stream (the live pipeline,
a video file's run, an image); nobody else touches it.  Every reason to forget the past goes
through :meth:`StreamState.cut`, and is counted by reason (the tests and the logs read them).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Optional, Protocol

import cv2
import numpy as np

from ..effects.stability import Carry, FlowStabilizer
from ..model.backends.base import Stylizer
from ..model.styles import apply_strength

log = logging.getLogger(__name__)

# Why a stream starts over.  All of them forget the temporal filter's memory; only a new stream
# (another file, image, a source that came back, a restarted worker) forgets the content code.
STYLE = "style"  # a style switch: nothing of the old style is carried along
SCENE = "scene"  # a shot change (found by the stabiliser itself)
SIZE = "size"  # the source changed resolution
PLACEHOLDER = "placeholder"  # the source is away: its stand-in is shown as it is
STREAM = "stream"  # a new stream: a file, an image, a reopened source, a restarted worker
REASONS = (STYLE, SCENE, SIZE, PLACEHOLDER, STREAM)


class TemporalFilter(Protocol):
    """Per-stream filter between consecutive stylized frames (see :mod:`realtime.effects.stability`)."""

    def __call__(self, content: np.ndarray, styled: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


class StreamState:
    """The content code (computed once per stream) and the temporal filter (stability)."""

    def __init__(self, stability: float = 0.0, temporal: Optional[TemporalFilter] = None) -> None:
        self.temporal: Optional[TemporalFilter] = temporal
        self.carry: Optional[Carry] = None  # the stage's (None: the stabiliser's own, OpenCV)
        self.stability = 0.0
        if temporal is None:
            self.set_stability(stability)
        self._content_code: Optional[np.ndarray] = None
        self._size: Optional[tuple[int, int]] = None
        self.cuts: Counter[str] = Counter()

    def set_stability(self, amount: float) -> None:
        """A new level keeps what the stabiliser holds; 0 turns it off (and forgets)."""
        if amount > 0 and isinstance(self.temporal, FlowStabilizer):
            self.temporal.amount = amount
        else:
            self.temporal = FlowStabilizer(amount, carry=self.carry) if amount > 0 else None
        self.stability = amount

    def use_carry(self, carry: Optional[Carry]) -> None:
        """Where the stabiliser's full-size half runs (the stage's choice for its backend)."""
        self.carry = carry
        if isinstance(self.temporal, FlowStabilizer) and carry is not None:
            self.temporal.use_carry(carry)

    def cut(self, reason: str) -> None:
        """Start over: the temporal memory always; the content code only for a new stream."""
        if reason not in REASONS:
            raise ValueError(f"unknown cut reason {reason!r}")
        self.cuts[reason] += 1
        if self.temporal is not None:
            self.temporal.reset()
        if reason == STREAM:
            self._content_code = None
            self._size = None

    def frame_size(self, size: tuple[int, int]) -> None:
        """The source size of the frames about to be filtered: a change is a cut."""
        if self._size is not None and size != self._size:
            self.cut(SIZE)
        self._size = size

    def strengthen(self, stylizer: Stylizer, code: np.ndarray, strength: float, frame_bgr: np.ndarray) -> np.ndarray:
        """Mix ``code`` with the content's own code (computed once per stream, from ``frame_bgr``)."""
        if strength == 1.0 or not stylizer.mixable_codes:
            return code
        if self._content_code is None:
            self._content_code = stylizer.style_code(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        return apply_strength(code, self._content_code, strength)

    def filter(self, content_rgb: np.ndarray, styled_rgb: np.ndarray) -> np.ndarray:
        """The temporal filter at the inference size (a shot change it finds counts as a cut)."""
        if self.temporal is None:
            return styled_rgb
        before = getattr(self.temporal, "cuts", 0)
        out = self.temporal(content_rgb, styled_rgb)
        if getattr(self.temporal, "cuts", 0) != before:
            self.cuts[SCENE] += 1
        return out
