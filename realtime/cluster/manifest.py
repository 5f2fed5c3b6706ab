"""The work folder of one input: its units, which are done, and whether the output is published.

Why: a batch on a cluster runs for hours and machines come and go, so a rerun of the same command
must redo only what is missing.  Each input gets a folder named by a fingerprint of everything
that decides its pixels (the source file's size and time, styles, model, settings): change any of
them and the old segments are not reused.  Only the driver writes the manifest, atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from ..io.paths import glob_escape
from ..pipeline.video import Span
from .plan import Unit

log = logging.getLogger(__name__)

VERSION = 1


def fingerprint(src: Path, dst: Path, settings: dict[str, Any]) -> str:
    """A short hash of the source file's identity, the output and the settings."""
    st = src.stat()
    ident = {"src": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "dst": str(dst.resolve()),
             "settings": settings}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Manifest:
    """``<work>/<stem>-<fingerprint>/manifest.json`` and the unit files beside it."""

    def __init__(self, folder: Path, src: Path, dst: Path) -> None:
        self.folder, self.src, self.dst = folder, src, dst
        self.path = folder / "manifest.json"
        self.units: list[Unit] = []
        self.done: dict[str, dict[str, Any]] = {}
        self.published: Optional[dict[str, Any]] = None

    @classmethod
    def open(cls, work: Path, src: Path, dst: Path, settings: dict[str, Any]) -> "Manifest":
        m = cls(work / f"{src.stem}-{fingerprint(src, dst, settings)}", src, dst)
        m._drop_outdated(work)
        if m.path.is_file():
            try:
                data = json.loads(m.path.read_text(encoding="utf-8"))
                if data.get("version") == VERSION:
                    m.units = [Unit(u["index"], Span(**u["span"]) if u["span"] else None, u["frames"]) for u in data["units"]]
                    m.done = data.get("done", {})
                    m.published = data.get("published")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("%s: unreadable manifest, starting this input again (%s)", m.path, exc)
                m.units, m.done, m.published = [], {}, None
        return m

    def _drop_outdated(self, work: Path) -> None:
        """Remove this input's work from runs with other settings (or an older source): it can
        never be used again, and segments of a film take gigabytes."""
        for old in work.glob(f"{glob_escape(self.src.stem)}-*"):
            if old == self.folder or not (old / "manifest.json").is_file():
                continue
            try:
                data = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if data.get("source") == str(self.src) and data.get("output") == str(self.dst):
                log.info("%s: removing the work of a run with other settings (%s)", self.src, old.name)
                shutil.rmtree(old, ignore_errors=True)

    # -- state ---------------------------------------------------------------------------------------
    def unit_path(self, unit: Unit) -> Path:
        return self.folder / (unit.name + (".mp4" if unit.span is not None else self.dst.suffix.lower()))

    def is_done(self, unit: Unit) -> bool:
        """Done in the manifest and its file still there, whole (same size)."""
        rec = self.done.get(unit.name)
        if rec is not None and rec.get("frames") == 0:
            return True  # decoded nothing (damaged there): no file to keep
        p = self.unit_path(unit)
        return rec is not None and p.is_file() and p.stat().st_size == rec.get("bytes")

    def output_current(self) -> bool:
        """The output was published by this work and is still the file we wrote."""
        pub = self.published
        return bool(pub) and self.dst.is_file() and self.dst.stat().st_size == pub.get("bytes")

    def mark_done(self, unit: Unit, frames: int, first_pts: Optional[int], short: bool = False, audio: str = "") -> None:
        """``short``: fewer frames decoded than planned (damaged input); ``audio``: how a whole
        file's sound went.  Raises OSError when the unit's file is not where it should be."""
        size = self.unit_path(unit).stat().st_size if frames else None  # a segment that decoded nothing has no file
        self.done[unit.name] = {"frames": frames, "first_pts": first_pts, "bytes": size, "short": short, "audio": audio}
        self.save()

    def mark_published(self) -> None:
        """Record the output and drop the unit files (only the small manifest stays, for reruns)."""
        self.published = {"bytes": self.dst.stat().st_size}
        for unit in self.units:
            self.unit_path(unit).unlink(missing_ok=True)
        self.done = {}
        self.save()

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {
            "version": VERSION, "source": str(self.src), "output": str(self.dst),
            "units": [{"index": u.index, "span": asdict(u.span) if u.span else None, "frames": u.frames} for u in self.units],
            "done": self.done, "published": self.published,
        }
        tmp = self.path.with_name(f".manifest.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
