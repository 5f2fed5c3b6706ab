"""Everything issue #26 asks of a GPU, in one command that fits a lent GPU machine's minutes.

    python benchmarks/gpu.py [--out DIR] [--budget-s 420] [--xla auto|never]    # on the GPU machine
    python benchmarks/gpu.py --device cpu --quick --out /tmp/x                   # smoke test, < 60 s

Prepared by ``benchmarks/gpu_prepare.sh`` (PyAV's wheel, the model files, style codes, a real clip
in ``.dev/gpu/``; its header has the exact device command).  Steps, each held to its own time
budget, the results written after every measurement (a timeout still leaves data):

1. network: the torch backend alone, per size (1280x720, 1920x1080, 384x384) x batch (1, 4, 8,
   16) x precision (fp16, bf16, float32) x CUDA graphs on/off: fps through ``stylize`` (uint8 up,
   network, uint8 down: what a job sees) and GPU-only fps (CUDA events around the network on the
   whole batch, already on the GPU; a CUDA graph of it where graphs are on);
2. video: ``stylize video``'s own pipeline in-process (``VideoStylizer`` with the config's
   defaults: batch, stability, x264 preset, sound kept) at 720p and 1080p in and out (inference at
   the source's short side), 300 frames each; its per-step profile and the GPU's utilisation while
   it runs; and a naive baseline in the same run (PyAV decode -> the same stylizer one frame at a
   time -> encode, one thread);
3. live: a 1280x720 clip played as a 60 fps camera (``keep_pace``, headless, inference at 720)
   through the live pipeline (``realtime.bench.bench_live``): shown fps, p50/p95 capture-to-display
   latency, against the naive one-thread loop;
4. quality: fp16 and bf16 against float32 on the carried clip's frames and generated pictures:
   PSNR and warping error (``realtime.effects.metrics``);
5. onnx: the onnx backend on ONNX Runtime's CUDA provider where ``onnxruntime-gpu`` is there,
   else the CPU provider at one small size (said so in the results): its float32 graph and its
   float16 one (norms in float32), speed and error against torch float32;
6. profile: where a video frame's time goes (from step 2) and the GPU's utilisation.

Then a table of the issue's targets beside the figures.  Writes ``$OUT/<gpu-name>-gpu.{json,md}``
(``--out``, default ``$OUT`` or ``benchmarks/results``).  Needs PyTorch, PyAV, OpenCV, numpy,
PyYAML; never TensorFlow, OpenVINO or the web server (the GPU machine has none of them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # video_speed (shared clip frames), however this file is run

from realtime import bench  # noqa: E402

log = logging.getLogger("gpu")
DEV = ROOT / ".dev" / "gpu"
PREDICTION = "magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite"
TRANSFER = "magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite"
PRECISIONS = {"mixed": "fp16", "bf16": "bf16", "float32": "float32"}
#: (what, target, how it is judged); the figures are filled in from the steps' results.
TARGETS = [
    ("network alone 1280x720, batched, half precision", ">= 1000 fps"),
    ("network alone 1920x1080, batched, half precision", ">= 450 fps"),
    ("stylize video 1080p end to end", ">= 150 fps"),
    ("live 720p @ 60 fps: shown", "60 fps (>= 57)"),
    ("live 720p @ 60 fps: p95 latency", "<= 40 ms"),
    ("half precision vs float32: PSNR", ">= 35 dB"),
    ("half precision vs float32: warping error", "within 2%"),
]


class Run:
    """The results so far, the clock, and the writer: ``save`` after every measurement."""

    def __init__(self, args: argparse.Namespace, env: dict) -> None:
        self.args = args
        self.t0 = time.monotonic()
        self.end = self.t0 + args.budget_s
        self.data: dict[str, Any] = {"env": env, "args": {k: str(v) for k, v in vars(args).items()}, "steps": {}}
        self._lock = threading.Lock()

    def left(self) -> float:
        return self.end - time.monotonic()

    def save(self) -> None:
        with self._lock:
            try:
                self.data["elapsed_s"] = round(time.monotonic() - self.t0, 1)
                self.data["targets"] = targets(self.data)
                write(json.loads(json.dumps(self.data, default=str)), Path(self.args.out))
            except Exception as exc:  # noqa: BLE001 - a failed save must not end the run
                log.warning("could not save the results: %s", exc)

    def step(self, name: str, budget_s: float, fn: Callable[[float], Any]) -> None:
        """Run a step with its deadline (its budget, never past the whole run's); its error is
        recorded, not raised, so the next step still runs."""
        start = time.monotonic()
        deadline = min(start + budget_s, self.end)
        log.info("== %s (budget %.0f s, %.0f s left in all)", name, budget_s, self.left())
        rec = self.data["steps"].setdefault(name, {})
        try:
            if deadline - start < 3:
                rec["skipped"] = "no time left in the run's budget"
            else:
                fn(deadline)
        except Exception as exc:  # noqa: BLE001 - recorded with its last lines
            rec["error"] = f"{type(exc).__name__}: {exc}"
            rec["traceback"] = traceback.format_exc().splitlines()[-6:]
            log.error("%s failed: %s", name, rec["error"])
        rec["seconds"] = round(time.monotonic() - start, 1)
        self.save()


def _table(rows: list[dict]) -> list[str]:
    """A markdown table of the rows' plain columns (nested figures stay in the JSON)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k, v in r.items() if k not in cols and not isinstance(v, (dict, list))]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return lines + [""]


def write(data: dict, folder: Path) -> tuple[Path, Path]:
    """``<folder>/<machine>-gpu.json`` (everything) and ``.md`` (the targets, then each step's tables)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = data["env"]
    stem = f"{env['machine']}-gpu"
    jpath, mpath = folder / f"{stem}.json", folder / f"{stem}.md"
    tmp = jpath.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, jpath)
    lines = [f"# GPU benchmark on {env['machine']} ({env['date']})", "",
             f"{env.get('gpu') or 'no GPU'}; PyTorch {env['torch']} (CUDA {env['cuda']}); Python {env['python']}; "
             f"{env['cpu_count']} CPUs; {data.get('elapsed_s')} s; inputs: {data.get('inputs')}", "",
             "## Targets (issue #26)", "", *_table(data.get("targets", []))]
    for name, rec in data.get("steps", {}).items():
        lines += [f"## {name}", ""]
        for k, v in rec.items():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                lines += [f"{k}:", "", *_table(v)]
            elif isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
                lines += [f"{k}:", "", *_table([{"": kk, **vv} for kk, vv in v.items()])]
            elif isinstance(v, dict):
                lines += [f"- {k}: " + ", ".join(f"{kk} {vv}" for kk, vv in v.items())]
            else:
                lines.append(f"- {k}: {v}")
        if name == "profile":
            for r in rec.get("video", []):
                lines += ["", f"video {r['clip']} stability {r['stability']} ({r['fps']} fps): ms per frame per step", "",
                          *_table([r["ms_per_frame"]]), "thread CPU s: " + str(r["thread_cpu_s"]),
                          "GPU utilisation: " + str(r["gpu_util"])]
        lines.append("")
    tmp = mpath.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, mpath)
    return jpath, mpath


def environment(device: str) -> dict:
    from importlib import metadata

    import torch

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    cuda = device == "cuda"
    machine = bench.machine_name(cpu_only=not cuda)
    return {
        "machine": machine,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tensorflow": version("tensorflow"),  # (write_results' header names it)
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cpu_count": os.cpu_count(),
        "av": version("av"),
        "onnxruntime": version("onnxruntime"),
        "onnxruntime_gpu": version("onnxruntime-gpu"),
        "triton": version("triton"),
    }


# -- inputs ---------------------------------------------------------------------------------------------

def load_codes(path: Path, n: int = 3) -> tuple[dict[str, np.ndarray], str]:
    """Style codes precomputed by gpu_prepare.sh (OpenVINO's, as every backend uses), else random
    codes of the same spread (said in the results)."""
    if path.is_file():
        with np.load(path) as z:
            codes = {k: np.asarray(z[k], np.float32).reshape(100) for k in sorted(z.files)}
        if codes:
            return codes, f"{path.name}: {', '.join(codes)}"
    rng = np.random.default_rng(0)
    return {f"random{i}": rng.normal(0, 0.5, 100).astype(np.float32) for i in range(n)}, "random (no codes file)"


def real_frames(clip: Optional[Path], width: int, height: int, count: int) -> list[np.ndarray]:
    """RGB frames of the carried clip, centre-cropped to the aspect and scaled; the moving test
    pattern where there is no clip (``video_speed.source_frames``)."""
    from video_speed import source_frames  # this folder is on sys.path when run as a script

    return source_frames(width, height, count, clip=clip)


def make_clip(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """H.264 (veryfast: the benchmark's own minutes) + a 330 Hz sine as AAC, at ``fps``."""
    from video_speed import write_clip_of

    return write_clip_of(path, frames, fps, {"preset": "veryfast", "crf": "20"})


# -- 1. the network alone ------------------------------------------------------------------------------

def gpu_only_ms(stylizer: Any, frames: np.ndarray, codes: np.ndarray, graphs: bool, seconds: float) -> float:
    """ms per call of the network on the whole batch already on the device (uint8 in and out, the
    conversions included): CUDA events around replays of a CUDA graph of it (graphs on) or eager
    calls; on the CPU the wall clock."""
    import torch

    dev = stylizer.dev
    with torch.inference_mode():
        x = torch.from_numpy(frames).to(dev)
        c = torch.from_numpy(codes).to(dev)

        def fn() -> Any:
            return stylizer.net.forward_uint8(x, c)

        if dev.type != "cuda":
            return statistics.median(bench.timed(fn, seconds, min_runs=3, warmup=1)) * 1000
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            fn()
            fn()
        torch.cuda.current_stream(dev).wait_stream(side)
        run = fn
        graph = None
        if graphs:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                fn()
            run = graph.replay
        run()
        torch.cuda.synchronize(dev)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        one = max(start.elapsed_time(end), 1e-3)
        reps = int(max(3, min(500, seconds * 1000 / one)))
        start.record()
        for _ in range(reps):
            run()
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end) / reps
        del graph
        return ms


def step_network(run: Run, ctx: dict, deadline: float) -> None:
    from realtime.model.backends.torch_backend import TorchStylizer

    rec = run.data["steps"]["network"]
    rows = rec.setdefault("rows", [])
    cuda = ctx["device"] == "cuda"
    quick = run.args.quick
    sizes = [(96, 64)] if quick else [(1280, 720), (1920, 1080), (384, 384)]
    batches = [1, 2] if quick else [1, 4, 8, 16]
    precisions = list(PRECISIONS) if cuda else ["float32"]
    graph_modes = [True, False] if cuda else [False]
    if not cuda:
        rec["note"] = "CPU: float32 only (the torch backend runs float32 on the CPU), no CUDA graphs, wall-clock 'GPU-only'"
    seconds = 0.1 if quick else 0.5
    rng = np.random.default_rng(0)
    combos = [(p, g) for p in precisions for g in graph_modes]
    for n, (prec, graphs) in enumerate(combos):
        # an even share of what is left for each remaining (precision, graphs) pass
        share_end = time.monotonic() + max(0.0, deadline - time.monotonic()) / (len(combos) - n)
        st = TorchStylizer(ctx["models"] / PREDICTION, ctx["models"] / TRANSFER, device=ctx["device_arg"],
                           precision=prec, jit=False, fixed_size=graphs, cache_dir=ctx["tmp"])
        try:
            for w, h in sizes:
                for b in batches:
                    row = {"precision": PRECISIONS[prec], "graphs": "on" if graphs else "off", "size": f"{w}x{h}", "batch": b}
                    if time.monotonic() > share_end:
                        row["skipped"] = "budget"
                        rows.append(row)
                        continue
                    frames = rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8)
                    codes = np.stack([ctx["code"]] * b)
                    st.warmup(w, h, b)
                    t = bench.timed(lambda: st.stylize(frames, codes), seconds, min_runs=3, warmup=0)
                    fps = b / statistics.median(t)
                    gms = gpu_only_ms(st, frames, codes, graphs, seconds / 2)
                    row["submit_fps"] = round(bench.submitted_fps(st, frames, codes, seconds), 1)  # as video feeds it
                    row.update(stylize_fps=round(fps, 1), stylize_ms_per_frame=round(1000 / fps, 3),
                               gpu_only_fps=round(b * 1000 / gms, 1), gpu_only_ms_per_frame=round(gms / b, 3),
                               gflops_gpu_only=round(bench.transfer_gflop(w, h) * b * 1000 / gms, 1))
                    rows.append(row)
                    log.info("%-7s graphs %-3s %4dx%-4d b%-2d: stylize %8.1f fps, submit %8.1f fps, GPU-only %8.1f fps", PRECISIONS[prec],
                             row["graphs"], w, h, b, fps, row["submit_fps"], row["gpu_only_fps"])
                    run.save()
        finally:
            st.close()
    if cuda:
        rec["memory_peak_gb"] = round(_torch().cuda.max_memory_allocated() / 2**30, 2)


def _torch() -> Any:
    import torch

    return torch


# -- 2. stylize video, and 6. its profile ------------------------------------------------------------------

class GpuSampler:
    """The GPU's utilisation while a run goes: ``torch.cuda.utilization()`` (needs pynvml), else
    ``nvidia-smi``, else not available (said so)."""

    def __init__(self, cuda: bool) -> None:
        self.samples: list[float] = []
        self.source = "not available (no GPU)" if not cuda else ""
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._proc: Optional[subprocess.Popen] = None
        if cuda:
            try:
                _torch().cuda.utilization()
                self.source = "torch.cuda.utilization (pynvml)"
            except Exception:  # noqa: BLE001 - pynvml missing
                try:
                    subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                   capture_output=True, timeout=5, check=True)
                    self.source = "nvidia-smi (pynvml not installed)"
                except (OSError, subprocess.SubprocessError):
                    self.source = "not available (no pynvml, no nvidia-smi)"

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.samples.append(float(_torch().cuda.utilization()))
            except Exception:  # noqa: BLE001
                pass

    def _read_smi(self) -> None:
        """One ``nvidia-smi -lms 200`` for the whole run (not a process per sample: the pipeline's
        CPU threads are what is measured)."""
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append(float(line.split()[0]))
            except (ValueError, IndexError):
                continue

    def __enter__(self) -> GpuSampler:
        if self.source.startswith("torch"):
            self._thread = threading.Thread(target=self._poll, name="gpu-sampler", daemon=True)
        elif self.source.startswith("nvidia"):
            self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                           "-i", "0", "-lms", "200"], stdout=subprocess.PIPE, text=True)
            self._thread = threading.Thread(target=self._read_smi, name="gpu-sampler", daemon=True)
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(2)

    def summary(self) -> dict:
        if not self.samples:
            return {"source": self.source, "mean_pct": None}
        return {"source": self.source, "mean_pct": round(float(np.mean(self.samples)), 1),
                "p50_pct": round(float(np.median(self.samples)), 1), "samples": len(self.samples)}


