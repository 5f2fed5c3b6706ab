"""The backends agree with each other and with a straightforward TF Lite implementation."""

from pathlib import Path

import numpy as np
import pytest
from conftest import REQUIRED_FILES, content_image

from realtime.model.backends.tflite_util import make_interpreter
from realtime.io.images import read_image, resize, style_input


def naive_tflite(models_dir: Path, style_rgb: np.ndarray, content_rgb_384: np.ndarray) -> np.ndarray:
    """The TF Lite tutorial's recipe, written out plainly: unpatched 384x384 interpreters."""
    pred = make_interpreter(models_dir / REQUIRED_FILES[0], 2)
    pred.allocate_tensors()
    pred.set_tensor(pred.get_input_details()[0]["index"], style_input(style_rgb))
    pred.invoke()
    code = pred.get_tensor(pred.get_output_details()[0]["index"])
    tr = make_interpreter(models_dir / REQUIRED_FILES[1], 2)
    tr.allocate_tensors()
    ins = {d["name"]: d["index"] for d in tr.get_input_details()}
    tr.set_tensor(ins["content_image"], content_rgb_384[None].astype(np.float32) / 255.0)
    tr.set_tensor(ins["mobilenet_conv/Conv/BiasAdd"], code)
    tr.invoke()
    return tr.get_tensor(tr.get_output_details()[0]["index"])[0]


def test_tf_matches_tflite_fp16_on_real_images(tf_stylizer, tflite_stylizer, real_photo, real_painting):
    code = tf_stylizer.style_code(read_image(real_painting))
    assert code.shape == (100,) and np.isfinite(code).all()
    photo = read_image(real_photo)
    for size in [(384, 384), (640, 480), (420, 280)]:
        x = resize(photo, size).astype(np.float32)[None] / 255.0
        a = tf_stylizer.transfer(x, code)
        b = tflite_stylizer.transfer(x, code)
        assert a.shape == b.shape == (1, size[1], size[0], 3)
        assert np.abs(a - b).max() < 2e-3, size


def test_tf_agrees_with_the_plain_tflite_recipe(tf_stylizer, models_dir, real_photo, real_painting):
    style, photo = read_image(real_painting), resize(read_image(real_photo), (384, 384))
    ref = naive_tflite(models_dir, style, photo)
    ours = tf_stylizer.transfer(photo[None].astype(np.float32) / 255.0, tf_stylizer.style_code(style))[0]
    assert np.abs(ours - ref).max() < 2e-3
    # ... and the result is really stylized, not the content passed through.
    assert np.abs(ref - photo / 255.0).mean() > 0.05


def test_batches_equal_single_frames_and_codes_per_frame(tf_stylizer):
    frames = np.stack([content_image(128, 96, i) for i in range(3)])
    rng = np.random.default_rng(0)
    codes = rng.normal(0, 0.5, (3, 100)).astype(np.float32)
    batched = tf_stylizer.stylize(frames, codes)
    for i in range(3):
        single = tf_stylizer.stylize(frames[i : i + 1], codes[i])
        assert np.abs(batched[i].astype(int) - single[0].astype(int)).max() <= 1


def test_uint8_path_matches_float_path(tf_stylizer):
    frame = content_image(96, 64)[None]
    code = np.random.default_rng(1).normal(0, 0.5, 100).astype(np.float32)
    u8 = tf_stylizer.stylize(frame, code)
    f32 = tf_stylizer.transfer(frame.astype(np.float32) / 255.0, code)
    assert u8.dtype == np.uint8 and u8.shape == frame.shape
    assert np.abs(u8.astype(np.float32) - f32 * 255.0).max() <= 1.0


def test_int8_tflite_is_close_to_fp16(models_dir, tflite_stylizer):
    from realtime.model.backends.tflite_backend import TFLiteStylizer

    int8 = TFLiteStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[2], precision="int8")
    x = content_image(192, 128)[None].astype(np.float32) / 255.0
    code = int8.style_code(content_image(300, 300, 40))
    a, b = int8.transfer(x, code), tflite_stylizer.transfer(x, code)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 0.06  # quantized weights: close, not equal


def test_sizes_must_be_multiples_of_four(tf_stylizer):
    with pytest.raises(ValueError, match="multiples of 4"):
        tf_stylizer.stylize(np.zeros((1, 30, 40, 3), np.uint8), np.zeros(100, np.float32))


