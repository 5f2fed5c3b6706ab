"""Builds the configured stylizer backend and logs where it runs."""

from __future__ import annotations

import logging

from ...config import Config
from ...errors import ConfigError
from ..files import ModelStore
from .base import Stylizer

log = logging.getLogger(__name__)

BACKENDS = ("tf", "tflite", "hub")


def model_store(cfg: Config) -> ModelStore:
    return ModelStore(
        cache_dir=cfg.cache_dir,
        model_dir=cfg.models.model_dir,
        base_url=cfg.models.base_url,
        auto_download=cfg.models.auto_download,
    )


def create_stylizer(cfg: Config, store: ModelStore | None = None, fixed_size: bool = True) -> Stylizer:
    """The backend named by ``cfg.engine.backend``, with its model files resolved and verified.

    ``fixed_size``: frames will all have one size (live, video), so XLA's per-shape compile pays off.
    """
    backend = cfg.engine.backend
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}' (choose one of {', '.join(BACKENDS)})")
    store = store or model_store(cfg)
    eng = cfg.engine
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

        transfer = store.path(f"{cfg.models.transfer}_transfer")
        stylizer = TFLiteStylizer(store.path("int8_prediction"), transfer, eng.threads, cfg.models.transfer)
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
