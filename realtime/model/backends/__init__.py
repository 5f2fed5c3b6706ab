"""Stylizer backends: one interface (:class:`~realtime.backends.base.Stylizer`), three engines.

``tf``     the transfer network rebuilt as a TensorFlow graph from the fp16 TF Lite weights
           (default; runs on a GPU when TensorFlow sees one, any size, any batch).
``tflite`` both stages on the TF Lite interpreter (int8 or fp16 transfer).
``hub``    a SavedModel with the TF Hub calling convention, loaded by ``tensorflow_hub.load``.
"""

from __future__ import annotations

from .base import Stylizer
from .factory import create_stylizer

__all__ = ["Stylizer", "create_stylizer"]