def naive_video(stylizer: Any, code: np.ndarray, clip: Path, out: Path, deadline: float) -> dict:
    """decode -> stylize one frame -> encode, one thread (PyAV both ways, no sound, no resize: the
    inference size is the source's), stopped at the deadline."""
    import av

    n = 0
    t0 = time.perf_counter()
    with av.open(str(clip)) as inp, av.open(str(out), "w") as outc:
        src = inp.streams.video[0]
        vs = outc.add_stream("libx264", rate=src.average_rate or 30, options={"preset": "superfast", "crf": "16"})
        vs.width, vs.height, vs.pix_fmt = src.codec_context.width, src.codec_context.height, "yuv420p"
        for frame in inp.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            styled = stylizer.stylize(rgb[None], code)[0]
            vf = av.VideoFrame.from_ndarray(styled, format="rgb24")
            vf.pts = n
            for p in vs.encode(vf):
                outc.mux(p)
            n += 1
            if time.monotonic() > deadline:
                break
        for p in vs.encode(None):
            outc.mux(p)
    wall = time.perf_counter() - t0
    return {"pipeline": "naive: PyAV decode -> the same stylizer, one frame -> PyAV encode, one thread, no sound",
            "frames": n, "seconds": round(wall, 2), "fps": round(n / wall, 1)}


