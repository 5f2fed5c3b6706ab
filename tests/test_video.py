"""``stylize video`` on clips the tests generate: frames, timestamps, audio, sizes, bad input."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT

from realtime.io.synthetic import write_clip


def run(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "realtime", "video", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        info = {"w": vs.width, "h": vs.height, "tb": vs.time_base, "audio": [a.codec_context.name for a in c.streams.audio],
                "first_stream": c.streams[0].type}
        info["pts"] = [f.pts for f in c.decode(video=0)]
    if info["audio"]:
        with av.open(str(path)) as c:
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
        info["samples"] = pcm.size
        info["pcm"] = pcm
    with av.open(str(path)) as c:
        info["frames"] = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return info


@pytest.fixture
def clip(tmp_path):
    p = tmp_path / "in.mp4"
    write_clip(p, frames=24, width=128, height=96, fps=24, audio=True)
    return p


def test_every_frame_same_timestamps_audio_intact(models_dir, clip, tmp_path):
    out = tmp_path / "out.mp4"
    r = run(clip, "-o", out, "--style", "mosaic", "--size", "64", "--quiet")
    assert r.returncode == 0, r.stderr
    a, b = probe(clip), probe(out)
    assert b["pts"] == a["pts"] and len(b["pts"]) == 24
    assert (b["w"], b["h"]) == (128, 96)
    assert b["first_stream"] == "video" and b["audio"] == ["aac"]
    assert b["samples"] == a["samples"]
    assert np.abs(b["pcm"] - a["pcm"]).max() < 1e-6  # copied, not re-encoded
    diff = np.mean([np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a["frames"], b["frames"])])
    assert diff > 10  # stylized
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_variable_frame_rate_odd_size_no_audio_and_switching(models_dir, tmp_path):
    src = tmp_path / "vfr_odd.mp4"
    write_clip(src, frames=20, width=161, height=119, fps=20, audio=False, vfr=True)
    out = tmp_path / "out.mp4"
    r = run(src, "-o", out, "--style", "mosaic", "--style", "waves", "--switch-every", "0.4", "--size", "64", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "odd dimension" in r.stderr
    a, b = probe(src), probe(out)
    assert b["pts"] == a["pts"]  # irregular gaps kept
    assert len(set(np.diff(a["pts"]))) > 1
    assert (b["w"], b["h"]) == (161, 119) and b["audio"] == []


def test_switching_styles_changes_the_picture(models_dir, tmp_path):
    src = tmp_path / "still.mp4"
    write_clip(src, frames=20, width=96, height=64, fps=10, audio=False)
    out1, out2 = tmp_path / "one.mp4", tmp_path / "two.mp4"
    assert run(src, "-o", out1, "--style", "mosaic", "--size", "64", "--quiet").returncode == 0
    r = run(src, "-o", out2, "--style", "mosaic", "--style", "dots", "--switch-every", "1.0", "--size", "64", "--quiet")
    assert r.returncode == 0, r.stderr
    f1, f2 = probe(out1)["frames"], probe(out2)["frames"]
    first = np.abs(f1[2].astype(int) - f2[2].astype(int)).mean()
    last = np.abs(f1[-1].astype(int) - f2[-1].astype(int)).mean()
    assert first < 3 and last > 10  # same style in second 0, the other style in second 1


def test_stability_keeps_every_frame_and_smooth_is_its_old_name(models_dir, clip, tmp_path):
    out = tmp_path / "steady.mp4"
    r = run(clip, "-o", out, "--style", "mosaic", "--size", "64", "--stability", "0.8", "--preset", "ultrafast", "--quiet")
    assert r.returncode == 0, r.stderr
    assert probe(out)["pts"] == probe(clip)["pts"]
    old = tmp_path / "old.mp4"
    r = run(clip, "-o", old, "--style", "mosaic", "--size", "64", "--smooth", "0.8", "--preset", "ultrafast", "--quiet")
    assert r.returncode == 0 and "--smooth is deprecated: it is now --stability" in r.stderr


def test_trim_start_end(models_dir, clip, tmp_path):
    out = tmp_path / "cut.mp4"
    r = run(clip, "-o", out, "--style", "ink", "--size", "64", "--start", "0.25", "--end", "0.75", "--quiet")
    assert r.returncode == 0, r.stderr
    b = probe(out)
    assert len(b["pts"]) == 12 and b["pts"][0] == 0
    assert abs(b["samples"] / 48000 - 0.5) < 0.05


def test_rotation_is_honoured(models_dir, tmp_path):
    src = tmp_path / "rot.mp4"
    write_clip(src, frames=6, width=128, height=64, fps=10, audio=False, rotation=90)
    out = tmp_path / "out.mp4"
    assert run(src, "-o", out, "--style", "mosaic", "--size", "64", "--quiet").returncode == 0
    b = probe(out)
    assert (b["w"], b["h"]) == (64, 128)


@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_frames_are_decoded_straight_to_the_inference_size(tmp_path, rotation):
    """The shrink happens in the decoder's colour conversion (one swscale pass); the picture, its
    orientation and the source size it came from are those of the full-size path."""
    import cv2

    from realtime.pipeline.stage import pick_inference_size
    from realtime.io.media.decode import VideoFile

    src = tmp_path / "rot.mp4"
    write_clip(src, frames=3, width=320, height=176, fps=10, audio=False, rotation=rotation)
    fit = lambda w, h: pick_inference_size(w, h, 96)  # noqa: E731
    with VideoFile(src).open() as reader:
        frame = next(reader.container.decode(reader.video))
        full, small = reader.convert(frame), reader.convert(frame, fit)
    w, h = full.source_size
    assert (w, h) == ((176, 320) if rotation else (320, 176)) and full.src_size is None
    assert small.source_size == (w, h) and small.image.shape[:2][::-1] == fit(w, h)
    ref = cv2.resize(full.image, fit(w, h), interpolation=cv2.INTER_AREA)
    assert np.abs(ref.astype(int) - small.image).mean() < 3  # the same picture, the same way up
    with VideoFile(src).open() as reader:
        frame = next(reader.container.decode(reader.video))
        assert reader.convert(frame, lambda w, h: (w, h)).src_size is None  # no shrink: as before


def test_truncated_file_finishes_with_what_decoded(models_dir, tmp_path):
    src = tmp_path / "rec.mkv"  # a recording cut off mid-stream (Matroska keeps its index up front)
    write_clip(src, frames=24, width=128, height=96, fps=24, audio=True)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "out.mp4"
    r = run(cut, "-o", out, "--style", "mosaic", "--size", "64", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "ended early" in r.stderr or "truncated" in r.stderr
    n = len(probe(out)["pts"])
    assert 0 < n < 24 and f"stylized the {n} frames" in r.stderr


def test_mp4_cut_before_its_index_is_a_clear_error(models_dir, clip, tmp_path):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    r = run(cut, "-o", out, "--style", "mosaic", "--quiet")
    assert r.returncode == 2 and "not a readable video file" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_pcm_audio_is_reencoded_for_mp4(models_dir, tmp_path):
    from fractions import Fraction

    from realtime.io.synthetic import pattern_frame

    src = tmp_path / "pcm.mov"
    with av.open(str(src), "w") as o:
        v = o.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = o.add_stream("pcm_s16le", rate=16000)
        a.layout = "mono"
        for i in range(10):
            f = av.VideoFrame.from_ndarray(pattern_frame(i, 64, 48), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 10)
            for p in v.encode(f):
                o.mux(p)
            af = av.AudioFrame.from_ndarray((np.sin(np.arange(1600) / 5) * 10000).astype(np.int16)[None], format="s16", layout="mono")
            af.sample_rate, af.pts = 16000, i * 1600
            for p in a.encode(af):
                o.mux(p)
        for s in (v, a):
            for p in s.encode(None):
                o.mux(p)
    out = tmp_path / "out.mp4"
    r = run(src, "-o", out, "--style", "mosaic", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "re-encoded pcm_s16le->aac" in r.stderr
    b = probe(out)
    assert b["audio"] == ["aac"] and abs(b["samples"] / 16000 - 1.0) < 0.1


def test_several_inputs_one_bad_keeps_going(models_dir, clip, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    audio_only = tmp_path / "audio.m4a"
    with av.open(str(audio_only), "w") as o:
        s = o.add_stream("aac", rate=48000)
        s.layout = "mono"
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        af.sample_rate = 48000
        for p in s.encode(af):
            o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    outdir = tmp_path / "out"
    r = run(clip, bad, audio_only, "--out-dir", outdir, "--style", "mosaic", "--size", "64", "--quiet")
    assert r.returncode == 2
    assert "not a readable video" in r.stderr and "no video stream" in r.stderr
    assert "1 of 3 videos stylized, 2 failed" in r.stderr
    assert sorted(p.name for p in outdir.iterdir()) == ["in-mosaic.mp4"]


def test_two_inputs_with_one_output_name_are_refused_before_any_work(clip, tmp_path):
    """``clip.mp4`` and ``clip.mkv`` in one folder both make ``clip-mosaic.mp4``: with --overwrite the
    second silently replaced the first (and the summary said both were stylized)."""
    folder, outdir = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    shutil.copy(clip, folder / "clip.mp4")
    shutil.copy(clip, folder / "clip.mkv")
    for args in ([folder], [folder / "clip.mp4", folder / "clip.mp4"]):
        r = run(*args, "--out-dir", outdir, "--style", "mosaic", "--size", "64", "--overwrite", "--quiet")
        errs = [l for l in r.stderr.splitlines() if l.startswith("stylize: error")]
        assert r.returncode == 2 and len(errs) == 1 and "two results would both be written to" in errs[0], r.stderr
        assert "clip-mosaic.mp4" in errs[0] and not list(outdir.iterdir())


@pytest.mark.parametrize("case, needle", [
    ("missing", "video not found"),
    ("exists", "exists (use --overwrite"),
    ("zero", "no video frames"),
    ("still_image", "still image"),
    ("webm_output", "must be an H.264 video file"),
])
def test_bad_single_inputs(models_dir, clip, tmp_path, case, needle):
    out = tmp_path / "out.mp4"
    src = clip
    if case == "missing":
        src = tmp_path / "nope.mp4"
    elif case == "exists":
        out.write_bytes(b"keep me")
    elif case == "still_image":
        from realtime.io.images import write_image

        src = write_image(tmp_path / "photo.png", np.zeros((64, 64, 3), np.uint8))
    elif case == "webm_output":
        out = tmp_path / "out.webm"
    extra = ["--start", "100"] if case == "zero" else []
    r = run(src, "-o", out, "--style", "mosaic", "--size", "64", "--quiet", *extra)
    assert r.returncode == 2, r.stderr
    errs = [l for l in r.stderr.splitlines() if l.startswith("stylize: error")]
    assert len(errs) == 1 and needle in errs[0], r.stderr
    if case == "exists":
        assert out.read_bytes() == b"keep me"
    else:
        assert not out.exists()


def test_slips_of_the_hand_are_one_line_before_any_work(clip, tmp_path):
    """--end 0 (once "sound after the last picture cut: inf s", then an error after the decode), and
    -o spelled as a folder (once written as a file of that name) or naming one."""
    folder = tmp_path / "outs"
    folder.mkdir()
    for args, needle in (([clip, "-o", tmp_path / "o.mp4", "--end", "0"], "--end (0) must be after --start (0)"),
                         ([clip, "-o", f"{tmp_path / 'o.mp4'}/"], "is a folder; give a file name"),
                         ([clip, "-o", folder], f"-o {folder} is a folder; give a file name, or --out-dir {folder}")):
        r = run(*args, "--style", "mosaic", "--size", "64", "--quiet", timeout=60)
        errs = [l for l in r.stderr.splitlines() if l.startswith("stylize: error")]
        assert r.returncode == 2 and len(errs) == 1 and needle in errs[0], r.stderr
        assert "Traceback" not in r.stderr and "inf s" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "outs"] and not list(folder.iterdir())


def test_large_frames_are_capped_for_inference_and_kept_at_source_size(tmp_path):
    from fakes import fake_engine

    from realtime.pipeline.stage import pick_inference_size
    from realtime.pipeline.video import VideoOptions, VideoStylizer

    src = tmp_path / "big.mp4"
    write_clip(src, frames=3, width=1600, height=1200, fps=10, audio=False)
    engine = fake_engine(tmp_path, **{"engine.max_size": 120})
    assert pick_inference_size(1600, 1200, 0, 120) == (160, 120)
    out = tmp_path / "big_out.mp4"
    vs = VideoStylizer(engine, [engine.bank.code_for(engine.resolve_styles(["mosaic"])[0])], VideoOptions(batch=2))
    res = vs.run(src, out)
    assert res.frames == 3 and (res.width, res.height) == (1600, 1200)
    assert (probe(out)["w"], probe(out)["h"]) == (1600, 1200)
    assert engine.stylizer.frames == 3
    # One stylizer object runs many files in a row: no state carried over.
    res2 = vs.run(src, tmp_path / "again.mp4")
    assert res2.frames == 3 and probe(tmp_path / "again.mp4")["pts"] == probe(out)["pts"]
    # Where the time went: every step of the path was timed, each thread's CPU counted.
    for step in ("decode", "convert (decoder)", "preprocess", "infer", "postprocess", "encode", "wait: encoder starved"):
        assert step in res2.profile and res2.profile[step] >= 0, step
    assert res2.profile["preprocess"] > 0 and res2.profile["encode"] > 0  # 1600x1200 -> 160x120, H.264
    assert set(res2.thread_cpu_s) == {"decoder", "inference", "finisher", "encoder"} and res2.process_cpu_s > 0


def test_worker_failure_leaves_no_file_and_no_thread(clip, tmp_path):
    from fakes import fake_engine

    from realtime.pipeline.video import VideoOptions, VideoStylizer

    engine = fake_engine(tmp_path)
    code = engine.bank.code_for(engine.resolve_styles(["mosaic"])[0])
    engine.stylizer.fail_after = 2
    engine.stylizer.error = "GPU fell off the bus"
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="fell off"):
        VideoStylizer(engine, [code], VideoOptions(batch=2, size=64)).run(clip, out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


class _Later:
    """A batch the network has not finished yet: computed when asked for (and logged)."""

    def __init__(self, stylizer, n, frames, codes):
        self.stylizer, self.n, self.frames, self.codes = stylizer, n, frames.copy(), codes

    def result(self):
        self.stylizer.log.append(("result", self.n))
        if self.n == self.stylizer.fail_result:
            raise RuntimeError("the network failed on batch %d" % self.n)
        return self.stylizer.stylize(self.frames, self.codes)


def _queueing_stylizer(fail_result=0):
    from fakes import FakeStylizer

    class Queueing(FakeStylizer):
        """Takes batches without running them, like a backend with a queue of its own."""

        def __init__(self):
            super().__init__()
            self.log, self.fail_result = [], fail_result

        def submit(self, frames, codes):
            n = sum(1 for kind, _ in self.log if kind == "submit") + 1
            self.log.append(("submit", n))
            return _Later(self, n, frames, codes)

    return Queueing()


def test_the_network_gets_the_next_batch_before_the_last_is_collected(clip, tmp_path):
    """One batch stays in flight: the inference thread submits batch n+1 before it waits for batch
    n (so a queueing backend never idles between batches), and the film is the same frame for
    frame as with a backend that finishes each batch when given it."""
    from fakes import fake_engine

    from realtime.pipeline.video import VideoOptions, VideoStylizer

    opts = VideoOptions(batch=5, size=64)
    engine = fake_engine(tmp_path)
    code = engine.bank.code_for(engine.resolve_styles(["mosaic"])[0])
    VideoStylizer(engine, [code], opts).run(clip, tmp_path / "plain.mp4")
    engine.stylizer = queueing = _queueing_stylizer()
    res = VideoStylizer(engine, [code], opts).run(clip, tmp_path / "queued.mp4")
    assert res.frames == 24
    batches = 5  # 24 frames in batches of 5
    expect = [("submit", 1)]
    for n in range(2, batches + 1):
        expect += [("submit", n), ("result", n - 1)]
    assert queueing.log[-2 * batches:] == expect + [("result", batches)]
    plain, queued = probe(tmp_path / "plain.mp4"), probe(tmp_path / "queued.mp4")
    assert queued["pts"] == plain["pts"]
    assert all(np.array_equal(a, b) for a, b in zip(plain["frames"], queued["frames"]))


def test_a_batch_that_fails_in_flight_stops_the_job_cleanly(clip, tmp_path):
    """A failure collected one batch late ends the job with that error, no file and no thread,
    and the batch submitted after it is waited for."""
    from fakes import fake_engine

    from realtime.pipeline.video import VideoOptions, VideoStylizer

    engine = fake_engine(tmp_path)
    code = engine.bank.code_for(engine.resolve_styles(["mosaic"])[0])
    engine.stylizer = queueing = _queueing_stylizer(fail_result=2)
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="failed on batch 2"):
        VideoStylizer(engine, [code], VideoOptions(batch=4, size=64)).run(clip, out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".part" in p.name]
    # batch 3 was in the network when batch 2 failed: waited for, so no network work outlives the job
    assert queueing.log[-3:] == [("submit", 3), ("result", 2), ("result", 3)]


@pytest.mark.parametrize("width, height, size", [(128, 96, 64), (1280, 720, 384), (640, 360, 1000), (100, 60, 0)])
def test_live_and_video_pick_the_same_inference_size(tmp_path, width, height, size):
    """The one size rule: the same source and --size give the same network input in every mode."""
    from fakes import FakeStylizer

    from realtime.pipeline.stage import StylizeStage, pick_inference_size
    from realtime.pipeline.state import StreamState

    expected = pick_inference_size(width, height, size, 1080)
    assert expected[0] % 4 == 0 and expected[1] % 4 == 0
    assert min(expected) <= max(min(width, height), 16) + 3  # never upscaled
    stage = StylizeStage(FakeStylizer(), size, 1080)
    frame = np.zeros((height, width, 3), np.uint8)
    assert stage([frame], np.zeros(100, np.float32), StreamState())[0].shape == frame.shape
    assert stage.size_for(width, height) == expected
    assert stage.preprocess([frame]).shape[1:3] == expected[::-1]


@pytest.mark.parametrize("side,expect", [("72", "120x72"), ("70", "116x72")])
def test_live_and_video_commands_report_the_same_inference_size(models_dir, tmp_path, side, expect):
    """One size rule everywhere; 70 rounds up to 72, and the rule must not be applied again to
    frames the decoder already shrank (that gave 112x72)."""
    import re

    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=4, width=160, height=96, fps=10, audio=False)
    rv = run(clip, "-o", tmp_path / "o.mp4", "--style", "mosaic", "--size", side, "--quiet")
    rl = subprocess.run([sys.executable, "-m", "realtime", "live", "--source", str(clip), "--headless", "--size", side,
                         "--style", "mosaic"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert rv.returncode == 0 and rl.returncode == 0, rv.stderr + rl.stderr
    sizes = [re.search(r"inference (\d+x\d+)", r.stderr).group(1) for r in (rv, rl)]
    assert sizes[0] == sizes[1] == expect


def test_ctrl_c_leaves_no_partial_file(models_dir, tmp_path):
    import signal

    from conftest import signal_when_file_appears

    src = tmp_path / "long.mp4"
    write_clip(src, frames=900, width=96, height=64, fps=30, audio=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "out.mp4"
    code, err = signal_when_file_appears(["video", src, "-o", out, "--style", "mosaic", "--quiet"], out_dir, ".out.*", signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_audio_longer_than_the_picture_is_cut_and_extra_streams_are_named(tmp_path, caplog):
    from fractions import Fraction

    from fakes import fake_engine

    from realtime.io.synthetic import pattern_frame
    from realtime.pipeline.video import VideoOptions, VideoStylizer

    src = tmp_path / "long_audio.mkv"
    with av.open(str(src), "w") as o:
        v = o.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = o.add_stream("aac", rate=16000)
        a.layout = "mono"
        a.metadata["language"] = "fra"
        v2 = o.add_stream("libx264", rate=10)  # a second picture (an alternative angle)
        v2.width, v2.height, v2.pix_fmt = 32, 32, "yuv420p"
        for i in range(10):  # 1 s of picture
            for st_, w, h in ((v, 64, 48), (v2, 32, 32)):
                f = av.VideoFrame.from_ndarray(pattern_frame(i, w, h), format="rgb24")
                f.pts, f.time_base = i, Fraction(1, 10)
                for p in st_.encode(f):
                    o.mux(p)
        for i in range(32):  # 2 s of sound
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, i * 1024
            for p in a.encode(af):
                o.mux(p)
        for st_ in (v, v2, a):
            for p in st_.encode(None):
                o.mux(p)
    engine = fake_engine(tmp_path)
    code = engine.bank.code_for(engine.resolve_styles(["mosaic"])[0])
    out = tmp_path / "out.mp4"
    with caplog.at_level("WARNING"):
        VideoStylizer(engine, [code], VideoOptions(size=32)).run(src, out)
    assert "video #2" in caplog.text and "not copied" in caplog.text
    assert "ended early" not in caplog.text  # longer sound is not a truncated file
    b = probe(out)
    assert len(b["pts"]) == 10 and b["samples"] / 16000 < 1.15  # cut at the picture's end (within a packet)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].metadata.get("language") == "fra"


def test_avi_output_claims_the_real_frame_rate(tmp_path):
    """AVI has no timestamps: its header rate comes from the time base (once 600 fps for 24), and
    a frame's place in the file is its time (once one frame late after the first: the picture
    behind the sound)."""
    from fakes import fake_engine

    from realtime.pipeline.video import VideoOptions, VideoStylizer

    src = tmp_path / "in.mp4"
    write_clip(src, frames=12, width=64, height=48, fps=24, audio=True)
    engine = fake_engine(tmp_path)
    out = tmp_path / "out.avi"
    VideoStylizer(engine, [engine.bank.code_for(engine.resolve_styles(["mosaic"])[0])], VideoOptions(size=32)).run(src, out)
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        assert vs.average_rate == 24 and c.streams.audio
        pts = [f.pts for f in c.decode(video=0)]
    assert len(pts) == 12 and pts == sorted(pts) and pts[-1] - pts[0] == 11
    with av.open(str(out)) as c:  # the AAC priming packet's negative time once put an empty frame after the first
        assert [p.dts for p in c.demux(video=0) if p.size] == list(range(12))
