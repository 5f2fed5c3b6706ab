"""``torch`` backend: the transfer network on PyTorch (NVIDIA CUDA, Apple MPS, or the CPU).

Why PyTorch: the GPU machines this project runs on have PyTorch and cannot install TensorFlow, and
``pip install 'realtime[gpu]'`` brings PyTorch's CUDA build from PyPI on Linux and Windows (MPS on
macOS) where TensorFlow's GPU wheels are Linux-only and large.  The network is the same trained
one as the ``tf`` backend's, rebuilt from the fp16 TF Lite weights (:class:`TransferWeights`, read
without TensorFlow) into :class:`.torch_net.TransferNet`, so pictures match the other backends
within float rounding.

Style codes come from the CPU: the int8 style network on OpenVINO (the ``openvino`` backend's own
:class:`OpenVINOStylePredictor`: same codes, same cache entries), or on TF Lite where OpenVINO is
missing.  A code is computed once per style and cached on disk, so the GPU only runs the
per-frame network.

On CUDA (what the backend is for) a frame crosses PCIe as uint8 only: pinned host buffers, the
uint8 -> float, /255 and the *255+0.5, clip, -> uint8 on the GPU, half precision, channels_last,
``cudnn.benchmark``.  A batch is cut into chunks of about a 720p frame's pixels (``CHUNK_PIXELS``),
and chunk n+1's upload (a copy stream) overlaps chunk n's network and chunk n-1's download (a second
copy stream).  ``submit`` (video files) returns once a batch is queued on the GPU, so the next
batch's upload is queued behind it while the caller collects this one: the GPU does not wait for
the host between batches (two sets of pinned buffers, used in turn).  For live and video (one frame size) each size is captured as a CUDA graph, after an
optional ``torch.compile`` (``engine.xla``: auto = for live and video); each is tried once and falls
back to eager with one log line.  On MPS the same network runs float16, eagerly; on the CPU
float32 (for the tests, and as a last resort: ``openvino`` is the CPU backend).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ...backends_table import device_index, device_kind, installed
from ...errors import UserError
from .base import CODE_SIZE, Pending, Stylizer, batch_codes, check_frames
from .cpu_styles import CPUStyles, StylesOnCPU
from .torch_net import TransferNet
from .transfer_net import TransferWeights

log = logging.getLogger(__name__)

#: ``--precision auto`` on a GPU: "mixed" (float16) or "bf16".  float16 keeps 3 more mantissa bits
#: than bfloat16 (closer to float32) at the same tensor-core speed, and this network's activations
#: stay far inside float16's range (inputs in [0,1], instance norm in float32).  To be revisited
#: with the GPU benchmark (speed and PSNR against float32 of both).
AUTO_GPU_HALF = "mixed"
#: CUDA: pixels per pipelined chunk of a batch (about one 720p frame: enough to fill the GPU); a
#: batch of several chunks overlaps uploading chunk n+1 with computing chunk n.  To be revisited
#: with the GPU benchmark.
CHUNK_PIXELS = 1 << 20
#: ``torch.compile``'s mode where it is used (CUDA, Triton installed, ``engine.xla`` auto for live and
#: video or always): "default" fuses the instance norms and activations into Triton kernels (the
#: network is memory-bound); CUDA graphs are captured by this module, so not "reduce-overhead".
#: To be revisited with the GPU benchmark ("max-autotune-no-cudagraphs" compiles far longer).
COMPILE_MODE = "default"
#: Frame sizes whose buffers and CUDA graphs are kept: the newest size (the live governor's moves
#: drop the others), in up to two chunk sizes (a batch's chunks and the last, shorter one).
MAX_RUNNERS = 2
DTYPES = {"float32": torch.float32, "mixed": torch.float16, "bf16": torch.bfloat16}
DTYPE_WORDS = {torch.float32: "float32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def pick_device(device: str) -> torch.device:
    """``cpu``; ``gpu`` / ``gpu:N``: CUDA (the Nth), else MPS, else a one-line error; ``auto``:
    CUDA, else MPS, else the CPU."""
    kind, index = device_kind(device), device_index(device)
    if kind == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        if index is not None and index >= n:
            raise UserError(f"--device gpu:{index}: PyTorch sees {n} CUDA GPU{'s' if n != 1 else ''} (gpu:0..gpu:{n - 1})")
        return torch.device("cuda", index or 0)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and not index:
        return torch.device("mps")
    if kind == "gpu":
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise UserError(f"--device {device}: PyTorch {torch.__version__} ({build}) sees no CUDA or MPS GPU "
                        "(pip install 'realtime[gpu]' brings the CUDA build; check nvidia-smi)")
    return torch.device("cpu")


def pick_dtype(dev: torch.device, precision: str) -> torch.dtype:
    """The compute dtype: ``auto`` is :data:`AUTO_GPU_HALF` on a GPU; the CPU runs float32 (it is
    the tests' and the last resort's device: ``openvino`` is the CPU backend, with bf16); MPS runs
    float16 for any half precision."""
    if dev.type == "cpu":
        if precision in ("mixed", "bf16"):
            log.warning("--precision %s: the torch backend runs float32 on the CPU (for bf16 on a CPU: --backend openvino)", precision)
        return torch.float32
    if dev.type == "mps":
        if precision == "bf16":
            log.warning("--precision bf16: the torch backend runs float16 on Apple's MPS")
        return torch.float32 if precision == "float32" else torch.float16
    return DTYPES.get(AUTO_GPU_HALF if precision == "auto" else precision, torch.float32)


@dataclass
class _Slot:
    """One chunk's device buffers (and its CUDA graph once captured)."""

    frames: torch.Tensor  # uint8 [c,H,W,3]
    codes: torch.Tensor  # float32 [c,100]
    out: torch.Tensor  # uint8 [c,H,W,3]
    graph: Any = None
    # CUDA events: this slot's upload done, network done (its input may be overwritten), download
    # done (its output may be overwritten)
    events: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Runner:
    """Everything for one (chunk, H, W): two slots used in turn (chunk n+1 uploads into one while
    chunk n computes in the other)."""

    slots: list[_Slot]
    calls: int = 0


