"""Stylizer backends: one interface (:class:`~realtime.model.backends.base.Stylizer`), six engines.

``tf``       the transfer network rebuilt as a TensorFlow graph from the fp16 TF Lite weights
             (runs on a GPU when TensorFlow sees one, any size, any batch).
``tflite``   both stages on the TF Lite interpreter (int8 or fp16 transfer).
``hub``      a SavedModel with the TF Hub calling convention, loaded by ``tensorflow_hub.load``.
``openvino`` the TF Lite files on OpenVINO (CPU; never imports TensorFlow).
``torch``    the transfer network on PyTorch from the fp16 TF Lite weights (CUDA, Apple MPS, CPU;
             never imports TensorFlow); style codes from OpenVINO's style network on the CPU.
``onnx``     the transfer network as an ONNX graph written from the same weights, on ONNX Runtime
             with the best provider present (TensorRT, CUDA, DirectML, CoreML, CPU); never imports
             TensorFlow or PyTorch; style codes as ``torch``.

What each needs, where it runs and what ``auto`` picks: :mod:`realtime.backends_table`; how each is
built: :mod:`.registry`.
"""

from __future__ import annotations

from .base import Stylizer
from .factory import create_stylizer

__all__ = ["Stylizer", "create_stylizer"]
