"""``stylize live``: capture thread -> buffer -> inference worker -> main thread (window, keys,
overlay, recorder).

Why this shape (PITFALLS 1-3): only the main thread touches the OpenCV window (macOS and Qt crash
otherwise); a live source feeds a one-slot "newest frame wins" buffer so latency cannot build up
(drops are counted), a file feeds a small blocking queue so nothing is dropped; every worker has
the shared stop event, timeouts, and an end-of-stream marker sent in ``finally``; a worker's
exception is re-raised on the main thread after the recording has been finalized.
"""

from __future__ import annotations

import argparse
import collections
import logging
import queue
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol

import cv2
import numpy as np

from .backends import Stylizer
from .config import Config
from .crossfade import CodeFader
from .errors import UserError
from .images import inference_size, resize, write_image
from .overlay import HELP_LINES, compose, draw_panel
from .sinks import VideoRecorder, timestamped_path
from .sources import Frame, FrameSource, open_source
from .styles import apply_strength
from .temporal import LEVELS as SMOOTH_LEVELS
from .temporal import TemporalSmoother
from .workers import EOS, FrameQueue, LatestSlot, Stopped, Worker

log = logging.getLogger(__name__)

WINDOW = "stylize"
STRENGTH_STEP = 0.1
STRENGTH_RANGE = (0.0, 2.0)


class WorkerFailed(UserError):
    """The inference or capture worker died; the message names it (exit status 1)."""

    exit_code = 1


@dataclass
class Styled:
    """A stylized frame ready for display."""

    index: int
    image: np.ndarray  # BGR, capture size
    original: np.ndarray  # BGR, capture size
    t_capture: float
    infer_s: float
    style: str
    strength: float


@dataclass
class Stats:
    """Live figures for the overlay and the benchmark (main thread only)."""

    shown: int = 0
    t_shown: collections.deque = field(default_factory=lambda: collections.deque(maxlen=120))
    infer_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=120))
    latency_s: list = field(default_factory=list)
    last_index: int = -1
    repeats: int = 0

    def record(self, item: Styled, now: float) -> None:
        self.shown += 1
        self.t_shown.append(now)
        self.infer_s.append(item.infer_s)
        if len(self.latency_s) < 100_000:
            self.latency_s.append(now - item.t_capture)
        if item.index == self.last_index:
            self.repeats += 1
        self.last_index = item.index

    def display_fps(self) -> float:
        t = self.t_shown
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def inference_fps(self) -> float:
        return 1.0 / (sum(self.infer_s) / len(self.infer_s)) if self.infer_s else 0.0

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(self.latency_s, q) * 1000) if self.latency_s else 0.0

    def recent_latency_ms(self) -> float:
        return float(np.mean(self.latency_s[-30:]) * 1000) if self.latency_s else 0.0


