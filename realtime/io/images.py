"""Image reading, writing and sizing shared by every command.

Why a module of its own: the same rules apply everywhere (BGR from OpenCV, RGB into the network,
sizes rounded to multiples of 4 because the transfer network downsamples twice by 2, outputs
written atomically), and getting one of them wrong shows up as colour swaps or off-by-one sizes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import MediaError
from .paths import atomic_write_bytes

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
STYLE_SIZE = 256  # the style prediction network's input size
MULTIPLE = 4  # the transfer network needs H and W divisible by 4
MIN_SIDE = 16  # below this the network's reflect padding runs out of pixels after two stride-2 layers


def read_image(path: str | os.PathLike, bgr: bool = False) -> np.ndarray:
    """Read an image file as RGB (``bgr``: OpenCV's BGR, as the stylize stage takes frames) uint8
    [H, W, 3]; a clear MediaError for anything else."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"image not found: {p}")
    if p.is_dir():
        raise MediaError(f"expected an image file, got a folder: {p}")
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"cannot read {p}: {exc.strerror or exc}") from None
    if data.size == 0:
        raise MediaError(f"image file is empty: {p}")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise MediaError(f"not a readable image (corrupt or unsupported format): {p}")
    if img.ndim == 3 and img.shape[2] == 4:
        log.warning("%s has an alpha channel: the network works on colour only, the result is opaque", p)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)  # grey, 16-bit or alpha: as 8-bit BGR
    return img if bgr else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, rgb: np.ndarray, overwrite: bool = True, bgr: bool = False) -> Path:
    """Write RGB (``bgr``: BGR) uint8 atomically: encode in memory, temp file in the same folder,
    publish (without ``overwrite``, a file that appeared meanwhile is never replaced)."""
    p = Path(path)
    ext = p.suffix.lower() or ".png"
    if ext not in IMAGE_EXTS:
        raise MediaError(f"unsupported output image type '{ext}' for {p} (use one of {', '.join(IMAGE_EXTS)})")
    ok, buf = cv2.imencode(ext, rgb if bgr else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MediaError(f"could not encode {p}")
    return atomic_write_bytes(p, buf.tobytes(), overwrite)


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (w, h): area filter when shrinking (no aliasing), bilinear when growing."""
    h, w = img.shape[:2]
    if (w, h) == tuple(size):
        return img
    interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
    return cv2.resize(img, size, interpolation=interp)


def style_input(rgb: np.ndarray) -> np.ndarray:
    """TF Lite tutorial preprocessing: central square crop, area resize to 256x256, float [0,1]."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    crop = rgb[y : y + s, x : x + s]
    crop = cv2.resize(crop, (STYLE_SIZE, STYLE_SIZE), interpolation=cv2.INTER_AREA)
    return crop.astype(np.float32)[None] / 255.0
