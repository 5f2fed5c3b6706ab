"""Styles: finding style images, turning them into codes once, and mixing codes.

Why codes are cached on disk: a style code depends only on the style image's bytes and the style
network, so it is keyed on both (sha256 of the file + the model's identity); a changed image or
model recomputes, an unchanged one costs a file read.  Strength and blends are arithmetic on codes:
strength interpolates between the content's own code (0) and the style's (1, >1 extrapolates),
a blend is a weighted mean of several styles' codes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import MediaError, UserError
from ..io.images import IMAGE_EXTS, MIN_STYLE_SIDE, check_image_header, decode_image, read_image_bytes
from ..io.paths import glob_escape
from ..resources import SHIPPED_STYLES  # the styles/ folder we ship (checkout or installed package)
from .backends.base import CODE_SIZE, Stylizer, require_mixable

log = logging.getLogger(__name__)

CODE_CACHE_VERSION = "v1"  # bump when style preprocessing changes


@dataclass(frozen=True)
class Style:
    """A named style image."""

    name: str
    path: Path




def style_dirs(styles_dir: str | os.PathLike | None, uploads: str | os.PathLike | None = None) -> list[Path]:
    """Where style names are looked up: the configured folder (relative to the current folder: a
    user's own ``styles/``), then the styles that ship with the program (the checkout's ``styles/`` or
    the installed package's copy), so names work from any folder, then (``uploads``) the styles
    uploaded from the control page, by name only: they are never part of "every style"."""
    dirs = [Path(styles_dir)] if styles_dir is not None else []
    if SHIPPED_STYLES.is_dir() and all(d.resolve() != SHIPPED_STYLES for d in dirs if d.exists()):
        dirs.append(SHIPPED_STYLES)
    if uploads is not None:
        dirs.append(Path(uploads))
    return [d for d in dirs if d.is_dir()]


def find_style_images(spec: str | os.PathLike, styles_dir: str | os.PathLike | None = None,
                      uploads: str | os.PathLike | None = None) -> list[Style]:
    """Resolve a --style value: an image file, a folder of images, or a name in the styles folders
    (and among the uploaded styles)."""
    p = Path(spec)
    if not p.exists() and p.parent == Path("."):
        for d in style_dirs(styles_dir, uploads):
            matches = sorted(q for q in d.glob(glob_escape(p.name) + ".*") if q.suffix.lower() in IMAGE_EXTS)
            if matches:
                p = matches[0]
                break
            if (d / p.name).exists():
                p = d / p.name
                break
        else:
            if str(spec) == str(styles_dir) and style_dirs(styles_dir):
                p = style_dirs(styles_dir)[0]  # "all styles" when the configured folder is not here
    if not p.exists():
        known = ", ".join(s.name for d in style_dirs(styles_dir, uploads) for s in list_styles(d))
        hint = f" (known: {known}; `stylize styles list` shows them)" if known else ""
        raise MediaError(f"style not found: {spec}{hint}")
    if p.is_dir():
        styles = list_styles(p)
        if not styles:
            raise MediaError(f"style folder has no images ({', '.join(IMAGE_EXTS)}): {p}")
        return styles
    return [Style(p.stem, p)]


def check_style_files(styles: Iterable[Style]) -> None:
    """Each style image readable, of a format we read, 16x16 to 50 MP, from its header (no pixel
    decoded): a one-line MediaError naming the file otherwise.  Why: every command calls this on
    its styles before it opens a camera, a window or the network (which take seconds), so a bad
    style is said at once, not after the start; :meth:`StyleBank.code_for` keeps the same check
    for styles that arrive later (uploads, take_style)."""
    for style in styles:
        check_image_header(read_image_bytes(style.path), f"style {style.path}", MIN_STYLE_SIDE)


def list_styles(folder: str | os.PathLike | None) -> list[Style]:
    if folder is None or not Path(folder).is_dir():
        return []
    files = sorted(q for q in Path(folder).iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTS)
    return [Style(q.stem, q) for q in files]


MAX_CODE_ABS = 100.0  # real codes stay within about +-3 (the shipped paintings: -2.0 .. 2.9)


class StyleCodeCache:
    """On-disk cache of style codes: ``<dir>/<sha256(model id, version, image sha256)>.npy``."""

    def __init__(self, folder: Optional[Path]) -> None:
        self.folder = folder

    def key(self, image_bytes: bytes, model_id: str) -> str:
        h = hashlib.sha256()
        h.update(f"{model_id}|{CODE_CACHE_VERSION}|".encode())
        h.update(hashlib.sha256(image_bytes).digest())
        return h.hexdigest()

    def get(self, key: str) -> Optional[np.ndarray]:
        if self.folder is None:
            return None
        f = self.folder / (key + ".npy")
        try:
            code = np.load(f, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("style-code cache entry %s is unreadable: computing it again", f)
            return None
        # A damaged entry (NaN or huge values from a bad disk or a hand edit, a wrong length) gave
        # a black picture with exit 0, or a traceback: what a real code cannot be is computed anew.
        # (the unsplit hub module's "code" is its 256x256 style image in 0..1: that is kept too)
        image = code.ndim == 3 and code.shape[2] == 3 and code.dtype.kind == "f" and np.isfinite(code).all() \
            and float(code.min()) >= 0.0 and float(code.max()) <= 1.0
        if not image and (code.shape != (CODE_SIZE,) or code.dtype.kind != "f" or not np.isfinite(code).all()
                          or float(np.abs(code).max()) > MAX_CODE_ABS):
            log.warning("style-code cache entry %s is damaged: computing it again", f)
            return None
        return code.astype(np.float32, copy=False)

    def put(self, key: str, code: np.ndarray) -> None:
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=key, suffix=".tmp", dir=self.folder)
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, code, allow_pickle=False)
            os.replace(tmp, self.folder / (key + ".npy"))
        except OSError as exc:  # a read-only cache must not stop stylization
            log.warning("cannot write style-code cache in %s: %s", self.folder, exc)


class StyleBank:
    """Styles with their codes, computed once per (image, model) and cached on disk."""

    def __init__(self, stylizer: Stylizer, cache: StyleCodeCache) -> None:
        self.stylizer = stylizer
        self.cache = cache
        self.styles: list[Style] = []
        self.codes: list[np.ndarray] = []

    def code_for(self, style: Style) -> np.ndarray:
        """The style's code (cached); the image's size is checked from its header first, cached or
        not, so every way a style arrives (--style, the config, an upload) meets the same rule:
        at most 50 MP, and at least 16x16 (:data:`~realtime.io.images.MIN_STYLE_SIDE`)."""
        try:
            data = style.path.read_bytes()
        except OSError as exc:
            raise MediaError(f"cannot read style {style.path}: {exc.strerror or exc}") from None
        if not data:
            raise MediaError(f"style image is empty: {style.path}")
        check_image_header(data, f"style {style.path}", MIN_STYLE_SIDE)
        key = self.cache.key(data, self.stylizer.style_model_id)
        code = self.cache.get(key)
        if code is None:
            code = self.stylizer.style_code(decode_image(data, f"style {style.path}", min_side=MIN_STYLE_SIDE))
            self.cache.put(key, code)
            log.debug("style code computed for %s", style.path)
        return code

    def add(self, styles: Iterable[Style]) -> None:
        for s in styles:
            self.styles.append(s)
            self.codes.append(self.code_for(s))

    def __len__(self) -> int:
        return len(self.styles)


def blend_codes(codes: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean of style codes (weights need not sum to 1; they must not sum to 0)."""
    w = np.asarray(weights, np.float64)
    if len(codes) != len(w):
        raise ValueError("one weight per code")
    if np.any(w < 0) or w.sum() <= 0:
        raise UserError(f"blend weights must be >= 0 with a positive sum, got {list(weights)}")
    stacked = np.stack([np.asarray(c, np.float64).reshape(-1) for c in codes])
    return (w[:, None] * stacked).sum(0).astype(np.float32) / np.float32(w.sum())


def apply_strength(style_code: np.ndarray, content_code: Optional[np.ndarray], strength: float) -> np.ndarray:
    """Interpolate from the content's own code (0) to the style's (1); above 1 extrapolates."""
    if strength == 1.0 or content_code is None:
        return np.asarray(style_code, np.float32)
    return (strength * np.asarray(style_code, np.float32) + (1.0 - strength) * np.asarray(content_code, np.float32)).astype(np.float32)


# A blend weight is relative to --style's 1: 10 already gives the other style 91% of the mix, so
# anything larger (1e9) is a typo, not a wish; 0 would add nothing at all.
MAX_BLEND_WEIGHT = 10.0
BLEND_SYNTAX = "--blend takes STYLE:WEIGHT with a weight above 0 and at most 10, e.g. ink:0.5"


def parse_blend(items: Sequence[str]) -> list[tuple[str, float]]:
    """``STYLE:WEIGHT`` items; a missing, non-numeric or out-of-range weight is a one-line error
    that shows the syntax (a forgotten weight must not silently mean 1)."""
    out = []
    for item in items:
        name, sep, weight = item.rpartition(":")
        if not sep or not name or not weight.strip():
            raise UserError(f"{BLEND_SYNTAX}; got '{item}'")
        try:
            w = float(weight)
        except ValueError:
            raise UserError(f"{BLEND_SYNTAX}; got '{item}'") from None
        if not (math.isfinite(w) and 0 < w <= MAX_BLEND_WEIGHT):
            raise UserError(f"{BLEND_SYNTAX}; got '{item}' (weight {weight})")
        out.append((name, w))
    return out


def build_code(
    bank: StyleBank,
    style: Style,
    blend: Sequence[tuple[Style, float]] = (),
    strength: float = 1.0,
    content_code: Optional[np.ndarray] = None,
) -> np.ndarray:
    """The code a command applies: style (weight 1) blended with others, then strength."""
    code = bank.code_for(style)
    if blend:
        require_mixable(bank.stylizer, "--blend")
        code = blend_codes([code] + [bank.code_for(s) for s, _ in blend], [1.0] + [w for _, w in blend])
    if strength != 1.0:
        require_mixable(bank.stylizer, "--strength")
        code = apply_strength(code, content_code, strength)
    return code
