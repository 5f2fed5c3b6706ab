"""The live pipeline's two worker threads: capture -> buffer -> stylize -> buffer -> main thread.

Why this shape (shutdown hangs seen in roboflow/supervision#2022 and abhiTronix/vidgear#344): a
live source feeds a one-slot "newest frame wins" buffer so latency cannot build up (drops are
counted), a file feeds a small blocking queue so nothing is dropped; every worker has the shared stop event, timeouts, and an end-of-stream marker sent in
``finally``; a worker's exception is re-raised on the main thread by :meth:`LivePipeline.stop`.
The inference worker reads the controller's state once per frame, so a change from any control
surface takes effect on the next frame, and runs the frame through the one
:class:`~realtime.pipeline.stage.StylizeStage` with the show's own
:class:`~realtime.pipeline.state.StreamState` (content code, stability), which only this class
touches: every reason to start over is a :meth:`~realtime.pipeline.state.StreamState.cut`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from ..core.controller import Controller
from ..core.frames import Frame, Styled
from ..core.motion import MotionMeter
from ..core.workers import EOS, FrameQueue, LatestSlot, Stopped, Worker
from ..effects.crossfade import CodeFader
from ..errors import UserError
from ..io.sources import FrameSource
from ..pipeline.stage import StylizeStage
from ..pipeline.state import PLACEHOLDER, STREAM, STYLE, StreamState

log = logging.getLogger(__name__)


class WorkerFailed(UserError):
    """The inference or capture worker died; the message names it (exit status 1)."""

    exit_code = 1


class LivePipeline:
    """The two worker threads and their buffers; the main thread reads stylized frames with ``get``."""

    def __init__(
        self,
        source: FrameSource,
        stage: StylizeStage,
        controller: Controller,
        codes: Sequence[np.ndarray],
        crossfade_s: float = 0.5,
        restarts_per_hour: int = 0,
        clock=time.monotonic,
        motion: Optional[MotionMeter] = None,
        rest_while_idle: bool = False,
    ) -> None:
        if len(codes) != len(controller.style_names):
            raise ValueError("one style code per style name")
        self.source = source
        self.stage = stage
        self.controller = controller
        self.codes = list(codes)
        state = controller.state
        self.fader = CodeFader(self.codes[state.style_index], crossfade_s)
        self._style_index = state.style_index
        self.state = StreamState(state.stability)  # the show's stream: only the inference thread uses it
        self._dropped_before = 0  # drops counted by buffers of earlier openings (closing hours)
        self._build()
        self.captured = 0
        self.restarts_per_hour = restarts_per_hour
        self.restarts: list[float] = []  # restarts within the last hour (clock seconds), for the limit
        self.restart_count = 0  # all restarts since the show started, for the status
        self._clock = clock
        self.motion = motion  # fed on the capture thread: attract mode reads when something last moved
        self.rest_while_idle = rest_while_idle  # an idle clip is showing: the network need not run

    def _build(self) -> None:
        """Fresh buffers and threads (threads cannot be restarted): at start and on reopening."""
        self._stop = threading.Event()
        if self.source.live:
            self._in: LatestSlot | FrameQueue = LatestSlot(self._stop)
            self._out: LatestSlot | FrameQueue = LatestSlot(self._stop)
        else:
            self._in = FrameQueue(2, self._stop)
            self._out = FrameQueue(2, self._stop)
        self._capture = Worker("capture", self._capture_loop, lambda: self._in.put(EOS), self._stop)
        self._infer = Worker("inference", self._infer_loop, lambda: self._out.put(EOS), self._stop)

    def add_code(self, code: np.ndarray) -> None:
        """A style added while running (an upload): its code, before the controller learns its name."""
        self.codes.append(code)

    @property
    def dropped(self) -> int:
        return self._dropped_before + (self._in.dropped if isinstance(self._in, LatestSlot) else 0)

    def reopen(self) -> None:
        """After :meth:`stop` (closing hours): reopen the source and start new worker threads."""
        self._dropped_before = self.dropped
        getattr(self.source, "reopen", self.source.open)()  # a supervised camera may still be away
        self.state.cut(STREAM)
        if self.motion is not None:
            self.motion.reset()
        self._build()
        self.start()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._capture.start()
        self._infer.start()

    def get(self, timeout: float = 0.5) -> Any:
        """Next :class:`Styled` frame, EOS at the end, or None if none arrived within ``timeout``."""
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
            if w.ident is not None:
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
            t, away = time.monotonic(), self.source.away
            if self.motion is not None and not away:
                self.motion.update(img, t)
            self._in.put(Frame(i, img, t, away))
            i += 1
            self.captured = i

    def _follow_controller(self) -> tuple[int, float]:
        """Pick up changes made by any control surface since the last frame."""
        state = self.controller.state
        if state.style_index != self._style_index:
            self._style_index = state.style_index
            self.fader.set_target(self.codes[state.style_index])
            self.state.cut(STYLE)  # a new style: nothing of the old one is carried along
        if state.stability != self.state.stability:
            self.state.set_stability(state.stability)  # a new level keeps what it holds
        return state.style_index, state.strength

    def _infer_loop(self) -> None:
        names = self.controller.style_names
        while True:
            item = self._in.get()
            if item is EOS:
                return
            frame: Frame = item
            if self.rest_while_idle and self.controller.state.idle:
                continue  # the idle clip is on screen: no inference until something moves
            try:
                styled, infer_s, index, strength = self._stylize(frame)
            except Exception as exc:  # noqa: BLE001 - restarted below, or re-raised on the main thread
                if not self._may_restart(exc):
                    raise
                continue
            self._out.put(Styled(frame.index, styled, frame.image, frame.t_capture, infer_s, names[index], strength, frame.placeholder))

    def _stylize(self, frame: Frame) -> tuple[np.ndarray, float, int, float]:
        index, strength = self._follow_controller()
        t0 = time.perf_counter()
        if frame.placeholder:  # the source is away: show its stand-in as it is
            self.state.cut(PLACEHOLDER)
            styled = frame.image
        else:
            code = self.stage.strengthen(self.state, self.fader.current(), strength, frame.image)
            styled = self.stage([frame.image], code, self.state)[0]
        return styled, time.perf_counter() - t0, index, strength

    def _may_restart(self, exc: Exception) -> bool:
        """Unattended shows restart a failed inference step a few times an hour, keeping the
        controller's state (style, strength); past the limit the failure ends the show (non-zero
        exit, so a service manager restarts the whole process)."""
        if self.restarts_per_hour <= 0:
            return False
        now = self._clock()
        self.restarts = [t for t in self.restarts if now - t < 3600.0]
        if len(self.restarts) >= self.restarts_per_hour:
            log.error("inference failed again (%s: %s): %d restarts in the last hour, giving up",
                      type(exc).__name__, exc, len(self.restarts))
            return False
        self.restarts.append(now)
        self.restart_count += 1
        log.warning("inference failed (%s: %s); restarted with the same style and strength (%d of %d this hour)",
                    type(exc).__name__, exc, len(self.restarts), self.restarts_per_hour)
        self.state.cut(STREAM)
        return True
