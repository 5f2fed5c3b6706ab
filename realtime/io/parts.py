"""Temp files ("parts") beside their targets: their names, read back, and publishing them.

Why: every output is written under a hidden temp name beside its target (same file system, so
publishing is atomic) and then *published*: with ``overwrite`` by rename, otherwise by hard link,
which fails if another process published the same name first (the loser is told the file exists
instead of silently replacing it).  The name carries our process id and host, and a mark for a
live recording (worth recovering), so a later run can read back (:func:`parse_part`) who left a
temp file and whether to recover it (:mod:`realtime.io.recovery`).  A live recording's companions
are named here too (:func:`source_path`, :func:`timeline_path`), below everything that writes or
recovers them.  The bottom of the output modules: :mod:`realtime.io.recovery` builds on it, and
:mod:`realtime.io.paths` on both (its public names include these).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import NamedTuple, Optional

from ..errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # read once at import: os.umask is process-global, not thread-safe
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0])[:32] or "host"
RECOVERABLE = "rec"  # the mark of a temp file worth recovering after a crash (a live recording)
# .STEM.PID@HOST[.rec].RANDOM.part[.SUFFIX]; names from before the host was added have no @HOST
_PART = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9-]+))?\.(?:(?P<rec>rec)\.)?"
                   r"[A-Za-z0-9_]+\.part(?P<suffix>\.[^.]*)?$")


class Part(NamedTuple):
    """A temp file of ours, read from its name."""

    path: Path
    stem: str
    suffix: str
    pid: int
    host: Optional[str]  # None: a name from before hosts were written into it (this machine's)
    recoverable: bool


SOURCE_TAG = ".source"  # NAME.source.mp4: a live recording's unstylized input
TIMELINE_TAG = ".timeline"  # NAME.timeline.json: a live recording's control events


def source_path(video: Path) -> Path:
    """``NAME.source.mp4`` beside ``NAME.mp4``: the camera frames the recording was made from."""
    video = Path(video)
    return video.with_name(f"{video.stem}{SOURCE_TAG}.mp4")


def timeline_path(video: Path) -> Path:
    """``NAME.timeline.json`` beside ``NAME.mp4``."""
    video = Path(video)
    return video.with_name(f"{video.stem}{TIMELINE_TAG}.json")


class OutputError(UserError):
    """An output location that cannot be written (no permission, a file in the way, disk full)."""


NAME_BYTES = 255  # the longest file name (ext4, XFS, APFS, NTFS: 255 bytes or UTF-16 units)
# What a temp name adds to its target's stem: dots, pid, @host, the recording mark, mkstemp's
# letters, ".part" and a suffix of up to 16 bytes.
_PART_EXTRA = 2 + 7 + 1 + 32 + 5 + 8 + 5 + 16


def shorten(stem: str, max_bytes: int) -> str:
    """``stem`` cut to ``max_bytes`` (whole characters) with a short hash of the whole
    after a ``~``, so that two long names that share a beginning stay two names; as it is when it fits."""
    raw = os.fsencode(stem)  # the file system's bytes: a Latin-1 name is not UTF-8 (surrogates here)
    if len(raw) <= max_bytes:
        return stem
    digest = hashlib.sha256(raw).hexdigest()[:8]
    head = raw[: max_bytes - len(digest) - 1]
    for cut in range(4):  # whole UTF-8 characters where the name is UTF-8; its own bytes otherwise
        try:
            return f"{head[: len(head) - cut].decode('utf-8')}~{digest}"
        except UnicodeDecodeError:
            continue
    return f"{os.fsdecode(head)}~{digest}"


def part_stem(path: Path) -> str:
    """The target's stem as its temp files carry it: cut where the temp name would pass 255 bytes
    (a legal 246-byte output name failed with "File name too long", its temp name being longer);
    a recording's source keeps its ``.source`` tag, so the pair is still found after a crash."""
    stem = Path(path).stem
    tag = SOURCE_TAG if stem.endswith(SOURCE_TAG) else ""
    return shorten(stem.removesuffix(tag), NAME_BYTES - _PART_EXTRA - len(SOURCE_TAG)) + tag


def new_temp(path: Path, recoverable: bool = False) -> Path:
    """A fresh hidden temp file beside ``path``, named with our pid and host (``recoverable``: a
    live recording); the folder is neither checked nor swept (:func:`realtime.io.paths.temp_path_for` is)."""
    mark = f"{RECOVERABLE}." if recoverable else ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{part_stem(path)}.{os.getpid()}@{HOST}.{mark}", suffix=".part" + path.suffix[:16],
                                   dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    os.chmod(tmp, FILE_MODE)
    return Path(tmp)


def parse_part(p: Path) -> Optional[Part]:
    """The temp file ``p`` as ours (None: not one of our temp names)."""
    m = _PART.match(p.name)
    if not m:
        return None
    return Part(p, m.group("stem"), m.group("suffix") or "", int(m.group("pid")), m.group("host"), m.group("rec") is not None)


def _rename_no_clobber(src: Path, dst: Path, exists: str = "") -> None:
    """``src`` under the name ``dst``, never over a file of that name (an :class:`OutputError`
    saying ``exists``): a hard link, atomic and refused where ``dst`` exists, then ``src`` goes; on
    file systems without hard links (FAT, some network shares) a check, then a rename.  ``src`` is
    kept on any failure."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise OutputError(exists or f"{dst} exists") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if dst.exists():
            raise OutputError(exists or f"{dst} exists") from None
        os.rename(src, dst)
        return
    src.unlink()


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def publish(tmp: Path, dest: Path, overwrite: bool = False, keep: bool = False) -> Path:
    """Move the finished temp file to its name; without ``overwrite`` never replace a file that
    appeared meanwhile (another process): that is an :class:`OutputError` and the temp file goes,
    unless ``keep`` (a live recording: a later run recovers it, see :func:`.recovery.clean_stale_parts`)."""
    tmp, dest = Path(tmp), Path(dest)
    try:
        if overwrite:
            os.replace(tmp, dest)
            return dest
        _rename_no_clobber(tmp, dest, f"{dest} exists: another process wrote it first (use --overwrite to replace it)")
        return dest
    except OSError as exc:
        raise OutputError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists() and tmp != dest and not keep:
            tmp.unlink(missing_ok=True)
