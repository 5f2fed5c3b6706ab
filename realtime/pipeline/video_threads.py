"""The four threads of a video file's run, and the messages they pass; nothing else is shared.

Why messages only: each thread's facts travel downstream with the data (the frame's geometry and
time on :class:`DecodedFrame`, the batch's inference size on :class:`Batch`, the decoder's count
and whether the input was cut short on :class:`StreamEnd`), and each thread *returns* what it
alone knows (the encoder: :class:`Encoded`).  No thread writes an attribute that another reads, so
the order of the threads' work can change without a race.  Each thread keeps its own
:class:`~realtime.core.profile.Profile`; the run merges them.

decoder -> inference -> finisher -> encoder, in demux order (sound travels with the pictures).
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..core.profile import Profile
from ..core.workers import EOS, FrameQueue
from ..effects.crossfade import ReplaySchedule, StyleSchedule
from ..errors import MediaError
from ..io.media.audio import AudioRoute, Sound, demux_sound, sound_time
from ..io.media.decode import DecodedFrame, VideoFile, frame_at, stream_time
from ..io.media.h264 import H264Writer
from .stage import StylizeStage
from .state import STYLE, StreamState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamEnd:
    """The decoder's last word, sent before the end-of-stream marker: how many frames decoded,
    whether the input was cut short, and (filled in by the inference thread) the inference size."""

    decoded: int = 0
    truncated: Optional[str] = None
    inference_size: tuple[int, int] = (0, 0)


Message = Union[DecodedFrame, Sound, StreamEnd]


@dataclass
class Batch:
    """Inference -> finisher: stylized frames at the inference size, and every message (sound
    too) in demux order, so the encoder still gets them in order."""

    frames: list[DecodedFrame]
    pending: list[Message]
    cut: bool  # the stabiliser starts again at this batch (a style switch)
    content: Any = None  # RGB uint8 [B, h, w, 3] at the inference size (what the stabiliser tracks)
    styled: Any = None
    size: tuple[int, int] = (0, 0)  # the inference size
    stability: Optional[float] = None  # a replay's stability for this batch (None: the run's own)


@dataclass
class Encoded:
    """What the encoder alone knows at the end."""

    frames: int = 0
    width: int = 0
    height: int = 0
    first_pts: Optional[int] = None  # source pts of the first frame encoded (segments are joined by it)
    end: StreamEnd = field(default_factory=StreamEnd)


@dataclass(frozen=True)
class Window:
    """Which frames are decoded (``lo``/``hi``, seconds from the stream's start: --start/--end, or
    a segment with its warm-up frames), and where the style schedule starts (``origin``; None =
    the first frame decoded)."""

    lo: Optional[float] = None
    hi: Optional[float] = None
    origin: Optional[float] = None

    def where(self, t: float) -> int:
        """-1 before ``lo``, 0 inside, 1 at/after ``hi``."""
        if self.lo and t < self.lo - 1e-6:
            return -1
        if self.hi is not None and t >= self.hi - 1e-6:
            return 1
        return 0


def decode(reader: VideoFile, routes: dict[int, AudioRoute], fit: Callable[[int, int], tuple[int, int]],
           window: Window, out: FrameQueue, prof: Profile) -> None:
    """Demux and decode in order: frames (shrunk to the inference size while converting) and the
    sound the routes carry; ends with a :class:`StreamEnd`."""
    import av

    vs = reader.video
    t_first = reader.start_time
    # Audio that runs on past the picture is cut at the video's end (the output ends with it).
    video_end = float(vs.duration * vs.time_base) if vs.duration else None
    reach = 0.0  # how far the file's data reaches, any stream (a truncated file ends early in all)
    decoded, last_t = 0, 0.0
    try:
        for packet in reader.container.demux(vs, *(r.source for r in routes.values())):
            if packet.stream.type == "audio":
                reach = max(reach, _sound(packet, routes, t_first, video_end, window, out))
                continue
            with prof.step("decode"):
                frames = packet.decode()
            for frame in frames:
                r = window.where(stream_time(frame.pts, vs.time_base, t_first))
                if r < 0:
                    continue
                if r > 0:
                    out.put(StreamEnd(decoded))
                    return
                with prof.step("convert (decoder)"):
                    item = reader.convert(frame, fit)
                decoded, last_t = decoded + 1, item.time
                with prof.step("wait: decoder blocked"):
                    out.put(item)
    except av.error.FFmpegError as exc:
        truncated = (f"input is damaged or truncated ({exc.strerror or type(exc).__name__}): "
                     f"stylized the {decoded} frames that decoded")
        log.warning("%s", truncated)
        out.put(StreamEnd(decoded, truncated))
        return
    truncated = None if window.lo or window.hi is not None or not decoded else _ended_early(reader, decoded, last_t, reach)
    if truncated:
        log.warning("%s", truncated)
    out.put(StreamEnd(decoded, truncated))


def _sound(packet: Any, routes: dict[int, AudioRoute], t_first: float, video_end: Optional[float], window: Window,
           out: FrameQueue) -> float:
    """Send a sound packet on (inside the window and the picture's length); returns where its
    data ends (seconds from the stream's start; 0 for an empty packet)."""
    if packet.size == 0 or packet.pts is None:
        return 0.0
    t = stream_time(packet.pts, packet.time_base, t_first)
    if (video_end is None or t < video_end) and window.where(t) == 0:
        for item in demux_sound(packet, routes[packet.stream.index]):
            out.put(item)
    return t + float((packet.duration or 0) * packet.time_base)


def _ended_early(reader: VideoFile, decoded: int, last_t: float, data_end: float) -> Optional[str]:
    """Cut-off recordings end without an error: compare with what the header promised."""
    vs, rate, expected_s = reader.video, reader.fps, reader.duration
    if vs.frames and decoded < vs.frames * 0.98:
        return f"input ended early: decoded {decoded} of {vs.frames} frames (all were stylized)"
    if rate and expected_s and max(last_t, data_end) + 2.0 / rate < expected_s * 0.98:
        return f"input ended early at {last_t:.2f} s of {expected_s:.2f} s: stylized the {decoded} frames that decoded"
    return None


class Infer:
    """Batches of frames -> the network; the finisher does the rest (stability, colour, size), so
    the network's thread never waits for it.  Uses the stream state's content code only."""

    def __init__(self, stage: StylizeStage, state: StreamState, codes: Sequence[np.ndarray], opts: Any,
                 window: Window, src: Path) -> None:
        self.stage, self.state, self.opts, self.src = stage, state, opts, src
        self.schedule: Union[StyleSchedule, ReplaySchedule] = (
            ReplaySchedule(list(codes), opts.replay) if opts.replay is not None
            else StyleSchedule(list(codes), opts.switch_every, opts.crossfade_s))
        self.first_code = codes[0]
        self.t0 = window.origin  # media time the style schedule starts at (None: the first frame's)
        self.content_at = window.origin if window.origin is not None else (opts.start or 0.0)
        self.prof = Profile()
        self.in_flight: Optional[tuple[Batch, Any]] = None  # the batch the network is working on

    def run(self, q_in: FrameQueue, q_out: FrameQueue) -> None:
        try:
            self._run(q_in, q_out)
        finally:
            self.settle()

    def _run(self, q_in: FrameQueue, q_out: FrameQueue) -> None:
        self._content_code()
        pending: list[Message] = []
        frames: list[DecodedFrame] = []
        slot, cut, size = 0, False, (0, 0)
        stability: Optional[float] = None  # a replay's, for the frames gathered so far
        while True:
            with self.prof.step("wait: inference starved"):
                item = q_in.get()
            if item is EOS:
                break
            if isinstance(item, DecodedFrame):
                if frames and (item.source_size, item.image.shape) != (frames[0].source_size, frames[0].image.shape):
                    size = self._flush(frames, pending, cut, size, q_out)  # size changed mid-stream
                    frames, pending, cut = [], [], False
                if self.t0 is None:
                    self.t0 = item.time
                now = self._slot(item.time - self.t0)
                if now != slot:  # a style switch: the stabiliser starts again from the new style
                    size = self._flush(frames, pending, cut, size, q_out, stability)
                    frames, pending, cut, slot = [], [], True, now
                if isinstance(self.schedule, ReplaySchedule):  # one stability per batch
                    level = self.schedule.stability_at(item.time - self.t0)
                    if frames and level != stability:
                        size = self._flush(frames, pending, cut, size, q_out, stability)
                        frames, pending, cut = [], [], False
                    stability = level
                frames.append(item)
            pending.append(item)
            if len(frames) >= self.opts.batch:
                size = self._flush(frames, pending, cut, size, q_out, stability)
                frames, pending, cut = [], [], False
        self._flush(frames, pending, cut, size, q_out, stability)
        self._send(q_out)

    def _slot(self, t: float) -> int:
        """Which style period media time ``t`` is in (a change is a switch)."""
        if isinstance(self.schedule, ReplaySchedule):
            return self.schedule.slot_at(t)
        return int(t // self.opts.switch_every) if self.opts.switch_every > 0 else 0

    def _strength(self, t: float) -> float:
        return self.schedule.strength_at(t) if isinstance(self.schedule, ReplaySchedule) else self.opts.strength

    def _content_code(self) -> None:
        """The content's own code comes from the job's first frame at full size, as in live and
        image mode (the decoder's frames may be shrunk), and a segment takes the whole file's."""
        import av

        strength = self.opts.mix_strength
        if strength == 1.0 or not self.stage.stylizer.mixable_codes:
            return
        try:
            first = frame_at(self.src, self.content_at)
            self.stage.strengthen(self.state, self.first_code, strength, first.image)
        except (MediaError, av.error.FFmpegError):  # nothing decodes there: the first decoded frame will do
            pass

    def _flush(self, frames: list[DecodedFrame], pending: list[Message], cut: bool, size: tuple[int, int],
               q_out: FrameQueue, stability: Optional[float] = None) -> tuple[int, int]:
        """Submit ``frames`` to the network and send the batch before them on (one batch stays in
        flight, so the network is never idle while this thread gathers and converts the next);
        returns the inference size."""
        batch = Batch(frames, pending, cut, size=size, stability=stability)
        prof = self.prof
        work = None
        if frames:
            stage, state = self.stage, self.state
            with prof.step("style codes"):
                codes = np.stack([stage.strengthen(state, self.schedule.code_at(f.time - self.t0), self._strength(f.time - self.t0),
                                                   f.image) for f in frames])
            with prof.step("preprocess"):
                batch.content = stage.preprocess([f.image for f in frames], frames[0].source_size)
            with prof.step("infer"):
                work = stage.submit(batch.content, codes)
            batch.size = (batch.content.shape[2], batch.content.shape[1])
        batch.pending = [replace(m, inference_size=batch.size) if isinstance(m, StreamEnd) else m for m in pending]
        previous, self.in_flight = self.in_flight, (batch, work)
        self._deliver(previous, q_out)
        return batch.size

    def _send(self, q_out: FrameQueue) -> None:
        """The batch in flight, once the network is done with it, to the finisher."""
        previous, self.in_flight = self.in_flight, None
        self._deliver(previous, q_out)

    def _deliver(self, item: Optional[tuple[Batch, Any]], q_out: FrameQueue) -> None:
        if item is None:
            return
        batch, work = item
        if work is not None:
            with self.prof.step("infer"):
                batch.styled = work.result()
        if batch.pending:
            with self.prof.step("wait: inference blocked"):
                q_out.put(batch)

    def settle(self) -> None:
        """After a failure or a stop: wait for the batch still in the network (one batch at most,
        as a synchronous call would have been), so no network work outlives this thread."""
        item, self.in_flight = self.in_flight, None
        if item is not None and item[1] is not None:
            try:
                item[1].result()
            except Exception:  # noqa: BLE001 - the run already ends with the error that stopped it
                pass


def finish(stage: StylizeStage, state: StreamState, warm_until: Optional[float], q_in: FrameQueue,
           q_out: FrameQueue, prof: Profile) -> None:
    """Stability at the inference size, then BGR at the source size, in stream order; drops a
    segment's warm-up frames once they have brought the stabiliser's state up to date.  Uses the
    stream state's temporal filter only."""
    while True:
        with prof.step("wait: finisher starved"):
            batch = q_in.get()
        if batch is EOS:
            break
        if batch.frames:
            if batch.cut:
                state.cut(STYLE)
            if batch.stability is not None and batch.stability != state.stability:
                state.set_stability(batch.stability)  # a replay's change: the stabiliser keeps its memory
            with prof.step("postprocess"):
                images = stage.postprocess(batch.content, batch.styled, batch.frames[0].source_size, state)
            for f, image in zip(batch.frames, images):
                f.image = image
        with prof.step("wait: finisher blocked"):
            for it in batch.pending:
                if warm_until is not None and isinstance(it, DecodedFrame) and it.time < warm_until:
                    continue  # a warm-up frame
                q_out.put(it)


@dataclass(frozen=True)
class EncodeSettings:
    """What the encoder needs of the source and the options."""

    rate: Fraction
    time_base: Fraction
    t_first: float  # the video stream's start in the file's clock
    frame_s: float  # one frame's duration at the nominal rate
    origin: Optional[float]  # time zero of the output (None: the first frame's)
    crf: int
    preset: str
    threads: int
    encoder: str  # x264 | nvenc (x264 where NVENC does not open)
    routes: Optional[dict[int, AudioRoute]]  # None: video only (a segment)


def encode(writer: H264Writer, s: EncodeSettings, q_in: FrameQueue, progress: "queue.SimpleQueue[int]",
           prof: Profile) -> Encoded:
    """Frames into H.264 at their source timestamps, sound muxed once a frame covers it."""
    done = Encoded()
    pts0 = 0
    held: list[tuple[float, Sound]] = []  # sound ahead of the picture, muxed once a frame covers it
    video_end = float("-inf")  # end of the last frame encoded: sound after it waits, or is cut
    while True:
        with prof.step("wait: encoder starved"):
            item = q_in.get()
        if item is EOS:
            break
        if isinstance(item, StreamEnd):
            done.end = item
            continue
        if not isinstance(item, DecodedFrame):
            t = sound_time(item, s.t_first, video_end)
            if done.frames and t < video_end:
                writer.mux_sound(item)
            else:
                held.append((t, item))
            continue
        if not done.frames:
            h, w = item.image.shape[:2]
            zero = (s.origin if s.origin is not None else item.time) + s.t_first
            writer.start(w, h, s.rate, s.time_base, crf=s.crf, preset=s.preset, threads=s.threads,
                         audio=s.routes or {}, audio_zero=zero, encoder=s.encoder)
            done.width, done.height, pts0, done.first_pts = w, h, item.pts, item.pts
        t_enc = time.perf_counter()
        writer.write(item.image, item.pts - pts0)
        prof.add("encode", time.perf_counter() - t_enc)
        done.frames += 1
        progress.put(1)
        video_end = max(video_end, item.time + s.frame_s)
        still = []
        for t, a in held:
            if t < video_end:
                writer.mux_sound(a)
            else:
                still.append((t, a))
        held = still
    if held and done.frames:
        log.info("sound after the last picture cut: %.2f s", max(t for t, _ in held) - video_end + s.frame_s)
    if done.frames:
        writer.drain()
    return done