def step_video(run: Run, ctx: dict, deadline: float) -> None:
    import dataclasses

    from realtime.pipeline.video import VideoOptions, VideoStylizer

    rec = run.data["steps"]["video"]
    rows = rec.setdefault("rows", [])
    engine, cfg = ctx["engine"](), ctx["cfg"]
    rec["stylizer"] = engine.stylizer.device
    code = ctx["code"]
    # The config's default, then off (what the stability filter costs), then the default with its
    # full-size warp and blend on the CPU (what moving them onto the GPU gained; torch on a GPU only).
    stabilities: list[tuple[Optional[float], str]] = [(None, "auto"), (0.0, "auto")]
    dev = engine.stylizer.torch_device
    if dev is not None and dev.type != "cpu" and cfg.engine.stability_device == "auto":
        stabilities.append((None, "cpu"))
    from realtime.io.media.h264 import nvenc_problem

    rec["nvenc"] = nvenc_problem() or "opens: measured (default stability)"  # the H100/H200 have no NVENC
    if not nvenc_problem():
        stabilities.append((None, "nvenc"))
    for (w, h), clip in ctx["video_clips"].items():
        for stability, where in stabilities:
            extra = {"cpu": ", carry on the CPU", "nvenc": ", NVENC"}.get(where, "")
            label = ("default" if stability is None else f"{stability:g}") + extra
            named = f"default ({cfg.video.stability:g})" if stability is None else f"{stability:g}"
            row: dict[str, Any] = {"clip": f"{w}x{h}", "stability": named + extra}
            if time.monotonic() > deadline - 5:
                row["skipped"] = "budget"
                rows.append(row)
                continue
            opts = VideoOptions.from_config(cfg, audio=True)
            if stability is not None:
                opts = dataclasses.replace(opts, stability=stability)
            if where == "nvenc":
                opts = dataclasses.replace(opts, encoder="nvenc")
            eng = engine if where != "cpu" else dataclasses.replace(
                engine, cfg=dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, stability_device=where)))
            t = time.perf_counter()  # the first second: compile, cuDNN's kernels, CUDA graphs at this size
            VideoStylizer(eng, [code], dataclasses.replace(opts, end=1.0)).run(clip, ctx["tmp"] / "warm.mp4", overwrite=True)
            warm_s = time.perf_counter() - t
            job = VideoStylizer(eng, [code], opts)
            with GpuSampler(ctx["device"] == "cuda") as gpu:
                t = time.perf_counter()
                res = job.run(clip, ctx["tmp"] / "out.mp4", overwrite=True)
                wall = time.perf_counter() - t
            row.update(inference=f"{res.inference_size[0]}x{res.inference_size[1]}", frames=res.frames,
                       fps=round(res.frames / wall, 1), wall_s=round(wall, 2), warm_run_s=round(warm_s, 1),
                       audio=res.audio_mode, gpu_util=gpu.summary(), profile_ms_per_frame=res.profile,
                       thread_cpu_s=res.thread_cpu_s, process_cpu_s=round(res.process_cpu_s, 2))
            log.info("video %s stability %s: %.1f fps end to end (%d frames, audio %s), GPU %s", row["clip"], label,
                     row["fps"], res.frames, res.audio_mode, row["gpu_util"].get("mean_pct"))
            log.info("  profile ms/frame: %s", res.profile)
            rows.append(row)
            run.save()
        if time.monotonic() < deadline - 5:
            naive = naive_video(engine.stylizer, code, clip, ctx["tmp"] / "naive.mp4",
                                min(deadline, time.monotonic() + (5 if run.args.quick else 30)))
            ours = [r for r in rows if r["clip"] == f"{w}x{h}" and r.get("fps")]
            naive.update(clip=f"{w}x{h}", ratio_ours_default=round(ours[0]["fps"] / naive["fps"], 2) if ours else None)
            rec.setdefault("naive", []).append(naive)
            log.info("naive %s: %.1f fps (ours %.2fx)", naive["clip"], naive["fps"], naive["ratio_ours_default"] or 0)
            run.save()
    prof = run.data["steps"].setdefault("profile", {})
    done = [r for r in rows if r.get("profile_ms_per_frame")]
    prof["video"] = [{"clip": r["clip"], "stability": r["stability"], "fps": r["fps"],
                      "ms_per_frame": r["profile_ms_per_frame"], "thread_cpu_s": r["thread_cpu_s"],
                      "gpu_util": r["gpu_util"]} for r in done]
    prof["note"] = ("ms per frame per step, summed on each thread (waits included), from the pipeline's own Profile; "
                    "GPU utilisation sampled every 0.2 s during the timed run")


