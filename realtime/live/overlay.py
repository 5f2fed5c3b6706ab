"""What the live window draws on top of the picture: the stats overlay, the help card, the
start-up card.

Text sits on a dark translucent panel so it stays readable on any picture, bright or dark.  The
window hands these functions the picture at the size it is shown (the screen in kiosk and
fullscreen), so text is drawn once at its final size: never scaled, never cut off.  OpenCV's
Hershey fonts are proportional, so columns are placed by measuring text (``cv2.getTextSize``), not
by padding with spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_SCALE = 0.3  # below this Hershey text is no longer readable: a panel that still does not fit is cut
COLUMN_GAP = 2.0  # space between columns, in multiples of the font's height

#: A panel row: one text, or cells drawn as aligned columns.
Row = Union[str, Sequence[str]]


@dataclass(frozen=True)
class PanelLayout:
    """Where :func:`draw_panel` puts things: the font, the box, and each cell's text and baseline origin."""

    scale: float
    thick: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    cells: list[tuple[str, tuple[int, int]]]


def _cells(row: Row) -> list[str]:
    return [row] if isinstance(row, str) else list(row)


def panel_layout(size: tuple[int, int], rows: Sequence[Row], origin: tuple[int, int] = (8, 8),
                 scale: float | None = None) -> PanelLayout:
    """Lay out ``rows`` on a picture of ``size`` (width, height): the scale follows the picture's
    height and shrinks (to :data:`MIN_SCALE`) until the widest row fits beside ``origin``; each
    column starts where the widest cell of the column before it ends, plus a gap."""
    w, h = size
    x0, y0 = origin
    table = [_cells(r) for r in rows]
    ncols = max(len(c) for c in table)
    scale = scale or max(0.4, min(0.8, h / 900))

    def measure(sc: float) -> tuple[int, list[int], int, int]:
        th = 1 if sc < 0.6 else 2
        widths = [0] * ncols
        height = 0
        for cells in table:
            for i, text in enumerate(cells):
                (tw, tht), _ = cv2.getTextSize(text, FONT, sc, th)
                widths[i] = max(widths[i], tw)
                height = max(height, tht)
        gap = int(round(COLUMN_GAP * height / 2)) * 2
        total = sum(widths) + gap * (ncols - 1) + 16
        return th, widths, height, total

    thick, widths, text_h, total = measure(scale)
    while total > w - x0 and scale > MIN_SCALE:
        scale = max(MIN_SCALE, scale * 0.9)
        thick, widths, text_h, total = measure(scale)
    gap = int(round(COLUMN_GAP * text_h / 2)) * 2
    starts = [x0 + 8]
    for cw in widths[:-1]:
        starts.append(starts[-1] + cw + gap)
    line_h = text_h + int(10 * scale) + 2
    box = (x0, y0, min(w, x0 + total), min(h, y0 + line_h * len(table) + 10))
    cells = []
    for i, row in enumerate(table):
        y = y0 + 6 + line_h * (i + 1) - int(6 * scale)
        cells += [(text, (starts[j], y)) for j, text in enumerate(row)]
    return PanelLayout(scale, thick, box, cells)


def draw_panel(img: np.ndarray, lines: Sequence[Row], origin: tuple[int, int] = (8, 8), scale: float | None = None) -> None:
    """Draw text rows on a dark translucent box, in place (BGR uint8); a row of several cells is
    drawn as aligned columns (see :func:`panel_layout`)."""
    if not lines:
        return
    h, w = img.shape[:2]
    layout = panel_layout((w, h), lines, origin, scale)
    x0, y0, x1, y1 = layout.box
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken to 40%
    for text, at in layout.cells:
        cv2.putText(img, text, at, FONT, layout.scale, (255, 255, 255), layout.thick, cv2.LINE_AA)


def card(size: tuple[int, int], title: str, lines: Sequence[str] = ()) -> np.ndarray:
    """A dark picture of ``size`` (width, height) with a title and a few lines, centred: what the
    window and the preview show before the first stylized frame (BGR uint8)."""
    w, h = size
    img = np.full((h, w, 3), 24, np.uint8)
    scale = max(0.5, min(1.4, h / 500))
    rows = [(title, scale, 2 if scale >= 0.8 else 1, (255, 255, 255))]
    rows += [(line, scale * 0.6, 1, (170, 170, 170)) for line in lines]
    fitted = []
    for text, sc, th, colour in rows:
        while cv2.getTextSize(text, FONT, sc, th)[0][0] > w - 16 and sc > MIN_SCALE:
            sc *= 0.9
        (tw, tht), _ = cv2.getTextSize(text, FONT, sc, th)
        fitted.append((text, sc, th, colour, tw, tht))
    gap = int(14 * scale)
    total = sum(f[5] for f in fitted) + gap * (len(fitted) - 1)
    y = (h - total) // 2
    for text, sc, th, colour, tw, tht in fitted:
        y += tht
        cv2.putText(img, text, (max(8, (w - tw) // 2), y), FONT, sc, colour, th, cv2.LINE_AA)
        y += gap
    return img


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
