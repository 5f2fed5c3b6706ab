"""``stylize video RAW --timeline NAME.timeline.json`` (issue #28): a live performance re-rendered.

A recording fake stylizer logs the code each frame got; the codes are checked against the
timeline's times (style switches with their crossfades, a strength change), on the frames' own
clock: seconds from the first frame.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT
from fakes import FakeStylizer, fake_engine

from realtime.effects.crossfade import mix, smoothstep
from realtime.io.synthetic import write_clip
from realtime.jobs.video import timeline_replay
from realtime.model.styles import Style
from realtime.pipeline.video import VideoOptions, VideoStylizer

FPS = 10
FADE = 0.4
STYLES = ROOT / "styles"


class RecordingStylizer(FakeStylizer):
    """Logs every code it is given, in frame order (batches arrive in stream order)."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[np.ndarray] = []
        self._log_lock = threading.Lock()

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        with self._log_lock:
            self.codes.extend(np.asarray(codes, np.float32).reshape(images.shape[0], -1))
        return super().transfer(images, codes)


def state(style, path, strength=1.0, stability=0.0):
    return {"style": style, "style_path": str(path) if path else None, "style_index": 0,
            "strength": strength, "stability": stability}


def timeline_doc() -> dict:
    """Two style switches (the second by a path that is gone: found by name), a strength change,
    a stability change, and an action that changes none of them (ignored)."""
    return {
        "format": "realtime-timeline", "version": 1, "video": "show.mp4", "complete": True, "duration_s": 2.9,
        "initial": {**state("mosaic", STYLES / "mosaic.jpg"), "crossfade_s": FADE},
        "events": [
            {"t": 0.3, "action": "toggle_mirror", "args": {}, "origin": "key", **state("mosaic", STYLES / "mosaic.jpg")},
            {"t": 0.85, "action": "set_style", "args": {"name": "waves"}, "origin": "key", **state("waves", STYLES / "waves.jpg")},
            {"t": 1.55, "action": "set_strength", "args": {"value": 0.5}, "origin": "web",
             **state("waves", STYLES / "waves.jpg", strength=0.5)},
            {"t": 2.05, "action": "set_style", "args": {"name": "dots"}, "origin": "osc",
             **state("dots", "/nowhere/any/more/dots.jpg", strength=0.5)},
            {"t": 2.35, "action": "set_stability", "args": {"value": 0.5}, "origin": "key",
             **state("dots", "/nowhere/any/more/dots.jpg", strength=0.5, stability=0.5)},
        ],
    }


@pytest.fixture
def raw(tmp_path):
    p = tmp_path / "show.raw.mp4"
    write_clip(p, frames=30, width=64, height=48, fps=FPS, audio=False)
    return p


