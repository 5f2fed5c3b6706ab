"""Soak: the live pipeline for tens of thousands of small frames, with style cycling and camera
reconnects, measuring memory (RSS) and threads over time.  Unattended shows run for months: a leak
of a few bytes a frame is a crash in week three.

    python benchmarks/soak.py --frames 50000 --model-dir ../shared/models        # the real tf backend
    python benchmarks/soak.py --hours 8 --model-dir ../shared/models             # on request: hours

Writes benchmarks/results/<machine>-soak.{json,md}.  Not a test (the suite runs a shorter soak on
a fake stylizer in tests/test_show.py).
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

log = logging.getLogger("soak")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=50_000)
    ap.add_argument("--hours", type=float, default=0.0, help="run this long instead of --frames")
    ap.add_argument("--size", default="64x48", help="frame size")
    ap.add_argument("--model-dir", default=str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--unplug-every", type=int, default=5000, help="frames between simulated camera losses")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("realtime").setLevel(logging.ERROR)  # reconnect warnings would flood the log

    from realtime.config import load_config
    from realtime.core.controller import Controller
    from realtime.pipeline.stage import StylizeStage
    from realtime.io.sources import SupervisedSource, SyntheticSource
    from realtime.config import LiveConfig
    from realtime.live.app import LiveApp
    from realtime.live.pipeline import LivePipeline
    from realtime.live.show import AutoCycle, memory_mb
    from realtime.model.engine import open_engine

    w, h = bench.parse_sizes(args.size)[0]
    cfg = load_config(None, {"models.model_dir": args.model_dir, "models.auto_download": False})
    engine = open_engine(cfg)
    styles = engine.resolve_styles([cfg.styles.dir])
    codes = [engine.bank.code_for(s) for s in styles]

    class Flaky(SyntheticSource):
        """The test pattern at 1000 fps that fails every ``--unplug-every`` frames (a camera lost)."""

        def read(self):
            self.n = getattr(self, "n", 0) + 1
            if self.n % args.unplug_every == 0:
                raise OSError("simulated unplug")
            return super().read()

    src = SupervisedSource(lambda: Flaky(w, h, fps=1000), stall_s=1.0, backoff_s=0.05, reconnect_max_s=0.1, name="soak camera")
    src.open()
    c = Controller([s.name for s in styles])
    p = LivePipeline(src, StylizeStage(engine.stylizer, min(w, h)), c, codes, crossfade_s=0.2, restarts_per_hour=0)
    engine.stylizer.warmup(*p.stage.size_for(w, h))
    samples = []

    class Sampler:
        def __init__(self):
            self.next = 0.0

        def tick(self):
            now = time.monotonic()
            if now >= self.next:
                self.next = now + 2.0
                samples.append((round(now - t0, 1), app.stats.shown, round(memory_mb(), 1), threading.active_count()))
            if args.hours and now - t0 > args.hours * 3600:
                c.quit()

    max_frames = 0 if args.hours else args.frames
    app = LiveApp(p, LiveConfig(headless=True, max_frames=max_frames),
                  surfaces=[AutoCycle(c, cycle_s=0.05, shuffle=True), Sampler()])
    t0 = time.monotonic()
    stats = app.run()
    wall = time.monotonic() - t0
    warm = [s for s in samples if s[1] >= min(2000, stats.shown // 10)] or samples
    rss0, rss1 = warm[0][2], samples[-1][2]
    threads = sorted({s[3] for s in warm})
    data = {
        "env": bench.environment(),
        "frames": stats.shown,
        "seconds": round(wall, 1),
        "fps": round(stats.shown / wall, 1),
        "frame_size": f"{w}x{h}",
        "backend": engine.stylizer.name,
        "styles": len(styles),
        "style_switches": app.surfaces[0].switches,
        "reconnects": src.reconnects,
        "rss_mb_after_warmup": rss0,
        "rss_mb_end": rss1,
        "rss_growth_mb": round(rss1 - rss0, 1),
        "thread_counts_seen": threads,
        "samples": [{"t_s": s[0], "frames": s[1], "rss_mb": s[2], "threads": s[3]} for s in samples],
    }
    log.info("soak: %d frames in %.0f s (%.0f fps), %d style switches, %d reconnects; RSS %.1f -> %.1f MB (%+.1f), threads %s",
             stats.shown, wall, data["fps"], data["style_switches"], src.reconnects, rss0, rss1, rss1 - rss0, threads)
    _, m = bench.write_results("soak", data, Path(args.out))
    log.info("wrote %s", m)
    return 0 if rss1 - rss0 < 20 and len(threads) <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
