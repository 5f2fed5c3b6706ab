"""The torch backend: the same pictures as openvino and tf (float32 on the CPU), any size that is a
multiple of 4, batches, the one-line errors, live/video/image end to end, and no TensorFlow.

Everything here runs on the CPU build of PyTorch (requirements-test.lock); the tests marked
``cuda`` run where PyTorch sees a CUDA GPU (the GPU path: half precision, CUDA graphs, the copy
streams) and skip elsewhere.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
from conftest import REQUIRED_FILES, ROOT, check_matches_openvino, content_image, photos, style_photo

torch = pytest.importorskip("torch")



def cuda(test):
    """Marks a test of the GPU path (``-m cuda`` selects them) and skips it where PyTorch sees no CUDA GPU."""
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to PyTorch")(test))


@pytest.fixture(scope="module")
def torch_stylizer(models_dir, tmp_path_factory):
    from realtime.model.backends.torch_backend import TorchStylizer

    return TorchStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], device="cpu",
                         cache_dir=tmp_path_factory.mktemp("torch"))


@pytest.mark.parametrize("size", [(384, 384), (684, 384), (400, 224)])
def test_matches_openvino_at_any_size_and_batch(torch_stylizer, ov_stylizer, size):
    """float32 on the CPU within the project's 2e-3 of openvino (measured about 2e-5), batch 1 and 4
    with a code per frame; the style codes are openvino's own (one id, one cache)."""
    check_matches_openvino(torch_stylizer, ov_stylizer, *size)


def test_matches_tf(torch_stylizer, tf_stylizer):
    x = photos(684, 384, 1).astype(np.float32) / 255
    code = tf_stylizer.style_code(style_photo())
    assert np.abs(torch_stylizer.transfer(x, code) - tf_stylizer.transfer(x, code)).max() <= 2e-3


def test_uint8_path_rounds_like_the_float_path(torch_stylizer):
    frames = photos(128, 96, 3)
    codes = np.random.default_rng(1).normal(0, 0.5, (3, 100)).astype(np.float32)
    out = torch_stylizer.stylize(frames, codes)
    ref = np.clip(torch_stylizer.transfer(frames.astype(np.float32) / 255, codes) * 255 + 0.5, 0, 255).astype(np.uint8)
    assert out.dtype == np.uint8 and out.shape == frames.shape and out.flags.c_contiguous
    assert np.abs(out.astype(int) - ref).max() <= 1
    with pytest.raises(ValueError, match="multiples of 4"):
        torch_stylizer.stylize(np.zeros((1, 30, 40, 3), np.uint8), codes[0])


class _FakeStream:
    """Stands in for a CUDA stream or event on the CPU: the work runs at once, in order."""

    def __init__(self, *args, **kwargs):
        pass

    def wait_event(self, event):
        pass

    def wait_stream(self, stream):
        pass

    def synchronize(self):
        pass

    def record(self, stream=None):
        pass