class LivePipeline:
    """The two worker threads and their buffers; the main thread reads stylized frames with ``get``."""

    def __init__(
        self,
        source: FrameSource,
        stylizer: Stylizer,
        codes: Sequence[np.ndarray],
        names: Sequence[str],
        short_side: int = 384,
        strength: float = 1.0,
        crossfade_s: float = 0.5,
        smoothing: float = 0.0,
    ) -> None:
        if not codes:
            raise UserError("no styles to show")
        self.source = source
        self.stylizer = stylizer
        self.codes = list(codes)
        self.names = list(names)
        self.short_side = short_side
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._style_index = 0
        self._strength = strength
        self._fader = CodeFader(self.codes[0], crossfade_s)
        self._content_code: Optional[np.ndarray] = None
        self._smoother = TemporalSmoother(smoothing)
        if source.live:
            self._in: LatestSlot | FrameQueue = LatestSlot(self._stop)
            self._out: LatestSlot | FrameQueue = LatestSlot(self._stop)
        else:
            self._in = FrameQueue(2, self._stop)
            self._out = FrameQueue(2, self._stop)
        self._capture = Worker("capture", self._capture_loop, lambda: self._in.put(EOS), self._stop)
        self._infer = Worker("inference", self._infer_loop, lambda: self._out.put(EOS), self._stop)
        self.captured = 0

    # -- controls (any thread) ----------------------------------------------------------------
    @property
    def style_index(self) -> int:
        return self._style_index

    @property
    def strength(self) -> float:
        return self._strength

    def set_style(self, index: int) -> None:
        with self._lock:
            self._style_index = index % len(self.codes)
            self._fader.set_target(self.codes[self._style_index])

    def set_strength(self, value: float) -> None:
        with self._lock:
            self._strength = float(min(STRENGTH_RANGE[1], max(STRENGTH_RANGE[0], value)))

    @property
    def smoothing(self) -> float:
        return self._smoother.amount

    def cycle_smoothing(self) -> None:
        """Next of 0 / 0.5 / 0.8 (the worker picks it up on its next frame)."""
        with self._lock:
            higher = [v for v in SMOOTH_LEVELS if v > self._smoother.amount + 1e-6]
            self._smoother = TemporalSmoother(higher[0] if higher else 0.0)

    def inference_size(self, width: int, height: int) -> tuple[int, int]:
        """Network input size for a source size: the configured short side, never upscaling."""
        return inference_size(width, height, min(self.short_side or min(width, height), min(width, height)))

    @property
    def dropped(self) -> int:
        return self._in.dropped if isinstance(self._in, LatestSlot) else 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._capture.start()
        self._infer.start()

    def get(self, timeout: float = 0.5):
        """Next stylized frame, EOS at the end, or None if none arrived within ``timeout``."""
        try:
            return self._out.get(timeout=timeout)
        except Stopped:
            return EOS
        except queue.Empty:
            return None

    def stop(self) -> None:
        """Stop both workers, wait for them, then re-raise the first worker error."""
        self._stop.set()
        for w in (self._capture, self._infer):
            if w.is_alive() or w.ident is not None:
                w.join(10)
        for w in (self._infer, self._capture):
            if w.is_alive():
                raise WorkerFailed(f"{w.name} did not stop")
        for w in (self._infer, self._capture):
            if w.error is not None:
                err = w.error
                if isinstance(err, UserError):
                    raise err
                what = "inference worker" if w is self._infer else "capture"
                raise WorkerFailed(f"{what} failed: {type(err).__name__}: {err}") from err

    # -- workers ---------------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        i = 0
        while not self._stop.is_set():
            img = self.source.read()
            if img is None:
                return
            self._in.put(Frame(i, img, time.monotonic()))
            i += 1
            self.captured = i

    def _infer_loop(self) -> None:
        src_size: tuple[int, int] = (0, 0)
        size = (0, 0)
        while True:
            item = self._in.get()
            if item is EOS:
                return
            frame: Frame = item
            h, w = frame.image.shape[:2]
            if (w, h) != src_size:  # first frame, or the source changed resolution
                src_size = (w, h)
                size = self.inference_size(w, h)
            rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            with self._lock:
                strength, index = self._strength, self._style_index
            code = self._fader.current()
            if strength != 1.0 and self.stylizer.mixable_codes:
                if self._content_code is None:
                    self._content_code = self.stylizer.style_code(rgb)
                code = apply_strength(code, self._content_code, strength)
            with self._lock:
                smoother = self._smoother
            small = resize(rgb, size)
            t0 = time.perf_counter()
            out = smoother(small, self.stylizer.stylize(small[None], code)[0])
            infer_s = time.perf_counter() - t0
            styled = cv2.cvtColor(resize(out, (w, h)), cv2.COLOR_RGB2BGR)
            self._out.put(Styled(frame.index, styled, frame.image, frame.t_capture, infer_s, self.names[index], strength))


class KeySource(Protocol):
    def poll(self, wait_ms: int, shown: int) -> int:
        """A key code, or -1 when none was pressed; ``shown`` counts the frames shown so far."""


class WindowKeys:
    """Keys from the OpenCV window (main thread only)."""

    def poll(self, wait_ms: int, shown: int) -> int:
        return cv2.waitKeyEx(max(1, wait_ms))


class ScriptedKeys:
    """Keys for headless runs and tests: ``{frame_number: key}`` pressed after that many shown frames."""

    def __init__(self, script: dict[int, str | int]) -> None:
        self.script = dict(script)

    def poll(self, wait_ms: int, shown: int) -> int:
        key = self.script.pop(shown, None)
        if key is None:
            if wait_ms > 0:
                time.sleep(wait_ms / 1000.0)
            return -1
        return ord(key) if isinstance(key, str) else key


LEFT = {65361, 2424832, 81}
RIGHT = {65363, 2555904, 83}
UP = {65362, 2490368, 82}
DOWN = {65364, 2621440, 84}


