"""``openvino`` backend: both TF Lite networks on Intel's OpenVINO runtime, without TensorFlow.

Why: a process that never imports TensorFlow starts in a fraction of the time (OpenVINO imports in
about 0.1 s, reads and compiles both networks in about 0.3 s; TensorFlow's import alone is 1.7 s
here) and holds far less memory, which is what a single ``stylize image`` and small installation
boxes need.  It runs float32 and matches the ``tf`` backend within 4e-4 (the tests hold it to the
project's 2e-3).  ``--precision bf16`` runs the transfer network in bfloat16 where the CPU has it:
3.2-3.4x faster with AMX (a 16-core Xeon with AMX, 2-4 threads: 684x384 74 -> 22 ms), slower with
AVX512-BF16 alone (our 2-core CI VM: 0.8x).  So ``--precision auto`` (the default) picks it on
AMX only, and the start-up line says so; ``--precision float32`` opts out.  It is a lower
precision: 0.002 mean and 0.06-0.1 max abs from float32 on real photos, and on flat gradients,
where the network amplifies tiny differences into texture, other (equally plausible) texture.  The
style network always runs float32, so style codes do not depend on the transfer precision.

The transfer network is not run from the file's graph: it is built from the file's weights in the
fast space-to-depth form the ``tf`` backend uses (:mod:`.openvino_graph`; the file's graph spent 42%
of a frame in four full-resolution convolutions with 3-16 channels), one static [B,H,W,3] size at a
time with the uint8 -> float and float -> uint8 conversions inside the graph, and compiled (the
newest frame size kept compiled, see MAX_COMPILED; compiled blobs also go to OpenVINO's on-disk
cache, so the next start skips most of the compile).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...errors import UserError
from ...io.images import style_input
from .base import CODE_SIZE, Pending, Stylizer, batch_codes, check_frames, cpu_bf16
from .openvino_graph import build_fast_model, import_openvino
from .transfer_net import TransferWeights

log = logging.getLogger(__name__)

# Compiled transfer networks kept: one frame size (a new size drops the others: the live governor's
# moves took peak memory to 389 MB when three sizes stayed, 267 MB with one; a move back hits the
# on-disk cache), in up to two forms (batch sizes for ``stylize``, or the streams video submits to,
# which take any number of frames).
MAX_COMPILED = 2


def lean_malloc() -> None:
    """At most two malloc arenas: this backend is the one for small boxes (installations), and
    glibc's default (up to 8 per core, each keeping the freed frame buffers of the threads that used
    it) held memory for nothing.  Measured, live 720p at 384: 301 -> 295 MB peak, and faster, 7.2 ->
    8.0 fps shown (p95 latency 176 -> 156 ms).  Trimming freed memory as well (M_TRIM_THRESHOLD)
    reached 282 MB but cost 15% of the frame rate: not done.  A no-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def openvino_core(cache_dir: Optional[Path]) -> Any:
    """An OpenVINO ``Core`` with its compile cache in ``cache_dir/openvino`` (a read-only cache only
    costs compile time).  Raises ImportError where OpenVINO is not installed."""
    ov = import_openvino()
    core = ov.Core()
    if cache_dir is not None:
        try:
            (cache_dir / "openvino").mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(cache_dir / "openvino")})
        except OSError as exc:
            log.warning("cannot use the OpenVINO compile cache in %s: %s", cache_dir, exc)
    return core


class OpenVINOStylePredictor:
    """The int8 style network on OpenVINO's CPU plugin: style image -> 100-number code.

    Shared by the ``openvino`` backend and the GPU backends that take their codes from the CPU
    (``torch``): one implementation gives the same codes, so they share one id
    (:attr:`model_id`) and with it the on-disk code cache.  It always runs float32: codes are
    cached and shared whatever precision the transfer network runs in.  Compiled on first use:
    with the codes cached a show never needs it, and it would hold memory for nothing (small
    boxes).  Thread-safe: uploads (web thread) and the strength's content code (inference
    thread) meet here."""

    def __init__(self, path: Path, core: Any, threads: int = 0) -> None:
        self.path = path
        self._core = core
        self._config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                        "INFERENCE_NUM_THREADS": threads or os.cpu_count() or 1}
        self.compiled: Any = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        # OpenVINO's int8 kernels round a code one or two quantisation steps (0.02) differently
        # from TF Lite's, so its codes get their own cache entries.
        return "openvino:" + self.path.name

    def __call__(self, style_rgb: np.ndarray) -> np.ndarray:
        with self._lock:
            if self.compiled is None:
                self.compiled = self._core.compile_model(self._core.read_model(str(self.path)), "CPU", self._config)
            out = self.compiled([style_input(style_rgb)])
            return np.asarray(out[self.compiled.output(0)], np.float32).reshape(CODE_SIZE).copy()


