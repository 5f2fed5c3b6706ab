"""The live pipeline's two worker threads: capture -> buffer -> stylize -> buffer -> main thread.

Why this shape (shutdown hangs seen in roboflow/supervision#2022 and abhiTronix/vidgear#344): a
live source feeds a one-slot "newest frame wins" buffer so latency cannot build up (drops are
counted), a file feeds a small blocking queue so nothing is dropped; every worker has the shared stop event, timeouts, and an end-of-stream marker sent in
``finally``; a worker's exception is re-raised on the main thread by :meth:`LivePipeline.stop`.
The inference worker reads the controller's state once per frame, so a change from any control
surface takes effect on the next frame, and runs the frame through the one
:class:`~realtime.pipeline.stage.StylizeStage` with the stream's own
:class:`~realtime.pipeline.state.StreamState` (content code, stability), which belongs to the
inference worker that uses it: every reason to start over is a
:meth:`~realtime.pipeline.state.StreamState.cut`, and a new worker starts with a new state.

A crash of an inference step is retried (``restarts_per_hour``); a call that never returns (a hung
driver) is caught by the watchdog in :meth:`LivePipeline.get`, which abandons that worker and starts
a new one under the same budget (see :meth:`LivePipeline._watch` for why it lives there).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..core.controller import Controller, LiveState
from ..core.events import ControlEvent
from ..core.frames import Frame, Styled
from ..core.motion import MotionMeter
from ..core.performer import crossfade_seconds_of
from ..core.workers import EOS, FrameQueue, LatestSlot, Stopped, Worker
from ..effects.crossfade import CodeFader
from ..errors import UserError
from ..io.sources import FrameSource
from ..pipeline.stage import StylizeStage
from ..pipeline.state import PLACEHOLDER, SIZE, STREAM, STYLE, StreamState
from .governor import Governor

log = logging.getLogger(__name__)


class WorkerFailed(UserError):
    """The inference or capture worker died; the message names it (exit status 1)."""

    exit_code = 1


@dataclass
class _InferenceRun:
    """One inference worker's life.  Its own output buffer: a worker the watchdog gave up on can
    finish late, and whatever it puts then lands where nobody reads (no lock needed against the
    race between its "am I still current?" check and its put).  ``retired`` is set by the
    watchdog; ``busy_since`` (monotonic seconds) is set while a call runs.  Its own stream state
    too: a hung call that returns late finishes its frame on the state of a worker nobody reads."""

    gen: int
    out: LatestSlot | FrameQueue
    state: StreamState
    retired: bool = False
    busy_since: Optional[float] = None


class LivePipeline:
    """The two worker threads and their buffers; the main thread reads stylized frames with ``get``."""

    def __init__(
        self,
        source: FrameSource,
        stage: StylizeStage,
        controller: Controller,
        codes: Optional[Sequence[np.ndarray]] = None,
        crossfade_s: Optional[float] = None,
        restarts_per_hour: int = 0,
        clock=time.monotonic,
        motion: Optional[MotionMeter] = None,
        rest_while_idle: bool = False,
        hang_s: float = 10.0,
        governor: Optional[Governor] = None,
        crossfade_beats: float = 0.0,
    ) -> None:
        """``crossfade_s``: None follows the controller's crossfade time (``set_crossfade``; the
        show's ``styles.crossfade_s`` is its first value); a number pins it (tests, benchmarks).
        ``crossfade_beats`` > 0: with a tempo known, a switch lasts that many beats instead
        (``show.crossfade_beats``)."""
        if codes is not None:  # a set of names (tests, benchmarks): its codes come here
            controller.styles.give_codes(codes)
        self.source = source
        self.stage = stage
        self.controller = controller
        self.styles = controller.styles  # the show's styles and their codes, one set (core.styleset)
        state = controller.state
        self.crossfade_s = crossfade_s
        self.crossfade_beats = crossfade_beats
        self.fader = CodeFader(self.styles[state.style_index].code, self.crossfade_now(), clock=clock)
        self._style_index = state.style_index
        self._style_code = self.styles[state.style_index].code  # what the fader was last sent (by identity)
        # The fade length of the last style switch, worked out when the switch was made (the timeline
        # stamps its event with the same): a set_crossfade or tempo change that comes within the
        # frame before the inference thread picks the switch up must not change that fade.
        self._switch_fade: Optional[tuple[int, float]] = None
        controller.subscribe(self._on_change)
        self._dropped_before = 0  # drops counted by buffers of earlier openings (closing hours)
        self.hang_s = hang_s  # an inference call with no result this long is a hang; 0 = not watched
        self.governor = governor  # moves the stage's short side to hold the frame rate (None: the size is pinned)
        if governor is not None:
            stage.short_side = governor.short_side
        self.hangs = 0  # hung calls detected since the show started, for the status
        self._gen = 0  # inference workers started so far (the current one's number)
        self._restart_lock = threading.Lock()  # the budget is used by the inference thread (crashes) and the main thread (hangs)
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
        self._in: LatestSlot | FrameQueue = self._buffer()
        self._capture = Worker("capture", self._capture_loop, lambda: self._in.put(EOS), self._stop)
        self._abandoned: list[Worker] = []  # hung inference workers: never joined (they may never return)
        self._failure: Optional[WorkerFailed] = None  # the watchdog's reason to end the show
        self._new_inference()

    def _buffer(self) -> LatestSlot | FrameQueue:
        return LatestSlot(self._stop) if self.source.live else FrameQueue(2, self._stop)

    def _new_inference(self) -> None:
        """A new inference worker with its own output buffer (at build, and after a hang); the
        capture worker and the input buffer carry on as they are."""
        self._gen += 1
        run = _InferenceRun(self._gen, self._buffer(), StreamState(self.controller.state.stability))
        self._run, self._out = run, run.out
        self._infer = Worker("inference", lambda: self._infer_loop(run), lambda: self._end_run(run), self._stop)

    @staticmethod
    def _end_run(run: _InferenceRun) -> None:
        """The end-of-stream marker, unless the watchdog retired the worker (nobody reads its buffer)."""
        if not run.retired:
            run.out.put(EOS)

    def crossfade_now(self) -> float:
        """The length a style switch's crossfade gets now: beats at the tempo, or seconds."""
        return self.crossfade_for(self.controller.state)

    def crossfade_for(self, state: LiveState) -> float:
        """The length a style switch's crossfade gets in ``state`` (the timeline stamps each event
        with it, so a replay fades as the show did after a set_crossfade or a tempo change)."""
        if self.crossfade_beats > 0 and state.bpm > 0:
            return crossfade_seconds_of(state.bpm, state.crossfade_s, self.crossfade_beats)
        return state.crossfade_s if self.crossfade_s is None else self.crossfade_s

    @property
    def state(self) -> StreamState:
        """The current inference worker's stream state (read it, for status and tests; only that
        worker changes it)."""
        return self._run.state

    @property
    def codes(self) -> list[np.ndarray]:
        """The styles' codes, in order (a snapshot)."""
        return [e.code for e in self.styles.snapshot()]

    @property
    def dropped(self) -> int:
        return self._dropped_before + (self._in.dropped if isinstance(self._in, LatestSlot) else 0)

    def reopen(self) -> None:
        """After :meth:`stop` (closing hours): reopen the source and start new worker threads."""
        self._dropped_before = self.dropped
        getattr(self.source, "reopen", self.source.open)()  # a supervised camera may still be away
        if self.motion is not None:
            self.motion.reset()
        self._build()
        self.start()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._capture.start()
        self._infer.start()

    def get(self, timeout: float = 0.5) -> Any:
        """Next :class:`Styled` frame, EOS at the end, or None if none arrived within ``timeout``.
        Runs the inference watchdog first (:meth:`_watch`)."""
        self._watch()
        try:
            return self._out.get(timeout=timeout)
        except Stopped:
            return EOS
        except queue.Empty:
            return None

    def stop(self) -> None:
        """Stop both workers, wait for them, then re-raise the first worker error (a hang the
        watchdog gave up on first: the worker it abandoned is not waited for)."""
        self._stop.set()
        workers = [w for w in (self._infer, self._capture) if w not in self._abandoned]
        for w in reversed(workers):
            if w.ident is not None:
                w.join(10)
        for w in workers:
            if w.is_alive():
                raise WorkerFailed(f"{w.name} did not stop")
        if self._failure is not None:
            raise self._failure
        for w in workers:
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

    def _on_change(self, event: ControlEvent) -> None:
        """A controller subscriber (the thread of the change): a style switch's fade length, now."""
        if event.changed & {"style_index", "styles"}:
            self._switch_fade = (event.state.style_index, self.crossfade_for(event.state))

    def _follow_controller(self, stream: StreamState) -> tuple[int, float]:
        """Pick up changes made by any control surface since the last frame."""
        state = self.controller.state
        code = self.styles[state.style_index].code
        # The code too, not only the index: a slot may get a new style in place (StyleSet.replace).
        if state.style_index != self._style_index or code is not self._style_code:
            self._style_index = state.style_index
            self._style_code = code
            fade = self._switch_fade
            self.fader.set_target(code, fade[1] if fade is not None and fade[0] == state.style_index else self.crossfade_now())
            stream.cut(STYLE)  # a new style: nothing of the old one is carried along
        if state.stability != stream.stability:
            stream.set_stability(state.stability)  # a new level keeps what it holds
        return state.style_index, state.strength

    def _infer_loop(self, run: _InferenceRun) -> None:
        """The inference worker.  After each call it checks whether the watchdog retired it while
        it hung: a late result (or error) is dropped and the thread ends, touching nothing shared."""
        while True:
            item = self._in.get()
            if item is EOS or run.retired:
                return
            frame: Frame = item
            if self.rest_while_idle and self.controller.state.idle:
                continue  # the idle clip is on screen: no inference until something moves
            run.busy_since = time.monotonic()
            try:
                styled, infer_s, index, strength = self._stylize(frame, run.state)
            except Exception as exc:  # noqa: BLE001 - restarted below, or re-raised on the main thread
                if run.retired:
                    return
                if not self._may_restart(exc):
                    raise
                run.state.cut(STREAM)
                continue
            finally:
                run.busy_since = None
            if run.retired:
                return
            run.out.put(Styled(frame.index, styled, frame.image, frame.t_capture, infer_s, self.styles[index].name, strength, frame.placeholder))
            if self.governor is not None and not frame.placeholder:
                self._govern(infer_s, run.state)

    def _govern(self, infer_s: float, stream: StreamState) -> None:
        """The governor's move, applied between frames on this thread: the next frame is stylized
        at the new size, and the stream's temporal memory starts over (no smear across sizes); the
        style code and strength are untouched."""
        side = self.governor.observe(infer_s)  # type: ignore[union-attr]
        if side is not None:
            self.stage.short_side = side
            stream.cut(SIZE)

    def _stylize(self, frame: Frame, stream: StreamState) -> tuple[np.ndarray, float, int, float]:
        index, strength = self._follow_controller(stream)
        t0 = time.perf_counter()
        if frame.placeholder:  # the source is away: show its stand-in as it is
            stream.cut(PLACEHOLDER)
            styled = frame.image
        else:
            code = self.stage.strengthen(stream, self.fader.current(), strength, frame.image)
            styled = self.stage([frame.image], code, stream)[0]
        return styled, time.perf_counter() - t0, index, strength

    def _may_restart(self, exc: Exception) -> bool:
        """Unattended shows restart a failed inference step a few times an hour, keeping the
        controller's state (style, strength); past the limit the failure ends the show (non-zero
        exit, so a service manager restarts the whole process)."""
        if self.restarts_per_hour <= 0:
            return False
        if not self._take_restart():
            log.error("inference failed again (%s: %s): %d restarts in the last hour, giving up",
                      type(exc).__name__, exc, len(self.restarts))
            return False
        log.warning("inference failed (%s: %s); restarted with the same style and strength (%d of %d this hour)",
                    type(exc).__name__, exc, len(self.restarts), self.restarts_per_hour)
        return True

    def _take_restart(self) -> bool:
        """One restart from the hourly budget that crashes and hangs share; False when it is spent."""
        with self._restart_lock:
            if self.restarts_per_hour <= 0:
                return False
            now = self._clock()
            self.restarts = [t for t in self.restarts if now - t < 3600.0]
            if len(self.restarts) >= self.restarts_per_hour:
                return False
            self.restarts.append(now)
            self.restart_count += 1
            return True

    def _watch(self) -> None:
        """The inference watchdog: a call with no result after ``hang_s`` is a hang.

        Why on the main thread, inside :meth:`get`, and not a thread of its own: the main thread
        already comes here every few tens of milliseconds (it is the one that would see the show
        freeze), so there is no extra thread to stop and join; whoever reads the pipeline is watched
        without having to remember it; and the restart runs on the same thread as ``start``,
        ``stop`` and ``reopen``, so the worker bookkeeping needs no lock.  (A backend that hangs
        while holding the GIL stops every Python thread alike; only a service manager's watchdog
        sees that.)

        Python threads cannot be killed, so the hung worker is abandoned: marked retired (its late
        result goes to its own buffer, which nobody reads, and it then ends), renamed, and never
        joined; a call that does come back late finishes its frame on its own worker's stream state.
        A new worker with a fresh stream state takes over the same input buffer, so capture never stops and the controller's style and strength stay.  Each
        hang takes a restart from ``restarts_per_hour``; with none left, the show ends with one line.
        """
        run = self._run
        since = run.busy_since
        if self.hang_s <= 0 or since is None or run.retired or self._stop.is_set():
            return
        hung_s = time.monotonic() - since
        if hung_s < self.hang_s:
            return
        self.hangs += 1
        run.retired = True
        self._infer.name = f"realtime-inference-{run.gen}-abandoned"
        self._abandoned.append(self._infer)
        if not self._take_restart():
            why = ("restarts are off (show.worker_restarts_per_hour is 0)" if self.restarts_per_hour <= 0
                   else f"{len(self.restarts)} restarts in the last hour, giving up")
            log.warning("inference hung: no result for %.1f s (live.hang_s %g); %s", hung_s, self.hang_s, why)
            self._failure = WorkerFailed(f"inference worker hung: no result for {hung_s:.1f} s (live.hang_s {self.hang_s:g}); {why}")
            self._stop.set()  # the capture worker ends; get() returns EOS; stop() raises the failure
            return
        log.warning("inference hung: no result for %.1f s (live.hang_s %g); abandoned that call and restarted the "
                    "inference worker with the same style and strength (%d of %d this hour)",
                    hung_s, self.hang_s, len(self.restarts), self.restarts_per_hour)
        self._new_inference()
        self._infer.start()
