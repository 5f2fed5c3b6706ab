"""Measurements behind ``stylize bench`` and ``benchmarks/``: model throughput, live pipeline,
video files — each against a naive baseline measured in the same run, reported as a ratio.

Why figures come with the machine's own matrix-multiply rate: a 2-core VM and an H100 differ by
1000x, so "ms per frame" means little without "what fraction of this machine did we use".
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from .backends_table import variant_names

log = logging.getLogger(__name__)

# (kernel, cin, cout, stride, resolution divisor of the output) of every conv of the transfer network
TRANSFER_CONVS = (
    (9, 3, 8, 1, 1), (3, 8, 16, 2, 2), (3, 16, 32, 2, 4),
    *[(3, 32, 32, 1, 4)] * 10,
    (3, 32, 16, 1, 2), (3, 16, 8, 1, 1), (9, 8, 3, 1, 1),
)


def transfer_gflop(width: int, height: int) -> float:
    """Convolution FLOPs (2 per multiply-add) of one frame: about 3.5 GFLOP at 384x384."""
    total = 0
    for k, ci, co, _, div in TRANSFER_CONVS:
        total += (height // div) * (width // div) * k * k * ci * co * 2
    return total / 1e9


def machine_name(cpu_only: bool = False) -> str:
    """A file-name-safe machine label: the GPU's name where there is one (unless ``cpu_only``),
    else the CPU model and cores, with ``-amx`` where the CPU has AMX (bf16 figures differ 3x)."""
    if not cpu_only:
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return re.sub(r"[^a-z0-9]+", "-", out.stdout.splitlines()[0].lower()).strip("-")
        except (OSError, subprocess.SubprocessError):
            pass
    from .model.backends.base import cpu_bf16

    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1]
                break
    except OSError:
        pass
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(.*?\)", "", model).lower()).strip("-")
    return f"cpu-{os.cpu_count()}core-{slug}" + ("-amx" if cpu_bf16() == "amx" else "")


def timed(fn: Callable[[], object], seconds: float, min_runs: int = 3, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times: list[float] = []
    t_end = time.perf_counter() + seconds
    while len(times) < min_runs or time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def submitted_fps(stylizer, frames: np.ndarray, codes: np.ndarray, seconds: float) -> float:
    """Frames a second through ``stylizer.submit`` as a video job feeds it (one batch in flight,
    the next submitted before this one is collected): the network's throughput with no gaps
    between batches.  The median of at least three spans of up to a second each."""
    for _ in range(3):  # compiled and warm (a CUDA graph is captured on a size's second and third calls)
        stylizer.submit(frames, codes).result()
    batch, rates = frames.shape[0], []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 3:
        n, t = batch, time.perf_counter()
        work = stylizer.submit(frames, codes)
        while time.perf_counter() - t < min(1.0, seconds / 3):
            nxt = stylizer.submit(frames, codes)
            work.result()
            work, n = nxt, n + batch
        work.result()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def matmul_gflops(seconds: float = 1.0, n: int = 2048) -> float:
    """This machine's float32 matrix-multiply rate through TensorFlow (the ceiling for convolutions)."""
    import tensorflow as tf

    a = tf.random.normal([n, n])
    mm = tf.function(lambda: tf.matmul(a, a))
    times = timed(lambda: mm().numpy(), seconds)
    return 2 * n**3 / statistics.median(times) / 1e9


@dataclass
class ModelResult:
    backend: str
    width: int
    height: int
    batch: int
    ms_per_frame: float
    fps: float
    gflops: float
    fraction_of_matmul: float


def bench_model(stylizer, backend: str, sizes: Sequence[tuple[int, int]], batches: Sequence[int], seconds: float, mm_rate: float) -> list[ModelResult]:
    """The network alone per size and batch: batch 1 as live runs it (``stylize``, one frame at a
    time), larger batches as a video file runs them (``submit``, one batch in flight)."""
    rng = np.random.default_rng(0)
    code = rng.normal(0, 0.5, 100).astype(np.float32)
    out = []
    for w, h in sizes:
        for b in batches:
            frames = rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8)
            if b > 1:  # batches are for video files: measured as a video feeds them (one in flight)
                ms = 1000 / submitted_fps(stylizer, frames, code, seconds)
            else:  # one frame at a time, as live runs it
                ms = statistics.median(timed(lambda frames=frames: stylizer.stylize(frames, code), seconds)) * 1000
            gf = transfer_gflop(w, h) / (ms / 1000)
            r = ModelResult(backend, w, h, b, round(ms, 2), round(1000 / ms, 1), round(gf, 1), round(gf / mm_rate, 3))
            log.info("%-12s %4dx%-4d batch %d: %7.2f ms/frame  %6.1f fps  %6.1f GFLOP/s  %4.0f%% of matmul",
                     backend, w, h, b, r.ms_per_frame, r.fps, r.gflops, 100 * r.fraction_of_matmul)
            out.append(r)
    return out


