"""``tflite`` backend: style prediction and transfer both on the TF Lite interpreter."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .base import Stylizer, batch_codes
from .tflite_util import StylePredictor, make_interpreter, patch_transfer_size

log = logging.getLogger(__name__)


class TFLiteStylizer(Stylizer):
    """Both stages on TF Lite (XNNPACK on the CPU). Transfer precision: int8 or fp16 weights."""

    name = "tflite"

    def __init__(self, prediction_path: Path, transfer_path: Path, threads: int = 0, precision: str = "fp16") -> None:
        self.threads = threads or os.cpu_count() or 1
        self.precision = precision
        self._predictor = StylePredictor(prediction_path, self.threads)
        self._prediction_id = prediction_path.name
        self._transfer_bytes = transfer_path.read_bytes()
        self._interpreters: dict[tuple[int, int], tuple] = {}

    @property
    def device(self) -> str:
        return f"CPU (TF Lite {self.precision} transfer, {self.threads} threads)"

    @property
    def style_model_id(self) -> str:
        return "tflite:" + self._prediction_id

    def style_code(self, style_rgb: np.ndarray) -> np.ndarray:
        return self._predictor(style_rgb)

    def _interpreter(self, height: int, width: int):
        key = (height, width)
        if key not in self._interpreters:
            it = make_interpreter(patch_transfer_size(self._transfer_bytes, height, width), self.threads)
            inputs = it.get_input_details()
            content = next(d for d in inputs if d["shape"][-1] == 3)
            code = next(d for d in inputs if d["shape"][-1] != 3)
            it.resize_tensor_input(content["index"], [1, height, width, 3])
            it.allocate_tensors()
            out = it.get_output_details()[0]["index"]
            self._interpreters[key] = (it, content["index"], code["index"], out)
        return self._interpreters[key]

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        b, h, w, _ = images.shape
        codes = batch_codes(codes, b)
        it, cin, kin, out = self._interpreter(h, w)
        result = np.empty((b, h, w, 3), np.float32)
        for i in range(b):
            it.set_tensor(cin, np.ascontiguousarray(images[i : i + 1], np.float32))
            it.set_tensor(kin, codes[i].reshape(1, 1, 1, -1))
            it.invoke()
            result[i] = it.get_tensor(out)[0]
        return result

    def close(self) -> None:
        self._interpreters.clear()