# -- 3. live ------------------------------------------------------------------------------------------------

def step_live(run: Run, ctx: dict, deadline: float) -> None:
    rec = run.data["steps"]["live"]
    engine = ctx["engine"]()
    frames = 20 if run.args.quick else 600
    side = ctx["live_side"]
    engine.stylizer.warmup(*ctx["live_size"], 1)
    res = bench.bench_live(engine.stylizer, engine.stylizer, ctx["code"], ctx["live_clip"], side, frames)
    res["naive"]["pipeline"] = "naive one-thread loop (read, the same stylizer, resize back), unpaced"
    rec.update(source=f"{ctx['live_size'][0]}x{ctx['live_size'][1]} @ {ctx['live_fps']} fps (keep_pace, loop, headless)",
               inference_side=side, stylizer=engine.stylizer.device, **res)
    log.info("live: %.1f fps shown, p50 %.1f ms, p95 %.1f ms, %d dropped; naive %.1f fps", res["ours"]["displayed_fps"],
             res["ours"]["p50_latency_ms"], res["ours"]["p95_latency_ms"], res["ours"]["dropped"], res["naive"]["displayed_fps"])


# -- 4. quality ------------------------------------------------------------------------------------------------

def step_quality(run: Run, ctx: dict, deadline: float) -> None:
    import cv2

    from realtime.effects.metrics import ConsistencyMeter
    from realtime.io.synthetic import pattern_frame
    from realtime.model.backends.torch_backend import TorchStylizer

    rec = run.data["steps"]["quality"]
    cuda = ctx["device"] == "cuda"
    w, h = (160, 96) if run.args.quick else (1280, 720)
    n = 6 if run.args.quick else 40
    clip_frames = real_frames(ctx["real_clip"], w, h, n)
    generated = [cv2.cvtColor(pattern_frame(i * 7, w, h), cv2.COLOR_BGR2RGB) for i in range(4 if run.args.quick else 8)]
    precs = list(PRECISIONS) if cuda else ["float32"]
    outs: dict[str, dict[str, list[np.ndarray]]] = {"clip": {}, "generated": {}}
    for prec in precs:
        st = TorchStylizer(ctx["models"] / PREDICTION, ctx["models"] / TRANSFER, device=ctx["device_arg"], precision=prec,
                           fixed_size=False, cache_dir=ctx["tmp"])
        try:
            for name, frames in (("clip", clip_frames), ("generated", generated)):
                got = []
                for i in range(0, len(frames), 4):
                    got += list(st.stylize(np.stack(frames[i:i + 4]), ctx["code"]))
                outs[name][PRECISIONS[prec]] = got
        finally:
            st.close()
        if time.monotonic() > deadline:
            rec["note"] = "budget: not every precision ran"
            break
    meter = ConsistencyMeter()
    names = list(outs["clip"])
    for i, src in enumerate(clip_frames):
        meter.add(src, {k: outs["clip"][k][i] for k in names}, tuple((k, "float32") for k in names if k != "float32"))
    ref = meter.result("float32")
    rows = []
    for k in names:
        r = meter.result(k, "float32" if k != "float32" else None)
        gen = [np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2) / 255.0**2
               for a, b in zip(outs["generated"][k], outs["generated"]["float32"])]
        gen_psnr = float("inf") if not np.mean(gen) else float(10 * np.log10(1.0 / np.mean(gen)))
        rows.append({"precision": k, "clip_psnr_db": None if r.psnr_db is None else round(r.psnr_db, 2),
                     "generated_psnr_db": round(gen_psnr, 2) if np.isfinite(gen_psnr) else "inf",
                     "warping_error_x1e3": round(r.warping_error * 1000, 4),
                     "warping_vs_float32_pct": round(100 * (r.warping_error / ref.warping_error - 1), 2) if ref.warping_error else None})
        log.info("quality %s: PSNR clip %s dB, generated %s dB, warping error %.4f e-3", k, rows[-1]["clip_psnr_db"],
                 rows[-1]["generated_psnr_db"], r.warping_error * 1000)
    rec.update(size=f"{w}x{h}", clip_frames=n, clip=str(ctx["real_clip"].name) if ctx["real_clip"] else "test pattern",
               generated_frames=len(generated), rows=rows)
    if not cuda:
        rec["note"] = "CPU: float32 only (half precisions are GPU precisions in the torch backend)"


