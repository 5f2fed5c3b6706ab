"""float32 against bf16 on this CPU: the network's time and error per frame, and live at 720p.

    python benchmarks/precision.py                          # all cores
    python benchmarks/precision.py --threads 2 --pin 0,1    # two cores, as on a small box

For each backend installed (openvino, tf) and each size: ms per frame in float32 (the baseline) and
in ``--precision bf16``, the speed-up, and bf16's error against float32 (max and mean abs, [0,1]
scale) on real photos with real style codes (../shared/media where present; the repo's styles and
the moving test pattern otherwise).  Then ``stylize live`` on a 1280x720 H.264 file played as a
30 fps camera (``--keep-pace --headless``, inference at 384 short side) in both precisions: shown
fps, p50/p95 capture-to-display latency, frames dropped, the process's peak memory and how long
after the command the first stylized frame was shown (style codes cached after the first run).  bf16 only
pays where the CPU has AMX (Sapphire Rapids and later); with AVX512-BF16 alone it is slower.
Writes benchmarks/results/<cpu>-precision[-TAG].{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from realtime import bench  # noqa: E402
from video_speed import MEDIA, make_clip  # noqa: E402  (this folder is on sys.path when run as a script)

log = logging.getLogger("precision")
LIVE_LINE = re.compile(r"(\d+) frames shown, display ([\d.]+) fps, latency p50 (\d+) ms / p95 (\d+) ms, (\d+) dropped, peak memory (\d+) MB"
                       r"(?:, first frame ([\d.]+) s after start)?")


def pictures(width: int, height: int) -> list[np.ndarray]:
    """Content frames (RGB uint8) at one size: the real photos when present, else test pattern frames."""
    import cv2

    from realtime.io.synthetic import pattern_frame

    photos = sorted((MEDIA / "content").glob("*.jpg"))
    if photos:
        imgs = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in photos]
    else:
        imgs = [cv2.cvtColor(pattern_frame(i * 17, 640, 480), cv2.COLOR_BGR2RGB) for i in range(2)]
    return [cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA) for im in imgs]


def style_images() -> list[Path]:
    found = sorted((MEDIA / "styles").glob("*.jpg"))
    return found or sorted((ROOT / "styles").glob("*.jpg"))


def network(backend: str, sizes, threads: int, seconds: float, model_dir: str) -> list[dict]:
    from realtime.config import load_config
    from realtime.io.images import read_image
    from realtime.model.backends import create_stylizer

    def make(precision: str):
        cfg = load_config(None, {"models.model_dir": model_dir, "models.auto_download": False, "engine.backend": backend,
                                 "engine.threads": threads, "engine.precision": precision, "engine.xla": "always"})
        return create_stylizer(cfg, fixed_size=True)

    f32, b16 = make("float32"), make("bf16")
    if b16.device == f32.device:
        log.warning("%s: this CPU has no bf16 instructions; skipped", backend)
        return []
    codes = [f32.style_code(read_image(p)) for p in style_images()]
    rows = []
    for w, h in sizes:
        frames = pictures(w, h)
        floats = [np.asarray(f, np.float32)[None] / 255 for f in frames]
        errs = [np.abs(b16.transfer(x, c) - f32.transfer(x, c)) for x in floats for c in codes]
        one = np.ascontiguousarray(frames[0][None])
        ms = {}
        for name, st in (("float32", f32), ("bf16", b16)):
            ms[name] = 1000 * float(np.median(bench.timed(lambda st=st: st.stylize(one, codes[0]), seconds)))
        rows.append({
            "backend": backend, "size": f"{w}x{h}", "threads": threads or os.cpu_count(),
            "float32_ms": round(ms["float32"], 1), "bf16_ms": round(ms["bf16"], 1),
            "bf16_speedup": round(ms["float32"] / ms["bf16"], 2),
            "bf16_max_abs": round(max(float(e.max()) for e in errs), 4),
            "bf16_mean_abs": round(float(np.mean([e.mean() for e in errs])), 5),
        })
        log.info("%s %dx%d: float32 %.1f ms, bf16 %.1f ms (%.2fx), bf16 error max %.4f mean %.5f", backend, w, h,
                 ms["float32"], ms["bf16"], rows[-1]["bf16_speedup"], rows[-1]["bf16_max_abs"], rows[-1]["bf16_mean_abs"])
    for st in (f32, b16):
        st.close()
    return rows


def live(backend: str, precision: str, clip: Path, threads: int, frames: int, model_dir: str, cache: Path) -> dict:
    """One ``stylize live`` process, as a user runs it; its summary line has the figures."""
    cmd = [sys.executable, "-m", "realtime", "live", "--source", str(clip), "--keep-pace", "--headless",
           "--backend", backend, "--precision", precision, "--threads", str(threads), "--max-frames", str(frames),
           "--style", str(style_images()[0]), "--model-dir", model_dir, "--no-download"]
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    text = r.stdout + r.stderr
    m = LIVE_LINE.search(text)
    if r.returncode or not m:
        raise SystemExit(f"live {backend} {precision} failed ({r.returncode}): {text[-800:]}")
    row = {"backend": backend, "precision": precision, "threads": threads or os.cpu_count(), "shown": int(m[1]),
           "fps": float(m[2]), "p50_ms": int(m[3]), "p95_ms": int(m[4]), "dropped": int(m[5]), "peak_mb": int(m[6]),
           "first_frame_s": float(m[7]) if m[7] else None}
    log.info("live %s %s: %.1f fps shown, p50 %d ms, p95 %d ms, %d dropped, %d MB", backend, precision, row["fps"],
             row["p50_ms"], row["p95_ms"], row["dropped"], row["peak_mb"])
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="openvino,tf", help="those not installed are skipped")
    ap.add_argument("--sizes", default="384x384,684x384,1280x720")
    ap.add_argument("--threads", type=int, default=0, help="inference threads (0 = all cores)")
    ap.add_argument("--pin", default="", help="run on these CPUs only, e.g. 0,1")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    ap.add_argument("--live-frames", type=int, default=200, help="frames shown per live run (0 = no live runs)")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.pin:
        os.sched_setaffinity(0, {int(c) for c in args.pin.split(",")})  # children inherit it
    import importlib.util

    from realtime.model.backends.base import cpu_bf16

    backends = [b for b in args.backends.split(",") if importlib.util.find_spec("tensorflow" if b == "tf" else b)]
    env = bench.environment()
    env["machine"] = bench.machine_name(cpu_only=True)
    env["bf16"] = cpu_bf16() or "none"
    env["cpus_used"] = len(os.sched_getaffinity(0))
    log.info("CPU %s, bf16 instructions: %s, %d CPUs used; backends %s", env["machine"], env["bf16"], env["cpus_used"], backends)
    rows = []
    for b in backends:
        rows += network(b, bench.parse_sizes(args.sizes), args.threads, args.seconds, args.model_dir)
    lives = []
    if args.live_frames:
        with tempfile.TemporaryDirectory(prefix="precision-") as tmp:
            clip = make_clip(Path(tmp) / "clip720.mp4", 1280, 720, 300)
            for b in backends:
                for precision in ("float32", "bf16"):
                    lives.append(live(b, precision, clip, args.threads, args.live_frames, args.model_dir, Path(tmp) / "cache"))
    tag = "precision" + (f"-{args.tag}" if args.tag else "")
    j, m = bench.write_results(tag, {"env": env, "network": rows, "live_720p_at_384": lives}, Path(args.out))
    log.info("wrote %s", m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
