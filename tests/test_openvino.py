"""The openvino backend: the same pictures as the tf backend (float32), any size, batches,
``stylize image`` without TensorFlow, a box without TensorFlow at all, and ``--precision bf16``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REQUIRED_FILES, ROOT, content_image

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def ov_stylizer(models_dir, tmp_path_factory):
    from realtime.model.backends.openvino_backend import OpenVINOStylizer

    return OpenVINOStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], cache_dir=tmp_path_factory.mktemp("ov"))


def _code(stylizer, seed=3):
    rng = np.random.default_rng(seed)
    style = (np.clip(rng.normal(0.5, 0.25, (64, 64, 3)), 0, 1) * 255).astype(np.uint8)
    return stylizer.style_code(style)


@pytest.mark.parametrize("size", [(384, 384), (160, 96)])
def test_float32_matches_the_tf_backend(ov_stylizer, tf_stylizer, size):
    w, h = size
    code = _code(tf_stylizer)
    images = content_image(w, h)[None].astype(np.float32) / 255
    ours = ov_stylizer.transfer(images, code)
    ref = tf_stylizer.transfer(images, code)
    assert ours.shape == (1, h, w, 3)
    assert np.abs(ours - ref).max() <= 2e-3  # the project's bound for float32 rewrites (measured 3e-4)
    assert np.abs(ref - images).mean() > 0.05  # stylized: a pass-through could not match


def test_uint8_path_batches_and_per_frame_codes(ov_stylizer):
    a, b = _code(ov_stylizer, 1), _code(ov_stylizer, 2)
    frames = np.stack([content_image(128, 96, 1), content_image(128, 96, 7)])
    floats = ov_stylizer.transfer(frames.astype(np.float32) / 255, np.stack([a, b]))
    out = ov_stylizer.stylize(frames, np.stack([a, b]))
    assert out.dtype == np.uint8 and out.shape == frames.shape
    assert np.abs(out.astype(np.float32) - np.clip(floats * 255 + 0.5, 0, 255).astype(np.uint8)).max() <= 1
    one = ov_stylizer.stylize(frames[1:], b)
    assert np.abs(one[0].astype(int) - out[1]).max() <= 1
    for w in (64, 72, 80, 88):  # sizes come and go; only the newest few stay compiled
        ov_stylizer.stylize(np.zeros((1, 48, w, 3), np.uint8), a)
    assert len(ov_stylizer._compiled) <= 3


def test_style_codes_agree_with_tflite_within_int8_rounding(ov_stylizer, tf_stylizer):
    """Both run the int8 style network; runtimes round a few of the 100 values one or two
    quantisation steps (0.0199) apart, so the caches are kept apart by model id."""
    for seed in range(3):
        assert np.abs(_code(ov_stylizer, seed) - _code(tf_stylizer, seed)).max() <= 0.041
    assert ov_stylizer.style_model_id != tf_stylizer.style_model_id


def test_style_network_is_compiled_only_when_a_code_is_needed(models_dir, tmp_path):
    """A show whose style codes are cached never loads the style network (memory on small boxes)."""
    from realtime.model.backends.openvino_backend import OpenVINOStylizer

    ov = OpenVINOStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], cache_dir=tmp_path)
    frames = np.ascontiguousarray(content_image(64, 48)[None])
    assert ov.stylize(frames, np.zeros(100, np.float32)).shape == (1, 48, 64, 3)
    assert ov._predict is None
    assert _code(ov).shape == (100,) and ov._predict is not None


def test_auto_backend_picks_openvino_for_still_images_only(cfg_factory):
    from realtime.model.backends.factory import resolve_backend

    cfg = cfg_factory()
    assert cfg.engine.backend == "auto"
    gpu = os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/version")
    assert resolve_backend(cfg, fixed_size=False) == ("tf" if gpu else "openvino")
    assert resolve_backend(cfg, fixed_size=True) == "tf"
    assert resolve_backend(cfg_factory(**{"engine.backend": "tflite"}), fixed_size=False) == "tflite"
    assert resolve_backend(cfg_factory(**{"engine.device": "gpu"}), fixed_size=False) == "tf"


def test_stylize_image_never_imports_tensorflow(models_dir, tmp_path):
    from realtime.io.images import read_image, write_image

    photo = write_image(tmp_path / "photo.png", content_image(360, 240))
    out = tmp_path / "out.png"
    code = (
        "import sys; from realtime.cli import main; rc = main(sys.argv[1:]); "
        "print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'NO-TF'); sys.exit(rc)"
    )
    args = ["image", str(photo), "--style", "waves", "-o", str(out), "--model-dir", str(models_dir), "--no-download"]
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "NO-TF" in r.stdout and "backend openvino" in r.stderr
    assert read_image(out).shape == (240, 360, 3)
    assert np.abs(read_image(out).astype(int) - read_image(photo)).mean() > 10  # stylized
    r = subprocess.run([sys.executable, "-m", "realtime", *args[:-3], "--backend", "openvino", "--precision", "mixed", "--model-dir", str(models_dir), "--overwrite"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "runs float32" in r.stderr
    from realtime.model.backends.base import cpu_bf16

    r = subprocess.run([sys.executable, "-m", "realtime", *args[:-3], "--backend", "openvino", "--precision", "bf16", "--model-dir", str(models_dir), "--overwrite"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ("bf16 (lower precision)" if cpu_bf16() else "running float32") in r.stderr


def test_cpu_bf16_reads_the_flags(tmp_path):
    from realtime.model.backends.base import cpu_bf16

    info = tmp_path / "cpuinfo"
    for flags, expect in (("fpu avx512f avx512_bf16 amx_bf16 amx_tile", "amx"), ("fpu avx512f avx512_bf16", "avx512"), ("fpu avx2", "")):
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert cpu_bf16(str(info)) == expect
    assert cpu_bf16(str(tmp_path / "missing")) == ""


@pytest.mark.parametrize("backend", ["openvino", "tf"])
def test_bf16_is_a_lower_precision_mode_close_to_float32(cfg_factory, backend, request):
    """``--precision bf16`` where the CPU has bf16 instructions (measured: 3.4x faster with AMX, slower
    without it), float32 with a warning where it has none; never chosen by itself."""
    from realtime.model.backends import create_stylizer
    from realtime.model.backends.base import cpu_bf16

    import cv2

    from realtime.io import synthetic
    from realtime.io.images import read_image

    b16 = create_stylizer(cfg_factory(**{"engine.backend": backend, "engine.precision": "bf16", "engine.xla": "never"}))
    f32 = request.getfixturevalue("ov_stylizer" if backend == "openvino" else "tf_stylizer")
    assert cfg_factory().engine.precision == "float32"
    code = f32.style_code(read_image(ROOT / "styles" / "waves.jpg"))
    # Textured content, like photos: on flat gradients the network amplifies tiny differences and
    # bf16 paints other (equally plausible) texture there, 0.03-0.05 mean off (README).
    textured = cv2.resize(synthetic.mosaic(256), (160, 96), interpolation=cv2.INTER_AREA)
    images = textured[None].astype(np.float32) / 255
    diff = np.abs(b16.transfer(images, code) - f32.transfer(images, code))
    frames = np.ascontiguousarray(textured[None])
    pictures = np.abs(b16.stylize(frames, code).astype(int) - f32.stylize(frames, code))
    b16.close()
    if not cpu_bf16():  # no bf16 instructions: float32, said in a warning
        assert b16.precision == "float32" and "bf16" not in b16.device
        assert diff.max() <= 2e-3
        return
    if b16.precision != "bf16":  # the flag is there but the runtime does not offer bf16 on it
        assert backend == "openvino" and "bf16" not in b16.device and diff.max() <= 2e-3
        return
    assert "bf16 (lower precision)" in b16.device
    # measured: real photos max 0.03-0.11, mean 0.0016-0.0021; this picture max 0.05, mean 0.003-0.004
    assert 1e-4 < diff.mean() <= 8e-3 and diff.max() <= 0.2
    assert pictures.mean() <= 2.5


def test_openvino_alone_without_tensorflow(models_dir, tmp_path):
    """A box with OpenVINO and no TensorFlow: ``auto`` takes openvino for live and video too, and
    asking for a TensorFlow backend is one line, not a traceback."""
    from realtime.io.images import write_image

    photo = write_image(tmp_path / "photo.png", content_image(160, 96))
    block = "import sys; sys.modules['tensorflow'] = None; from realtime.cli import main; sys.exit(main(sys.argv[1:]))"
    common = ["--model-dir", str(models_dir), "--no-download"]
    r = subprocess.run([sys.executable, "-c", block, "image", str(photo), "--style", "waves", "--backend", "tf", "-o", str(tmp_path / "a.png"), *common],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("stylize: error: --backend tf needs TensorFlow, which is not installed")
    assert not (tmp_path / "a.png").exists()
    r = subprocess.run([sys.executable, "-c", block, "image", str(photo), "--style", "waves", "--device", "gpu", "-o", str(tmp_path / "a.png"), *common],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("stylize: error: --device gpu needs the tf backend")
    clip = tmp_path / "clip.mp4"
    from realtime.io.synthetic import write_clip

    write_clip(clip, frames=6, width=64, height=48, fps=10)
    r = subprocess.run([sys.executable, "-c", block, "video", str(clip), "--style", "waves", "-o", str(tmp_path / "out.mp4"), *common],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "backend openvino" in r.stderr and (tmp_path / "out.mp4").stat().st_size > 0
