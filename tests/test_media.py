"""The media layer (realtime.io.media): the one H.264 writer, stream time and seeking, the sound's
routes; and the per-stream state's cuts (realtime.pipeline.state)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT

from realtime.io.media.audio import plan_audio
from realtime.io.media.decode import VideoFile, frame_at, seek_to, stream_time
from realtime.io.media.h264 import H264Writer, pixel_format
from realtime.io import salvage
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


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def live_recording_bytes(folder: Path, frames: int = 75) -> bytes:
    """What a live recording's temp file holds after ``frames`` frames at 30 fps, unfinished:
    the header and the whole one-second fragments (the rest is still in the muxer)."""
    w = H264Writer(folder / "g.mp4", fragmented=True)
    w.start(96, 64, Fraction(30), Fraction(1, 1000), crf=30, preset="ultrafast")
    for i in range(frames):
        w.write(pattern_frame(i, 96, 64)[..., ::-1], i * 33)
    data = w.tmp.read_bytes()
    w.discard()
    return data


def test_parts_left_by_killed_runs_are_recovered_or_removed_when_the_folder_is_next_written(tmp_path, caplog):
    """Issue 27: any output into a folder deals with what killed runs of this machine left there:
    a live recording becomes a playable plain MP4 beside it (never over a file), one with nothing
    playable goes, a `stylize video` part goes; other machines' and running processes' stay."""
    import logging

    from realtime.io.images import write_image
    from realtime.io.paths import HOST

    gen = tmp_path / "gen"
    gen.mkdir()
    data = live_recording_bytes(gen)
    out = tmp_path / "out"
    out.mkdir()
    dead = dead_pid()
    torn = out / f".show.{dead}@{HOST}.rec.aaaa1111.part.mp4"
    torn.write_bytes(data + b"\x00\x00\x10\x00moof-torn-by-the-kill")
    os.utime(torn, (1_700_000_000, 1_700_000_000))
    held = salvage.scan(torn).frames  # the whole one-second fragments
    assert held >= 55
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(1_700_000_000))
    earlier = out / f"show.recovered-{stamp}.mp4"
    earlier.write_bytes(b"a file the user has")
    header_only = out / f".early.{dead}@{HOST}.rec.bbbb2222.part.mp4"
    header_only.write_bytes(data[: data.index(b"moof") - 4])
    video_part = out / f".film.{dead}@{HOST}.cccc3333.part.mp4"
    video_part.write_bytes(b"a stylize video part: its moov never came")
    legacy = out / f".old.{dead}.dddd4444.part.mp4"  # named before hosts were in the name
    legacy.write_bytes(b"old")
    elsewhere = out / f".away.{dead}@another-host.rec.eeee5555.part.mp4"
    elsewhere.write_bytes(data)
    running = out / f".mine.{os.getpid()}@{HOST}.rec.ffff6666.part.mp4"
    running.write_bytes(data)

    caplog.set_level(logging.INFO, logger="realtime")
    write_image(out / "still.png", pattern_frame(0, 32, 32))  # any output into the folder

    recovered = out / f"show.recovered-{stamp}-2.mp4"
    assert earlier.read_bytes() == b"a file the user has"
    with av.open(str(recovered)) as c:
        assert c.streams.video[0].frames == held  # a plain MP4's index, the torn end left out
    assert frames_in(recovered) == held
    assert not torn.exists() and not header_only.exists() and not video_part.exists() and not legacy.exists()
    assert elsewhere.exists() and running.exists()
    lines = [r.getMessage() for r in caplog.records if r.name == "realtime.io.recovery"]
    assert len(lines) == 4, lines
    assert any(m.startswith(f"recovered {recovered}: {held} frames (2 s)") and f"process {dead}" in m for m in lines)
    assert any(m.startswith(f"removed {header_only}: ") and "nothing playable" in m for m in lines)
    assert any(m.startswith(f"removed {video_part}, left by an earlier run") for m in lines)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        [earlier.name, recovered.name, "still.png"])


def test_a_recording_under_a_name_of_no_video_type_is_recovered_as_mp4(tmp_path):
    """An older version let ``--record x.avi`` (or ``x.txt``, or no suffix) write its MP4 fragments
    under that name and then fail to publish it; every later run failed to recover it (AVI from
    fragments, or "x.recovered-...-1..999 exist" for a name without a suffix).  It comes back as
    the MP4 it is."""
    from realtime.io.paths import HOST, clean_stale_parts

    (tmp_path / "gen").mkdir()
    data = live_recording_bytes(tmp_path / "gen")
    out = tmp_path / "out"
    out.mkdir()
    dead = dead_pid()
    for name, suffix in (("a", ".avi"), ("b", ".txt"), ("c", "")):
        (out / f".{name}.{dead}@{HOST}.rec.aaaa1111.part{suffix}").write_bytes(data)
        (out / f"{name}.timeline.json").write_text("{}")  # what once made every recovered name look taken
    clean_stale_parts(out)
    recovered = sorted(p.name for p in out.glob("*.recovered-*"))
    assert [n.split(".")[0] for n in recovered] == ["a", "b", "c"] and all(n.endswith(".mp4") for n in recovered)
    assert all(frames_in(out / n) >= 55 for n in recovered) and not list(out.glob(".*.part*"))


def test_a_long_named_recording_is_recovered_with_its_source_and_timeline(tmp_path):
    """The temp files of a long name carry its stem cut with a hash; the timeline, written under the
    whole name, once stayed behind (and then refused every later --record of that name)."""
    import json

    from realtime.io.parts import new_temp
    from realtime.io.paths import clean_stale_parts

    (tmp_path / "gen").mkdir()
    data = live_recording_bytes(tmp_path / "gen")
    out = tmp_path / "out"
    out.mkdir()
    dead, stem = dead_pid(), "L" * 200
    for target in (out / f"{stem}.mp4", out / f"{stem}.source.mp4"):
        t = new_temp(target, recoverable=True)
        t.rename(t.with_name(t.name.replace(f".{os.getpid()}@", f".{dead}@")))
        t.with_name(t.name.replace(f".{os.getpid()}@", f".{dead}@")).write_bytes(data)
    (out / f"{stem}.timeline.json").write_text(json.dumps({"video": f"{stem}.mp4", "source": f"{stem}.source.mp4",
                                                            "complete": False}))
    clean_stale_parts(out)
    (video,) = out.glob("*.recovered-*[0-9].mp4")
    (timeline,) = out.glob("*.recovered-*.timeline.json")
    doc = json.loads(timeline.read_text())
    assert doc["video"] == video.name and (out / doc["source"]).exists() and frames_in(out / doc["source"]) >= 55
    assert not (out / f"{stem}.timeline.json").exists() and not list(out.glob(".*.part*"))


def test_kill_9_during_a_live_recording_is_recovered_by_the_next_run(models_dir, tmp_path):
    """A power cut is a kill -9: the recording's temp file plays up to its last whole fragment (one
    a second), and the next run that records into the folder recovers it into a playable file."""
    rec = tmp_path / "show.mp4"
    live = [sys.executable, "-m", "realtime", "live", "--source", "synthetic:96x64", "--fps", "30", "--headless",
            "--record", str(rec), "--size", "32", "--backend", "openvino"]
    # until a second's fragment is whole: then kill, mid-way through the next
    parts = kill_9_once_recorded([*live, "--max-frames", "100000"], tmp_path, ".show.")
    assert not rec.exists() and ".rec." in parts[0].name
    held = salvage.scan(parts[0]).frames  # the whole fragments (a fragment torn by the kill would stop a player at once)
    assert held >= 25

    r = subprocess.run([*live, "--max-frames", "5"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    recovered = list(tmp_path.glob("show.recovered-*.mp4"))
    assert len(recovered) == 1 and f"recovered {recovered[0]}: {held} frames" in r.stderr, r.stderr
    assert frames_in(recovered[0]) == held
    assert frames_in(rec) == 5  # the second run's own recording, under the name asked for
    assert not [q for q in tmp_path.iterdir() if ".part" in q.name]


def test_kill_9_during_stylize_video_leaves_a_part_that_the_next_write_into_the_folder_removes(models_dir, tmp_path, caplog):
    """A `stylize video` part is not worth recovering (a rerun makes it again, and an unfinished
    MP4 has no index): any later output into that folder removes it, not only a rerun to its name."""
    import logging

    from conftest import signal_when_file_appears

    from realtime.io.images import write_image
    from realtime.io.synthetic import write_clip

    src = tmp_path / "long.mp4"
    write_clip(src, frames=900, width=96, height=64, fps=30, audio=False)
    out = tmp_path / "out"
    out.mkdir()
    code, err = signal_when_file_appears(["video", src, "-o", out / "film.mp4", "--style", "mosaic", "--quiet"],
                                         out, ".film.*", signal.SIGKILL)
    assert code == -signal.SIGKILL
    (part,) = list(out.iterdir())
    assert part.name.startswith(".film.") and ".rec." not in part.name
    caplog.set_level(logging.INFO, logger="realtime")
    write_image(out / "poster.png", pattern_frame(0, 32, 32))
    assert [q.name for q in out.iterdir()] == ["poster.png"]
    assert [r.getMessage() for r in caplog.records if r.name == "realtime.io.recovery"] == [
        f"removed {part}, left by an earlier run that was killed"]


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (a disk that fills mid-show); skips where mounting is not allowed."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def kill_9_once_recorded(cmd: list[str], folder: Path, prefix: str, frames: int = 25,
                         ready: Callable[[], bool] = lambda: True) -> list[Path]:
    """Run ``cmd`` until the first temp recording named ``prefix...`` in ``folder`` holds ``frames``
    whole frames (and ``ready()``), then kill -9 it, as a power cut would; returns the temp files
    (sorted).  Fails the test if the command ends first or the file never grows (60 s)."""
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            parts = sorted(q for q in folder.iterdir() if q.name.startswith(prefix))
            if parts and salvage.scan(parts[0]).frames >= frames and ready():
                return parts
            assert p.poll() is None, p.stderr.read().decode()
            time.sleep(0.1)
        pytest.fail(f"the recording {prefix}* never grew")
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)


def fill(folder: Path, leave: int) -> None:
    st = os.statvfs(folder)
    with open(folder / "filler", "ab") as fh:
        fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


def test_a_full_disk_keeps_the_recording_and_the_show_goes_on_but_exits_non_zero(models_dir, tmp_path, small_disk):
    """Issue 27: the disk fills mid-show.  The whole fragments written are kept (published,
    playable), the show goes on, the status says so, and a show asked to record exits non-zero."""
    import json

    rec = small_disk / "r.mp4"
    status = tmp_path / "status.json"
    cfg = tmp_path / "show.yaml"
    cfg.write_text(f"show:\n  status_file: {status}\n  status_every_s: 0.5\n")
    fill(small_disk, 200_000)  # some 2 s of 320x240 at 30 fps
    r = subprocess.run([sys.executable, "-m", "realtime", "live", "--source", "synthetic:320x240", "--fps", "30",
                        "--headless", "--record", str(rec), "--size", "32", "--backend", "openvino", "--config", str(cfg),
                        "--max-frames", "150"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "150 frames shown" in r.stderr  # the show went on to the end
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stylize: error: the recording stopped early: cannot write {rec}: No space left on device; the ")
    kept = int(last.split("; the ")[1].split()[0])
    assert last.endswith(f"frames written before are kept in {rec}") and kept >= 30
    assert frames_in(rec) == kept
    st = json.loads(status.read_text())
    assert st["recording"] is None and "No space left on device" in st["recording_error"] and str(rec) in st["recording_error"]
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "r.mp4", "r.timeline.json"]  # with its timeline

    # A part of a killed run on a disk with no room for a copy: recovered where it lies.
    (small_disk / "r.mp4").unlink()
    from realtime.io.paths import HOST
    from realtime.io.recovery import clean_stale_parts

    gen = tmp_path / "gen"
    gen.mkdir()
    part = small_disk / f".night.{dead_pid()}@{HOST}.rec.abcd1234.part.mp4"
    part.write_bytes(live_recording_bytes(gen) + b"torn")
    held = salvage.scan(part).frames
    fill(small_disk, 0)
    clean_stale_parts(small_disk)
    (kept_part,) = small_disk.glob("night.recovered-*.mp4")
    assert not part.exists() and held >= 55 and frames_in(kept_part) == held


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


def test_a_live_recording_is_the_container_its_name_says(tmp_path):
    """While it is written a recording is fragmented MP4 (what survives a kill); at its clean end
    it is copied into the container of its name, not left as MP4 data under an .mkv name."""
    dst = tmp_path / "rec.mkv"
    w = H264Writer(dst, fragmented=True)
    w.start(96, 64, Fraction(30), Fraction(1, 1000), crf=30, preset="ultrafast")
    for i in range(40):
        w.write(pattern_frame(i, 96, 64)[..., ::-1], i * 33)
    w.finish()
    w.publish()
    with av.open(str(dst)) as c:
        assert "matroska" in c.format.name
    assert frames_in(dst) == 40
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]  # no part left behind


@pytest.mark.parametrize("size", [(160, 120), (161, 119)])
def test_nvenc_is_used_where_it_opens_and_otherwise_x264_with_one_warning(tmp_path, caplog, size):
    """--encoder nvenc: NVIDIA's encoder where the driver and GPU have one; everywhere else (this
    machine, an H100, an odd size) the same file from x264 and a warning that says why."""
    from realtime.io.media.h264 import nvenc_problem

    w, h = size
    with H264Writer(tmp_path / "n.mp4") as wr:
        wr.start(w, h, Fraction(30), Fraction(1, 30), crf=20, preset="superfast", encoder="nvenc")
        for i in range(6):
            wr.write(pattern_frame(i, w, h), i)
        wr.finish()
        path = wr.publish()
    expect = "nvenc" if not nvenc_problem() and w % 2 == 0 else "x264"
    assert wr.encoder == expect
    warned = [r.getMessage() for r in caplog.records if "--encoder nvenc" in r.getMessage()]
    assert len(warned) == (expect == "x264")
    if warned:
        assert (nvenc_problem() or "odd size") in warned[0]
    assert frames_in(path) == 6
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "h264"


def test_a_frame_of_another_size_is_scaled_not_fatal(tmp_path):
    """A live recording started at an even size takes a frame of another (odd) size (an idle
    clip): swscale scales it into the stream, the fast I420 path is only for frames that fit."""
    with H264Writer(tmp_path / "mixed.mp4") as w:
        w.start(64, 48, Fraction(30), Fraction(1, 30), crf=20, preset="ultrafast")
        for i, (fw, fh) in enumerate([(64, 48), (63, 47), (80, 48), (64, 48)]):
            w.write(pattern_frame(i, fw, fh), i)
        w.finish()
        path = w.publish()
    assert frames_in(path) == 4
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        assert (vs.width, vs.height) == (64, 48)
