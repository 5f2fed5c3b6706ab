"""Builds the configured stylizer backend and logs where it runs."""

from __future__ import annotations

import logging
from pathlib import Path

from ...config import Config
from ...errors import ConfigError, UserError
from ..files import ModelStore
from .base import Stylizer, cpu_bf16

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tf", "tflite", "hub", "openvino")


def model_store(cfg: Config) -> ModelStore:
    return ModelStore(
        cache_dir=cfg.cache_dir,
        model_dir=cfg.models.model_dir,
        base_url=cfg.models.base_url,
        auto_download=cfg.models.auto_download,
    )


def _gpu_present() -> bool:
    """An NVIDIA driver is loaded (checked without importing TensorFlow)."""
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/version").exists()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


NEEDS_TENSORFLOW = ("tf", "tflite", "hub")


def resolve_backend(cfg: Config, fixed_size: bool) -> str:
    """``auto``: ``openvino`` for still images on a CPU when it is installed (a process that never
    imports TensorFlow starts about 2 s sooner, and one image is all start-up), else ``tf`` (the
    fastest per frame on the CPUs we measured, and the GPU path); ``openvino`` too wherever
    TensorFlow is not installed (a small box may carry OpenVINO alone)."""
    backend = cfg.engine.backend
    if backend != "auto" or not _installed("openvino"):
        return "tf" if backend == "auto" else backend
    if not _installed("tensorflow"):
        return "openvino"  # the only runtime there
    if not fixed_size and cfg.engine.device != "gpu" and cfg.engine.precision in ("float32", "bf16") and not _gpu_present():
        return "openvino"
    return "tf"


def create_stylizer(cfg: Config, store: ModelStore | None = None, fixed_size: bool = True) -> Stylizer:
    """The backend named by ``cfg.engine.backend``, with its model files resolved and verified.

    ``fixed_size``: frames will all have one size (live, video), so XLA's per-shape compile pays off.
    """
    backend = resolve_backend(cfg, fixed_size)
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}' (choose one of {', '.join(BACKENDS)})")
    if backend in NEEDS_TENSORFLOW and not _installed("tensorflow"):
        hint = "--backend openvino" if _installed("openvino") else "pip install openvino and use --backend openvino"
        raise UserError(f"--backend {backend} needs TensorFlow, which is not installed (pip install tensorflow, or {hint})")
    store = store or model_store(cfg)
    eng = cfg.engine
    if backend == "openvino" and eng.device == "gpu":
        raise UserError("--device gpu needs the tf backend (TensorFlow with CUDA); openvino runs on the CPU")
    if eng.precision == "float32" and cpu_bf16() == "amx" and backend in ("tf", "openvino") and not _gpu_present():
        log.info("this CPU has AMX: --backend openvino --precision bf16 runs the network about 3x faster "
                 "(lower precision: about 0.002 mean error on photos)")
    if backend == "tf":
        from .tf_backend import TFStylizer

        stylizer: Stylizer = TFStylizer(
            store.path("int8_prediction"),
            store.path("fp16_transfer"),
            eng.device,
            eng.threads,
            eng.precision,
            jit=eng.xla == "always" or (eng.xla == "auto" and fixed_size),
        )
    elif backend == "tflite":
        from .tflite_backend import TFLiteStylizer

        if eng.precision != "float32":
            log.warning("--precision %s is not for the tflite backend (it runs the %s file as it is)", eng.precision, cfg.models.transfer)
        transfer = store.path(f"{cfg.models.transfer}_transfer")
        stylizer = TFLiteStylizer(store.path("int8_prediction"), transfer, eng.threads, cfg.models.transfer)
    elif backend == "openvino":
        from .openvino_backend import OpenVINOStylizer

        stylizer = OpenVINOStylizer(
            store.path("int8_prediction"), store.path("fp16_transfer"), eng.threads, eng.precision, cfg.cache_dir
        )
    else:
        from .hub_backend import HubStylizer

        stylizer = HubStylizer(
            cfg.models.hub_handle,
            cfg.cache_dir,
            eng.device,
            eng.threads,
            eng.precision,
            jit=eng.xla == "always" or (eng.xla == "auto" and fixed_size),
        )
    log.info("backend %s on %s", stylizer.name, stylizer.device)
    return stylizer
