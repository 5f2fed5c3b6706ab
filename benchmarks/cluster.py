"""The same batch on one process and on a local Ray cluster, and what a work unit costs.

    python benchmarks/cluster.py [--files 3] [--seconds 6] [--size 480x270] [--side 270] [--workers 2]

A batch of generated clips (H.264 + AAC, a keyframe a second) is stylized

1. by one process (``stylize video --out-dir``, the naive baseline: one file after another),
2. on a local Ray with whole files as units (``cluster.segment_s: 0``),
3. on a local Ray with every file cut into segments (``--segment-s``, default 2 s);

and the fixed costs are measured on their own: starting Ray, starting a worker (process, imports,
model load, style code), and per segment (seeking, the warm-up frames, encoder start, the join),
the latter as the time difference between one file run as 1 unit and as k segments on one worker.
Writes benchmarks/results/<machine>-cluster.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from realtime import bench  # noqa: E402

log = logging.getLogger("cluster")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each clip")
    ap.add_argument("--size", default="480x270", help="clip size")
    ap.add_argument("--side", type=int, default=270, help="inference short side")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-cpus", type=int, default=1)
    ap.add_argument("--segment-s", type=float, default=2.0)
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ray

    from realtime.cluster import runner
    from realtime.cluster.plan import warmup_frames
    from realtime.cluster.runner import ClusterRun
    from realtime.config import load_config
    from realtime.io.synthetic import write_clip
    from realtime.jobs.video import VideoJob, run_video

    (w, h), = bench.parse_sizes(args.size)
    fps = 24
    frames = int(args.seconds * fps)
    base = {"models.model_dir": args.model_dir, "models.auto_download": False, "video.size": args.side}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        src.mkdir()
        for i in range(args.files):
            write_clip(src / f"clip{i}.mp4", frames=frames, width=w, height=h, fps=fps, audio=True, gop=fps)
        total = frames * args.files

        def job(out: Path) -> VideoJob:
            return VideoJob(inputs=(str(src),), styles=("waves",), out_dir=str(out), progress=False, overwrite=True)

        # 1. one process, one file after another (engine load included, as a user would run it)
        t = time.perf_counter()
        run_video(load_config(None, base), job(tmp / "single"))
        single = time.perf_counter() - t
        rows.append({"run": "one process", "units": args.files, "wall_s": round(single, 2), "frames_per_s": round(total / single, 1),
                     "vs_one_process": 1.0})

        t = time.perf_counter()
        ray.init(num_cpus=args.workers * args.worker_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        ray_init = time.perf_counter() - t
        joins: list[float] = []
        real_join = runner.join_segments

        def timed_join(*a, **k):
            t = time.perf_counter()
            try:
                return real_join(*a, **k)
            finally:
                joins.append(time.perf_counter() - t)

        runner.join_segments = timed_join
        loads: list[float] = []
        try:
            for name, seg in (("cluster, whole files", 0.0), (f"cluster, {args.segment_s:g} s segments", args.segment_s)):
                cfg = load_config(None, {**base, "cluster.enabled": True, "cluster.segment_s": seg,
                                         "cluster.workers": args.workers, "cluster.worker_cpus": args.worker_cpus})
                t = time.perf_counter()
                res = ClusterRun(cfg, job(tmp / name.replace(" ", "_").replace(",", ""))).execute()
                wall = time.perf_counter() - t
                assert not res.failed and res.frames == total, [i.error for i in res.failed]
                loads += res.load_s
                units = sum(len(i.manifest.units) for i in res.inputs)
                rows.append({"run": name, "units": units, "wall_s": round(wall, 2), "frames_per_s": round(total / wall, 1),
                             "vs_one_process": round(single / wall, 2)})
                log.info("%s: %d units, %.1f s (%.1f frames/s, %.2fx one process)", name, units, wall, total / wall, single / wall)
            # per-segment cost: one file as 1 unit vs as k segments, on one worker (same engine start)
            per_unit = {}
            for seg in (0.0, args.segment_s):
                cfg = load_config(None, {**base, "cluster.enabled": True, "cluster.segment_s": seg,
                                         "cluster.workers": 1, "cluster.worker_cpus": args.worker_cpus})
                one = VideoJob(inputs=(str(src / "clip0.mp4"),), styles=("waves",), out_dir=str(tmp / f"one{seg}"),
                               progress=False, overwrite=True)
                t = time.perf_counter()
                res = ClusterRun(cfg, one).execute()
                per_unit[seg] = (time.perf_counter() - t - sum(res.load_s), len(res.inputs[0].manifest.units))
        finally:
            runner.join_segments = real_join
            ray.shutdown()
    (t1, _), (tk, k) = per_unit[0.0], per_unit[args.segment_s]
    seg_cost = (tk - t1) / max(1, k - 1)
    warm = warmup_frames(load_config(None, base).video.stability)
    worker_fps = frames / t1  # one worker, one whole file, after its start
    overheads = {"ray_init_s": round(ray_init, 2), "worker_start_s": round(sum(loads) / max(1, len(loads)), 2),
                 "worker_fps": round(worker_fps, 1), "per_segment_s": round(seg_cost, 3),
                 "per_segment_fixed_s": round(seg_cost - warm / worker_fps, 3),
                 "join_s_per_file": round(sum(joins) / max(1, len(joins)), 3),
                 "warmup_frames_per_segment": warm, "segment_s": args.segment_s}
    log.info("overheads: %s", overheads)
    data = {"env": bench.environment(), "clip": f"{w}x{h}", "inference_side": args.side, "fps": fps,
            "frames_per_file": frames, "files": args.files, "workers": args.workers, "worker_cpus": args.worker_cpus,
            "results": rows, "overheads": [overheads]}
    _, md = bench.write_results("cluster", data, Path(args.out))
    log.info("wrote %s", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