def environment() -> dict:
    try:
        import tensorflow as tf
    except ImportError:  # an OpenVINO-only box
        tf = None
    gpus = tf.config.list_physical_devices("GPU") if tf else []
    return {
        "machine": machine_name(),
        "cpu_count": os.cpu_count(),
        "gpu": [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus] if tf else [],
        "tensorflow": tf.__version__ if tf else "not installed",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_results(name: str, data: dict, folder: Path) -> tuple[Path, Path]:
    """``<folder>/<machine>-<name>.json`` and ``.md`` (a markdown table of every list of records)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{data['env']['machine']}-{name}"
    jpath, mpath = folder / f"{stem}.json", folder / f"{stem}.md"
    jpath.write_text(json.dumps(data, indent=2) + "\n")
    lines = [f"# {name} on {data['env']['machine']} ({data['env']['date']}, TF {data['env']['tensorflow']})", ""]
    for key, rows in data.items():
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            cols = list(rows[0])
            lines += [f"## {key}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
            lines.append("")
        elif not isinstance(rows, (list, dict)):
            lines.append(f"- {key}: {rows}")
    mpath.write_text("\n".join(lines) + "\n")
    return jpath, mpath


def parse_sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        w, h = item.lower().split("x")
        out.append((int(w), int(h)))
    return out


@dataclass(frozen=True)
class BenchJob:
    """What ``stylize bench`` measures (parsed and checked by the CLI layer)."""

    sizes: tuple[tuple[int, int], ...] = ((384, 384), (640, 480))
    batches: tuple[int, ...] = (1,)
    backends: tuple[str, ...] = ("openvino",)
    seconds: float = 2.0
    json: Optional[str] = None
    target_fps: float = 0.0  # > 0: the live governor's ladder too, and the size it would hold this rate at
    source: tuple[int, int] = (1280, 720)


MAX_SIDE = 8192  # 8K and then some; 100000x100000 ran into a 28 GiB allocation and a traceback


def variants_for(backend: Optional[str], precision: Optional[str]) -> list[str]:
    """The measured variants ``--backend``/``--precision`` name (``openvino`` + ``bf16``:
    ``openvino-bf16``); one line listing what exists when none does."""
    from .backends_table import variant_names
    from .errors import UserError

    backend = backend if backend and backend != "auto" else None
    precision = precision if precision and precision != "auto" else None

    def precision_of(name: str) -> str:
        return next((p for p in ("bf16", "mixed") if p in name.partition("-")[2]), "float32")

    from .backends_table import missing_modules

    names = [n for n in variant_names() if (backend is None or n.partition("-")[0] == backend)
             and (precision is None or precision_of(n) == precision)
             and (backend is not None or not missing_modules(n.partition("-")[0]))]  # alone: the installed ones
    if not names:
        raise UserError(f"stylize bench has no variant for --backend {backend or 'auto'} --precision {precision or 'auto'} "
                        f"(--backends takes {', '.join(variant_names())})")
    return names


def parse_bench_job(sizes: str, batches: str, backends: str, seconds: float, json_path: Optional[str],
                    target_fps: float = 0.0, source: str = "1280x720") -> BenchJob:
    from .errors import UserError

    try:
        size_list = parse_sizes(sizes)
        batch_list = [int(b) for b in batches.split(",")]
    except ValueError:
        raise UserError("--sizes is WxH[,WxH...] and --batches is N[,N...]") from None
    if any(w % 4 or h % 4 or w < 16 or h < 16 or w > MAX_SIDE or h > MAX_SIDE for w, h in size_list):
        raise UserError(f"benchmark sizes must be multiples of 4, from 16 to {MAX_SIDE} a side")
    if any(not 1 <= b <= 64 for b in batch_list):
        raise UserError("--batches must be 1..64")
    names = installed_variants() if backends.strip() == "installed" else tuple(n.strip() for n in backends.split(",") if n.strip())
    known = variant_names()
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise UserError(f"--backends takes installed or {', '.join(known)}; got {', '.join(bad) or 'nothing'}")
    if not (0.1 <= seconds <= 600) or seconds != seconds:
        raise UserError("--seconds must be 0.1..600")
    if not (0 <= target_fps <= 240):
        raise UserError("--target-fps must be 0..240")
    try:
        (src,) = parse_sizes(source)
    except ValueError:
        raise UserError("--source is WxH, e.g. 1280x720") from None
    return BenchJob(tuple(size_list), tuple(batch_list), names, seconds, json_path, target_fps, src)


def governor_ladder(stylizer, source: tuple[int, int], target_fps: float, seconds: float) -> dict:
    """The network's time at each rung of the live governor's ladder for a source of this size,
    and the rung the governor would hold ``target_fps`` at (the largest whose frames keep 95% of it)."""
    from .live.governor import DOWN_AT, ladder_below
    from .pipeline.stage import pick_inference_size

    w, h = source
    code = np.random.default_rng(0).normal(0, 0.5, 100).astype(np.float32)
    rows = []
    for side in ladder_below(min(384, w, h)):
        iw, ih = pick_inference_size(w, h, side)
        frames = np.random.default_rng(side).integers(0, 255, (1, ih, iw, 3), dtype=np.uint8)
        stylizer.stylize(frames, code)  # compile this size first, as the show does once
        ms = statistics.median(timed(lambda frames=frames: stylizer.stylize(frames, code), seconds)) * 1000
        rows.append({"side": side, "inference": f"{iw}x{ih}", "ms": round(ms, 1)})
    budget_ms = 1000 / target_fps
    holds = [r for r in rows if r["ms"] <= budget_ms / DOWN_AT]  # the governor's "down" needs less than 95%
    choice = holds[0]["side"] if holds else rows[-1]["side"]
    return {"source": f"{w}x{h}", "target_fps": target_fps, "ladder": rows, "choice": choice}


def installed_variants() -> tuple[str, ...]:
    """``--backends installed``: every installed backend of the lite model at float32, and in
    bf16 where this CPU runs bf16 natively (AMX, AMD's AVX512-BF16) and the backend honours it
    (what ``--precision auto`` would run)."""
    from .backends_table import BACKENDS, FAST_BF16, missing_modules
    from .model.backends.base import cpu_bf16

    amx = cpu_bf16() in FAST_BF16
    out: list[str] = []
    for spec in BACKENDS.values():
        if spec.model == "lite" and not missing_modules(spec.name):
            cpu_bf16_too = amx and "bf16" in spec.precisions and not spec.probes_gpu  # torch's bf16 is a GPU precision
            out += [spec.name] + ([f"{spec.name}-bf16"] if cpu_bf16_too else [])
    return tuple(out)


def variant_config(cfg, name: str):
    """The config for a benchmark variant name such as ``tf-xla``, ``openvino-bf16`` or
    ``tflite-int8``: a measurement says what it measures, so the precision is never ``auto``."""
    import dataclasses

    backend, _, variant = name.partition("-")
    precision = next((p for p in ("bf16", "mixed") if p in variant), "float32")
    engine = dataclasses.replace(cfg.engine, backend=backend, xla="always" if "xla" in variant else "never",
                                 precision=precision)
    models = dataclasses.replace(cfg.models, transfer=variant) if backend == "tflite" and variant in ("fp16", "int8") else cfg.models
    return dataclasses.replace(cfg, engine=engine, models=models)


def run_bench(cfg, job: BenchJob) -> int:
    """``stylize bench``: model throughput of the chosen backends on this machine."""
    from .backends_table import BACKENDS, device_kind
    from .model.backends import create_stylizer

    sizes, batches = list(job.sizes), list(job.batches)
    mm = matmul_gflops()
    log.info("matrix multiply: %.0f GFLOP/s (float32, this machine)", mm)
    results: list[ModelResult] = []
    device = device_kind(cfg.engine.device)
    for name in job.backends:
        spec = BACKENDS[name.partition("-")[0]]
        if device != "auto" and device not in spec.devices:  # --device gpu: the CPU-only ones are left out
            log.info("%s: skipped (runs on %s, not %s)", name, ", ".join(spec.devices), device)
            continue
        stylizer = create_stylizer(variant_config(cfg, name))
        results += bench_model(stylizer, name, sizes, batches, job.seconds, mm)
    data = {"env": environment(), "matmul_gflops": round(mm, 1), "model": [asdict(r) for r in results]}
    print(f"{'backend':14} {'size':>9} {'batch':>5} {'ms/frame':>9} {'fps':>7} {'GFLOP/s':>8} {'of matmul':>9}")
    for r in results:
        print(f"{r.backend:14} {r.width:>4}x{r.height:<4} {r.batch:>5} {r.ms_per_frame:>9.2f} {r.fps:>7.1f} {r.gflops:>8.1f} {100 * r.fraction_of_matmul:>8.0f}%")
    if job.target_fps > 0:  # with the engine the show would run (the config's: auto unless told)
        stylizer = create_stylizer(cfg)
        data["governor"] = g = governor_ladder(stylizer, job.source, job.target_fps, job.seconds)
        g["backend"] = stylizer.name
        print(f"live governor, {stylizer.name}, source {g['source']}: " + ", ".join(f"{r['side']} {r['ms']:.0f} ms" for r in g["ladder"]))
        print(f"  would hold {job.target_fps:g} fps at short side {g['choice']}")
    if job.json:
        from .io.paths import atomic_write_bytes

        atomic_write_bytes(Path(job.json), (json.dumps(data, indent=2) + "\n").encode())
    return 0


# -- live pipeline ---------------------------------------------------------------------------------

def bench_live(stylizer, naive_stylizer, code: np.ndarray, clip: Path, short_side: int, frames: int) -> dict:
    """Our threaded pipeline vs a naive one-thread loop (TF Lite fp16, the tutorial recipe), both on
    the same clip paced at its own frame rate."""
    from .config import LiveConfig
    from .core.controller import Controller
    from .pipeline.stage import StylizeStage
    from .io.sources import FileSource
    from .live.app import LiveApp
    from .live.pipeline import LivePipeline

    src = FileSource(clip, loop=True, keep_pace=True)  # delivered like a camera: newest frame wins
    src.open()
    p = LivePipeline(src, StylizeStage(stylizer, short_side), Controller(["bench"]), [code])
    app = LiveApp(p, LiveConfig(headless=True, max_frames=frames))
    t0 = time.perf_counter()
    stats = app.run()
    wall = time.perf_counter() - t0
    ours = {
        "pipeline": "threaded (ours)",
        "displayed_fps": round(stats.shown / wall, 1),
        "p50_latency_ms": round(stats.latency_ms(50), 1),
        "p95_latency_ms": round(stats.latency_ms(95), 1),
        "dropped": p.dropped,
        "frames": stats.shown,
    }
    naive = bench_live_naive(naive_stylizer, code, clip, short_side, frames)
    return {"ours": ours, "naive": naive, "ratio_fps": round(ours["displayed_fps"] / max(naive["displayed_fps"], 1e-9), 2)}


def bench_live_naive(stylizer, code, clip: Path, short_side: int, frames: int) -> dict:
    """read (paced) -> stylize -> show, one thread: what a first attempt looks like."""
    import cv2

    from .io.images import resize
    from .pipeline.stage import pick_inference_size
    from .io.sources import FileSource

    src = FileSource(clip, loop=True)
    src.open()
    lat = []
    t0 = time.perf_counter()
    try:
        for _ in range(frames):
            img = src.read()
            t_cap = time.monotonic()
            h, w = img.shape[:2]
            size = pick_inference_size(w, h, short_side)
            out = stylizer.stylize(resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), size)[None], code)[0]
            cv2.cvtColor(resize(out, (w, h)), cv2.COLOR_RGB2BGR)
            lat.append(time.monotonic() - t_cap)
    finally:
        src.close()
    wall = time.perf_counter() - t0
    return {
        "pipeline": "naive one-thread loop (TF Lite fp16)",
        "displayed_fps": round(frames / wall, 1),
        "p50_latency_ms": round(float(np.percentile(lat, 50)) * 1000, 1),
        "p95_latency_ms": round(float(np.percentile(lat, 95)) * 1000, 1),
        "dropped": 0,
        "frames": frames,
    }


# -- video files -------------------------------------------------------------------------------------

def bench_video(engine, naive_stylizer, code: np.ndarray, clip: Path, out_dir: Path, short_side: int, batch: int) -> dict:
    """``stylize video``'s pipeline vs the naive loop (cv2 read -> TF Lite fp16 transfer of one
    frame -> cv2 write, one thread: what a first attempt looks like) at the same inference size."""
    import cv2

    from .io.images import resize
    from .pipeline.stage import pick_inference_size
    from .pipeline.video import VideoOptions, VideoStylizer

    t0 = time.perf_counter()
    res = VideoStylizer(engine, [code], VideoOptions(size=short_side, batch=batch)).run(clip, out_dir / "ours.mp4")
    ours_s = time.perf_counter() - t0

    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(out_dir / "naive.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    size = pick_inference_size(w, h, short_side)
    n = 0
    t0 = time.perf_counter()
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out = naive_stylizer.stylize(resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), size)[None], code)[0]
        writer.write(cv2.cvtColor(resize(out, (w, h)), cv2.COLOR_RGB2BGR))
        n += 1
    naive_s = time.perf_counter() - t0
    writer.release()
    cap.release()
    return {
        "ours": {"pipeline": f"decode / infer (batch {batch}) / encode threads, H.264 + audio", "frames": res.frames, "seconds": round(ours_s, 2), "fps": round(res.frames / ours_s, 1)},
        "naive": {"pipeline": "cv2 read -> TF Lite fp16 -> cv2 write (mp4v), one thread", "frames": n, "seconds": round(naive_s, 2), "fps": round(n / naive_s, 1)},
        "ratio_fps": round((res.frames / ours_s) / (n / naive_s), 2),
        "width": w, "height": h,
    }
