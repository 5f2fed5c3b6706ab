"""The live pipeline with no camera: synthetic and file sources, scripted keys, failures, threads."""

import time

import av
import numpy as np
import pytest
from conftest import content_image

from realtime.errors import MediaError
from realtime.live import LiveApp, LiveOptions, LivePipeline, ScriptedKeys, WorkerFailed
from realtime.sources import FileSource, SyntheticSource, open_source
from realtime.synthetic import write_clip


@pytest.fixture(scope="module")
def codes(tf_stylizer):
    rng = np.random.default_rng(3)
    return [tf_stylizer.style_code(content_image(200, 200, i * 17)) for i in range(3)] + [rng.normal(0, 0.3, 100).astype(np.float32)]


def make_app(stylizer, codes, source, tmp_path, keys=None, **kw):
    p = LivePipeline(source, stylizer, codes, [f"s{i}" for i in range(len(codes))], short_side=64, crossfade_s=0.2)
    opts = LiveOptions(headless=True, record_dir=str(tmp_path / "rec"), snapshot_dir=str(tmp_path / "snap"), **kw)
    return LiveApp(p, opts, keys or ScriptedKeys({})), p


def test_synthetic_headless_counts_frames_latency_and_drops(tf_stylizer, codes, tmp_path):
    app, p = make_app(tf_stylizer, codes, SyntheticSource(96, 64, fps=1000), tmp_path, max_frames=25)
    stats = app.run()
    assert stats.shown == 25
    assert 0 < stats.latency_ms(50) <= stats.latency_ms(95) < 2000
    assert stats.repeats == 0  # frames are numbered: nothing shown twice
    # 1000 fps capture outruns inference: the one-slot buffer must have dropped frames, and counted them.
    assert p.dropped > 0 and p.captured >= stats.shown + p.dropped - 2


def test_file_source_drops_nothing_and_ends(tf_stylizer, codes, tmp_path):
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=15, width=96, height=64, fps=60, audio=False)
    app, p = make_app(tf_stylizer, codes, FileSource(clip), tmp_path)
    p.source.open()
    stats = app.run()
    assert stats.shown == 15 and p.dropped == 0
    assert [i for i in range(15)] == list(range(stats.last_index + 1))


