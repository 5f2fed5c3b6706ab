"""The full model (--backend hub / --model full) with a precomputed style: the split is found in a
SavedModel built like Magenta's export, reproduces the two-input call, and codes mix; a SavedModel
without that structure falls back to the per-frame call with one warning."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from magenta_like import save_magenta_like

from realtime.io.images import read_image, style_input, write_image


@pytest.fixture(scope="module")
def magenta_model(tmp_path_factory):
    return save_magenta_like(tmp_path_factory.mktemp("hub") / "magenta_like")


@pytest.fixture()
def fresh_caches():
    from realtime.model.backends import hub_backend

    hub_backend._MODULES.clear()
    hub_backend._SPLITS.clear()
    yield
    hub_backend._MODULES.clear()
    hub_backend._SPLITS.clear()


def _images(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:64]
    content = np.stack([xx * 4, yy * 5, (xx // 8 + yy // 8) % 2 * 255], -1).astype(np.uint8)
    style = (rng.random((80, 120, 3)) * 255).astype(np.uint8)
    return content, style


def test_split_reproduces_the_two_input_call(magenta_model, tmp_path, fresh_caches, caplog):
    import tensorflow as tf

    from realtime.model.backends.hub_backend import HubStylizer

    caplog.set_level(logging.INFO, "realtime")
    hub = HubStylizer(str(magenta_model), tmp_path)
    assert hub.split is not None, hub.fallback_reason
    assert hub.mixable_codes and "precomputed style" in hub.device
    assert "self-check" in caplog.text and not any(r.levelno >= logging.WARNING for r in caplog.records)
    content, style = _images()
    code = hub.style_code(style)
    assert code.shape == (100,) and code.dtype == np.float32
    frames = np.stack([content, content[::-1]])
    ours = hub.transfer(frames.astype(np.float32) / 255, code)
    whole = hub._module(tf.constant(frames.astype(np.float32) / 255), tf.constant(style_input(style)))[0].numpy()
    assert np.abs(ours - whole).max() <= 1e-5
    assert whole.std() > 0.05  # a real picture, not a constant that would match anything
    # the uint8 path agrees with the float path (rounded), per-frame codes are honoured
    u8 = hub.stylize(frames, code)
    assert np.abs(u8.astype(np.float32) - ours * 255).max() <= 1.0
    other = hub.style_code(_images(1)[1])
    mixed = hub.stylize(frames, np.stack([code, other]))
    assert np.array_equal(mixed[0], u8[0]) and not np.array_equal(mixed[1], u8[1])


def test_strength_zero_gives_the_contents_own_look_and_codes_are_cached(magenta_model, tmp_path, fresh_caches):
    import tensorflow as tf

    from realtime.model.backends.hub_backend import HubStylizer
    from realtime.model.styles import Style, StyleBank, StyleCodeCache, apply_strength

    hub = HubStylizer(str(magenta_model), tmp_path)
    content, style = _images()
    style_path = write_image(tmp_path / "style.png", style)
    calls = []
    real_style_code = hub.style_code
    hub.style_code = lambda rgb: calls.append(1) or real_style_code(rgb)  # type: ignore[method-assign]
    bank = StyleBank(hub, StyleCodeCache(tmp_path / "codes"))
    code = bank.code_for(Style("s", style_path))
    assert calls == [1] and list((tmp_path / "codes").glob("*.npy"))
    again = StyleBank(hub, StyleCodeCache(tmp_path / "codes")).code_for(Style("s", style_path))
    assert calls == [1] and np.array_equal(code, again)  # second time from the disk cache

    own = hub.style_code(content)
    zero = hub.transfer(content[None].astype(np.float32) / 255, apply_strength(code, own, 0.0))
    itself = hub._module(tf.constant(content[None].astype(np.float32) / 255), tf.constant(style_input(content)))[0].numpy()
    assert np.abs(zero - itself).max() <= 1e-5  # strength 0 = the content stylized by itself
    full = hub.transfer(content[None].astype(np.float32) / 255, code)
    half = hub.transfer(content[None].astype(np.float32) / 255, apply_strength(code, own, 0.5))
    assert 0 < np.abs(half - zero).mean() < np.abs(full - zero).mean()


def test_a_savedmodel_without_the_structure_falls_back_with_one_warning(tmp_path, fresh_caches, caplog):
    from test_backends import toy_hub_model

    from realtime.model.backends.hub_backend import HubStylizer

    hub = HubStylizer(str(toy_hub_model(tmp_path / "toy")), tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no 100-number style code" in warnings[0] and "style network on every frame" in warnings[0]
    assert hub.split is None and not hub.mixable_codes and "per frame" in hub.device
    assert hub.style_code(np.zeros((8, 8, 3), np.uint8)).shape == (256, 256, 3)


def test_a_split_that_does_not_reproduce_the_call_is_refused(magenta_model, tmp_path, fresh_caches, caplog, monkeypatch):
    from realtime.model.backends import hub_backend, hub_split

    real = hub_split.split_hub_module

    def off_by_a_bit(module):
        s = real(module)
        return hub_split.HubSplit(s.style_fn, lambda c, code: [s.image_fn(c, code)[0] * 0.99], s.where)

    monkeypatch.setattr(hub_backend, "split_hub_module", off_by_a_bit)
    hub = hub_backend.HubStylizer(str(magenta_model), tmp_path)
    assert hub.split is None and "differs from the model's own call" in hub.fallback_reason
    assert "differs from the model's own call" in caplog.text


def test_prune_function_cuts_a_graph_at_an_inner_tensor():
    """The one use of TensorFlow internals, on its own: feed an inner tensor, fetch another."""
    import tensorflow as tf

    from realtime.model.backends.hub_split import prune_function

    v = tf.Variable(3.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def f(x):
        y = tf.multiply(x, v, name="inner")
        return tf.add(y, 1.0, name="out")

    cf = f.get_concrete_function()
    inner = cf.graph.get_tensor_by_name("inner:0")
    second_half = prune_function(cf, [inner], [cf.outputs[0]])
    first_half = prune_function(cf, [cf.inputs[0]], [inner])
    x = tf.constant([1.0, 2.0])
    assert np.allclose(second_half(tf.constant([10.0]))[0], [11.0])
    assert np.allclose(second_half(first_half(x)[0])[0], f(x))


def test_full_model_from_the_command_line(magenta_model, tmp_path):
    content, style = _images()
    src = write_image(tmp_path / "in.png", content)
    sty = write_image(tmp_path / "style.png", style)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "realtime", "image", str(src), "--style", str(sty), "--hub-handle", str(magenta_model), *map(str, args)], capture_output=True, text=True, timeout=300)

    r = run("-o", tmp_path / "full.png", "--model", "full", "--strength", "0.5")
    assert r.returncode == 0, r.stderr
    assert "full model, precomputed style" in r.stderr
    half = read_image(tmp_path / "full.png")
    r = run("-o", tmp_path / "one.png", "--model", "full")
    assert r.returncode == 0, r.stderr
    assert half.shape == content.shape and np.abs(half.astype(int) - read_image(tmp_path / "one.png")).mean() > 1
    r = run("-o", tmp_path / "x.png", "--model", "full", "--backend", "tflite")
    assert r.returncode == 2 and "disagree" in r.stderr and not (tmp_path / "x.png").exists()
