"""One backend registry: the table (realtime/backends_table.py) and its factories drive the config's
choices, the CLI's help, ``auto``, and the missing-module, device and precision checks.  No model
files are needed: every check runs before a model file is opened."""

from __future__ import annotations

import logging
import re

import pytest
import yaml
from fakes import FakeStylizer

from realtime import backends_table as table
from realtime.backends_table import BACKEND_CHOICES, BACKENDS, BackendSpec
from realtime.config import CHOICES, DEFAULT_CONFIG_PATH, load_config
from realtime.errors import ConfigError, UserError
from realtime.model.backends import factory as factory_mod
from realtime.model.backends import registry


def _only(monkeypatch, *modules: str) -> None:
    """Pretend only ``modules`` are installed (the table's one question to the environment)."""
    monkeypatch.setattr(table, "installed", lambda m: m in modules)


def _cfg(**overrides):
    return load_config(None, {"models.auto_download": False, **overrides})


def test_every_row_has_a_factory_and_every_factory_a_row(monkeypatch):
    assert list(registry.REGISTRY) == list(BACKENDS)
    assert all(registry.REGISTRY[n].spec is BACKENDS[n] for n in BACKENDS)
    monkeypatch.setitem(BACKENDS, "jax", BackendSpec("jax", "a row without a factory", (), ("cpu",), ("float32",)))
    with pytest.raises(RuntimeError, match="jax"):
        registry._join()
    with pytest.raises(RuntimeError, match="no such backend"):
        registry.factory("nonesuch")(lambda cfg, store, fixed: FakeStylizer())