def test_the_cuda_pipeline_chunks_and_slots_on_the_cpu(models_dir, monkeypatch):
    """The CUDA path's bookkeeping (chunks, the two slots per chunk size, the pinned buffers, the
    remainder chunk, a new size dropping the old buffers) with streams that run at once: each
    frame gets its own picture and code, call after call."""
    from realtime.model.backends import torch_backend
    from realtime.model.backends.torch_backend import TorchStylizer

    s = TorchStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], device="cpu", fixed_size=False)
    for name in ("Stream", "Event", "current_stream"):
        monkeypatch.setattr(torch.cuda, name, _FakeStream)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: __import__("contextlib").nullcontext())
    monkeypatch.setattr(torch_backend, "CHUNK_PIXELS", 2 * 64 * 48)  # two frames a chunk: 5 = 2 + 2 + 1
    frames = photos(64, 48, 5)
    codes = np.random.default_rng(6).normal(0, 0.5, (5, 100)).astype(np.float32)
    ref = s.stylize(frames, codes)
    for _ in range(2):
        assert np.array_equal(s._stylize_cuda(frames, codes), ref)
    assert list(s._runners) == [(2, 48, 64), (1, 48, 64)] and s._runners[(2, 48, 64)].calls == 4
    assert np.array_equal(s._stylize_cuda(frames[3:4], codes[3:4]), ref[3:4])
    half = np.ascontiguousarray(frames[:, :32])  # chunks of another batch size may round 1 apart
    assert np.abs(s._stylize_cuda(half, codes).astype(int) - s.stylize(half, codes)).max() <= 1
    assert list(s._runners) == [(3, 32, 64), (2, 32, 64)]  # the new size: chunks of 3 and a remainder of 2
    # Video's path: the next batch is queued before this one is collected (the other set of
    # pinned buffers), and a batch collected too late is an error, not another batch's picture.
    settled = []
    monkeypatch.setattr(s, "_settle", lambda: settled.append(len(s._done)))
    first = s._launch_cuda(frames[:2], codes[:2])
    assert settled  # a new size frees the old buffers only once the batches queued on them are done
    second = s._launch_cuda(frames[2:], codes[2:])
    assert np.array_equal(first.result(), ref[:2])
    third = s._launch_cuda(frames[:3], codes[:3])
    assert np.array_equal(second.result(), ref[2:]) and np.array_equal(third.result(), ref[:3])
    s._launch_cuda(frames[:1], codes[:1])
    with pytest.raises(RuntimeError, match="reused its buffers"):
        second.result()


def test_device_and_precision_words(models_dir, caplog):
    from realtime.model.backends.torch_backend import AUTO_GPU_HALF, TorchStylizer, pick_device, pick_dtype

    assert AUTO_GPU_HALF in ("mixed", "bf16")
    with caplog.at_level(logging.WARNING, logger="realtime"):
        s = TorchStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], device="cpu", precision="mixed")
    assert s.precision == "float32" and s.device.startswith("CPU via PyTorch ") and s.device.endswith("float32)")
    assert [r.getMessage() for r in caplog.records] == [
        "--precision mixed: the torch backend runs float32 on the CPU (for bf16 on a CPU: --backend openvino)"]
    assert pick_dtype(torch.device("cuda"), "auto") == {"mixed": torch.float16, "bf16": torch.bfloat16}[AUTO_GPU_HALF]
    assert pick_dtype(torch.device("cuda"), "bf16") == torch.bfloat16
    assert pick_dtype(torch.device("mps"), "auto") == torch.float16
    if not torch.cuda.is_available():
        from realtime.errors import UserError

        with pytest.raises(UserError, match=r"^--device gpu:1: PyTorch .* sees no CUDA or MPS GPU \(pip install 'realtime\[gpu\]'"):
            pick_device("gpu:1")
        assert pick_device("auto").type in ("cpu", "mps")


def test_a_cpu_only_pytorch_beside_a_driver_says_how_to_get_cuda(monkeypatch, caplog):
    """The real probe, with PyTorch's CPU build: no GPU, and one warning where a driver is loaded."""
    from realtime.model.backends import factory

    if torch.cuda.is_available() or torch.version.cuda is not None:
        pytest.skip("needs PyTorch's CPU build")
    monkeypatch.setattr(factory, "_gpu_present", lambda: True)
    factory._torch_sees_gpu.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="realtime"):
            assert factory._torch_sees_gpu(None) is False
            assert factory._torch_sees_gpu(None) is False  # asked once: cached
    finally:
        factory._torch_sees_gpu.cache_clear()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "is a CPU-only build: pip install --force-reinstall 'torch>=2.11'" in lines[0]


#: Runs ``stylize`` in this process, then says whether TensorFlow (and PyTorch) were imported.
CHECK = ("import sys; {pre}from realtime.cli import main; rc = main(sys.argv[1:]); "
         "print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'NO-TF', "
         "'TORCH' if sys.modules.get('torch') else 'NO-TORCH'); sys.exit(rc)")


