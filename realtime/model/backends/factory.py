"""Builds the configured stylizer backend and logs where it runs.

What a backend needs, where it runs and which precisions it honours are rows of
:mod:`realtime.backends_table`; how it is built is its factory in :mod:`.registry`.  This module only
applies them in order: resolve ``auto``, then the checks that make a wrong choice one line (missing
module, device), then the precision fallback, then the factory.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ...backends_table import BACKEND_CHOICES, choose_auto, device_message, missing_message, missing_modules, precision_message
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
    """An NVIDIA driver is loaded (checked without importing TensorFlow)."""
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/version").exists()


def resolve_backend(cfg: Config, fixed_size: bool) -> str:
    """The configured backend, with ``auto`` chosen by the table (:func:`choose_auto`): ``openvino``
    for still images on a CPU when it is installed (a process that never imports TensorFlow starts
    about 2 s sooner, and one image is all start-up), else ``tf`` (the fastest per frame on the CPUs
    we measured, and the GPU path); ``openvino`` too wherever TensorFlow is not installed."""
    eng = cfg.engine
    if eng.backend != "auto":
        return eng.backend
    return choose_auto(fixed_size, eng.device, eng.precision, _gpu_present())


def create_stylizer(cfg: Config, store: ModelStore | None = None, fixed_size: bool = True) -> Stylizer:
    """The backend named by ``cfg.engine.backend``, with its model files resolved and verified.

    ``fixed_size``: frames will all have one size (live, video), so XLA's per-shape compile pays off.
    """
    name = resolve_backend(cfg, fixed_size)
    backend = REGISTRY.get(name)
    if backend is None:
        raise ConfigError(f"unknown backend '{name}' (choose one of {', '.join(BACKEND_CHOICES)})")
    missing = missing_modules(name)
    if missing:
        raise UserError(missing_message(name, missing))
    eng = cfg.engine
    if eng.device != "auto" and eng.device not in backend.spec.devices:
        raise UserError(device_message(name, eng.device))
    if eng.precision not in backend.spec.precisions:
        log.warning("%s", precision_message(name, eng.precision))
        cfg = dataclasses.replace(cfg, engine=dataclasses.replace(eng, precision="float32"))
    elif eng.precision == "float32" and "bf16" in backend.spec.precisions and cpu_bf16() == "amx" and not _gpu_present():
        log.info("this CPU has AMX: --backend openvino --precision bf16 runs the network about 3x faster "
                 "(lower precision: about 0.002 mean error on photos)")
    stylizer = backend.create(cfg, store or model_store(cfg), fixed_size)
    log.info("backend %s on %s", stylizer.name, stylizer.device)
    return stylizer
