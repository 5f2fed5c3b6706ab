"""``stylize video --cluster`` on a local Ray (num_cpus=2, one instance for the session): batches,
segments that join without a seam, a worker killed mid-run, resuming, a corrupt input, Ctrl-C."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT

from realtime.cluster.plan import Probe, plan_units, probe, warmup_frames
from realtime.io.synthetic import write_clip
from realtime.jobs.video import VideoJob

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for every cluster test (PITFALLS 16); the runs find it and leave it running.
    Shut down after this module: its driver threads must not run on under the other tests (the
    memory soak test measures this process's RSS)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def decode(path: Path) -> dict:
    with av.open(str(path)) as c:
        frames = [(f.pts, f.to_ndarray(format="rgb24").astype(np.int16)) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]) if c.streams.audio else None
    return {"pts": [p for p, _ in frames], "frames": [f for _, f in frames], "pcm": pcm}


def single(src: Path, out: Path, *flags) -> None:
    """The one-process output to compare with (a subprocess: TensorFlow stays out of this one)."""
    r = subprocess.run([sys.executable, "-m", "realtime", "video", str(src), "-o", str(out), "--size", "64", "--quiet",
                        *map(str, flags)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert r.returncode == 0, r.stderr


def cluster_cfg(cfg_factory, **extra):
    o = {"cluster.enabled": True, "cluster.segment_s": 1.0, "cluster.worker_cpus": 1, "video.size": 64}
    o.update(extra)
    return cfg_factory(**o)


def job(inputs, **kw) -> VideoJob:
    return VideoJob(inputs=tuple(map(str, inputs)), styles=kw.pop("styles", ("mosaic",)), progress=False, **kw)


# -- planning (no Ray) -------------------------------------------------------------------------------

def test_segments_start_at_keyframes_with_warm_up_and_cover_every_frame_once():
    times = tuple(i / 10 for i in range(100))  # 10 s at 10 fps, a keyframe every 7 frames
    p = Probe(times, tuple(range(0, 100, 7)), 10.0)
    units = plan_units(p, 2.0, 5)
    assert len(units) == 5
    assert sum(u.frames for u in units) == 100
    for u in units:
        i = round(u.span.start * 10)
        assert i % 7 == 0  # each starts at a keyframe
        assert u.span.origin == 0.0
        assert u.span.warm == pytest.approx(max(0.0, u.span.start - 0.5))
    for a, b in zip(units, units[1:]):
        assert a.span.end == b.span.start  # no gap, no overlap in what is encoded
    assert units[-1].span.end is None
    # a range: the schedule starts at --start; the last unit stops at --end
    r = plan_units(p, 2.0, 5, start=1.0, end=8.0)
    assert r[0].span.start == 1.0 and r[0].span.warm == 1.0 and r[-1].span.end == 8.0
    assert all(u.span.origin == 1.0 for u in r) and sum(u.frames for u in r) == 70
    # short files, or no cutting, are one whole-file unit
    assert [u.span for u in plan_units(p, 6.0, 5)] == [None]
    assert [u.span for u in plan_units(p, 0.0, 5)] == [None]


def test_warm_up_grows_with_stability():
    assert warmup_frames(0.0) == 0
    assert 5 <= warmup_frames(0.5) <= 12 < warmup_frames(0.8) <= 40
    assert warmup_frames(1.0) == 120


def test_probe_finds_keyframes(tmp_path):
    src = tmp_path / "k.mp4"
    write_clip(src, frames=50, width=64, height=48, fps=10, audio=False, gop=10)
    p = probe(src)
    assert len(p.times) == 50 and p.keyframes == (0, 10, 20, 30, 40)


# -- on a local Ray ----------------------------------------------------------------------------------

@pytest.fixture
def long_clip(tmp_path):
    src = tmp_path / "long.mp4"
    write_clip(src, frames=96, width=128, height=96, fps=24, audio=True, gop=24)  # 4 s, a keyframe a second
    return src


def test_long_file_in_segments_equals_the_single_process_output(ray_local, cfg_factory, long_clip, tmp_path):
    from realtime.cluster.runner import ClusterRun

    settings = {"video.crf": 0, "video.stability": 0.5, "styles.strength": 0.7, "styles.crossfade_s": 0.5}
    single_out = tmp_path / "single.mp4"
    single(long_clip, single_out, "--crf", 0, "--stability", 0.5, "--strength", 0.7, "--style", "mosaic", "--style", "waves",
           "--switch-every", 1.5)
    out = tmp_path / "cluster.mp4"
    res = ClusterRun(cluster_cfg(cfg_factory, **settings), job([long_clip], output=out, styles=("mosaic", "waves"),
                                                              switch_every=1.5)).execute()
    assert [i.status for i in res.inputs] == ["done"] and res.workers == 2
    m = res.inputs[0].manifest
    assert len(m.units) == 4 and m.published and not m.done  # segments dropped after publishing
    a, b, src = decode(single_out), decode(out), decode(long_clip)
    assert b["pts"] == a["pts"] == src["pts"]  # exactly the source's frames and timestamps
    assert b["pcm"].size == a["pcm"].size and np.abs(b["pcm"] - a["pcm"]).max() < 1e-6  # sound copied once
    diffs = [np.abs(x - y) for x, y in zip(a["frames"], b["frames"])]
    # Lossless encoding (crf 0): what differs is the stylized pixels.  Stability, the crossfade at
    # 1.5 s and the content code (strength 0.7) carry state across the borders at 1, 2 and 3 s;
    # with the warm-up the border frames match the single run's to float rounding.
    for border in (24, 48, 72):
        for i in range(border - 1, border + 3):
            assert diffs[i].mean() < 0.05 and diffs[i].max() <= 8, (i, diffs[i].mean(), diffs[i].max())
    assert max(d.mean() for d in diffs) < 0.05


def test_timeline_replay_in_segments_equals_the_single_process_replay(ray_local, cfg_factory, long_clip, tmp_path):
    """``--timeline`` with ``--cluster`` (issue #28): each segment computes the replay's style,
    crossfade, strength and stability from media time, so the joined output is the one-process
    replay's.  Two segments (cut at 2 s); a crossfade (0.8 s, set by a set_crossfade event) runs
    across the border, and a style switch and a stability change fall inside the second segment."""
    import json

    from realtime.cluster.runner import ClusterRun

    styles = ROOT / "styles"

    def state(name, strength=1.0, stability=0.5, **extra):
        return {"style": name, "style_path": str(styles / f"{name}.jpg"), "style_index": 0, "strength": strength,
                "stability": stability, **extra}

    tl = tmp_path / "show.timeline.json"
    tl.write_text(json.dumps({
        "format": "realtime-timeline", "version": 1, "video": "show.mp4", "complete": True, "duration_s": 4.0,
        "initial": {**state("mosaic"), "crossfade_s": 0.5},
        "events": [
            {"t": 0.9, "action": "set_style", "args": {}, **state("waves", crossfade_s=0.5)},
            {"t": 1.5, "action": "set_crossfade", "args": {"seconds": 0.8}, **state("waves", crossfade_s=0.8)},
            {"t": 1.7, "action": "set_style", "args": {}, **state("dots", crossfade_s=0.8)},
            {"t": 2.3, "action": "set_strength", "args": {"value": 0.7}, **state("dots", 0.7, crossfade_s=0.8)},
            {"t": 2.6, "action": "set_stability", "args": {"value": 0.3}, **state("dots", 0.7, 0.3, crossfade_s=0.8)},
            {"t": 3.0, "action": "set_style", "args": {}, **state("mosaic", 0.7, 0.3, crossfade_s=0.8)},
        ]}))
    single_out = tmp_path / "single.mp4"
    single(long_clip, single_out, "--crf", 0, "--timeline", tl)
    out = tmp_path / "cluster.mp4"
    cfg = cluster_cfg(cfg_factory, **{"video.crf": 0, "cluster.segment_s": 1.5})
    res = ClusterRun(cfg, job([long_clip], output=out, styles=(), timeline=str(tl))).execute()
    assert [i.status for i in res.inputs] == ["done"], res.inputs[0].error
    m = res.inputs[0].manifest
    assert [u.span.start for u in m.units] == [0.0, 2.0]  # the fade 1.7..2.5 crosses the border
    assert m.units[1].span.warm < 2.0  # the replay's stability (0.5) asks for a warm-up
    a, b = decode(single_out), decode(out)
    assert b["pts"] == a["pts"] and len(a["pts"]) == 96
    diffs = [np.abs(x - y) for x, y in zip(a["frames"], b["frames"])]
    for i in range(46, 52):  # the border at frame 48, inside the crossfade
        assert diffs[i].mean() < 0.05 and diffs[i].max() <= 8, (i, diffs[i].mean(), diffs[i].max())
    assert max(d.mean() for d in diffs) < 0.05
    # The replay did change the picture in the second segment (a switch at 3 s: frames 72 on).
    assert np.abs(a["frames"][70] - a["frames"][90]).mean() > 2


def test_without_warm_up_the_border_shows(ray_local, cfg_factory, long_clip, tmp_path, monkeypatch):
    """The check above can fail: cutting with no warm-up leaves a visible step at the borders."""
    from realtime.cluster import runner
    from realtime.cluster.runner import ClusterRun

    settings = {"video.crf": 0, "video.stability": 0.8}
    single_out = tmp_path / "single.mp4"
    single(long_clip, single_out, "--crf", 0, "--stability", 0.8, "--style", "mosaic")
    monkeypatch.setattr(runner, "warmup_frames", lambda s: 0)
    out = tmp_path / "cold.mp4"
    ClusterRun(cluster_cfg(cfg_factory, **settings), job([long_clip], output=out, audio=False)).execute()
    a, b = decode(single_out), decode(out)
    assert np.abs(a["frames"][24] - b["frames"][24]).mean() > 0.5
    assert b["pcm"] is None


def test_batch_with_a_corrupt_file_and_a_killed_worker(ray_local, cfg_factory, tmp_path):
    from realtime.cluster.runner import ClusterRun

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        write_clip(folder / f"clip{i}.mp4", frames=12 + 4 * i, width=96, height=64, fps=12, audio=i == 0)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    out_dir = tmp_path / "out"
    killed = []

    def kill_first(run, actor, task):
        if not killed:  # the first unit's worker dies as it starts: the unit must be redone elsewhere
            killed.append(task.unit)
            ray.kill(actor, no_restart=True)

    missing = tmp_path / "gone.mp4"
    res = ClusterRun(cluster_cfg(cfg_factory), job([folder, missing], out_dir=str(out_dir)), on_dispatch=kill_first).execute()
    status = {i.src.name: i.status for i in res.inputs}
    assert status == {"broken.mp4": "failed", "clip0.mp4": "done", "clip1.mp4": "done", "clip2.mp4": "done", "gone.mp4": "failed"}
    assert res.retried == 1 and killed
    errors = {i.src.name: i.error for i in res.failed}
    assert "not a readable video" in errors["broken.mp4"] and errors["gone.mp4"] == f"video not found: {missing}"
    for i in range(3):
        d = decode(out_dir / f"clip{i}-mosaic.mp4")
        assert len(d["pts"]) == 12 + 4 * i
        assert (d["pcm"] is not None) == (i == 0)
    # the output folder holds the finished files and the hidden work folder, nothing half-written
    assert sorted(p.name for p in out_dir.iterdir()) == [".realtime-work", "clip0-mosaic.mp4", "clip1-mosaic.mp4", "clip2-mosaic.mp4"]


def test_interrupted_run_resumes_and_a_finished_one_is_skipped(ray_local, cfg_factory, long_clip, tmp_path):
    from realtime.cluster.runner import ClusterRun

    out = tmp_path / "out.mp4"
    dispatched = []

    def interrupt_at_third(run, actor, task):
        dispatched.append(task.unit.name)
        if len(dispatched) == 3:  # one worker: the first two units are done, the third has started
            raise KeyboardInterrupt

    cfg = cluster_cfg(cfg_factory, **{"cluster.workers": 1})
    with pytest.raises(KeyboardInterrupt):
        ClusterRun(cfg, job([long_clip], output=out), on_dispatch=interrupt_at_third).execute()
    assert not out.exists() and not [p for p in tmp_path.rglob("*") if ".part" in p.name]  # the unit in flight too
    again = []
    res = ClusterRun(cfg, job([long_clip], output=out), on_dispatch=lambda r, a, t: again.append(t.unit.name)).execute()
    assert res.inputs[0].status == "done"
    assert set(again) == {"seg-00000", "seg-00001", "seg-00002", "seg-00003"} - set(dispatched[:2])
    assert len(decode(out)["pts"]) == 96
    third = []
    res = ClusterRun(cfg, job([long_clip], output=out), on_dispatch=lambda r, a, t: third.append(t)).execute()
    assert res.inputs[0].status == "skipped" and not third


def test_sources_in_a_coarse_time_base_join_with_their_own_timing(ray_local, cfg_factory, tmp_path):
    """MKV counts in milliseconds, MP4 segments in finer ticks: the join re-times every packet."""
    from realtime.cluster.runner import ClusterRun

    src = tmp_path / "clip.mkv"
    write_clip(src, frames=60, width=96, height=64, fps=24, audio=True, gop=12)
    out = tmp_path / "out.mkv"
    res = ClusterRun(cluster_cfg(cfg_factory, **{"cluster.segment_s": 0.5}), job([src], output=out)).execute()
    assert res.inputs[0].status == "done" and len(res.inputs[0].manifest.units) == 5
    single_out = tmp_path / "single.mkv"
    single(src, single_out, "--style", "mosaic")
    a, b = decode(single_out), decode(out)
    assert b["pts"] == a["pts"] and len(b["pts"]) == 60
    with av.open(str(out)) as c, av.open(str(single_out)) as d:
        assert abs(c.duration - d.duration) < 0.05 * 1e6  # no frame lasts longer than it did
    assert b["pcm"].size == a["pcm"].size


def test_cluster_address_that_is_a_file_is_refused(tmp_path):
    r = subprocess.run([sys.executable, "-m", "realtime", "video", "--cluster", "a.mp4", "b.mp4", "--out-dir", str(tmp_path),
                        "--style", "mosaic"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "put the input files before --cluster" in r.stderr and "Traceback" not in r.stderr


def test_workers_on_machines_where_auto_differs_are_named(caplog):
    """``auto`` picks per machine (openvino on CPUs, tf on GPUs), and the runtimes' pictures differ
    slightly: the driver says so once a worker runs another engine than the first."""
    from fakes import FakeStylizer

    from realtime.cluster.pool import WorkerPool
    from realtime.cluster.worker import engine_words
    from realtime.config import load_config

    pool = WorkerPool(load_config(None, {}), VideoJob(inputs=("a.mp4",), styles=("mosaic",)))
    cpu, gpu = "openvino, bf16, style network openvino:p.tflite", "tf, float32, style network tflite:p.tflite"
    with caplog.at_level(logging.WARNING, logger="realtime"):
        pool.note_engine(cpu, "node-a")
        pool.note_engine(cpu, "node-b")
        assert not caplog.records
        pool.note_engine(gpu, "gpu-1")
    assert [r.getMessage() for r in caplog.records] == [
        f"cluster workers differ: {gpu} on gpu-1, {cpu} on node-a; segments made by each may differ where they "
        "meet: give --backend and --precision to run one everywhere"]
    assert engine_words(FakeStylizer()) == "fake, ?, style network fake-v1"


def test_cli_cluster_end_to_end_and_ray_only_with_the_flag(models_dir, tmp_path):
    src = tmp_path / "a.mp4"
    write_clip(src, frames=12, width=96, height=64, fps=12, audio=True)
    env = dict(os.environ, REALTIME_MODEL_DIR=str(models_dir))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cluster:\n  worker_cpus: 1\n")
    r = subprocess.run([sys.executable, "-m", "realtime", "video", str(src), "--out-dir", str(tmp_path / "o"), "--style",
                        "mosaic", "--size", "64", "--quiet", "--cluster", "--config", str(cfg)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert "summary: 1 of 1 videos done" in r.stderr and "Traceback" not in r.stderr
    assert len(decode(tmp_path / "o" / "a-mosaic.mp4")["pts"]) == 12
    code = ("import sys; from realtime.cli import main; rc = main(sys.argv[1:]); "
            "assert 'ray' not in sys.modules, 'ray imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, "video", str(src), "-o", str(tmp_path / "b.mp4"), "--style", "mosaic",
                        "--size", "64", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr


def test_ctrl_c_on_the_command_stops_the_cluster_and_leaves_nothing_half_written(models_dir, tmp_path):
    import signal
    import time

    def raylets() -> int:
        r = subprocess.run(["pgrep", "-c", "-f", "raylet"], capture_output=True, text=True)
        return int(r.stdout.strip() or 0)

    src = tmp_path / "long.mp4"
    write_clip(src, frames=240, width=128, height=96, fps=24, audio=True, gop=24)  # 10 units of 1 s
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cluster:\n  worker_cpus: 1\n  workers: 1\n  segment_s: 1.0\n")
    out_dir = tmp_path / "o"
    before = raylets()
    p = subprocess.Popen([sys.executable, "-m", "realtime", "video", str(src), "--out-dir", str(out_dir), "--style", "mosaic",
                          "--size", "64", "--quiet", "--cluster", "--config", str(cfg)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, REALTIME_MODEL_DIR=str(models_dir)))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the first segment is done
            if [m for m in out_dir.rglob("manifest.json") if '"seg-00000": {' in m.read_text()]:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no segment finished")
        assert raylets() > before  # the command started its own Ray
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert [x.name for x in out_dir.iterdir()] == [".realtime-work"]  # no output, finished or not
    assert not [x for x in out_dir.rglob("*") if ".part" in x.name]
    assert [m.name for m in out_dir.rglob("seg-*.mp4")]  # the finished segments stay, for a rerun
    deadline = time.monotonic() + 20
    while raylets() > before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert raylets() <= before  # the Ray it started is gone


def test_segments_are_encoded_alike_whatever_the_encoder_asked():
    """--cluster --encoder nvenc: every worker encodes x264 (the join copies packets under one
    stream header, and a worker without NVENC would have fallen back on its own)."""
    from realtime.cluster.pool import segment_options
    from realtime.pipeline.video import VideoOptions

    assert segment_options(VideoOptions(encoder="nvenc")).encoder == "x264"
    keep = VideoOptions(encoder="x264", crf=3)
    assert segment_options(keep) is keep
