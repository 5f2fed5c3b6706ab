"""The live show's recordings: started, stopped, accounted, each with its timeline and source file.

Why here: the recording has one owner, the main loop's thread (:class:`~realtime.live.app.LiveApp`):
starts and stops from keys, the page and the API all arrive as the controller's main-thread tasks,
run one at a time between frames.  A recording that fails (a full disk) is ended there, its whole
fragments kept, and the failure stays in the status (``recording_error``) for whoever watches the
show.  Every recording keeps its timeline (``NAME.timeline.json``, :mod:`realtime.io.sinks.timeline`):
the state it started with and each control event during it at its media time, so the performance
can be re-rendered offline.  With ``live.record_source`` (``--record-source``) the recording also
keeps the camera's own frames, ``NAME.source.mp4``: for each recorded view, the source picture it
was made from (or, while an idle clip is on screen, the last one), at the same time, so ``stylize
video NAME.source.mp4 --timeline NAME.timeline.json`` re-renders the show frame for frame.

A mixin of the app rather than an object of its own: the recording reads the loop's last view and
source picture as they are shown, and the show's books (``recorder``, ``recordings``,
``recording_errors``) stay where the status, ``run_live`` and the tests read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..config import LiveConfig
from ..core.controller import Controller, LiveState
from ..core.events import ControlEvent
from ..io.paths import OutputError
from ..io.sinks import Outputs, VideoRecorder, timestamped_path
from ..io.sinks.recorder import name_taken
from ..io.sinks.timeline import Timeline
from .pipeline import LivePipeline


class RecordingMixin:
    """Recording management for :class:`~realtime.live.app.LiveApp` (main thread only, except the
    timeline listener); the app sets the attributes below and calls :meth:`_init_recording`."""

    p: LivePipeline
    controller: Controller
    opts: LiveConfig
    outputs: Outputs
    _last_view: Optional[np.ndarray]
    _last_view_t: float
    _last_source: Optional[np.ndarray]

    def _init_recording(self) -> None:
        """The show's books, empty, and the controller's recording actions bound to this loop."""
        self.recorder: Optional[VideoRecorder] = None  # set and cleared on the main thread only
        self.recordings: list[Path] = []
        self.recording_errors: list[str] = []  # one line per recording that failed (kept what it could)
        c = self.controller
        c.bind_main("toggle_recording", lambda: self.stop_recording() if self.recorder else self.start_recording())
        c.bind_main("start_recording", self.start_recording)
        c.bind_main("stop_recording", self.stop_recording)

    def start_recording(self, path: Optional[str] = None) -> Path:
        """Start recording (main thread); returns the file it will be.  It starts with the picture
        on screen, so a start and an immediate stop still leave a file; before the show has shown
        anything it is refused, saying so (nothing would be recorded)."""
        if self.recorder is not None:
            return self.recorder.path
        if self._last_view is None:
            raise OutputError("recording not started: the show has not shown a picture yet"
                              + (" (it is closed)" if not self.controller.state.open else " (it is starting)"))
        rec = self._begin_recording(path)
        rec.write(self._last_view, self._last_view_t)
        return rec.path

    def _begin_recording(self, path: Optional[str]) -> VideoRecorder:
        """The recorder, its temp file made now: a folder that cannot take it is the caller's error."""
        target = Path(path) if path else timestamped_path(self.opts.record_dir)
        keep_source = self.opts.record_source
        if not path:  # two starts within a millisecond (a stop between): the name announced is the file's
            stem, n = target.stem, 2
            while name_taken(target, keep_source):
                target, n = target.with_name(f"{stem}-{n}{target.suffix}"), n + 1
        timeline = Timeline(target, lambda: self._timeline_state(self.controller.state), source=keep_source)
        self.recorder = VideoRecorder(target, crf=self.opts.crf, preset=self.opts.record_preset,
                                      fps_hint=self.p.source.fps or 30.0, timeline=timeline,
                                      source_of=self._source_picture if keep_source else None)
        self.controller.subscribe(self._timeline_listener(timeline))
        self.outputs.add(self.recorder)
        return self.recorder

    def _source_picture(self) -> np.ndarray:
        """The source file's frame for the view being recorded (main thread, as the view is handed
        over): the camera picture it was made from; before any, a black one of the view's size."""
        if self._last_source is None:
            assert self._last_view is not None
            self._last_source = np.zeros_like(self._last_view)
        return self._last_source

    def _timeline_state(self, state: LiveState) -> dict[str, Any]:
        """What a re-render needs of a state: the style by name and file, strength, stability, and
        the crossfade a style switch gets in it (seconds: beats at the tempo already worked out, so
        a replay fades as the show did after a set_crossfade or a tempo change)."""
        entry = self.controller.styles[state.style_index]
        return {"style": entry.name, "style_path": str(entry.path) if entry.path else None,
                "style_index": state.style_index, "strength": state.strength, "stability": state.stability,
                "crossfade_s": self.p.crossfade_for(state)}

    def _timeline_listener(self, timeline: Timeline) -> Callable[[ControlEvent], None]:
        """A controller subscriber for one recording's timeline (any thread; no file work); it
        unsubscribes itself at the first event after the recording ended."""

        def listener(event: ControlEvent) -> None:
            if timeline.closed:
                self.controller.unsubscribe(listener)
                return
            timeline.add({"seq": event.seq, "action": event.action, "args": dict(event.args), "origin": event.origin,
                          "changed": sorted(event.changed), **self._timeline_state(event.state)})

        return listener

    def stop_recording(self) -> Optional[Path]:
        """Stop recording (main thread); returns the finished file (None: nothing was recording).
        A recording that leaves no file is an error that says why."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        done = self.outputs.remove(rec)
        self._account(rec, done)
        if done is None:
            raise OutputError(rec.failure or f"recording {rec.path} stopped before its first frame: no file was written")
        return done

    def _account(self, rec: VideoRecorder, done: Optional[Path]) -> None:
        """A closed recording into the show's books: its file and its source file, or its failure
        for the status."""
        if done is not None:
            self.recordings.append(done)
        if rec.source_result is not None:
            self.recordings.append(rec.source_result)
        if rec.failure is not None:
            self.recording_errors.append(rec.failure)

    def _check_recording(self) -> None:
        """A recording whose encoder failed (a full disk) is ended now: its whole fragments are
        published and the show goes on without it (its one log line comes from the recorder)."""
        rec = self.recorder
        if rec is not None and rec.failure is not None:
            self.recorder = None
            self._account(rec, self.outputs.remove(rec))

    def _finish_recording(self) -> None:
        """At the end of the show, whatever ended it: the recording under way is finalized."""
        rec, self.recorder = self.recorder, None
        if rec is not None:
            self._account(rec, self.outputs.remove(rec))