def _stylize(args: list, pre: str = "", timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK.format(pre=pre), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("mode", ["image", "video", "live"])
def test_every_mode_on_torch_without_tensorflow(models_dir, tmp_path, mode):
    """``--backend torch`` (here on the CPU) runs image, video and live end to end through the one
    stage, style codes on OpenVINO, and never imports TensorFlow."""
    from realtime.io.images import read_image, write_image
    from realtime.io.synthetic import write_clip

    photo = write_image(tmp_path / "photo.png", content_image(160, 96))
    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=5, width=96, height=64, fps=10)
    out = tmp_path / ("out.png" if mode == "image" else "out.mp4")
    args = {"image": ["image", photo, "-o", out],
            "video": ["video", clip, "-o", out, "--quiet"],
            "live": ["live", "--source", clip, "--headless", "--max-frames", "3", "--fresh", "--record", out]}[mode]
    r = _stylize([*args, "--style", "waves", "--backend", "torch", "--device", "cpu"])
    assert r.returncode == 0, r.stderr
    assert "NO-TF TORCH" in r.stdout, r.stderr
    assert "backend torch on CPU via PyTorch" in r.stderr and "; precision float32 (auto: the CPU runs float32)" in r.stderr, r.stderr
    if mode == "image":
        assert read_image(out).shape == (96, 160, 3)
        assert np.abs(read_image(out).astype(int) - read_image(photo)).mean() > 10  # stylized
    else:
        assert out.stat().st_size > 0


def test_auto_on_a_cpu_machine_never_imports_torch(models_dir, tmp_path):
    """No NVIDIA driver and not a Mac: ``auto`` decides without importing PyTorch (a second)."""
    from realtime.model.backends.factory import _apple_silicon, _gpu_present

    if _gpu_present() or _apple_silicon():
        pytest.skip("a GPU may be here: auto asks PyTorch")
    from realtime.io.images import write_image

    photo = write_image(tmp_path / "photo.png", content_image(64, 48))
    r = _stylize(["image", photo, "-o", tmp_path / "out.png", "--style", "waves"])
    assert r.returncode == 0, r.stderr
    assert "NO-TF NO-TORCH" in r.stdout and "backend openvino" in r.stderr, r.stderr


def test_missing_torch_is_one_line_naming_the_extra(models_dir, tmp_path):
    from realtime.io.images import write_image

    photo = write_image(tmp_path / "photo.png", content_image(64, 48))
    r = _stylize(["image", photo, "-o", tmp_path / "out.png", "--style", "waves", "--backend", "torch"],
                 pre="sys.modules['torch'] = None; ")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("stylize: error: --backend torch needs PyTorch, which is not installed (pip install 'realtime[gpu]'")
    assert not (tmp_path / "out.png").exists()


# -- the GPU path (skipped without a CUDA GPU) ----------------------------------------------------

def _gpu(models_dir, **kw):
    from realtime.model.backends.torch_backend import TorchStylizer

    return TorchStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], device="gpu", **kw)


def _close_bytes(a: np.ndarray, b: np.ndarray) -> None:
    """Two uint8 results of the same network: kernels may round differently (cuDNN's choice), but
    a wrong buffer or a stale chunk would differ everywhere."""
    d = np.abs(a.astype(int) - b)
    assert d.mean() < 0.1 and (d > 2).mean() < 1e-3, (d.mean(), d.max())


@cuda
@pytest.mark.parametrize("precision, max_abs, mean_abs", [("mixed", 5e-2, 3e-3), ("bf16", 0.2, 8e-3), ("float32", 2e-3, 1e-4)])
def test_cuda_precisions_against_cpu_float32(models_dir, torch_stylizer, precision, max_abs, mean_abs):
    gpu = _gpu(models_dir, precision=precision, fixed_size=False)
    assert gpu.dev.type == "cuda" and gpu.precision == precision
    assert "via PyTorch" in gpu.device and " CUDA " in gpu.device
    x = photos(684, 384, 2).astype(np.float32) / 255
    code = np.random.default_rng(3).normal(0, 0.5, 100).astype(np.float32)
    d = np.abs(gpu.transfer(x, code) - torch_stylizer.transfer(x, code))
    assert d.max() < max_abs and d.mean() < mean_abs, (d.max(), d.mean())
    frames = photos(684, 384, 2)
    ref = torch_stylizer.stylize(frames, code)
    assert np.abs(gpu.stylize(frames, code).astype(int) - ref).mean() < 255 * mean_abs
    gpu.close()


