"""``onnx`` backend: the transfer network on ONNX Runtime, with the best execution provider present.

Why: ONNX Runtime reaches GPUs that PyTorch does not serve well.  On Windows ``onnxruntime-directml``
runs on any DirectX 12 GPU (AMD, Intel, NVIDIA): ``pip install 'realtime[directml]'`` is how a
Windows user with an AMD or Intel GPU gets one.  ``onnxruntime-gpu`` brings CUDA (and TensorRT
where its libraries are there), and macOS's ``onnxruntime`` has CoreML.  The CPU provider runs
everywhere, and CI tests its numerics against the other backends.

The graph is written from the fp16 TF Lite file's weights with ``onnx.helper`` (see
:mod:`.onnx_graph`: no PyTorch, no TensorFlow, at export or at run time), with batch, height and
width dynamic and the uint8 conversions inside it, so one session serves every size.  It is written
once per weights file and graph version into the cache folder (``<cache>/onnx/``, atomically) and
read from there on every later start.

Providers, in order of preference, among those ``onnxruntime.get_available_providers()`` lists:
TensorRT, CUDA, DirectML, CoreML, CPU (:data:`PROVIDERS`).  ``--device cpu`` takes the CPU alone;
``--device gpu[:N]`` needs one of the others (the Nth device) and says which package brings one
where none is there; after the session is made, the providers it really uses are checked (a CUDA
provider whose libraries are missing falls back to the CPU: that is an error for ``--device gpu``,
and said once for ``auto``).

Precision (:func:`pick_precision`): ``--precision auto`` runs the float16 graph (weights and
convolutions in float16, every instance norm in float32, as ``torch`` does: see :mod:`.onnx_graph`)
where a GPU provider is asked for (TensorRT, CUDA, DirectML, CoreML: half precision is about 2x on
GPUs, the network being memory-bound), and float32 on the CPU provider; where the GPU provider then
does not start, it goes back to the float32 graph.  ``mixed`` asks for float16 anywhere (on the CPU
provider too: ONNX Runtime runs it there by casting most of it back to float32, so it is for tests,
not speed, and said once); ``float32`` opts out.  TensorRT gets ``trt_fp16_enable`` with the float16
graph (without it TensorRT builds float32 kernels; with it TensorRT is free to pick float16 for the
float32 norms too: to be checked on a GPU with TensorRT).  The precision is part of the cached file's
name.  The speed-up is not measured yet: ``benchmarks/gpu.py`` measures both graphs side by side.

A video on a GPU provider is submitted with ``run_async`` (:meth:`OnnxStylizer.submit`): the GPU
works on batch n while the host converts batch n+1, instead of waiting for it between batches
(runs still start one after the other: DirectML allows no two at once on a session).  On
the CPU provider it runs synchronously: there the async run takes a worker of ONNX Runtime's own
pool and was slower (640x272, batch 4, 2-core VM: 14.5 against 16.4 fps).

Style codes come from the CPU (:class:`.cpu_styles.CPUStyles`: OpenVINO's int8 style network, the
``openvino`` backend's own, so the codes and their cache entries are shared), once per style.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...backends_table import device_index, device_kind
from ...errors import UserError
from ..files import sha256_file
from .base import Pending, Stylizer, batch_codes, check_frames
from .cpu_styles import CPUStyles, StylesOnCPU

log = logging.getLogger(__name__)

#: Execution providers in order of preference (only those ONNX Runtime lists are asked for).
PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider",
             "CoreMLExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = PROVIDERS[:-1]
#: ``--precision`` -> the graph's compute dtype where asked for explicitly (``bf16`` is not offered:
#: the factory warns and passes float32; the graph's half precision is float16).
GRAPH_DTYPES = {"float32": "float32", "mixed": "float16"}
#: How each provider is named in the start-up line.
PROVIDER_WORDS = {"TensorrtExecutionProvider": "TensorRT", "CUDAExecutionProvider": "CUDA",
                  "DmlExecutionProvider": "DirectML", "CoreMLExecutionProvider": "CoreML",
                  "CPUExecutionProvider": "CPU"}


def gpu_package_hint(platform: str = sys.platform) -> str:
    """How to get a GPU provider on this platform (the onnxruntime packages exclude each other)."""
    if platform == "win32":
        return "pip uninstall onnxruntime, then pip install 'realtime[directml]' (DirectML: any DirectX 12 GPU)"
    if platform == "darwin":
        return "pip install 'realtime[onnx]' (macOS's onnxruntime has CoreML), or --backend torch (MPS)"
    return "pip uninstall onnxruntime, then pip install 'realtime[onnx-gpu]' (CUDA), or --backend torch"


def pick_providers(device: str, available: list[str], platform: str = sys.platform) -> list[str]:
    """The providers to ask for, best first, always ending with the CPU: ``cpu`` takes the CPU
    alone, ``gpu``/``gpu:N`` needs a GPU provider (a one-line error naming what to install),
    ``auto`` takes what is there."""
    kind = device_kind(device)
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    gpus = [p for p in GPU_PROVIDERS if p in available]
    if kind == "gpu" and not gpus:
        raise UserError(f"--device {device}: ONNX Runtime here has no GPU provider (it lists "
                        f"{', '.join(PROVIDER_WORDS.get(p, p) for p in available) or 'none'}): {gpu_package_hint(platform)}")
    return [*gpus, "CPUExecutionProvider"]


def pick_precision(precision: str, providers: list[str]) -> str:
    """The graph's compute dtype (``float32`` or ``float16``) for ``--precision`` and the providers
    asked for (:func:`pick_providers`' list): ``auto`` is float16 where a GPU provider is among them,
    float32 on the CPU provider alone; ``mixed`` is float16 and ``float32`` float32 anywhere; any other
    value (``bf16``, which the factory has already warned about) runs float32."""
    if precision == "auto":
        return "float16" if any(p in GPU_PROVIDERS for p in providers) else "float32"
    return GRAPH_DTYPES.get(precision, "float32")


def _provider_options(provider: str, index: Optional[int], cache_dir: Optional[Path], dtype: str = "float32") -> dict[str, Any]:
    """Per-provider options: the device index for ``gpu:N``; TensorRT's engine cache (an engine is
    built per input shape, which takes long: the cache keeps it across runs), and its fp16 kernels
    for the float16 graph."""
    opts: dict[str, Any] = {}
    if index is not None and provider in ("TensorrtExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider"):
        opts["device_id"] = index
    if provider == "TensorrtExecutionProvider" and cache_dir is not None:
        opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir / "onnx" / "tensorrt"))
    if provider == "TensorrtExecutionProvider" and dtype == "float16":
        opts["trt_fp16_enable"] = True
    return opts


def model_file(cache_dir: Path, transfer_path: Path, uint8: bool, dtype: str = "float32") -> Path:
    """Where the built graph is cached: keyed on the weights file (name and sha256), the graph
    version and formulation, the precision (``fp32``/``fp16``) and the input kind."""
    from .onnx_graph import FORMULATION, GRAPH_VERSION

    sha = sha256_file(transfer_path)[:16]
    prec = "fp16" if dtype == "float16" else "fp32"
    return cache_dir / "onnx" / f"{transfer_path.stem}-{sha}-{FORMULATION}-g{GRAPH_VERSION}-{prec}-{'u8' if uint8 else 'f32'}.onnx"


class OnnxStylizer(StylesOnCPU, Stylizer):
    """The transfer network on ONNX Runtime; style codes on the CPU (OpenVINO or TF Lite)."""

    name = "onnx"

    def __init__(
        self,
        prediction_path: Path,
        transfer_path: Path,
        device: str = "auto",
        threads: int = 0,
        precision: str = "auto",
        cache_dir: Optional[Path] = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("--backend onnx needs ONNX Runtime, which is not installed (pip install 'realtime[onnx]')") from None
        self._ort = ort
        self.threads = threads or os.cpu_count() or 1
        self._device_arg = device
        self._transfer_path = transfer_path
        self._cache_dir = cache_dir
        self.providers = pick_providers(device, list(ort.get_available_providers()))
        self.dtype = pick_precision(precision, self.providers)
        self._styles = CPUStyles(prediction_path, self.threads, cache_dir, "onnx")
        self._sessions: dict[bool, Any] = {}
        self.built: list[Path] = []  # graph files written by this instance (the tests' view of the cache)
        self._running: Optional[_AsyncRun] = None  # the last batch submitted asynchronously
        self._session(True)  # the frame path now: a provider that cannot start is said at start-up
        used = self._sessions[True].get_providers()
        if used == ["CPUExecutionProvider"] and self.providers != used:
            # a GPU provider did not start (said once by _make_session): the CPU from now on, and
            # auto's float16 (a GPU's choice) back to float32
            self.providers = ["CPUExecutionProvider"]
            if precision == "auto" and self.dtype != "float32":
                self.dtype = "float32"
                self._sessions.clear()
                self._session(True)
        if self.dtype == "float16" and used == ["CPUExecutionProvider"]:
            log.warning("--precision %s: ONNX Runtime's CPU provider runs the float16 graph by casting most of it back to "
                        "float32 (no faster; --precision float32 or auto for the float32 graph)", precision)
        #: What runs: ``mixed`` (the float16 graph, norms in float32) or ``float32``.
        self.precision = "mixed" if self.dtype == "float16" else "float32"
        self._device = self._describe(used)

    # -- sessions --------------------------------------------------------------------------------

    def _session(self, uint8: bool) -> Any:
        s = self._sessions.get(uint8)
        if s is None:
            s = self._sessions[uint8] = self._make_session(uint8)
        return s

    def _make_session(self, uint8: bool) -> Any:
        ort = self._ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.log_severity_level = 3  # errors only: ORT's warnings (e.g. nodes left on the CPU) are not the user's
        if "DmlExecutionProvider" in self.providers:  # DirectML takes neither memory patterns nor parallel execution
            opts.enable_mem_pattern = False
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        index = device_index(self._device_arg)
        providers = [(p, _provider_options(p, index, self._cache_dir, self.dtype)) for p in self.providers]
        source = self._graph(uint8)
        try:
            session = ort.InferenceSession(source, opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - a damaged cached file: write it again, once
            if not isinstance(source, str):
                raise
            log.warning("onnx: cannot load the cached graph %s (%s); building it again", source, str(exc).splitlines()[0])
            session = ort.InferenceSession(self._graph(uint8, rebuild=True), opts, providers=providers)
        used = session.get_providers()
        wanted = [p for p in self.providers if p != "CPUExecutionProvider"]
        if wanted and not any(p in used for p in wanted):
            if device_kind(self._device_arg) == "gpu":
                raise UserError(f"--device {self._device_arg}: ONNX Runtime could not start "
                                f"{' or '.join(PROVIDER_WORDS[p] for p in wanted)} (its libraries or driver are "
                                "missing?); it would run on the CPU")
            if uint8:
                log.warning("onnx: %s did not start; running on the CPU", " and ".join(PROVIDER_WORDS[p] for p in wanted))
        return session

    def _graph(self, uint8: bool, rebuild: bool = False) -> Any:
        """The graph: a cached file's path (written once, atomically), or bytes where there is no
        cache folder."""
        path = model_file(self._cache_dir, self._transfer_path, uint8, self.dtype) if self._cache_dir is not None else None
        if path is not None and path.is_file() and not rebuild:
            return str(path)
        data = self._build(uint8)
        if path is None:
            return data
        from ...io.paths import atomic_write_bytes

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data, overwrite=True)
        except Exception as exc:  # noqa: BLE001 - a read-only cache only costs the build next time
            log.warning("onnx: cannot cache the graph in %s (%s)", path.parent, exc)
            return data
        self.built.append(path)
        log.debug("onnx: wrote %s", path)
        return str(path)

    def _build(self, uint8: bool) -> bytes:
        try:
            import onnx  # noqa: F401 - only to write the graph: a cached one runs without it
        except ImportError:
            raise UserError("--backend onnx writes its graph once with the onnx package, which is not installed "
                            "(pip install 'realtime[onnx]')") from None
        from .onnx_graph import build_model
        from .transfer_net import TransferWeights

        try:
            weights = TransferWeights.from_tflite(self._transfer_path)
        except (KeyError, ValueError) as exc:
            raise UserError(f"transfer model {self._transfer_path.name} is not the Magenta transfer network: {exc}") from None
        return build_model(weights, uint8, dtype=self.dtype).SerializeToString()

    def _describe(self, used: list[str]) -> str:
        version = self._ort.__version__
        first = used[0] if used else "CPUExecutionProvider"
        what = PROVIDER_WORDS.get(first, first)
        prec = "float16, norms float32" if self.dtype == "float16" else "float32"
        if first == "CPUExecutionProvider":
            return f"CPU via ONNX Runtime {version} ({self.threads} threads, {prec})"
        index = device_index(self._device_arg)
        return f"GPU ({what}{f' device {index}' if index is not None else ''}) via ONNX Runtime {version} ({prec})"

    @property
    def device(self) -> str:
        return self._device

    # -- transfer --------------------------------------------------------------------------------

    def _run(self, uint8: bool, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        from .onnx_graph import CODES, FRAMES

        b = images.shape[0]
        feed = {FRAMES: np.ascontiguousarray(images), CODES: batch_codes(codes, b)}
        return self._session(uint8).run(None, feed)[0]

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        check_frames(images)
        return self._run(False, images, codes)

    def stylize(self, frames: np.ndarray, codes: np.ndarray) -> np.ndarray:
        check_frames(frames)
        self._wait_running()
        return self._run(True, np.asarray(frames, np.uint8), codes)

    def submit(self, frames: np.ndarray, codes: np.ndarray) -> Pending:
        if not self.asynchronous:
            return super().submit(frames, codes)
        from .onnx_graph import CODES, FRAMES

        check_frames(frames)
        work = _AsyncRun({FRAMES: np.ascontiguousarray(frames, np.uint8), CODES: batch_codes(codes, frames.shape[0])})
        self._wait_running()  # one run at a time on the session (DirectML allows no other)
        self._session(True).run_async(None, work.feed, _AsyncRun.done, work)
        self._running = work
        return work

    def _wait_running(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.wait()

    @property
    def asynchronous(self) -> bool:
        """Whether :meth:`submit` returns before the batch is done: where a GPU provider runs it
        (``run_async`` also needs two threads in the session's pool)."""
        return self.providers[0] != "CPUExecutionProvider" and self.threads >= 2

    def close(self) -> None:
        self._sessions.clear()


class _AsyncRun(Pending):
    """A batch ONNX Runtime is running on one of its threads; the callback hands back the result.
    It holds the inputs until then (older ONNX Runtimes do not keep ``run_async``'s inputs alive).
    No timeout: a new input shape's first run may build TensorRT's engine for minutes, and the
    synchronous path waits as long."""

    def __init__(self, feed: dict[str, np.ndarray]) -> None:
        self.feed: Optional[dict[str, np.ndarray]] = feed
        self._event = threading.Event()
        self._out: Optional[np.ndarray] = None
        self._error = ""

    @staticmethod
    def done(outputs: Any, work: "_AsyncRun", error: str) -> None:
        if error:
            work._error = error
        else:
            work._out = outputs[0]
        work.feed = None
        work._event.set()

    def wait(self) -> None:
        self._event.wait()

    def result(self) -> np.ndarray:
        self.wait()
        if self._error or self._out is None:
            raise RuntimeError(f"ONNX Runtime failed: {self._error or 'no output'}")
        return self._out
