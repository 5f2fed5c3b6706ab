"""Output files: checked before any work, written to a temp file, published without clobbering.

Why: nothing the user made may be lost or half-written.  An output location that cannot be
written is reported in one line before minutes of work are spent; every file is written under a
hidden temp name beside its target (same file system, so publishing is atomic) and then
*published*: with ``overwrite`` by rename, otherwise by hard link, which fails if another process
published the same name first (the loser is told the file exists instead of silently replacing it).
Temp names carry our process id and host, so a later run can tell the leftovers of a killed one
(SIGKILL, power loss) from those of a process that is still writing, here or on another machine
that shares the folder (a cluster's work folder).  What a killed run left in a folder is dealt with
when the folder is next written (:func:`clean_stale_parts`): a live recording is *recovered* into a
playable file beside it (it is what the user made, and only the last second of it is torn); any
other temp file is removed (a rerun makes it again, and a torn one is not worth keeping).

A live recording has companions beside it, named from it (issue #28): ``NAME.source.mp4``, the
camera's own frames (``--record-source``), and ``NAME.timeline.json``, which names both files.
Their names are made here (:func:`source_path`, :func:`timeline_path`), below everything that writes
or recovers them, so a recovery moves all three together: ``NAME.recovered-DATE.mp4``,
``NAME.recovered-DATE.source.mp4`` and ``NAME.recovered-DATE.timeline.json``, whose ``video`` and
``source`` fields name the recovered files (:func:`recover_recording`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple, Optional

from ..errors import UserError

log = logging.getLogger(__name__)


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
_swept: set[Path] = set()  # folders this process has cleaned (temp_path_for cleans each one once)
_swept_lock = threading.Lock()


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


def temp_path_for(path: Path, recoverable: bool = False) -> Path:
    """A fresh hidden temp file beside ``path``, named with our pid and host (see
    :func:`clean_stale_parts`); ``recoverable``: a live recording, recovered if we are killed."""
    path = Path(path)
    check_output_dir(path.parent)
    _sweep_once(path.parent)
    remove_stale_parts(path)
    return _new_temp(path, recoverable)


def _new_temp(path: Path, recoverable: bool = False) -> Path:
    mark = f"{RECOVERABLE}." if recoverable else ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}@{HOST}.{mark}", suffix=".part" + path.suffix,
                                   dir=path.parent)
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


def parse_part(p: Path) -> Optional[Part]:
    """The temp file ``p`` as ours (None: not one of our temp names)."""
    m = _PART.match(p.name)
    if not m:
        return None
    return Part(p, m.group("stem"), m.group("suffix") or "", int(m.group("pid")), m.group("host"), m.group("rec") is not None)


def _stale(part: Part) -> bool:
    """Left by a process of this machine that no longer runs (another machine's are not ours to judge)."""
    return part.host in (None, HOST) and not _alive(part.pid)


def stale_parts(folder: Path, stem: Optional[str] = None) -> list[Part]:
    """Our temp files in ``folder`` (only those for ``stem``, if given) whose process is gone."""
    pattern = f".{glob_escape(stem)}.*.part*" if stem is not None else ".*.part*"
    try:
        candidates = sorted(Path(folder).glob(pattern))
    except OSError:
        return []
    parts = [q for q in (parse_part(p) for p in candidates) if q is not None and (stem is None or q.stem == stem)]
    return [q for q in parts if _stale(q)]


def remove_stale_parts(path: Path) -> list[Path]:
    """Deal with the temp files for ``path`` left by processes that no longer run (a recording is
    recovered, anything else removed); returns the temp files that are gone."""
    path = Path(path)
    stems = (path.stem,) if path.stem.endswith(SOURCE_TAG) else (path.stem, path.stem + SOURCE_TAG)  # with its source
    return _settle([q for stem in stems for q in stale_parts(path.parent, stem)])


def clean_stale_parts(folder: Path) -> list[Path]:
    """Deal with every temp file in ``folder`` left by a process of this machine that no longer
    runs: live recordings are recovered beside them (:func:`recover_part`), the rest removed, each
    with one log line.  Returns the temp files that are gone.  Runs by itself the first time this
    process writes into a folder (:func:`temp_path_for`); ``stylize live`` calls it for the
    recording folder before the show starts, so a recovery never holds up the show."""
    folder = Path(folder)
    with _swept_lock:
        _swept.add(_key(folder))
    return _settle(stale_parts(folder))


def _key(folder: Path) -> Path:
    try:
        return folder.resolve()
    except OSError:
        return folder.absolute()


def _sweep_once(folder: Path) -> None:
    key = _key(folder)
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    _settle(stale_parts(folder))


def _settle(parts: list[Part]) -> list[Path]:
    gone = []
    # A recording and its source file, left by the same process, are recovered together.
    sources = {(q.stem, q.pid, q.host): q for q in parts if q.recoverable and q.stem.endswith(SOURCE_TAG)}
    pairs = {p.path: sources.get((p.stem + SOURCE_TAG, p.pid, p.host)) for p in parts
             if p.recoverable and not p.stem.endswith(SOURCE_TAG)}
    paired = {q.path for q in pairs.values() if q is not None}
    for part in parts:
        if part.path in pairs:
            recover_recording(part, pairs[part.path])
        elif part.recoverable:
            if part.path not in paired:
                recover_recording(None, part)
        else:
            try:
                part.path.unlink()
            except OSError:
                continue
            log.info("removed %s, left by an earlier run that was killed", part.path)
        if not part.path.exists():
            gone.append(part.path)
    return gone


def recovered_name(part: Part, source: bool = False) -> Path:
    """Where a recording cut off by a crash goes: beside the file it was meant to become, named
    with the time it was last written (when the show stopped), never over an existing file nor
    over its companions' recovered names (``source``: the name of the recording's source file
    with it, ``NAME.recovered-DATE.source.mp4``; ``part``'s stem is then ``NAME.source``)."""
    stem = part.stem.removesuffix(SOURCE_TAG) if source else part.stem
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(part.path.stat().st_mtime))
    base = f"{stem}.recovered-{stamp}"
    for n in range(1, 1000):
        video = part.path.parent / f"{base}{'' if n == 1 else f'-{n}'}{'.mp4' if source else part.suffix}"
        dst = source_path(video) if source else video
        if not any(p.exists() for p in (video, source_path(video), timeline_path(video))):
            return dst
    raise OutputError(f"cannot name a recovered copy of {part.path}: {base}-1..999 exist")


