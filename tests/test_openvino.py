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
    for w in (64, 72, 80, 88):  # sizes come and go; only the newest stays compiled
        ov_stylizer.stylize(np.zeros((1, 48, w, 3), np.uint8), a)
    assert list(ov_stylizer._compiled) == [(True, 1, 48, 88)]
    ov_stylizer.stylize(np.zeros((3, 48, 88, 3), np.uint8), a)  # two batch sizes of one frame size: both kept
    assert list(ov_stylizer._compiled) == [(True, 1, 48, 88), (True, 3, 48, 88)]


def test_submitted_batches_run_side_by_side_and_come_back_in_order(ov_stylizer):
    """Video's path (``submit``: single frames on OpenVINO's streams, one batch in flight) gives
    the pictures of the latency network, each batch its own frames and codes, whatever the
    number of requests against the batch size."""
    codes = [_code(ov_stylizer, s) for s in (1, 2, 3)]
    batches = [np.stack([content_image(96, 64, 3 * i + j) for j in range(n)]) for i, n in enumerate((5, 3, 1))]
    ref = [ov_stylizer.stylize(b, c) for b, c in zip(batches, codes)]
    first = ov_stylizer.submit(batches[0], codes[0])
    streams = ov_stylizer._compiled[(True, 0, 64, 96)]
    assert str(streams.compiled.get_property("PERFORMANCE_HINT")).endswith("THROUGHPUT")
    assert 1 <= len(streams.requests) <= 2 * 5  # no more requests than two batches of frames
    assert any(owner is not None for owner in streams.owner)  # submit returned with frames still running
    second = ov_stylizer.submit(batches[1], codes[1])
    got = [first.result()]
    third = ov_stylizer.submit(batches[2], codes[2])
    got += [second.result(), third.result()]
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == np.uint8
        assert np.abs(g.astype(int) - r).max() <= 1
    other = ov_stylizer.stylize(batches[1], codes[0])
    assert np.abs(other.astype(int) - got[1]).mean() > 2  # each batch had its own code
    assert all(owner is None for owner in streams.owner)  # every frame collected


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
    assert ov._predictor.compiled is None
    assert _code(ov).shape == (100,) and ov._predictor.compiled is not None


def _gpu_driver() -> bool:
    return os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/version")


def test_auto_backend_is_openvino_on_cpus_in_every_mode(cfg_factory):
    """Issue 25: ``auto`` no longer picks TensorFlow for live and video on a CPU (10 s to the first
    frame, 900 MB); the GPU path (``--device gpu``, an NVIDIA driver) is still ``tf``."""
    from realtime.model.backends.factory import resolve_backend

    cfg = cfg_factory()
    assert cfg.engine.backend == "auto" and cfg.engine.precision == "auto"
    assert resolve_backend(cfg) == ("tf" if _gpu_driver() else "openvino")
    assert resolve_backend(cfg_factory(**{"engine.device": "cpu"})) == "openvino"
    assert resolve_backend(cfg_factory(**{"engine.backend": "tflite"})) == "tflite"
    assert resolve_backend(cfg_factory(**{"engine.device": "gpu"})) == "tf"


#: Runs ``stylize`` in this process, then says whether TensorFlow was imported on the way.
NO_TF_CHECK = ("import sys; from realtime.cli import main; rc = main(sys.argv[1:]); "
               "print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'NO-TF'); sys.exit(rc)")


