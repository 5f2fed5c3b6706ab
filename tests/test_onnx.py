"""The onnx backend on ONNX Runtime's CPU provider: the same pictures as openvino at any size and
batch, both graph formulations, provider choice, the cached graph file, the one-line errors, and an
end-to-end ``stylize image`` that imports neither TensorFlow nor PyTorch."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REQUIRED_FILES, ROOT, check_matches_openvino, content_image, photos

ort = pytest.importorskip("onnxruntime")


def _onnx(models_dir, cache_dir=None, **kw):
    from realtime.model.backends.onnx_backend import OnnxStylizer

    return OnnxStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], device=kw.pop("device", "cpu"),
                        threads=kw.pop("threads", 2), cache_dir=cache_dir, **kw)


@pytest.fixture(scope="module")
def onnx_stylizer(models_dir, tmp_path_factory):
    return _onnx(models_dir, tmp_path_factory.mktemp("onnx"))


@pytest.mark.parametrize("size", [(384, 384), (684, 384), (336, 208)])  # 336x208: odd multiples of 16
def test_matches_openvino_at_any_size_and_batch(onnx_stylizer, ov_stylizer, size):
    """float32 on the CPU provider within the project's 2e-3 of openvino (measured about 5e-6), batch
    1 and 4 with a code per frame, one session for every size; the codes are openvino's own."""
    frames, codes = check_matches_openvino(onnx_stylizer, ov_stylizer, *size)
    got = onnx_stylizer.stylize(frames, codes)
    assert got.dtype == np.uint8 and got.shape == frames.shape
    assert np.abs(got.astype(int) - ov_stylizer.stylize(frames, codes)).max() <= 1


def test_uint8_path_rounds_like_the_float_path(onnx_stylizer):
    frames = photos(128, 96, 3)
    codes = np.random.default_rng(1).normal(0, 0.5, (3, 100)).astype(np.float32)
    out = onnx_stylizer.stylize(frames, codes)
    ref = np.clip(onnx_stylizer.transfer(frames.astype(np.float32) / 255, codes) * 255 + 0.5, 0, 255).astype(np.uint8)
    assert out.dtype == np.uint8 and out.shape == frames.shape and out.flags.c_contiguous
    assert np.abs(out.astype(int) - ref).max() <= 1
    with pytest.raises(ValueError, match="multiples of 4"):
        onnx_stylizer.stylize(np.zeros((1, 30, 40, 3), np.uint8), codes[0])


def test_submit_runs_asynchronously_on_a_gpu_provider_and_in_order(onnx_stylizer, monkeypatch):
    """Video's path on a GPU provider: ``run_async`` with one batch in flight gives each batch its
    own pictures (here the CPU provider stands in, with the asynchronous path forced), and a
    failed run is an error naming ONNX Runtime; on the CPU provider submit runs at once."""
    from realtime.model.backends.base import Done
    from realtime.model.backends.onnx_backend import OnnxStylizer

    codes = np.random.default_rng(2).normal(0, 0.5, (3, 100)).astype(np.float32)
    batches = [photos(96, 64, 3), photos(96, 64, 2)[::-1].copy()]
    ref = [onnx_stylizer.stylize(b, codes[:len(b)]) for b in batches]
    assert not onnx_stylizer.asynchronous and isinstance(onnx_stylizer.submit(batches[0], codes), Done)
    monkeypatch.setattr(OnnxStylizer, "asynchronous", True)
    session, earlier, overlapped = onnx_stylizer._session(True), [], []
    real_run_async = session.run_async

    def run_async(names, feed, callback, work):  # one run at a time (DirectML allows no other)
        overlapped.append(not all(w._event.is_set() for w in earlier))
        earlier.append(work)

        def late(outputs, work, error):  # each run ends 0.2 s late: a second one started early would overlap it
            time.sleep(0.2)
            callback(outputs, work, error)

        return real_run_async(names, feed, late, work)

    monkeypatch.setattr(session, "run_async", run_async)
    first = onnx_stylizer.submit(batches[0], codes)
    second = onnx_stylizer.submit(batches[1], codes[:2])
    assert not isinstance(first, Done)
    assert np.array_equal(first.result(), ref[0]) and np.array_equal(second.result(), ref[1])
    assert overlapped == [False, False]
    broken = onnx_stylizer.submit(np.zeros((1, 4, 4, 3), np.uint8), codes[0])  # too small for the network's padding
    with pytest.raises(RuntimeError, match="ONNX Runtime failed: .*Pad"):
        broken.result()