def recover_recording(video: Optional[Part], source: Optional[Part]) -> Optional[Path]:
    """A live recording left by a killed process (``video``) and its source file (``source``, if
    it was kept; either may be None: the other was published before the kill), recovered under
    one name (:func:`recovered_name`), and its timeline moved to follow them: the timeline written
    so far names the files they were meant to become, and a replay must find them under the names
    they have now.  Returns the recovered recording (or source, if that is all there was)."""
    got_video = recover_part(video) if video is not None else None
    target = source_path(got_video) if got_video is not None else None
    got_source = recover_part(source, target) if source is not None else None
    lost = source is not None and got_source is None and not source.path.exists()  # nothing playable in it
    if video is not None:
        _follow_timeline(video.path.parent / f"{video.stem}{video.suffix}", got_video, got_source, lost)
    elif source is not None:
        _follow_timeline(source.path.parent / f"{source.stem.removesuffix(SOURCE_TAG)}.mp4", None, got_source, lost)
    return got_video or got_source


def _follow_timeline(meant: Path, video: Optional[Path], source: Optional[Path], source_lost: bool = False) -> None:
    """The timeline of the recording that was to be ``meant``, rewritten to name the recovered
    files (``source_lost``: its source held nothing playable and is gone: named no more) and, when
    the recording itself was recovered, renamed beside it.  Only a timeline that is not complete
    and names ``meant``: an older show's finished timeline of the same name is left alone.  A
    timeline that cannot be moved stays as it is (said in the log)."""
    old = timeline_path(meant)
    if (video is None and source is None and not source_lost) or not old.exists():
        return
    try:
        doc = json.loads(old.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("timeline %s not moved with its recovered recording: %s", old, exc)
        return
    if not isinstance(doc, dict) or doc.get("complete") or doc.get("video") != meant.name:
        return
    if video is not None:
        doc["video"] = video.name
    if source is not None or source_lost:
        doc["source"] = source.name if source is not None else None
    new = timeline_path(video) if video is not None else old
    try:
        tmp = _new_temp(new)
        try:
            tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            publish(tmp, new, overwrite=new == old)
        finally:
            tmp.unlink(missing_ok=True)
        if new != old:
            old.unlink(missing_ok=True)
    except (OSError, OutputError) as exc:
        log.warning("timeline %s not moved with its recovered recording: %s", old, getattr(exc, "strerror", None) or exc)
        return
    log.warning("moved timeline %s to %s with its recovered recording", old.name, new.name)


def recover_part(part: Part, dst: Optional[Path] = None) -> Optional[Path]:
    """A live recording left by a killed process, made a playable file beside it (see
    :func:`recovered_name`): its whole fragments remuxed into a plain MP4 with PyAV, the torn end
    dropped; then the temp file goes.  A part with no playable frame is removed.  Where the copy
    cannot be written (a full disk), the part itself is cut back to its whole fragments and renamed
    (it plays as it is, only without an index).  Says what happened in one log line; returns the
    recovered file (None: nothing to recover, or it stays for the next run).  ``dst``: the name to
    recover it under (a source file beside its recovered recording); by default its own."""
    from . import salvage

    src = part.path
    if not src.exists():  # another run recovered it meanwhile
        return None
    try:
        if dst is None or dst.exists():
            dst = recovered_name(part, source=part.stem.endswith(SOURCE_TAG))
        tmp = _new_temp(dst)
    except (OSError, OutputError) as exc:
        log.warning("cannot recover %s now (%s); it stays for the next run", src, getattr(exc, "strerror", None) or exc)
        return None
    fmt = "mp4" if part.suffix.lower() in ("", ".mp4", ".m4v") else None  # otherwise FFmpeg goes by the name
    try:
        got = salvage.remux(src, tmp, fmt)
    except Exception as exc:  # noqa: BLE001 - whatever it was, the part is kept
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return _recover_in_place(part, dst)
        log.debug("remuxing %s failed", src, exc_info=True)
        log.warning("cannot recover %s now (%s); it stays for the next run", src, exc)
        return None
    if not got.frames:
        tmp.unlink(missing_ok=True)
        return _remove_unplayable(part)
    try:
        publish(tmp, dst)
    except OutputError as exc:
        log.warning("cannot recover %s now (%s); it stays for the next run", src, exc)
        return None
    src.unlink(missing_ok=True)
    log.warning("recovered %s: %d frames (%.0f s) of a recording cut off by a crash (process %d)", dst, got.frames,
                got.seconds, part.pid)
    return dst


def _remove_unplayable(part: Part) -> None:
    part.path.unlink(missing_ok=True)
    log.warning("removed %s: a recording cut off by a crash (process %d) before its first fragment was written "
                "(nothing playable)", part.path, part.pid)


def _recover_in_place(part: Part, dst: Path) -> Optional[Path]:
    """No room for a copy: the part itself, cut back to its whole fragments, under the recovered name."""
    from . import salvage

    src = part.path
    try:
        whole = salvage.scan(src)
        if not whole.frames:
            return _remove_unplayable(part)
        os.truncate(src, whole.length)  # only the torn end goes
        _rename_no_clobber(src, dst)
    except Exception as exc:  # noqa: BLE001 - the part is kept
        log.warning("cannot recover %s now (%s); it stays for the next run", src, getattr(exc, "strerror", None) or exc)
        return None
    log.warning("recovered %s: %d frames of a recording cut off by a crash (process %d); no room for an indexed "
                "copy, kept as written (fragmented MP4)", dst, whole.frames, part.pid)
    return dst


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
    unless ``keep`` (a live recording: a later run recovers it, see :func:`clean_stale_parts`)."""
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