@dataclass
class LiveOptions:
    headless: bool = False
    max_frames: int = 0
    overlay: bool = True
    mirror: bool = False
    fullscreen: bool = False
    record: Optional[str] = None  # None = not at start; "" = timestamped file in record_dir
    record_dir: str = "recordings"
    snapshot_dir: str = "snapshots"
    crf: int = 20


class LiveApp:
    """The main-thread loop: window, keys, overlay, snapshots and recording."""

    def __init__(self, pipeline: LivePipeline, opts: LiveOptions, keys: Optional[KeySource] = None) -> None:
        self.p = pipeline
        self.opts = opts
        self.keys: KeySource = keys or (ScriptedKeys({}) if opts.headless else WindowKeys())
        self.stats = Stats()
        self.overlay = opts.overlay
        self.mirror = opts.mirror
        self.side_by_side = False
        self.paused = False
        self.show_help = False
        self.fullscreen = opts.fullscreen
        self.recorder: Optional[VideoRecorder] = None
        self.recordings: list[Path] = []
        self.snapshots: list[Path] = []
        self._last: Optional[Styled] = None
        self._running = True
        self._window_size: tuple[int, ...] = ()

    # -- actions ---------------------------------------------------------------------------------
    def handle_key(self, key: int) -> None:
        if key < 0:
            return
        ch = chr(key & 0xFF) if key < 0x110000 and (key & 0xFF) == key else ""
        if key in RIGHT or ch == "n":
            self.p.set_style(self.p.style_index + 1)
        elif key in LEFT or ch == "p":
            self.p.set_style(self.p.style_index - 1)
        elif ch and ch in "123456789":
            if int(ch) <= len(self.p.codes):
                self.p.set_style(int(ch) - 1)
        elif ch in ("+", "=") or key in UP:
            self.p.set_strength(self.p.strength + STRENGTH_STEP)
        elif ch in ("-", "_") or key in DOWN:
            self.p.set_strength(self.p.strength - STRENGTH_STEP)
        elif ch == "r":
            self.toggle_recording()
        elif ch == "s":
            self.snapshot()
        elif ch == " ":
            self.paused = not self.paused
        elif ch == "o":
            self.overlay = not self.overlay
        elif ch == "f":
            self.fullscreen = not self.fullscreen
            if not self.opts.headless:
                cv2.setWindowProperty(WINDOW, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL)
        elif ch == "m":
            self.mirror = not self.mirror
        elif ch == "c":
            self.side_by_side = not self.side_by_side
        elif ch == "t":
            self.p.cycle_smoothing()
        elif ch == "h":
            self.show_help = not self.show_help
            print_help()
        elif ch == "q" or key == 27:
            self._running = False

    def toggle_recording(self, path: Optional[str] = None) -> None:
        if self.recorder is not None:
            done = self.recorder.close()
            if done:
                self.recordings.append(done)
            self.recorder = None
            return
        target = Path(path) if path else timestamped_path(self.opts.record_dir)
        fps = self.p.source.fps or 30.0
        self.recorder = VideoRecorder(target, crf=self.opts.crf, fps_hint=fps)

    def snapshot(self) -> None:
        if self._last is None:
            return
        base = timestamped_path(self.opts.snapshot_dir, "snapshot", "")
        for suffix, img in (("styled", self._last.image), ("original", self._last.original)):
            p = Path(f"{base}-{suffix}.png")
            write_image(p, cv2.cvtColor(compose(img, None, False, self.mirror), cv2.COLOR_BGR2RGB))
            self.snapshots.append(p)
        log.info("snapshot %s-{styled,original}.png", base)

    # -- loop ------------------------------------------------------------------------------------
    def overlay_lines(self, item: Styled) -> list[str]:
        s = self.stats
        rec = "  REC" if self.recorder else ""
        strength = f"{item.strength:.1f}" if self.p.stylizer.mixable_codes else "n/a"
        return [
            f"display {s.display_fps():5.1f} fps   inference {s.inference_fps():5.1f} fps{rec}",
            f"latency {s.recent_latency_ms():5.0f} ms   dropped {self.p.dropped}",
            f"style {item.style} ({self.p.style_index + 1}/{len(self.p.codes)})   strength {strength}"
            + (f"   smooth {self.p.smoothing:.1f}" if self.p.smoothing else ""),
        ] + (["paused"] if self.paused else [])

    def run(self) -> Stats:
        opts = self.opts
        if not opts.headless:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
            if self.fullscreen:
                cv2.setWindowProperty(WINDOW, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        if opts.record is not None:
            self.toggle_recording(opts.record or None)
        try:
            self.p.start()
            while self._running:
                item = self.p.get(timeout=0.05)
                if item is EOS:
                    break
                if item is not None and not self.paused:
                    self._show(item)
                    if opts.max_frames and self.stats.shown >= opts.max_frames:
                        break  # every shown frame was also handed to the recorder
                self.handle_key(self.keys.poll(1, self.stats.shown))
                if not opts.headless and self.stats.shown and cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                    break  # the user closed the window with its close button
        finally:
            try:
                self.p.stop()  # re-raises a worker's error, after ...
            finally:
                if self.recorder is not None:  # ... the recording is finalized, whatever happened
                    done = self.recorder.close()
                    if done:
                        self.recordings.append(done)
                    self.recorder = None
                self.p.source.close()
                if not opts.headless:
                    cv2.destroyAllWindows()
                    cv2.waitKey(1)
        return self.stats

    def _show(self, item: Styled) -> None:
        self._last = item
        picture = compose(item.image, item.original, self.side_by_side, self.mirror)
        now = time.monotonic()
        if self.recorder is not None:
            self.recorder.write(picture, item.t_capture)
        if not self.opts.headless:
            shown = picture.copy() if (self.overlay or self.show_help) else picture
            if self.overlay:
                draw_panel(shown, self.overlay_lines(item))
            if self.show_help:
                draw_panel(shown, list(HELP_LINES), origin=(8, shown.shape[0] // 3))
            if shown.shape[:2] != self._window_size and not self.fullscreen:
                self._window_size = shown.shape[:2]
                cv2.resizeWindow(WINDOW, shown.shape[1], shown.shape[0])  # follow side-by-side toggles
            cv2.imshow(WINDOW, shown)
            now = time.monotonic()
        self.stats.record(item, now)


def print_help() -> None:
    print("keys:\n  " + "\n  ".join(HELP_LINES), flush=True)


def run_live_command(args: argparse.Namespace, load_cfg) -> int:
    from .engine import open_engine

    cfg: Config = load_cfg(args)
    live = cfg.live
    source = open_source(
        args.source if args.source is not None else live.source,
        width=args.width or live.width,
        height=args.height or live.height,
        fps=args.fps or (0.0 if args.source not in (None, "synthetic") else live.fps),
        loop=args.loop,
        keep_pace=args.keep_pace,
    )
    if args.max_frames < 0:
        raise UserError("--max-frames must be >= 0")
    if args.headless and not args.max_frames and args.record is None:
        log.info("headless with no --record and no --max-frames: runs until Ctrl-C or the source ends")
    source.open()  # fail fast, before loading the network
    try:
        engine = open_engine(cfg)
        specs = args.style or ([cfg.styles.default] if cfg.styles.default else [cfg.styles.dir])
        styles = engine.resolve_styles(specs)
        codes = [engine.bank.code_for(s) for s in styles]
        size = args.size or live.size
        strength = cfg.styles.strength if args.strength is None else args.strength
        smoothing = live.smoothing if args.smooth is None else args.smooth
        pipeline = LivePipeline(
            source, engine.stylizer, codes, [s.name for s in styles], size, strength, cfg.styles.crossfade_s, smoothing
        )
        w, h = source.size
        if w and h:
            engine.stylizer.warmup(*pipeline.inference_size(w, h))
        log.info("source: %s; %d styles; inference short side %d", source.describe(), len(styles), size)
        opts = LiveOptions(
            headless=args.headless,
            max_frames=args.max_frames,
            overlay=live.overlay,
            mirror=live.mirror,
            fullscreen=args.fullscreen,
            record=args.record,
            record_dir=live.record_dir,
            snapshot_dir=live.snapshot_dir,
            crf=live.crf,
        )
        if not args.headless:
            print_help()
        app = LiveApp(pipeline, opts)
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _sigterm)  # installations are stopped with SIGTERM: finish files
        try:
            stats = app.run()
        finally:
            signal.signal(signal.SIGTERM, previous)
        log.info(
            "%d frames shown, display %.1f fps, latency p50 %.0f ms / p95 %.0f ms, %d dropped",
            stats.shown, stats.display_fps(), stats.latency_ms(50), stats.latency_ms(95), pipeline.dropped,
        )
        for p in app.recordings:
            print(f"recording: {p}")
        return 0
    finally:
        source.close()


def _sigterm(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt
