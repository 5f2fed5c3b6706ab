"""``stylize video``: recorded clips in, stylized clips out, with the same length, frame rate,
timestamps and sound.

Four threads overlap the work: a decoder (PyAV demux + decode, audio packets passed along in
demux order), the inference worker (batched: resize in, the network), a finisher (stability,
colour and size back out) and an encoder (libx264 + muxing); the main thread shows progress and
handles Ctrl-C.  The output is written to a hidden temp file beside the target
and renamed only when complete, so an error or Ctrl-C never leaves a partial file.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..config import Config
from ..core.stage import StylizeStage, check_mixable, pick_inference_size
from ..core.profile import Profile
from ..core.workers import EOS, FrameQueue, Worker, join_all
from ..effects.crossfade import StyleSchedule
from ..effects.stability import FlowStabilizer
from ..errors import MediaError, UserError
from ..io.paths import OutputError, check_output_dir, check_output_file, publish, temp_path_for
from ..io.sources.file import VIDEO_EXTS, DecodedFrame, VideoFile
from ..model.engine import Engine, open_engine
from ..model.styles import Style, find_style_images

log = logging.getLogger(__name__)

OUTPUT_EXTS = (".mp4", ".m4v", ".mov", ".mkv", ".avi")  # containers that take H.264
MP4_AUDIO = {"aac", "mp3", "alac", "opus", "ac3", "eac3", "flac"}


@dataclass(frozen=True)
class VideoJob:
    """What ``stylize video`` was asked to do, beyond the config (validated by the CLI layer)."""

    inputs: tuple[str, ...]
    styles: tuple[str, ...]
    output: Optional[str] = None
    out_dir: Optional[str] = None
    switch_every: float = 0.0
    audio: bool = True
    start: Optional[float] = None
    end: Optional[float] = None
    overwrite: bool = False
    progress: bool = True


@dataclass(frozen=True)
class Span:
    """A part of a longer file, stylized on its own (a cluster work unit) yet exactly as the
    whole-file run would stylize it there.

    Frames in ``[start, end)`` are encoded.  The frames from ``warm`` on are stylized first and
    dropped, so temporal state (stability) reaches what the whole-file run has at ``start``; the
    style schedule and the strength control's content code start at ``origin``, the time of the
    whole job's first frame.  Times are seconds from the stream's start, like ``DecodedFrame.time``.
    """

    start: float
    end: Optional[float]
    warm: float
    origin: float


@dataclass(frozen=True)
class VideoOptions:
    size: int = 0  # inference short side (0 = source's own, capped by engine.max_size)
    strength: float = 1.0
    switch_every: float = 0.0
    fade_s: float = 0.5
    crf: int = 16
    preset: str = "superfast"
    batch: int = 4
    queue_frames: int = 16
    audio: bool = True
    stability: float = 0.0
    start: Optional[float] = None
    end: Optional[float] = None
    span: Optional[Span] = None  # a segment of the file, video only (the cluster joins them)
    encoder_threads: int = 0  # x264 threads; 0 = half the cores

    @classmethod
    def from_config(cls, cfg: Config, **job: Any) -> "VideoOptions":
        """The options a config gives (``job``: the per-run fields, e.g. switch_every, start, end)."""
        return cls(
            size=cfg.video.size,
            strength=cfg.styles.strength,
            fade_s=cfg.styles.crossfade_s,
            crf=cfg.video.crf,
            preset=cfg.video.preset,
            batch=cfg.engine.batch_size,
            queue_frames=cfg.video.queue_frames,
            stability=cfg.video.stability,
            **job,
        )


@dataclass
class VideoResult:
    frames: int = 0
    seconds: float = 0.0
    audio_mode: str = "none"
    width: int = 0
    height: int = 0
    inference_size: tuple[int, int] = (0, 0)
    profile: dict[str, float] = field(default_factory=dict)  # ms per frame, per step (core.profile)
    thread_cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds of each pipeline thread
    process_cpu_s: float = 0.0  # the whole process (codec and inference helper threads included)
    first_pts: Optional[int] = None  # source pts of the first frame encoded (segments are joined by it)
    truncated: Optional[str] = None  # the input ended early or was damaged: what was stylized

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# Typed messages between the decoder, inference and encoder threads (in demux order).
@dataclass
class AudioPacket:
    """An audio packet to copy as it is."""

    packet: Any


@dataclass
class AudioFrame:
    """A decoded audio frame to re-encode (the container cannot take the source's codec)."""

    frame: Any
    stream_index: int


Message = Union[DecodedFrame, AudioPacket, AudioFrame]


@dataclass
class _Batch:
    """Inference -> finisher: stylized frames at the inference size, and every message (audio too)
    in demux order, so the encoder still gets them in order."""

    frames: list[DecodedFrame]
    pending: list[Message]
    reset: bool  # the stabiliser starts again at this batch (a style switch)
    content: Any = None  # RGB uint8 [B, h, w, 3] at the inference size (what the stabiliser tracks)
    styled: Any = None
    src_size: Optional[tuple[int, int]] = None


class VideoStylizer:
    """Stylizes files with one engine and one set of styles; holds no per-file state, so one
    object runs many files in a row (each :meth:`run` has its own :class:`_Run`)."""

    def __init__(self, engine: Engine, codes: Sequence[np.ndarray], opts: VideoOptions) -> None:
        check_mixable(engine.stylizer, opts.strength, len(codes))
        self.engine = engine
        self.codes = list(codes)
        self.opts = opts

    def run(self, src: Path, dst: Path, on_progress: Optional[Callable[[int], None]] = None, overwrite: bool = False,
            span: Optional[Span] = None) -> VideoResult:
        """Stylize ``src`` into ``dst``; an existing ``dst`` is an error unless ``overwrite``.
        With ``span``, only that part of ``src``, video only (a cluster segment)."""
        opts = dataclasses.replace(self.opts, span=span) if span is not None else self.opts
        return _Run(self, opts, Path(src), Path(dst), overwrite).execute(on_progress)


class _Run:
    """One file (or a span of it) through the pipeline: decoder -> inference -> finisher -> encoder."""

    def __init__(self, job: VideoStylizer, opts: VideoOptions, src: Path, dst: Path, overwrite: bool) -> None:
        self.engine, self.codes, self.opts = job.engine, job.codes, opts
        self.src, self.dst, self.overwrite = src, dst, overwrite
        self.result = VideoResult()
        span = self.opts.span
        # The frames decoded: --start/--end, or a segment with its warm-up frames.
        self.lo: Optional[float] = span.warm if span else self.opts.start
        self.hi: Optional[float] = span.end if span else self.opts.end
        self.t0: Optional[float] = span.origin if span else None  # media time the style schedule starts at
        self.truncated: Optional[str] = None
        self.decoded = 0
        self.last_t = 0.0
        self.frames_done = 0
        self._out_tb: Optional[Fraction] = None  # output time base when it differs from the input's (AVI)
        self.profile = Profile()
        max_size = self.engine.cfg.engine.max_size
        # Frames are decoded straight to the inference size (the output is scaled up from the
        # stylized picture anyway): one swscale pass instead of a full-size conversion and a resize.
        self._fit: Callable[[int, int], tuple[int, int]] = lambda w, h: pick_inference_size(w, h, opts.size, max_size)

    def execute(self, on_progress: Optional[Callable[[int], None]]) -> VideoResult:
        import av

        opts, src, dst = self.opts, self.src, self.dst
        check_output_file(dst, self.overwrite)
        reader = VideoFile(src).open()
        tmp = temp_path_for(dst)
        stop = threading.Event()
        workers: list[Worker] = []
        out = None
        try:
            try:
                out = av.open(str(tmp), "w", format=_format_for(dst))
            except (av.error.FFmpegError, ValueError) as exc:
                raise MediaError(f"cannot write {dst}: {exc}") from None
            if not {"libx264", "h264"} & set(out.supported_codecs):
                raise MediaError(f"cannot write H.264 video into a {dst.suffix} file: use {', '.join(OUTPUT_EXTS)}")
            audio_in = list(reader.container.streams.audio) if opts.audio and not opts.span else []
            audio_map, self.result.audio_mode = plan_audio(out, audio_in)
            dropped = [f"{s.type} #{s.index}" for s in reader.container.streams
                       if s.type not in ("video", "audio") or (s.type == "video" and s is not reader.video)]
            if dropped:
                log.warning("%s: not copied to the output: %s (only the first video stream and the audio are kept)", src, ", ".join(dropped))
            self._seek(reader)
            q_in = FrameQueue(opts.queue_frames, stop)
            q_mid = FrameQueue(2, stop)  # batches
            q_out = FrameQueue(opts.queue_frames, stop)
            workers = [
                Worker("decoder", lambda: self._decode(reader, audio_map, q_in), lambda: q_in.put(EOS), stop),
                Worker("inference", lambda: self._infer(q_in, q_mid), lambda: q_mid.put(EOS), stop),
                Worker("finisher", lambda: self._finish(q_mid, q_out), lambda: q_out.put(EOS), stop),
                Worker("encoder", lambda: self._encode(out, reader, audio_map, q_out), lambda: None, stop),
            ]
            t_start, cpu_start = time.perf_counter(), time.process_time()
            for w in workers:
                w.start()
            last = 0
            while any(w.is_alive() for w in workers):
                workers[-1].join(0.1)
                if on_progress and self.frames_done != last:
                    on_progress(self.frames_done - last)
                    last = self.frames_done
            try:
                join_all(workers)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                raise _write_error(exc, dst) or MediaError(f"{src}: {type(exc).__name__}: {exc}") from None
            if on_progress and self.frames_done != last:
                on_progress(self.frames_done - last)
            self.result.seconds = time.perf_counter() - t_start
            self.result.truncated = self.truncated
            self.result.process_cpu_s = time.process_time() - cpu_start
            self.result.thread_cpu_s = {w.name.removeprefix("realtime-"): round(w.cpu_s, 3) for w in workers}
            self.result.profile = self.profile.per_frame_ms(self.result.frames)
            log.debug("%s: %s; CPU s: %s, process %.1f", src, self.profile.summary(self.result.frames),
                      self.result.thread_cpu_s, self.result.process_cpu_s)
            if self.result.frames == 0:
                raise MediaError(f"{src}: no video frames decoded" + (" in the chosen --start/--end range" if self.lo or self.hi is not None else ""))
            try:
                out.close()  # writes the index: a full disk shows here
            except (av.error.FFmpegError, OSError) as exc:
                raise _write_error(exc, dst) or MediaError(f"cannot finish {dst}: {exc}") from None
            finally:
                out = None
            publish(tmp, dst, self.overwrite)
            return self.result
        except BaseException:
            stop.set()
            for w in workers:
                w.join(10)
            raise
        finally:
            stop.set()
            if out is not None:
                try:
                    out.close()
                except Exception:  # noqa: BLE001 - the temp file is deleted anyway
                    pass
            reader.close()
            tmp.unlink(missing_ok=True)

    def _seek(self, reader: VideoFile) -> None:
        """Jump to the keyframe before --start; the decoder then skips frames before it."""
        if not self.lo:
            return
        vs = reader.video
        target = int(self.lo / vs.time_base) + (vs.start_time or 0)
        try:
            reader.container.seek(target, stream=vs, backward=True, any_frame=False)
        except Exception:  # noqa: BLE001 - unseekable: decode from the start and skip
            log.debug("seek failed; decoding from the start")

    def _in_range(self, t: float) -> int:
        """-1 before --start, 0 inside, 1 at/after --end."""
        if self.lo and t < self.lo - 1e-6:
            return -1
        if self.hi is not None and t >= self.hi - 1e-6:
            return 1
        return 0

    def _decode(self, reader: VideoFile, audio_map, q_in: FrameQueue) -> None:
        import av

        prof = self.profile
        vs = reader.video
        streams = [vs] + [s for s in reader.container.streams.audio if s.index in audio_map]
        t_first = reader.start_time
        # Audio that runs on past the picture is cut at the video's end (the output ends with it).
        video_end = float(vs.duration * vs.time_base) if vs.duration else None
        data_end = 0.0  # how far the file's data reaches, any stream (a truncated file ends early in all)
        done = False
        try:
            for packet in reader.container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.size == 0 or packet.pts is None:
                        continue
                    t_audio = float(packet.pts * packet.time_base) - t_first
                    data_end = max(data_end, t_audio + float((packet.duration or 0) * packet.time_base))
                    if video_end is not None and t_audio >= video_end:
                        continue
                    if self._in_range(t_audio) == 0:
                        if audio_map[packet.stream.index][1]:
                            q_in.put(AudioPacket(packet))
                        else:
                            for af in packet.decode():
                                q_in.put(AudioFrame(af, packet.stream.index))
                    continue
                with prof.step("decode"):
                    decoded_frames = packet.decode()
                for frame in decoded_frames:
                    r = self._in_range(float(frame.pts * vs.time_base) - t_first if frame.pts is not None else 0.0)
                    if r < 0:
                        continue
                    if r > 0:
                        done = True
                        break
                    with prof.step("convert (decoder)"):
                        decoded = reader.convert(frame, self._fit)
                    self.decoded += 1
                    self.last_t = decoded.time
                    with prof.step("wait: decoder blocked"):
                        q_in.put(decoded)
                if done:
                    break
        except av.error.FFmpegError as exc:
            self.truncated = (
                f"input is damaged or truncated ({exc.strerror or type(exc).__name__}): "
                f"stylized the {self.decoded} frames that decoded"
            )
            log.warning("%s", self.truncated)
            return
        if done or self.lo or self.hi is not None or not self.decoded:
            return
        # Cut-off recordings end without an error: compare with what the header promised.
        rate, expected_s = reader.fps, reader.duration
        if vs.frames and self.decoded < vs.frames * 0.98:
            self.truncated = f"input ended early: decoded {self.decoded} of {vs.frames} frames (all were stylized)"
        elif rate and expected_s and max(self.last_t, data_end) + 2.0 / rate < expected_s * 0.98:
            self.truncated = (
                f"input ended early at {self.last_t:.2f} s of {expected_s:.2f} s: "
                f"stylized the {self.decoded} frames that decoded"
            )
        if self.truncated:
            log.warning("%s", self.truncated)

    def _infer(self, q_in: FrameQueue, q_mid: FrameQueue) -> None:
        """Batches of frames -> the network; the finisher thread does the rest (stability, colour,
        size), so the network's thread never waits for it."""
        opts = self.opts
        schedule = StyleSchedule(self.codes, opts.switch_every, opts.fade_s)
        prof = self.profile
        stage = StylizeStage(self.engine.stylizer, opts.size, self.engine.cfg.engine.max_size, None, prof)
        pending: list[Message] = []
        frames: list[DecodedFrame] = []
        style_slot = 0
        reset = False
        span = opts.span
        if opts.strength != 1.0 and self.engine.stylizer.mixable_codes:
            import av

            # The content's own code comes from the job's first frame at full size, as in live and
            # image mode (the decoder's frames may be shrunk), and a segment takes the whole file's.
            try:
                first = _frame_at(self.src, span.origin if span is not None else (opts.start or 0.0))
                stage.strengthen(self.codes[0], opts.strength, first.image)
            except (MediaError, av.error.FFmpegError):  # nothing decodes there: the first decoded frame will do
                pass

        def flush() -> None:
            nonlocal pending, frames, reset
            batch = _Batch(frames, pending, reset)
            if frames:
                with prof.step("style codes"):
                    codes = np.stack([stage.strengthen(schedule.code_at(f.time - self.t0), opts.strength, f.image) for f in frames])
                with prof.step("preprocess"):
                    batch.content = stage.preprocess([f.image for f in frames], frames[0].source_size)
                with prof.step("infer"):
                    batch.styled = stage.infer(batch.content, codes)
                batch.src_size = stage.src_size
                self.result.inference_size = stage.size or (0, 0)
                reset = False
            if pending:
                with prof.step("wait: inference blocked"):
                    q_mid.put(batch)
            pending, frames = [], []

        while True:
            with prof.step("wait: inference starved"):
                item = q_in.get()
            if item is EOS:
                break
            if isinstance(item, DecodedFrame):
                if frames and (item.source_size, item.image.shape) != (frames[0].source_size, frames[0].image.shape):
                    flush()  # size changed mid-stream: finish the batch at the old size
                if self.t0 is None:
                    self.t0 = item.time
                slot = int((item.time - self.t0) // opts.switch_every) if opts.switch_every > 0 else 0
                if slot != style_slot:  # a style switch: the stabiliser starts again from the new style
                    flush()
                    reset = True
                    style_slot = slot
                frames.append(item)
            pending.append(item)
            if len(frames) >= opts.batch:
                flush()
        flush()

    def _finish(self, q_mid: FrameQueue, q_out: FrameQueue) -> None:
        """Stability at the inference size, then BGR at the source size, in stream order; drops a
        segment's warm-up frames once they have brought the stabiliser's state up to date."""
        opts, prof = self.opts, self.profile
        temporal = FlowStabilizer(opts.stability) if opts.stability > 0 else None
        post = StylizeStage(self.engine.stylizer, opts.size, self.engine.cfg.engine.max_size, temporal, prof)
        warm_until = opts.span.start - 1e-6 if opts.span is not None else None
        last_size = None
        while True:
            with prof.step("wait: finisher starved"):
                batch = q_mid.get()
            if batch is EOS:
                break
            if batch.frames:
                if temporal is not None and (batch.reset or batch.src_size != last_size):
                    temporal.reset()  # a style switch, or the source changed size
                last_size = batch.src_size
                with prof.step("postprocess"):
                    for f, styled in zip(batch.frames, post.postprocess(batch.content, batch.styled, batch.src_size)):
                        f.image = styled
            with prof.step("wait: finisher blocked"):
                for it in batch.pending:
                    if warm_until is not None and isinstance(it, DecodedFrame) and it.time < warm_until:
                        continue  # a warm-up frame
                    q_out.put(it)

    def _encode(self, out, reader: VideoFile, audio_map, q_out: FrameQueue) -> None:
        import av

        vs = reader.video
        ovs = None
        pts0 = 0
        last_pts = -1
        sound: Optional[AudioMuxer] = None  # made with the video stream (the first frame sets t0)
        held: list[tuple[float, Message]] = []  # sound ahead of the picture, muxed once a frame covers it
        frame_s = 1.0 / (reader.fps or 30.0)
        video_end = float("-inf")  # end of the last frame encoded: sound after it waits, or is cut
        t_first = reader.start_time

        prof = self.profile
        while True:
            with prof.step("wait: encoder starved"):
                item = q_out.get()
            if item is EOS:
                break
            if not isinstance(item, DecodedFrame):
                t = audio_time(item, t_first, video_end)
                if sound is not None and t < video_end:
                    sound.mux(item)
                else:
                    held.append((t, item))
                continue
            if ovs is None:
                ovs = self._video_stream(out, vs, item.image)
                add_audio_streams(out, audio_map)
                sound = AudioMuxer(out, audio_map, (self.t0 or 0.0) + t_first)
                pts0 = item.pts
                self.result.first_pts = item.pts
            t_enc = time.perf_counter()
            frame = av.VideoFrame.from_ndarray(item.image, format="bgr24")
            if self._out_tb is None:
                frame.pts, frame.time_base = item.pts - pts0, vs.time_base
            else:  # re-timed into frame counts (AVI); strictly increasing
                last_pts = max(last_pts + 1, int(round((item.pts - pts0) * vs.time_base / self._out_tb)))
                frame.pts, frame.time_base = last_pts, self._out_tb
            for p in ovs.encode(frame):
                out.mux(p)
            prof.add("encode", time.perf_counter() - t_enc)
            self.result.frames += 1
            self.frames_done = self.result.frames
            video_end = max(video_end, item.time + frame_s)
            waiting = []
            for t, a in held:
                if t < video_end:
                    sound.mux(a)
                else:
                    waiting.append((t, a))
            held = waiting
        if held:
            log.info("sound after the last picture cut: %.2f s", max(t for t, _ in held) - video_end + frame_s)
        if ovs is not None:
            for p in ovs.encode(None):
                out.mux(p)
        if sound is not None:
            sound.flush()

    def _video_stream(self, out, vs, image: np.ndarray):
        h, w = image.shape[:2]
        rate = vs.average_rate or vs.guessed_rate or Fraction(30)
        ovs = out.add_stream("libx264", rate=rate)
        ovs.width, ovs.height = w, h
        if w % 2 or h % 2:
            ovs.pix_fmt = "yuv444p"
            msg = f"{w}x{h} has an odd dimension: encoded as H.264 4:4:4 to keep the exact size (some players need even sizes)"
            log.warning("%s", msg)
        else:
            ovs.pix_fmt = "yuv420p"
        tb = vs.time_base
        if out.format.name == "avi":
            # AVI has no timestamps, only a frame rate derived from the time base (1/12800 would
            # claim 12800 fps): count in frames of the nominal rate instead; VFR is lost there.
            tb = Fraction(1) / Fraction(rate).limit_denominator(1001)
            self._out_tb = tb
        ovs.codec_context.time_base = tb
        ovs.time_base = tb
        # Half the cores at most: the network wants the rest, and on two cores x264's own threads
        # only add overhead (15% more CPU per frame measured) while fighting the inference thread.
        threads = self.opts.encoder_threads or max(1, (os.cpu_count() or 2) // 2)
        ovs.options = {"crf": str(self.opts.crf), "preset": self.opts.preset, "threads": str(threads)}
        if self._out_tb is not None:
            ovs.options["bf"] = "0"  # AVI cannot reorder frames: no B-frames
        self.result.width, self.result.height = w, h
        return ovs


def plan_audio(out, audio_in) -> tuple[dict, str]:
    """Input audio stream index -> [input stream, copy?, output stream (made by the encoder)].

    Copied when the output container accepts the codec, else re-encoded (AAC where possible).
    """
    mapping, modes = {}, set()
    supported = getattr(out, "supported_codecs", None) or set()
    if out.format.name == "mp4":
        # FFmpeg accepts raw PCM in MP4, but players do not: only copy what players expect there.
        supported = supported & MP4_AUDIO
    for a in audio_in:
        name = a.codec_context.name
        copy = name in supported and bool(a.codec_context.sample_rate)
        mapping[a.index] = [a, copy, None]
        enc = "aac" if "aac" in supported else out.default_audio_codec
        modes.add("copied" if copy else f"re-encoded {name}->{enc}")
    return mapping, (", ".join(sorted(modes)) or "none")


def add_audio_streams(out, audio_map) -> None:
    """Create the output audio streams (after the video stream, so video is stream 0)."""
    supported = getattr(out, "supported_codecs", None) or set()
    for entry in audio_map.values():
        a, copy, _ = entry
        if copy:
            entry[2] = out.add_stream_from_template(a)
            try:
                entry[2].metadata.update({k: v for k, v in a.metadata.items() if k in ("language", "title")})
            except Exception:  # noqa: BLE001 - tags are nice to have
                pass
        else:
            enc = "aac" if "aac" in supported else out.default_audio_codec
            o = out.add_stream(enc, rate=a.codec_context.sample_rate or 48000)
            try:
                o.layout = a.codec_context.layout
            except Exception:  # noqa: BLE001 - keep the encoder's default layout
                pass
            entry[2] = o


def audio_time(item: Message, t_first: float, default: float) -> float:
    """Seconds from the video stream's start (``t_first``: its start in the file's clock);
    ``default`` for a frame without a timestamp."""
    if isinstance(item, AudioPacket):
        return float(item.packet.pts * item.packet.time_base) - t_first
    af = item.frame  # type: ignore[union-attr]
    return float(af.pts * af.time_base) - t_first if af.pts is not None else default


class AudioMuxer:
    """The source's sound into the output: packets copied, frames re-encoded, all shifted so that
    ``t_zero`` (the first stylized frame, in the file's clock) is the output's time zero."""

    def __init__(self, out, audio_map: dict, t_zero: float) -> None:
        self.out, self.audio_map, self.t_zero = out, audio_map, t_zero
        self._offsets: dict[int, int] = {}

    def _offset(self, index: int, time_base) -> int:
        return self._offsets.setdefault(index, int(round(self.t_zero / float(time_base))))

    def mux(self, item: Message) -> None:
        if isinstance(item, AudioPacket):
            packet = item.packet
            o = self.audio_map[packet.stream.index][2]
            off = self._offset(o.index, packet.time_base)
            packet.pts -= off
            if packet.dts is not None:
                packet.dts -= off
            if off and packet.pts + (packet.duration or 0) <= 0:
                return  # wholly before --start (encoder priming at pts < 0 is kept otherwise)
            packet.stream = o
            self.out.mux(packet)
        elif isinstance(item, AudioFrame):
            af = item.frame
            o = self.audio_map[item.stream_index][2]
            off = self._offset(o.index, af.time_base)
            if af.pts is not None:
                af.pts -= off
                if off and af.pts + af.samples <= 0:
                    return
            for p in o.encode(af):
                self.out.mux(p)

    def flush(self) -> None:
        """Drain the encoders of re-encoded streams."""
        for _, copy, o in self.audio_map.values():
            if not copy and o is not None:
                for p in o.encode(None):
                    self.out.mux(p)


def _frame_at(src: Path, t: float) -> DecodedFrame:
    """The first frame at or after ``t`` (seconds from the stream's start), at full size."""
    with VideoFile(src).open() as reader:
        vs = reader.video
        if t > 0:
            try:
                reader.container.seek(int(t / vs.time_base) + (vs.start_time or 0), stream=vs, backward=True, any_frame=False)
            except Exception:  # noqa: BLE001 - unseekable: decode from the start
                pass
        for frame in reader.container.decode(vs):
            decoded = reader.convert(frame)
            if decoded.time >= t - 1e-6:
                return decoded
    raise MediaError(f"{src}: no frame at {t:.3f} s")


def _write_error(exc: BaseException, dst: Path) -> Optional[OutputError]:
    """A full or read-only disk, said as such (the temp file is removed by the caller)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG):
        return OutputError(f"cannot write {dst}: {os.strerror(exc.errno)}")
    return None


def _format_for(path: Path) -> Optional[str]:
    return {".m4v": "mp4", ".mov": "mov"}.get(path.suffix.lower())


def expand_inputs(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_EXTS)
            if not found:
                raise MediaError(f"no video files in folder {p}")
            out.extend(found)
        else:
            out.append(p)
    return out


def _frames_estimate(path: Path, opts: VideoOptions) -> Optional[int]:
    try:
        reader = VideoFile(path).open()
    except MediaError:
        return None
    with reader:
        n, rate, dur = reader.frame_count(), reader.fps, reader.duration
        if n and rate and (opts.start or opts.end is not None):
            end = opts.end if opts.end is not None else dur
            n = max(0, int((end - (opts.start or 0)) * rate))
        return n or None


def job_styles(cfg: Config, job: VideoJob) -> list[Style]:
    """The job's styles (one --style may name a folder: its first image is used, as for naming)."""
    styles = [s for spec in job.styles for s in find_style_images(spec, cfg.styles.dir)]
    return styles[:1] if len(job.styles) == 1 else styles


def output_pairs(job: VideoJob, inputs: Sequence[Path], style_name: str) -> list[tuple[Path, Path]]:
    """(input, output) for each input, with the checks that need neither the network nor the
    files' contents (a wrong folder fails in a second, before anything loads)."""
    if job.output:
        if len(inputs) > 1:
            raise UserError("-o takes one input; use --out-dir DIR for several")
        if Path(job.output).suffix.lower() not in OUTPUT_EXTS:
            raise UserError(f"output must be an H.264 video file ({', '.join(OUTPUT_EXTS)}): {job.output}")
        return [(inputs[0], Path(job.output))]
    out_dir = Path(job.out_dir)  # type: ignore[arg-type]
    check_output_dir(out_dir)
    return [(src, out_dir / f"{src.stem}-{style_name}.mp4") for src in inputs]


def run_video(cfg: Config, job: VideoJob) -> int:
    """``stylize video``: several inputs in turn; one bad file does not stop the rest."""
    from tqdm import tqdm

    if cfg.cluster.enabled:  # Ray is imported only here
        from ..cluster.runner import run_cluster

        return run_cluster(cfg, job)
    inputs = expand_inputs(job.inputs)
    styles = job_styles(cfg, job)
    pairs = output_pairs(job, inputs, styles[0].name)
    if job.output:
        if Path(job.output).resolve() == inputs[0].resolve():
            raise UserError(f"output {job.output} would overwrite the input")
        check_output_file(Path(job.output), job.overwrite)
    engine = open_engine(cfg)
    codes = [engine.bank.code_for(s) for s in styles]
    opts = VideoOptions.from_config(cfg, switch_every=job.switch_every, audio=job.audio, start=job.start, end=job.end)
    stylizer = VideoStylizer(engine, codes, opts)
    show = job.progress and sys.stderr.isatty()
    failed: list[str] = []
    done: list[tuple[Path, VideoResult]] = []
    for src, dst in pairs:
        try:
            if dst.resolve() == src.resolve():
                raise UserError(f"output {dst} would overwrite the input")
            check_output_file(dst, job.overwrite)
            with tqdm(total=_frames_estimate(src, opts), unit="frame", desc=src.name, disable=not show, leave=False, file=sys.stderr) as bar:
                res = stylizer.run(src, dst, bar.update, overwrite=job.overwrite)
            done.append((dst, res))
            log.info(
                "%s -> %s: %d frames %dx%d (inference %dx%d) in %.1f s (%.1f fps), audio %s",
                src, dst, res.frames, res.width, res.height, *res.inference_size, res.seconds, res.fps, res.audio_mode,
            )
        except UserError as exc:
            if len(inputs) == 1:
                raise
            log.error("failed: %s: %s", src, exc)
            failed.append(f"{src}: {exc}")
    if len(inputs) > 1:
        log.info("summary: %d of %d videos stylized%s", len(done), len(inputs), f", {len(failed)} failed:" if failed else "")
        for line in failed:
            log.info("  failed  %s", line)
    return 2 if failed else 0