def toy_hub_model(path: Path) -> Path:
    """A SavedModel with the TF Hub stylization convention: (content, style) -> [content/2 + style tint]."""
    import tensorflow as tf

    class Toy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32), tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, content, style):
            tint = tf.reduce_mean(style, axis=[1, 2], keepdims=True)
            return [0.5 * content + 0.5 * tint]

    tf.saved_model.save(Toy(), str(path))
    return path


def test_hub_backend_with_a_savedmodel_of_the_hub_convention(tmp_path):
    """A small SavedModel with the TF Hub calling convention: (content, style) -> [stylized]."""
    from realtime.model.backends.hub_backend import HubStylizer

    path = toy_hub_model(tmp_path / "toy_hub")
    hub = HubStylizer(str(path), tmp_path)
    style = np.zeros((64, 64, 3), np.uint8)
    style[..., 0] = 255  # pure red style
    code = hub.style_code(style)
    assert code.shape == (256, 256, 3)
    frames = np.full((2, 32, 48, 3), 100, np.uint8)
    out = hub.stylize(frames, code)
    assert out.shape == frames.shape
    expected = np.array([0.5 * 100 + 127.5, 50, 50])
    assert np.abs(out[0, 0, 0] - expected).max() <= 1
    assert not hub.mixable_codes
    blue = np.zeros((64, 64, 3), np.uint8)
    blue[..., 2] = 255
    for _ in range(3):  # fresh code arrays each time: the cached style tensor must follow them
        a = hub.stylize(frames[:1], hub.style_code(style))
        b = hub.stylize(frames[:1], hub.style_code(blue))
        assert a[0, 0, 0, 0] > 150 and b[0, 0, 0, 2] > 150


def test_fast_graph_equals_reference_graph(models_dir):
    """The space-to-depth rewrite changes only the order of the sums."""
    from realtime.model.backends.transfer_net import (
        TransferWeights,
        build_fast_transfer_fn,
        build_transfer_fn,
    )

    w = TransferWeights.from_tflite(models_dir / REQUIRED_FILES[1])
    ref_f, ref_u = build_transfer_fn(w)
    fast_f, fast_u = build_fast_transfer_fn(w)
    rng = np.random.default_rng(7)
    for b, h, wd in [(1, 64, 96), (3, 36, 44), (2, 120, 160)]:
        x = rng.random((b, h, wd, 3)).astype(np.float32)
        codes = rng.normal(0, 0.6, (b, 100)).astype(np.float32)
        a, f = ref_f(x, codes).numpy(), fast_f(x, codes).numpy()
        assert a.shape == f.shape == (b, h, wd, 3)
        assert np.abs(a - f).max() < 1e-4, (b, h, wd)
        u = (x * 255).astype(np.uint8)
        assert np.abs(ref_u(u, codes).numpy().astype(int) - fast_u(u, codes).numpy().astype(int)).max() <= 1


def test_kernel_rewrites_are_exact():
    """Each rewritten kernel, run on the rearranged input, equals the plain convolution."""
    import tensorflow as tf

    from realtime.model.backends.transfer_net import (
        s2d_same_kernel,
        s2d_stride2_kernel,
        subpixel_kernel,
    )

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(1, 16, 20, 3)).astype(np.float32))

    def refl(t, p):
        return tf.pad(t, [[0, 0], [p, p], [p, p], [0, 0]], "REFLECT")

    w9 = rng.normal(size=(9, 9, 3, 5)).astype(np.float32)
    plain = tf.nn.conv2d(refl(x, 4), w9, 1, "VALID")
    fast = tf.nn.depth_to_space(tf.nn.conv2d(tf.nn.space_to_depth(refl(x, 4), 2), s2d_same_kernel(w9), 1, "VALID"), 2)
    assert np.abs(plain.numpy() - fast.numpy()).max() < 1e-4

    w3 = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    plain = tf.nn.conv2d(refl(x, 1), w3, 2, "VALID")
    s = tf.pad(tf.nn.space_to_depth(x, 2), [[0, 0], [1, 0], [1, 0], [0, 0]], "SYMMETRIC")
    assert np.abs(plain.numpy() - tf.nn.conv2d(s, s2d_stride2_kernel(w3), 1, "VALID").numpy()).max() < 1e-4

    up = tf.image.resize(x, [32, 40], method="nearest")
    plain = tf.nn.conv2d(refl(up, 1), w3, 1, "VALID")
    sym = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC")
    fast = tf.nn.depth_to_space(tf.nn.conv2d(sym, subpixel_kernel(w3), 1, "VALID"), 2)
    assert np.abs(plain.numpy() - fast.numpy()).max() < 1e-4
