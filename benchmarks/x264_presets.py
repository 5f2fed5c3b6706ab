"""x264 presets on stylized frames: encoding CPU, size and quality, against the old default.

    python benchmarks/x264_presets.py [--frames 90] [--styles waves,mosaic]

Stylized frames are what `stylize video` encodes (dense painted texture, unlike camera footage),
so the presets are compared on them: the real fox clip (or the moving test pattern where
../shared/media is absent) cropped to 640x272, stylized with stability as the job does, encoded
at the inference size and upscaled to 1280x720 (the 720p-at-384 case).  For each preset and CRF:
CPU ms per frame (x264 on one thread), KB per frame and PSNR against the frames given to the
encoder, and the ratios to veryfast at CRF 16 (the default before superfast).
Writes benchmarks/results/<machine>-x264-presets.{json,md}.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from realtime import bench  # noqa: E402
from video_speed import source_frames  # noqa: E402  (this folder is on sys.path when run as a script)

log = logging.getLogger("x264_presets")
CASES = [("veryfast", 16), ("superfast", 16), ("superfast", 15), ("veryfast", 17), ("ultrafast", 16), ("faster", 16)]


def encode(frames: np.ndarray, preset: str, crf: int) -> dict:
    """One encode in memory: x264 CPU time, bytes, and PSNR of the decoded frames."""
    import av

    buf = io.BytesIO()
    yuv = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in frames]
    with av.open(buf, "w", format="mp4") as o:
        s = o.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": str(crf), "preset": preset, "threads": "1"}
        t = time.process_time()
        for i, f in enumerate(yuv):
            f.pts = i
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)
        cpu = time.process_time() - t
    data = buf.getvalue()
    with av.open(io.BytesIO(data)) as c:
        dec = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    ref = np.stack([f.to_ndarray(format="rgb24") for f in yuv])  # the encoder's own input, after 4:2:0
    mse = float(np.mean((dec.astype(np.float32) - ref) ** 2))
    return {"cpu_ms": round(1000 * cpu / len(frames), 2), "kb": round(len(data) / len(frames) / 1024, 1),
            "psnr": round(10 * np.log10(255.0 ** 2 / max(mse, 1e-9)), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--styles", default="waves,mosaic")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import cv2

    from realtime.config import load_config
    from realtime.effects.stability import FlowStabilizer
    from realtime.model.engine import open_engine

    engine = open_engine(load_config(None, {"models.model_dir": args.model_dir, "models.auto_download": False}), fixed_size=True)
    src = source_frames(640, 272, args.frames)
    rows = []
    for style in args.styles.split(","):
        code = engine.bank.code_for(engine.resolve_styles([style])[0])
        stab = FlowStabilizer()
        styled = np.stack([stab(f, engine.stylizer.stylize(np.ascontiguousarray(f[None]), code)[0]) for f in src])
        for label, frames in (("640x272", styled), ("1280x720 upscaled", np.stack([cv2.resize(f, (1280, 720)) for f in styled]))):
            base = None
            for preset, crf in CASES:
                r = encode(frames, preset, crf)
                base = base or r
                rows.append({"style": style, "size": label, "preset": preset, "crf": crf, **r,
                             "cpu_vs_veryfast16": round(r["cpu_ms"] / base["cpu_ms"], 2),
                             "size_vs_veryfast16": round(r["kb"] / base["kb"], 2),
                             "psnr_vs_veryfast16": round(r["psnr"] - base["psnr"], 2)})
                log.info("%-7s %-17s %-9s crf %2d: %6.2f ms  %6.1f KB  %.2f dB  (cpu x%.2f, size x%.2f, %+.2f dB)", style, label,
                         preset, crf, r["cpu_ms"], r["kb"], r["psnr"], rows[-1]["cpu_vs_veryfast16"],
                         rows[-1]["size_vs_veryfast16"], rows[-1]["psnr_vs_veryfast16"])
    engine.stylizer.close()
    env = bench.environment()
    j, m = bench.write_results("x264-presets", {"env": env, "presets": rows}, Path(args.out))
    log.info("wrote %s", m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
