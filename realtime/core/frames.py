"""What travels between pipeline stages.

Frames are BGR uint8 from the source to the outputs (OpenCV's and FFmpeg's native order, so no
stage converts twice); only the stylize stage converts to RGB, at the inference size, where it is
cheapest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """A captured frame: its sequence number, BGR uint8 pixels and capture time (monotonic s).

    ``placeholder`` marks a stand-in picture from a supervised source while the real one is away:
    it is shown as it is, never stylized.
    """

    index: int
    image: np.ndarray
    t_capture: float
    placeholder: bool = False


@dataclass
class Styled:
    """A stylized frame ready for the outputs (BGR, at the capture size)."""

    index: int
    image: np.ndarray
    original: np.ndarray
    t_capture: float
    infer_s: float
    style: str
    strength: float
    placeholder: bool = False
