"""The live pipeline with no camera and no model files: a fake stylizer, synthetic and file
sources, scripted keys, controller actions from other threads, outputs, failures, threads.
(The last two tests run the real command with the real models.)"""

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from fakes import FakeCamera, FakeStylizer, fake_codes

from realtime.config import LiveConfig
from realtime.core.controller import Controller, LiveState
from realtime.pipeline.stage import StylizeStage
from realtime.errors import MediaError
from realtime.io.sinks import Output
from realtime.io.sources import FileSource, SupervisedSource, SyntheticSource, open_source
from realtime.io.synthetic import write_clip
from realtime.live.app import LiveApp
from realtime.live.keymap import ScriptedKeys
from realtime.live.pipeline import LivePipeline, WorkerFailed


def make_app(source, tmp_path, stylizer=None, keys=None, outputs=None, state=None, n_styles=4, crossfade_s=0.2, **kw):
    codes = fake_codes(n_styles)
    controller = Controller([f"s{i}" for i in range(n_styles)], state)
    stage = StylizeStage(stylizer or FakeStylizer(), short_side=64)
    p = LivePipeline(source, stage, controller, codes, crossfade_s)
    opts = LiveConfig(headless=True, record_dir=str(tmp_path / "rec"), snapshot_dir=str(tmp_path / "snap"), **kw)
    return LiveApp(p, opts, keys or ScriptedKeys({}), outputs), p


class CollectingOutput(Output):
    """A test output: keeps what it is given."""

    name = "collector"

    def __init__(self):
        self.frames, self.times, self.closed = [], [], False

    def write(self, frame, t):
        self.frames.append(frame.copy())
        self.times.append(t)

    def close(self):
        self.closed = True


def decoded_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def test_synthetic_headless_counts_frames_latency_and_drops(tmp_path):
    app, p = make_app(SyntheticSource(96, 64, fps=1000), tmp_path, stylizer=FakeStylizer(delay_s=0.01), max_frames=25)
    stats = app.run()
    assert stats.shown == 25
    assert 0 < stats.latency_ms(50) <= stats.latency_ms(95) < 2000
    assert stats.repeats == 0  # frames are numbered: nothing shown twice
    # 1000 fps capture outruns inference: the one-slot buffer must have dropped frames, and counted them.
    assert p.dropped > 0 and p.captured >= stats.shown + p.dropped - 2


def test_file_source_drops_nothing_and_ends(tmp_path):
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=15, width=96, height=64, fps=60, audio=False)
    app, p = make_app(FileSource(clip), tmp_path)
    p.source.open()
    stats = app.run()
    assert stats.shown == 15 and p.dropped == 0
    assert stats.last_index == 14 and stats.repeats == 0


def test_hotkeys_change_style_strength_record_and_snapshot(tmp_path):
    keys = ScriptedKeys({2: "n", 4: "3", 5: "t", 6: "+", 7: "+", 8: "r", 9: "s", 14: "c", 20: "r", 22: "m", 26: "o", 28: "q"})
    app, p = make_app(SyntheticSource(96, 64, fps=60), tmp_path, keys=keys, max_frames=500)
    stats = app.run()
    s = app.controller.state
    assert 28 <= stats.shown < 40  # q ended the run
    assert s.style_index == 2
    assert abs(s.strength - 1.2) < 1e-6
    assert s.stability == 0.55
    assert s.side_by_side and s.mirror and not s.overlay
    assert len(app.recordings) == 1 and app.recordings[0].exists()
    frames = decoded_frames(app.recordings[0])
    assert 8 <= len(frames) <= 14
    assert {f.shape for f in frames} == {(64, 96, 3)}  # side by side from frame 14 keeps the frame size
    assert sorted(x.name.rsplit("-", 1)[1] for x in app.snapshots) == ["original.png", "styled.png"]
    assert all(x.exists() for x in app.snapshots)
    # live.record_preset (ultrafast: the show keeps the CPU), as x264 writes its settings into the file
    assert b"cabac=0" in app.recordings[0].read_bytes()[:200_000]


def test_the_recording_preset_is_the_configs(tmp_path):
    import dataclasses

    keys = ScriptedKeys({2: "r", 12: "r", 14: "q"})
    app, p = make_app(SyntheticSource(96, 64, fps=60), tmp_path, keys=keys, max_frames=500)
    app.opts = dataclasses.replace(app.opts, record_preset="superfast")
    app.run()
    assert len(app.recordings) == 1
    head = app.recordings[0].read_bytes()[:200_000]
    assert b"cabac=1" in head and b"x264" in head


