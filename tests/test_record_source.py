"""``stylize live --record --record-source`` (issue #28): the recording keeps the camera's own
frames beside it, ``NAME.source.mp4``, on the clock of its timeline, so ``stylize video
NAME.source.mp4 --timeline NAME.timeline.json`` re-renders the performance frame for frame.

The "done when" test runs a show (synthetic camera, fake stylizer, the shipped styles' codes) with
style changes from three surfaces (a key, the page, OSC), logs the code every recorded frame was
stylized with, replays the timeline on the source file and compares the replay's codes with the
live ones frame by frame.  The rest: r toggling both files, a full disk stopping both, a kill -9
recovering both with the timeline following them, and the CLI finding the source by itself.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import test_media
from conftest import ROOT
from fakes import FakeStylizer, fake_engine
from test_media import dead_pid, fill, kill_9_once_recorded, live_recording_bytes
from test_replay import RecordingStylizer

from realtime.config import LiveConfig
from realtime.core.controller import Controller
from realtime.core.styleset import StyleEntry, StyleSet
from realtime.effects.crossfade import smoothstep
from realtime.io import salvage
from realtime.io.paths import HOST, source_path, timeline_path
from realtime.io.recovery import clean_stale_parts
from realtime.io.sinks import Output
from realtime.io.sources import SyntheticSource
from realtime.jobs.video import timeline_replay, timeline_source
from realtime.live.app import LiveApp
from realtime.live.keymap import ScriptedKeys
from realtime.live.pipeline import LivePipeline
from realtime.model.styles import Style
from realtime.pipeline.stage import StylizeStage
from realtime.pipeline.video import VideoOptions, VideoStylizer

FPS = 30
FADE = 0.2
NAMES = ("mosaic", "waves", "dots")
STYLES = ROOT / "styles"
JITTER = 0.012  # s: a thread's wake-up on a loaded machine
small_disk = test_media.small_disk  # the fixture: a 3 MB tmpfs


def pts_times(path: Path) -> list[float]:
    """Each frame's time in seconds from the file's first frame (presentation order)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        pts = sorted(p.pts for p in c.demux(vs) if p.pts is not None)
    return [float((p - pts[0]) * vs.time_base) for p in pts]


def frame_sizes(path: Path) -> set[tuple[int, int]]:
    with av.open(str(path)) as c:
        return {(f.width, f.height) for f in c.decode(video=0)}