def test_both_formulations_write_the_same_network(models_dir):
    """``plain`` and ``s2d`` (the one the backend builds) give the same sums in another order."""
    from realtime.model.backends.onnx_graph import CODES, FORMULATION, FRAMES, build_model
    from realtime.model.backends.transfer_net import TransferWeights

    assert FORMULATION == "s2d"
    w = TransferWeights.from_tflite(models_dir / REQUIRED_FILES[1])
    x = photos(168, 96, 2).astype(np.float32) / 255
    codes = np.random.default_rng(2).normal(0, 0.5, (2, 100)).astype(np.float32)
    outs = [ort.InferenceSession(build_model(w, False, f).SerializeToString(), providers=["CPUExecutionProvider"])
            .run(None, {FRAMES: x, CODES: codes})[0] for f in ("plain", "s2d")]
    assert np.abs(outs[0] - outs[1]).max() <= 1e-4
    with pytest.raises(ValueError, match="formulation"):
        build_model(w, False, "winograd")


ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider",
       "AzureExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize("device, listed, expect", [
    ("auto", ALL, ["TensorrtExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider",
                   "CPUExecutionProvider"]),  # preference order, only GPU providers and the CPU
    ("auto", ["CPUExecutionProvider", "CUDAExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]),
    ("auto", ["DmlExecutionProvider", "CPUExecutionProvider"], ["DmlExecutionProvider", "CPUExecutionProvider"]),
    ("auto", ["AzureExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]),  # CI's CPU build
    ("cpu", ALL, ["CPUExecutionProvider"]),  # --device cpu forces the CPU
    ("gpu", ["CoreMLExecutionProvider", "CPUExecutionProvider"], ["CoreMLExecutionProvider", "CPUExecutionProvider"]),
    ("gpu:1", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]),
])
def test_providers_in_preference_order(device, listed, expect):
    from realtime.model.backends.onnx_backend import pick_providers

    assert pick_providers(device, listed) == expect


@pytest.mark.parametrize("platform, hint", [
    ("win32", "pip uninstall onnxruntime, then pip install 'realtime[directml]' (DirectML: any DirectX 12 GPU)"),
    ("linux", "pip uninstall onnxruntime, then pip install 'realtime[onnx-gpu]' (CUDA), or --backend torch"),
    ("darwin", "pip install 'realtime[onnx]' (macOS's onnxruntime has CoreML), or --backend torch (MPS)"),
])
def test_device_gpu_without_a_gpu_provider_names_the_extra(platform, hint):
    from realtime.errors import UserError
    from realtime.model.backends.onnx_backend import pick_providers

    with pytest.raises(UserError) as err:
        pick_providers("gpu", ["AzureExecutionProvider", "CPUExecutionProvider"], platform)
    assert str(err.value) == f"--device gpu: ONNX Runtime here has no GPU provider (it lists Azure" \
                             f"ExecutionProvider, CPU): {hint}"
    assert "\n" not in str(err.value)


@pytest.mark.filterwarnings("ignore:Specified provider")  # ORT says it too, as a Python warning
def test_a_gpu_provider_that_does_not_start_is_said(models_dir, monkeypatch, caplog):
    """A listed CUDA provider whose libraries are missing: ONNX Runtime runs on the CPU instead.
    ``--device gpu`` makes that a one-line error; ``auto`` says it once and runs (simulated: the
    CPU build is told it lists CUDA, which it then cannot start)."""
    import logging

    from realtime.errors import UserError

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(UserError, match=r"^--device gpu: ONNX Runtime could not start CUDA \(its libraries or driver"):
        _onnx(models_dir, device="gpu")
    with caplog.at_level(logging.WARNING, logger="realtime"):
        s = _onnx(models_dir, device="auto")
    assert s.device.startswith("CPU via ONNX Runtime ")
    assert [r.getMessage() for r in caplog.records] == ["onnx: CUDA did not start; running on the CPU"]


def test_the_cached_graph_is_written_once_and_reused(models_dir, tmp_path, monkeypatch):
    """The first construction writes ``<cache>/onnx/<weights>-<sha>-s2d-g<version>-fp32-u8.onnx``; the next
    reads it (nothing built: the builder would fail), and a damaged file is written again."""
    from realtime.model.backends import onnx_backend
    from realtime.model.backends.onnx_graph import GRAPH_VERSION

    first = _onnx(models_dir, tmp_path)
    (path,) = first.built
    assert path.parent == tmp_path / "onnx" and path.name.endswith(f"-s2d-g{GRAPH_VERSION}-fp32-u8.onnx")
    assert path.name.startswith(REQUIRED_FILES[1].removesuffix(".tflite"))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    stat = path.stat()
    frames, code = photos(64, 48, 1), np.random.default_rng(3).normal(0, 0.5, 100).astype(np.float32)
    ref = first.stylize(frames, code)

    def no_build(self, uint8):
        raise AssertionError("rebuilt a cached graph")

    monkeypatch.setattr(onnx_backend.OnnxStylizer, "_build", no_build)
    second = _onnx(models_dir, tmp_path)
    assert second.built == [] and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert np.array_equal(second.stylize(frames, code), ref)
    monkeypatch.undo()
    path.write_bytes(b"not a graph")
    third = _onnx(models_dir, tmp_path)
    assert third.built == [path] and np.array_equal(third.stylize(frames, code), ref)


#: Runs ``stylize`` in this process, then says whether TensorFlow and PyTorch were imported.
CHECK = ("import sys; {pre}from realtime.cli import main; rc = main(sys.argv[1:]); "
         "print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'NO-TF', "
         "'TORCH' if sys.modules.get('torch') else 'NO-TORCH'); sys.exit(rc)")


def _stylize(args: list, pre: str = "", timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK.format(pre=pre), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_stylize_image_on_onnx_without_tensorflow_or_torch(models_dir, tmp_path):
    import os

    from realtime.io.images import read_image, write_image

    photo = write_image(tmp_path / "photo.png", content_image(160, 96))
    out = tmp_path / "out.png"
    r = _stylize(["image", photo, "-o", out, "--style", "waves", "--backend", "onnx"])
    assert r.returncode == 0, r.stderr
    assert "NO-TF NO-TORCH" in r.stdout, r.stderr
    assert "backend onnx on CPU via ONNX Runtime" in r.stderr and "precision float32 (auto: the CPU runs float32)" in r.stderr, r.stderr
    assert read_image(out).shape == (96, 160, 3)
    assert np.abs(read_image(out).astype(int) - read_image(photo)).mean() > 10  # stylized
    assert len(list((Path(os.environ["REALTIME_CACHE_DIR"]) / "onnx").glob("*.onnx"))) == 1  # conftest's cache


def test_missing_onnxruntime_is_one_line_naming_the_extra(models_dir, tmp_path):
    from realtime.io.images import write_image

    photo = write_image(tmp_path / "photo.png", content_image(64, 48))
    r = _stylize(["image", photo, "-o", tmp_path / "out.png", "--style", "waves", "--backend", "onnx"],
                 pre="sys.modules['onnxruntime'] = None; ")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("stylize: error: --backend onnx needs ONNX Runtime, which is not installed (pip install 'realtime[onnx]'")
    assert not (tmp_path / "out.png").exists()