def frame_times(path: Path) -> list[float]:
    """Seconds from the first frame (the file's first pts may be offset): the timeline's clock."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        pts = [f.pts for f in c.decode(video=0)]
    return [float((p - pts[0]) * vs.time_base) for p in pts]


def test_replay_follows_the_timeline_frame_by_frame(tmp_path, raw):
    tl = tmp_path / "show.timeline.json"
    tl.write_text(json.dumps(timeline_doc()))
    stylizer = RecordingStylizer()
    engine = fake_engine(tmp_path, stylizer)
    styles, replay = timeline_replay(engine.cfg, str(tl))
    assert [s.name for s in styles] == ["mosaic", "waves", "dots"]
    assert styles[2].path.parent.name == "styles"  # found by name: the recorded path is gone
    assert replay.times == (0.0, 0.85, 1.55, 2.05, 2.35)  # the mirror event changed nothing
    a, b, d = (engine.bank.code_for(Style(n, STYLES / f"{n}.jpg")) for n in ("mosaic", "waves", "dots"))
    out = tmp_path / "final.mp4"
    res = VideoStylizer(engine, [engine.bank.code_for(s) for s in styles],
                        VideoOptions(size=32, batch=4, replay=replay, audio=False)).run(raw, out)
    assert res.frames == 30 and out.exists()
    times, got = frame_times(raw), stylizer.codes
    assert len(got) == len(times) == 30

    def style_code(t: float) -> np.ndarray:
        if t < 0.85:
            return a
        if t < 2.05:
            return mix(a, b, smoothstep((t - 0.85) / FADE))
        return mix(b, d, smoothstep((t - 2.05) / FADE))

    strength_at = lambda t: 0.5 if t >= 1.55 else 1.0  # noqa: E731
    # The content's own code, from the first frame mixed at strength 0.5 (code = 0.5 style + 0.5 content).
    first_mixed = next(i for i, t in enumerate(times) if t >= 1.55)
    content = (got[first_mixed] - 0.5 * style_code(times[first_mixed])) / 0.5
    assert np.abs(content - b).max() > 0.05

    def expected(t: float) -> np.ndarray:
        s = strength_at(t)
        return style_code(t) if s == 1.0 else s * style_code(t) + (1 - s) * content

    dt = 1.0 / FPS
    for i, t in enumerate(times):  # each frame as the timeline says, within one frame
        assert any(np.allclose(got[i], expected(t + e), atol=1e-5) for e in (0.0, -dt, dt)), (i, t)
    # The crossfades blend between the two codes over crossfade_s, monotonically.
    for t0, x, y, lo in ((0.85, a, b, 0), (2.05, b, d, 1)):
        fracs = []
        for i, t in enumerate(times):
            if t0 - 2 * dt <= t <= t0 + FADE + 2 * dt:
                pure = (got[i] - 0.5 * content) / 0.5 if lo else got[i]
                f = float(np.dot(pure - x, y - x) / np.dot(y - x, y - x))
                assert np.allclose(pure, mix(x, y, f), atol=1e-4)  # on the line between the two codes
                fracs.append((t, f))
        assert fracs[0][1] == pytest.approx(0, abs=1e-5) and fracs[-1][1] == pytest.approx(1, abs=1e-5)
        inside = [f for t, f in fracs if t0 + 1e-6 < t < t0 + FADE - 1e-6]
        assert len(inside) >= 3 and all(0 < f < 1 for f in inside)
        assert all(f2 >= f1 for (_, f1), (_, f2) in zip(fracs, fracs[1:]))


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "realtime", "video", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


@pytest.mark.parametrize("content, says", [
    (None, "timeline not found"),
    ("{not json", "not JSON"),
    (json.dumps({**timeline_doc(), "version": 7}), "format version 7"),
    (json.dumps({**timeline_doc(), "events": [{"t": "soon", "action": "set_style"}]}), "event 0"),
    (json.dumps({**timeline_doc(), "events": [{"t": 1.0, "action": "set_style", **state("no-such-style", "/gone/x.jpg")}]}),
     "style 'no-such-style' (was /gone/x.jpg) at 1.000 s no longer exists"),
    (json.dumps({**timeline_doc(), "events": [{"t": 1.0, "action": "set_strength", **state("waves", None, strength=50)}]}),
     "event 0 (set_strength): 'strength' 50 is outside 0..2"),
])
def test_bad_timeline_is_one_line_and_writes_nothing(tmp_path, raw, content, says):
    tl = tmp_path / "show.timeline.json"
    if content is not None:
        tl.write_text(content)
    out = tmp_path / "final.mp4"
    r = run(raw, "--timeline", tl, "-o", out, "--size", "32", "--quiet")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], r.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".part" in p.name or p.name.startswith(".")]


def test_timeline_does_not_mix_with_style_flags(tmp_path, raw):
    tl = tmp_path / "show.timeline.json"
    tl.write_text(json.dumps(timeline_doc()))
    r = run(raw, "--timeline", tl, "--style", "mosaic", "--switch-every", "1", "-o", tmp_path / "o.mp4")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "drop --style, --switch-every" in r.stderr


def test_replay_follows_crossfade_time_changes(tmp_path):
    """A set_crossfade between two switches: the second switch fades over the new time (a file
    whose events carry only set_crossfade's seconds); a tempo change stamped with the crossfade it
    gives (``show.crossfade_beats``: the live app writes each event's effective ``crossfade_s``)
    sets the third's; a crossfade change during a fade leaves that fade as it is (as live)."""
    raw = tmp_path / "show.raw.mp4"
    write_clip(raw, frames=45, width=64, height=48, fps=FPS, audio=False)
    doc = {
        "format": "realtime-timeline", "version": 1, "video": "show.mp4", "complete": True, "duration_s": 4.4,
        "initial": {**state("mosaic", STYLES / "mosaic.jpg"), "crossfade_s": 0.3},
        "events": [
            {"t": 0.5, "action": "set_style", "args": {"name": "waves"}, **state("waves", STYLES / "waves.jpg")},
            {"t": 1.2, "action": "set_crossfade", "args": {"seconds": 0.9}, **state("waves", STYLES / "waves.jpg")},
            {"t": 1.5, "action": "set_style", "args": {"name": "dots"}, **state("dots", STYLES / "dots.jpg")},
            {"t": 1.8, "action": "set_crossfade", "args": {"seconds": 0.1}, **state("dots", STYLES / "dots.jpg")},
            {"t": 2.9, "action": "set_tempo", "args": {"bpm": 240.0}, "crossfade_s": 0.5, **state("dots", STYLES / "dots.jpg")},
            {"t": 3.3, "action": "set_style", "args": {"name": "mosaic"}, "crossfade_s": 0.5,
             **state("mosaic", STYLES / "mosaic.jpg")},
        ],
    }
    tl = tmp_path / "show.timeline.json"
    tl.write_text(json.dumps(doc))
    stylizer = RecordingStylizer()
    engine = fake_engine(tmp_path, stylizer)
    styles, replay = timeline_replay(engine.cfg, str(tl))
    assert [s.name for s in styles] == ["mosaic", "waves", "dots"]
    assert replay.times == (0.0, 0.5, 1.5, 3.3) and replay.crossfades == (0.3, 0.3, 0.9, 0.5)
    res = VideoStylizer(engine, [engine.bank.code_for(s) for s in styles],
                        VideoOptions(size=32, batch=4, replay=replay, audio=False, crossfade_s=2.0)).run(raw, tmp_path / "o.mp4")
    assert res.frames == 45
    a, b, d = (engine.bank.code_for(Style(n, STYLES / f"{n}.jpg")) for n in ("mosaic", "waves", "dots"))
    times, got = frame_times(raw), stylizer.codes
    dt = 1.0 / FPS
    for t0, x, y, fade in ((0.5, a, b, 0.3), (1.5, b, d, 0.9), (3.3, d, a, 0.5)):
        near = [(t, got[i]) for i, t in enumerate(times) if t0 - dt <= t <= t0 + fade + 3 * dt]
        fracs = []
        for t, code in near:
            f = float(np.dot(code - x, y - x) / np.dot(y - x, y - x))
            assert np.allclose(code, mix(x, y, f), atol=1e-4), (t0, t)  # on the line between the two styles
            fracs.append((t, f))
        moving = [t for t, f in fracs if 1e-6 < f < 1 - 1e-6]
        done = next(t for t, f in fracs if f >= 1 - 1e-6)
        # The fade lasts its own crossfade time, within one frame: it starts at the switch and
        # the first frame at the new style comes no later than one frame after t0 + fade.
        assert moving and t0 <= moving[0] <= t0 + dt + 1e-6 and t0 + fade - dt - 1e-6 <= moving[-1] < t0 + fade, (t0, moving)
        assert t0 + fade - 1e-6 <= done <= t0 + fade + dt, (t0, done)
        for t, f in fracs:  # every frame where the eased curve of that length puts it
            assert f == pytest.approx(smoothstep((t - t0) / fade), abs=1e-4), (t0, t)


def test_old_timeline_without_crossfade_stamps_uses_set_crossfade_args(tmp_path):
    """Timelines are read whether or not events carry ``crossfade_s``; a bad value is one line."""
    from realtime.errors import MediaError
    from realtime.io.sinks.timeline import read_timeline

    base = {"format": "realtime-timeline", "version": 1, "video": "v.mp4", "complete": True, "duration_s": 2.0,
            "initial": {**state("mosaic", None), "crossfade_s": 0.4}}
    tl = tmp_path / "t.timeline.json"
    tl.write_text(json.dumps({**base, "events": [
        {"t": 0.5, "action": "set_crossfade", "args": {"seconds": 1.5}, **state("mosaic", None)},
        {"t": 1.0, "action": "set_style", **state("waves", None)}]}))
    assert [s.crossfade_s for s in read_timeline(tl).states] == [0.4, 1.5]
    tl.write_text(json.dumps({**base, "events": [{"t": 0.5, "action": "set_style", "crossfade_s": -1, **state("waves", None)}]}))
    with pytest.raises(MediaError, match="event 0 .*'crossfade_s' must be seconds in 0..60"):
        read_timeline(tl)


def test_timeline_is_taken_with_cluster(tmp_path, raw):
    """``--cluster`` is no longer refused with ``--timeline``: the cluster's driver reads the
    timeline first (a bad one is its one-line error, before Ray starts any worker)."""
    pytest.importorskip("ray")
    r = run(raw, "--timeline", tmp_path / "gone.timeline.json", "--cluster", "-o", tmp_path / "o.mp4", "--quiet")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "timeline not found" in r.stderr and "drop" not in r.stderr