class LoggingStage(StylizeStage):
    """Remembers the code each stylized picture was made with (by the picture's identity; the
    pictures are kept alive so an identity is never reused)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.made: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, frames, codes, state):
        out = super().__call__(frames, codes, state)
        self.made[id(out[0])] = (out[0], np.asarray(codes, np.float32).reshape(-1).copy(), frames[0])
        return out


class CodeLog(Output):
    """An output beside the recorder: the code and time of every view handed over (the recorder
    gets the same calls, so entry i is the recording's frame i)."""

    name = "code-log"

    def __init__(self, stage: LoggingStage) -> None:
        self.stage, self.entries, self.originals, self.views = stage, [], [], []

    def write(self, frame, t):
        _, code, original = self.stage.made[id(frame)]  # the view is the stylized picture itself
        self.entries.append((t, code))
        self.originals.append(original)
        self.views.append(frame)

    def close(self):
        return None


def show(tmp_path, keys, engine=None, source=None, crossfade_s=FADE, crossfade_beats=0.0, **opts):
    """A headless show over the shipped styles (their codes from ``engine``'s bank, as a replay
    gets them), recording its source; returns the app, the stage and the code log.  ``crossfade_s``
    None: the controller's crossfade time (set_crossfade), in beats with ``crossfade_beats``."""
    engine = engine or fake_engine(tmp_path)
    entries = [StyleEntry(n, STYLES / f"{n}.jpg", engine.bank.code_for(Style(n, STYLES / f"{n}.jpg"))) for n in NAMES]
    controller = Controller(StyleSet(entries))
    stage = LoggingStage(FakeStylizer(), short_side=32)
    pipeline = LivePipeline(source or SyntheticSource(96, 64, fps=FPS), stage, controller, crossfade_s=crossfade_s,
                            crossfade_beats=crossfade_beats)
    log = CodeLog(stage)
    cfg = LiveConfig(headless=True, record_dir=str(tmp_path / "rec"), snapshot_dir=str(tmp_path / "snap"),
                     record_source=True, **opts)
    return LiveApp(pipeline, cfg, keys, outputs=[log]), engine, log


def fade_time(code, a, b, fade=FADE):
    """Where ``code`` is on the crossfade from ``a`` to ``b``, in seconds into it (None: not on it)."""
    f = float(np.dot(code - a, b - a) / np.dot(b - a, b - a))
    if not np.allclose(code, a + f * (b - a), atol=1e-4):
        return None
    lo, hi = 0.0, 1.0  # smoothstep is monotonic: invert it by bisection
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if smoothstep(mid) < f else (lo, mid)
    return lo * fade


def test_done_when_a_show_replayed_from_its_source_and_timeline_gets_the_live_codes_frame_by_frame(tmp_path):
    rec = tmp_path / "show.mp4"
    keys = ScriptedKeys({15: "n", 80: "q"})  # waves after frame 15 (origin key)
    app, engine, log = show(tmp_path, keys, record=True, record_path=str(rec))
    c = app.controller

    def surfaces():  # the page and an OSC controller, on threads of their own
        while app.stats.shown < 35:
            time.sleep(0.002)
        c.do("set_style", origin="web", style="dots")
        while app.stats.shown < 55:
            time.sleep(0.002)
        c.do("set_stability", origin="osc", value=0.8)
        c.do("set_style", origin="osc", style="mosaic")

    t = threading.Thread(target=surfaces, name="realtime-test-surfaces")
    t.start()
    app.run()
    t.join(10)
    assert not t.is_alive()

    src = source_path(rec)
    assert app.recordings == [rec, src]
    doc = json.loads(timeline_path(rec).read_text())
    assert doc["complete"] and doc["video"] == "show.mp4" and doc["source"] == "show.source.mp4"
    changes = [(e["action"], e["origin"]) for e in doc["events"] if e["action"] in ("next_style", "set_style")]
    assert changes == [("next_style", "key"), ("set_style", "web"), ("set_style", "osc")]
    # One clock: the source file has the recording's frames at the recording's times, at the camera's size.
    live_times = [round(t - log.entries[0][0], 3) for t, _ in log.entries]
    assert pts_times(src) == pts_times(rec) == pytest.approx(live_times, abs=0.0015)
    assert len(live_times) == app.stats.shown
    assert frame_sizes(src) == {(96, 64)}
    with av.open(str(src)) as f:  # the camera's own pictures, each the one its recorded view was made from
        kept = [fr.to_ndarray(format="bgr24").astype(int) for fr in f.decode(video=0)]
    off = [np.abs(k - o).mean() for k, o in zip(kept, log.originals)]
    styled = [np.abs(k - v).mean() for k, v in zip(kept, log.views)]
    assert len(off) == len(live_times) and max(off) < 5 and min(styled) > 20, (max(off), min(styled))

    # The re-render: stylize video show.source.mp4 --timeline show.timeline.json.
    assert timeline_source(str(timeline_path(rec))) == src
    stylizer = RecordingStylizer()
    styles, replay = timeline_replay(engine.cfg, str(timeline_path(rec)))
    assert [s.name for s in styles] == ["mosaic", "waves", "dots"]
    replay_engine = fake_engine(tmp_path, stylizer)
    res = VideoStylizer(replay_engine, [replay_engine.bank.code_for(s) for s in styles],
                        VideoOptions(size=32, batch=4, replay=replay, audio=False)).run(src, tmp_path / "film.mp4")
    assert res.frames == len(live_times) == len(stylizer.codes)

    live = [code for _, code in log.entries]
    again = stylizer.codes
    a, b, d = (engine.bank.code_for(Style(n, STYLES / f"{n}.jpg")) for n in ("mosaic", "waves", "dots"))
    # Each switch: the live show and the replay leave the old style within one frame of each other,
    # and every frame of the fade sits at the same point of it, give or take one frame's time.
    dt = 1.0 / FPS
    fades = [(e["t"], x, y) for e, (x, y) in zip([e for e in doc["events"] if e["action"] in ("next_style", "set_style")],
                                                  ((a, b), (b, d), (d, a)))]
    in_fade = set()
    for t0, x, y in fades:
        first = [next(i for i, code in enumerate(run) if live_times[i] > t0 - dt and not np.allclose(code, x, atol=1e-5))
                 for run in (live, again)]
        assert abs(first[0] - first[1]) <= 1, (t0, first)
        for i, tm in enumerate(live_times):
            if t0 - dt <= tm <= t0 + FADE + 2 * dt:
                in_fade.add(i)
                s_live, s_again = fade_time(live[i], x, y), fade_time(again[i], x, y)
                assert s_live is not None and s_again is not None, (i, tm)
                # The show's fader starts when the inference thread takes the change up (at the next
                # frame) and runs on that thread's clock: behind the event by up to a frame, plus
                # scheduling jitter; the replay starts it at the event's media time exactly.
                if 0 < s_live < FADE or 0 < s_again < FADE:
                    assert -JITTER <= s_again - s_live <= dt + JITTER, (i, tm, s_live, s_again)
    steady = [i for i in range(len(live)) if i not in in_fade]
    assert len(steady) > 40
    for i in steady:  # between fades: the very same code
        assert np.allclose(live[i], again[i], atol=1e-5), (i, live_times[i])
    assert {tuple(np.round(live[i][:3], 4)) for i in steady} == {tuple(np.round(x[:3], 4)) for x in (a, b, d)}


def test_crossfade_and_tempo_changes_are_recorded_and_replayed(tmp_path):
    """The show follows set_crossfade, and with ``show.crossfade_beats`` the tempo: each timeline
    event carries the crossfade a switch then gets (seconds), and the replay fades each switch over
    the same time as the show did, frame by frame."""
    rec = tmp_path / "beats.mp4"
    app, engine, log = show(tmp_path, ScriptedKeys({95: "q"}), crossfade_s=None, crossfade_beats=2.0,
                            record=True, record_path=str(rec))
    c = app.controller

    def surfaces():
        for at, calls in ((8, [("set_crossfade", {"seconds": 0.15}), ("set_style", {"style": "waves"})]),
                          (30, [("set_tempo", {"bpm": 300.0})]),  # 2 beats at 300 bpm: 0.4 s
                          (40, [("set_style", {"style": "dots"})]),
                          (65, [("set_crossfade", {"seconds": 0.1}), ("set_style", {"style": "mosaic"})])):  # beats win
            while app.stats.shown < at:
                time.sleep(0.002)
            for name, args in calls:
                c.do(name, origin="web", **args)

    t = threading.Thread(target=surfaces, name="realtime-test-surfaces")
    t.start()
    app.run()
    t.join(10)
    assert not t.is_alive()
    doc = json.loads(timeline_path(rec).read_text())
    stamps = [(e["action"], e["crossfade_s"]) for e in doc["events"] if e["action"] != "quit"]
    assert doc["initial"]["crossfade_s"] == 0.5 and stamps == [
        ("set_crossfade", 0.15), ("set_style", 0.15), ("set_tempo", 0.4), ("set_style", 0.4), ("set_crossfade", 0.4),
        ("set_style", 0.4)]
    styles, replay = timeline_replay(engine.cfg, str(timeline_path(rec)))
    assert replay.crossfades[1:] == (0.15, 0.4, 0.4)
    stylizer = RecordingStylizer()
    replay_engine = fake_engine(tmp_path, stylizer)
    res = VideoStylizer(replay_engine, [replay_engine.bank.code_for(s) for s in styles],
                        VideoOptions(size=32, batch=4, replay=replay, audio=False)).run(source_path(rec), tmp_path / "film.mp4")
    live_times = [round(t - log.entries[0][0], 3) for t, _ in log.entries]
    assert res.frames == len(live_times) == len(stylizer.codes)
    live, again = [code for _, code in log.entries], stylizer.codes
    a, b, d = (engine.bank.code_for(Style(n, STYLES / f"{n}.jpg")) for n in ("mosaic", "waves", "dots"))
    dt = 1.0 / FPS
    switches = [e["t"] for e in doc["events"] if e["action"] == "set_style"]
    for t0, x, y, fade in zip(switches, (a, b, d), (b, d, a), (0.15, 0.4, 0.4)):
        inside = 0
        for i, tm in enumerate(live_times):
            if t0 - dt <= tm <= t0 + fade + 2 * dt:
                s_live, s_again = fade_time(live[i], x, y, fade), fade_time(again[i], x, y, fade)
                assert s_live is not None and s_again is not None, (t0, i, tm)
                if 0 < s_live < fade or 0 < s_again < fade:  # the same point of a fade of the same length
                    inside += 1
                    assert -JITTER <= s_again - s_live <= dt + JITTER, (t0, i, tm, s_live, s_again)
        assert inside >= round(fade * FPS) - 1, (t0, inside)


def test_r_starts_and_stops_both_files_and_the_report_lists_both(tmp_path):
    keys = ScriptedKeys({5: "r", 14: "r", 20: "n", 24: "r", 36: "r", 42: "q"})
    app, _, _ = show(tmp_path, keys)
    app.run()
    assert len(app.recordings) == 4
    for video, src in zip(app.recordings[::2], app.recordings[1::2]):
        assert src == source_path(video) and src.exists()
        assert pts_times(video) == pts_times(src) and len(pts_times(src)) >= 8
        doc = json.loads(timeline_path(video).read_text())
        assert doc["complete"] and doc["video"] == video.name and doc["source"] == src.name
    files = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert len(files) == 6 and not [f for f in files if f.startswith(".")]


def test_a_full_disk_stops_both_files_and_keeps_what_they_hold(tmp_path, small_disk):
    rec = small_disk / "r.mp4"
    fill(small_disk, 120_000)  # a few seconds of the two files
    app, _, _ = show(tmp_path, ScriptedKeys({}), source=SyntheticSource(320, 240, fps=FPS),
                     record=True, record_path=str(rec), max_frames=150)
    app.run()
    assert app.stats.shown == 150  # the show went on
    assert len(app.recording_errors) == 1 and "No space left on device" in app.recording_errors[0]
    assert app.recorder is None
    src = source_path(rec)
    assert app.recordings == [rec, src]  # both stopped; the whole fragments of each are kept
    kept = [len(pts_times(p)) for p in app.recordings]
    assert all(0 < n < 150 for n in kept)
    assert f"the {kept[0]} frames written before are kept in {rec}" in app.recording_errors[0]
    assert f"its source keeps {kept[1]} frames in {src}" in app.recording_errors[0]
    doc = json.loads(timeline_path(rec).read_text())
    assert doc["complete"] and doc["source"] == src.name
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_a_crash_recovers_both_files_and_the_timeline_follows_them(tmp_path, caplog):
    """After kill -9: ``show.recovered-DATE.mp4``, ``show.recovered-DATE.source.mp4`` and
    ``show.recovered-DATE.timeline.json`` naming both; a replay finds the source by itself."""
    gen = tmp_path / "gen"
    gen.mkdir()
    data = live_recording_bytes(gen)
    out = tmp_path / "rec"
    out.mkdir()
    dead = dead_pid()
    video = out / f".show.{dead}@{HOST}.rec.aaaa1111.part.mp4"
    source = out / f".show.source.{dead}@{HOST}.rec.bbbb2222.part.mp4"
    for p, mtime in ((video, 1_700_000_000), (source, 1_700_000_003)):  # written a few seconds apart
        p.write_bytes(data + b"\x00\x00\x10\x00moof-torn")
        os.utime(p, (mtime, mtime))
    held = salvage.scan(video).frames
    tl = out / "show.timeline.json"
    doc = {"format": "realtime-timeline", "version": 1, "video": "show.mp4", "source": "show.source.mp4",
           "complete": False, "duration_s": 2.0,
           "initial": {"style": "mosaic", "style_path": str(STYLES / "mosaic.jpg"), "style_index": 0, "strength": 1.0,
                       "stability": 0.0, "crossfade_s": 0.2},
           "events": []}
    tl.write_text(json.dumps(doc))
    finished = out / "older.timeline.json"  # another show's finished timeline: left alone
    finished.write_text(json.dumps({**doc, "video": "older.mp4", "complete": True}))
    solo = out / f".solo.{dead}@{HOST}.rec.cccc3333.part.mp4"  # recorded without its source
    solo.write_bytes(data)
    os.utime(solo, (1_700_000_000, 1_700_000_000))
    (out / "solo.timeline.json").write_text(json.dumps({**doc, "video": "solo.mp4", "source": None}))
    empty = out / f".bare.source.{dead}@{HOST}.rec.dddd4444.part.mp4"  # a source with nothing playable
    empty.write_bytes(data[: data.index(b"moof") - 4])
    bare = out / f".bare.{dead}@{HOST}.rec.eeee5555.part.mp4"
    bare.write_bytes(data)
    os.utime(bare, (1_700_000_000, 1_700_000_000))
    (out / "bare.timeline.json").write_text(json.dumps({**doc, "video": "bare.mp4", "source": "bare.source.mp4"}))

    clean_stale_parts(out)

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(1_700_000_000))
    base = f"show.recovered-{stamp}"
    solo_base, bare_base = (f"{n}.recovered-{stamp}" for n in ("solo", "bare"))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{base}.mp4", f"{base}.source.mp4", f"{base}.timeline.json", "older.timeline.json",
         f"{solo_base}.mp4", f"{solo_base}.timeline.json", f"{bare_base}.mp4", f"{bare_base}.timeline.json"])
    solo_doc = json.loads((out / f"{solo_base}.timeline.json").read_text())
    assert solo_doc["video"] == f"{solo_base}.mp4" and solo_doc["source"] is None
    bare_doc = json.loads((out / f"{bare_base}.timeline.json").read_text())
    assert bare_doc["video"] == f"{bare_base}.mp4" and bare_doc["source"] is None
    moved = json.loads((out / f"{base}.timeline.json").read_text())
    assert moved["video"] == f"{base}.mp4" and moved["source"] == f"{base}.source.mp4" and not moved["complete"]
    assert json.loads(finished.read_text())["video"] == "older.mp4"
    for p in (out / f"{base}.mp4", out / f"{base}.source.mp4"):
        assert len(pts_times(p)) == held
    assert timeline_source(str(out / f"{base}.timeline.json")) == out / f"{base}.source.mp4"


