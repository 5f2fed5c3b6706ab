"""Output files: checked before any work, written to a temp file, published without clobbering.

Why: nothing the user made may be lost or half-written.  An output location that cannot be
written is reported in one line before minutes of work are spent; every file is written under a
hidden temp name beside its target (same file system, so publishing is atomic) and then
*published*: with ``overwrite`` by rename, otherwise by hard link, which fails if another process
published the same name first (the loser is told the file exists instead of silently replacing it).
Temp names carry our process id, so a later run can remove the leftovers of a killed one (SIGKILL,
power loss) without touching those of a process that is still writing.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # read once at import: os.umask is process-global, not thread-safe
_PART = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.part(?P<suffix>\.[^.]*)?$")


class OutputError(UserError):
    """An output location that cannot be written (no permission, a file in the way, disk full)."""


# Longest style part of a derived output name, in bytes: file names end at 255 bytes, and the
# content's own name and the extension need room too.
MAX_LABEL_BYTES = 80


def output_label(names: Sequence[str], max_bytes: int = MAX_LABEL_BYTES) -> str:
    """The style part of an output name when a run uses several styles (a blend, --switch-every):
    every name, joined by ``+`` (``waves+dots``), so the file says what made it.  Longer than
    ``max_bytes``: cut, with a short hash of the whole label, so two long combinations that share a
    beginning still get two names."""
    label = "+".join(names)
    raw = label.encode("utf-8")
    if len(raw) <= max_bytes:
        return label
    digest = hashlib.sha256(raw).hexdigest()[:8]
    head = raw[: max_bytes - len(digest) - 1].decode("utf-8", errors="ignore").rstrip("+")
    return f"{head}~{digest}"


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


def temp_path_for(path: Path) -> Path:
    """A fresh hidden temp file beside ``path``, named with our pid (see :func:`remove_stale_parts`)."""
    path = Path(path)
    check_output_dir(path.parent)
    remove_stale_parts(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}.", suffix=".part" + path.suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    os.chmod(tmp, FILE_MODE)
    return Path(tmp)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_parts(path: Path) -> list[Path]:
    """Delete temp files for ``path`` left by processes that no longer run; returns them."""
    removed = []
    folder = Path(path).parent
    try:
        candidates = list(folder.glob(f".{glob_escape(Path(path).stem)}.*.part*"))
    except OSError:
        return removed
    for p in candidates:
        m = _PART.match(p.name)
        if not m or m.group("stem") != Path(path).stem or _alive(int(m.group("pid"))):
            continue
        try:
            p.unlink()
            removed.append(p)
            log.info("removed %s, left by an earlier run that was killed", p)
        except OSError:
            pass
    return removed


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def publish(tmp: Path, dest: Path, overwrite: bool = False) -> Path:
    """Move the finished temp file to its name; without ``overwrite`` never replace a file that
    appeared meanwhile (another process): that is an :class:`OutputError` and the temp file goes."""
    tmp, dest = Path(tmp), Path(dest)
    try:
        if overwrite:
            os.replace(tmp, dest)
            return dest
        try:
            os.link(tmp, dest)  # atomic, and fails if dest exists
        except FileExistsError:
            raise OutputError(f"{dest} exists: another process wrote it first (use --overwrite to replace it)") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # File systems without hard links (FAT, some network shares): check, then rename.
            if dest.exists():
                raise OutputError(f"{dest} exists (use --overwrite to replace it)") from None
            os.replace(tmp, dest)
            return dest
        os.unlink(tmp)
        return dest
    except OSError as exc:
        raise OutputError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists() and tmp != dest:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temp file; see :func:`publish` for ``overwrite``."""
    tmp = temp_path_for(Path(path))
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return publish(tmp, Path(path), overwrite)
