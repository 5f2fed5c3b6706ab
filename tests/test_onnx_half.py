"""The onnx backend's float16 graph (``--precision mixed``; ``auto`` on a GPU provider).

What a CPU-only machine can check, and how:

- its structure: ``onnx.checker`` (in ``build_model``), every convolution's weights and bias float16,
  and (by ONNX's type inference) every convolution computing in float16 while every instance norm,
  its gamma/beta and the last sigmoid compute in float32; the inputs and outputs are the float32
  graph's.
- its numerics with real float16 rounding: ONNX Runtime's CPU provider does run the graph, but it
  has no float16 kernels for most ops on x86, so it casts them to float32 and drops the casts in
  between (the plain formulation comes out bit-identical to float32: it says nothing about float16).
  So the same graph is also evaluated with ``onnx.reference`` (numpy, every tensor in the graph's
  own dtype: each op's float16 result rounded to float16, as on a GPU, sums accumulated in float32
  as numpy's float16 dot does) on real photos and held to the torch mixed-precision test's
  tolerances against the float32 graph on ONNX Runtime; it must differ from it (it is rounded).
- the backend: precision choice per provider, the cache key, and the CLI's start-up line.

GPU-only checks (``onnx_gpu`` marker) run where ONNX Runtime has a GPU provider that starts.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
from conftest import REQUIRED_FILES, ROOT, content_image, photos, style_photo

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

MAIN = "import sys; from realtime.cli import main; sys.exit(main(sys.argv[1:]))"
#: The torch backend's mixed-precision tolerances (tests/test_torch.py), in [0,1] units.
MAX_ABS, MEAN_ABS = 5e-2, 3e-3


def _gpu_providers() -> list[str]:
    from realtime.model.backends.onnx_backend import GPU_PROVIDERS

    return [p for p in GPU_PROVIDERS if p in ort.get_available_providers()]


def onnx_gpu(test):
    """Marks a test of the GPU providers; skipped where ONNX Runtime lists none (CI's CPU build)."""
    return pytest.mark.onnx_gpu(pytest.mark.skipif(not _gpu_providers(), reason="no ONNX Runtime GPU provider")(test))


@pytest.fixture(scope="module")
def weights(models_dir):
    from realtime.model.backends.transfer_net import TransferWeights

    return TransferWeights.from_tflite(models_dir / REQUIRED_FILES[1])


@pytest.fixture(scope="module")
def codes(models_dir, tmp_path_factory):
    """Two real style codes (OpenVINO's, through the float32 backend) and one halfway to zero."""
    st = _onnx(models_dir, tmp_path_factory.mktemp("codes"), precision="float32")
    code = st.style_code(style_photo())
    return np.stack([code, 0.5 * code])


def _onnx(models_dir, cache_dir=None, **kw):
    from realtime.model.backends.onnx_backend import OnnxStylizer

    return OnnxStylizer(models_dir / REQUIRED_FILES[0], models_dir / REQUIRED_FILES[1], device=kw.pop("device", "cpu"),
                        threads=2, cache_dir=cache_dir, **kw)


def _types(model) -> dict[str, int]:
    """Every tensor's element type, by ONNX's type inference."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


@pytest.mark.parametrize("formulation", ["s2d", "plain"])
@pytest.mark.parametrize("uint8", [True, False])
def test_the_float16_graph_computes_in_float16_with_float32_norms(weights, formulation, uint8):
    from onnx import TensorProto

    from realtime.model.backends.onnx_graph import build_model

    F16, F32 = TensorProto.FLOAT16, TensorProto.FLOAT
    half, full = build_model(weights, uint8, formulation, "float16"), build_model(weights, uint8, formulation)
    # the same inputs and outputs as the float32 graph
    assert [(v.name, v.type) for v in [*half.graph.input, *half.graph.output]] == \
           [(v.name, v.type) for v in [*full.graph.input, *full.graph.output]]
    types = _types(half)
    nodes = half.graph.node
    convs = [n for n in nodes if n.op_type == "Conv"]
    norms = [n for n in nodes if n.op_type == "InstanceNormalization"]
    assert len(convs) == len([n for n in full.graph.node if n.op_type == "Conv"]) and len(norms) == 13
    for n in convs:
        assert [types[i] for i in n.input] == [F16] * len(n.input), n.name  # input, weights (and bias)
        assert types[n.output[0]] == F16
    for n in norms:  # statistics, normalization, scale and shift: float32
        assert [types[i] for i in n.input] == [F32] * 3 and types[n.output[0]] == F32, n.name
    by_input = {i: n for n in nodes for i in n.input}
    for n in norms:  # then gamma (float32, from the float32 codes) and beta in float32
        mul = by_input[n.output[0]]
        assert mul.op_type == "Mul" and all(types[i] == F32 for i in mul.input)
    (sig,) = [n for n in nodes if n.op_type == "Sigmoid"]
    assert types[sig.input[0]] == F32  # the last norm stays float32 to the output
    # every float initializer is a float16 weight of a convolution, or float32 (the norms', the
    # codes' matrices, the output conversion), but for the uint8 input's float16 1/255
    conv_inits = {i for n in convs for i in n.input[1:]}
    scale = [n.input[1] for n in nodes if n.op_type == "Mul" and types[n.input[0]] == F16] if uint8 else []
    assert len(scale) == (1 if uint8 else 0)
    for t in half.graph.initializer:
        if t.data_type in (F16, F32):
            assert (t.data_type == F16) == (t.name in conv_inits or t.name in scale), t.name
    assert sum(t.data_type == F16 for t in half.graph.initializer) >= len(convs)
    # the weights are the float32 graph's rounded to float16 (plain: the fp16 TF Lite file's values, so
    # exactly; s2d: its derived kernels' sums of taps, rounded once)
    a16, a32 = ({t.name: onnx.numpy_helper.to_array(t) for t in g.graph.initializer} for g in (half, full))
    full_convs = [n for n in full.graph.node if n.op_type == "Conv"]
    for a, b in zip(convs, full_convs):
        for i16, i32 in zip(a.input[1:], b.input[1:]):
            assert a16[i16].dtype == np.float16 and np.array_equal(a16[i16], a32[i32].astype(np.float16)), a.name
            if formulation == "plain":
                assert np.array_equal(a16[i16].astype(np.float32), a32[i32])


def test_an_unknown_dtype_is_refused(weights):
    from realtime.model.backends.onnx_graph import build_model

    with pytest.raises(ValueError, match="dtype"):
        build_model(weights, True, dtype="bfloat16")


def test_float16_numerics_on_photos_with_real_float16_rounding(weights, codes):
    """The s2d float16 graph (the one the backend builds), evaluated with float16 tensors by
    ``onnx.reference``, within the torch mixed-precision tolerances of the float32 graph on ONNX
    Runtime, on real photos with real style codes; and really rounded (not equal)."""
    from onnx.reference import ReferenceEvaluator

    from realtime.model.backends.onnx_graph import CODES, FRAMES, build_model

    x = photos(96, 64, 2).astype(np.float32) / 255
    feed = {FRAMES: x, CODES: codes}
    ref = ort.InferenceSession(build_model(weights, False).SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, feed)[0]
    half = ReferenceEvaluator(build_model(weights, False, dtype="float16")).run(None, feed)[0]
    assert half.dtype == np.float32 and half.shape == ref.shape == (2, 64, 96, 3)
    d = np.abs(half - ref)
    assert d.max() <= MAX_ABS and d.mean() <= MEAN_ABS, (d.max(), d.mean())
    assert d.max() > 1e-5  # the activations were rounded to float16 (measured: max 1e-3, mean 6e-5)


def test_mixed_on_the_cpu_provider_runs_the_float16_graph(models_dir, tmp_path, codes, caplog):
    """``--precision mixed`` is float16 on any provider (said once on the CPU, where it does not pay):
    its own cached file, the start-up line, both paths within tolerance of the float32 backend."""
    with caplog.at_level(logging.WARNING, logger="realtime"):
        half = _onnx(models_dir, tmp_path, precision="mixed")
    full = _onnx(models_dir, tmp_path, precision="float32")
    assert half.precision == "mixed" and full.precision == "float32"
    assert half.device.endswith("(2 threads, float16, norms float32)") and full.device.endswith("(2 threads, float32)")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["--precision mixed"]
    (h,), (f,) = half.built, full.built
    assert h.name.endswith("-fp16-u8.onnx") and f.name.endswith("-fp32-u8.onnx") and h.parent == f.parent
    frames = photos(128, 96, 2)
    got, ref = half.stylize(frames, codes), full.stylize(frames, codes)
    assert got.dtype == np.uint8 and got.shape == frames.shape
    d = np.abs(got.astype(int) - ref) / 255
    assert d.max() <= MAX_ABS + 1 / 255 and d.mean() <= MEAN_ABS
    x = frames.astype(np.float32) / 255
    d = np.abs(half.transfer(x, codes) - full.transfer(x, codes))
    assert d.max() <= MAX_ABS and d.mean() <= MEAN_ABS


@pytest.mark.parametrize("precision, providers, dtype", [
    ("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], "float16"),
    ("auto", ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], "float16"),
    ("auto", ["DmlExecutionProvider", "CPUExecutionProvider"], "float16"),
    ("auto", ["CoreMLExecutionProvider", "CPUExecutionProvider"], "float16"),
    ("auto", ["CPUExecutionProvider"], "float32"),
    ("mixed", ["CPUExecutionProvider"], "float16"),  # asked for explicitly
    ("float32", ["CUDAExecutionProvider", "CPUExecutionProvider"], "float32"),  # the opt-out
    ("bf16", ["CUDAExecutionProvider", "CPUExecutionProvider"], "float32"),  # the factory warned
])
def test_precision_per_provider(precision, providers, dtype):
    from realtime.model.backends.onnx_backend import pick_precision

    assert pick_precision(precision, providers) == dtype


def test_tensorrt_gets_its_fp16_kernels_with_the_float16_graph(tmp_path):
    from realtime.model.backends.onnx_backend import _provider_options

    trt = "TensorrtExecutionProvider"
    assert _provider_options(trt, None, tmp_path, "float16")["trt_fp16_enable"] is True
    assert "trt_fp16_enable" not in _provider_options(trt, None, tmp_path, "float32")
    assert "trt_fp16_enable" not in _provider_options("CUDAExecutionProvider", 0, tmp_path, "float16")


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_auto_goes_back_to_float32_where_the_gpu_provider_does_not_start(models_dir, tmp_path, monkeypatch, caplog):
    """``auto`` with a listed CUDA provider builds the float16 graph; where CUDA then does not start
    (simulated: the CPU build is told it lists CUDA), the CPU runs the float32 graph, said once."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger="realtime"):
        s = _onnx(models_dir, tmp_path, device="auto")
    assert s.precision == "float32" and s.providers == ["CPUExecutionProvider"]
    assert s.device.startswith("CPU via ONNX Runtime ") and s.device.endswith(", float32)")
    assert [r.getMessage() for r in caplog.records] == ["onnx: CUDA did not start; running on the CPU"]
    assert [p.name.split("-")[-2] for p in s.built] == ["fp16", "fp32"]  # tried, then the CPU's
    frames = photos(64, 48, 1)
    assert s.stylize(frames, np.zeros(100, np.float32)).shape == frames.shape


def test_stylize_image_with_precision_mixed_on_onnx(models_dir, tmp_path):
    """End to end through the CLI: ``--precision mixed`` reaches the backend (the table honours it,
    no 'not for the onnx backend' warning) and the start-up line says float16."""
    from realtime.io.images import read_image, write_image

    photo = write_image(tmp_path / "photo.png", content_image(96, 64))
    out = tmp_path / "out.png"
    r = subprocess.run([sys.executable, "-c", MAIN, "image", str(photo), "-o", str(out), "--style", "waves",
                        "--backend", "onnx", "--device", "cpu", "--precision", "mixed"],
                       cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "backend onnx on CPU via ONNX Runtime" in r.stderr and "float16, norms float32); precision mixed" in r.stderr, r.stderr
    assert "is not for the onnx backend" not in r.stderr
    assert read_image(out).shape == (64, 96, 3)


@onnx_gpu
def test_gpu_provider_auto_is_float16_and_close_to_float32(models_dir, tmp_path, codes):
    gpu = _onnx(models_dir, tmp_path, device="gpu")
    assert gpu.precision == "mixed" and "float16, norms float32" in gpu.device
    full = _onnx(models_dir, tmp_path, device="gpu", precision="float32")
    x = photos(684, 384, 2).astype(np.float32) / 255
    d = np.abs(gpu.transfer(x, codes) - full.transfer(x, codes))
    assert d.max() <= MAX_ABS and d.mean() <= MEAN_ABS, (d.max(), d.mean())
    frames = photos(1280, 720, 2)
    d = np.abs(gpu.stylize(frames, codes).astype(int) - full.stylize(frames, codes)) / 255
    assert d.max() <= MAX_ABS + 1 / 255 and d.mean() <= MEAN_ABS
