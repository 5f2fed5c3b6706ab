"""``stylize video``: recorded clips in, stylized clips out, with the same length, frame rate,
timestamps and sound.

Three threads overlap the work: a decoder (PyAV demux + decode, audio packets passed along in
demux order), the inference worker (batched), and an encoder (libx264 + muxing); the main thread
shows progress and handles Ctrl-C.  The output is written to a hidden temp file beside the target
and renamed only when complete, so an error or Ctrl-C never leaves a partial file.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .config import Config
from .crossfade import StyleSchedule
from .engine import Engine, open_engine
from .errors import MediaError, UserError
from .images import temp_path_for
from .styles import apply_strength
from .temporal import TemporalSmoother
from .workers import EOS, FrameQueue, Worker, join_all

log = logging.getLogger(__name__)

OUTPUT_EXTS = (".mp4", ".m4v", ".mov", ".mkv", ".avi")  # containers that take H.264
MP4_AUDIO = {"aac", "mp3", "alac", "opus", "ac3", "eac3", "flac"}
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".gif")


@dataclass(frozen=True)
class VideoOptions:
    size: int = 0  # inference short side (0 = source's own, capped by engine.max_size)
    strength: float = 1.0
    switch_every: float = 0.0
    fade_s: float = 0.5
    crf: int = 18
    preset: str = "medium"
    batch: int = 4
    queue_frames: int = 16
    audio: bool = True
    smoothing: float = 0.0
    start: Optional[float] = None
    end: Optional[float] = None


@dataclass
class VideoResult:
    frames: int = 0
    seconds: float = 0.0
    audio_mode: str = "none"
    width: int = 0
    height: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Frame:
    rgb: np.ndarray
    pts: int
    time: float


def _open_input(path: Path):
    import av

    if not path.exists():
        raise MediaError(f"video not found: {path}")
    if path.is_dir():
        raise MediaError(f"expected a video file, got a folder: {path}")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        reason = exc.strerror or type(exc).__name__
        hint = "; a truncated recording?" if "Invalid data" in reason else ""
        raise MediaError(f"not a readable video file: {path} ({reason}{hint})") from None
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        container.close()
        raise MediaError(f"{path} has no video stream ({kinds})")
    fmt = container.format.name
    if fmt == "image2" or fmt.endswith("_pipe"):
        container.close()
        raise MediaError(f"{path} is a still image, not a video: use `stylize image`")
    return container


def _rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Honour the display matrix: rotate counterclockwise by ``rotation`` degrees (FFmpeg's rule)."""
    k = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


