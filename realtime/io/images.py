"""Image reading, writing and sizing shared by every command.

Why a module of its own: the same rules apply everywhere (BGR from OpenCV, RGB into the network,
sizes rounded to multiples of 4 because the transfer network downsamples twice by 2, outputs
written atomically), and getting one of them wrong shows up as colour swaps or off-by-one sizes.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ..errors import MediaError
from .paths import atomic_write_bytes

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
STYLE_SIZE = 256  # the style prediction network's input size
MULTIPLE = 4  # the transfer network needs H and W divisible by 4
MIN_SIDE = 16  # below this the network's reflect padding runs out of pixels after two stride-2 layers
# Every image we decode (content, style, upload, closed-hours picture) is at most this many pixels:
# 50 MP is more than any camera's photo, and a decoded 50 MP image is 150 MB; a 1 KB file can declare
# 30000x30000 (2.7 GB decoded), so the size is read from the file's header before any decoding.
# realtime/__init__.py hands the same limit to OpenCV (OPENCV_IO_MAX_IMAGE_PIXELS) as a second guard.
MAX_PIXELS = 50_000_000
# A style image smaller than this gives the style network (which scales it to 256x256) next to no
# texture: the result is a washed-out grey.  One rule for --style, config styles and uploads.
MIN_STYLE_SIDE = 16
# The largest file read for an image: 50 MP of 16-bit RGBA without compression and its header
# (TIFF can hold that), so no image we decode is refused; beyond it, a file is read for nothing.
MAX_FILE_BYTES = 8 * MAX_PIXELS + (1 << 20)
FORMATS = "JPEG, PNG, WebP, BMP, GIF, TIFF"  # what header_size reads (and so what we decode)


def _u16(b: bytes, at: int, order: str = "big") -> int:
    return int.from_bytes(b[at:at + 2], order)


def _u32(b: bytes, at: int, order: str = "big") -> int:
    return int.from_bytes(b[at:at + 4], order)


def _jpeg_size(data: bytes) -> Optional[tuple[int, int]]:
    """The frame header (SOFn) of a JPEG: the size libjpeg will allocate for."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        length = _u16(data, i + 2)
        if length < 2:
            return None
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if i + 9 > n:
                return None
            return _u16(data, i + 7), _u16(data, i + 5)
        i += 2 + length
    return None


