"""``stylize live``: the main-thread loop that shows the pipeline's frames.

The loop (OpenCV's ``video_threaded.py`` shape: GUI on the main thread) takes each stylized frame
from the :class:`~realtime.live.pipeline.LivePipeline`, composes the view (mirror, side by side)
and hands it to every output (window, recorder, ...) through one :class:`Outputs` fan-out.  Between
frames it runs the controller's queued main-thread actions (recording, snapshots) and reads keys.
Whatever ends the show (q, the window's close button, the end of a file, Ctrl-C, SIGTERM, a failed
worker), the outputs are closed first, so the recording is finished and playable.

The recording has one owner, this loop's thread: starts and stops from keys, the page and the API
all arrive as the controller's main-thread tasks, run one at a time between frames; how it is
started, stopped and accounted, with its timeline and source file, is :mod:`realtime.live.recording`
(a mixin of the app).
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from ..config import KioskConfig, LiveConfig
from ..core.controller import Controller, LiveState
from ..core.events import SHOW
from ..core.frames import Styled
from ..core.workers import EOS
from ..io.images import write_image
from ..io.sinks import Output, Outputs, timestamped_path
from ..io.sinks.window import WindowOutput
from ..io.sources import BackgroundSource, FrameSource
from .keymap import KeyboardControl, KeySource, ScriptedKeys, help_rows
from .overlay import compose, draw_panel
from .pipeline import LivePipeline
from .recording import RecordingMixin
from .show import Ticking, process_age_s
from .take import StyleTaker, TakeError

log = logging.getLogger(__name__)


@dataclass
class Stats:
    """Live figures for the overlay, the status and the benchmark (written by the main thread)."""

    shown: int = 0
    t_shown: collections.deque = field(default_factory=lambda: collections.deque(maxlen=120))
    infer_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=120))
    latency_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=100_000))
    last_index: int = -1
    repeats: int = 0
    first_frame_s: Optional[float] = None  # process age when the first stylized frame was shown

    def record(self, item: Styled, now: float) -> None:
        if self.first_frame_s is None and not item.placeholder:
            self.first_frame_s = process_age_s()
        self.shown += 1
        self.t_shown.append(now)
        self.infer_s.append(item.infer_s)
        self.latency_s.append(now - item.t_capture)
        if item.index == self.last_index:
            self.repeats += 1
        self.last_index = item.index

    def display_fps(self) -> float:
        t = list(self.t_shown)
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def inference_fps(self) -> float:
        s = list(self.infer_s)
        return 1.0 / (sum(s) / len(s)) if s and sum(s) > 0 else 0.0

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(list(self.latency_s), q) * 1000) if self.latency_s else 0.0

    def recent_latency_ms(self) -> float:
        recent = list(self.latency_s)[-30:]
        return float(np.mean(recent) * 1000) if recent else 0.0


class LiveApp(RecordingMixin):
    """The main-thread loop: outputs, keys, the controller's main-thread actions, statistics."""

    def __init__(
        self,
        pipeline: LivePipeline,
        opts: LiveConfig,
        keys: Optional[KeySource] = None,
        outputs: Optional[list[Output]] = None,
        surfaces: Optional[list[Ticking]] = None,
        closed_picture: Optional[np.ndarray] = None,
        idle_clip: Optional[FrameSource] = None,
        kiosk: Optional[KioskConfig] = None,
        window: Optional[WindowOutput] = None,
        taker: Optional[StyleTaker] = None,
        style_source: Optional[BackgroundSource] = None,
    ) -> None:
        """``window``: one already on screen (the start-up card's), else one is opened unless headless;
        ``taker``: makes styles of the camera's picture (``take_style``; None: a show without it);
        ``style_source``: the second source whose picture it takes instead (``--style-source``;
        started by the caller, closed at the end of the show with the taker)."""
        self.p = pipeline
        self.controller: Controller = pipeline.controller
        self.opts = opts
        self.stats = Stats()
        self.source_ended = False  # the show ended because its source did (a file's end, a lost camera)
        self.outputs = Outputs()
        for out in outputs or []:
            self.outputs.add(out)
        kiosk = kiosk or KioskConfig()
        self.window: Optional[WindowOutput] = None
        if window is not None:
            self.window = window
            window.decorate = self._decorate
        elif not opts.headless:
            self.window = WindowOutput(self.controller.state.fullscreen, decorate=self._decorate, kiosk=kiosk.enabled)
        if self.window is not None:
            self.outputs.add(self.window)
        self.keys: KeySource = keys or (_WindowKeys(self.window) if self.window else ScriptedKeys({}))
        self.kiosk = kiosk
        self.keyboard = KeyboardControl(self.controller, enabled=kiosk.keys, exit_keys=kiosk.exit_keys, kiosk=kiosk.enabled)
        self.surfaces: list[Ticking] = list(surfaces or [])  # auto-cycle, status file, heartbeat, hours
        self.closed_picture = closed_picture  # BGR, shown while the schedule keeps the show closed
        self.idle_clip = idle_clip  # a looping file shown as it is in attract mode
        self._clip_next = 0.0
        self.clip_frames = 0
        self.closings = 0
        self.snapshots: list[Path] = []
        self._last: Optional[Styled] = None
        self._last_view: Optional[np.ndarray] = None
        self._last_view_t = 0.0  # the time the outputs were given with it
        self._last_source: Optional[np.ndarray] = None  # the camera picture behind the last view (the source file's)
        self._paused_shown = False
        self._init_recording()
        c = self.controller
        c.bind_main("snapshot", self.snapshot)
        self.taker = taker
        self.style_source = style_source
        if taker is not None:
            c.bind_main("take_style", self.take_style)
        c.add_status(self._status)

    # -- main-thread actions (recording: .recording) -----------------------------------------------
    def snapshot(self) -> list[Path]:
        if self._last is None:
            return []
        base = timestamped_path(self.opts.snapshot_dir, "snapshot", "")
        mirror = self.controller.state.mirror
        saved = []
        for suffix, img in (("styled", self._last.image), ("original", self._last.original)):
            p = Path(f"{base}-{suffix}.png")
            write_image(p, cv2.cvtColor(compose(img, None, False, mirror), cv2.COLOR_BGR2RGB), overwrite=False)
            saved.append(p)
        self.snapshots += saved
        log.info("snapshot %s-{styled,original}.png", base)
        return saved

    def take_style(self, origin: str = SHOW) -> str:
        """Hand a copy of the source's current picture to the taker (main thread: this loop owns
        the shown frame), or of the style source's newest one where there is one (``--style-source``);
        returns what it does.  The style network runs on the taker's thread; before the first real
        picture, or while the style source is not connected, it is refused, saying so."""
        assert self.taker is not None
        if self.style_source is not None:
            picture = self.style_source.latest()
            if picture is None:
                raise TakeError(f"take_style: the style source ({self.style_source.describe()}) is not connected"
                                f" ({self.style_source.why()}); nothing was taken")
            self.taker.submit(picture.copy(), origin=origin)
            return "taking a style from the style source"
        last = self._last
        if last is None or last.placeholder:
            raise TakeError("take_style: no camera picture yet" + (" (the source is away)" if last is not None else ""))
        self.taker.submit(last.original.copy(), origin=origin)
        return "taking a style from the camera"

    # -- status and overlay ----------------------------------------------------------------------
    def _status(self) -> dict[str, Any]:
        s = self.stats
        rec = self.recorder  # read once: the main thread may clear it meanwhile
        return {
            "display_fps": round(s.display_fps(), 1),
            "inference_fps": round(s.inference_fps(), 1),
            "latency_ms": round(s.recent_latency_ms(), 1),
            "shown": s.shown,
            "captured": self.p.captured,
            "dropped": self.p.dropped,
            "recording": str(rec.path) if rec is not None else None,
            "recording_source": str(rec.source_path) if rec is not None and rec.source_path is not None else None,
            "recording_error": self.recording_errors[-1] if self.recording_errors else None,
            "source": self.p.source.describe(),
            "source_away": bool(self._last is not None and self._last.placeholder),
            "worker_restarts": self.p.restart_count,
            "worker_hangs": self.p.hangs,
            **self.p.source.counters(),
            **(self.style_source.status() if self.style_source is not None
               else {"style_source": None, "style_source_connected": False}),
        }

    def overlay_lines(self) -> list[str]:
        st = self.controller.status()
        rec = "  REC" if st["recording"] else ""
        # Two decimals: the stability steps are 0.55 and 0.8, the page's sliders move by 0.05.
        strength = f"{st['strength']:.2f}" if self.controller.mixable else "n/a"
        lines = [
            f"display {st['display_fps']:5.1f} fps   inference {st['inference_fps']:5.1f} fps{rec}",
            f"latency {st['latency_ms']:5.0f} ms   dropped {st['dropped']}"
            + (f"   reconnects {st['reconnects']}" if st.get("reconnects") else ""),
            f"style {st['style']} ({st['style_index'] + 1}/{st['styles']})   strength {strength}"
            + (f"   stability {st['stability']:.2f}" if st["stability"] else ""),
        ]
        if "governor" in st:
            lines.append(f"size {st['inference_side']} for {st['target_fps']:g} fps: {st['governor']}")
        return lines

    def _decorate(self, picture: np.ndarray) -> np.ndarray:
        """What the window adds to the picture (never the recording): overlay, help, pause badge."""
        state = self.controller.state
        if not (state.overlay or state.help or state.paused):
            return picture
        shown = picture.copy()
        if state.overlay:
            draw_panel(shown, self.overlay_lines())
        if state.help:
            draw_panel(shown, help_rows(self.kiosk.enabled, self.kiosk.exit_keys), origin=(8, shown.shape[0] // 3))
        if state.paused:
            draw_panel(shown, ["PAUSED (space resumes)"], origin=(8, max(8, shown.shape[0] - 48)))
        return shown

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> Stats:
        opts = self.opts
        running = False
        try:
            if opts.record:
                self._begin_recording(opts.record_path)  # from the first frame on
            if self.controller.state.open:
                # Marked first: a SIGTERM while start() waits for a thread to come up must still stop
                # the ones that did (stop() skips a worker that never started).
                running = True
                self.p.start()
            while self.controller.state.running:
                if not self.controller.state.open:
                    if running:
                        self._close_show()
                        running = False
                    self._closed_tick()
                    continue
                if not running:
                    log.info("show open: reopening %s", self.p.source.describe())
                    running = True
                    self.p.reopen()
                    if self.style_source is not None:
                        self.style_source.start()
                wait = 0.05
                if self.idle_clip is not None and self.controller.state.idle:
                    # the network rests while the clip plays: wait only until its next frame is due
                    wait = min(wait, max(0.0, self._clip_next - time.monotonic()))
                item = self.p.get(timeout=wait)
                if item is EOS:
                    self.source_ended = True
                    break
                state = self.controller.state
                if state.idle and self.idle_clip is not None:
                    self._show_idle_clip()
                elif item is not None and not state.paused:
                    self._show(item, state)
                    if opts.max_frames and self.stats.shown >= opts.max_frames:
                        break  # every shown frame was also handed to the recorder
                self._refresh_paused(state)
                self._between_frames()
                if self.window is not None and self.window.closed:
                    break  # the user closed the window with its close button
        finally:
            try:
                if running:
                    self.p.stop()  # re-raises a worker's error, after ...
            finally:
                self.controller.quit(origin=SHOW)
                self.controller.cancel_main_tasks()
                self._finish_recording()  # ... the recording is finalized first, whatever happened
                self.recordings += self.outputs.close()
                self._close_surfaces()
                if self.taker is not None:
                    self.taker.close()  # its thread joined; a take under way finishes first
                if self.style_source is not None:
                    self.style_source.close()  # its reader thread joined (2 s at most), its source closed
                self.p.source.close()
                if self.idle_clip is not None:
                    self.idle_clip.close()
        return self.stats

    def _close_surfaces(self) -> None:
        """The surfaces' last word (the status file's ``running: false`` with the final counts: a
        monitor read ``running: true`` from the last periodic write long after the show ended)."""
        for surface in self.surfaces:
            close = getattr(surface, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception:  # noqa: BLE001 - the show is over; its own error, if any, is what matters
                log.warning("closing %s failed", type(surface).__name__, exc_info=True)

    def _between_frames(self, wait_ms: int = 1) -> None:
        """Everything the main thread does besides showing: surfaces, queued actions, keys, window."""
        for surface in self.surfaces:
            surface.tick()
        self._check_recording()
        self.controller.run_main_tasks()
        self.keyboard.press(self.keys.poll(wait_ms, self.stats.shown))
        if self.window is not None:
            self.window.set_fullscreen(self.controller.state.fullscreen)

    def _close_show(self) -> None:
        """Closing time: stop the workers, release the camera; the recording keeps going on reopen."""
        self.p.stop()
        self.p.source.close()
        if self.style_source is not None:
            self.style_source.close()  # the second camera rests too; started again on reopening
        self.closings += 1
        log.info("show closed: camera released, network idle")

    def _closed_tick(self) -> None:
        """While closed: a black screen (or the configured picture), keys and surfaces still alive."""
        if self.window is not None and not self.window.closed:
            w, h = self.p.source.size if all(self.p.source.size) else (640, 480)
            picture = self.closed_picture if self.closed_picture is not None else np.zeros((h, w, 3), np.uint8)
            self.window.write(picture, time.monotonic())
        self._between_frames(wait_ms=100)
        if self.window is not None and self.window.closed:
            self.controller.quit(origin=SHOW)

    def _show(self, item: Styled, state: LiveState) -> None:
        self._last = item
        view = compose(item.image, item.original, state.side_by_side, state.mirror)
        self._last_view, self._last_view_t, self._last_source = view, item.t_capture, item.original
        self._paused_shown = False
        self.outputs.write(view, item.t_capture)
        self.stats.record(item, time.monotonic())

    def _show_idle_clip(self) -> None:
        """Attract mode with a prepared clip: its next frame when due (at the clip's own rate)."""
        assert self.idle_clip is not None
        now = time.monotonic()
        if now < self._clip_next:
            return
        picture = self.idle_clip.read()  # a looping file source: None only if the file went away
        if picture is None:
            log.warning("idle clip %s ended or failed: attract mode shows the camera", self.idle_clip.describe())
            self.idle_clip.close()
            self.idle_clip = None
            return
        self._clip_next = max(now, self._clip_next) + 1.0 / (self.idle_clip.fps or 25.0)
        self._last_view, self._last_view_t = picture, now
        self.outputs.write(picture, now)
        self.clip_frames += 1

    def _refresh_paused(self, state: LiveState) -> None:
        """Pausing shows the badge at once on the window (the frozen picture is not re-recorded)."""
        if state.paused and not self._paused_shown and self.window is not None and self._last_view is not None:
            self.window.write(self._last_view, time.monotonic())
            self._paused_shown = True
        elif not state.paused:
            self._paused_shown = False


class _WindowKeys:
    """Keys from the OpenCV window (main thread only)."""

    def __init__(self, window: WindowOutput) -> None:
        self.window = window

    def poll(self, wait_ms: int, shown: int) -> int:
        return self.window.poll_key(wait_ms)