class VideoStylizer:
    """Stylizes one file: the three-thread pipeline behind ``stylize video``."""

    def __init__(self, engine: Engine, codes: Sequence[np.ndarray], opts: VideoOptions) -> None:
        self.engine = engine
        self.codes = list(codes)
        self.opts = opts
        self.frames_done = 0

    # -- the pipeline -------------------------------------------------------------------------
    def run(self, src: Path, dst: Path, on_progress: Optional[Callable[[int], None]] = None) -> VideoResult:
        import av

        opts = self.opts
        result = VideoResult()
        inp = _open_input(src)
        tmp = temp_path_for(dst)
        stop = threading.Event()
        workers: list[Worker] = []
        out = None
        try:
            vs = inp.streams.video[0]
            vs.thread_type = "AUTO"
            try:
                out = av.open(str(tmp), "w", format=_format_for(dst))
            except (av.error.FFmpegError, ValueError) as exc:
                raise MediaError(f"cannot write {dst}: {exc}") from None
            if not {"libx264", "h264"} & set(out.supported_codecs):
                raise MediaError(f"cannot write H.264 video into a {dst.suffix} file: use {', '.join(OUTPUT_EXTS)}")
            audio_in = list(inp.streams.audio) if opts.audio else []
            audio_map, audio_mode = self._audio_plan(out, audio_in)
            result.audio_mode = audio_mode
            self._seek(inp, vs)
            q_in = FrameQueue(opts.queue_frames, stop)
            q_out = FrameQueue(opts.queue_frames, stop)
            state: dict[str, Any] = {"t0": None, "truncated": None, "decoded": 0, "last_t": 0.0}

            def decode() -> None:
                self._decode(inp, vs, audio_map, q_in, state)

            def infer() -> None:
                self._infer(q_in, q_out, state)

            def encode() -> None:
                self._encode(out, vs, audio_map, q_out, state, result)

            workers = [
                Worker("decoder", decode, lambda: q_in.put(EOS), stop),
                Worker("inference", infer, lambda: q_out.put(EOS), stop),
                Worker("encoder", encode, lambda: None, stop),
            ]
            t_start = time.perf_counter()
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
                raise MediaError(f"{src}: {type(exc).__name__}: {exc}") from None
            if on_progress and self.frames_done != last:
                on_progress(self.frames_done - last)
            result.seconds = time.perf_counter() - t_start
            if result.frames == 0:
                raise MediaError(f"{src}: no video frames decoded" + (" in the chosen --start/--end range" if opts.start or opts.end else ""))
            out.close()
            out = None
            tmp.replace(dst)
            return result
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
            inp.close()
            tmp.unlink(missing_ok=True)

    def _audio_plan(self, out, audio_in) -> tuple[dict, str]:
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

    @staticmethod
    def _add_audio_streams(out, audio_map) -> None:
        """Create the output audio streams (after the video stream, so video is stream 0)."""
        supported = getattr(out, "supported_codecs", None) or set()
        for entry in audio_map.values():
            a, copy, _ = entry
            if copy:
                entry[2] = out.add_stream_from_template(a)
            else:
                enc = "aac" if "aac" in supported else out.default_audio_codec
                o = out.add_stream(enc, rate=a.codec_context.sample_rate or 48000)
                try:
                    o.layout = a.codec_context.layout
                except Exception:  # noqa: BLE001 - keep the encoder's default layout
                    pass
                entry[2] = o

    def _seek(self, inp, vs) -> None:
        """Jump to the keyframe before --start; the decoder then skips frames before it."""
        if not self.opts.start:
            return
        tb = vs.time_base
        target = int(self.opts.start / tb) + (vs.start_time or 0)
        try:
            inp.seek(target, stream=vs, backward=True, any_frame=False)
        except Exception:  # noqa: BLE001 - unseekable: decode from the start and skip
            log.debug("seek failed; decoding from the start")

    def _in_range(self, t: float) -> int:
        """-1 before --start, 0 inside, 1 at/after --end."""
        if self.opts.start and t < self.opts.start - 1e-6:
            return -1
        if self.opts.end is not None and t >= self.opts.end - 1e-6:
            return 1
        return 0

    def _decode(self, inp, vs, audio_map, q_in: FrameQueue, state) -> None:
        import av

        streams = [vs] + [s for s in inp.streams.audio if s.index in audio_map]
        t_first = float(vs.start_time * vs.time_base) if vs.start_time else 0.0
        done = False
        try:
            for packet in inp.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.size == 0 or packet.pts is None:
                        continue
                    t = float(packet.pts * packet.time_base) - t_first
                    r = self._in_range(t)
                    if r == 0:
                        copy = audio_map[packet.stream.index][1]
                        if copy:
                            q_in.put(("a", packet))
                        else:
                            for af in packet.decode():
                                q_in.put(("af", af, packet.stream.index))
                    continue
                for frame in packet.decode():
                    t = float(frame.pts * vs.time_base) - t_first if frame.pts is not None else 0.0
                    r = self._in_range(t)
                    if r < 0:
                        continue
                    if r > 0:
                        done = True
                        break
                    rgb = _rotate(frame.to_ndarray(format="rgb24"), frame.rotation or 0)
                    state["decoded"] += 1
                    state["last_t"] = t
                    q_in.put(("v", _Frame(rgb, frame.pts, t)))
                if done:
                    break
        except av.error.FFmpegError as exc:
            state["truncated"] = (
                f"input is damaged or truncated ({exc.strerror or type(exc).__name__}): "
                f"stylized the {state['decoded']} frames that decoded"
            )
            log.warning("%s", state["truncated"])
            return
        if done or self.opts.start or self.opts.end is not None or not state["decoded"]:
            return
        # Cut-off recordings end without an error: compare with what the header promised.
        rate = float(vs.average_rate or vs.guessed_rate or 0)
        expected_s = float(vs.duration * vs.time_base) if vs.duration else (inp.duration or 0) / 1e6
        if vs.frames and state["decoded"] < vs.frames * 0.98:
            state["truncated"] = f"input ended early: decoded {state['decoded']} of {vs.frames} frames (all were stylized)"
        elif rate and expected_s and state["last_t"] + 2.0 / rate < expected_s * 0.98:
            state["truncated"] = (
                f"input ended early at {state['last_t']:.2f} s of {expected_s:.2f} s: "
                f"stylized the {state['decoded']} frames that decoded"
            )
        if state["truncated"]:
            log.warning("%s", state["truncated"])

    def _infer(self, q_in: FrameQueue, q_out: FrameQueue, state) -> None:
        engine, opts = self.engine, self.opts
        schedule = StyleSchedule(self.codes, opts.switch_every, opts.fade_s)
        smoother = TemporalSmoother(opts.smoothing) if opts.smoothing > 0 else None
        content_code = None
        pending: list = []
        n_frames = 0
        size = None
        src_size = None

        def flush() -> None:
            nonlocal pending, n_frames
            frames = [it[1] for it in pending if it[0] == "v"]
            if frames:
                codes = np.stack([apply_strength(schedule.code_at(f.time - state["t0"]), content_code, opts.strength) for f in frames])
                styled = engine.stylize_frames([f.rgb for f in frames], codes, size, smoother)
                it_styled = iter(styled)
                pending = [("v", _Frame(next(it_styled), it[1].pts, it[1].time)) if it[0] == "v" else it for it in pending]
            for it in pending:
                q_out.put(it)
            pending, n_frames = [], 0

        while True:
            item = q_in.get()
            if item is EOS:
                break
            if item[0] == "v":
                f: _Frame = item[1]
                h, w = f.rgb.shape[:2]
                if src_size is not None and (w, h) != src_size:
                    flush()  # size changed mid-stream: finish the batch at the old size
                if src_size != (w, h):
                    src_size = (w, h)
                    size = engine.inference_size(w, h, opts.size)
                    if smoother is not None:
                        smoother.reset()
                if state["t0"] is None:
                    state["t0"] = f.time
                    if opts.strength != 1.0:
                        content_code = engine.stylizer.style_code(f.rgb)
                n_frames += 1
            pending.append(item)
            if n_frames >= opts.batch:
                flush()
        flush()

    def _encode(self, out, vs, audio_map, q_out: FrameQueue, state, result: VideoResult) -> None:
        import av

        ovs = None
        pts0 = None
        audio_offsets: dict[int, int] = {}
        held: list = []  # audio that arrives before the first stylized frame fixes the streams

        def mux_audio(item) -> None:
            if item[0] == "a":
                packet = item[1]
                o = audio_map[packet.stream.index][2]
                off = audio_offsets.setdefault(o.index, self._offset_in(packet.time_base, state["t0"], vs))
                packet.pts -= off
                if packet.dts is not None:
                    packet.dts -= off
                if off and packet.pts + (packet.duration or 0) <= 0:
                    return  # wholly before --start (encoder priming at pts < 0 is kept otherwise)
                packet.stream = o
                out.mux(packet)
            else:  # a decoded audio frame to re-encode
                af, idx = item[1], item[2]
                o = audio_map[idx][2]
                off = audio_offsets.setdefault(o.index, self._offset_in(af.time_base, state["t0"], vs))
                if af.pts is not None:
                    af.pts -= off
                    if off and af.pts + af.samples <= 0:
                        return
                for p in o.encode(af):
                    out.mux(p)

        while True:
            item = q_out.get()
            if item is EOS:
                break
            if item[0] != "v":
                if ovs is None:
                    held.append(item)
                else:
                    mux_audio(item)
                continue
            f: _Frame = item[1]
            if ovs is None:
                ovs = self._video_stream(out, vs, f.rgb, result)
                self._add_audio_streams(out, audio_map)
                pts0 = f.pts
            frame = av.VideoFrame.from_ndarray(f.rgb, format="rgb24")
            frame.pts, frame.time_base = f.pts - pts0, vs.time_base
            for p in ovs.encode(frame):
                out.mux(p)
            result.frames += 1
            self.frames_done = result.frames
            for h in held:
                mux_audio(h)
            held.clear()
        if ovs is not None:
            for p in ovs.encode(None):
                out.mux(p)
            for _, copy, o in audio_map.values():
                if not copy:
                    for p in o.encode(None):
                        out.mux(p)

    @staticmethod
    def _offset_in(time_base, t0: Optional[float], vs) -> int:
        start = float(vs.start_time * vs.time_base) if vs.start_time else 0.0
        return int(round(((t0 or 0.0) + start) / float(time_base)))

    def _video_stream(self, out, vs, rgb: np.ndarray, result: VideoResult):
        h, w = rgb.shape[:2]
        rate = vs.average_rate or vs.guessed_rate or Fraction(30)
        ovs = out.add_stream("libx264", rate=rate)
        ovs.width, ovs.height = w, h
        if w % 2 or h % 2:
            ovs.pix_fmt = "yuv444p"
            msg = f"{w}x{h} has an odd dimension: encoded as H.264 4:4:4 to keep the exact size (some players need even sizes)"
            log.warning("%s", msg)
        else:
            ovs.pix_fmt = "yuv420p"
        ovs.codec_context.time_base = vs.time_base
        ovs.time_base = vs.time_base
        ovs.options = {"crf": str(self.opts.crf), "preset": self.opts.preset}
        result.width, result.height = w, h
        return ovs


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
        c = _open_input(path)
    except MediaError:
        return None
    try:
        vs = c.streams.video[0]
        n = vs.frames
        rate = float(vs.average_rate or 0)
        dur = float(vs.duration * vs.time_base) if vs.duration else (c.duration / 1e6 if c.duration else 0)
        if not n and rate and dur:
            n = int(dur * rate)
        if n and rate and (opts.start or opts.end is not None):
            end = opts.end if opts.end is not None else dur
            n = max(0, int((end - (opts.start or 0)) * rate))
        return n or None
    finally:
        c.close()


