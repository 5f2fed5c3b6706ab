"""``tf`` backend (default): int8 TF Lite style prediction + the transfer network as a TF graph."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ...backends_table import device_index, device_kind
from ...errors import UserError
from .base import Stylizer, batch_codes, check_frames, cpu_bf16
from .tflite_util import StylePredictor
from .transfer_net import TransferWeights, build_fast_transfer_fn, build_transfer_fn

log = logging.getLogger(__name__)


def configure_tensorflow(device: str, threads: int) -> str:
    """Pin device and thread count before TensorFlow initialises; return the device description.
    ``gpu:N`` leaves only the Nth GPU visible to TensorFlow (which then calls it its GPU 0)."""
    import tensorflow as tf

    asked, index, device = device, device_index(device), device_kind(device)

    threads = threads or os.cpu_count() or 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1 if threads <= 2 else 2)
    except RuntimeError:  # already initialised (second stylizer in one process): keep settings
        threads = tf.config.threading.get_intra_op_parallelism_threads() or threads
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise UserError(f"--device {asked}: TensorFlow sees no GPU (and with --backend auto, neither did PyTorch); "
                        "for an NVIDIA GPU: pip install 'realtime[gpu]'")
    if device == "cpu" or not gpus:
        if gpus:
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:
                pass
        return f"CPU ({threads} threads)"
    if index is not None:
        if index >= len(gpus):
            raise UserError(f"--device gpu:{index}: TensorFlow sees {len(gpus)} GPU{'s' if len(gpus) != 1 else ''} (gpu:0..gpu:{len(gpus) - 1})")
        try:
            tf.config.set_visible_devices([gpus[index]], "GPU")
            gpus = [gpus[index]]
        except RuntimeError:  # already initialised: keep what the first stylizer chose
            log.warning("--device gpu:%d: TensorFlow is already initialised; its GPUs stay as they were", index)
    for g in gpus:
        try:
            tf.config.experimental.set_memory_growth(g, True)
        except RuntimeError:
            pass
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU {details.get('device_name', gpus[0].name)}"


class TFStylizer(Stylizer):
    """Transfer network as a TF graph (GPU when available); style prediction on TF Lite int8."""

    name = "tf"

    def __init__(
        self,
        prediction_path: Path,
        transfer_path: Path,
        device: str = "auto",
        threads: int = 0,
        precision: str = "float32",
        jit: bool = False,
        reference: bool = False,
    ) -> None:
        self._device = configure_tensorflow(device, threads)
        if precision == "mixed" and not self._device.startswith("GPU"):
            log.warning("mixed precision needs a GPU; running float32 on %s", self._device)
            precision = "float32"
        if precision == "bf16" and not self._device.startswith("CPU"):
            log.warning("--precision bf16 is for CPUs; on a GPU use --precision mixed; running float32")
            precision = "float32"
        elif precision == "bf16" and not cpu_bf16():
            log.warning("this CPU has no bfloat16 instructions (AMX or AVX512-BF16); running float32")
            precision = "float32"
        self.precision = precision
        self.jit = jit
        self._predictor = StylePredictor(prediction_path, threads)
        self._prediction_id = prediction_path.name
        weights = TransferWeights.from_tflite(transfer_path)
        # bf16: convolutions in bfloat16 (oneDNN on CPUs with AMX/AVX512-BF16), instance-norm
        # statistics in float32; a lower-precision mode the user picks (about 2e-3 mean, 3e-2 max abs
        # from float32 on real photos), never chosen automatically.  Slower on our AVX512-BF16 VM
        # (0.9x); on AMX measured with OpenVINO only (3.4x), not with TensorFlow.
        dtype = {"mixed": "float16", "bf16": "bfloat16"}.get(precision, "float32")
        build = build_transfer_fn if reference else build_fast_transfer_fn
        self._float_fn, self._uint8_fn = build(weights, dtype, jit)

    @property
    def device(self) -> str:
        extra = {"mixed": ", mixed precision", "bf16": ", bf16 (lower precision)"}.get(self.precision, "")
        return self._device + extra + (", XLA" if self.jit else "")

    @property
    def style_model_id(self) -> str:
        return "tflite:" + self._prediction_id

    def style_code(self, style_rgb: np.ndarray) -> np.ndarray:
        return self._predictor(style_rgb)

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        codes = batch_codes(codes, images.shape[0])
        return self._float_fn(np.asarray(images, np.float32), codes).numpy()

    def stylize(self, frames: np.ndarray, codes: np.ndarray) -> np.ndarray:
        check_frames(frames)
        return self._uint8_fn(frames, batch_codes(codes, frames.shape[0])).numpy()