def test_kill_9_during_a_show_recording_its_source_is_recovered_with_its_timeline(tmp_path):
    """The real command (fake engine): killed while recording, the next clean-up recovers both
    files under one name and moves the timeline to name them."""
    rec = tmp_path / "show.mp4"
    cmd = [sys.executable, str(ROOT / "tests" / "fake_live.py"), "--", "live", "--source", "synthetic:96x64", "--fps", "30",
           "--headless", "--record", str(rec), "--record-source", "--size", "32", "--max-frames", "100000"]
    kill_9_once_recorded(cmd, tmp_path, ".show.source.", ready=timeline_path(rec).exists)
    assert not rec.exists() and not source_path(rec).exists()
    assert json.loads(timeline_path(rec).read_text())["source"] == "show.source.mp4"
    clean_stale_parts(tmp_path)
    (tl,) = tmp_path.glob("show.recovered-*.timeline.json")
    doc = json.loads(tl.read_text())
    video, src = tmp_path / doc["video"], tmp_path / doc["source"]
    assert video.name == tl.name.replace(".timeline.json", ".mp4") and src == source_path(video)
    assert video.exists() and src.exists() and not timeline_path(rec).exists()
    assert len(pts_times(src)) >= 25 and frame_sizes(src) == {(96, 64)}
    assert not [q for q in tmp_path.iterdir() if ".part" in q.name]


