"""Where the time goes: a per-layer profile of the transfer network (TF step stats).

    python benchmarks/profile_layers.py [--size 384x384] [--reference]

Runs the graph in a TF1 session with full tracing and sums op time by network layer (the scope
of the op) and by op type; prints both tables and writes benchmarks/results/<machine>-profile.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="384x384")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--reference", action="store_true", help="profile the straightforward graph")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf

    from realtime.model.backends.tf_backend import configure_tensorflow
    from realtime.model.backends.transfer_net import (
        TransferWeights,
        build_fast_transfer_fn,
        build_transfer_fn,
    )
    from realtime.bench import machine_name, transfer_gflop

    configure_tensorflow("cpu", 0)
    w, h = (int(v) for v in args.size.split("x"))
    weights = TransferWeights.from_tflite(Path(args.model_dir) / "magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite")
    _, u8 = (build_transfer_fn if args.reference else build_fast_transfer_fn)(weights)
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    if hasattr(u8, "fn"):  # the fast graph: one concrete function per batch size
        concrete = u8.fn.get_concrete_function(tf.TensorSpec([args.batch, None, None, 3], tf.uint8), tf.TensorSpec([args.batch, 100], tf.float32))
    else:
        concrete = u8.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)  # captured weights become constants
    graph = frozen.graph
    frames = np.random.default_rng(0).integers(0, 255, (args.batch, h, w, 3), dtype=np.uint8)
    codes = np.random.default_rng(1).normal(0, 0.5, (args.batch, 100)).astype(np.float32)
    with tf.compat.v1.Session(graph=graph) as sess:
        feeds = {graph.inputs[0].name: frames, graph.inputs[1].name: codes}
        out = graph.outputs[0]
        for _ in range(3):
            sess.run(out, feeds)
        by_op: dict[str, float] = collections.Counter()
        by_type: dict[str, float] = collections.Counter()
        by_layer: dict[str, float] = collections.Counter()
        total_wall = 0.0
        import time

        for _ in range(args.runs):
            meta = tf.compat.v1.RunMetadata()
            t = time.perf_counter()
            sess.run(out, feeds, options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE), run_metadata=meta)
            total_wall += time.perf_counter() - t
            for dev in meta.step_stats.dev_stats:
                for node in dev.node_stats:
                    name = node.node_name.split(":")[0]
                    if name in ("_SOURCE", "_SINK"):
                        continue
                    us = node.op_end_rel_micros - node.op_start_rel_micros
                    by_op[name] += us
                    by_layer[name.split("/")[0] if "/" in name else "(input/output)"] += us
                    op_type = node.timeline_label.split("=")[-1].split("(")[0].strip() if "=" in node.timeline_label else name
                    by_type[op_type] += us
    runs = args.runs
    total = sum(by_op.values()) / runs / 1000
    rows = sorted(((v / runs / 1000, k) for k, v in by_op.items()), reverse=True)
    layers = sorted(((v / runs / 1000, k) for k, v in by_layer.items()), reverse=True)
    print(f"{'layer':30} {'ms':>7} {'share':>6}")
    for ms, name in layers:
        print(f"{name[:30]:30} {ms:7.2f} {100 * ms / total:5.1f}%")
    print(f"\n{'op type':30} {'ms':>7} {'share':>6}")
    types = sorted(((v / runs / 1000, k) for k, v in by_type.items()), reverse=True)
    for ms, name in types[:15]:
        print(f"{name[:30]:30} {ms:7.2f} {100 * ms / total:5.1f}%")
    wall = total_wall / runs * 1000
    print(f"\nsum of op times {total:.1f} ms, wall (traced) {wall:.1f} ms per batch of {args.batch}, "
          f"{transfer_gflop(w, h) * args.batch / (wall / 1000):.0f} GFLOP/s of convolution")
    outdir = ROOT / "benchmarks" / "results"
    outdir.mkdir(parents=True, exist_ok=True)
    tag = "reference" if args.reference else "fast"
    (outdir / f"{machine_name()}-profile-{tag}-{w}x{h}.json").write_text(json.dumps(
        {"size": [w, h], "batch": args.batch, "graph": tag, "wall_ms": round(wall, 2),
         "layers": [{"layer": k, "ms": round(v, 3)} for v, k in layers], "ops": [{"op": k, "ms": round(v, 3)} for v, k in rows], "op_types": [{"type": k, "ms": round(v, 3)} for v, k in types]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
