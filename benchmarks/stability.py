"""Temporal stability, measured like the papers: warping error, frame-difference error and PSNR
against the raw output, for no filter, the old smoothing and the flow-guided stability at several
levels, on the real clip and on generated clips (a camera pan, an object moving over a still
background), with each clip's own warping error as the floor; plus the filter's cost per frame.

    python benchmarks/stability.py --model-dir ../shared/models

The network runs once per clip (raw outputs at the inference size); every filter is then applied
to the same raw frames, so the comparison is exact.  Goal (issue 11): at the default level at
least two thirds of the warping error above the floor removed, PSNR against raw at least 27 dB,
better than the old smoothing at 0.8 on both.  Writes benchmarks/results/<machine>-stability.{json,md}.
"""

from __future__ import annotations

import argparse
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

log = logging.getLogger("stability")


def clips(media: Path, frames: int, short: int) -> dict[str, list[np.ndarray]]:
    """RGB uint8 frames at the inference size: the real clip (if present), a pan, a moving object."""
    import cv2

    from realtime.io.media.decode import VideoFile
    from realtime.io.synthetic import pattern_frame

    out: dict[str, list[np.ndarray]] = {}

    def fit(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        s = short / min(h, w)
        return cv2.resize(img, (round(w * s) // 4 * 4, round(h * s) // 4 * 4), interpolation=cv2.INTER_AREA)

    fox = media / "content" / "fox.mp4"
    if fox.is_file():
        with VideoFile(fox) as v:
            out["fox.mp4 (real)"] = [fit(np.ascontiguousarray(d.image[..., ::-1])) for _, d in zip(range(frames), v.frames())]
    photo_path = media / "content" / "chicago.jpg"
    photo = cv2.cvtColor(cv2.imread(str(photo_path)), cv2.COLOR_BGR2RGB) if photo_path.is_file() else pattern_frame(0, 1600, 900)
    big = cv2.resize(photo, (short * 2, round(short * 2 * photo.shape[0] / photo.shape[1])), interpolation=cv2.INTER_AREA)
    h = min(big.shape[0], short)
    w = h * 4 // 3 // 4 * 4
    out["pan (generated)"] = [big[:h, 3 * i: 3 * i + w].copy() for i in range(frames) if 3 * i + w <= big.shape[1]]
    background = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    moving = []
    for i in range(frames):
        f = background.copy()
        x = int(20 + (w - 80) * (0.5 + 0.5 * np.sin(i / 12)))
        cv2.circle(f, (x, h // 2), h // 6, (230, 60, 40), -1, cv2.LINE_AA)
        noise = np.random.default_rng(i).integers(-3, 4, f.shape)  # a camera's sensor noise
        moving.append(np.clip(f.astype(int) + noise, 0, 255).astype(np.uint8))
    out["moving object (generated)"] = moving
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--size", type=int, default=384, help="inference short side")
    ap.add_argument("--style", default="waves")
    ap.add_argument("--levels", default="0.3,0.5,0.7,0.9")
    ap.add_argument("--model-dir", default=str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--media", default=str(ROOT.parent / "shared" / "media"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("realtime").setLevel(logging.WARNING)

    from realtime.config import load_config
    from realtime.effects.metrics import ConsistencyMeter
    from realtime.effects.stability import DEFAULT, FLOW_SIDE, FlowStabilizer
    from realtime.effects.temporal import TemporalSmoother
    from realtime.model.engine import open_engine

    cfg = load_config(None, {"models.model_dir": args.model_dir, "models.auto_download": False})
    engine = open_engine(cfg)
    code = engine.bank.code_for(engine.resolve_styles([args.style])[0])
    levels = [float(v) for v in args.levels.split(",")]
    rows = []
    for name, frames in clips(Path(args.media), args.frames, args.size).items():
        t0 = time.perf_counter()
        raw = [engine.stylizer.stylize(f[None], code)[0] for f in frames]
        net_ms = 1000 * (time.perf_counter() - t0) / len(frames)
        variants = [("none", None), ("old smoothing 0.8", lambda: TemporalSmoother(0.8))]
        variants += [(f"stability {v:g}" + (" (default)" if v == DEFAULT else ""), (lambda v=v: FlowStabilizer(v))) for v in levels]
        if min(frames[0].shape[:2]) > 2 * FLOW_SIDE:  # where the flow's cap applies: against half-size flow
            variants.append((f"stability {DEFAULT:g}, half-size flow", lambda: FlowStabilizer(DEFAULT, flow_side=0)))
        outputs: dict[str, list[np.ndarray]] = {"source": frames}
        costs: dict[str, float] = {}
        for label, make in variants:
            if make is None:
                outputs[label], costs[label] = raw, 0.0
                continue
            filt = make()
            t0 = time.perf_counter()
            outputs[label] = [filt(c, s) for c, s in zip(frames, raw)]
            costs[label] = 1000 * (time.perf_counter() - t0) / len(frames)
        meter = ConsistencyMeter()  # the source's flow once, for every variant and the floor
        for i, frame in enumerate(frames):
            meter.add(frame, {k: v[i] for k, v in outputs.items()}, tuple((label, "none") for label, _ in variants))
        floor = meter.result("source").warping_error
        base = meter.result("none").warping_error
        for label, _ in variants:
            m = meter.result(label, "none")
            above = base - floor
            removed = 100 * (base - m.warping_error) / above if above > 0 else 0.0
            rows.append({
                "clip": name, "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}", "filter": label,
                "warp_err_x1000": round(1000 * m.warping_error, 3), "floor_x1000": round(1000 * floor, 3),
                "removed_above_floor_pct": round(removed, 1), "frame_diff_x1000": round(1000 * m.frame_difference, 3),
                "psnr_vs_raw_db": round(m.psnr_db, 1) if np.isfinite(m.psnr_db) else "inf",
                "filter_ms": round(costs[label], 2), "network_ms": round(net_ms, 1),
            })
            r = rows[-1]
            log.info("%-26s %-26s warp %.3f (floor %.3f, %5.1f%% removed)  fdiff %.3f  PSNR %s dB  %.1f ms",
                     name, label, r["warp_err_x1000"], r["floor_x1000"], removed, r["frame_diff_x1000"],
                     r["psnr_vs_raw_db"], costs[label])
    data = {"env": bench.environment(), "style": args.style, "frames": args.frames, "default_level": DEFAULT,
            "backend": engine.stylizer.name, "results": rows}
    _, m = bench.write_results("stability", data, Path(args.out))
    log.info("wrote %s", m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
