"""TF Lite helpers: the interpreter, the style prediction network, and size-patched transfer models.

Why size patching: the transfer file stores its three nearest-neighbour upsampling sizes as constants
(192x192, 384x384, 384x384), so ``resize_tensor_input`` to another size silently returns a 384x384
picture.  We rewrite those three constants for the requested size in a copy of the flatbuffer, which
makes the TF Lite path work at any size that is a multiple of 4, like the TF graph.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ...io.images import style_input

log = logging.getLogger(__name__)


def make_interpreter(model: Path | bytes, threads: int):
    """A TF Lite interpreter from a path or flatbuffer bytes (LiteRT when installed, else tf.lite)."""
    try:  # the maintained home of the interpreter
        from ai_edge_litert.interpreter import Interpreter  # type: ignore
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    kwargs = {"num_threads": threads or os.cpu_count() or 1}
    if isinstance(model, (bytes, bytearray)):
        kwargs["model_content"] = bytes(model)
    else:
        kwargs["model_path"] = str(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return Interpreter(**kwargs)


class StylePredictor:
    """The style prediction network on TF Lite: style image -> 100-number code (about 2 ms)."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.path = path
        self._it = make_interpreter(path, threads)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]["index"]
        self._out = self._it.get_output_details()[0]["index"]
        # One interpreter, called from the web thread (uploads) and the inference thread (the
        # strength's content code): a TF Lite interpreter is not thread-safe.
        self._lock = threading.Lock()

    def __call__(self, style_rgb: np.ndarray) -> np.ndarray:
        with self._lock:
            self._it.set_tensor(self._in, style_input(style_rgb))
            self._it.invoke()
            return self._it.get_tensor(self._out).reshape(-1).astype(np.float32).copy()


RESIZE_SIZE_TENSORS = (
    ("transformer/expand/conv1/ResizeNearestNeighbor/size", 2),  # residual size x2 = H/2
    ("transformer/expand/conv2/ResizeNearestNeighbor/size", 1),  # H
    ("transformer/expand/conv3/ResizeNearestNeighbor/size", 1),  # H (a no-op resize)
)


def patch_transfer_size(model_bytes: bytes, height: int, width: int) -> bytes:
    """Copy of a transfer flatbuffer whose upsampling constants fit a height x width input (the
    int32 constants overwritten in place by the project's TF Lite reader: no TensorFlow needed)."""
    from ..tflite_file import TFLiteFile

    f = TFLiteFile(model_bytes)
    found = [name for name, _ in RESIZE_SIZE_TENSORS if name in f.by_name]
    if len(found) != len(RESIZE_SIZE_TENSORS):
        raise ValueError(f"transfer model has {len(found)} of {len(RESIZE_SIZE_TENSORS)} upsampling size tensors")
    return f.with_int32({name: np.array([height // div, width // div], np.int32) for name, div in RESIZE_SIZE_TENSORS})