class Streams:
    """A batch-1 transfer network compiled for throughput (OpenVINO's streams: on 2 cores, two
    single-threaded copies) and its infer requests, fed frames round robin.

    Why, for video files: one frame per core, side by side, keeps both cores busy without the
    per-layer handshakes of one frame on two threads, which stall whenever one of our own threads
    (decoder, stabiliser, x264) takes a core: measured on the 2-core VM at 640x272 (6 paired
    rounds), the network alone 50.7 -> 61.4 fps and steadier, the whole job 35.8 -> 43.3 fps.
    OpenVINO is told how many frames the caller keeps queued (two batches: the one in flight and
    the one being submitted), so a many-core CPU gets no more streams than there are frames for.
    Live keeps the latency network: a frame on one core would take twice as long to show."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        n = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.requests = [compiled.create_infer_request() for _ in range(n)]
        self.owner: list[Optional[tuple[StreamBatch, int]]] = [None] * n  # the frame each request is running
        self.next = 0

    def collect(self, k: int) -> None:
        """Wait for request ``k`` and copy its frame out (its output buffer is reused); an error
        is kept by the frame's batch and raised by its :meth:`StreamBatch.result`."""
        owner = self.owner[k]
        if owner is None:
            return
        self.owner[k] = None
        batch, i = owner
        req = self.requests[k]
        try:
            req.wait()
            batch.out[i] = req.get_output_tensor(0).data[0]
        except Exception as exc:  # noqa: BLE001 - handed to the batch's owner, raised there
            batch.error = batch.error or exc

    def submit(self, images: np.ndarray, codes: np.ndarray) -> "StreamBatch":
        """Start every frame (waiting only for a request to come free); OpenVINO copies the inputs."""
        batch = StreamBatch(self, np.empty_like(images))
        for i in range(images.shape[0]):
            k = self.next
            self.next = (k + 1) % len(self.requests)
            self.collect(k)
            self.requests[k].start_async([images[i:i + 1], codes[i:i + 1]])
            self.owner[k] = (batch, i)
            batch.used.append(k)
        return batch


class StreamBatch(Pending):
    """A batch whose frames run on :class:`Streams`' requests."""

    def __init__(self, streams: Streams, out: np.ndarray) -> None:
        self.streams, self.out = streams, out
        self.used: list[int] = []  # the requests its frames went to
        self.error: Optional[BaseException] = None

    def result(self) -> np.ndarray:
        for k in self.used:
            owner = self.streams.owner[k]
            if owner is not None and owner[0] is self:
                self.streams.collect(k)
        if self.error is not None:
            raise self.error
        return self.out