def test_hotkeys_change_style_strength_record_and_snapshot(tf_stylizer, codes, tmp_path):
    keys = ScriptedKeys({2: "n", 4: "3", 5: "t", 6: "+", 7: "+", 8: "r", 9: "s", 14: "c", 20: "r", 22: "m", 26: "o", 28: "q"})
    app, p = make_app(tf_stylizer, codes, SyntheticSource(96, 64, fps=60), tmp_path, keys=keys, max_frames=500)
    stats = app.run()
    assert 28 <= stats.shown < 40  # q ended the run
    assert p.style_index == 2
    assert abs(p.strength - 1.2) < 1e-6
    assert p.smoothing == 0.5
    assert app.side_by_side and app.mirror and not app.overlay
    assert len(app.recordings) == 1 and app.recordings[0].exists()
    with av.open(str(app.recordings[0])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert 8 <= len(frames) <= 14
    assert {f.shape for f in frames} == {(64, 96, 3)}  # side by side from frame 14: scaled into the file
    assert sorted(x.name.rsplit("-", 1)[1] for x in app.snapshots) == ["original.png", "styled.png"]
    assert all(x.exists() for x in app.snapshots)


def test_style_switch_crossfades(tf_stylizer, codes, tmp_path):
    """Right after a switch the picture is between the two styles, not at the new one."""
    src = SyntheticSource(96, 64, fps=1000)
    p = LivePipeline(src, tf_stylizer, codes[:2], ["a", "b"], short_side=64, crossfade_s=0.5)
    p._fader.set_target(codes[0])
    time.sleep(0.01)
    c0 = p._fader.current()
    p.set_style(1)
    mid = p._fader.current()
    time.sleep(0.6)
    end = p._fader.current()
    assert np.allclose(c0, codes[0], atol=1e-3)
    assert np.allclose(end, codes[1])
    assert 0 < np.abs(mid - codes[0]).max() < np.abs(codes[1] - codes[0]).max() * 0.5


def test_worker_crash_finalizes_recording_and_raises(tf_stylizer, codes, tmp_path):
    class Flaky:
        name, mixable_codes, device, style_model_id = "flaky", True, "cpu", "x"
        calls = 0

        def stylize(self, frames, code):
            Flaky.calls += 1
            if Flaky.calls > 12:
                raise RuntimeError("CUDA error: an illegal memory access")
            return tf_stylizer.stylize(frames, code)

        def style_code(self, rgb):
            return tf_stylizer.style_code(rgb)

    rec = tmp_path / "keep.mp4"
    app, p = make_app(Flaky(), codes, SyntheticSource(96, 64, fps=60), tmp_path, record=str(rec))
    with pytest.raises(WorkerFailed, match="inference worker failed: RuntimeError: CUDA error"):
        app.run()
    assert rec.exists()
    with av.open(str(rec)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 10


def test_ctrl_c_finishes_the_recording(tf_stylizer, codes, tmp_path):
    class Interrupting(ScriptedKeys):
        def poll(self, wait_ms, shown):
            if shown >= 8:
                raise KeyboardInterrupt
            return super().poll(wait_ms, shown)

    rec = tmp_path / "ctrlc.mp4"
    app, p = make_app(tf_stylizer, codes, SyntheticSource(96, 64, fps=60), tmp_path, keys=Interrupting({}), record=str(rec))
    with pytest.raises(KeyboardInterrupt):
        app.run()
    assert rec.exists() and not list(tmp_path.glob(".ctrlc*"))


def test_capture_error_is_reported(tf_stylizer, codes, tmp_path):
    class Broken(SyntheticSource):
        def read(self):
            if getattr(self, "n", 0) > 3:
                raise MediaError("camera unplugged")
            self.n = getattr(self, "n", 0) + 1
            return super().read()

    app, p = make_app(tf_stylizer, codes, Broken(96, 64, fps=100), tmp_path)
    with pytest.raises(MediaError, match="unplugged"):
        app.run()


def test_open_source_specs_and_camera_failure(tmp_path):
    assert isinstance(open_source("synthetic:320x240"), SyntheticSource)
    assert open_source("synthetic:320x240").size == (320, 240)
    assert type(open_source("rtsp://127.0.0.1:1/x")).__name__ == "StreamSource"
    cam = open_source("/dev/video99")
    with pytest.raises(MediaError, match="does not exist"):
        cam.open()
    cam = open_source("7")
    with pytest.raises(MediaError, match="cannot open camera 7"):
        cam.open()
    with pytest.raises(MediaError, match="video not found"):
        open_source(str(tmp_path / "missing.mp4")).open()


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
    with av.open(str(rec)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 20
    r = subprocess.run([sys.executable, "-m", "realtime", "live", "--source", "5", "--headless", "--max-frames", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert r.returncode == 2 and "cannot open camera 5" in r.stderr and "Traceback" not in r.stderr


def test_file_source_keeping_pace_drops_like_a_camera(tf_stylizer, codes, tmp_path):
    class Slow:
        name, mixable_codes, device, style_model_id = "slow", True, "cpu", "x"

        def stylize(self, frames, code):
            time.sleep(0.05)
            return frames

        def style_code(self, rgb):
            return codes[0]

    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=30, width=64, height=48, fps=60, audio=False)
    src = open_source(str(clip), keep_pace=True)
    src.open()
    app, p = make_app(Slow(), codes, src, tmp_path)
    stats = app.run()
    assert src.live and p.dropped > 5 and stats.shown + p.dropped <= 30


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
    assert code == 130, err
    assert rec.exists() and not list(rec_dir.glob(".show.*"))
    with av.open(str(rec)) as c:
        assert sum(1 for _ in c.decode(video=0)) > 5
