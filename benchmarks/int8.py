"""int8 for the openvino backend (issue 25): the transfer network quantized with NNCF (post-training,
calibrated on real frames and real style codes) against float32 and bf16 on this CPU.

    python benchmarks/int8.py                         # 384x384 and 684x384, 2 threads (about 5 min)
    python benchmarks/int8.py --settings all          # every quantization setting tried (about 15 min)

Needs ``pip install nncf`` (measured with NNCF 3.4.0, OpenVINO 2026.4.1); NNCF is not a dependency
of the project, since int8 did not pass (see the README's Speed section).

Per size, the float32 transfer graph is read from the TF Lite file (:func:`transfer_graph`:
upsampling sizes replaced, static [1,H,W,3]; the graph the backend ran before it built the
space-to-depth form from the weights, which computes the same values) and quantized
with ``nncf.quantize`` under each setting of ``--settings`` (100 calibration samples: crops of
``chicago.jpg`` and frames of the first half of ``fox.mp4``, each with the style code of one of the
repository's ``styles/``, computed by the backend's ``style_code``).  Every variant is compiled with
uint8 in and out (:func:`uint8_io`, as the backend runs it), 2 threads, ``PERFORMANCE_HINT LATENCY``:
float32 (``INFERENCE_PRECISION_HINT f32``), bf16 (``bf16``, where the CPU has it), and per setting
int8 with the layers left in float run f32, and (``+ bf16``) run bf16.  Figures:

* ms per frame, batch 1: the median of interleaved rounds (every variant in each round, in a new
  order), so a noisy shared machine hits all of them alike; ``vs_best_float`` is the speed-up over
  the faster of float32 and bf16 on this CPU.
* PSNR (dB, uint8 outputs, ``effects.metrics.psnr``) against float32 on held-out content (crops of
  ``stata.jpg`` and frames of the second half of the clip) with every style: the calibration
  styles (``styles/``, "seen") and four others (``../shared/media/styles``, "unseen"), also apart,
  and the worst single style.
* Flicker: the warping error (Lai et al., ``effects.metrics.ConsistencyMeter``) of each output on
  consecutive held-out frames of the clip, for two styles (waves, the scream); ``vs_float32`` is the
  ratio to float32's, mean and worst over the styles (each style counts alike).

The issue's rule: offer ``--precision int8`` only if int8 is at least 1.5x faster than the best of
float32/bf16 at >= 35 dB PSNR from float32 and no more flicker (warping error within ~2% of
float32's); the ``verdict`` rows apply it.  Writes benchmarks/results/<cpu>-int8[-TAG].{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from realtime import bench  # noqa: E402

log = logging.getLogger("int8")

MEDIA = ROOT.parent / "shared" / "media"
# The bar for offering int8.
MIN_SPEEDUP, MIN_PSNR_DB, MAX_FLICKER_RATIO = 1.5, 35.0, 1.02
# Element-wise and instance-norm ops: left in float by the "conv-only" settings.
ELEMENTWISE = ("Add", "Multiply", "Subtract", "ReduceMean", "SquaredDifference", "Power")
INSTANCE_NORM_STATS = ("ReduceMean", "SquaredDifference", "Power")


# -- the quantization settings ---------------------------------------------------------------------


def transfer_graph(core: Any, transfer_path: Path, batch: int, height: int, width: int) -> Any:
    """The TF Lite file's float32 transfer graph (an ``openvino.Model``) for one static size: its
    three upsampling sizes replaced by this size's.  What this study quantized."""
    import numpy as np
    from openvino import opset13 as ops

    from realtime.model.backends.openvino_graph import CODE_INPUT, CONTENT_INPUT
    from realtime.model.backends.tflite_util import RESIZE_SIZE_TENSORS

    model = core.read_model(str(transfer_path))
    divs = dict(RESIZE_SIZE_TENSORS)
    found = 0
    for op in model.get_ops():
        if op.get_type_name() != "Interpolate":
            continue
        name = op.input(1).get_source_output().get_node().get_friendly_name()
        if name in divs:
            op.input(1).replace_source_output(ops.constant(np.array([height // divs[name], width // divs[name]], np.int32)).output(0))
            found += 1
    if found != len(divs):
        raise SystemExit(f"{transfer_path.name} has {found} of {len(divs)} upsampling sizes: not the Magenta transfer file?")
    model.reshape({CONTENT_INPUT: [batch, height, width, 3], CODE_INPUT: [batch, 1, 1, 100]})
    return model


def uint8_io(model: Any) -> Any:
    """``model`` with the uint8 -> float and float -> uint8 (round half up, saturate) conversions
    moved into the graph, as the backend runs it."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops
    from openvino.preprocess import PrePostProcessor

    from realtime.model.backends.openvino_graph import CONTENT_INPUT

    ppp = PrePostProcessor(model)
    ppp.input(CONTENT_INPUT).tensor().set_element_type(ov.Type.u8)
    ppp.input(CONTENT_INPUT).preprocess().convert_element_type(ov.Type.f32).scale(255.0)

    def to_uint8(out: Any) -> Any:
        x = ops.add(ops.multiply(out, np.float32(255.0)), np.float32(0.5))
        return ops.convert(ops.floor(ops.clamp(x, 0.0, 255.0)), ov.Type.u8).output(0)

    ppp.output(0).postprocess().custom(to_uint8)
    return ppp.build()

def graph_parts(model: Any) -> tuple[list[str], list[str]]:
    """(names of the ops that compute per-channel quantities: the style code's 1x1 convs giving
    gamma and beta, the instance norm's mean, variance and rsqrt; names of the image convolutions in
    graph order: conv1..3, residual1.conv1 .. residual5.conv2, expand1..3).  Names are per model
    object (OpenVINO numbers them as it reads a file), so they come from the model quantized."""
    per_channel, convs = [], []
    for op in model.get_ordered_ops():
        if op.get_type_name() in ("Constant", "Parameter", "Convert", "Result"):
            continue
        shape = op.output(0).get_partial_shape()
        flat = shape.rank.is_static and len(shape) == 4 and shape[2].is_static and shape[3].is_static \
            and shape[2].get_length() == 1 and shape[3].get_length() == 1
        if flat:
            per_channel.append(op.get_friendly_name())
        elif op.get_type_name() == "Convolution":
            convs.append(op.get_friendly_name())
    return per_channel, convs


def settings() -> dict[str, tuple[str, Callable[[Any], dict]]]:
    """name -> (what it is, model -> nncf.quantize keyword arguments)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    def ignore(names: list[str], types: tuple[str, ...]) -> Any:
        return nncf.IgnoredScope(names=names, types=list(types), validate=False)

    def conv_only(model: Any, keep: tuple[int, ...] = (), **extra: Any) -> dict:
        per_channel, convs = graph_parts(model)
        return {"ignored_scope": ignore(per_channel + [convs[i] for i in keep], ELEMENTWISE),
                "preset": nncf.QuantizationPreset.MIXED,
                # VNNI and AMX do not saturate: full 8-bit weights in the first layer too
                "advanced_parameters": AdvancedQuantizationParameters(overflow_fix=OverflowFix.DISABLE), **extra}

    def norm_float(model: Any) -> dict:
        return {"ignored_scope": ignore(graph_parts(model)[0], INSTANCE_NORM_STATS)}

    return {
        "default": ("nncf.quantize defaults (PERFORMANCE preset: every op, symmetric)", lambda m: {}),
        "mixed": ("preset MIXED (asymmetric activations)", lambda m: {"preset": nncf.QuantizationPreset.MIXED}),
        "transformer": ("model_type TRANSFORMER", lambda m: {"model_type": nncf.ModelType.TRANSFORMER}),
        "norm-float": ("ignored: style-code path, instance-norm statistics", norm_float),
        "conv-only": ("ignored: every element-wise op (instance norm, residual adds) and the style-code convs; "
                      "MIXED, overflow fix off", conv_only),
        "conv-only-fbc-off": ("conv-only, fast_bias_correction=False", lambda m: conv_only(m, fast_bias_correction=False)),
        "conv-only-keep3": ("conv-only, and conv2, conv3, residual2.conv1 in float (the most sensitive)",
                            lambda m: conv_only(m, keep=(1, 2, 5))),
    }


DEFAULT_SETTINGS = "conv-only,conv-only-keep3"


# -- data ------------------------------------------------------------------------------------------

def fit(img: np.ndarray, width: int, height: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """``img`` (or its ``box`` x, y, w, h) cut to the aspect of width x height and resized to it."""
    import cv2

    ih, iw = img.shape[:2]
    if box is None:
        s = min(iw / width, ih / height)
        cw, ch = int(width * s), int(height * s)
        box = ((iw - cw) // 2, (ih - ch) // 2, cw, ch)
    x, y, cw, ch = box
    return cv2.resize(img[y:y + ch, x:x + cw], (width, height), interpolation=cv2.INTER_AREA)


def crops(img: np.ndarray, n: int, width: int, height: int, seed: int) -> list[np.ndarray]:
    """The whole picture and n - 1 random crops of 40-100% of it."""
    rng = np.random.default_rng(seed)
    ih, iw = img.shape[:2]
    out = [fit(img, width, height)]
    for _ in range(n - 1):
        s = rng.uniform(0.4, 1.0) * min(iw / width, ih / height)
        cw, ch = int(width * s), int(height * s)
        out.append(fit(img, width, height, (int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1)), cw, ch)))
    return out


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])


def read_clip(path: Path) -> list[np.ndarray]:
    from realtime.io.media.decode import VideoFile

    with VideoFile(path) as v:
        return [np.ascontiguousarray(d.image[..., ::-1]) for d in v.frames()]


class Data:
    """Calibration and held-out content (RGB uint8 at one size) and style codes."""

    def __init__(self, media: Path, clip: list[np.ndarray], codes_seen: list[np.ndarray], codes_unseen: list[np.ndarray],
                 width: int, height: int, calibration: int, flicker_frames: int) -> None:
        half = len(clip) // 2
        n_photo = max(1, calibration * 3 // 10)
        n_frames = max(1, calibration - n_photo)
        step = max(1, half // n_frames)
        cal = crops(read_rgb(media / "content" / "chicago.jpg"), n_photo, width, height, 0)
        cal += [fit(f, width, height) for f in clip[:half:step][:n_frames]]
        # real style codes: the shipped styles, in turn
        self.calibration = [(im, codes_seen[i % len(codes_seen)]) for i, im in enumerate(cal)]
        held = crops(read_rgb(media / "content" / "stata.jpg"), 4, width, height, 5)
        held += [fit(f, width, height) for f in clip[half + 30::(len(clip) - half - 30) // 6][:6]]
        self.held_out = held
        self.codes = codes_seen + codes_unseen
        self.seen = len(codes_seen)
        start = half + (len(clip) - half - flicker_frames) // 2
        self.flicker = [fit(f, width, height) for f in clip[start:start + flicker_frames]]


# -- measuring -------------------------------------------------------------------------------------

def infer(compiled: Any, frame: np.ndarray, code: np.ndarray) -> np.ndarray:
    out = compiled([frame[None], code.reshape(1, 1, 1, -1)])
    return np.asarray(out[compiled.output(0)])[0]


def timings(models: dict[str, Any], frame: np.ndarray, code: np.ndarray, rounds: int, per_round: int) -> dict[str, float]:
    """Median ms per frame of each model, from ``rounds`` interleaved rounds of ``per_round`` runs."""
    times: dict[str, list[float]] = {k: [] for k in models}
    for m in models.values():
        for _ in range(3):
            infer(m, frame, code)
    order = list(models)
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            for _ in range(per_round):
                t = time.perf_counter()
                infer(models[name], frame, code)
                times[name].append(time.perf_counter() - t)
    return {k: 1000 * float(np.median(v)) for k, v in times.items()}


def quality(models: dict[str, Any], data: Data) -> dict[str, dict]:
    """PSNR of each model's held-out outputs against float32's: all styles, seen, unseen, worst style."""
    from realtime.effects.metrics import psnr

    outs = {k: [[infer(m, im, c) for im in data.held_out] for c in data.codes] for k, m in models.items()}
    ref = outs["float32"]
    res = {}
    for k, per_style in outs.items():
        if k == "float32":
            continue
        flat = lambda styles: [o for s in styles for o in s]  # noqa: E731
        by_style = [psnr(per_style[j], ref[j]) for j in range(len(data.codes))]
        res[k] = {"psnr_db": psnr(flat(per_style), flat(ref)),
                  "psnr_seen_styles_db": psnr(flat(per_style[:data.seen]), flat(ref[:data.seen])),
                  "psnr_unseen_styles_db": psnr(flat(per_style[data.seen:]), flat(ref[data.seen:])),
                  "psnr_worst_style_db": min(by_style)}
    return res


def flicker(models: dict[str, Any], data: Data, codes: list[np.ndarray]) -> dict[str, list[float]]:
    """Warping error of each model on the consecutive held-out frames, one per style code, and the
    source's own (the floor)."""
    from realtime.effects.metrics import ConsistencyMeter

    per_style: dict[str, list[float]] = {k: [] for k in ["source", *models]}
    for code in codes:
        meter = ConsistencyMeter()
        for frame in data.flicker:
            meter.add(frame, {"source": frame, **{k: infer(m, frame, code) for k, m in models.items()}})
        for k in per_style:
            per_style[k].append(meter.result(k).warping_error)
    return per_style


# -- main ------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="384x384,684x384")
    ap.add_argument("--threads", type=int, default=2, help="inference threads")
    ap.add_argument("--pin", default="", help="run on these CPUs only, e.g. 0,1")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS, help="quantization settings, or all: "
                    + ", ".join(settings()))
    ap.add_argument("--calibration", type=int, default=100, help="calibration samples (frame, style code)")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds")
    ap.add_argument("--per-round", type=int, default=3, help="runs of each variant per round")
    ap.add_argument("--flicker-frames", type=int, default=30, help="consecutive held-out frames for the warping error")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(ROOT.parent / "shared" / "models"))
    ap.add_argument("--media", default=str(MEDIA))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("nncf").setLevel(logging.ERROR)
    if args.pin:
        os.sched_setaffinity(0, {int(c) for c in args.pin.split(",")})
    t_start = time.perf_counter()
    try:
        import nncf
    except ImportError:
        raise SystemExit("benchmarks/int8.py needs NNCF (pip install nncf; not a dependency of the project)") from None
    import openvino as ov

    from realtime.io.images import read_image
    from realtime.model.backends.base import cpu_bf16
    from realtime.model.backends.openvino_backend import OpenVINOStylizer
    from realtime.model.backends.openvino_graph import CODE_INPUT, CONTENT_INPUT
    from realtime.model.files import ModelStore

    table = settings()
    chosen = list(table) if args.settings == "all" else [s.strip() for s in args.settings.split(",") if s.strip()]
    bad = [s for s in chosen if s not in table]
    if bad:
        raise SystemExit(f"unknown settings {bad}; known: {', '.join(table)}")
    media = Path(args.media)
    with tempfile.TemporaryDirectory(prefix="int8-") as tmp:
        store = ModelStore(Path(tmp), args.model_dir, auto_download=False)
        transfer_path, prediction_path = store.path("fp16_transfer"), store.path("int8_prediction")
    stylizer = OpenVINOStylizer(prediction_path, transfer_path, threads=args.threads)  # its style codes
    seen_styles = sorted((ROOT / "styles").glob("*.jpg"))
    unseen_styles = sorted((media / "styles").glob("*.jpg"))
    codes_seen = [stylizer.style_code(read_image(p)) for p in seen_styles]
    codes_unseen = [stylizer.style_code(read_image(p)) for p in unseen_styles]
    clip = read_clip(media / "content" / "fox.mp4")

    core = ov.Core()
    has_bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") and bool(cpu_bf16())
    base = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": args.threads}
    env = bench.environment()
    env["machine"] = bench.machine_name(cpu_only=True)
    env.update({"cpu": core.get_property("CPU", "FULL_DEVICE_NAME").strip(), "bf16": cpu_bf16() or "none",
                "int8": "AMX-INT8" if cpu_bf16() == "amx" else ("AVX512-VNNI" if "avx512_vnni" in Path("/proc/cpuinfo").read_text() else "no VNNI"),
                "openvino": ov.get_version().split("-")[0], "nncf": nncf.__version__, "threads": args.threads,
                "cpus_used": len(os.sched_getaffinity(0))})
    log.info("%s: bf16 %s, int8 via %s; OpenVINO %s, NNCF %s; %d threads", env["cpu"], env["bf16"], env["int8"],
             env["openvino"], env["nncf"], args.threads)
    speed, quant, flick, verdicts, tried = [], [], [], [], []
    for w, h in bench.parse_sizes(args.sizes):
        data = Data(media, clip, codes_seen, codes_unseen, w, h, args.calibration, args.flicker_frames)
        dataset = nncf.Dataset(data.calibration, lambda s: {CONTENT_INPUT: s[0][None].astype(np.float32) / 255,
                                                            CODE_INPUT: s[1].reshape(1, 1, 1, -1)})
        models = {"float32": core.compile_model(uint8_io(transfer_graph(core, transfer_path, 1, h, w)), "CPU",
                                                {**base, "INFERENCE_PRECISION_HINT": "f32"})}
        if has_bf16:
            models["bf16"] = core.compile_model(uint8_io(transfer_graph(core, transfer_path, 1, h, w)), "CPU",
                                                {**base, "INFERENCE_PRECISION_HINT": "bf16"})
        for name in chosen:
            model = transfer_graph(core, transfer_path, 1, h, w)
            t0 = time.perf_counter()
            quantized = nncf.quantize(model, dataset, subset_size=len(data.calibration), **table[name][1](model))
            seconds = time.perf_counter() - t0
            fq = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops())
            models[f"int8 {name}"] = core.compile_model(uint8_io(quantized.clone()), "CPU", {**base, "INFERENCE_PRECISION_HINT": "f32"})
            if has_bf16:  # what is left in float runs bf16
                models[f"int8 {name} + bf16"] = core.compile_model(uint8_io(quantized), "CPU",
                                                                   {**base, "INFERENCE_PRECISION_HINT": "bf16"})
            if (w, h) == bench.parse_sizes(args.sizes)[0]:
                tried.append({"setting": name, "what": table[name][0]})
            log.info("%dx%d: quantized '%s' in %.0f s (%d calibration samples, %d FakeQuantize)", w, h, name, seconds,
                     len(data.calibration), fq)
        ms = timings(models, data.held_out[0], codes_seen[0], args.rounds, args.per_round)
        best_float = min(v for k, v in ms.items() if not k.startswith("int8"))
        q = quality(models, data)
        styles = {"waves": codes_seen[-1], "the scream": codes_unseen[0]}
        per_style = flicker(models, data, list(styles.values()))
        # each style counts alike: mean and worst of the per-style ratios to float32's
        ratio = {k: [x / f for x, f in zip(v, per_style["float32"])] for k, v in per_style.items()}
        size = f"{w}x{h}"
        for k, v in ms.items():
            speed.append({"size": size, "variant": k, "ms": round(v, 1), "vs_float32": round(ms["float32"] / v, 2),
                          "vs_best_float": round(best_float / v, 2)})
        for k, r in q.items():
            quant.append({"size": size, "variant": k, **{m: round(x, 2) for m, x in r.items()}})
        for k, v in per_style.items():
            flick.append({"size": size, "variant": k,
                          **{f"warp_x1000 {st}": round(1000 * x, 3) for st, x in zip(styles, v)},
                          "vs_float32_mean": round(float(np.mean(ratio[k])), 3), "vs_float32_worst": round(max(ratio[k]), 3)})
        for k in ms:
            if not k.startswith("int8"):
                continue
            speedup, db, more = best_float / ms[k], q[k]["psnr_db"], float(np.mean(ratio[k]))
            ok = speedup >= MIN_SPEEDUP and db >= MIN_PSNR_DB and more <= MAX_FLICKER_RATIO
            verdicts.append({"size": size, "variant": k, "speedup_vs_best_float": round(speedup, 2), "psnr_db": round(db, 2),
                             "flicker_vs_float32": round(more, 3), "passes": ok})
        for k in ms:
            qk = q.get(k, {})
            log.info("%-9s %-30s %6.1f ms  %5.2fx best float  PSNR %5s dB (seen %5s, unseen %5s, worst %5s)  flicker %.3fx",
                     size, k, ms[k], best_float / ms[k], f"{qk['psnr_db']:.1f}" if qk else "-",
                     f"{qk['psnr_seen_styles_db']:.1f}" if qk else "-", f"{qk['psnr_unseen_styles_db']:.1f}" if qk else "-",
                     f"{qk['psnr_worst_style_db']:.1f}" if qk else "-", float(np.mean(ratio[k])))
        log.info("%s: warping error x1000 of float32 %s; the source's own (floor) %s", size,
                 ", ".join(f"{st} {1000 * x:.3f}" for st, x in zip(styles, per_style["float32"])),
                 ", ".join(f"{1000 * x:.3f}" for x in per_style["source"]))
    print(f"\n{'size':9} {'variant':32} {'x best float':>12} {'PSNR dB':>8} {'flicker':>8}  passes")
    for v in verdicts:
        print(f"{v['size']:9} {v['variant']:32} {v['speedup_vs_best_float']:>12.2f} {v['psnr_db']:>8.2f} {v['flicker_vs_float32']:>8.3f}  {v['passes']}")
    passing = sorted({v["variant"] for v in verdicts if v["passes"]}
                     - {v["variant"] for v in verdicts if not v["passes"]})
    decision = (f"offer int8 ({', '.join(passing)} passes at every size)" if passing
                else "leave int8 out: no setting passes at every size")
    print(f"decision: {decision}  (rule: >= {MIN_SPEEDUP}x best of float32/bf16, >= {MIN_PSNR_DB} dB, "
          f"warping error <= {MAX_FLICKER_RATIO}x float32's)")
    data_out = {"env": env, "rule": f">= {MIN_SPEEDUP}x the best of float32/bf16, >= {MIN_PSNR_DB} dB PSNR from float32, "
                                    f"warping error <= {MAX_FLICKER_RATIO}x float32's (mean over the styles)",
                "decision": decision,
                "note": f"{env['cpus_used']} CPUs, possibly shared with other jobs: ms are medians of interleaved rounds, "
                        "compare them within one run only",
                "calibration_samples": args.calibration, "settings": tried, "speed": speed,
                "psnr_vs_float32": quant, "flicker": flick, "verdict": verdicts,
                "seconds": round(time.perf_counter() - t_start)}
    tag = "int8" + (f"-{args.tag}" if args.tag else "")
    _, m = bench.write_results(tag, data_out, Path(args.out))
    log.info("wrote %s (%.0f s)", m, time.perf_counter() - t_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
