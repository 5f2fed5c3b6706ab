"""Stand-ins for pipeline tests: a small fake stylizer (no model files) and a fake camera that can
be unplugged and plugged back in."""

from __future__ import annotations

import threading
import time
from typing import Optional

import numpy as np

from realtime.model.backends.base import CODE_SIZE, Stylizer
from realtime.io.sources.base import FrameSource, Pacer
from realtime.io.synthetic import pattern_frame


class FakeStylizer(Stylizer):
    """Deterministic and cheap: the code's first numbers tint the picture, so styles and strength
    visibly change the output.  ``delay_s`` simulates a slow network, ``fail_after`` a crash."""

    name = "fake"
    mixable_codes = True

    def __init__(self, delay_s: float = 0.0, fail_after: int = 0, error: str = "CUDA error: an illegal memory access",
                 fail_calls: tuple[int, ...] = ()) -> None:
        self.delay_s = delay_s
        self.fail_after = fail_after
        self.fail_calls = set(fail_calls)
        self.error = error
        self.calls = 0
        self.frames = 0
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return "CPU (fake)"

    @property
    def style_model_id(self) -> str:
        return "fake-v1"

    def style_code(self, style_rgb: np.ndarray) -> np.ndarray:
        mean = style_rgb.reshape(-1, 3).mean(0) / 255.0
        code = np.zeros(CODE_SIZE, np.float32)
        code[:3] = mean * 2 - 1
        code[3:] = np.linspace(-0.5, 0.5, CODE_SIZE - 3) * float(style_rgb.std() / 128.0)
        return code

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.frames += images.shape[0]
            calls = self.calls
        if (self.fail_after and calls > self.fail_after) or calls in self.fail_calls:
            raise RuntimeError(self.error)
        if self.delay_s:
            time.sleep(self.delay_s)
        c = np.asarray(codes, np.float32).reshape(-1, CODE_SIZE)
        tint = (c[:, None, None, :3] + 1) / 2
        return np.clip(0.35 * images + 0.65 * tint, 0, 1).astype(np.float32)


class HangingStylizer(FakeStylizer):
    """A backend that stops answering, like a stuck driver: the calls numbered in ``hang_calls``
    (counted as they begin, 1 = the first), or every call from ``hang_from`` on, block until
    ``release`` is set.  Tests set it in teardown, so the abandoned thread ends with the test.
    ``hung`` is set when a call starts to hang."""

    def __init__(self, release: threading.Event, hang_calls: tuple[int, ...] = (), hang_from: int = 0, **kw) -> None:
        super().__init__(**kw)
        self.release = release
        self.hang_calls = set(hang_calls)
        self.hang_from = hang_from
        self.hung = threading.Event()
        self.entered = 0
        self.late = 0  # hung calls that returned (after ``release``)
        self.hung_at = 0.0  # monotonic time the last hang began

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        with self._lock:
            self.entered += 1
            n = self.entered
        if n in self.hang_calls or (self.hang_from and n >= self.hang_from):
            self.hung_at = time.monotonic()
            self.hung.set()
            self.release.wait(60)  # a bound, so a broken test cannot hold the run forever
            with self._lock:
                self.late += 1
        return super().transfer(images, codes)


class PixelCostStylizer(FakeStylizer):
    """Costs time in proportion to the pixels it stylizes, like a real network: ``ms_at_384``
    for a 384x384 frame (change it while running to simulate a machine that slows down)."""

    def __init__(self, ms_at_384: float) -> None:
        super().__init__()
        self.ms_at_384 = ms_at_384
        self.sizes: list[tuple[int, int]] = []

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        h, w = images.shape[1:3]
        self.sizes.append((w, h))
        time.sleep(self.ms_at_384 / 1000 * images.shape[0] * (w * h) / (384 * 384))
        return super().transfer(images, codes)


def fake_codes(n: int = 4) -> list[np.ndarray]:
    """n clearly different style codes."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        c = rng.normal(0, 0.2, CODE_SIZE).astype(np.float32)
        c[:3] = [(-1) ** i * 0.8, (i % 3 - 1) * 0.8, -(-1) ** i * 0.6]
        out.append(c)
    return out


class FakeCamera(FrameSource):
    """A camera made of the test pattern.  ``plug.clear()`` unplugs it: reads fail, opening fails;
    ``plug.set()`` plugs it back in.  Shared between instances so a reopened camera sees it too."""

    live = True

    def __init__(self, plug: threading.Event, width: int = 96, height: int = 64, fps: float = 60.0) -> None:
        self.plug = plug
        self._size, self._fps = (width, height), fps
        self._i = 0
        self._open = False
        self._pacer = Pacer(fps)

    def open(self) -> None:
        if not self.plug.is_set():
            from realtime.errors import MediaError

            raise MediaError("cannot open camera fake (unplugged)")
        self._open = True

    def read(self) -> Optional[np.ndarray]:
        if not self._open:
            return None
        self._pacer.wait()
        if not self.plug.is_set():
            raise OSError("read failed: device unplugged")
        self._i += 1
        return np.ascontiguousarray(pattern_frame(self._i, *self._size)[..., ::-1])

    def close(self) -> None:
        self._open = False


def fake_engine(tmp_path, stylizer: Optional[FakeStylizer] = None, **overrides):
    """An Engine around the fake stylizer, with the shipped styles: pipeline tests with no model files."""
    from realtime.config import load_config
    from realtime.model.engine import Engine
    from realtime.model.styles import StyleBank, StyleCodeCache

    cfg = load_config(None, overrides)
    stylizer = stylizer or FakeStylizer()
    return Engine(cfg, stylizer, StyleBank(stylizer, StyleCodeCache(tmp_path / "codes")))
