"""The backend registry: each row of :mod:`realtime.backends_table` joined with its lazy factory.

Why two modules: the table (names, needs, devices, precisions, what ``auto`` may pick) is plain data
that the bottom layer (config validation, CLI help) reads without importing the model layer; the
factories import the backend's code, and through it TensorFlow or OpenVINO, so they live here and
import their backend only when called.  A table row without a factory, or a factory without a row,
fails at import with the backend's name, so the two cannot drift apart.

A factory gets a config whose device and precision the caller has already checked against the row
(:func:`realtime.model.backends.factory.create_stylizer`), the model store, and ``fixed_size``
(frames of one size: live and video, where XLA's per-shape compile pays off).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...backends_table import BACKENDS, BackendSpec
from ...config import Config
from ..files import ModelStore
from .base import Stylizer

Factory = Callable[[Config, ModelStore, bool], Stylizer]

_FACTORIES: dict[str, Factory] = {}


def factory(name: str) -> Callable[[Factory], Factory]:
    """Register ``fn`` as the factory of the backend ``name`` (a row of the table)."""

    def register(fn: Factory) -> Factory:
        if name not in BACKENDS:
            raise RuntimeError(f"@factory('{name}'): no such backend in realtime/backends_table.py")
        _FACTORIES[name] = fn
        return fn

    return register


def _jit(cfg: Config, fixed_size: bool) -> bool:
    return cfg.engine.xla == "always" or (cfg.engine.xla == "auto" and fixed_size)


@factory("tf")
def _tf(cfg: Config, store: ModelStore, fixed_size: bool) -> Stylizer:
    from .tf_backend import TFStylizer

    eng = cfg.engine
    return TFStylizer(store.path("int8_prediction"), store.path("fp16_transfer"), eng.device, eng.threads,
                      eng.precision, jit=_jit(cfg, fixed_size))


@factory("tflite")
def _tflite(cfg: Config, store: ModelStore, fixed_size: bool) -> Stylizer:
    from .tflite_backend import TFLiteStylizer

    transfer = store.path(f"{cfg.models.transfer}_transfer")
    return TFLiteStylizer(store.path("int8_prediction"), transfer, cfg.engine.threads, cfg.models.transfer)


@factory("hub")
def _hub(cfg: Config, store: ModelStore, fixed_size: bool) -> Stylizer:
    from .hub_backend import HubStylizer

    eng = cfg.engine
    return HubStylizer(cfg.models.hub_handle, cfg.cache_dir, eng.device, eng.threads, eng.precision,
                       jit=_jit(cfg, fixed_size), download=cfg.models.auto_download)


@factory("openvino")
def _openvino(cfg: Config, store: ModelStore, fixed_size: bool) -> Stylizer:
    from .openvino_backend import OpenVINOStylizer

    eng = cfg.engine
    return OpenVINOStylizer(store.path("int8_prediction"), store.path("fp16_transfer"), eng.threads, eng.precision,
                            cfg.cache_dir)


@factory("torch")
def _torch(cfg: Config, store: ModelStore, fixed_size: bool) -> Stylizer:
    from .torch_backend import TorchStylizer

    eng = cfg.engine
    return TorchStylizer(store.path("int8_prediction"), store.path("fp16_transfer"), eng.device, eng.threads,
                         eng.precision, jit=_jit(cfg, fixed_size), fixed_size=fixed_size, cache_dir=cfg.cache_dir)


@factory("onnx")
def _onnx(cfg: Config, store: ModelStore, fixed_size: bool) -> Stylizer:
    from .onnx_backend import OnnxStylizer

    eng = cfg.engine
    return OnnxStylizer(store.path("int8_prediction"), store.path("fp16_transfer"), eng.device, eng.threads,
                        eng.precision, cache_dir=cfg.cache_dir)


@dataclass(frozen=True)
class Backend:
    """A backend: its row of the table and its factory."""

    spec: BackendSpec
    create: Factory


def _join() -> dict[str, Backend]:
    missing = [n for n in BACKENDS if n not in _FACTORIES]
    if missing:
        raise RuntimeError(f"backends {missing} of realtime/backends_table.py have no @factory in {__name__}")
    return {name: Backend(spec, _FACTORIES[name]) for name, spec in BACKENDS.items()}


#: name -> Backend, in the table's order.
REGISTRY: dict[str, Backend] = _join()