@pytest.mark.parametrize("mode", ["image", "video", "live"])
def test_default_flags_never_import_tensorflow(models_dir, tmp_path, mode):
    """``stylize image``, ``video`` and ``live`` with default flags run on OpenVINO without ever
    importing TensorFlow, and the start-up line says which precision ``auto`` chose and why."""
    from realtime.io.images import read_image, write_image
    from realtime.io.synthetic import write_clip
    from realtime.model.backends.base import cpu_bf16

    photo = write_image(tmp_path / "photo.png", content_image(360, 240))
    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=6, width=96, height=64, fps=10)
    out = tmp_path / ("out.png" if mode == "image" else "out.mp4")
    args = {"image": ["image", str(photo), "-o", str(out)],
            "video": ["video", str(clip), "-o", str(out), "--quiet"],
            "live": ["live", "--source", str(clip), "--headless", "--max-frames", "3", "--fresh"]}[mode]
    args += ["--style", "waves"] + (["--device", "cpu"] if _gpu_driver() else [])  # a GPU machine: auto is tf there
    r = subprocess.run([sys.executable, "-c", NO_TF_CHECK, *args], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "NO-TF" in r.stdout, r.stderr
    from realtime.backends_table import FAST_BF16

    auto = f"bf16 (auto: {FAST_BF16[cpu_bf16()]}" if cpu_bf16() in FAST_BF16 else "float32 (auto"
    assert "backend openvino on CPU" in r.stderr and f"; precision {auto}" in r.stderr, r.stderr
    if mode == "image":
        assert read_image(out).shape == (240, 360, 3)
        assert np.abs(read_image(out).astype(int) - read_image(photo)).mean() > 10  # stylized
    elif mode == "video":
        assert out.stat().st_size > 0


def test_precision_flags_on_the_command_line(models_dir, tmp_path):
    """``--precision float32`` opts out of auto's bf16; ``mixed`` is not for openvino (float32, a
    warning); ``bf16`` runs bf16 where the CPU has bfloat16 instructions."""
    from realtime.io.images import write_image
    from realtime.model.backends.base import cpu_bf16

    photo = write_image(tmp_path / "photo.png", content_image(160, 96))
    args = ["image", str(photo), "--style", "waves", "-o", str(tmp_path / "out.png"), "--overwrite", "--backend", "openvino"]

    def run(precision: str) -> str:
        r = subprocess.run([sys.executable, "-m", "realtime", *args, "--precision", precision], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stderr

    err = run("float32")
    assert "; precision float32\n" in err and "bf16" not in err
    assert "runs float32" in run("mixed")
    err = run("bf16")
    assert ("bf16 (lower precision)" if cpu_bf16() else "running float32") in err


def test_style_code_cache_keeps_each_runtimes_codes_apart(models_dir, tmp_path, ov_stylizer, tflite_stylizer, tf_stylizer):
    """OpenVINO runs the int8 style network differently from TF Lite (a code value or two one
    quantisation step apart; 1.2% on an AMX machine), so one cache folder never hands one
    runtime's codes to the other; tf and tflite share theirs (the same interpreter, the same
    codes); the transfer precision does not enter the key (the style network is float32 always)."""
    from realtime.io.images import read_image
    from realtime.model.backends.openvino_backend import OpenVINOStylizer
    from realtime.model.styles import SHIPPED_STYLES, StyleBank, StyleCodeCache, find_style_images

    style = find_style_images("waves", SHIPPED_STYLES)[0]
    rgb = read_image(style.path)
    cache = StyleCodeCache(tmp_path / "codes")
    planted = np.full(100, 7.0, np.float32)  # what openvino's entry holds: only openvino may get it
    cache.put(cache.key(style.path.read_bytes(), ov_stylizer.style_model_id), planted)
    assert np.array_equal(StyleBank(ov_stylizer, cache).code_for(style), planted)
    lite = StyleBank(tflite_stylizer, cache).code_for(style)
    assert not np.array_equal(lite, planted)
    assert np.array_equal(lite, tflite_stylizer.style_code(rgb))
    assert np.array_equal(StyleBank(tf_stylizer, cache).code_for(style), lite)  # tf: tflite's entry
    assert np.array_equal(tf_stylizer.style_code(rgb), lite)
    assert len(list((tmp_path / "codes").glob("*.npy"))) == 2
    b16 = OpenVINOStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], precision="bf16",
                           cache_dir=tmp_path / "ov")
    assert b16.style_model_id == ov_stylizer.style_model_id
    assert np.array_equal(b16.style_code(rgb), ov_stylizer.style_code(rgb))


