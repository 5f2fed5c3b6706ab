"""`stylize video` end to end against the network alone at the same size, with a per-stage profile.

    python benchmarks/video_speed.py [--frames 120] [--clips 640x272,1280x720] [--sides 384,0]

For each generated clip (the real fox clip, cropped and scaled, where ../shared/media has it; the
moving test pattern otherwise; AAC audio) and each inference short side (0 = the source's own):
the network alone (``stylizer.submit`` on batches of the job's size, one in flight, frames already at the
inference size, nothing else running) and the whole job with the configured defaults (decode,
convert, resize, infer, stability, encode, audio), same process, same minute.  The goal (issue 16):
end to end at least 80% of the network-only rate.  The job's own profile says where the rest went:
ms per frame per step, summed on each thread (waits included), and each thread's CPU time.
Writes benchmarks/results/<machine>-video-speed.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from realtime import bench  # noqa: E402

log = logging.getLogger("video_speed")
MEDIA = Path(os.environ.get("REALTIME_MEDIA") or ROOT.parent / "shared" / "media")  # env: the media elsewhere
FOX = MEDIA / "content" / "fox.mp4"


def source_frames(width: int, height: int, frames: int, clip: Optional[Path] = FOX) -> list[np.ndarray]:
    """RGB frames: ``clip`` (the fox clip) cropped to the aspect and scaled (repeated to ``frames``),
    or the moving test pattern where it is absent."""
    import av
    import cv2

    from realtime.io.synthetic import pattern_frame

    src: list[np.ndarray] = []
    if clip is not None and clip.is_file():
        with av.open(str(clip)) as c:
            for f in c.decode(video=0):
                src.append(f.to_ndarray(format="rgb24"))
                if len(src) >= frames:
                    break
    if not src:
        return [cv2.cvtColor(pattern_frame(i, width, height), cv2.COLOR_BGR2RGB) for i in range(frames)]
    out = []
    for i in range(frames):
        img = src[i % len(src)]
        h, w = img.shape[:2]
        ch = min(h, round(w * height / width))
        cw = min(w, round(ch * width / height))
        img = img[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
        out.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR))
    return out


def make_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """H.264 + AAC clip of :func:`source_frames` at 30 fps."""
    return write_clip_of(path, source_frames(width, height, frames), 30)


def write_clip_of(path: Path, frames: list[np.ndarray], fps: int, options: Optional[dict] = None) -> Path:
    """H.264 (x264 ``options``) of RGB ``frames`` at ``fps``, with a 330 Hz sine as AAC sound."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options=options)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=48000)
        aus.layout = "mono"
        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        n = int(len(frames) / fps * 48000)
        tone = (0.2 * np.sin(2 * np.pi * 330 * np.arange(n) / 48000)).astype(np.float32)
        for s in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, s:s + 1024], format="flt", layout="mono")
            af.sample_rate, af.pts = 48000, s
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode(None):
            out.mux(p)
    return path


def network_fps(stylizer, code, size: tuple[int, int], batch: int, seconds: float) -> float:
    """The network alone, fed as the job feeds it (``submit``, one batch in flight), so the ratio
    measures what the job adds around the network."""
    rng = np.random.default_rng(0)
    w, h = size
    frames = rng.integers(0, 255, (batch, h, w, 3), dtype=np.uint8)
    return bench.submitted_fps(stylizer, frames, code, seconds)


