"""The live governor against a pinned size, as a user runs them: ``stylize live`` on a 1280x720
clip played as a 30 fps camera (``--keep-pace --loop --headless``), default flags (the governor
holds the source's 30 fps) against ``--size 384`` (the old default: the size pinned), one process
each, in the same run.  Prints and writes (JSON) shown fps, p50/p95 latency, drops, peak memory,
first stylized frame, the governor's moves and the size it settled on; the ratio of shown fps.

    python benchmarks/governor.py [--frames 450] [--backend auto]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime import bench  # noqa: E402
from precision import LIVE_LINE, style_images  # noqa: E402  (this folder is on sys.path when run as a script)
from video_speed import make_clip  # noqa: E402

log = logging.getLogger("governor")
MOVE = re.compile(r"governor: (.*) -> (\d+)")


def live(clip: Path, flags: list[str], frames: int, backend: str, model_dir: str) -> dict:
    cmd = [sys.executable, "-m", "realtime", "live", "--source", str(clip), "--keep-pace", "--loop", "--headless",
           "--max-frames", str(frames), "--style", str(style_images()[0]), "--backend", backend,
           "--model-dir", model_dir, "--no-download", *flags]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    text = r.stdout + r.stderr
    m = LIVE_LINE.search(text)
    if r.returncode or not m:
        raise SystemExit(f"live {flags} failed ({r.returncode}): {text[-800:]}")
    moves = [(why, int(side)) for why, side in MOVE.findall(text)]
    row = {"flags": " ".join(flags) or "(defaults: governor)", "shown": int(m[1]), "fps": float(m[2]), "p50_ms": int(m[3]),
           "p95_ms": int(m[4]), "dropped": int(m[5]), "peak_mb": int(m[6]), "first_frame_s": float(m[7]) if m[7] else None,
           "moves": len(moves), "settled_side": moves[-1][1] if moves else None, "last_move": moves[-1][0] if moves else None}
    log.info("%-22s %5.1f fps shown, p50 %3d ms, p95 %3d ms, %4d dropped, %3d MB, first frame %s s, %d moves -> %s",
             row["flags"], row["fps"], row["p50_ms"], row["p95_ms"], row["dropped"], row["peak_mb"], row["first_frame_s"],
             row["moves"], row["settled_side"] or "384 (no move)")
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=450, help="frames shown per run (30 fps: 15 s)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip720.mp4", 1280, 720, 300)
        governed = live(clip, [], args.frames, args.backend, args.model_dir)
        pinned = live(clip, ["--size", "384"], args.frames, args.backend, args.model_dir)
    data = {"env": bench.environment(), "machine": bench.machine_name(cpu_only=True), "backend": args.backend,
            "source": "1280x720 @ 30 fps (--keep-pace)", "governor": governed, "pinned_384": pinned,
            "ratio_fps": round(governed["fps"] / max(pinned["fps"], 1e-9), 2)}
    log.info("governor / pinned 384: %.2fx the shown frame rate", data["ratio_fps"])
    out = Path(args.out) / f"governor-{bench.machine_name(cpu_only=True)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