def test_video_with_only_a_timeline_says_when_it_names_no_source(tmp_path):
    tl = tmp_path / "show.timeline.json"
    doc = {"format": "realtime-timeline", "version": 1, "video": "show.mp4", "complete": True, "duration_s": 1.0,
           "initial": {"style": "mosaic", "style_path": None, "style_index": 0, "strength": 1.0, "stability": 0.0},
           "events": []}
    tl.write_text(json.dumps(doc))
    run = lambda: subprocess.run([sys.executable, "-m", "realtime", "video", "--timeline", str(tl), "-o",  # noqa: E731
                                  str(tmp_path / "o.mp4"), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    r = run()
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "--record-source" in r.stderr, r.stderr
    tl.write_text(json.dumps({**doc, "source": "show.source.mp4"}))
    r = run()
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "its source video" in r.stderr and "show.source.mp4 is not there" in r.stderr
    r = subprocess.run([sys.executable, "-m", "realtime", "video", "-o", str(tmp_path / "o.mp4"), "--style", "mosaic"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "give the video file" in r.stderr, r.stderr


def test_stylize_video_with_only_the_timeline_re_renders_the_source_it_names(models_dir, tmp_path):
    """``stylize video --timeline NAME.timeline.json -o film.mp4``: the source file is found by the
    timeline's ``source``; the film has its frames (the real network, small)."""
    rec = tmp_path / "short.mp4"
    app, _, _ = show(tmp_path, ScriptedKeys({8: "n", 20: "q"}), record=True, record_path=str(rec))
    app.run()
    film = tmp_path / "film.mp4"
    r = subprocess.run([sys.executable, "-m", "realtime", "video", "--timeline", str(timeline_path(rec)), "-o", str(film),
                        "--size", "32", "--backend", "openvino", "--quiet"], cwd=ROOT, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    assert len(pts_times(film)) == len(pts_times(source_path(rec))) == app.stats.shown
    assert frame_sizes(film) == {(96, 64)}


def test_the_closing_report_lists_the_recording_and_its_source(tmp_path):
    rec = tmp_path / "night.mp4"
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "fake_live.py"), "--", "live", "--source", "synthetic:96x64",
                        "--fps", "30", "--headless", "--record", str(rec), "--record-source", "--size", "32",
                        "--max-frames", "12"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"recording: {rec}", f"source: {source_path(rec)}"]
    assert len(pts_times(source_path(rec))) == len(pts_times(rec)) == 12
    assert json.loads(timeline_path(rec).read_text())["source"] == "night.source.mp4"


def test_a_recording_left_for_recovery_keeps_its_timeline_for_the_recovery_to_move(tmp_path, monkeypatch):
    """A recording that cannot be published stays in its temp files for the next run; its
    timeline stays too (not complete), and the recovery moves it beside the recovered files."""
    from realtime.io.media.h264 import H264Writer
    from realtime.io.paths import OutputError, parse_part

    def refuse(self, dst=None, overwrite=False):
        raise OutputError(f"cannot write {dst}: Read-only file system")

    monkeypatch.setattr(H264Writer, "publish", refuse)
    rec = tmp_path / "rec" / "gig.mp4"
    app, _, _ = show(tmp_path, ScriptedKeys({}), record=True, record_path=str(rec), max_frames=45)
    app.run()
    monkeypatch.undo()
    assert app.recordings == [] and "Read-only file system" in app.recording_errors[0]
    doc = json.loads(timeline_path(rec).read_text())
    assert not doc["complete"] and doc["video"] == "gig.mp4" and doc["source"] == "gig.source.mp4"
    parts = sorted(p for p in rec.parent.iterdir() if p.name.startswith("."))
    assert [parse_part(p).stem for p in parts] == ["gig", "gig.source"]
    dead = dead_pid()  # as the next run sees them after this one ended
    for p in parts:
        p.rename(p.with_name(p.name.replace(f".{os.getpid()}@", f".{dead}@")))
    clean_stale_parts(rec.parent)
    (tl,) = rec.parent.glob("gig.recovered-*.timeline.json")
    moved = json.loads(tl.read_text())
    video = rec.parent / moved["video"]
    assert rec.parent / moved["source"] == source_path(video) and not timeline_path(rec).exists()
    assert len(pts_times(video)) == len(pts_times(source_path(video))) == 45


def test_the_recorders_queue_is_bounded_in_bytes_not_only_in_frames(tmp_path, monkeypatch):
    """A recorder whose encoder falls behind holds at most its byte budget of waiting pictures
    (with their sources), drops the rest and counts them, and the file still gets every frame it
    kept: 60 queued 720p frames with their sources would have been 330 MB."""
    from realtime.io.sinks.recorder import VideoRecorder

    gate = threading.Event()
    real_encode = VideoRecorder._encode

    def slow_encode(self, writer, frame, pts):
        gate.wait(10)  # the encoder is stuck until the test lets it go
        real_encode(self, writer, frame, pts)

    monkeypatch.setattr(VideoRecorder, "_encode", slow_encode)
    picture = np.zeros((720, 1280, 3), np.uint8)
    camera = np.full((720, 1280, 3), 90, np.uint8)
    rec = VideoRecorder(tmp_path / "show.mp4", preset="ultrafast", source_of=lambda: camera, queue_mb=16)
    for i in range(20):
        rec.write(picture, i / 30)
    pair = picture.nbytes + camera.nbytes  # 5.5 MB
    assert rec.peak_queued_bytes <= 16 * 2**20 and rec.peak_queued_bytes >= 2 * pair
    assert rec.dropped >= 20 - 4  # room for two pairs, one more being encoded
    gate.set()
    path = rec.close()
    assert path is not None and rec.frames == 20 - rec.dropped and rec.queued_bytes == 0
    for name in (path, rec.source_result):
        with av.open(str(name)) as c:
            assert sum(1 for _ in c.decode(video=0)) == rec.frames