class OpenVINOStylizer(Stylizer):
    """Style prediction and transfer on OpenVINO's CPU plugin."""

    name = "openvino"

    def __init__(
        self,
        prediction_path: Path,
        transfer_path: Path,
        threads: int = 0,
        precision: str = "float32",
        cache_dir: Optional[Path] = None,
    ) -> None:
        try:
            ov = import_openvino()
        except ImportError:
            raise UserError("--backend openvino needs the OpenVINO runtime: pip install openvino") from None
        lean_malloc()
        self._ov = ov
        self._core = openvino_core(cache_dir)
        caps = self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if precision == "mixed":
            log.warning("--precision mixed is for GPUs; the openvino backend runs float32 (or --precision bf16)")
        has_bf16 = "BF16" in caps and bool(cpu_bf16())
        if precision == "bf16" and not has_bf16:
            log.warning("this CPU has no bfloat16 instructions (AMX or AVX512-BF16); running float32")
        self.precision = "bf16" if precision == "bf16" and has_bf16 else "float32"
        self.threads = threads or os.cpu_count() or 1
        self._config = {
            # float32 unless bf16 was asked for, or chosen by --precision auto on AMX (said at start-up)
            "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.threads,
            # Not pinned: the network always shares the cores with our own threads (capture,
            # display, decoding, stability, x264), and a thread pinned to a core another one
            # holds stalls its partner at every layer.  stylize video at 640x272 on 2 cores,
            # 10 rounds against the pinned default: 5-8% more frames a second, less CPU.
            "ENABLE_CPU_PINNING": False,
        }
        self._transfer_path = transfer_path
        self._weights: Optional[TransferWeights] = None  # read on the first compile
        self._predictor = OpenVINOStylePredictor(prediction_path, self._core, self.threads)
        # (uint8, batch, h, w) -> a compiled network, or (True, 0, h, w) -> its Streams
        self._compiled: "OrderedDict[tuple[bool, int, int, int], Any]" = OrderedDict()
        self._queued = 4  # frames a submitted batch holds (the streams are sized for two batches)
        cpu = self._core.get_property("CPU", "FULL_DEVICE_NAME")
        extra = ", bf16 (lower precision)" if self.precision == "bf16" else ""
        self._device = f"CPU {cpu.strip()} via OpenVINO {ov.get_version().split('-')[0]} ({self.threads} threads{extra})"

    @property
    def device(self) -> str:
        return self._device

    @property
    def style_model_id(self) -> str:
        return self._predictor.model_id

    def style_code(self, style_rgb: np.ndarray) -> np.ndarray:
        return self._predictor(style_rgb)

    # -- transfer ------------------------------------------------------------------------------

    def _model_for(self, uint8: bool, batch: int, height: int, width: int) -> Any:
        key = (uint8, batch, height, width)
        compiled = self._compiled.get(key)
        if compiled is not None:
            self._compiled.move_to_end(key)
            return compiled
        for other in [k for k in self._compiled if k[2:] != (height, width)]:  # room first: the compile is the peak
            del self._compiled[other]
        while len(self._compiled) >= MAX_COMPILED:
            self._compiled.popitem(last=False)
        if batch:
            compiled = self._core.compile_model(self._build(uint8, batch, height, width), "CPU", self._config)
            log.debug("openvino: compiled the transfer network for %dx%d batch %d", width, height, batch)
        else:
            config = {**self._config, "PERFORMANCE_HINT": "THROUGHPUT", "PERFORMANCE_HINT_NUM_REQUESTS": 2 * self._queued}
            compiled = Streams(self._core.compile_model(self._build(True, 1, height, width), "CPU", config))
            log.debug("openvino: compiled the transfer network for %dx%d as %d streams", width, height, len(compiled.requests))
        self._compiled[key] = compiled
        return compiled

    def _build(self, uint8: bool, batch: int, height: int, width: int) -> Any:
        """The transfer graph for one static size (uint8 in and out if asked), built from the
        weights in the fast space-to-depth form (see :mod:`.openvino_graph`: 1.45x the file's
        graph at 592x252 here)."""
        if self._weights is None:
            try:
                self._weights = TransferWeights.from_tflite(self._transfer_path)
            except (KeyError, ValueError) as exc:
                raise UserError(f"transfer model {self._transfer_path.name} is not the Magenta transfer network: {exc}") from None
        return build_fast_model(self._weights, batch, height, width, uint8)

    def _run(self, uint8: bool, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        b, h, w = images.shape[:3]
        compiled = self._model_for(uint8, b, h, w)
        c = batch_codes(codes, b).reshape(b, 1, 1, CODE_SIZE)
        out = compiled([np.ascontiguousarray(images), c])
        return np.asarray(out[compiled.output(0)])

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return self._run(False, np.asarray(images, np.float32), codes)

    def stylize(self, frames: np.ndarray, codes: np.ndarray) -> np.ndarray:
        check_frames(frames)
        return self._run(True, frames, codes)

    def submit(self, frames: np.ndarray, codes: np.ndarray) -> Pending:
        check_frames(frames)
        b, h, w = frames.shape[:3]
        if (True, 0, h, w) not in self._compiled:
            # the job's batch size, from its first batch (which a style switch may cut short:
            # never sized below the default batch of 4)
            self._queued = max(4, b)
        streams = self._model_for(True, 0, h, w)
        return streams.submit(np.ascontiguousarray(frames), batch_codes(codes, b).reshape(b, 1, 1, CODE_SIZE))

    def close(self) -> None:
        self._compiled.clear()