def test_config_choices_and_cli_help_come_from_the_table(capsys):
    assert CHOICES["engine.backend"] == BACKEND_CHOICES == ("auto", *BACKENDS)
    assert CHOICES["engine.device"] == table.DEVICES and CHOICES["engine.precision"] == table.PRECISIONS
    for name in BACKEND_CHOICES:
        assert load_config(None, {"engine.backend": name}).engine.backend == name
    with pytest.raises(ConfigError, match=r"engine\.backend' must be one of auto\|tf\|tflite\|hub\|openvino\|torch\|onnx"):
        load_config(None, {"engine.backend": "jax"})
    from realtime.commands import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["image", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for spec in BACKENDS.values():
        assert f"{spec.name}: {' '.join(spec.description.split())}" in help_text


def test_the_default_yaml_comment_lists_the_backends():
    """configs/default.yaml is what users read: its backend comment names exactly the table's backends."""
    line = next(l for l in DEFAULT_CONFIG_PATH.read_text().splitlines() if l.strip().startswith("backend:"))
    comment = re.sub(r"\([^)]*\)", "", line.split("#", 1)[1])
    assert [w.strip() for w in comment.split("|")] == list(BACKEND_CHOICES)
    assert yaml.safe_load(line)["backend"] == "auto"


@pytest.mark.parametrize("model, backend, expect", [
    ("lite", None, "auto"), ("full", None, "hub"), ("lite", "openvino", "openvino"), ("full", "tflite", None),
])
def test_model_flag_maps_to_the_tables_backends(model, backend, expect):
    import argparse

    from realtime.commands import _backend

    args = argparse.Namespace(model=model, backend=backend)
    if expect is None:
        with pytest.raises(UserError, match="disagree"):
            _backend(args)
    else:
        assert _backend(args) == expect


@pytest.mark.parametrize("installed, device, precision, gpu, expect", [
    (("tensorflow", "openvino"), "auto", "auto", False, "openvino"),  # a CPU: live, video and images alike
    (("tensorflow", "openvino"), "auto", "float32", False, "openvino"),  # the float32 opt-out keeps the runtime
    (("tensorflow", "openvino"), "cpu", "bf16", False, "openvino"),
    (("tensorflow", "openvino"), "auto", "auto", True, "tf"),  # an NVIDIA driver: the GPU path
    (("tensorflow", "openvino"), "cpu", "auto", True, "openvino"),  # --device cpu beside a GPU
    (("tensorflow", "openvino"), "gpu", "auto", False, "tf"),
    (("tensorflow", "openvino"), "auto", "mixed", False, "openvino"),  # a GPU precision on a CPU: openvino float32, not tf
    (("openvino",), "auto", "auto", True, "openvino"),  # the only runtime there, GPU or not
    (("tensorflow",), "auto", "auto", False, "tf"),  # no OpenVINO: as before
    ((), "auto", "auto", False, "tf"),  # nothing: tf, whose missing module is the error
])
def test_auto_reads_the_table(monkeypatch, installed, device, precision, gpu, expect):
    _only(monkeypatch, *installed)
    monkeypatch.setattr(factory_mod, "_gpu_present", lambda: gpu)
    monkeypatch.setattr(factory_mod, "_apple_silicon", lambda: False)
    cfg = _cfg(**{"engine.device": device, "engine.precision": precision})
    assert factory_mod.resolve_backend(cfg) == expect


ALL = ("tensorflow", "openvino", "torch")


@pytest.mark.parametrize("installed, device, driver, mac, sees, expect, probed", [
    (ALL, "auto", True, False, True, "torch", True),  # an NVIDIA driver and a CUDA PyTorch: the GPU backend
    (ALL, "auto", True, False, False, "tf", True),  # a CPU-only PyTorch beside the driver: tf, as before
    (ALL, "auto", False, False, True, "openvino", False),  # no driver, not a Mac: torch is never imported to decide
    (ALL, "cpu", True, False, True, "openvino", False),  # --device cpu beside a GPU
    (ALL, "auto", False, True, True, "torch", True),  # an Apple-silicon Mac whose PyTorch sees MPS
    (ALL, "auto", False, True, False, "openvino", True),  # ... and one whose PyTorch does not
    (ALL, "gpu", False, False, True, "torch", True),
    (ALL, "gpu:1", False, False, True, "torch", True),
    (("openvino", "torch"), "gpu", False, False, False, "torch", True),  # no tf: torch's "sees no GPU" is the error
    (("openvino", "torch"), "auto", True, False, False, "openvino", True),  # driver, CPU-only PyTorch, no tf
    (("torch",), "auto", False, False, False, "torch", False),  # the only runtime there: the CPU
    (("tensorflow", "openvino"), "auto", True, False, True, "tf", False),  # no PyTorch: tf stays the GPU fallback
])
def test_auto_takes_torch_only_where_it_sees_a_gpu(monkeypatch, installed, device, driver, mac, sees, expect, probed):
    """``auto`` picks ``torch`` where PyTorch is installed and sees a CUDA or MPS device; PyTorch is
    asked (imported) only where a GPU may be there: a driver, an Apple-silicon Mac, ``--device gpu``."""
    _only(monkeypatch, *installed)
    asked: list[int | None] = []
    monkeypatch.setattr(factory_mod, "_gpu_present", lambda: driver)
    monkeypatch.setattr(factory_mod, "_apple_silicon", lambda: mac)
    monkeypatch.setattr(factory_mod, "_torch_sees_gpu", lambda index=None: asked.append(index) or sees)
    assert factory_mod.resolve_backend(_cfg(**{"engine.device": device})) == expect
    assert bool(asked) == probed
    assert asked[:1] == ([1] if device == "gpu:1" else [None] if probed else [])


ORT = ("tensorflow", "openvino", "onnxruntime")


@pytest.mark.parametrize("installed, device, driver, ort_gpu_build, torch_sees, ort_sees, expect", [
    # PyTorch seeing the GPU wins: onnx is the GPU backend only where torch is missing or sees none
    ((*ALL, "onnxruntime"), "auto", True, True, True, True, "torch"),
    ((*ALL, "onnxruntime"), "auto", True, False, False, True, "onnx"),  # a CPU-only PyTorch, onnxruntime-gpu
    (ORT, "auto", True, True, False, True, "onnx"),  # no PyTorch: onnx before tf on an NVIDIA GPU
    (ORT, "auto", True, False, False, False, "tf"),  # ONNX Runtime's CPU build beside a driver: tf, as before
    (ORT, "auto", False, False, False, True, "openvino"),  # a CPU: openvino stays (ORT not even asked)
    (ORT, "cpu", True, True, False, True, "openvino"),  # --device cpu beside a GPU
    (("openvino", "onnxruntime"), "auto", False, True, False, True, "onnx"),  # Windows, onnxruntime-directml
    (("openvino", "onnxruntime"), "auto", False, True, False, False, "openvino"),  # ... whose DirectML is missing
    (("openvino", "onnxruntime"), "gpu", False, False, False, False, "onnx"),  # its "no GPU provider" is the error
    (("onnxruntime",), "auto", False, False, False, False, "onnx"),  # the only runtime there: the CPU provider
])
def test_auto_takes_onnx_for_a_gpu_only_without_torch(monkeypatch, installed, device, driver, ort_gpu_build, torch_sees,
                                                     ort_sees, expect):
    """``auto`` never picks ``onnx`` on a CPU (``openvino`` stays); on a GPU it prefers ``torch`` (half
    precision, CUDA graphs) and takes ``onnx`` where PyTorch is missing or sees no GPU but ONNX
    Runtime has a GPU provider (CUDA beside a driver, DirectML on Windows); a GPU build of ONNX
    Runtime (no driver file on Windows) is the sign that a GPU may be there."""
    _only(monkeypatch, *installed)
    asked: list[str] = []
    monkeypatch.setattr(factory_mod, "_gpu_present", lambda: driver)
    monkeypatch.setattr(factory_mod, "_apple_silicon", lambda: False)
    monkeypatch.setattr(factory_mod, "_ort_gpu_build", lambda: ort_gpu_build)
    monkeypatch.setattr(factory_mod, "_torch_sees_gpu", lambda index=None: asked.append("torch") or torch_sees)
    monkeypatch.setattr(factory_mod, "_ort_sees_gpu", lambda: asked.append("onnx") or ort_sees)
    assert factory_mod.resolve_backend(_cfg(**{"engine.device": device})) == expect
    if expect == "openvino" and not ort_gpu_build:
        assert asked == []


def test_ort_sees_a_gpu_only_through_a_provider_auto_may_take(monkeypatch):
    """CUDA/TensorRT count beside an NVIDIA driver only (the GPU build lists them anyway); DirectML
    counts; CoreML and the CPU do not."""
    ort = pytest.importorskip("onnxruntime")
    for listed, driver, expect in [(["CUDAExecutionProvider", "CPUExecutionProvider"], True, True),
                                   (["CUDAExecutionProvider", "CPUExecutionProvider"], False, False),
                                   (["TensorrtExecutionProvider", "CPUExecutionProvider"], True, True),
                                   (["DmlExecutionProvider", "CPUExecutionProvider"], False, True),
                                   (["CoreMLExecutionProvider", "CPUExecutionProvider"], False, False),
                                   (["AzureExecutionProvider", "CPUExecutionProvider"], True, False)]:
        monkeypatch.setattr(ort, "get_available_providers", lambda listed=listed: listed)
        monkeypatch.setattr(factory_mod, "_gpu_present", lambda driver=driver: driver)
        factory_mod._ort_sees_gpu.cache_clear()
        assert factory_mod._ort_sees_gpu() is expect, listed
    factory_mod._ort_sees_gpu.cache_clear()
    assert factory_mod._ort_gpu_build() is False  # CI has the CPU build


@pytest.mark.parametrize("value, ok", [("gpu:0", True), ("gpu:3", True), ("gpu", True), ("cpu", True),
                                       ("gpu:x", False), ("cuda:0", False), ("gpu:", False), ("tpu", False)])
def test_device_takes_gpu_n(value, ok):
    """``--device gpu:N`` chooses among several GPUs (torch: cuda:N; tf: its Nth GPU)."""
    if ok:
        assert load_config(None, {"engine.device": value}).engine.device == value
        assert table.device_kind(value) == ("gpu" if value.startswith("gpu") else value)
        assert table.device_index(value) == (int(value[4:]) if ":" in value else None)
    else:
        with pytest.raises(ConfigError, match=r"engine\.device' must be one of auto\|cpu\|gpu\|gpu:N"):
            load_config(None, {"engine.device": value})


def test_gpu_n_on_a_cpu_only_backend_is_the_device_error(monkeypatch):
    monkeypatch.setattr(table, "installed", lambda m: True)
    with pytest.raises(UserError, match=r"^--device gpu needs the torch backend"):
        factory_mod.create_stylizer(_cfg(**{"engine.backend": "openvino", "engine.device": "gpu:1"}))


def _record_precisions(monkeypatch) -> list[tuple[str, str]]:
    """Every factory replaced by one that records (backend, the precision it was given)."""
    seen: list[tuple[str, str]] = []

    def recorder(name):
        def fake(cfg, store, fixed_size):
            seen.append((name, cfg.engine.precision))
            return FakeStylizer()
        return fake

    for name in BACKENDS:
        monkeypatch.setitem(registry.REGISTRY, name, registry.Backend(BACKENDS[name], recorder(name)))
    return seen


@pytest.mark.parametrize("cpu, backend, asked, runs, words", [
    ("amx", "auto", "auto", ("openvino", "bf16"), "bf16 (auto: this CPU has AMX; lower precision, --precision float32 for full)"),
    ("zen", "auto", "auto", ("openvino", "bf16"), "bf16 (auto: this AMD CPU runs AVX512-BF16 natively; lower precision, --precision float32 for full)"),
    ("avx512", "auto", "auto", ("openvino", "float32"), "float32 (auto: AVX512-BF16 without AMX: bf16 would be slower)"),
    ("", "auto", "auto", ("openvino", "float32"), "float32 (auto: no bf16 instructions)"),
    ("amx", "auto", "float32", ("openvino", "float32"), "float32"),  # the opt-out
    ("amx", "openvino", "bf16", ("openvino", "bf16"), "bf16"),
    ("amx", "tf", "auto", ("tf", "float32"), "float32 (auto)"),  # bf16 in TensorFlow on AMX: not measured
    ("amx", "tflite", "auto", ("tflite", "float32"), "float32 (auto)"),  # no warning: auto is not a wish
])
def test_precision_auto_is_bf16_where_the_cpu_runs_it_natively_with_openvino_only(monkeypatch, caplog, cpu, backend, asked, runs, words):
    """``--precision auto`` (the default): bf16 where the CPU has AMX and the backend gains from it,
    float32 elsewhere; ``--precision float32`` opts out.  The start-up line says which, and why."""
    _only(monkeypatch, "tensorflow", "openvino")
    monkeypatch.setattr(factory_mod, "_gpu_present", lambda: False)
    monkeypatch.setattr(factory_mod, "cpu_bf16", lambda: cpu)
    seen = _record_precisions(monkeypatch)
    assert _cfg().engine.precision == "auto"
    with caplog.at_level(logging.INFO, logger="realtime"):
        factory_mod.create_stylizer(_cfg(**{"engine.backend": backend, "engine.precision": asked}))
    assert seen == [runs]
    lines = [r.getMessage() for r in caplog.records]
    assert f"backend fake on CPU (fake); precision {words}" in lines
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    hint = [l for l in lines if l.startswith("this CPU has AMX")]
    assert hint == (["this CPU has AMX: --backend openvino runs the network in bf16, about 3x faster "
                     "(lower precision: about 0.002 mean error on photos)"] if backend in ("tf", "tflite") else [])


def test_precision_help_comes_from_the_table(capsys):
    from realtime.commands import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["video", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert " ".join(table.PRECISION_DESCRIPTION.split()) in help_text
    assert " ".join(table.AUTO_DESCRIPTION.split()) in help_text
    line = next(l for l in DEFAULT_CONFIG_PATH.read_text().splitlines() if l.strip().startswith("precision:"))
    assert yaml.safe_load(line)["precision"] == "auto"
    assert [w.split("(")[0].strip() for w in line.split("#", 1)[1].split(" | ")] == list(table.PRECISIONS)


@pytest.mark.parametrize("installed, backend, message", [
    (("openvino",), "tf", "--backend tf needs TensorFlow, which is not installed (pip install tensorflow, or --backend openvino)"),
    ((), "tflite", "--backend tflite needs TensorFlow, which is not installed "
                   "(pip install tensorflow, or pip install openvino and use --backend openvino)"),
    (("tensorflow",), "hub", "--backend hub needs TensorFlow Hub, which is not installed "
                             "(pip install tensorflow-hub, or --backend tf or --backend tflite)"),
    (("tensorflow",), "openvino", "--backend openvino needs OpenVINO, which is not installed "
                                  "(pip install openvino, or --backend tf or --backend tflite)"),
    (("tensorflow", "openvino"), "torch", "--backend torch needs PyTorch, which is not installed "
                                          "(pip install 'realtime[gpu]', or --backend tf, --backend tflite or --backend openvino)"),
    (("openvino",), "onnx", "--backend onnx needs ONNX Runtime, which is not installed "
                            "(pip install 'realtime[onnx]', or --backend openvino)"),
])
def test_a_missing_module_is_one_line_naming_what_to_install(monkeypatch, installed, backend, message):
    _only(monkeypatch, *installed)
    with pytest.raises(UserError) as err:
        factory_mod.create_stylizer(_cfg(**{"engine.backend": backend}))
    assert str(err.value) == message


@pytest.mark.parametrize("backend", [n for n, s in BACKENDS.items() if "gpu" not in s.devices])
def test_a_device_the_backend_cannot_use_is_an_error(monkeypatch, backend):
    monkeypatch.setattr(table, "installed", lambda m: True)
    with pytest.raises(UserError) as err:
        factory_mod.create_stylizer(_cfg(**{"engine.backend": backend, "engine.device": "gpu"}))
    assert str(err.value) == (f"--device gpu needs the torch backend (or onnx, tf or hub; PyTorch with CUDA or MPS: "
                              f"pip install 'realtime[gpu]'); {backend} runs on the CPU")


def test_a_precision_the_backend_does_not_honour_runs_float32_with_a_warning(monkeypatch, caplog):
    """The factory gets a config that says float32; the warning says what the backend takes."""
    monkeypatch.setattr(table, "installed", lambda m: True)
    seen = []

    def fake(cfg, store, fixed_size):
        seen.append(cfg.engine.precision)
        return FakeStylizer()

    for name in BACKENDS:
        monkeypatch.setitem(registry.REGISTRY, name, registry.Backend(BACKENDS[name], fake))
    with caplog.at_level(logging.WARNING, logger="realtime"):
        factory_mod.create_stylizer(_cfg(**{"engine.backend": "tflite", "engine.precision": "bf16"}))
        factory_mod.create_stylizer(_cfg(**{"engine.backend": "openvino", "engine.precision": "mixed"}))
        factory_mod.create_stylizer(_cfg(**{"engine.backend": "openvino", "engine.precision": "bf16"}))
        factory_mod.create_stylizer(_cfg(**{"engine.backend": "hub", "engine.precision": "mixed"}))
    assert seen == ["float32", "float32", "bf16", "mixed"]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == [
        "--precision bf16 is not for the tflite backend (it takes float32); it runs the models.transfer file as it is",
        "--precision mixed is not for the openvino backend (it takes float32|bf16); it runs float32",
    ]


def test_a_new_row_reaches_help_auto_and_the_model_flag(monkeypatch):
    """What adding a backend means: a row (and a factory); help, --model and auto follow by themselves."""
    row = BackendSpec("ncnn", "ncnn on the CPU", needs=("openvino",), devices=("cpu",),
                      precisions=("float32",), auto="cpu")
    monkeypatch.setattr(table, "BACKENDS", {"ncnn": row, **BACKENDS})
    monkeypatch.setattr(table, "BACKEND_CHOICES", ("auto", "ncnn", *BACKENDS))
    _only(monkeypatch, "openvino")
    assert "ncnn: ncnn on the CPU" in table.backend_help()
    assert table.backends_for_model("lite")[:2] == ("auto", "ncnn")
    assert table.choose_auto("auto", "auto", False) == "ncnn"


def test_bench_variants_come_from_the_table_and_say_their_precision(monkeypatch):
    from realtime import bench
    from realtime.config import load_config
    from realtime.errors import UserError
    from realtime.model.backends import base

    names = bench.variant_names()
    assert {"openvino", "openvino-bf16", "tf-mixed", "tflite-int8", "tf-xla"} <= set(names)
    monkeypatch.setattr(base, "cpu_bf16", lambda: "amx")
    with_amx = bench.parse_bench_job("64x64", "1", "installed", 0.2, None).backends
    monkeypatch.setattr(base, "cpu_bf16", lambda: "avx512")
    without = bench.parse_bench_job("64x64", "1", "installed", 0.2, None).backends
    assert "openvino" in without and "openvino-bf16" not in without and "openvino-bf16" in with_amx
    assert not [n for n in without if n.startswith("hub")]  # the full model only when asked for
    cfg = load_config(None, {})  # precision auto: a measurement never says "auto"
    got = {n: (c.engine.backend, c.engine.precision, c.engine.xla, c.models.transfer)
           for n in ("openvino", "openvino-bf16", "tf-xla-mixed", "tflite-int8") for c in [bench.variant_config(cfg, n)]}
    assert got == {"openvino": ("openvino", "float32", "never", "fp16"), "openvino-bf16": ("openvino", "bf16", "never", "fp16"),
                   "tf-xla-mixed": ("tf", "mixed", "always", "fp16"), "tflite-int8": ("tflite", "float32", "never", "int8")}
    with pytest.raises(UserError, match="--backends takes installed or"):
        bench.parse_bench_job("64x64", "1", "openvino-int4", 0.2, None)
    # --backend/--precision pick the variants (they were ignored: every backend, the wrong precision)
    assert bench.variants_for("openvino", "bf16") == ["openvino-bf16"]
    assert bench.variants_for("openvino", None) == ["openvino", "openvino-bf16"]
    from realtime.backends_table import missing_modules

    mixed = {"tf-mixed", "hub-mixed", "torch-mixed", "onnx-mixed", "tf-xla-mixed", "tf-mixed-xla"}
    assert set(bench.variants_for(None, "mixed")) == {n for n in mixed if not missing_modules(n.partition("-")[0])}
    import realtime.backends_table as table

    monkeypatch.setattr(table, "missing_modules", lambda name: ["torch"] if name == "torch" else [])
    assert "torch-mixed" not in bench.variants_for(None, "mixed")  # --precision alone: the installed ones only
    assert bench.variants_for("torch", "mixed") == ["torch-mixed"]  # named: as asked (its missing module is the error)
    with pytest.raises(UserError, match="no variant for --backend tflite --precision bf16"):
        bench.variants_for("tflite", "bf16")
    with pytest.raises(UserError, match="from 16 to 8192 a side"):  # 100000x100000 was a 28 GiB allocation and a traceback
        bench.parse_bench_job("100000x100000", "1", "openvino", 0.2, None)
