"""The media layer (realtime.io.media): the one H.264 writer, stream time and seeking, the sound's
routes; and the per-stream state's cuts (realtime.pipeline.state)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT

from realtime.io.media.audio import plan_audio
from realtime.io.media.decode import VideoFile, frame_at, seek_to, stream_time
from realtime.io.media.h264 import H264Writer, pixel_format
from realtime.io.synthetic import pattern_frame, write_clip


def frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_a_fragmented_recording_is_playable_before_it_is_finished(tmp_path):
    dst = tmp_path / "rec.mp4"
    w = H264Writer(dst, fragmented=True)
    w.start(96, 64, Fraction(30), Fraction(1, 1000), crf=30, preset="ultrafast")
    for i in range(75):  # 2.5 s at 30 fps: two whole one-second fragments at least
        w.write(pattern_frame(i, 96, 64)[..., ::-1], i * 33)
    snapshot = tmp_path / "as-if-killed.mp4"
    shutil.copyfile(w.tmp, snapshot)  # what a kill -9 would leave now
    assert not dst.exists()
    assert frames_in(snapshot) >= 30
    w.finish()
    w.publish()
    assert frames_in(dst) == 75 and not w.tmp.exists()


def test_a_plain_writer_leaves_nothing_when_left_unfinished(tmp_path):
    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with H264Writer(dst) as w:
            w.start(64, 48, Fraction(25), Fraction(1, 25), crf=30, preset="ultrafast")
            w.write(pattern_frame(0, 64, 48), 0)
            raise RuntimeError("the pipeline failed")
    assert list(tmp_path.iterdir()) == []


def test_odd_sizes_keep_their_size_in_every_writer(tmp_path):
    assert pixel_format(161, 119) == "yuv444p" and pixel_format(160, 120) == "yuv420p"
    from realtime.io.sinks import VideoRecorder

    rec = VideoRecorder(tmp_path / "odd.mp4", preset="ultrafast")
    for i in range(5):
        rec.write(pattern_frame(i, 161, 119), i / 30)
    path = rec.close()
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        assert (vs.width, vs.height, vs.codec_context.pix_fmt) == (161, 119, "yuv444p")


def test_avi_is_retimed_into_frame_counts(tmp_path):
    dst = tmp_path / "out.avi"
    with H264Writer(dst) as w:
        w.start(64, 48, Fraction(10), Fraction(1, 12800), crf=30, preset="ultrafast")
        for i in range(5):
            w.write(pattern_frame(i, 64, 48), i * 1280)
        w.finish()
        w.publish()
    with av.open(str(dst)) as c:
        assert c.streams.video[0].time_base == Fraction(1, 10)  # one tick a frame, not 1/12800
        pts = [f.pts for f in c.decode(video=0)]
    assert pts == list(range(pts[0], pts[0] + 5))


def test_stream_time_seek_and_frame_at(tmp_path):
    clip = tmp_path / "gop.mp4"
    write_clip(clip, frames=40, width=64, height=48, fps=10, audio=True, gop=10)
    assert stream_time(None, Fraction(1, 20), 0.0, default=7.0) == 7.0
    assert stream_time(30, Fraction(1, 20), 0.5) == 1.0
    with VideoFile(clip).open() as r:
        assert seek_to(r, 2.05)
        first = r.convert(next(r.container.decode(r.video)))
        assert first.time <= 2.05 and first.time >= 2.0 - 1e-6  # the keyframe at 2.0 s, not the start
    f = frame_at(clip, 2.05)
    assert abs(f.time - 2.1) < 1e-6 and f.image.shape == (48, 64, 3)


def test_sound_routes_copy_what_the_container_takes(tmp_path):
    aac, pcm = tmp_path / "aac.mp4", tmp_path / "pcm.mkv"
    write_clip(aac, frames=10, width=64, height=48, fps=10, audio=True)
    write_clip(pcm, frames=10, width=64, height=48, fps=10, audio=True, audio_codec="pcm_s16le")
    cases = ((aac, "o.mp4", "copied"), (aac, "o.mkv", "copied"), (aac, "o.avi", "copied"),
             (pcm, "p.mkv", "copied"), (pcm, "p.mp4", "re-encoded pcm_s16le->aac"))
    for src, name, expect in cases:
        with VideoFile(src).open() as r, H264Writer(tmp_path / name) as w:
            audio = list(r.container.streams.audio)
            routes, mode = plan_audio(w.container, audio)
            assert mode == expect, (src.name, name, mode)
            assert list(routes) == [audio[0].index] and routes[audio[0].index].copy == (expect == "copied")


def test_kill_9_during_a_live_recording_leaves_a_playable_file(models_dir, tmp_path):
    """A power cut is a kill -9: the recording's temp file plays up to the last fragment."""
    rec = tmp_path / "show.mp4"
    p = subprocess.Popen([sys.executable, "-m", "realtime", "live", "--source", "synthetic:96x64", "--fps", "30",
                          "--headless", "--record", str(rec), "--size", "32", "--backend", "openvino",
                          "--max-frames", "100000"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        parts: list[Path] = []
        while time.monotonic() < deadline:
            parts = [q for q in tmp_path.iterdir() if q.name.startswith(".show.") and q.stat().st_size > 20_000]
            if parts:
                break
            assert p.poll() is None, p.stderr.read().decode()
            time.sleep(0.2)
        assert parts, "the recording never grew"
        time.sleep(1.5)  # past at least one more fragment
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    assert not rec.exists()
    assert frames_in(parts[0]) >= 15


def test_stream_state_cuts_on_style_scene_and_size():
    from fakes import FakeStylizer

    from realtime.effects.stability import FlowStabilizer
    from realtime.pipeline.stage import StylizeStage
    from realtime.pipeline.state import StreamState

    stage = StylizeStage(FakeStylizer(), 32)
    state = StreamState(stability=0.6)
    code = np.zeros(100, np.float32)
    frame = pattern_frame(3, 96, 64)
    stage([frame], code, state)
    stab = state.temporal
    assert isinstance(stab, FlowStabilizer) and stab._prev_out is not None
    stage([pattern_frame(4, 96, 64)], code, state)
    assert not state.cuts  # an ordinary next frame carries the past along

    state.cut("style")
    assert state.cuts["style"] == 1 and stab._prev_out is None  # nothing of the old style is carried

    stage([frame], code, state)
    stage([np.full_like(frame, 255) - frame], code, state)  # a shot change: the stabiliser finds it
    assert state.cuts["scene"] == 1

    stage([pattern_frame(5, 128, 64)], code, state)  # the source changed size
    assert state.cuts["size"] == 1 and state.temporal is stab

    content = state.strengthen(FakeStylizer(), code, 0.5, frame)
    state.cut("stream")  # a new stream forgets the content code too
    assert state._content_code is None and not np.array_equal(content, code)
    with pytest.raises(ValueError):
        state.cut("because")
