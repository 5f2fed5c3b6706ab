"""What killed runs left in a folder: their temp files found, live recordings recovered, the rest removed.

Why: a live recording is what the user made, and a ``kill -9`` or a power cut must not lose it.
Temp names carry their writer's process id and host (:mod:`realtime.io.paths` makes and reads
them), so a later run can tell the leftovers of a killed process from those of one still writing,
here or on another machine that shares the folder.  What a killed run left in a folder is dealt
with when the folder is next written (:func:`clean_stale_parts`, also run by
:func:`realtime.io.paths.temp_path_for`): a live recording is *recovered* into a playable file
beside it (only the last second of it is torn); any other temp file is removed (a rerun makes it
again, and a torn one is not worth keeping).

A recording's companions (``NAME.source.mp4``, ``NAME.timeline.json``, issue #28) are recovered
with it under one name: ``NAME.recovered-DATE.mp4``, ``NAME.recovered-DATE.source.mp4`` and
``NAME.recovered-DATE.timeline.json``, whose ``video`` and ``source`` fields name the recovered
files (:func:`recover_recording`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Optional

from .parts import (HOST, SOURCE_TAG, TIMELINE_TAG, OutputError, Part, _rename_no_clobber, glob_escape, new_temp, parse_part, part_stem, publish,
                    source_path, timeline_path)

log = logging.getLogger(__name__)

_swept: set[Path] = set()  # folders this process has cleaned (temp_path_for cleans each one once)
_swept_lock = threading.Lock()


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
    stems = ((part_stem(path),) if path.stem.endswith(SOURCE_TAG) else
             (part_stem(path), part_stem(source_path(path))))  # with its source
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


def sweep_once(folder: Path) -> None:
    """Deal with what killed runs left in ``folder``, the first time this process writes there."""
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


#: Recordings recovered under their own container; any other name (a recording asked for as
#: ``x.avi`` or ``x.txt`` by a version that let it) comes back as MP4, which is what it holds: a
#: name without a video suffix once sent the next run looking for ``x.recovered-...-1..999``.
RECOVERED_EXTS = (".mp4", ".m4v", ".mov", ".mkv")


def recovered_name(part: Part, source: bool = False) -> Path:
    """Where a recording cut off by a crash goes: beside the file it was meant to become, named
    with the time it was last written (when the show stopped), never over an existing file nor
    over its companions' recovered names (``source``: the name of the recording's source file
    with it, ``NAME.recovered-DATE.source.mp4``; ``part``'s stem is then ``NAME.source``)."""
    stem = part.stem.removesuffix(SOURCE_TAG) if source else part.stem
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(part.path.stat().st_mtime))
    base = f"{stem}.recovered-{stamp}"
    suffix = part.suffix if part.suffix.lower() in RECOVERED_EXTS and not source else ".mp4"
    for n in range(1, 1000):
        video = part.path.parent / f"{base}{'' if n == 1 else f'-{n}'}{suffix}"
        dst = source_path(video) if source else video
        if not any(p.exists() for p in (video, source_path(video), timeline_path(video))):
            return dst
    raise OutputError(f"cannot name a recovered copy of {part.path}: {base}-1..999 exist")


_CUT = re.compile(r"~[0-9a-f]{8}$")  # the hash a cut stem ends with


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
        _follow_timeline(_meant(video.path.parent, video.stem, video.suffix), got_video, got_source, lost)
    elif source is not None:
        _follow_timeline(_meant(source.path.parent, source.stem.removesuffix(SOURCE_TAG), ".mp4"), None, got_source, lost)
    return got_video or got_source


def _meant(folder: Path, stem: str, suffix: str) -> Path:
    """The file a recording's temp files were to become, from the stem they carry: that stem is cut
    (with a hash) for a long name (:func:`.parts.part_stem`), so the timeline, written under the
    whole name, is found by the name whose cut stem this is (it was left behind, and then made a
    later ``--record`` of that name refuse to start)."""
    meant = folder / f"{stem}{suffix}"
    if timeline_path(meant).exists() or not _CUT.search(stem):
        return meant
    head = stem[: stem.rindex("~")]
    tail = f"{TIMELINE_TAG}.json"
    for timeline in folder.glob(f"{glob_escape(head)}*{tail}"):
        candidate = folder / f"{timeline.name[: -len(tail)]}{suffix}"
        if part_stem(candidate) == stem:
            return candidate
    return meant


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
        tmp = new_temp(new)
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
        tmp = new_temp(dst)
    except (OSError, OutputError) as exc:
        log.warning("cannot recover %s now (%s); it stays for the next run", src, getattr(exc, "strerror", None) or exc)
        return None
    fmt = None if dst.suffix.lower() in (".mov", ".mkv") else "mp4"  # those by their name; the rest is MP4
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