def run_video_command(args: argparse.Namespace, load_cfg) -> int:
    """Entry point of ``stylize video``: several inputs, one bad file does not stop the rest."""
    from tqdm import tqdm

    if bool(args.output) == bool(args.out_dir):
        raise UserError("give exactly one of -o OUTPUT or --out-dir DIR")
    inputs = expand_inputs(args.inputs)
    if args.output and len(inputs) > 1:
        raise UserError("-o takes one input; use --out-dir DIR for several")
    if len(args.style) > 1 and not args.switch_every:
        raise UserError("several --style values need --switch-every SECONDS")
    if args.switch_every and args.switch_every < 0:
        raise UserError("--switch-every must be positive")
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UserError(f"--end ({args.end}) must be after --start ({args.start})")
    presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
    if args.preset is not None and args.preset not in presets:
        raise UserError(f"--preset must be one of {', '.join(presets)}")
    if args.crf is not None and not 0 <= args.crf <= 51:
        raise UserError(f"--crf must be 0..51 (H.264 quality; 18 looks lossless), got {args.crf}")
    if args.smooth is not None and not 0.0 <= args.smooth < 1.0:
        raise UserError(f"--smooth must be in 0..0.95, got {args.smooth}")
    for name, v in (("--start", args.start), ("--end", args.end)):
        if v is not None and v < 0:
            raise UserError(f"{name} must be >= 0")
    cfg: Config = load_cfg(
        args, {"engine.batch_size": args.batch, "video.crf": args.crf, "video.smoothing": args.smooth, "video.preset": args.preset}
    )
    out_dir = Path(args.out_dir) if args.out_dir else None
    if args.output and Path(args.output).suffix.lower() not in OUTPUT_EXTS:
        raise UserError(f"output must be an H.264 video file ({', '.join(OUTPUT_EXTS)}): {args.output}")
    engine = open_engine(cfg)
    styles = engine.resolve_styles(args.style)
    if len(args.style) == 1:
        styles = styles[:1]
    codes = [engine.bank.code_for(s) for s in styles]
    strength = cfg.styles.strength if args.strength is None else args.strength
    if (strength != 1.0 or len(codes) > 1) and not engine.stylizer.mixable_codes:
        raise UserError(f"strength and style switching need --backend tf or tflite (not {engine.stylizer.name})")
    opts = VideoOptions(
        size=args.size if args.size is not None else cfg.video.size,
        strength=strength,
        switch_every=args.switch_every,
        fade_s=cfg.styles.crossfade_s,
        crf=cfg.video.crf,
        preset=cfg.video.preset,
        batch=max(1, cfg.engine.batch_size),
        queue_frames=cfg.video.queue_frames,
        audio=not args.no_audio,
        smoothing=cfg.video.smoothing,
        start=args.start,
        end=args.end,
    )
    show = not args.quiet and sys.stderr.isatty()
    failed: list[str] = []
    done: list[tuple[Path, VideoResult]] = []
    for src in inputs:
        dst = Path(args.output) if args.output else out_dir / f"{src.stem}-{styles[0].name}.mp4"
        try:
            if dst.exists() and not args.overwrite:
                raise UserError(f"{dst} exists (use --overwrite to replace it)")
            if dst.resolve() == src.resolve():
                raise UserError(f"output {dst} would overwrite the input")
            with tqdm(total=_frames_estimate(src, opts), unit="frame", desc=src.name, disable=not show, leave=False, file=sys.stderr) as bar:
                res = VideoStylizer(engine, codes, opts).run(src, dst, bar.update)
            done.append((dst, res))
            log.info(
                "%s -> %s: %d frames %dx%d in %.1f s (%.1f fps), audio %s",
                src, dst, res.frames, res.width, res.height, res.seconds, res.fps, res.audio_mode,
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
