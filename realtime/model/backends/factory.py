"""Builds the configured stylizer backend and logs where it runs.

What a backend needs, where it runs and which precisions it honours are rows of
:mod:`realtime.backends_table`; how it is built is its factory in :mod:`.registry`.  This module only
applies them in order: resolve ``auto`` (the backend, then the precision), then the checks that
make a wrong choice one line (missing module, device), then the precision fallback, then the
factory; the start-up line says which backend runs where, and at which precision and why.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ...backends_table import (BACKEND_CHOICES, PRECISIONS, choose_auto, choose_precision, device_message, missing_message,
                               missing_modules, precision_message, precision_words)
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


def resolve_backend(cfg: Config) -> str:
    """The configured backend, with ``auto`` chosen by the table (:func:`choose_auto`), the same in
    every mode: ``openvino`` on a CPU where it is installed (a process that never imports
    TensorFlow shows its first live frame in about 1 s instead of 4-10 s, in a third of the
    memory), ``tf`` for a GPU and where OpenVINO is not installed."""
    eng = cfg.engine
    if eng.backend != "auto":
        return eng.backend
    return choose_auto(eng.device, eng.precision, _gpu_present())


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
    if eng.device != "auto" and eng.device not in backend.spec.devices:
        raise UserError(device_message(name, eng.device))
    bf16 = cpu_bf16() if eng.precision == "auto" else ""
    precision = choose_precision(name, eng.precision, bf16)
    if precision not in backend.spec.precisions:
        log.warning("%s", precision_message(name, precision))
        precision = "float32"
    elif eng.precision == "auto" and precision == "float32" and bf16 == "amx" and not _gpu_present():
        log.info("this CPU has AMX: --backend openvino runs the network in bf16, about 3x faster "
                 "(lower precision: about 0.002 mean error on photos)")
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(eng, precision=precision))
    stylizer = backend.create(cfg, store or model_store(cfg), fixed_size)
    runs = getattr(stylizer, "precision", precision)
    log.info("backend %s on %s; precision %s", stylizer.name, stylizer.device,
             precision_words(eng.precision, runs if runs in PRECISIONS else precision, bf16, name))
    return stylizer
