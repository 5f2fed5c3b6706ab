"""Style codes on the CPU for the backends whose transfer network runs elsewhere (``torch``, ``onnx``).

The style network runs once per style (the code is cached on disk), so it stays on the CPU: OpenVINO's
int8 network (the ``openvino`` backend's own :class:`OpenVINOStylePredictor`: the same codes and the
same cache entries), else TF Lite's.  Built on the first code needed, so a show whose codes are all
cached (or a GPU box with neither runtime) never loads one.  This module imports neither runtime
nor PyTorch: the ``onnx`` backend must not pull PyTorch in through it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np

from ...backends_table import installed
from ...errors import UserError


class CPUStyles:
    """Style image -> code on the CPU (OpenVINO, else TF Lite). Thread-safe: uploads (web thread)
    and content codes (inference thread) meet here."""

    def __init__(self, path: Path, threads: int, cache_dir: Optional[Path], backend: str) -> None:
        self.path, self.threads, self.cache_dir, self.backend = path, threads, cache_dir, backend
        self.runtime = "openvino" if installed("openvino") else "tflite" if installed("tensorflow") or installed("ai_edge_litert") else ""
        self._predict: Optional[Callable[[np.ndarray], np.ndarray]] = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        # openvino's id where no runtime is installed: codes cached by an openvino run still serve
        return f"{self.runtime or 'openvino'}:{self.path.name}"

    def __call__(self, style_rgb: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._predict is None:
                self._predict = self._load()
        return self._predict(style_rgb)

    def _load(self) -> Callable[[np.ndarray], np.ndarray]:
        if self.runtime == "openvino":
            from .openvino_backend import OpenVINOStylePredictor, openvino_core

            return OpenVINOStylePredictor(self.path, openvino_core(self.cache_dir), self.threads)
        if self.runtime == "tflite":
            from .tflite_util import StylePredictor

            return StylePredictor(self.path, self.threads)
        raise UserError(f"--backend {self.backend} computes style codes on the CPU with OpenVINO or TensorFlow Lite, "
                        "and neither is installed (pip install openvino)")


class StylesOnCPU:
    """Mixin for a :class:`~.base.Stylizer` whose style codes come from a :class:`CPUStyles` in
    ``self._styles`` (the GPU backends): the code and the cache key are the CPU network's."""

    _styles: CPUStyles

    @property
    def style_model_id(self) -> str:
        return self._styles.model_id

    def style_code(self, style_rgb: np.ndarray) -> np.ndarray:
        return self._styles(style_rgb)
