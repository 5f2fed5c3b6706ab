"""GPU path: skipped without a GPU; the float16 graph is also checked on the CPU."""

import numpy as np
import pytest
from conftest import REQUIRED_FILES, content_image


def test_half_precision_graph_stays_close(models_dir):
    """The mixed-precision graph (what a GPU runs) within a documented 2e-2 of float32."""
    from realtime.model.backends.transfer_net import TransferWeights, build_fast_transfer_fn

    w = TransferWeights.from_tflite(models_dir / REQUIRED_FILES[1])
    f32, _ = build_fast_transfer_fn(w, "float32")
    f16, _ = build_fast_transfer_fn(w, "float16")
    x = content_image(96, 64)[None].astype(np.float32) / 255.0
    code = np.random.default_rng(2).normal(0, 0.5, (1, 100)).astype(np.float32)
    a, b = f32(x, code).numpy(), f16(x, code).numpy()
    assert b.dtype == np.float32 and a.shape == b.shape
    assert np.abs(a - b).max() < 2e-2 and np.abs(a - b).mean() < 2e-3


@pytest.mark.gpu
def test_gpu_backend_matches_cpu(models_dir):
    from realtime.model.backends.tf_backend import TFStylizer

    gpu = TFStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], device="gpu")
    assert gpu.device.startswith("GPU")
    x = content_image(640, 480)[None].astype(np.float32) / 255.0
    code = gpu.style_code(content_image(256, 256, 9))
    import tensorflow as tf

    with tf.device("/CPU:0"):
        cpu_out = gpu.transfer(x, code)
    assert np.abs(gpu.transfer(x, code) - cpu_out).max() < 2e-3
    mixed = TFStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], device="gpu", precision="mixed")
    assert np.abs(mixed.transfer(x, code) - cpu_out).max() < 2e-2
