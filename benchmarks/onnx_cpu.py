"""The onnx backend's graph formulations on ONNX Runtime's CPU provider, against openvino, same run.

    python benchmarks/onnx_cpu.py [--sizes 684x384,384x384] [--batches 1] [--threads 0] [--seconds 4]

For each size and batch: ms per frame of the uint8 path (``stylize``) for the ``s2d`` graph (what
``--backend onnx`` builds), the ``plain`` graph, and ``openvino`` float32 (the CPU backend, a static
s2d graph per size), timed in turn in one process so they share the machine's load; the ratios to
openvino.  Why: with dynamic shapes the choice between the two formulations had to be measured on
ORT's own kernels (see ``realtime/model/backends/onnx_graph.py``).
Writes benchmarks/results/<machine>-onnx-cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime import bench  # noqa: E402

log = logging.getLogger("onnx_cpu")
PREDICTION = "magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite"
TRANSFER = "magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="684x384,384x384")
    ap.add_argument("--batches", default="1")
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import onnxruntime as ort

    from realtime.model.backends.onnx_graph import CODES, FRAMES, build_model
    from realtime.model.backends.openvino_backend import OpenVINOStylizer
    from realtime.model.backends.transfer_net import TransferWeights

    models = Path(args.model_dir)
    threads = args.threads or os.cpu_count() or 1
    weights = TransferWeights.from_tflite(models / TRANSFER)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sessions = {f: ort.InferenceSession(build_model(weights, True, f).SerializeToString(), opts,
                                        providers=["CPUExecutionProvider"]) for f in ("s2d", "plain")}
    ov = OpenVINOStylizer(models / PREDICTION, models / TRANSFER, threads, "float32")
    rng = np.random.default_rng(0)
    rows = []
    for w, h in bench.parse_sizes(args.sizes):
        for b in (int(x) for x in args.batches.split(",")):
            frames = rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8)
            codes = rng.normal(0, 0.5, (b, 100)).astype(np.float32)
            runs = {f"onnx-{f}": (lambda s=s: s.run(None, {FRAMES: frames, CODES: codes})) for f, s in sessions.items()}
            runs["openvino"] = lambda: ov.stylize(frames, codes)
            ms = {}
            for _ in range(2):  # two rounds, interleaved: the fastest median of each (shared machines)
                for name, fn in runs.items():
                    t = statistics.median(bench.timed(fn, args.seconds / 2)) / b * 1000
                    ms[name] = min(ms.get(name, t), t)
            row = {"size": f"{w}x{h}", "batch": b, "threads": threads,
                   **{f"{k}_ms": round(v, 1) for k, v in ms.items()},
                   "s2d_vs_plain": round(ms["onnx-plain"] / ms["onnx-s2d"], 2),
                   "s2d_vs_openvino": round(ms["openvino"] / ms["onnx-s2d"], 2)}
            log.info("%s batch %d: onnx s2d %.1f ms, plain %.1f ms, openvino %.1f ms per frame", row["size"], b,
                     ms["onnx-s2d"], ms["onnx-plain"], ms["openvino"])
            rows.append(row)
    print(f"{'size':>9} {'batch':>5} {'onnx s2d':>9} {'plain':>8} {'openvino':>9} {'s2d/plain':>9} {'vs ov':>6}")
    for r in rows:
        print(f"{r['size']:>9} {r['batch']:>5} {r['onnx-s2d_ms']:>9.1f} {r['onnx-plain_ms']:>8.1f} {r['openvino_ms']:>9.1f} "
              f"{r['s2d_vs_plain']:>8.2f}x {r['s2d_vs_openvino']:>5.2f}x")
    env = bench.environment()
    env["machine"] = bench.machine_name(cpu_only=True)
    env["onnxruntime"] = ort.__version__
    data = {"env": env, "note": "ms per frame, uint8 path; ratios > 1: the s2d graph is faster", "results": rows}
    _, md = bench.write_results("onnx-cpu", data, Path(args.out))
    log.info("wrote %s", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