def test_cpu_bf16_reads_the_flags(tmp_path):
    from realtime.model.backends.base import cpu_bf16

    info = tmp_path / "cpuinfo"
    for vendor, flags, expect in (("GenuineIntel", "fpu avx512f avx512_bf16 amx_bf16 amx_tile", "amx"),
                                  ("GenuineIntel", "fpu avx512f avx512_bf16", "avx512"),
                                  ("AuthenticAMD", "fpu avx512f avx512_bf16", "zen"),  # Zen 4+: native bf16
                                  ("AuthenticAMD", "fpu avx2", ""), ("GenuineIntel", "fpu avx2", "")):
        info.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: {flags}\n")
        assert cpu_bf16(str(info)) == expect
    assert cpu_bf16(str(tmp_path / "missing")) == ""


@pytest.mark.parametrize("backend", ["openvino", "tf"])
def test_bf16_is_a_lower_precision_mode_close_to_float32(cfg_factory, backend, request):
    """``--precision bf16`` where the CPU has bf16 instructions (measured: 3.4x faster with AMX, slower
    without it), float32 with a warning where it has none; chosen by itself (--precision auto) only on AMX."""
    from realtime.model.backends import create_stylizer
    from realtime.model.backends.base import cpu_bf16

    import cv2

    from realtime.io import synthetic
    from realtime.io.images import read_image

    b16 = create_stylizer(cfg_factory(**{"engine.backend": backend, "engine.precision": "bf16", "engine.xla": "never"}))
    f32 = request.getfixturevalue("ov_stylizer" if backend == "openvino" else "tf_stylizer")
    assert cfg_factory().engine.precision == "auto"  # bf16 by itself only with openvino on AMX
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
    block = ("import sys; sys.modules['tensorflow'] = None; sys.modules['torch'] = None; sys.modules['onnxruntime'] = None; "  # OpenVINO only
             "from realtime.cli import main; sys.exit(main(sys.argv[1:]))")
    common = ["--model-dir", str(models_dir), "--no-download"]
    r = subprocess.run([sys.executable, "-c", block, "image", str(photo), "--style", "waves", "--backend", "tf", "-o", str(tmp_path / "a.png"), *common],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("stylize: error: --backend tf needs TensorFlow, which is not installed")
    assert not (tmp_path / "a.png").exists()
    r = subprocess.run([sys.executable, "-c", block, "image", str(photo), "--style", "waves", "--device", "gpu", "-o", str(tmp_path / "a.png"), *common],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("stylize: error: --device gpu needs the torch backend")
    clip = tmp_path / "clip.mp4"
    from realtime.io.synthetic import write_clip

    write_clip(clip, frames=6, width=64, height=48, fps=10)
    r = subprocess.run([sys.executable, "-c", block, "video", str(clip), "--style", "waves", "-o", str(tmp_path / "out.mp4"), *common],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "backend openvino" in r.stderr and (tmp_path / "out.mp4").stat().st_size > 0


def test_a_frame_that_fails_is_raised_by_its_own_batch_not_by_the_next():
    """Streams' bookkeeping with stand-in requests: frames go round robin, a request is collected
    when it is needed again, and a failed frame's error is raised by the batch it belongs to,
    even when the next batch's submit is what waited for it."""
    from realtime.model.backends.openvino_backend import Streams

    class Request:
        def __init__(self):
            self.input, self.fail = None, False

        def start_async(self, inputs):
            self.input = inputs[0].copy()
            self.fail = bool((inputs[0] == 13).all())  # a frame of 13s "crashes the device"

        def wait(self):
            if self.fail:
                raise RuntimeError("device lost")

        def get_output_tensor(self, i):
            return type("T", (), {"data": self.input + 1})()

    class Compiled:
        def get_property(self, name):
            assert name == "OPTIMAL_NUMBER_OF_INFER_REQUESTS"
            return 2

        def create_infer_request(self):
            return Request()

    streams = Streams(Compiled())
    codes = np.zeros((3, 1, 1, 100), np.float32)
    good = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (1, 2, 3)])
    bad = good.copy()
    bad[1] = 13
    first = streams.submit(bad, codes)  # frame 1 fails
    second = streams.submit(good, codes)  # waits for first's requests: must not raise here
    with pytest.raises(RuntimeError, match="device lost"):
        first.result()
    assert np.array_equal(second.result(), good + 1)
    assert all(owner is None for owner in streams.owner)