@cuda
def test_cuda_pipeline_and_graphs_match_eager(models_dir):
    """Chunks through the copy streams and CUDA graphs give the eager network's bytes, for a batch
    of several chunks (1280x720: one frame each), call after call, and a new size drops the old."""
    from realtime.model.backends.torch_backend import AUTO_GPU_HALF

    gpu = _gpu(models_dir, precision="auto", fixed_size=True)
    assert gpu.precision == AUTO_GPU_HALF and gpu.use_graphs and "CUDA graphs" in gpu.device
    codes = np.random.default_rng(4).normal(0, 0.5, (3, 100)).astype(np.float32)
    frames = photos(1280, 720, 3)
    with torch.inference_mode():
        eager = gpu.net.forward_uint8(torch.from_numpy(frames).to(gpu.dev), torch.from_numpy(codes).to(gpu.dev)).cpu().numpy()
    gpu.warmup(1280, 720, 3)
    for _ in range(3):
        _close_bytes(gpu.stylize(frames, codes), eager)
    assert all(s.graph is not None for r in gpu._runners.values() for s in r.slots)
    _close_bytes(gpu.stylize(frames[1:2], codes[1]), eager[1:2])
    first = gpu.submit(frames, codes)  # video's path: the next batch queued before this one is collected
    second = gpu.submit(frames[::-1].copy(), codes[::-1].copy())
    _close_bytes(first.result(), eager)
    _close_bytes(second.result(), eager[::-1])
    small = photos(384, 384, 4)
    assert gpu.stylize(small, codes[0]).shape == small.shape
    assert all(k[1:] == (384, 384) for k in gpu._runners)
    gpu.close()


@cuda
def test_cuda_torch_compile_or_a_logged_fallback(models_dir, caplog):
    """``engine.xla`` auto (live, video) adds torch.compile where Triton is there; whatever happens,
    the pictures are the eager network's, and a failure is one log line, not an error."""
    gpu = _gpu(models_dir, precision="mixed", fixed_size=True, jit=True)
    codes = np.random.default_rng(5).normal(0, 0.5, (2, 100)).astype(np.float32)
    frames = photos(256, 256, 2)
    with torch.inference_mode():
        eager = gpu.net.forward_uint8(torch.from_numpy(frames).to(gpu.dev), torch.from_numpy(codes).to(gpu.dev)).cpu().numpy()
    with caplog.at_level(logging.WARNING, logger="realtime"):
        for _ in range(3):
            _close_bytes(gpu.stylize(frames, codes), eager)
    assert len(caplog.records) <= 2, [r.getMessage() for r in caplog.records]  # at most compile and graph, once each
    gpu.close()


@cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_gpu_n_picks_the_nth_cuda_device():
    from realtime.model.backends.torch_backend import pick_device

    assert pick_device("gpu:1") == torch.device("cuda", 1)


@cuda
def test_cuda_stability_carry_runs_on_the_gpu_and_matches_opencv(models_dir):
    """With torch on CUDA the stage warps and blends on the GPU: the stream's memory is a CUDA
    tensor and the pictures are OpenCV's within a grey level or two."""
    from realtime.pipeline.stage import StylizeStage
    from realtime.pipeline.state import StreamState

    gpu = _gpu(models_dir, precision="auto", fixed_size=True)
    stage, cpu_stage = StylizeStage(gpu), StylizeStage(gpu, stability_device="cpu")
    assert stage.carry is not None and cpu_stage.carry is None
    ours, ref = StreamState(0.55), StreamState(0.55)
    frames = [np.ascontiguousarray(np.roll(photos(684, 384, 1)[0], 3 * i, axis=1)[..., ::-1]) for i in range(6)]
    code = np.random.default_rng(3).normal(0, 0.5, 100).astype(np.float32)
    for f in frames:
        batch = stage.preprocess([f])
        styled = stage.infer(batch, code)
        a = stage.postprocess(batch, styled, (684, 384), ours)[0]
        b = cpu_stage.postprocess(batch, styled, (684, 384), ref)[0]
        d = np.abs(a.astype(int) - b)
        assert d.mean() < 0.3 and d.max() <= 3, (d.mean(), d.max())
    assert ours.temporal._prev_out.device.type == "cuda"
    gpu.close()