# -- 5. onnx ------------------------------------------------------------------------------------------------------

def step_onnx(run: Run, ctx: dict, deadline: float) -> None:
    """The onnx backend's float32 graph and its float16 one (``--precision mixed``: float16 weights
    and convolutions, the instance norms in float32; what ``auto`` runs on a GPU provider), side by
    side per size and batch (``x_float32``: the float16 row's speed-up), and each against the torch
    backend in float32 on the same real frame."""
    rec = run.data["steps"]["onnx"]
    try:
        import onnxruntime as ort
    except ImportError:
        rec["skipped"] = "onnxruntime is not installed"
        return
    from realtime.model.backends.onnx_backend import OnnxStylizer

    listed = ort.get_available_providers()
    gpu = ctx["device"] == "cuda" and "CUDAExecutionProvider" in listed
    rec["providers_listed"] = listed
    if gpu:
        sizes, batches, device = [(1280, 720), (1920, 1080)], [1, 4], "gpu"
    else:
        sizes, batches, device = [(64, 64) if run.args.quick else (384, 384)], [1], "cpu"
        rec["note"] = ("CPU provider only, one small size: this ONNX Runtime has no CUDA provider "
                       "(the CPU build; onnxruntime-gpu brings it)") if ctx["device"] == "cuda" else "CPU run"
        rec["note"] += "; the float16 graph on the CPU provider is cast back to float32 op by op (no speed-up there)"
    rows = rec.setdefault("rows", [])
    rng = np.random.default_rng(1)
    torch_ref, sts = None, {}
    try:
        for precision in ("float32", "mixed"):
            sts[precision] = st = OnnxStylizer(ctx["models"] / PREDICTION, ctx["models"] / TRANSFER, device=device, threads=0,
                                               precision=precision, cache_dir=ctx["tmp"])
            rec.setdefault("stylizers", {})[precision] = st.device
        rec["stylizer"] = sts["float32"].device
        for w, h in sizes:  # the two graphs side by side per size and batch (a short budget cuts both alike)
            for b in batches:
                frames = rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8)
                for precision, st in sts.items():
                    row = {"precision": precision, "size": f"{w}x{h}", "batch": b}
                    if time.monotonic() > deadline:
                        rows.append({**row, "skipped": "budget"})
                        continue
                    t = bench.timed(lambda: st.stylize(frames, ctx["code"]), 0.2 if run.args.quick else 1.0, min_runs=3,
                                    warmup=1)
                    fps = b / statistics.median(t)
                    rows.append({**row, "fps": round(fps, 1), "ms_per_frame": round(1000 / fps, 2)})
                    if precision == "mixed" and rows[-2].get("fps"):
                        rows[-1]["x_float32"] = round(fps / rows[-2]["fps"], 2)
                    log.info("onnx %s %dx%d b%d: %.1f fps", st.device, w, h, b, fps)
                    run.save()
        # numerics against the torch backend in float32 on the same device kind
        from realtime.model.backends.torch_backend import TorchStylizer

        w, h = sizes[0]
        x = np.stack(real_frames(ctx["real_clip"], w, h, 1)).astype(np.float32) / 255
        torch_ref = TorchStylizer(ctx["models"] / PREDICTION, ctx["models"] / TRANSFER, device=ctx["device_arg"],
                                  precision="float32", fixed_size=False, cache_dir=ctx["tmp"])
        ref = torch_ref.transfer(x, ctx["code"])
        for precision, st in sts.items():
            d = np.abs(st.transfer(x, ctx["code"]) - ref)
            key = "vs_torch_float32" + ("" if precision == "float32" else f"_{precision}")
            rec[f"max_abs_{key}"], rec[f"mean_abs_{key}"] = float(d.max()), float(d.mean())
    finally:
        for st in sts.values():
            st.close()
        if torch_ref is not None:
            torch_ref.close()


