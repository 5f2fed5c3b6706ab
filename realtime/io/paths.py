"""Output files: checked before any work, written to a temp file, published without clobbering.

Why: nothing the user made may be lost or half-written.  An output location that cannot be
written is reported in one line before minutes of work are spent; every file is written under a
hidden temp name beside its target and then *published* without clobbering another process's file
(:mod:`realtime.io.parts`: the temp names, read back, and publishing).  Temp names carry our
process id and host, so a later run can tell the leftovers of a killed one (SIGKILL, power loss)
from those of a process that is still writing, here or on another machine that shares the folder
(a cluster's work folder); :mod:`realtime.io.recovery` deals with them when the folder is next
written (:func:`temp_path_for` calls it): a live recording is recovered, any other temp file removed.

This is the module the rest of the package writes through: the names of those two are found here
too, as they were when all three were one module.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from .parts import (FILE_MODE, HOST, NAME_BYTES, RECOVERABLE, SOURCE_TAG, TIMELINE_TAG, OutputError, Part, glob_escape, new_temp,
                    parse_part, publish, shorten, source_path, timeline_path)
from .recovery import (clean_stale_parts, recover_part, recover_recording, recovered_name, remove_stale_parts,
                       stale_parts, sweep_once)

# The temp files' names and publishing (.parts) and the recovery of what killed runs left (.recovery)
# were all made here once: their names are still found here (``from realtime.io.paths import publish``).
__all__ = ["FILE_MODE", "HOST", "NAME_BYTES", "RECOVERABLE", "SOURCE_TAG", "TIMELINE_TAG", "OutputError", "Part", "glob_escape",
           "parse_part", "publish", "source_path", "timeline_path", "clean_stale_parts", "recover_part",
           "recover_recording", "recovered_name", "remove_stale_parts", "stale_parts", "MAX_LABEL_BYTES",
           "output_label", "derived_name", "check_distinct_outputs", "check_output_dir", "check_output_file", "temp_path_for", "sync_folder",
           "atomic_write_bytes"]

log = logging.getLogger(__name__)

# Longest style part of a derived output name, in bytes: file names end at 255 bytes, and the
# content's own name and the extension need room too.
MAX_LABEL_BYTES = 80


def output_label(names: Sequence[str], max_bytes: int = MAX_LABEL_BYTES) -> str:
    """The style part of an output name when a run uses several styles (a blend, --switch-every):
    every name, joined by ``+`` (``waves+dots``), so the file says what made it.  Longer than
    ``max_bytes``: cut, with a short hash of the whole label, so two long combinations that share a
    beginning still get two names."""
    return shorten("+".join(names), max_bytes)


def derived_name(folder: Path, stem: str, label: str, suffix: str) -> Path:
    """``folder/STEM-LABEL.SUFFIX``, the name a result gets from its content and style; a long
    content name is cut (with a hash) so the whole stays a legal file name, which the 80-byte cut
    of the label alone did not make it."""
    room = NAME_BYTES - len(os.fsencode(f"-{label}{suffix}"))
    return Path(folder) / f"{shorten(stem, room)}-{label}{suffix}"


def check_distinct_outputs(results: Sequence[tuple[Path, str]], hint: str) -> None:
    """``(output, what makes it)`` for every result of a run: two results with one name are an error
    now, in one line, not a file that says "exists" after the first was written (or, with
    ``--overwrite``, a first result silently replaced by the second: ``clip.mp4`` and ``clip.mkv``
    in one folder both make ``clip-waves.mp4``)."""
    seen: dict[str, str] = {}
    for out, what in results:
        key = os.path.abspath(out)
        if key in seen:
            raise OutputError(f"two results would both be written to {out} ({seen[key]}, {what}): {hint}")
        seen[key] = what


def check_output_dir(folder: Path, what: str = "output folder", create: bool = True) -> None:
    """Fail now, in one line, if files cannot be created in ``folder`` (created if missing and
    ``create``; otherwise only checked, so a folder that may never be needed is not made)."""
    folder = Path(folder)
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputError(f"cannot write to {what} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to {what} {folder}: no permission to write in {existing}")
    if not create:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {what} {folder}: {exc.strerror or exc}") from None


def check_output_file(path: Path, overwrite: bool = False, what: str = "output") -> None:
    """The checks that can be made before any work: the folder, an existing file, a folder in the way."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists (use --overwrite to replace it)")
    check_output_dir(path.parent, f"the folder of {what}")


def temp_path_for(path: Path, recoverable: bool = False) -> Path:
    """A fresh hidden temp file beside ``path``, named with our pid and host (see
    :func:`.recovery.clean_stale_parts`); ``recoverable``: a live recording, recovered if we are killed."""
    path = Path(path)
    check_output_dir(path.parent)
    sweep_once(path.parent)
    remove_stale_parts(path)
    return new_temp(path, recoverable)


def sync_folder(folder: Path) -> None:
    """fsync ``folder``, so a rename into it survives a power cut, not only a crash; where the OS
    allows it (Windows cannot open a folder; some network file systems refuse): skipped otherwise."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        log.debug("fsync of folder %s: %s", folder, exc)
    finally:
        os.close(fd)


def _sync_file(fh: BinaryIO) -> None:
    fh.flush()
    try:
        os.fsync(fh.fileno())
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):  # a file system without fsync
            raise


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = True, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temp file; see :func:`publish` for ``overwrite``.
    ``durable``: the data is fsynced before the rename and the folder after it, so after a power
    cut the file is the old one or the new one, whole (a rename alone can reach the disk before the
    data does: an empty file).  Why not always: a state file rewritten while the show runs needs it;
    a snapshot or an output does not pay two disk flushes."""
    tmp = temp_path_for(Path(path))
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                _sync_file(fh)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dest = publish(tmp, Path(path), overwrite)
    if durable:
        sync_folder(dest.parent)
    return dest
