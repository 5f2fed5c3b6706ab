"""What the live window draws on top of the picture: the stats overlay and the help card.

Text sits on a dark translucent panel so it stays readable on any picture, bright or dark.
"""

from __future__ import annotations

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_panel(img: np.ndarray, lines: list[str], origin: tuple[int, int] = (8, 8), scale: float | None = None) -> None:
    """Draw text lines on a dark translucent box, in place (BGR uint8)."""
    if not lines:
        return
    h, w = img.shape[:2]
    scale = scale or max(0.4, min(0.8, h / 900))
    thick = 1 if scale < 0.6 else 2
    sizes = [cv2.getTextSize(l, FONT, scale, thick)[0] for l in lines]
    line_h = max(s[1] for s in sizes) + int(10 * scale) + 2
    box_w = min(w - origin[0], max(s[0] for s in sizes) + 16)
    box_h = min(h - origin[1], line_h * len(lines) + 10)
    x0, y0 = origin
    roi = img[y0 : y0 + box_h, x0 : x0 + box_w]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken to 40%
    for i, line in enumerate(lines):
        y = y0 + 6 + line_h * (i + 1) - int(6 * scale)
        cv2.putText(img, line, (x0 + 8, y), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)


def compose(styled: np.ndarray, original: np.ndarray | None, side_by_side: bool, mirror: bool) -> np.ndarray:
    """The picture to show: stylized, or original | stylized; mirrored like a selfie when asked.

    Side by side keeps the frame's own size (each half scaled to half the width, letterboxed), so
    it fits wherever the single picture fitted and recordings keep one size; mirroring flips each
    half on its own, so the original stays on the left.
    """
    if mirror:
        styled = cv2.flip(styled, 1)
        original = cv2.flip(original, 1) if original is not None else None
    if not (side_by_side and original is not None):
        return np.ascontiguousarray(styled)
    h, w = styled.shape[:2]
    half_w = w // 2
    half_h = max(2, int(round(h * half_w / w)))
    out = np.zeros_like(styled)
    y = (h - half_h) // 2
    out[y : y + half_h, :half_w] = cv2.resize(original, (half_w, half_h), interpolation=cv2.INTER_AREA)
    out[y : y + half_h, half_w : 2 * half_w] = cv2.resize(styled, (half_w, half_h), interpolation=cv2.INTER_AREA)
    return out
