"""One H.264 writer for every file we make: ``stylize video``, its cluster join, live recordings.

Why one: the questions every H.264 file answers (odd sizes, timestamps a container can hold, where
the bytes go until the file is complete, what a full disk says) used to be answered twice, two ways.
Here, once:

* **odd sizes** keep their exact size as H.264 4:4:4 (4:2:0 needs even sides), with a warning that
  some players need even sizes;
* **timestamps** are the caller's, in its time base, kept strictly increasing; AVI, which has no
  timestamps, is re-timed into frame counts of the nominal rate with no B-frames;
* the file is written under a hidden **temp name** beside its target and **published** atomically
  (:mod:`realtime.io.paths`); until then the target does not exist, and :meth:`discard` removes
  the temp file;
* ``fragmented=True`` (live recordings) writes fragmented MP4: a moov up front and a fragment
  every second (``frag_duration``; measured: 30 frames a fragment at 30 fps), each handed to the
  OS as it is made (``flush_packets``), so what has been written is playable at any instant, even
  after ``kill -9``.  Its temp name marks it *recoverable*: a later run recovers it into a playable
  file (:func:`realtime.io.recovery.recover_part`) instead of removing it, and a write error (a full
  disk) keeps the whole fragments written so far (:meth:`keep_written`).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from ...errors import MediaError
from .. import salvage
from ..paths import OutputError, publish, temp_path_for
from .audio import AudioMuxer, AudioRoute, Sound

log = logging.getLogger(__name__)

OUTPUT_EXTS = (".mp4", ".m4v", ".mov", ".mkv", ".avi")  # containers that take H.264
# AVI has no timestamps (a frame's place in the file is its time) and cannot hold the negative
# times of AAC's priming packet: FFmpeg's shift for those moved every video frame after the first
# one frame late (the muxer filled the hole with an empty frame), the picture 133 ms behind the
# sound at 15 fps.  Not shifted, the picture starts at 0 as the sound does.
NO_SHIFT = {"avoid_negative_ts": "disabled"}
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000", "flush_packets": "1"}


def format_for(path: Path) -> Optional[str]:
    """The muxer for an output name (FFmpeg guesses the rest from the extension)."""
    return {".m4v": "mp4", ".mov": "mov"}.get(path.suffix.lower())


def write_error(exc: BaseException, dst: Path) -> Optional[OutputError]:
    """A full or read-only disk, said as such (None for other errors)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG):
        return OutputError(f"cannot write {dst}: {os.strerror(exc.errno)}")
    return None


# x264's preset names -> NVENC's (p1 fastest .. p7 best), so --preset means the same trade-off on both
NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p2", "veryfast": "p3", "faster": "p4", "fast": "p5",
                 "medium": "p5", "slow": "p6", "slower": "p7", "veryslow": "p7"}


@functools.lru_cache(maxsize=1)
def nvenc_problem() -> str:
    """Why NVIDIA's hardware encoder cannot be used here ("" when it can).  Asked once per process
    by opening a tiny encoder: FFmpeg finds the driver's libnvidia-encode only then, and GPUs
    without NVENC (the H100 and H200 among them) fail there too."""
    import av

    if "h264_nvenc" not in av.codecs_available:
        return "this PyAV's FFmpeg has no h264_nvenc"
    try:
        ctx = av.CodecContext.create("h264_nvenc", "w")
        ctx.width, ctx.height, ctx.pix_fmt = 256, 144, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.open()
    except Exception as exc:  # noqa: BLE001 - FFmpeg's errors for a missing driver or GPU vary
        return f"h264_nvenc does not open ({str(exc).strip() or type(exc).__name__})"
    return ""


def pixel_format(width: int, height: int) -> str:
    """4:2:0 where the sides are even; 4:4:4 keeps an odd size exact (said once, as a warning)."""
    if width % 2 or height % 2:
        log.warning("%dx%d has an odd dimension: encoded as H.264 4:4:4 to keep the exact size "
                    "(some players need even sizes)", width, height)
        return "yuv444p"
    return "yuv420p"


