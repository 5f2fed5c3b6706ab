"""A live recording's timeline (issue #28): the state it started with and every control event
during it, at media times on the recorded frames' clock; written beside the file, kept when the
inference worker crashes, and on the disk within a second while the recording runs."""

import json
import threading
import time

import av
import pytest
from fakes import FakeStylizer
from test_live import make_app

from realtime.io.sinks.timeline import FORMAT, SYNC_S, timeline_path
from realtime.io.sources import SyntheticSource
from realtime.live.keymap import ScriptedKeys
from realtime.live.pipeline import WorkerFailed

FPS = 30


def frame_times(path):
    """Media times (s) of the recorded frames, from the file's own pts (less the stream's start:
    the encoder's reorder delay, the same for every frame)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        pts = sorted(p.pts for p in c.demux(stream) if p.pts is not None)
        return [float((x - pts[0]) * stream.time_base) for x in pts]


def load(path):
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["version"] == 1
    return doc


def test_recording_writes_its_timeline_with_events_from_two_surfaces_at_their_media_times(tmp_path):
    rec = tmp_path / "show.mp4"
    # keys: next style after frame 6, strength up after frame 10; the page (another thread) sets
    # style s3 and strength 0.5 once 16 frames were shown; q after frame 75.
    keys = ScriptedKeys({6: "n", 10: "+", 75: "q"})
    app, p = make_app(SyntheticSource(96, 64, fps=FPS), tmp_path, keys=keys, record=True, record_path=str(rec))
    c = app.controller
    seen = {}

    def page():
        while app.stats.shown < 16:
            time.sleep(0.002)
        seen["shown"] = app.stats.shown
        c.do("set_style", origin="web", style="s3")
        c.do("set_strength", origin="web", value=0.5)
        seen["after"] = app.stats.shown
        time.sleep(SYNC_S + 0.3)  # the recording still runs: the timeline is already on the disk
        seen["midway"] = json.loads(timeline_path(rec).read_text()) if timeline_path(rec).exists() else None

    t = threading.Thread(target=page, name="realtime-test-page")
    t.start()
    app.run()
    t.join(10)
    assert not t.is_alive()

    doc = load(timeline_path(rec))
    assert doc["complete"] and doc["video"] == "show.mp4"
    assert doc["initial"] == {"style": "s0", "style_path": None, "style_index": 0, "strength": 1.0, "stability": 0.0,
                              "crossfade_s": 0.2}
    mid = seen["midway"]
    assert mid is not None and not mid["complete"] and [e["action"] for e in mid["events"]][-2:] == ["set_style", "set_strength"]

    events = doc["events"]
    assert [(e["action"], e["origin"]) for e in events] == [
        ("next_style", "key"), ("change_strength", "key"), ("set_style", "web"), ("set_strength", "web"), ("quit", "key"),
        ("quit", "show")]  # the loop's own end of the show comes before the recording is closed
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    times = [e["t"] for e in events]
    assert times == sorted(times)
    assert events[2]["args"] == {"style": "s3"} and events[3]["args"] == {"value": 0.5}
    assert [(e["style"], round(e["strength"], 3)) for e in events[:4]] == [("s1", 1.0), ("s1", 1.1), ("s3", 1.1), ("s3", 0.5)]

    pts = frame_times(rec)
    assert len(pts) == app.stats.shown and pts[0] == 0.0
    frame = 1.0 / FPS
    # A key pressed after frame N was shown: between that frame's pts and the next one's (+ a frame).
    for event, n in ((events[0], 6), (events[1], 10)):
        assert pts[n - 1] - 0.002 <= event["t"] <= pts[n] + frame, (event, pts[n - 1:n + 1])
    lo, hi = seen["shown"], seen["after"]
    for event in events[2:4]:
        assert pts[lo - 1] - 0.002 <= event["t"] <= pts[min(hi, len(pts) - 1)] + frame, (event, pts[lo - 1:hi + 1])
    assert abs(doc["duration_s"] - pts[-1]) < 0.002


def test_worker_crash_leaves_a_usable_timeline(tmp_path):
    rec = tmp_path / "crash.mp4"
    app, p = make_app(SyntheticSource(96, 64, fps=FPS), tmp_path, stylizer=FakeStylizer(fail_after=14),
                      keys=ScriptedKeys({4: "n", 7: "t"}), record=True, record_path=str(rec))
    with pytest.raises(WorkerFailed):
        app.run()
    doc = load(timeline_path(rec))
    assert doc["complete"]
    assert [(e["action"], e["origin"]) for e in doc["events"]][:2] == [("next_style", "key"), ("cycle_stability", "key")]
    assert doc["events"][1]["stability"] == 0.55 and doc["events"][1]["style"] == "s1"
    assert 0 < doc["events"][0]["t"] < doc["events"][1]["t"] <= doc["duration_s"] + 1.0 / FPS


def test_recording_started_and_stopped_by_the_page_has_its_own_timeline(tmp_path):
    """``r`` / the page: the timeline starts with the recording (its first event: who started it)."""
    keys = ScriptedKeys({3: "n", 30: "q"})
    app, p = make_app(SyntheticSource(96, 64, fps=FPS), tmp_path, keys=keys)
    c = app.controller

    def page():
        while app.stats.shown < 8:
            time.sleep(0.002)
        c.start_recording(origin="web").result(timeout=10)
        c.do("set_strength", origin="web", value=0.7)
        while app.stats.shown < 20:
            time.sleep(0.002)
        c.stop_recording(origin="web").result(timeout=10)

    t = threading.Thread(target=page, name="realtime-test-page")
    t.start()
    app.run()
    t.join(10)
    assert len(app.recordings) == 1
    doc = load(timeline_path(app.recordings[0]))
    assert doc["complete"] and doc["video"] == app.recordings[0].name
    assert doc["initial"]["style"] == "s1"  # the key's change came before the recording
    assert [(e["action"], e["origin"]) for e in doc["events"]] == [("start_recording", "web"), ("set_strength", "web")]
    assert doc["events"][0]["t"] < 0.1 and doc["events"][1]["strength"] == 0.7