def _webp_size(data: bytes) -> Optional[tuple[int, int]]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = _u32(data, 21, "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return _u16(data, 26, "little") & 0x3FFF, _u16(data, 28, "little") & 0x3FFF
    return None


def _tiff_size(data: bytes) -> Optional[tuple[int, int]]:
    order = "little" if data[:2] == b"II" else "big"
    ifd = _u32(data, 4, order)
    if ifd + 2 > len(data):
        return None
    found: dict[int, int] = {}
    for k in range(_u16(data, ifd, order)):
        at = ifd + 2 + 12 * k
        if at + 12 > len(data):
            break
        tag, kind = _u16(data, at, order), _u16(data, at + 2, order)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            found[tag] = _u16(data, at + 8, order) if kind == 3 else _u32(data, at + 8, order)
    return (found[256], found[257]) if len(found) == 2 else None


def header_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) as the file's header declares it, read without decoding a pixel; None for a
    format we do not read (see :data:`FORMATS`) or a header cut short.

    Why our own few lines: ``cv2.imdecode`` allocates whatever the header says before it looks at
    the pixels, has no header-only mode, and Pillow is not a dependency."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return (_u32(data, 16), _u32(data, 20)) if len(data) >= 24 and data[12:16] == b"IHDR" else None
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_size(data)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return _u16(data, 6, "little"), _u16(data, 8, "little")
    if data[:2] == b"BM" and len(data) >= 26:
        if _u32(data, 14, "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
            return _u16(data, 18, "little"), _u16(data, 20, "little")
        if len(data) >= 26:
            w = int.from_bytes(data[18:22], "little", signed=True)
            h = int.from_bytes(data[22:26], "little", signed=True)  # negative: rows top-down
            return abs(w), abs(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:4] in (b"II*\x00", b"MM\x00*") and len(data) >= 8:
        return _tiff_size(data)
    return None


def check_image_header(data: bytes, name: str, min_side: int = 1) -> tuple[int, int]:
    """The declared (width, height) of image bytes, checked before any decoding: a format we read,
    at most :data:`MAX_PIXELS`, each side at least ``min_side``; else a one-line MediaError that
    names ``name`` (a path, "the upload", ...)."""
    size = header_size(data)
    if size is None:
        raise MediaError(f"not a readable image (corrupt, or not one of {FORMATS}): {name}")
    w, h = size
    if w <= 0 or h <= 0:
        raise MediaError(f"not a readable image (its header says {w}x{h} pixels): {name}")
    if w * h > MAX_PIXELS:
        raise MediaError(f"{name} is {w}x{h} pixels ({_megapixels(w * h)} MP): images of at most "
                         f"{MAX_PIXELS / 1e6:.0f} MP are read; scale it down first")
    if min(w, h) < min_side:
        raise MediaError(f"{name} is {w}x{h} pixels: a style image needs at least {min_side}x{min_side}")
    return w, h


def decode_image(data: bytes, name: str, bgr: bool = False, min_side: int = 1) -> np.ndarray:
    """Image bytes -> RGB (``bgr``: OpenCV's BGR) uint8 [H, W, 3], the header checked first
    (:func:`check_image_header`): the one decoder every reader goes through (files, uploads)."""
    if not data:
        raise MediaError(f"image is empty: {name}")
    check_image_header(data, name, min_side)
    buf = np.frombuffer(data, np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if img is not None and img.ndim == 3 and img.shape[2] == 4:
            log.warning("%s has an alpha channel: the network works on colour only, the result is opaque", name)
        if img is not None and (img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3):
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # grey, 16-bit or alpha: as 8-bit BGR
    except cv2.error:  # OpenCV's own pixel limit (OPENCV_IO_MAX_IMAGE_PIXELS), or a decoder's refusal
        img = None
    if img is None or img.size == 0:
        raise MediaError(f"not a readable image (corrupt or unsupported format): {name}")
    h, w = img.shape[:2]
    if h * w > MAX_PIXELS or min(h, w) < min_side:  # a header that lied: the same rule, after the fact
        raise MediaError(f"{name} decodes to {w}x{h} pixels, outside {min_side}x{min_side} .. {MAX_PIXELS / 1e6:.0f} MP")
    return img if bgr else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _megapixels(pixels: int) -> str:
    """``50.4`` (not ``50``, which reads as within the limit it is refused for), ``900``."""
    return f"{pixels / 1e6:.1f}".removesuffix(".0")


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes, with one-line errors for what is not an image file (missing, a folder, empty)."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"image not found: {p}")
    if p.is_dir():
        raise MediaError(f"expected an image file, got a folder: {p}")
    try:
        if not stat.S_ISREG(p.stat().st_mode):
            # /dev/urandom as a style was read until the OOM killer came, deaf to Ctrl-C; a pipe is
            # read more than once (its header, then its pixels) and blocked on the second read
            raise MediaError(f"not an image file: {p} (a device, pipe or socket)")
        with open(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise MediaError(f"cannot read {p}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise MediaError(f"{p} is over {MAX_FILE_BYTES // 10**6} MB, too large for an image of at most {MAX_PIXELS / 1e6:.0f} MP")
    if not data:
        raise MediaError(f"image file is empty: {p}")
    return data


def read_image(path: str | os.PathLike, bgr: bool = False, min_side: int = 1) -> np.ndarray:
    """Read an image file as RGB (``bgr``: OpenCV's BGR, as the stylize stage takes frames) uint8
    [H, W, 3]: its header checked before decoding (:func:`decode_image`); a clear MediaError for
    anything else.  ``min_side``: :data:`MIN_STYLE_SIDE` for style images."""
    return decode_image(read_image_bytes(path), str(path), bgr, min_side)


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
