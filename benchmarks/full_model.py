"""The full model (--model full) against the lite one, per frame: what the precomputed style saves.

    python benchmarks/full_model.py [--sizes 384x384,1280x720] [--batches 1,8] [--gpu]

No download is possible here, so the full network is rebuilt with Magenta's shapes and random
weights: a SavedModel built like Magenta's export (``tests/magenta_like.py``, transfer network at
the real 32/64/128 channels and 5 residual blocks), loaded by our ``hub`` backend, split, timed.
Its per-frame cost is the real network's (the same ops at the same sizes; the weights' values do not
change the time).  The naive baseline is what the backend did before the split: the style network
on every frame.  Its cost is timed on Keras' Inception-v3 cut at ``mixed7`` (Magenta's
``Mixed_6e``) at 256x256, the real style network's shape, and added to the transfer time.
Also the lite ``tf`` backend at the same sizes (needs the TF Lite files: --model-dir).
Writes benchmarks/results/<machine>-full-model.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from realtime import bench  # noqa: E402

log = logging.getLogger("full_model")


def inception_ms(seconds: float) -> float:
    """One run of the style network's shape (Inception-v3 to Mixed_6e, 256x256, batch 1)."""
    import keras
    import tensorflow as tf

    base = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(256, 256, 3))
    net = keras.Model(base.input, base.get_layer("mixed7").output)
    fn = tf.function(lambda x: tf.reduce_mean(net(x, training=False), axis=[1, 2]))
    x = tf.constant(np.random.default_rng(0).random((1, 256, 256, 3), np.float32))
    return statistics.median(bench.timed(lambda: fn(x).numpy(), seconds)) * 1000


def per_frame_ms(stylizer, w: int, h: int, b: int, seconds: float) -> float:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8)
    code = rng.normal(0, 0.5, 100).astype(np.float32)
    return statistics.median(bench.timed(lambda: stylizer.stylize(frames, code), seconds)) / b * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="384x384,1280x720")
    ap.add_argument("--batches", default="1")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--gpu", action="store_true", help="also mixed precision (needs a GPU)")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from magenta_like import save_magenta_like

    from realtime.model.backends.hub_backend import HubStylizer
    from realtime.model.backends.tf_backend import TFStylizer
    from realtime.model.files import CATALOG

    sizes, batches = bench.parse_sizes(args.sizes), [int(b) for b in args.batches.split(",")]
    style_ms = inception_ms(args.seconds)
    log.info("style network (Inception-v3 to Mixed_6e, 256x256): %.1f ms per call", style_ms)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = save_magenta_like(Path(tmp) / "full", widths=(32, 64, 128), residuals=5)
        variants = [("full", "float32")] + ([("full", "mixed")] if args.gpu else [])
        lite = None
        mdir = Path(args.model_dir)
        if all((mdir / CATALOG[k].filename).is_file() for k in ("int8_prediction", "fp16_transfer")):
            lite = TFStylizer(mdir / CATALOG["int8_prediction"].filename, mdir / CATALOG["fp16_transfer"].filename, jit=True)
        for name, precision in variants:
            full = HubStylizer(str(path), Path(tmp), precision=precision, jit=True)
            assert full.split is not None, full.fallback_reason
            for w, h in sizes:
                for b in batches:
                    ms = per_frame_ms(full, w, h, b, args.seconds)
                    row = {"model": f"{name} ({precision})", "size": f"{w}x{h}", "batch": b, "ms_per_frame": round(ms, 2),
                           "fps": round(1000 / ms, 1), "naive_style_per_frame_ms": round(ms + style_ms, 2),
                           "speedup_vs_naive": round((ms + style_ms) / ms, 2)}
                    if lite is not None:
                        lite_ms = per_frame_ms(lite, w, h, b, args.seconds)
                        row.update(lite_ms_per_frame=round(lite_ms, 2), full_over_lite=round(ms / lite_ms, 1))
                    log.info("%s", row)
                    rows.append(row)
    data = {"env": bench.environment(), "style_network_ms": round(style_ms, 2), "results": rows,
            "note": "full = Magenta-shaped transfer network (32/64/128 channels, 5 residual blocks), random weights, XLA"}
    _, md = bench.write_results("full-model", data, Path(args.out))
    log.info("wrote %s", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