def test_style_switch_crossfades(tmp_path):
    """Right after a switch the picture is between the two styles, not at the new one."""
    app, p = make_app(SyntheticSource(96, 64, fps=1000), tmp_path, crossfade_s=0.5)
    codes = p.codes
    c0 = p.fader.current()
    app.controller.next_style()
    p._follow_controller(p.state)  # what the inference worker does before each frame
    time.sleep(0.05)
    mid = p.fader.current()
    time.sleep(0.6)
    end = p.fader.current()
    assert np.allclose(c0, codes[0], atol=1e-3)
    assert np.allclose(end, codes[1])
    assert 0 < np.abs(mid - codes[0]).max() < np.abs(codes[1] - codes[0]).max() * 0.5


def test_controller_actions_from_another_thread_reach_every_output(tmp_path):
    """A control surface on another thread drives the show; a second output gets what the recorder gets."""
    collector = CollectingOutput()
    rec = tmp_path / "show.mp4"
    app, p = make_app(SyntheticSource(96, 64, fps=60), tmp_path, outputs=[collector], record=True, record_path=str(rec))
    c = app.controller
    seen = {}

    def remote():
        while app.stats.shown < 5:
            time.sleep(0.01)
        c.set_style("s2")
        c.do("set_strength", value=0.5)
        c.toggle_mirror()
        snap = c.snapshot().result(timeout=10)  # a main-thread action, run by the live loop
        seen["snapshot"] = snap
        while app.stats.shown < 20:
            time.sleep(0.01)
        seen["status"] = c.status()
        c.quit()

    t = threading.Thread(target=remote, name="realtime-test-remote")
    t.start()
    stats = app.run()
    t.join(10)
    assert not t.is_alive()
    assert c.state.style_index == 2 and c.state.strength == 0.5 and c.state.mirror
    assert [p.name.rsplit("-", 1)[1] for p in seen["snapshot"]] == ["styled.png", "original.png"]
    st = seen["status"]
    assert st["style"] == "s2" and st["recording"] == str(rec) and st["shown"] >= 20 and st["display_fps"] > 0
    assert collector.closed and len(collector.frames) == stats.shown
    recorded = decoded_frames(rec)
    assert len(recorded) == len(collector.frames)
    # The same pictures went to both outputs (up to H.264 loss).
    for got, sent in zip(recorded[::7], collector.frames[::7]):
        assert np.abs(got.astype(int) - sent.astype(int)).mean() < 12


def test_a_failing_output_is_detached_and_the_show_goes_on(tmp_path):
    class Broken(CollectingOutput):
        name = "broken"

        def write(self, frame, t):
            if len(self.frames) >= 3:
                raise OSError("pipe closed")
            super().write(frame, t)

    broken, good = Broken(), CollectingOutput()
    rec = tmp_path / "keep.mp4"
    app, p = make_app(SyntheticSource(96, 64, fps=120), tmp_path, outputs=[broken, good], max_frames=15,
                      record=True, record_path=str(rec))
    stats = app.run()
    assert stats.shown == 15 and len(broken.frames) == 3 and broken.closed
    assert len(good.frames) == 15 and app.outputs.failed[0][0] == "broken"
    assert len(decoded_frames(rec)) == 15


