"""Fingerprints of what every mode writes, for refactors that must not change a byte.

Why: a structural change (new module layout, pipeline messages, one H.264 writer) must leave the
outputs exactly as they were.  This script makes the tests' kind of clips (deterministic, generated),
runs ``stylize video`` (audio copy, trimming, style switches with strength, odd size + VFR, AVI,
MKV, rotation), ``stylize image``, ``stylize video --cluster`` and a headless ``stylize live``
recording through the real command, and prints the sha256 of each output.  Live recordings carry
wall-clock timestamps (x264's rate control follows them), so for live the frames handed to the
recorder are hashed; Matroska files hold a random UID, so for them the packets are hashed.

    python benchmarks/output_digest.py --out before.json      # on the old code
    python benchmarks/output_digest.py --out after.json --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _packets_sha(path: Path) -> str:
    """Every stream's packets (data and timestamps), not the container's header: Matroska writes a
    random segment UID into each file."""
    import av

    h = hashlib.sha256()
    with av.open(str(path)) as c:
        for p in c.demux():
            h.update(f"{p.stream.index} {p.pts} {p.dts} {p.duration}".encode() + bytes(p))
    return h.hexdigest()


# Live: the frames handed to the recorder, hashed in order (x264's rate control depends on the
# frames' wall-clock timestamps, so the encoded bytes differ from run to run).
_LIVE = """
import hashlib, sys
from realtime.io.sinks import VideoRecorder
h, n = hashlib.sha256(), [0]
write = VideoRecorder.write
def hashed(self, frame, t):
    h.update(frame.tobytes()); n[0] += 1
    return write(self, frame, t)
VideoRecorder.write = hashed
from realtime.cli import main
rc = main(sys.argv[1:])
print(f"DIGEST {n[0]} frames {h.hexdigest()}")
raise SystemExit(rc)
"""


def _stylize(*args: str) -> str:
    live = args[0] == "live"
    cmd = [sys.executable, *(("-c", _LIVE) if live else ("-m", "realtime")), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(args)}\n{r.stderr[-2000:]}")
    return r.stdout.split("DIGEST ", 1)[-1].strip() if live else ""


def make_inputs(d: Path) -> dict[str, Path]:
    from realtime.io.images import write_image
    from realtime.io.synthetic import pattern_frame, write_clip

    d.mkdir(parents=True, exist_ok=True)
    clips = {
        "audio": dict(frames=48, width=128, height=96, fps=24, audio=True),
        "odd_vfr": dict(frames=20, width=161, height=119, fps=20, audio=False, vfr=True),
        "rot90": dict(frames=8, width=128, height=64, fps=10, audio=False, rotation=90),
        "gop": dict(frames=96, width=96, height=64, fps=24, audio=True, gop=24),
    }
    paths = {}
    for name, kw in clips.items():
        p = d / f"{name}.mp4"
        if not p.exists():
            write_clip(p, **kw)
        paths[name] = p
    for i, (w, h) in enumerate([(160, 120), (97, 75)]):
        p = d / f"img{i}.png"
        if not p.exists():
            write_image(p, pattern_frame(7 + i, w, h)[..., ::-1])
        paths[f"img{i}"] = p
    return paths


def run_all(work: Path) -> dict[str, str]:
    inp = make_inputs(work / "in")
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    for f in out.iterdir():
        if f.is_file():
            f.unlink()
    ov = ("--backend", "openvino", "--quiet")
    cases = {
        "video_audio_stability.mp4": ("video", str(inp["audio"]), "-o", "{o}", "--style", "mosaic", "--size", "64", *ov),
        "video_switch_strength_trim.mp4": ("video", str(inp["audio"]), "-o", "{o}", "--style", "mosaic", "--style", "waves",
                                           "--switch-every", "0.5", "--strength", "0.6", "--start", "0.3", "--end", "1.5",
                                           "--size", "64", *ov),
        "video_odd_vfr.mp4": ("video", str(inp["odd_vfr"]), "-o", "{o}", "--style", "dots", "--stability", "0", *ov),
        "video_avi.avi": ("video", str(inp["audio"]), "-o", "{o}", "--style", "waves", "--size", "48", *ov),
        "video_mkv.mkv": ("video", str(inp["audio"]), "-o", "{o}", "--style", "ink", "--size", "48", *ov),
        "video_rot90.mp4": ("video", str(inp["rot90"]), "-o", "{o}", "--style", "mosaic", *ov),
        "video_tf.mp4": ("video", str(inp["audio"]), "-o", "{o}", "--style", "mosaic", "--size", "64", "--backend", "tf", "--quiet"),
        "image0.png": ("image", str(inp["img0"]), "-o", "{o}", "--style", "mosaic", "--strength", "0.7", "--backend", "openvino"),
        "image1.png": ("image", str(inp["img1"]), "-o", "{o}", "--style", "waves", "--blend", "dots:0.5", "--backend", "openvino"),
        "cluster.mp4": ("video", str(inp["gop"]), "-o", "{o}", "--style", "mosaic", "--size", "48", *ov, "--cluster"),
        "live.mp4": ("live", "--source", str(inp["audio"]), "--headless", "--record", "{o}", "--style", "mosaic",
                     "--size", "64", "--max-frames", "30", "--backend", "openvino"),
    }
    if os.environ.get("DIGEST_ONLY"):
        cases = {k: v for k, v in cases.items() if k in os.environ["DIGEST_ONLY"].split(",")}
    digests = {}
    for name, args in cases.items():
        dst = out / name
        t = time.perf_counter()
        live = _stylize(*(a.replace("{o}", str(dst)) for a in args))
        digests[name] = live or (_packets_sha(dst) if name.endswith(".mkv") else _sha(dst))
        print(f"{name:34s} {digests[name][:24]}  ({time.perf_counter() - t:.1f} s)", flush=True)
    return digests


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/realtime-digest"))
    ap.add_argument("--out", type=Path, required=True, help="JSON file of the digests")
    ap.add_argument("--compare", type=Path, help="an earlier JSON file: say which outputs differ")
    a = ap.parse_args()
    digests = run_all(a.work)
    a.out.write_text(json.dumps(digests, indent=1) + "\n")
    if a.compare:
        old = json.loads(a.compare.read_text())
        differ = [k for k in digests if k in old and old[k] != digests[k]]
        same = [k for k in digests if k in old and old[k] == digests[k]]
        print(f"identical: {len(same)}; different: {', '.join(differ) or 'none'}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
