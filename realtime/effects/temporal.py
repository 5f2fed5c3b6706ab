"""The old temporal smoothing (``--smooth`` before flow-guided stability), kept as the baseline
that ``benchmarks/stability.py`` measures :mod:`realtime.effects.stability` against.

The network stylizes each frame on its own, so camera noise and small movements make textures
shimmer: the most common complaint about live style transfer.  Where the *input* pixel did not
change, we keep part of the previous *output* pixel; where it changed (motion), the new output wins.
Some artists want the jitter, so the amount is a control (``t`` key live, ``--smooth`` for files)
and off by default.  Cost: a few array operations at the inference size.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np


class TemporalSmoother:
    """``out = styled + a * exp(-|dI| / tau) * (prev_out - styled)`` per pixel.

    ``dI`` is the blurred change of the input's brightness: sensor noise (a few levels) keeps most
    of the previous output, real motion (tens of levels) takes the new one.
    """

    def __init__(self, amount: float = 0.0, tau: float = 20.0) -> None:
        self.amount = float(min(0.95, max(0.0, amount)))
        self.tau = tau
        self._prev_in: Optional[np.ndarray] = None
        self._prev_out: Optional[np.ndarray] = None

    def reset(self) -> None:
        self._prev_in = self._prev_out = None

    def __call__(self, content: np.ndarray, styled: np.ndarray) -> np.ndarray:
        """content and styled: uint8 [H, W, 3] of the same size (the inference size)."""
        if self.amount <= 0.0:
            self.reset()
            return styled
        gray = cv2.cvtColor(content, cv2.COLOR_RGB2GRAY).astype(np.float32)
        if self._prev_in is None or self._prev_in.shape != gray.shape:
            self._prev_in, self._prev_out = gray, styled.astype(np.float32)
            return styled
        change = cv2.GaussianBlur(np.abs(gray - self._prev_in), (5, 5), 0)
        keep = self.amount * np.exp(-change / self.tau)[..., None]
        out = styled.astype(np.float32)
        out += keep * (self._prev_out - out)
        self._prev_in, self._prev_out = gray, out
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def shimmer(outputs: list[np.ndarray]) -> float:
    """Mean |O_t - O_t-1| in 8-bit levels: on a still scene (only sensor noise changes), all of it
    is flicker.  (The frame-difference consistency of the literature, |dO - dI|, is floored by the
    input noise itself there, so it cannot show the improvement.)"""
    diffs = [np.abs(b.astype(np.float32) - a.astype(np.float32)).mean() for a, b in zip(outputs, outputs[1:])]
    return float(np.mean(diffs)) if diffs else 0.0
