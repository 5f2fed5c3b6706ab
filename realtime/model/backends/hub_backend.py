"""``hub`` backend: a SavedModel with the TF Hub calling convention, loaded by ``tensorflow_hub.load``.

The official model (``google/magenta/arbitrary-image-stylization-v1-256/2``) is one callable,
``model(content, style) -> [stylized, ...]`` with both images float32 [1,H,W,3] in [0,1].  It has no
separate style function, so **its style network runs on every frame**: this backend is the reference
and compatibility path, not the fast one.  What can be cached is cached: the loaded module (per
handle, per process; TF Hub also keeps the download under ``TFHUB_CACHE_DIR``, which we point at our
cache folder instead of /tmp) and the preprocessed style tensor (per style).  Its "style code" is
that 256x256 style image, so strength, blends and crossfades (which mix codes) are not available.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ...errors import ModelError
from ...io.images import style_input
from .base import Stylizer, check_frames

log = logging.getLogger(__name__)

_MODULES: dict[str, object] = {}


def load_hub_module(handle: str, cache_dir: Path):
    if handle not in _MODULES:
        os.environ.setdefault("TFHUB_CACHE_DIR", str(cache_dir / "tfhub"))
        import tensorflow_hub as hub

        try:
            _MODULES[handle] = hub.load(handle)
        except Exception as exc:  # network, missing path, wrong format: all mean "no model here"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load TF Hub model '{handle}': {first}") from None
    return _MODULES[handle]


class HubStylizer(Stylizer):
    """Calls a TF Hub style-transfer module per frame (its style network included)."""

    name = "hub"
    mixable_codes = False

    def __init__(self, handle: str, cache_dir: Path) -> None:
        import tensorflow as tf

        self.handle = handle
        self._module = load_hub_module(handle, cache_dir)
        self._tf = tf
        self._style_src: np.ndarray | None = None  # the code the cached tensor was made from
        self._style_tensor = None
        gpus = tf.config.list_physical_devices("GPU")
        self._device = "GPU" if gpus else f"CPU ({tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()} threads)"

    @property
    def device(self) -> str:
        return self._device + ", style network per frame"

    @property
    def style_model_id(self) -> str:
        return "hub:" + self.handle

    def style_code(self, style_rgb: np.ndarray) -> np.ndarray:
        return style_input(style_rgb)[0]  # [256,256,3]: the module takes the image itself

    def _style(self, code: np.ndarray):
        # Identity, not id(): holding the array keeps its id from being reused by a new one.
        if code is not self._style_src:
            arr = np.asarray(code, np.float32)
            self._style_tensor = self._tf.constant(arr.reshape((1,) + arr.shape[-3:]))
            self._style_src = code
        return self._style_tensor

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        style = self._style(codes)
        out = []
        for i in range(images.shape[0]):
            res = self._module(self._tf.constant(images[i : i + 1], self._tf.float32), style)
            out.append(np.asarray(res[0])[0])
        return np.stack(out).astype(np.float32)

    def stylize(self, frames: np.ndarray, codes: np.ndarray) -> np.ndarray:
        check_frames(frames)
        return super().stylize(frames, codes)

    def warmup(self, width: int, height: int, batch: int = 1) -> None:
        self.stylize(np.zeros((1, height, width, 3), np.uint8), np.zeros((256, 256, 3), np.float32))
