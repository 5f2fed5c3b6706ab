"""The recorder output: shown frames into an H.264 MP4.

:class:`VideoRecorder` encodes H.264 MP4 through PyAV in its own thread, so a slow encoder never
stalls the display (frames it cannot keep up with are dropped and counted, never queued without
bound).  Each frame keeps its real capture time as its timestamp, so a recording plays back at the
speed things happened even when the frame rate varied.  The file is written under a temp name and
renamed when the recorder is closed: on the r key, on quit, on Ctrl-C, and when the inference worker
fails, so a recording is never lost and never half-written under its final name.  The file is the
one :class:`~realtime.io.media.h264.H264Writer` every mode uses, fragmented: the temp file is
playable at any instant, synced to the disk every :data:`SYNC_S`, and recovered by the next run
after ``kill -9`` or a power cut (:func:`realtime.io.recovery.clean_stale_parts`).  A recorder given a
:class:`~realtime.io.sinks.timeline.Timeline` keeps it in step: media time 0 at its first frame,
rewritten from the encoder's thread, finished beside the file when the recording is.

A recorder asked to keep the source too (``stylize live --record-source``, issue #28) writes a
second file beside the first, ``NAME.source.mp4``: for every frame recorded, the camera picture it
was made from (unstylized, uncomposed, at the camera's size), with the *same* timestamp.  Why one
recorder for both, not two: the two files must stay frame for frame on one clock (the timeline's
media times are both files' frame times), and start, stop, fail and finish together; one queue
item per frame and one encoder thread make that so by construction.  The picture is asked for with
``source_of()`` when the view is handed over (on the caller's thread, so it belongs to that view).

A write that fails (a full disk) ends the recording, not the show: the whole fragments written so
far are kept and published as usual, and :attr:`VideoRecorder.failure` says what happened (the live
loop puts it in the status and the exit status).  The temp file is made when the recorder is, so a
recording that cannot even start is an error to whoever asked for it, not a file that never appears.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ...core.workers import EOS, Worker
from ...errors import UserError
from ..media.h264 import H264Writer, write_error
from ..paths import source_path, timeline_path
from .base import Output
from .timeline import Timeline

log = logging.getLogger(__name__)


def timestamped_path(folder: str | Path, prefix: str = "stylize", ext: str = ".mp4") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    return Path(folder) / f"{prefix}-{stamp}{ext}"


def name_taken(path: Path, with_source: bool) -> Optional[Path]:
    """The file in the way of a recording named ``path`` (None: the name is free): the recording
    itself, its timeline (written while the show runs: an earlier ``b.mp4``'s ``b.timeline.json``
    was replaced by a later ``b.mov``'s) or, when it keeps one, its source file."""
    for p in (path, timeline_path(path), *([source_path(path)] if with_source else [])):
        if p.exists():
            return p
    return None


SYNC_S = 2.0  # how often the written fragments are forced onto the disk (a power cut loses the page cache)
#: Frames waiting for the encoder, in MB at most (besides ``max_queue`` frames): what absorbs a slow
#: fsync or a busy moment.  A count alone let the queue take 166 MB at 720p, twice that with
#: ``--record-source`` and 750 MB at 1080p with it, on boxes sized for the show's 250 MB.  128 MB
#: is 0.8 s of 720p with its source, 0.35 s of 1080p with its source, 1.5 s of 720p alone.
QUEUE_MB = 128.0
#: What a recording can be named: it is written as fragmented MP4 (what survives a kill) and copied
#: into MOV or Matroska when asked; AVI has no timestamps for a live show's uneven frame times.
RECORD_EXTS = (".mp4", ".m4v", ".mov", ".mkv")


class VideoRecorder(Output):
    """H.264 MP4 through PyAV, encoded in a thread; finalized atomically on close.  x264
    ``superfast``: the recording shares the CPU with the live network, and superfast needs 55% of
    veryfast's encoding CPU on stylized frames for the same quality per byte within 0.2 dB.

    Making one creates its temp file (raising :class:`~realtime.io.paths.OutputError` if that is
    not possible); :meth:`close` never raises: it returns the published file, or None and says why
    in the log and in :attr:`failure` (None: no failure; a recording stopped before its first
    frame has no file and no failure)."""

    name = "recorder"

    TIME_BASE = Fraction(1, 1000)  # millisecond timestamps

    def __init__(self, path: Path, crf: int = 20, preset: str = "superfast", fps_hint: float = 30.0, max_queue: int = 60,
                 timeline: Optional[Timeline] = None, source_of: Optional[Callable[[], np.ndarray]] = None,
                 queue_mb: float = QUEUE_MB) -> None:
        self.path = Path(path)
        self.timeline = timeline  # the control events of this recording, on its clock (None: none kept)
        self._source_of = source_of
        self.source_path: Optional[Path] = source_path(self.path) if source_of is not None else None
        self.source_kept = 0  # source frames in its file after a failure (whole fragments)
        self.source_result: Optional[Path] = None  # the published source file (after close)
        self.crf, self.preset, self.fps_hint = crf, preset, fps_hint
        self.frames = 0  # handed to the encoder
        self.dropped = 0
        self.kept = 0  # frames in the file after a failure (whole fragments)
        self.failure: Optional[str] = None  # one line: why the recording stopped early or was not saved
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._budget = int(queue_mb * 2**20)
        self.queued_bytes = 0  # pixels waiting in the queue (at most the budget, or one item)
        self.peak_queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self._stop = threading.Event()
        self._writer = H264Writer(self.path, fragmented=True)  # the temp file exists from here on
        self._source_writer: Optional[H264Writer] = None
        if self.source_path is not None:
            try:
                self._source_writer = H264Writer(self.source_path, fragmented=True)
            except BaseException:
                self._writer.discard()
                raise
        self._t0: Optional[float] = None
        self._last_pts = -1
        self._closed = False
        self._result: Optional[Path] = None
        self._worker = Worker("recorder", self._run, lambda: None, self._stop)
        self._worker.start()
        log.info("recording to %s%s", self.path, f" (its source to {self.source_path.name})" if self.source_path else "")

    def write(self, frame_bgr: np.ndarray, t: float) -> None:
        if self._closed or self.failure is not None:
            return  # a failed recording is over; the show goes on without it
        if self._t0 is None:
            self._t0 = t
            if self.timeline is not None:
                self.timeline.start(t)
        if self.timeline is not None:
            self.timeline.frame(t)
        pts = int(round((t - self._t0) / float(self.TIME_BASE)))
        if pts <= self._last_pts:
            pts = self._last_pts + 1  # timestamps must increase
        self._last_pts = pts
        source = self._source_of() if self._source_of is not None else None
        size = frame_bgr.nbytes + (source.nbytes if source is not None else 0)
        with self._bytes_lock:
            if self.queued_bytes and self.queued_bytes + size > self._budget:
                self.dropped += 1  # the encoder is behind: the newest frame waits for none of it
                return
            self.queued_bytes += size
            self.peak_queued_bytes = max(self.peak_queued_bytes, self.queued_bytes)
        try:
            self._q.put_nowait((frame_bgr, source, pts))
        except queue.Full:
            self._release(size)
            self.dropped += 1

    def _release(self, size: int) -> None:
        with self._bytes_lock:
            self.queued_bytes -= size

    def _run(self) -> None:
        writer, source_writer = self._writer, self._source_writer
        failing = writer  # the file being written when an error comes (a full disk names it)
        synced = time.monotonic()
        try:
            while True:
                try:
                    item = self._q.get(timeout=0.1)
                except queue.Empty:
                    if self.timeline is not None:
                        self.timeline.flush()  # a paused show still gets its changes on the disk
                    if self._stop.is_set() and self._q.empty():
                        break
                    continue
                if item is EOS:
                    break
                frame_bgr, source_bgr, pts = item
                self._release(frame_bgr.nbytes + (source_bgr.nbytes if source_bgr is not None else 0))
                failing = writer
                self._encode(writer, frame_bgr, pts)
                if source_writer is not None:
                    failing = source_writer
                    self._encode(source_writer, source_bgr, pts)
                self.frames += 1
                if self.timeline is not None:
                    self.timeline.flush()  # at most every timeline.SYNC_S, only with news
                if time.monotonic() - synced >= SYNC_S:
                    for w in self._writers():
                        w.sync()
                    synced = time.monotonic()
            if self.frames:
                failing = writer
                writer.finish()
                if source_writer is not None:
                    failing = source_writer
                    source_writer.finish()
        except Exception as exc:  # noqa: BLE001 - a full disk ends the recording (both files), never the show
            self.failure = str(write_error(exc, failing.dst) or exc)
            log.debug("recording %s failed", failing.dst, exc_info=True)
            self._keep_written()

    def _encode(self, writer: H264Writer, frame_bgr: np.ndarray, pts: int) -> None:
        if writer.stream is None:
            h, w = frame_bgr.shape[:2]
            writer.start(w, h, Fraction(self.fps_hint).limit_denominator(1000), self.TIME_BASE,
                         crf=self.crf, preset=self.preset)
        # A view that changes mid-recording (side by side) is scaled into the file's size by the
        # encoder's own conversion.
        writer.write(frame_bgr, pts)

    def _writers(self) -> list[H264Writer]:
        return [w for w in (self._writer, self._source_writer) if w is not None]

    def _keep_written(self) -> None:
        """After a failure: each file cut back to its whole fragments (none: its temp file goes)."""
        for w in self._writers():
            kept = w.keep_written() if self.frames else 0
            if not kept:
                w.discard()
            if w is self._writer:
                self.kept = kept
            else:
                self.source_kept = kept

    def close(self) -> Optional[Path]:
        if self._closed:
            return self._result
        self._closed = True
        if self._worker.is_alive():
            try:
                self._q.put(EOS, timeout=5)
            except queue.Full:
                self._stop.set()
        self._worker.join(30)
        if self._worker.is_alive():
            self._stop.set()
            self._worker.join(10)
        self._result = self._finish()
        self.source_result = self._finish_source()
        if self.timeline is not None:
            if self._result is None and self._writer.tmp.exists():
                self.timeline.leave()  # the recording waits in its temp file for the next run's recovery
            else:
                self.timeline.close(self._result, self.source_result)
        return self._result

    def _finish(self) -> Optional[Path]:
        writer = self._writer
        if self._worker.is_alive():  # the encoder is stuck (40 s): what it wrote stays for the next run to recover
            self.failure = f"the encoder of {self.path} did not finish; its temp file {writer.tmp} is recovered by the next run"
            log.error("recording failed: %s", self.failure)
            return None
        if self._worker.error is not None and self.failure is None:  # not an Exception: kept all the same
            self.failure = f"{type(self._worker.error).__name__}: {self._worker.error}"
            self._keep_written()
        if self.failure is not None and not self.kept:
            log.error("recording %s failed: %s; nothing playable was written", self.path, self.failure)
            return None
        if not self.frames:
            for w in self._writers():
                w.discard()
            log.warning("recording %s stopped before its first frame: no file was written", self.path)
            return None
        if self.path.exists() or (self.source_path is not None and source_path(self.path).exists()):
            # a file of that name appeared meanwhile: keep both, lose nothing
            self.path = timestamped_path(self.path.parent, self.path.stem)
        try:
            writer.publish(self.path)
        except UserError as exc:  # a full disk, or a copy into the asked container that failed
            self.failure = f"{exc}; the recording stays in {writer.tmp} and is recovered by the next run"
            log.error("recording failed: %s", self.failure)
            return None
        if self.failure is not None:
            self.failure = f"{self.failure}; the {self.kept} frames written before are kept in {self.path}"
            log.error("recording stopped: %s", self.failure)
        else:
            log.info("saved recording %s (%d frames%s)", self.path, self.frames,
                     f", {self.dropped} dropped" if self.dropped else "")
        return self.path

    def _finish_source(self) -> Optional[Path]:
        """The source file, published beside the recording as ``NAME.source.mp4`` (after
        :meth:`_finish`: the recording's final name decides it).  A source that cannot be published
        stays in its temp file for the next run to recover, and says so in :attr:`failure`."""
        writer = self._source_writer
        if writer is None or self._worker.is_alive() or not writer.tmp.exists():  # gone: nothing playable after a failure
            return None
        if self._result is None:
            if not self._writer.tmp.exists():  # the recording left nothing: its source alone is no use to a replay
                writer.discard()
            return None  # else both stay, recovered together by the next run
        target = source_path(self._result)
        self.source_path = target
        try:
            writer.publish(target)
        except UserError as exc:
            why = f"its source {target.name} was not saved ({exc}); it stays in {writer.tmp} and is recovered by the next run"
            self.failure = f"{self.failure}; {why}" if self.failure else why
            log.error("recording: %s", why)
            return None
        if self.failure is not None:
            self.failure = f"{self.failure}; its source keeps {self.source_kept} frames in {target}"
        log.info("saved its source %s", target)
        return target
