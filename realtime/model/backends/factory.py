"""Builds the configured stylizer backend and logs where it runs.

What a backend needs, where it runs and which precisions it honours are rows of
:mod:`realtime.backends_table`; how it is built is its factory in :mod:`.registry`.  This module only
applies them in order: resolve ``auto`` (the backend, then the precision), then the checks that
make a wrong choice one line (missing module, device), then the precision fallback, then the
factory; the start-up line says which backend runs where, and at which precision and why.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import platform
import sys
from pathlib import Path

from ...backends_table import (BACKEND_CHOICES, BF16_GAIN, FAST_BF16, PRECISIONS, choose_auto, choose_precision, device_index, device_kind,
                               device_message, missing_message, missing_modules, precision_message, precision_words)
from ...config import Config
from ...errors import ConfigError, UserError
from ..files import ModelStore
from .base import Stylizer, cpu_bf16
from .registry import REGISTRY

log = logging.getLogger(__name__)


def model_store(cfg: Config) -> ModelStore:
    return ModelStore(
        cache_dir=cfg.cache_dir,
        model_dir=cfg.models.model_dir,
        base_url=cfg.models.base_url,
        auto_download=cfg.models.auto_download,
    )


def _gpu_present() -> bool:
    """An NVIDIA driver is loaded: its device file or its /proc entry exists.

    Why not ask TensorFlow: importing it is the 4-10 s and 600 MB that ``auto`` exists to avoid on
    CPUs.  The files are a cheap, sure sign that the GPU path is wanted (``tf``, which then says in
    its start-up line whether TensorFlow sees the GPU); ``--device cpu`` takes the CPU path anyway."""
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/version").exists()


def _apple_silicon() -> bool:
    """A Mac with Apple silicon: its GPU is there for PyTorch's MPS (no driver file to look at)."""
    return sys.platform == "darwin" and platform.machine() == "arm64"


#: How to get PyTorch's CUDA build where the installed one is CPU-only (said once, as a warning).
CUDA_TORCH_HINT = ("pip install --force-reinstall 'torch>=2.11' (PyPI's Linux wheels are CUDA builds; on Windows, "
                   "or for another CUDA version, see https://pytorch.org/get-started/locally/)")


@functools.lru_cache(maxsize=None)
def _torch_sees_gpu(index: int | None = None) -> bool:
    """PyTorch sees a CUDA GPU (the ``index``th where given) or Apple's MPS.

    Asked only where a GPU may be there (an NVIDIA driver, an Apple-silicon Mac, ``--device
    gpu``): importing torch costs about a second, which a CPU-only machine should not pay to
    decide.  Cached: one import, one answer per process.  A CPU-only PyTorch build beside an NVIDIA
    driver is a common mistake (``pip install torch`` from some indexes): one warning says how to
    get the CUDA build."""
    try:
        import torch
    except ImportError:
        return False
    try:
        if torch.cuda.is_available():
            return index is None or index < torch.cuda.device_count()
        if _gpu_present():
            if torch.version.cuda is None:
                log.warning("an NVIDIA driver is loaded but PyTorch %s is a CPU-only build: %s", torch.__version__, CUDA_TORCH_HINT)
            else:
                log.warning("PyTorch %s (CUDA %s) sees no usable GPU beside the NVIDIA driver (a driver older than its "
                            "CUDA?); auto takes another backend", torch.__version__, torch.version.cuda)
        mps = getattr(torch.backends, "mps", None)
        return index in (None, 0) and mps is not None and mps.is_available()
    except Exception as exc:  # noqa: BLE001 - a broken driver: the CPU path, and say why
        log.warning("PyTorch could not query its GPU (%s); auto takes the CPU path", exc)
        return False


#: ONNX Runtime's GPU builds (each installs the module ``onnxruntime``, in place of the CPU build).
ORT_GPU_DISTRIBUTIONS = ("onnxruntime-gpu", "onnxruntime-directml")