# -- the targets -----------------------------------------------------------------------------------------------

def targets(data: dict) -> list[dict]:
    steps = data.get("steps", {})
    net = [r for r in steps.get("network", {}).get("rows", []) if r.get("stylize_fps") and r["precision"] != "float32"]

    def best(size: str) -> tuple[Optional[float], str]:
        rows = [r for r in net if r["size"] == size]
        if not rows:
            return None, "not measured"
        fed = lambda r: max(r["stylize_fps"], r.get("submit_fps") or 0)  # noqa: E731 - either way the host feeds it
        r = max(rows, key=fed)
        g = max(rows, key=lambda r: r["gpu_only_fps"])
        how = "submit (one batch in flight)" if (r.get("submit_fps") or 0) > r["stylize_fps"] else "stylize"
        return fed(r), (f"{fed(r)} fps via {how} ({r['precision']}, batch {r['batch']}, graphs {r['graphs']}); "
                        f"GPU-only {g['gpu_only_fps']} fps ({g['precision']}, batch {g['batch']}, graphs {g['graphs']})")

    video = [r for r in steps.get("video", {}).get("rows", []) if r.get("clip") == "1920x1080" and r.get("fps")]
    live = steps.get("live", {}).get("ours", {})
    qual = [r for r in steps.get("quality", {}).get("rows", []) if r["precision"] != "float32"]
    out = []
    v720, t720 = best("1280x720")
    v1080, t1080 = best("1920x1080")
    vid = max(video, key=lambda r: r["fps"]) if video else None
    figures = [
        (v720, t720, v720 is not None and v720 >= 1000),
        (v1080, t1080, v1080 is not None and v1080 >= 450),
        (vid and vid["fps"], f"{vid['fps']} fps (stability {vid['stability']}); " + ", ".join(f"{r['stability']}: {r['fps']}" for r in video) if vid else "not measured",
         bool(vid) and vid["fps"] >= 150),
        (live.get("displayed_fps"), f"{live['displayed_fps']} fps shown" if live else "not measured", bool(live) and live["displayed_fps"] >= 57),
        (live.get("p95_latency_ms"), f"{live['p95_latency_ms']} ms (p50 {live['p50_latency_ms']} ms)" if live else "not measured",
         bool(live) and live["p95_latency_ms"] <= 40),
        (None, "; ".join(f"{r['precision']}: clip {r['clip_psnr_db']} dB, generated {r['generated_psnr_db']} dB" for r in qual) or "not measured",
         bool(qual) and all((r["clip_psnr_db"] or 0) >= 35 for r in qual)),
        (None, "; ".join(f"{r['precision']}: {r['warping_vs_float32_pct']:+.2f}%" for r in qual if r["warping_vs_float32_pct"] is not None) or "not measured",
         bool(qual) and all(r["warping_vs_float32_pct"] is not None and abs(r["warping_vs_float32_pct"]) <= 2 for r in qual)),
    ]
    for (what, target), (_, text, ok) in zip(TARGETS, figures):
        out.append({"what": what, "target": target, "measured": text, "met": "yes" if ok else ("no" if text != "not measured" else "-")})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="gpu", help="gpu (the GPU machine) or cpu (the smoke test)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few frames (the CPU smoke test)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="the whole run (steps get shares); default 7 min")
    ap.add_argument("--xla", default="auto", choices=("auto", "never"), help="torch.compile for video and live (auto: as stylize does)")
    ap.add_argument("--codes", default=str(DEV / "codes.npz"), help="style codes (gpu_prepare.sh computes them)")
    ap.add_argument("--clip", default=str(DEV / "clip.mp4"), help="a real clip for the quality step and the clips")
    ap.add_argument("--model-dir", default=os.environ.get("REALTIME_MODEL_DIR") or str(DEV))
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--steps", default="network,video,live,quality,onnx", help="which steps, in order")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("realtime").setLevel(logging.INFO)
    import torch

    cuda = args.device.startswith("gpu")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("gpu.py: PyTorch sees no CUDA GPU (use --device cpu --quick for the smoke test)")
    run = Run(args, environment("cuda" if cuda else "cpu"))
    quick = args.quick
    # the whole run ends by itself even if a step hangs: what was saved stays
    watchdog = threading.Timer(args.budget_s + 45, lambda: (run.save(), log.error("gpu.py: over budget, stopping"), os._exit(3)))
    watchdog.daemon = True
    watchdog.start()
    codes, codes_note = load_codes(Path(args.codes))
    clip_path = Path(args.clip)
    real_clip = clip_path if clip_path.is_file() else None
    run.data["inputs"] = {"codes": codes_note, "clip": str(real_clip.name) if real_clip else "none: the moving test pattern",
                          "models": args.model_dir}
    models = Path(args.model_dir)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        from realtime.config import load_config

        cfg = load_config(None, {"models.model_dir": str(models), "models.auto_download": False, "models.cache_dir": str(tmp),
                                 "engine.backend": "torch", "engine.device": "gpu" if cuda else "cpu", "engine.xla": args.xla})
        engines: dict[str, Any] = {}

        def engine() -> Any:
            """The engine ``stylize video`` and ``stylize live`` would open (the factory, the config's
            precision and torch.compile), made once; its codes come from the codes file."""
            if "e" not in engines:
                from realtime.model.backends.factory import create_stylizer
                from realtime.model.engine import Engine
                from realtime.model.styles import StyleBank, StyleCodeCache

                st = create_stylizer(cfg, fixed_size=True)
                engines["e"] = Engine(cfg, st, StyleBank(st, StyleCodeCache(tmp / "style_codes")))
            return engines["e"]

        t = time.perf_counter()
        vsizes = [(240, 136), (160, 96)] if quick else [(1920, 1080), (1280, 720)]  # 1080p first: the target
        nframes = 8 if quick else 300
        video_clips = {}
        steps = args.steps.split(",")
        if "video" in steps:
            for w, h in vsizes:
                video_clips[(w, h)] = make_clip(tmp / f"clip_{w}x{h}.mp4", real_frames(real_clip, w, h, nframes), 30)
        live_size = (160, 96) if quick else (1280, 720)
        live_clip = make_clip(tmp / "live.mp4", real_frames(real_clip, *live_size, 20 if quick else 300), 60) if "live" in steps else None
        run.data["inputs"]["clips_s"] = round(time.perf_counter() - t, 1)
        ctx = {"device": "cuda" if cuda else "cpu", "device_arg": "gpu" if cuda else "cpu", "models": models, "tmp": tmp,
               "code": next(iter(codes.values())), "cfg": cfg, "engine": engine, "video_clips": video_clips,
               "live_clip": live_clip, "live_size": live_size, "live_side": min(live_size), "live_fps": 60, "real_clip": real_clip}
        budgets = {"network": 120, "video": 130, "live": 35, "quality": 35, "onnx": 40}
        scale = (args.budget_s - run.data["inputs"]["clips_s"]) / 420.0
        fns = {"network": step_network, "video": step_video, "live": step_live, "quality": step_quality, "onnx": step_onnx}
        for name in steps:
            run.step(name, budgets[name] * max(scale, 0.05), lambda d, fn=fns[name]: fn(run, ctx, d))
        if "e" in engines:
            engines["e"].stylizer.close()
    watchdog.cancel()
    run.save()
    print()
    print(f"{'what':52} {'target':>12}  {'met':>4}  measured")
    for t_ in run.data["targets"]:
        print(f"{t_['what']:52} {t_['target']:>12}  {t_['met']:>4}  {t_['measured']}")
    print(f"\nwrote {Path(args.out) / (run.data['env']['machine'] + '-gpu.json')} and .md in {run.data['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
