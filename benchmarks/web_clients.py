"""Preview viewers against the show: displayed fps with no viewer, then with three MJPEG viewers
(two reading as fast as they can, one slow phone reading two frames a second), in the same run.

    python benchmarks/web_clients.py --model-dir ../shared/models             # 640x480 @ 30, inference 384

The goal (issue 13): at most 10% fewer displayed frames per second with the viewers.  The naive
baseline for comparison encodes the JPEG once per viewer on the show's thread, which is what
``cv2.imencode`` in an output's ``write`` per client would do.  Writes
benchmarks/results/<machine>-web-clients.{json,md}.  Not a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from realtime import bench  # noqa: E402

log = logging.getLogger("web_clients")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="per phase")
    ap.add_argument("--rounds", type=int, default=2, help="the phases alternate this many times (machine noise averages out)")
    ap.add_argument("--size", default="640x480", help="camera frame size (synthetic, 30 fps, real-time pacing)")
    ap.add_argument("--inference", type=int, default=384, help="inference short side")
    ap.add_argument("--model-dir", default=str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("realtime").setLevel(logging.WARNING)

    import cv2
    import requests

    from realtime.config import LiveConfig, load_config
    from realtime.core.controller import Controller
    from realtime.pipeline.stage import StylizeStage
    from realtime.io.sinks.base import Output
    from realtime.io.sources import SyntheticSource
    from realtime.live.app import LiveApp
    from realtime.live.pipeline import LivePipeline
    from realtime.model.engine import open_engine
    from realtime.web.app import build_app
    from realtime.web.preview import MjpegPreview
    from realtime.web.server import WebServer

    w, h = bench.parse_sizes(args.size)[0]
    cfg = load_config(None, {"models.model_dir": args.model_dir, "models.auto_download": False})
    engine = open_engine(cfg)
    styles = engine.resolve_styles([cfg.styles.dir])
    codes = [engine.bank.code_for(s) for s in styles]
    token = "benchmark-token"

    class NaivePerViewer(Output):
        """The baseline: a JPEG encoded on the show's thread for every viewer, every frame."""

        name = "naive preview"

        def __init__(self, viewers: int) -> None:
            self.viewers = viewers

        def write(self, frame, t):
            small = cv2.resize(frame, (640, 480)) if max(frame.shape[:2]) > 640 else frame
            for _ in range(self.viewers):
                cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])

        def close(self):
            return None

    def phase(name: str, viewers: int, naive: bool = False) -> dict:
        c = Controller([s.name for s in styles])
        p = LivePipeline(SyntheticSource(w, h, fps=30.0), StylizeStage(engine.stylizer, args.inference), c, codes, 0.5)
        engine.stylizer.warmup(*p.stage.size_for(w, h))
        preview = MjpegPreview(640, 70, 15.0, 8)
        outputs: list[Output] = [preview] + ([NaivePerViewer(viewers)] if naive else [])
        app = LiveApp(p, LiveConfig(headless=True), outputs=outputs)
        server = WebServer("127.0.0.1", 0)
        server.start(build_app(c, token, preview))
        got: dict[str, int] = {}
        stop = threading.Event()

        def viewer(label: str, pause: float) -> None:
            n = 0
            with requests.get(f"http://127.0.0.1:{server.port}/stream.mjpg", headers={"Authorization": f"Bearer {token}"},
                              stream=True, timeout=10) as r:
                for chunk in r.iter_content(65536):
                    n += chunk.count(b"\xff\xd8\xff")
                    if pause:
                        time.sleep(pause)
                    if stop.is_set():
                        break
            got[label] = n

        threads = []
        if not naive:
            for i in range(viewers):
                pause = 0.5 if i == viewers - 1 and viewers >= 3 else 0.0
                threads.append(threading.Thread(target=viewer, args=(f"viewer{i}{'-slow' if pause else ''}", pause),
                                                name=f"realtime-bench-{i}"))

        def timer() -> None:
            for t in threads:
                t.start()
            time.sleep(3.0)  # warm-up
            mark["shown"], mark["t"] = app.stats.shown, time.monotonic()
            time.sleep(args.seconds)
            mark["shown_end"], mark["t_end"] = app.stats.shown, time.monotonic()
            stop.set()
            c.quit()

        mark: dict[str, float] = {}
        tt = threading.Thread(target=timer, name="realtime-bench-timer")
        tt.start()
        app.run()
        tt.join()
        for t in threads:
            t.join(10)
        server.stop()
        fps = (mark["shown_end"] - mark["shown"]) / (mark["t_end"] - mark["t"])
        row = {"phase": name, "viewers": viewers, "display_fps": round(fps, 2),
               "preview_encodes": preview.encoded, "encode_ms": round(1000 * preview.encode_s / max(1, preview.encoded), 2),
               "frames_per_viewer": ",".join(f"{k}={v}" for k, v in sorted(got.items())) or "-"}
        log.info("%-28s display %5.2f fps  %s", name, fps, row["frames_per_viewer"])
        return row

    plan = [("no viewers", 0, False), ("3 viewers (1 slow)", 3, False), ("naive: 3 encodes per frame", 3, True)]
    runs = [[phase(name, n, naive) for name, n, naive in plan] for _ in range(args.rounds)]
    rows = []
    for i, (name, n, _) in enumerate(plan):
        per_round = [r[i] for r in runs]
        row = dict(per_round[-1])
        row["display_fps"] = round(sum(r["display_fps"] for r in per_round) / len(per_round), 2)
        row["display_fps_rounds"] = ",".join(str(r["display_fps"]) for r in per_round)
        rows.append(row)
    base = rows[0]["display_fps"]
    for r in rows:
        r["vs_no_viewers"] = round(r["display_fps"] / base, 3) if base else 0.0
    data = {"env": bench.environment(), "frame_size": f"{w}x{h}", "inference_short_side": args.inference,
            "seconds_per_phase": args.seconds, "backend": engine.stylizer.name, "phases": rows,
            "drop_with_viewers_pct": round(100 * (1 - rows[1]["vs_no_viewers"]), 1)}
    _, m = bench.write_results("web-clients", data, Path(args.out))
    log.info("displayed fps with 3 viewers: %.1f%% below no viewers (goal: at most 10%%); wrote %s",
             data["drop_with_viewers_pct"], m)
    return 0 if data["drop_with_viewers_pct"] <= 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
