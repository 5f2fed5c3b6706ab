"""Styles seen from the control page: thumbnails, and new styles uploaded from a phone.

Why here: an upload touches the styles folder, the style-code model and the running show at once,
and every step has a way to go wrong that must be a clear 4xx, never a crash: the bytes must be an
image (decoded, not trusted by name or type), the file is named by its content hash (no client
names, no path traversal, the same photo twice is one style), written atomically, its code is
computed once (and cached like every style), and only then does the show learn the new name, so
the inference worker never sees an index without a code.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from urllib.parse import quote
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from ..core.controller import Controller
from ..core.events import WEB
from ..core.styleset import StyleEntry
from ..errors import MediaError, UserError
from ..io.images import MIN_STYLE_SIDE, decode_image, read_image
from ..io.paths import atomic_write_bytes
from ..model.styles import Style

log = logging.getLogger(__name__)

THUMB_SIDE = 160

# Magic bytes -> the extension the file keeps (anything else that decodes is stored as PNG).
_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"BM", ".bmp"))


class UploadError(ValueError):
    """A rejected upload; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Added:
    name: str
    index: int
    path: Path
    new: bool


class StyleLibrary:
    """The show's styles for the page (paths for thumbnails) and the way to add one."""

    def __init__(
        self,
        controller: Controller,
        folder: Path,
        code_for: Callable[[Style], np.ndarray],
        max_bytes: int = 15 * 1024 * 1024,
    ) -> None:
        """The styles are the controller's :class:`~realtime.core.styleset.StyleSet` (with their
        files); uploads are stored in ``folder`` (the user's data folder, ``Config.upload_dir``: never
        the styles folder, whose every image is part of every later show) and coded with ``code_for``."""
        self.controller = controller
        self.styles = controller.styles
        self.folder = Path(folder)
        self._code_for = code_for
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # one upload at a time (the same photo twice is one style)

    def listing(self) -> list[dict[str, object]]:
        """The show's styles for the page, each marked ``uploaded`` when its file is in the upload folder.
        The thumbnail's address names the style: a slot that a taken style took over is a new
        address (the browser keeps thumbnails an hour)."""
        entries = self.styles.snapshot()
        current = self.controller.state.style_index
        return [{"index": i, "name": e.name, "current": i == current, "thumb": f"/api/styles/{i}/thumb.jpg?{quote(e.name)}",
                 "uploaded": self.is_upload(e.path)}
                for i, e in enumerate(entries)]

    def is_upload(self, path: Optional[Path]) -> bool:
        """Whether ``path`` is one of the uploaded styles (a file in the upload folder)."""
        try:
            return path is not None and path.resolve().parent == self.folder.resolve()
        except OSError:
            return False

    def thumbnail(self, index: int) -> Optional[bytes]:
        """A small JPEG of style ``index`` (made once, kept in the style set), or None for an unknown index."""
        entries = self.styles.snapshot()
        if not 0 <= index < len(entries):
            return None
        entry = entries[index]
        if entry.thumbnail is None:
            img = None
            if entry.path is not None:
                try:  # the shared reader: the same header check and pixel limit as every other image
                    img = read_image(entry.path, bgr=True)
                except MediaError as exc:
                    log.warning("no thumbnail for style %s: %s", entry.name, exc)
            if img is None:
                img = np.full((THUMB_SIDE, THUMB_SIDE, 3), 64, np.uint8)
            h, w = img.shape[:2]
            scale = THUMB_SIDE / min(h, w)
            img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            h, w = img.shape[:2]
            y, x = (h - THUMB_SIDE) // 2, (w - THUMB_SIDE) // 2
            img = img[max(0, y): max(0, y) + THUMB_SIDE, max(0, x): max(0, x) + THUMB_SIDE]
            entry = self.styles.update(index, thumbnail=cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
        return entry.thumbnail

    def add(self, data: bytes) -> Added:
        """Check, store and add an uploaded image as a style (call off the event loop: it runs the network)."""
        if len(data) > self.max_bytes:
            raise UploadError(f"the image is larger than {round(self.max_bytes / 2**20, 2):g} MB", 413)
        if not data:
            raise UploadError("the upload is empty: send the image bytes as the request body")
        try:  # the size is read from the header before anything is decoded (a small file may declare 30000x30000)
            img = decode_image(data, "the upload", bgr=True, min_side=MIN_STYLE_SIDE)
        except MediaError as exc:
            raise UploadError(str(exc)) from None
        digest = hashlib.sha256(data).hexdigest()[:12]
        ext = next((e for magic, e in _MAGIC if data.startswith(magic)), None)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            ext = ".webp"
        if ext is None:  # decodes, but in a format we do not keep as it is: store a PNG
            data, ext = cv2.imencode(".png", img)[1].tobytes(), ".png"
        name = f"upload-{digest}"
        with self._lock:
            known = self.styles.index_of(name)
            if known is not None:
                return Added(name, known, self.styles[known].path or Path(), False)
            path = self.folder / f"{name}{ext}"
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    atomic_write_bytes(path, data)
            except OSError as exc:
                raise UploadError(f"cannot store the style: {exc.strerror or exc}", 507) from None
            try:
                code = self._code_for(Style(name, path))
            except UserError as exc:  # decoded above, yet the style network refused it: not kept
                path.unlink(missing_ok=True)
                raise UploadError(f"cannot use this image as a style: {exc}", 422) from None
            index = self.controller.add_style(StyleEntry(name, path, code), origin=WEB)  # whole, code and all
        log.info("new style from the control page: %s (%dx%d, %d bytes)", path, img.shape[1], img.shape[0], len(data))
        return Added(name, index, path, True)