class TorchStylizer(StylesOnCPU, Stylizer):
    """The transfer network on PyTorch; style codes on the CPU (OpenVINO or TF Lite)."""

    name = "torch"

    def __init__(
        self,
        prediction_path: Path,
        transfer_path: Path,
        device: str = "auto",
        threads: int = 0,
        precision: str = "auto",
        jit: bool = False,
        fixed_size: bool = True,
        cache_dir: Optional[Path] = None,
    ) -> None:
        self.dev = pick_device(device)
        self.dtype = pick_dtype(self.dev, precision)
        self.precision = {torch.float16: "mixed", torch.bfloat16: "bf16"}.get(self.dtype, "float32")
        self.threads = threads or os.cpu_count() or 1
        if self.dev.type == "cpu" and threads:
            torch.set_num_threads(threads)
        self._styles = CPUStyles(prediction_path, self.threads, cache_dir, "torch")
        cuda = self.dev.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True  # one frame size per show: the fastest kernels, found once
            if self.dtype == torch.float32:  # float32 means float32 (cuDNN would use TF32 otherwise)
                torch.backends.cudnn.allow_tf32 = False
        with torch.inference_mode():
            self.net = TransferNet(TransferWeights.from_tflite(transfer_path), self.dev, self.dtype).eval()
        # CUDA graphs for fixed sizes (live, video); torch.compile where asked (engine.xla) and Triton is there
        self.use_graphs = cuda and fixed_size
        self._compiled: Optional[Callable[..., torch.Tensor]] = None
        if cuda and jit:
            if installed("triton"):
                self._compiled = torch.compile(self.net.forward_uint8, mode=COMPILE_MODE, dynamic=False)
            else:
                log.info("torch: no Triton, so no torch.compile; the network runs eagerly (cuDNN)")
        self._runners: OrderedDict[tuple[int, int, int], _Runner] = OrderedDict()
        self._streams: dict[str, Any] = {}
        self._pinned: dict[str, torch.Tensor] = {}
        self._submits = 0  # batches submitted (they use the two sets of pinned buffers in turn)
        self._uses = [0, 0]  # batches each set of pinned buffers has held
        self._done: dict[int, Any] = {}  # buffer set -> the event its last batch's download records
        self._pool: Any = None
        self._device = self._describe()

    # -- description and style codes -------------------------------------------------------------

    def _describe(self) -> str:
        version = torch.__version__.split("+")[0]
        words = DTYPE_WORDS[self.dtype]
        if self.dev.type == "cuda":
            extra = (", CUDA graphs" if self.use_graphs else "") + (", torch.compile" if self._compiled else "")
            name = torch.cuda.get_device_name(self.dev)
            return f"{name} (cuda:{self.dev.index or 0}) via PyTorch {version} CUDA {torch.version.cuda} ({words}, channels_last{extra})"
        if self.dev.type == "mps":
            return f"Apple GPU via PyTorch {version} MPS ({words})"
        return f"CPU via PyTorch {version} ({torch.get_num_threads()} threads, {words})"

    @property
    def device(self) -> str:
        return self._device

    @property
    def torch_device(self) -> torch.device:
        return self.dev

    # -- float path (the accuracy tests' path) --------------------------------------------------

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        c = torch.from_numpy(batch_codes(codes, images.shape[0])).to(self.dev)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(images)).to(self.dev).permute(0, 3, 1, 2).to(self.dtype)
            y = self.net(x, c)
            return np.ascontiguousarray(y.permute(0, 2, 3, 1).cpu().numpy())

    # -- uint8 path (every frame) -----------------------------------------------------------------

    def stylize(self, frames: np.ndarray, codes: np.ndarray) -> np.ndarray:
        check_frames(frames)
        codes = batch_codes(codes, frames.shape[0])
        with torch.inference_mode():
            if self.dev.type != "cuda":  # CPU, MPS: one call, synchronous
                x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.dev)
                return np.ascontiguousarray(self.net.forward_uint8(x, torch.from_numpy(codes).to(self.dev)).cpu().numpy())
            return self._stylize_cuda(np.ascontiguousarray(frames), codes)

    def submit(self, frames: np.ndarray, codes: np.ndarray) -> Pending:
        if self.dev.type != "cuda":
            return super().submit(frames, codes)
        check_frames(frames)
        with torch.inference_mode():
            return self._launch_cuda(np.ascontiguousarray(frames), batch_codes(codes, frames.shape[0]))

    def _host(self, key: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A pinned host buffer at least ``shape`` (grown when needed), viewed as ``shape``."""
        n = int(np.prod(shape))
        buf = self._pinned.get(key)
        if buf is None or buf.numel() < n or buf.dtype != dtype:
            buf = torch.empty(n, dtype=dtype, pin_memory=self.dev.type == "cuda")  # (a CPU test runs this path too)
            self._pinned[key] = buf
        return buf[:n].view(shape)

    def _settle(self) -> None:
        """Wait for every batch queued on the GPU (before buffers they use are freed or refilled)."""
        for done in self._done.values():
            done.synchronize()

    def _stream(self, name: str) -> Any:
        if name not in self._streams:
            self._streams[name] = torch.cuda.Stream(self.dev)
        return self._streams[name]

    def _runner(self, c: int, h: int, w: int) -> _Runner:
        key = (c, h, w)
        runner = self._runners.get(key)
        if runner is not None:
            self._runners.move_to_end(key)
            return runner
        doomed = [k for k in self._runners if k[1:] != (h, w)]  # a new size: the old ones go
        if doomed or len(self._runners) >= MAX_RUNNERS:
            self._settle()  # a batch in flight may still use the buffers about to go
        for other in doomed:
            del self._runners[other]
        while len(self._runners) >= MAX_RUNNERS:
            self._runners.popitem(last=False)
        if not self._runners:
            self._pool = None
            torch.cuda.empty_cache()
        slots = []
        for _ in range(2):
            slots.append(_Slot(torch.empty((c, h, w, 3), dtype=torch.uint8, device=self.dev),
                               torch.zeros((c, CODE_SIZE), dtype=torch.float32, device=self.dev),
                               torch.empty((c, h, w, 3), dtype=torch.uint8, device=self.dev),
                               events={k: torch.cuda.Event() for k in ("up", "net", "down")}))
        runner = _Runner(slots)
        self._runners[key] = runner
        return runner

    def _network(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return self._compiled or self.net.forward_uint8

    def _run_slot(self, slot: _Slot, runner: _Runner) -> None:
        """The network on one slot, on the current (compute) stream: its graph where captured,
        else the compiled or eager network.  The second call of a size captures the graph (the
        first one found cuDNN's kernels and compiled)."""
        if slot.graph is not None:
            slot.graph.replay()
            return
        if self._compiled is not None:
            try:
                t0 = time.perf_counter()
                slot.out.copy_(self._compiled(slot.frames, slot.codes))
                if runner.calls == 0:
                    log.debug("torch.compile: %s in %.1f s", tuple(slot.frames.shape), time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: eager, said once
                log.warning("torch.compile failed (%s: %s); running eagerly", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                self._compiled = None
                slot.out.copy_(self.net.forward_uint8(slot.frames, slot.codes))
        else:
            slot.out.copy_(self.net.forward_uint8(slot.frames, slot.codes))
        if self.use_graphs and runner.calls >= 1:
            self._capture(slot)

    def _capture(self, slot: _Slot) -> None:
        """Capture the slot's network as a CUDA graph: one launch per chunk instead of ~80 (at
        small sizes the launches cost more than the work).  Warm-up already ran on this stream."""
        try:
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            fn = self._network()
            with torch.cuda.graph(graph, pool=self._pool, stream=torch.cuda.current_stream(self.dev),
                                  capture_error_mode="thread_local"):
                slot.out.copy_(fn(slot.frames, slot.codes))
            slot.graph = graph
        except Exception as exc:  # noqa: BLE001 - a capture failure costs speed, not frames
            log.warning("torch: CUDA graph capture failed (%s: %s); running without graphs", type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "")
            self.use_graphs = False

    def _stylize_cuda(self, frames: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return self._launch_cuda(frames, codes, turn=0).result()  # collected at once: one set of buffers will do

    def _launch_cuda(self, frames: np.ndarray, codes: np.ndarray, turn: Optional[int] = None) -> "_CudaBatch":
        """Queue a batch in chunks through two copy streams and the compute stream (see the module
        docstring); the returned batch waits for its download only when asked for.

        Order per chunk n (slot n % 2): the host copies it into pinned memory (overlapping the GPU's
        work on chunk n-1); the upload stream waits until the slot's previous network finished
        reading its input, then copies; the compute stream waits for the upload and for the slot's
        previous download, then runs; the download stream waits for the network and copies the
        result into pinned memory.  Submitted batches use the two sets of pinned buffers in turn
        (``turn`` None); a set is refilled only once its previous batch is downloaded."""
        b, h, w, _ = frames.shape
        c = max(1, min(b, CHUNK_PIXELS // (h * w)))
        if turn is None:
            turn = self._submits % 2
            self._submits += 1
        self._uses[turn] += 1
        last = self._done.get(turn)
        if last is not None:
            last.synchronize()  # the batch before the last one: downloaded long ago, unless never asked for
        pin_in = self._host(f"in{turn}", (b, h, w, 3), torch.uint8)
        pin_codes = self._host(f"codes{turn}", (b, CODE_SIZE), torch.float32)
        pin_out = self._host(f"out{turn}", (b, h, w, 3), torch.uint8)
        up, compute, down = self._stream("up"), self._stream("compute"), self._stream("down")
        compute.wait_stream(torch.cuda.current_stream(self.dev))  # net weights were made on the default stream
        pin_codes.numpy()[:] = codes
        try:
            self._queue_chunks(frames, c, pin_in, pin_codes, pin_out, up, compute, down)
        except BaseException:
            with contextlib.suppress(Exception):  # part of the batch may be queued: let it finish first
                torch.cuda.synchronize(self.dev)
            raise
        done = torch.cuda.Event()
        done.record(down)
        self._done[turn] = done
        return _CudaBatch(self, done, pin_out, turn, self._uses[turn])

    def _queue_chunks(self, frames: np.ndarray, c: int, pin_in: torch.Tensor, pin_codes: torch.Tensor,
                      pin_out: torch.Tensor, up: Any, compute: Any, down: Any) -> None:
        b, h, w, _ = frames.shape
        for start in range(0, b, c):
            end = min(b, start + c)
            runner = self._runner(end - start, h, w)
            slot = runner.slots[runner.calls % 2]
            np.copyto(pin_in.numpy()[start:end], frames[start:end])
            with torch.cuda.stream(up):
                up.wait_event(slot.events["net"])
                slot.frames.copy_(pin_in[start:end], non_blocking=True)
                slot.codes.copy_(pin_codes[start:end], non_blocking=True)
                slot.events["up"].record(up)
            with torch.cuda.stream(compute):
                compute.wait_event(slot.events["up"])
                compute.wait_event(slot.events["down"])
                self._run_slot(slot, runner)
                slot.events["net"].record(compute)
            with torch.cuda.stream(down):
                down.wait_event(slot.events["net"])
                pin_out[start:end].copy_(slot.out, non_blocking=True)
                slot.events["down"].record(down)
            runner.calls += 1

    def warmup(self, width: int, height: int, batch: int = 1) -> None:
        """Run the size three times: the first call finds cuDNN's kernels (and compiles), the next
        two capture the CUDA graphs of the two slots, so the first real frame runs at full speed."""
        frames = np.zeros((batch, height, width, 3), np.uint8)
        for _ in range(3 if self.use_graphs else 1):
            self.stylize(frames, np.zeros(CODE_SIZE, np.float32))

    def close(self) -> None:
        self._runners.clear()
        self._pinned.clear()
        self._done.clear()
        self._pool = None
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)
            torch.cuda.empty_cache()


class _CudaBatch(Pending):
    """A batch queued on the GPU: its download's event and the pinned buffer it lands in."""

    def __init__(self, owner: TorchStylizer, done: Any, out: torch.Tensor, turn: int, use: int) -> None:
        self.owner, self.done, self.out, self.turn, self.use = owner, done, out, turn, use

    def result(self) -> np.ndarray:
        if self.owner._uses[self.turn] != self.use:  # its buffers were handed to a later batch
            raise RuntimeError("a GPU batch was collected after later batches reused its buffers")
        self.done.synchronize()
        return self.out.numpy().copy()  # the pinned buffer is reused by a later batch
