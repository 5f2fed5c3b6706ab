"""A video file (or a span of it) through the stylize stage: the options, the result, the run.

Four threads overlap the work (:mod:`.video_threads`): a decoder (PyAV demux + decode, sound passed
along in demux order), the inference worker (batched: resize in, the network), a finisher
(stability, colour and size back out) and an encoder (one :class:`~realtime.io.media.h264.H264Writer`);
the calling thread shows progress and handles Ctrl-C.  The output is written to a hidden temp file
beside the target and published only when complete, so an error or Ctrl-C never leaves a partial
file.  One :class:`VideoStylizer` holds the engine and the style codes and runs file after file
(the multi-file job and the cluster's workers); each :meth:`VideoStylizer.run` has its own
:class:`~.state.StreamState`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..config import Config
from ..core.profile import Profile
from ..effects.crossfade import Replay
from ..core.workers import EOS, FrameQueue, Worker, join_all, join_until
from ..errors import MediaError
from ..io.media.audio import plan_audio
from ..io.media.decode import VideoFile, seek_to
from ..io.media.h264 import H264Writer, write_error
from ..io.paths import check_output_file
from ..model.engine import Engine
from .stage import StylizeStage, check_mixable, pick_inference_size
from .state import StreamState
from .video_threads import EncodeSettings, Encoded, Infer, Window, decode, encode, finish

log = logging.getLogger(__name__)

#: After Ctrl-C or SIGTERM, how long the run waits for a thread inside the network (issue 25: the
#: command exits within 2 s; the rest is the temp file's removal and the interpreter's exit).
STOP_GRACE_S = 0.5
#: How long a new run waits for the threads an interrupted one left (one network call each).
ABANDONED_WAIT_S = 60.0


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
    crossfade_s: float = 0.5
    crf: int = 16
    preset: str = "superfast"
    encoder: str = "x264"  # x264 | nvenc
    batch: int = 4
    queue_frames: int = 16
    audio: bool = True
    stability: float = 0.0
    start: Optional[float] = None
    end: Optional[float] = None
    span: Optional[Span] = None  # a segment of the file, video only (the cluster joins them)
    encoder_threads: int = 0  # x264 threads; 0 = half the cores
    replay: Optional[Replay] = None  # a recorded performance (--timeline): style, strength, stability by media time

    @property
    def mix_strength(self) -> float:
        """A strength the run mixes with (not 1.0 if any part of it does): what the checks and the
        content code need to know."""
        if self.replay is not None:
            return next((s for s in self.replay.strengths if s != 1.0), 1.0)
        return self.strength

    @classmethod
    def from_config(cls, cfg: Config, **job: Any) -> "VideoOptions":
        """The options a config gives (``job``: the per-run fields, e.g. switch_every, start, end)."""
        return cls(
            size=cfg.video.size,
            strength=cfg.styles.strength,
            crossfade_s=cfg.styles.crossfade_s,
            crf=cfg.video.crf,
            preset=cfg.video.preset,
            encoder=cfg.video.encoder,
            batch=cfg.engine.batch_size,
            queue_frames=cfg.video.queue_frames,
            stability=cfg.video.stability,
            **job,
        )

    def window(self) -> Window:
        """The frames decoded: --start/--end, or a segment with its warm-up frames."""
        if self.span is not None:
            return Window(self.span.warm, self.span.end, self.span.origin)
        return Window(self.start, self.end, None)


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


class VideoStylizer:
    """Stylizes files with one engine and one set of styles; holds no per-file state, so one
    object runs many files in a row."""

    def __init__(self, engine: Engine, codes: Sequence[np.ndarray], opts: VideoOptions) -> None:
        check_mixable(engine.stylizer, opts.mix_strength, len(codes))
        self.engine = engine
        self.codes = list(codes)
        self.opts = opts
        # Threads an interrupted run did not wait for (one call through the network each): the
        # stylizer is not thread-safe, so the next run waits for them first.
        self.abandoned: list[Worker] = []

    def _wait_for_abandoned(self) -> None:
        left = join_until(self.abandoned, ABANDONED_WAIT_S)
        if left:
            raise MediaError(f"the interrupted run's {left[0].name} has not returned in {ABANDONED_WAIT_S:.0f} s")
        self.abandoned = []

    def run(self, src: Path, dst: Path, on_progress: Optional[Callable[[int], None]] = None, overwrite: bool = False,
            span: Optional[Span] = None) -> VideoResult:
        """Stylize ``src`` into ``dst``; an existing ``dst`` is an error unless ``overwrite``.
        With ``span``, only that part of ``src``, video only (a cluster segment)."""
        self._wait_for_abandoned()
        opts = dataclasses.replace(self.opts, span=span) if span is not None else self.opts
        src, dst = Path(src), Path(dst)
        check_output_file(dst, overwrite)
        with VideoFile(src).open() as reader, H264Writer(dst) as writer:
            result = _run(self, opts, reader, writer, on_progress)
            writer.finish()
            writer.publish(overwrite=overwrite)
            return result


def _run(job: VideoStylizer, opts: VideoOptions, reader: VideoFile, writer: H264Writer,
         on_progress: Optional[Callable[[int], None]]) -> VideoResult:
    """The four threads over one file; the calling thread reports progress until they end."""
    import av

    src = reader.path
    cfg = job.engine.cfg
    max_size = cfg.engine.max_size
    window = opts.window()
    routes, audio_mode = plan_audio(writer.container, list(reader.container.streams.audio) if opts.audio and not opts.span else [])
    _warn_dropped_streams(reader)
    if window.lo:
        seek_to(reader, window.lo)  # the keyframe before --start; the decoder then skips frames before it
    # One stage for the threads (it holds no stream state) and one state for this file: the
    # inference thread uses its content code, the finisher its temporal filter.
    stage = StylizeStage(job.engine.stylizer, opts.size, max_size, stability_device=cfg.engine.stability_device)
    state = StreamState(opts.replay.stabilities[0] if opts.replay is not None else opts.stability)
    infer = Infer(stage, state, job.codes, opts, window, src)
    vs = reader.video
    settings = EncodeSettings(
        rate=vs.average_rate or vs.guessed_rate or Fraction(30), time_base=vs.time_base, t_first=reader.start_time,
        frame_s=1.0 / (reader.fps or 30.0), origin=window.origin, crf=opts.crf, preset=opts.preset, encoder=opts.encoder,
        # Half the cores at most: the network wants the rest, and on two cores x264's own threads
        # only add overhead (15% more CPU per frame measured) while fighting the inference thread.
        threads=opts.encoder_threads or max(1, (os.cpu_count() or 2) // 2),
        routes=None if opts.span else routes)
    warm_until = opts.span.start - 1e-6 if opts.span is not None else None
    # Frames are decoded straight to the inference size (the output is scaled up from the
    # stylized picture anyway): one swscale pass instead of a full-size conversion and a resize.
    fit = lambda w, h: pick_inference_size(w, h, opts.size, max_size)  # noqa: E731
    stop = threading.Event()
    q_in, q_mid, q_out = FrameQueue(opts.queue_frames, stop), FrameQueue(2, stop), FrameQueue(opts.queue_frames, stop)
    progress: queue.SimpleQueue[int] = queue.SimpleQueue()
    profiles = {name: Profile() for name in ("decoder", "finisher", "encoder")}
    workers = [
        Worker("decoder", lambda: decode(reader, routes, fit, window, q_in, profiles["decoder"]), lambda: q_in.put(EOS), stop),
        Worker("inference", lambda: infer.run(q_in, q_mid), lambda: q_mid.put(EOS), stop),
        Worker("finisher", lambda: finish(stage, state, warm_until, q_mid, q_out, profiles["finisher"]), lambda: q_out.put(EOS), stop),
        Worker("encoder", lambda: encode(writer, settings, q_out, progress, profiles["encoder"]), lambda: None, stop),
    ]
    t_start, cpu_start = time.perf_counter(), time.process_time()
    interrupted = False
    try:
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers):
            workers[-1].join(0.1)
            _report(progress, on_progress)
        try:
            join_all(workers)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise write_error(exc, writer.dst) or MediaError(f"{src}: {type(exc).__name__}: {exc}") from None
        _report(progress, on_progress)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the CLI's Terminated)
        interrupted = True
        raise
    finally:
        stop.set()
        _stop_threads(job, workers, interrupted)
    done: Encoded = workers[-1].result
    profile = Profile.merged(infer.prof, *profiles.values())
    result = VideoResult(
        frames=done.frames, seconds=time.perf_counter() - t_start, audio_mode=audio_mode, width=done.width,
        height=done.height, inference_size=done.end.inference_size, profile=profile.per_frame_ms(done.frames),
        thread_cpu_s={w.name.removeprefix("realtime-"): round(w.cpu_s, 3) for w in workers},
        process_cpu_s=time.process_time() - cpu_start, first_pts=done.first_pts, truncated=done.end.truncated)
    log.debug("%s: %s; CPU s: %s, process %.1f", src, profile.summary(result.frames), result.thread_cpu_s, result.process_cpu_s)
    if result.frames == 0:
        raise MediaError(f"{src}: no video frames decoded" + (" in the chosen --start/--end range" if window.lo or window.hi is not None else ""))
    return result


def _stop_threads(job: "VideoStylizer", workers: list[Worker], interrupted: bool) -> None:
    """Wait for the threads after the stop event is set; after Ctrl-C or SIGTERM, briefly.

    Why not always wait: the inference thread may be inside one batch through the network (1.2 s
    for four 720p frames on two cores, seconds under load, longer in TensorFlow's first XLA
    compile), and nothing can interrupt it; the SIGTERM exit took 10.7 s that way.  Interrupted,
    the decoder and the encoder are still waited for (they hold the reader and the writer, which
    the caller closes next, and each of their calls is one packet or one frame), but the inference
    and finisher threads only for :data:`STOP_GRACE_S`: they touch only the network, the stream
    state and the queues, and end by themselves when their call returns (the stop event is set).
    The next run of the same :class:`VideoStylizer` waits for them before using the network."""
    if not interrupted:
        for w in workers:
            w.join(10)
        return
    t = time.perf_counter()
    decoder, inference, finisher, encoder = workers
    left = join_until([decoder, encoder, inference, finisher], STOP_GRACE_S)
    join_until([decoder, encoder], 10)
    job.abandoned += [w for w in left if w in (inference, finisher)]
    log.debug("threads stopped in %.2f s after the interrupt%s", time.perf_counter() - t,
              f"; left to end on their own: {', '.join(w.name for w in left)}" if left else "")


def _report(progress: "queue.SimpleQueue[int]", on_progress: Optional[Callable[[int], None]]) -> None:
    """Hand the frames encoded since the last call to the progress callback (on this thread)."""
    n = 0
    while True:
        try:
            n += progress.get_nowait()
        except queue.Empty:
            break
    if n and on_progress:
        on_progress(n)


def _warn_dropped_streams(reader: VideoFile) -> None:
    dropped = [f"{s.type} #{s.index}" for s in reader.container.streams
               if s.type not in ("video", "audio") or (s.type == "video" and s is not reader.video)]
    if dropped:
        log.warning("%s: not copied to the output: %s (only the first video stream and the audio are kept)",
                    reader.path, ", ".join(dropped))