def _ort_gpu_build() -> bool:
    """A GPU build of ONNX Runtime is installed (asked of the package metadata, nothing imported):
    on Windows, where no NVIDIA driver file says a GPU is there, ``onnxruntime-directml`` is the
    sign that one is wanted (any DirectX 12 GPU)."""
    from importlib import metadata

    for dist in ORT_GPU_DISTRIBUTIONS:
        try:
            metadata.distribution(dist)
            return True
        except metadata.PackageNotFoundError:
            continue
    return False


@functools.lru_cache(maxsize=None)
def _ort_sees_gpu() -> bool:
    """ONNX Runtime lists a provider that ``auto`` may take for a GPU: DirectML, or CUDA/TensorRT
    where an NVIDIA driver is loaded (the GPU build lists them whether or not a GPU is there).
    CoreML is left to ``--backend onnx`` (not measured; Apple GPUs are ``torch``'s, through MPS).
    Asked only where a GPU may be there; cached."""
    try:
        import onnxruntime
    except ImportError:
        return False
    try:
        listed = set(onnxruntime.get_available_providers())
    except Exception as exc:  # noqa: BLE001 - a broken install: the CPU path, and say why
        log.warning("ONNX Runtime could not list its providers (%s); auto takes another backend", exc)
        return False
    nvidia = {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & listed and _gpu_present()
    return bool(nvidia or "DmlExecutionProvider" in listed)


def _sees_gpu(name: str, device: str) -> bool:
    """Whether backend ``name``'s own framework sees the GPU ``device`` asks for (torch, onnx)."""
    if name == "torch":
        return _torch_sees_gpu(device_index(device))
    return name == "onnx" and _ort_sees_gpu()


def resolve_backend(cfg: Config) -> str:
    """The configured backend, with ``auto`` chosen by the table (:func:`choose_auto`), the same in
    every mode: ``openvino`` on a CPU where it is installed (a process that never imports
    TensorFlow shows its first live frame in about 1 s instead of 4-10 s, in a third of the
    memory), ``torch`` where PyTorch sees a CUDA or MPS GPU, ``onnx`` where it does not but ONNX
    Runtime has a GPU provider (DirectML: Windows with any GPU), ``tf`` for a GPU without either and
    where OpenVINO is not installed."""
    eng = cfg.engine
    if eng.backend != "auto":
        return eng.backend
    return choose_auto(eng.device, eng.precision, _gpu_present(), _apple_silicon() or _ort_gpu_build(),
                       lambda name: _sees_gpu(name, eng.device))


def create_stylizer(cfg: Config, store: ModelStore | None = None, fixed_size: bool = True) -> Stylizer:
    """The backend named by ``cfg.engine.backend``, with its model files resolved and verified.

    ``fixed_size``: frames will all have one size (live, video), so XLA's per-shape compile pays off.
    """
    name = resolve_backend(cfg)
    backend = REGISTRY.get(name)
    if backend is None:
        raise ConfigError(f"unknown backend '{name}' (choose one of {', '.join(BACKEND_CHOICES)})")
    missing = missing_modules(name)
    if missing:
        raise UserError(missing_message(name, missing))
    eng = cfg.engine
    if eng.device != "auto" and device_kind(eng.device) not in backend.spec.devices:
        raise UserError(device_message(name, eng.device))
    bf16 = cpu_bf16() if eng.precision == "auto" else ""
    precision = choose_precision(name, eng.precision, bf16)
    if precision not in backend.spec.precisions and precision != "auto":  # auto left to the backend: probes_gpu
        log.warning("%s", precision_message(name, precision))
        precision = "float32"
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(eng, precision=precision))
    stylizer = backend.create(cfg, store or model_store(cfg), fixed_size)
    if eng.precision == "auto" and precision == "float32" and bf16 in FAST_BF16 and not _gpu_present():
        # after the backend opened: a hint is no first line of an error (it came before every one)
        log.info("%s: --backend openvino runs the network in bf16, %s faster (lower precision: about 0.002 "
                 "mean error on photos)", FAST_BF16[bf16], BF16_GAIN[bf16])
    runs = getattr(stylizer, "precision", precision)
    log.info("backend %s on %s; precision %s", stylizer.name, stylizer.device,
             precision_words(eng.precision, runs if runs in PRECISIONS else precision, bf16, name))
    return stylizer
