"""The stylizer interface every backend implements.

Two operations, because the network has two stages: ``style_code`` runs once per style (or once per
content image, for the strength control) and ``stylize`` runs per frame, batched.  ``submit`` is
``stylize`` for throughput jobs (video files): it may return before the batch is done, so the
caller prepares and sends the next batch while this one runs (see :class:`Pending`).  Frames cross the
interface as RGB uint8 [B, H, W, 3]; H and W must be multiples of 4.  ``transfer`` is the float path
([0,1] in and out) that the accuracy tests compare across backends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ...errors import UserError

CODE_SIZE = 100


def cpu_bf16(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's bfloat16 instructions, from /proc/cpuinfo: "amx" (Intel's matrix tiles), "zen"
    (an AMD CPU with AVX512-BF16: Zen 4 and later run the bf16 dot products at full width),
    "avx512" (an Intel CPU with AVX512-BF16 but no AMX) or "" (none: bf16 would be emulated).
    Why it matters: ``--precision bf16`` pays where the CPU runs it natively: measured 3.2-3.4x
    float32 on an AMX Xeon and 1.9x on a 2-core AMD EPYC VM (Zen 4), but 0.8x on a 2-core Intel
    Xeon VM with AVX512-BF16 and no AMX."""
    vendor, flags = "", set()
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id") and not vendor:
                    vendor = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return ""
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "zen" if vendor == "AuthenticAMD" else "avx512"
    return ""


class Pending(ABC):
    """A batch on its way through the network (:meth:`Stylizer.submit`)."""

    @abstractmethod
    def result(self) -> np.ndarray:
        """Wait for the batch: RGB uint8 [B,H,W,3]; raises what the network raised."""


class Done(Pending):
    """A batch that was finished when submitted (backends that run synchronously)."""

    def __init__(self, out: np.ndarray) -> None:
        self._out = out

    def result(self) -> np.ndarray:
        return self._out


class Stylizer(ABC):
    """A style-transfer engine. Not thread-safe: one thread (the inference worker) owns it."""

    #: backend name, as chosen with --backend
    name: str = ""
    #: whether codes are 100-number vectors that can be mixed (strength, blends, crossfades)
    mixable_codes: bool = True

    @property
    @abstractmethod
    def device(self) -> str:
        """Human-readable description of where inference runs (logged at start)."""

    @property
    @abstractmethod
    def style_model_id(self) -> str:
        """Identity of the style network: style-code caches are keyed on it."""

    @abstractmethod
    def style_code(self, style_rgb: np.ndarray) -> np.ndarray:
        """Style image (RGB uint8, any size) -> style code (float32 [100])."""

    @abstractmethod
    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Float path: images float32 [B,H,W,3] in [0,1], codes [100] or [B,100] -> float32 [B,H,W,3]."""

    def stylize(self, frames: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Per-frame path: RGB uint8 [B,H,W,3] -> RGB uint8 [B,H,W,3] (same size)."""
        check_frames(frames)
        out = self.transfer(frames.astype(np.float32) * (1.0 / 255.0), codes)
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def submit(self, frames: np.ndarray, codes: np.ndarray) -> Pending:
        """:meth:`stylize` for a throughput job: the caller keeps one batch in flight (submits the
        next before it asks for this one's :meth:`Pending.result`), so the network never waits
        for the caller between batches.  Results are asked for in submission order.  This default
        runs the batch at once; a backend that can queue work overrides it."""
        return Done(self.stylize(frames, codes))

    @property
    def torch_device(self) -> Any:
        """The ``torch.device`` the network runs on (None for backends that are not PyTorch): the
        stage runs the stability filter's full-size half there too (:mod:`realtime.effects.stability_torch`)."""
        return None

    def warmup(self, width: int, height: int, batch: int = 1) -> None:
        """Run once at the given size so the first real frame does not pay for tracing/allocation."""
        frames = np.zeros((batch, height, width, 3), np.uint8)
        self.stylize(frames, np.zeros(CODE_SIZE, np.float32))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (interpreters, sessions)."""


def check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [B,H,W,3], got {frames.shape}")
    if frames.shape[1] % 4 or frames.shape[2] % 4:
        raise ValueError(f"frame height and width must be multiples of 4, got {frames.shape[1:3]}")


def batch_codes(codes: np.ndarray, batch: int) -> np.ndarray:
    """[100] or [1,100] or [B,100] -> float32 [B,100]."""
    c = np.asarray(codes, np.float32).reshape(-1, CODE_SIZE)
    if c.shape[0] == 1 and batch != 1:
        c = np.repeat(c, batch, axis=0)
    if c.shape[0] != batch:
        raise ValueError(f"got {c.shape[0]} style codes for {batch} frames")
    return c


def require_mixable(stylizer: Stylizer, what: str) -> None:
    if not stylizer.mixable_codes:
        raise UserError(f"{what} needs 100-number style codes: use --backend tf or tflite (not {stylizer.name})")