class H264Writer:
    """An H.264 file being written: open it, :meth:`start` the video stream (with the sound's
    routes), :meth:`write` frames, :meth:`finish`, :meth:`publish`.  A writer that is left
    (an error, Ctrl-C) before :meth:`publish` removes its temp file in :meth:`discard`."""

    def __init__(self, dst: Path, fragmented: bool = False) -> None:
        import av

        self.dst = Path(dst)
        self.fragmented = fragmented
        self.tmp = temp_path_for(self.dst, recoverable=fragmented)
        self.stream: Any = None
        self.encoder = ""  # the one start() chose: x264 | nvenc
        self.sound: Optional[AudioMuxer] = None
        self.frames = 0
        self._retime: Optional[Fraction] = None  # output time base when re-timed (AVI)
        self._in_tb: Fraction = Fraction(1, 1000)
        self._last_pts = -1
        self._encoding = False  # a stream of ours to drain at the end (not a copied one)
        self._published = False
        try:
            self.container: Any = av.open(str(self.tmp), "w", format="mp4" if fragmented else format_for(self.dst),
                                          options=dict(FRAGMENTED) if fragmented else (NO_SHIFT if self.dst.suffix.lower() == ".avi" else None))
        except (av.error.FFmpegError, ValueError) as exc:
            self.tmp.unlink(missing_ok=True)
            raise MediaError(f"cannot write {self.dst}: {exc}") from None
        except OSError as exc:
            raise write_error(exc, self.dst) or MediaError(f"cannot write {self.dst}: {exc}") from None
        if not {"libx264", "h264"} & set(self.container.supported_codecs):
            self.discard()
            raise MediaError(f"cannot write H.264 video into a {self.dst.suffix} file: use {', '.join(OUTPUT_EXTS)}")

    # -- streams ---------------------------------------------------------------------------------
    def start(self, width: int, height: int, rate: Fraction, time_base: Fraction, *, crf: int, preset: str,
              threads: int = 0, audio: Optional[dict[int, AudioRoute]] = None, audio_zero: float = 0.0,
              encoder: str = "x264") -> None:
        """The video stream (``time_base``: the one :meth:`write`'s timestamps are in), then the
        sound's streams; ``audio_zero``: the first frame's time in the source file's clock.
        ``encoder="nvenc"``: NVIDIA's hardware encoder where it opens (even sizes), else x264 with
        one warning saying why."""
        nvenc = encoder == "nvenc"
        if nvenc:
            problem = nvenc_problem() or ("an odd size needs x264's 4:4:4" if width % 2 or height % 2 else "")
            if problem:
                log.warning("--encoder nvenc: %s; encoding with x264", problem)
                nvenc = False
        ovs = self.container.add_stream("h264_nvenc" if nvenc else "libx264", rate=rate)
        ovs.width, ovs.height = width, height
        ovs.pix_fmt = pixel_format(width, height)
        self._in_tb = tb = time_base
        if self.container.format.name == "avi":
            # AVI has no timestamps, only a frame rate derived from the time base (1/12800 would
            # claim 12800 fps): count in frames of the nominal rate instead; VFR is lost there.
            tb = self._retime = Fraction(1) / Fraction(rate).limit_denominator(1001)
        ovs.codec_context.time_base = tb
        ovs.time_base = tb
        if nvenc:  # constant quality on the same 0-51 scale as x264's CRF (not the same picture per number)
            options = {"preset": NVENC_PRESETS.get(preset, "p4"), "tune": "hq", "rc": "vbr", "cq": str(crf), "b": "0"}
        else:
            options = {"crf": str(crf), "preset": preset}
            if threads:
                options["threads"] = str(threads)
        if self._retime is not None:
            options["bf"] = "0"  # AVI cannot reorder frames: no B-frames
        ovs.options = options
        self.stream = ovs
        self.encoder = "nvenc" if nvenc else "x264"
        self._encoding = True
        self.sound = AudioMuxer(self.container, audio, audio_zero) if audio is not None else None

    def copy_stream(self, template: Any, time_base: Fraction, audio: Optional[dict[int, AudioRoute]] = None,
                    audio_zero: float = 0.0) -> None:
        """A video stream for packets copied from ``template`` (segments joined without re-encoding)."""
        self.stream = self.container.add_stream_from_template(template)
        self.stream.time_base = time_base
        self.sound = AudioMuxer(self.container, audio, audio_zero) if audio is not None else None

    # -- writing ---------------------------------------------------------------------------------
    def write(self, image_bgr: np.ndarray, pts: int) -> None:
        """One BGR frame at ``pts`` (in :meth:`start`'s time base; made strictly increasing)."""
        import av

        h, w = image_bgr.shape[:2]
        if self.stream.pix_fmt == "yuv420p" and (w, h) == (self.stream.width, self.stream.height):
            # OpenCV's BGR -> I420 (BT.601, limited range: swscale's numbers within a grey level or
            # two): 4-5x faster than handing swscale bgr24, which has no fast path for it here
            # (1920x1080: 3.6 against 16.8 ms, the encoder thread's largest cost at that size).
            # A frame of another size (a live idle clip, maybe odd) goes to swscale, which scales it.
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        if self._retime is None:
            pts = max(pts, self._last_pts + 1)
            frame.pts, frame.time_base = pts, self._in_tb
        else:  # re-timed into frame counts (AVI); strictly increasing
            pts = max(self._last_pts + 1, int(round(pts * self._in_tb / self._retime)))
            frame.pts, frame.time_base = pts, self._retime
        self._last_pts = pts
        for p in self.stream.encode(frame):
            self.container.mux(p)
        self.frames += 1

    def mux_packet(self, packet: Any) -> None:
        """A packet copied as it is (already in the copied stream's time base)."""
        packet.stream = self.stream
        self.container.mux(packet)

    def mux_sound(self, item: Sound) -> None:
        assert self.sound is not None, "start() the writer with audio routes first"
        self.sound.mux(item)

    # -- the end ---------------------------------------------------------------------------------
    def drain(self) -> None:
        """Flush the encoders (the last frames x264 held back, the re-encoded sound's tail)."""
        if self._encoding:
            for p in self.stream.encode(None):
                self.container.mux(p)
            self._encoding = False
        if self.sound is not None:
            self.sound.flush()
            self.sound = None

    def finish(self) -> None:
        """Drain and close the file (its index is written here: a full disk shows here)."""
        import av

        try:
            self.drain()
            self.container.close()
        except (av.error.FFmpegError, OSError) as exc:
            raise write_error(exc, self.dst) or MediaError(f"cannot finish {self.dst}: {exc}") from None
        finally:
            self.container = None

    def sync(self) -> None:
        """Ask the OS to put what was written on the disk (a power cut loses the page cache, not
        only the process): the fragments written so far survive one."""
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:  # a file system without fsync: the next sync tries again
            log.debug("fsync %s: %s", self.tmp, exc)

    def keep_written(self) -> int:
        """After a write error (a full disk) in a fragmented file: keep what was written up to
        its last whole fragment, as a temp file ready to :meth:`publish`; returns its frames (0:
        nothing playable, and the temp file is gone).  Why not :meth:`finish`: that writes the
        last fragment and the index, which the full disk refuses; cutting the torn end off frees
        room instead of needing it, and a fragmented MP4 plays without its index."""
        container, self.container = self.container, None
        self._encoding = False
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - its tail is torn; cut off below
                log.debug("closing %s after a write error", self.tmp, exc_info=True)
        if self.fragmented:
            try:
                whole = salvage.scan(self.tmp)
                if whole.frames:
                    os.truncate(self.tmp, whole.length)
                    return whole.frames
            except OSError as exc:
                log.debug("cannot keep %s: %s", self.tmp, exc)
        self.tmp.unlink(missing_ok=True)
        return 0

    def publish(self, dst: Optional[Path] = None, overwrite: bool = False) -> Path:
        """The finished temp file under its name (``dst``: another name than the one it was opened for)."""
        target = Path(dst) if dst is not None else self.dst
        if self.fragmented and target.suffix.lower() != ".mp4" and format_for(target) != "mp4":
            self._remux_for(target)
        # a live recording that cannot be published stays where it is, for the next run to recover
        path = publish(self.tmp, target, overwrite, keep=self.fragmented)
        self._published = True
        return path

    def _remux_for(self, target: Path) -> None:
        """A fragmented recording (always MP4 while it is written: that is what survives a kill)
        asked for under another container's name (``r.mkv``, ``r.mov``): copy its packets into
        that container (no re-encoding) before publishing, so the file is what its name says.
        If the copy fails (a full disk) the MP4 part stays, for the next run to recover."""
        import av

        tmp = temp_path_for(target)
        try:
            held = salvage.remux(self.tmp, tmp, format_for(target))
        except (OSError, av.error.FFmpegError) as exc:
            tmp.unlink(missing_ok=True)
            kept = f"; the recording is kept in {self.tmp} (recovered as MP4 by the next run)"
            full = write_error(exc, target)
            raise (OutputError(f"{full}{kept}") if full else MediaError(f"cannot write {target.name}: {exc}{kept}")) from None
        if not held.frames:
            tmp.unlink(missing_ok=True)
            return
        self.tmp.unlink(missing_ok=True)
        self.tmp, self.fragmented = tmp, False

    def discard(self) -> None:
        """Close without finishing and remove the temp file (an error, Ctrl-C)."""
        container, self.container = self.container, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the temp file goes anyway
                pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._published:
            self.discard()