def test_unplugged_camera_shows_placeholder_reconnects_and_records_one_file(tmp_path):
    plug = threading.Event()
    plug.set()
    src = SupervisedSource(lambda: FakeCamera(plug), stall_s=0.5, backoff_s=0.1, reconnect_max_s=0.2, name="camera fake")
    src.open()
    rec = tmp_path / "across.mp4"
    collector = CollectingOutput()
    app, p = make_app(src, tmp_path, outputs=[collector], record=True, record_path=str(rec))
    c = app.controller
    log = {"placeholder": 0, "after": 0}

    def unplug_and_replug():
        while app.stats.shown < 10:
            time.sleep(0.01)
        plug.clear()  # reads start failing, reopening fails
        deadline = time.monotonic() + 10
        while c.status()["source_away"] is False and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        log["placeholder"] = app.stats.shown
        plug.set()
        while c.status().get("reconnects", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        shown = app.stats.shown
        while app.stats.shown < shown + 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        log["status"] = c.status()
        c.quit()

    t = threading.Thread(target=unplug_and_replug, name="realtime-test-unplug")
    t.start()
    stats = app.run()
    t.join(15)
    st = log["status"]
    assert st["reconnects"] == 1 and st["source_lost"] >= 1 and not st["source_away"]
    # The show went on throughout: stylized frames, then the calm placeholder, then stylized again.
    dark = [float(f.mean()) < 40 and float(f.std()) < 30 for f in collector.frames]
    first_dark, last_dark = dark.index(True), len(dark) - 1 - dark[::-1].index(True)
    assert first_dark >= 9 and last_dark < len(dark) - 5 and not any(dark[:first_dark])
    assert sum(dark) >= 3
    frames = decoded_frames(rec)
    assert len(frames) == stats.shown == len(collector.frames)  # one playable file across the reconnect


def test_worker_crash_finalizes_recording_and_raises(tmp_path):
    rec = tmp_path / "keep.mp4"
    app, p = make_app(SyntheticSource(96, 64, fps=60), tmp_path, stylizer=FakeStylizer(fail_after=12), record=True, record_path=str(rec))
    with pytest.raises(WorkerFailed, match="inference worker failed: RuntimeError: CUDA error"):
        app.run()
    assert rec.exists() and len(decoded_frames(rec)) >= 10


def test_ctrl_c_finishes_the_recording(tmp_path):
    class Interrupting(ScriptedKeys):
        def poll(self, wait_ms, shown):
            if shown >= 8:
                raise KeyboardInterrupt
            return super().poll(wait_ms, shown)

    rec = tmp_path / "ctrlc.mp4"
    app, p = make_app(SyntheticSource(96, 64, fps=60), tmp_path, keys=Interrupting({}), record=True, record_path=str(rec))
    with pytest.raises(KeyboardInterrupt):
        app.run()
    assert rec.exists() and not list(tmp_path.glob(".ctrlc*"))


def test_toggling_recording_twice_at_once_leaves_the_file_it_announced(tmp_path):
    """Issue 27: a start and a stop run back to back (no frame between) used to answer a file that
    never appeared and a null.  A recording starts with the picture on screen; before the show has
    shown one, a start is refused, saying why."""
    from realtime.io.paths import OutputError

    app, p = make_app(SyntheticSource(96, 64, fps=60), tmp_path)
    with pytest.raises(OutputError, match="not started: the show has not shown a picture yet"):
        app.start_recording()
    c = app.controller
    got = {}

    def remote():
        while app.stats.shown < 3:
            time.sleep(0.01)
        start, stop = c.toggle_recording(origin="web"), c.toggle_recording(origin="web")  # one batch for the loop
        got["start"], got["stop"] = start.result(timeout=10), stop.result(timeout=10)
        c.quit()

    t = threading.Thread(target=remote, name="realtime-test-remote")
    t.start()
    app.run()
    t.join(10)
    assert got["start"] == got["stop"] and got["stop"].exists() and app.recordings == [got["stop"]]
    assert len(decoded_frames(got["stop"])) >= 1


def test_concurrent_recording_toggles_are_serialized_and_every_announced_file_exists(tmp_path, caplog):
    """Issue 27: two pages toggling at once.  Starts and stops from many threads run one at a time
    on the show's thread; every answer is a file that exists at the end (a start answers the file
    it records into, a stop the file it finished), or an error that says why, never a silent null."""
    import concurrent.futures
    import logging
    import random

    app, p = make_app(SyntheticSource(96, 64, fps=60), tmp_path)
    c = app.controller
    answers: list[tuple[str, object]] = []
    lock = threading.Lock()
    caplog.set_level(logging.INFO, logger="realtime")

    def page(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(8):
            name = rng.choice(["toggle_recording", "toggle_recording", "start_recording", "stop_recording"])
            fut = c.do(name, origin="web")
            try:
                got: object = fut.result(timeout=20)  # always answered: never left waiting
            except concurrent.futures.CancelledError:
                got = "cancelled"
            except Exception as exc:  # noqa: BLE001 - the answer that says why
                got = exc
            with lock:
                answers.append((name, got))
            time.sleep(rng.random() * 0.03)

    def driver() -> None:
        while app.stats.shown < 3:
            time.sleep(0.01)
        pages = [threading.Thread(target=page, args=(i,), name=f"realtime-test-page-{i}") for i in range(6)]
        for t in pages:
            t.start()
        for t in pages:
            t.join(60)
        c.quit()

    t = threading.Thread(target=driver, name="realtime-test-driver")
    t.start()
    app.run()
    t.join(70)
    assert not t.is_alive() and len(answers) == 48
    files = sorted((tmp_path / "rec").glob("*.mp4"))
    announced = {Path(a) for _, a in answers if isinstance(a, Path)}
    errors = [a for _, a in answers if isinstance(a, Exception)]
    assert announced and announced <= set(files), (announced, files)
    assert sorted(app.recordings) == files  # every recording started was finished into a file
    assert all(str(e) for e in errors)
    assert not [q for q in (tmp_path / "rec").iterdir() if ".part" in q.name]
    for f in files:
        assert len(decoded_frames(f)) >= 1
    saved = [r.getMessage() for r in caplog.records if r.getMessage().startswith("saved recording")]
    assert len(saved) == len(files)
    starts = [a for n, a in answers if n == "start_recording" and isinstance(a, Path)]
    assert set(starts) <= set(files)


def test_capture_error_is_reported(tmp_path):
    class Broken(SyntheticSource):
        def read(self):
            if getattr(self, "n", 0) > 3:
                raise MediaError("camera unplugged")
            self.n = getattr(self, "n", 0) + 1
            return super().read()

    app, p = make_app(Broken(96, 64, fps=100), tmp_path)
    with pytest.raises(MediaError, match="unplugged"):
        app.run()


def test_open_source_specs_and_camera_failure(tmp_path):
    assert isinstance(open_source("synthetic:320x240"), SyntheticSource)
    assert open_source("synthetic:320x240").size == (320, 240)
    assert type(open_source("rtsp://127.0.0.1:1/x")).__name__ == "StreamSource"
    assert isinstance(open_source("0", reconnect=True), SupervisedSource)
    assert isinstance(open_source(str(tmp_path / "f.mp4"), reconnect=True), FileSource)  # never for files
    for spec in ("/dev/video99", "7"):
        for reconnect in (False, True):  # the first open fails at once either way
            with pytest.raises(MediaError, match="does not exist|cannot open camera 7"):
                open_source(spec, reconnect=reconnect).open()
    with pytest.raises(MediaError, match="video not found"):
        open_source(str(tmp_path / "missing.mp4")).open()
    with pytest.raises(MediaError, match="WxH"):
        open_source("synthetic:big")
    for spec, says in (("2147483648", "camera 2147483648 does not exist"), ("99999999999999999999", "does not exist"),
                       ("", "--source is empty"), ("  ", "--source is empty")):  # a traceback, and 'got a folder: .'
        with pytest.raises(MediaError, match=says):
            open_source(spec).open()


def test_file_source_keeping_pace_drops_like_a_camera(tmp_path):
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=30, width=64, height=48, fps=60, audio=False)
    src = open_source(str(clip), keep_pace=True)
    src.open()
    app, p = make_app(src, tmp_path, stylizer=FakeStylizer(delay_s=0.05))
    stats = app.run()
    assert src.live and p.dropped > 5 and stats.shown + p.dropped <= 30


def test_file_source_applies_rotation(tmp_path):
    """Live file sources share the video job's reader: rotation metadata is honoured."""
    clip = tmp_path / "rot.mp4"
    write_clip(clip, frames=3, width=128, height=64, fps=10, audio=False, rotation=90)
    src = FileSource(clip, pace=False)
    src.open()
    try:
        assert src.size == (64, 128) and src.read().shape == (128, 64, 3)
    finally:
        src.close()


def test_paused_state_freezes_the_outputs(tmp_path):
    collector = CollectingOutput()
    app, p = make_app(SyntheticSource(96, 64, fps=100), tmp_path, outputs=[collector],
                      state=LiveState(paused=False))

    def pause_then_quit():
        while app.stats.shown < 5:
            time.sleep(0.005)
        app.controller.set_paused(True)
        time.sleep(0.3)
        app.controller.quit()

    t = threading.Thread(target=pause_then_quit, name="realtime-test-pause")
    t.start()
    app.run()
    t.join(5)
    assert 5 <= len(collector.frames) <= 8  # nothing new after the pause


def test_live_cli_headless_record(models_dir, tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    rec = tmp_path / "out.mp4"
    r = subprocess.run([sys.executable, "-m", "realtime", "live", "--source", "synthetic:128x96", "--headless",
                        "--max-frames", "20", "--record", str(rec), "--size", "64", "--style", "mosaic", "--style", "ink"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert "20 frames shown" in r.stderr
    import re

    peak = re.search(r"peak memory (\d+) MB", r.stderr)  # this process's own peak, for small boxes
    assert peak and 50 < int(peak[1]) < 4000, r.stderr
    first = re.search(r"first frame ([\d.]+) s after start", r.stderr)  # start-up, from the process's own birth
    assert first and 0.1 < float(first[1]) < 120, r.stderr
    assert len(decoded_frames(rec)) == 20
    r = subprocess.run([sys.executable, "-m", "realtime", "live", "--source", "5", "--headless", "--max-frames", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert r.returncode == 2 and "cannot open camera 5" in r.stderr and "Traceback" not in r.stderr


def test_sigterm_finishes_the_recording(models_dir, tmp_path):
    """Installations are stopped with SIGTERM: the recording must be complete and playable."""
    import signal

    from conftest import signal_when_file_appears

    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    rec = rec_dir / "show.mp4"
    code, err = signal_when_file_appears(
        ["live", "--source", "synthetic:96x64", "--headless", "--record", rec, "--size", "64", "--style", "mosaic"],
        rec_dir, ".show.*", signal.SIGTERM, settle_s=1.0,
    )
    assert code == 143, err
    assert rec.exists() and not list(rec_dir.glob(".show.*"))
    assert len(decoded_frames(rec)) > 5


def test_window_closed_by_the_window_manager_ends_the_show_cleanly(tmp_path, monkeypatch):
    """The close button makes OpenCV's calls fail or report the window invisible: that is a quit,
    the recording is finished, nothing is raised."""
    import cv2

    import realtime.io.sinks.window as window

    monkeypatch.setenv("DISPLAY", ":99")
    state = {"shown": 0}
    monkeypatch.setattr(window.cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(window.cv2, "resizeWindow", lambda *a: None)
    monkeypatch.setattr(window.cv2, "destroyAllWindows", lambda: None)
    monkeypatch.setattr(window.cv2, "waitKey", lambda *a: -1)
    monkeypatch.setattr(window.cv2, "waitKeyEx", lambda *a: -1)

    def imshow(title, img):
        state["shown"] += 1
        if state["shown"] > 10:
            raise cv2.error("NULL window: 'stylize' in function 'cvShowImage'")

    monkeypatch.setattr(window.cv2, "imshow", imshow)
    monkeypatch.setattr(window.cv2, "getWindowProperty", lambda *a: 1.0)
    rec = tmp_path / "closed.mp4"
    codes = fake_codes(2)
    controller = Controller(["a", "b"])
    p = LivePipeline(SyntheticSource(96, 64, fps=120), StylizeStage(FakeStylizer(), 64), controller, codes)
    app = LiveApp(p, LiveConfig(headless=False, record=True, record_path=str(rec)), ScriptedKeys({}))
    stats = app.run()
    assert app.window.closed and stats.shown >= 10
    assert len(decoded_frames(rec)) == stats.shown


def test_no_display_fails_before_anything_opens(monkeypatch):
    from realtime.errors import UserError
    from realtime.io.sinks.window import require_display

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="--headless"):
        require_display()


def test_pause_badge_and_overlay_are_drawn_for_the_window_only(tmp_path):
    app, p = make_app(SyntheticSource(96, 64, fps=60), tmp_path, state=LiveState(overlay=False))
    frame = np.full((240, 320, 3), 128, np.uint8)
    assert app._decorate(frame) is frame  # nothing to draw: no copy
    app.controller.set_paused(True)
    shown = app._decorate(frame)
    assert (shown[-60:] != 128).any() and (frame == 128).all()  # badge at the bottom, the frame untouched
    app.controller.toggle_overlay()
    assert (app._decorate(frame)[:60] != 128).any()


def test_inference_worker_restarts_within_its_hourly_limit_then_gives_up(tmp_path):
    def show(stylizer, limit):
        rec = tmp_path / f"rec{limit}.mp4"
        c = Controller(["a", "b"], LiveState(style_index=1, strength=0.7))
        p = LivePipeline(SyntheticSource(96, 64, fps=100), StylizeStage(stylizer, 64), c, fake_codes(2), 0.0, restarts_per_hour=limit)
        app = LiveApp(p, LiveConfig(headless=True, max_frames=40, record=True, record_path=str(rec)))
        return app, p, c, rec

    app, p, c, rec = show(FakeStylizer(fail_calls=(5, 12)), limit=3)
    stats = app.run()  # two failures, both restarted: the show goes on with the same state
    assert stats.shown == 40 and len(p.restarts) == 2
    assert c.state.style_index == 1 and c.state.strength == 0.7 and c.status()["worker_restarts"] == 2
    app, p, c, rec = show(FakeStylizer(fail_after=8), limit=3)
    with pytest.raises(WorkerFailed, match="CUDA error"):
        app.run()  # failing for good: three restarts, then the show ends (non-zero exit)
    assert len(p.restarts) == 3 and len(decoded_frames(rec)) >= 7


def test_side_by_side_fits_the_frame_and_mirror_keeps_the_original_left():
    from realtime.live.overlay import compose

    h, w = 720, 1280
    original = np.zeros((h, w, 3), np.uint8)
    original[:, : w // 4] = 200  # a bright stripe on the original's left edge
    styled = np.full((h, w, 3), 60, np.uint8)
    view = compose(styled, original, side_by_side=True, mirror=False)
    assert view.shape == (h, w, 3)  # fits wherever the single picture fitted (no 2560-wide window)
    band = view[h // 2]
    assert band[: w // 8].mean() > 150 and band[w // 4 : w // 2].mean() < 10  # the original, unflipped, on the left
    assert band[w // 2 + 10 : -10].mean() == 60  # the stylized half on the right
    mirrored = compose(styled, original, side_by_side=True, mirror=True)[h // 2]
    assert mirrored[w // 2 + 10 : -10].mean() == 60  # the stylized half stays right
    assert mirrored[w // 2 - w // 8 : w // 2].mean() > 150 and mirrored[: w // 8].mean() < 10  # original flipped in place


def test_a_start_that_fails_after_the_outputs_opened_closes_them(tmp_path, monkeypatch):
    """An NDI sender (or virtual camera) opened before a later step of the start fails (here the
    folder for taken styles) is closed with everything else: no sender thread, no advertised source."""
    import realtime.live.run as run
    import realtime.model.engine as engine_module
    from fakes import fake_engine

    from realtime.cli import main
    from realtime.io.paths import OutputError
    from realtime.io.sinks import Output

    class Sender(Output):
        name = "NDI"
        closed = False

        def write(self, frame, t):
            pass

        def close(self):
            Sender.closed = True

    def no_taker(*a, **kw):
        raise OutputError("cannot create the folder for taken styles")

    monkeypatch.setattr(engine_module, "open_engine", lambda cfg, fixed_size=True: fake_engine(tmp_path / "codes"))
    monkeypatch.setattr(run, "open_ndi", lambda cfg, w, h, fps=0.0: Sender())
    monkeypatch.setattr(run, "_taker_for", no_taker)
    before = set(threading.enumerate())
    code = main(["live", "--source", "synthetic:96x64", "--headless", "--max-frames", "5", "--size", "32", "--fresh"])
    assert code != 0
    assert Sender.closed
    time.sleep(0.2)
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


def test_a_switch_fades_over_the_crossfade_in_effect_when_it_was_made(tmp_path):
    """A set_crossfade (a knob) right after a style switch (a pad), before the inference thread
    picks the switch up, leaves that fade alone, as the recording's timeline stamped it; the next
    switch gets the new length."""
    from realtime.pipeline.state import StreamState

    app, p = make_app(SyntheticSource(96, 64, fps=1000), tmp_path, crossfade_s=None)
    stream = StreamState(0.0)
    c = app.controller
    c.set_crossfade(0.4)
    c.next_style()
    c.set_crossfade(3.0)  # within the same frame
    p._follow_controller(stream)
    assert p.fader._fade_s == 0.4
    c.next_style()
    p._follow_controller(stream)
    assert p.fader._fade_s == 3.0


def test_a_file_over_http_is_paced_and_has_an_end(tmp_path, http_server):
    """http://host/clip.mp4 was read as fast as it downloaded (5x its rate, its frames dropped by the
    show), and with --no-reconnect its natural end was called a lost stream."""
    from realtime.io.sources.camera import StreamSource
    from realtime.io.synthetic import write_clip

    served = tmp_path / "served"
    served.mkdir()
    write_clip(served / "clip.mp4", frames=12, width=64, height=48, fps=24, audio=False)
    src = StreamSource(f"{http_server(served)}/clip.mp4")
    src.open()
    try:
        t0 = time.monotonic()
        frames = 0
        while src.read() is not None:
            frames += 1
        elapsed = time.monotonic() - t0
    finally:
        src.close()
    assert src.has_an_end and frames == 12
    assert elapsed > 0.8 * 11 / 24, f"12 frames at 24 fps in {elapsed:.2f} s: not paced"