def command_wall(clip: Path, out: Path, side: int, args: argparse.Namespace) -> float:
    """Seconds from starting ``stylize video`` in a fresh process to its exit (median of
    ``--command`` runs; the compile and style-code caches are warm after the in-process runs)."""
    import subprocess

    cmd = [str(Path(sys.executable).with_name("stylize")), "video", str(clip), "-o", str(out), "--overwrite",
           "--style", "waves", "--model-dir", args.model_dir]
    if side:
        cmd += ["--size", str(side)]
    walls = []
    for _ in range(args.command):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def rounds(engine, code, clip: Path, label: str, tmp: Path, opts, size: tuple[int, int], batch: int,
           args: argparse.Namespace) -> dict:
    """``args.repeat`` rounds of the network alone, the job (and the command) back to back at one
    size; medians, and the ratios taken within each round: on a shared VM the machine's speed
    drifts by 20-30% from minute to minute, which a ratio of two separate minutes would carry."""
    from realtime.pipeline.video import VideoStylizer

    side = opts.size
    nets, e2es, ratios, cmd_fps, cmd_ratios, cmd_walls = [], [], [], [], [], []
    for r in range(args.repeat):
        net = network_fps(engine.stylizer, code, size, batch, args.seconds)
        t = time.perf_counter()
        res = VideoStylizer(engine, [code], opts).run(clip, tmp / "out.mp4", overwrite=True)
        wall = time.perf_counter() - t
        nets.append(net)
        e2es.append(res.frames / wall)
        ratios.append(res.frames / wall / net)
        if args.command:  # the whole command as a user runs it: imports, engine, compile, style code
            cmd_wall = command_wall(clip, tmp / "cmd.mp4", side, args)
            cmd_walls.append(cmd_wall)
            cmd_fps.append(res.frames / cmd_wall)
            cmd_ratios.append(res.frames / cmd_wall / net)
        log.info("  round %d: network %.1f fps, end to end %.1f fps (%.0f%%)%s", r + 1, net, e2es[-1], 100 * ratios[-1],
                 f", command {cmd_fps[-1]:.1f} fps ({100 * cmd_ratios[-1]:.0f}%)" if args.command else "")
    med = statistics.median
    row = {"clip": label, "inference": f"{size[0]}x{size[1]}", "network_fps": round(med(nets), 1),
           "end_to_end_fps": round(med(e2es), 1), "ratio": round(med(ratios), 2),
           "profile_ms_per_frame": res.profile, "thread_cpu_s": res.thread_cpu_s,
           "process_cpu_s": round(res.process_cpu_s, 2), "wall_s": round(wall, 2)}
    if args.repeat > 1:
        row["rounds"] = args.repeat
        row["ratio_range"] = f"{min(ratios):.2f}-{max(ratios):.2f}"
    if args.command:
        row["command_fps"] = round(med(cmd_fps), 1)
        row["command_ratio"] = round(med(cmd_ratios), 2)
        row["command_wall_s"] = round(med(cmd_walls), 2)
        if args.repeat > 1:
            row["command_ratio_range"] = f"{min(cmd_ratios):.2f}-{max(cmd_ratios):.2f}"
        log.info("  the stylize video command, start-up included: %.2f s, %.1f fps (%.0f%% of the network alone)",
                 row["command_wall_s"], row["command_fps"], 100 * row["command_ratio"])
    log.info("%s inference %s: network %.1f fps, end to end %.1f fps (%.0f%%)", label, row["inference"], row["network_fps"],
             row["end_to_end_fps"], 100 * row["ratio"])
    log.info("  profile: %s", res.profile)
    log.info("  CPU s: %s, process %.1f of %.1f s wall", res.thread_cpu_s, res.process_cpu_s, wall)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default="640x272,1280x720")
    ap.add_argument("--sides", default="384,0", help="inference short sides (0 = the source's own)")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--seconds", type=float, default=4.0, help="network-only timing per size")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for the job (e.g. video.preset=veryfast)")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--name", default="video-speed")
    ap.add_argument("--command", type=int, default=0, metavar="N",
                    help="also time the stylize video command (the default config; --set is not passed) in a fresh process N times (start-up included)")
    ap.add_argument("--repeat", type=int, default=1, metavar="R",
                    help="rounds of network alone, job (and command) back to back; medians, ratios within a round")
    ap.add_argument("--encoder-threads", type=int, default=0, help="x264 threads (0 = the job's default: half the cores)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import yaml

    from realtime.config import load_config
    from realtime.pipeline.stage import pick_inference_size
    from realtime.pipeline.video import VideoOptions, VideoStylizer
    from realtime.model.engine import open_engine

    overrides = {"models.model_dir": args.model_dir, "models.auto_download": False}
    for item in args.set:
        k, _, v = item.partition("=")
        overrides[k] = yaml.safe_load(v)
    cfg = load_config(None, overrides)
    engine = open_engine(cfg)
    code = engine.bank.code_for(engine.resolve_styles(["waves"])[0])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in bench.parse_sizes(args.clips):
            clip = make_clip(Path(tmp) / f"clip_{w}x{h}.mp4", w, h, args.frames)
            for side in (int(s) for s in args.sides.split(",")):
                size = pick_inference_size(w, h, side, cfg.engine.max_size)
                opts = dataclasses.replace(VideoOptions.from_config(cfg, audio=True, encoder_threads=args.encoder_threads), size=side)
                VideoStylizer(engine, [code], opts).run(clip, Path(tmp) / "warm.mp4", overwrite=True)  # compile at this size
                rows.append(rounds(engine, code, clip, f"{w}x{h}", Path(tmp), opts, size, cfg.engine.batch_size, args))
    table = [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in rows]
    env = bench.environment()
    if engine.stylizer.name == "openvino":  # a CPU figure even on a machine with a GPU
        env["machine"] = bench.machine_name(cpu_only=True)
    data = {"env": env, "config": {k: v for k, v in overrides.items() if k != "models.model_dir"},
            "preset": cfg.video.preset, "stability": cfg.video.stability, "batch": cfg.engine.batch_size,
            "results": table, "details": rows}
    _, md = bench.write_results(args.name, data, Path(args.out))
    log.info("wrote %s", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
