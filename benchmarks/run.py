"""Benchmarks (not tests): model throughput, live pipeline, video files — ours and a naive baseline
in the same run, with ratios.  Writes JSON and a markdown table to benchmarks/results/<machine>-*.

    python benchmarks/run.py                      # everything, CPU sizes
    python benchmarks/run.py --sections model --sizes 1280x720 --batches 1,8 --backends tf
    python benchmarks/run.py --gpu                # GPU sizes, batches and mixed precision
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from realtime import bench  # noqa: E402
from realtime.config import load_config  # noqa: E402

log = logging.getLogger("benchmarks")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default="model,live,video")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--sizes", default="384x384,640x480,1280x720,1920x1080")
    ap.add_argument("--batches", default="1,4,8")
    ap.add_argument("--backends", default="tf,tf-xla,tflite-fp16,tflite-int8")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per model measurement")
    ap.add_argument("--live-frames", type=int, default=150)
    ap.add_argument("--live-size", default="640x480", help="live/video clip size")
    ap.add_argument("--live-short-side", type=int, default=384)
    ap.add_argument("--video-frames", type=int, default=120)
    ap.add_argument("--gpu", action="store_true", help="GPU run: also mixed precision; live at 1280x720, video at 1920x1080")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", default="", help="suffix for the result files")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from realtime.model.backends import create_stylizer
    from realtime.model.engine import open_engine
    from realtime.io.synthetic import write_clip

    def cfg(**o):
        base = {"models.model_dir": args.model_dir, "models.auto_download": False}
        base.update(o)
        return load_config(None, base)

    sections = set(args.sections.split(","))
    env = bench.environment()
    log.info("machine: %s, GPU: %s", env["machine"], env["gpu"] or "none")
    tag = ("-" + args.tag) if args.tag else ""
    if "model" in sections:
        mm = bench.matmul_gflops()
        log.info("matrix multiply: %.0f GFLOP/s", mm)
        sizes = bench.parse_sizes(args.sizes)
        batches = [int(b) for b in args.batches.split(",")]
        rows = []
        backends = args.backends.split(",")
        if args.gpu:
            backends += [b for b in ("tf-xla", "tf-mixed", "tf-mixed-xla") if b not in backends]
        for name in backends:
            backend = name.partition("-")[0]
            st = create_stylizer(bench.variant_config(cfg(), name if name != "tflite" else "tflite-fp16"))
            rows += [asdict(r) for r in bench.bench_model(st, name, sizes, batches if backend != "tflite" else [1], args.seconds, mm)]
        base = {(r["width"], r["height"]): r["ms_per_frame"] for r in rows if r["backend"] == "tflite-fp16" and r["batch"] == 1}
        for r in rows:
            b = base.get((r["width"], r["height"]))
            r["speedup_vs_tflite_fp16"] = round(b / r["ms_per_frame"], 2) if b else ""
        j, m = bench.write_results("model" + tag, {"env": env, "matmul_gflops": round(mm, 1), "model": rows}, Path(args.out))
        log.info("wrote %s", m)

    clip_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    w, h = bench.parse_sizes(args.live_size)[0]
    engine = open_engine(cfg(**({"engine.precision": "mixed"} if args.gpu else {})))
    naive = create_stylizer(cfg(**{"engine.backend": "tflite", "models.transfer": "fp16"}))
    from realtime.io.images import read_image
    from realtime.model.styles import list_styles

    style = list_styles(ROOT / "styles")[0]
    code = engine.stylizer.style_code(read_image(style.path))
    if "live" in sections:
        clip = clip_dir / "live.mp4"
        write_clip(clip, frames=90, width=w, height=h, fps=30, audio=False)
        res = bench.bench_live(engine.stylizer, naive, code, clip, args.live_short_side, args.live_frames)
        log.info("live %dx%d@30 (inference short side %d): ours %s | naive %s | ratio %.2f",
                 w, h, args.live_short_side, res["ours"], res["naive"], res["ratio_fps"])
        data = {"env": env, "source": f"file {w}x{h} paced at 30 fps", "inference_short_side": args.live_short_side,
                "live": [res["ours"], res["naive"]], "ratio_fps": res["ratio_fps"]}
        _, m = bench.write_results("live" + tag, data, Path(args.out))
        log.info("wrote %s", m)
    if "video" in sections:
        vw, vh = (1920, 1080) if args.gpu else (w, h)
        clip = clip_dir / "video.mp4"
        write_clip(clip, frames=args.video_frames, width=vw, height=vh, fps=30, audio=True)
        short = min(vw, vh) if args.gpu else args.live_short_side
        res = bench.bench_video(engine, naive, code, clip, clip_dir, short, engine.cfg.engine.batch_size)
        log.info("video %dx%d (inference short side %d): ours %.1f fps | naive %.1f fps | ratio %.2f",
                 vw, vh, short, res["ours"]["fps"], res["naive"]["fps"], res["ratio_fps"])
        data = {"env": env, "clip": f"{vw}x{vh}, {args.video_frames} frames, AAC audio", "inference_short_side": short,
                "video": [res["ours"], res["naive"]], "ratio_fps": res["ratio_fps"]}
        _, m = bench.write_results("video" + tag, data, Path(args.out))
        log.info("wrote %s", m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
