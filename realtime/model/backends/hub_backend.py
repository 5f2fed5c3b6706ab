"""``hub`` backend (``--model full``): the TF Hub SavedModel, split so the style is precomputed.

The published model (``google/magenta/arbitrary-image-stylization-v1-256/2``: Inception-v3 style
network, transfer network with 32/64/128 channels, about 12x the work per pixel of the TF Lite pair)
exposes one call, ``model(content, style) -> [stylized]``.  :mod:`.hub_split` cuts that call at
Magenta's 100-number style code, so like the other backends each style costs one style-network run
and each frame only the transfer network; strength, blends and crossfades work because codes mix.

Trust, then verify: at load the split output is compared with the module's own two-input call on a
probe image.  A module without Magenta's structure, or a split that does not reproduce the call,
falls back to calling the module per frame (its style network included) with one warning line; in
that mode the "style code" is the 256x256 style image and codes do not mix.

Caches: the loaded module and its split, per handle and process; TF Hub keeps the download under
``TFHUB_CACHE_DIR`` (our cache folder unless the user set it); style codes go to the on-disk cache
keyed on ``style_model_id`` like the other backends'.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...errors import ModelError
from ...io.images import style_input
from .base import CODE_SIZE, Stylizer, batch_codes, check_frames
from .hub_split import HubSplit, SplitNotFound, split_hub_module
from .tf_backend import configure_tensorflow

log = logging.getLogger(__name__)

#: max abs difference allowed between the split and the module's own call on the probe (values in [0,1])
SELF_CHECK_BOUND = 1e-3

_MODULES: dict[str, Any] = {}
_SPLITS: dict[str, "HubSplit | str"] = {}  # handle -> split, or the reason there is none


def hub_cached(handle: str, cache_dir: Path) -> bool:
    """Whether TF Hub's cache holds ``handle`` (its folder is the SHA-1 of the handle)."""
    folder = Path(os.environ.get("TFHUB_CACHE_DIR", str(cache_dir / "tfhub"))) / hashlib.sha1(handle.encode()).hexdigest()
    return (folder / "saved_model.pb").is_file()


def refuse_download(handle: str, cache_dir: Path) -> None:
    """``--no-download``: a URL handle not in the cache yet is one line, not a trip to the network."""
    if handle.startswith(("http://", "https://")) and not hub_cached(handle, cache_dir):
        raise ModelError(f"the full model downloads from {handle} (about 80 MB), and --no-download forbids it: "
                         "run once online, or give --hub-handle a SavedModel folder")


def load_hub_module(handle: str, cache_dir: Path, download: bool = True) -> Any:
    """The TF Hub module ``handle`` (a URL, downloaded once into the cache, or a SavedModel folder);
    ``download`` False (``--no-download``) refuses a URL that is not cached yet instead of going
    to the network."""
    remote = handle.startswith(("http://", "https://"))
    if handle not in _MODULES and not download:
        refuse_download(handle, cache_dir)
    if handle not in _MODULES:
        os.environ.setdefault("TFHUB_CACHE_DIR", str(cache_dir / "tfhub"))
        import warnings

        with warnings.catch_warnings():  # its pkg_resources import: a setuptools deprecation, 3 lines of noise
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            import tensorflow_hub as hub

        try:
            _MODULES[handle] = hub.load(handle)
        except Exception as exc:  # network, missing path, wrong format: all mean "no model here"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            offline = "; offline, give --hub-handle a SavedModel folder" if remote else ""
            raise ModelError(f"cannot load TF Hub model '{handle}': {first}{offline}") from None
    return _MODULES[handle]


def probe_images() -> tuple[np.ndarray, np.ndarray]:
    """A content (2x64x96) and a style (256x256) image with edges, gradients and colour: enough
    structure that a wrong split cannot match the real call by accident."""
    rng = np.random.default_rng(1705)
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    content = np.stack([xx / 95, yy / 63, ((xx // 16 + yy // 16) % 2)], -1)
    content = np.stack([content, 1 - content]) * 0.8 + 0.2 * rng.random((2, 64, 96, 3), np.float32)
    style = rng.random((1, 256, 256, 3), np.float32)
    return content.astype(np.float32), style


def find_split(handle: str, module: Any) -> "HubSplit | str":
    """The module's verified split, or the reason (one line) it cannot be used. Cached per handle."""
    if handle in _SPLITS:
        return _SPLITS[handle]
    import tensorflow as tf

    try:
        split = split_hub_module(module)
        content, style = (tf.constant(a) for a in probe_images())
        whole = np.asarray(_first(module(content, style)))
        code = _first(split.style_fn(style))
        parts = np.asarray(_first(split.image_fn(content, code)))
        if tuple(code.shape) != (1, 1, 1, CODE_SIZE) or parts.shape != whole.shape:
            raise SplitNotFound(f"split shapes differ from the call's (code {tuple(code.shape)}, image {parts.shape})")
        err = float(np.abs(parts - whole).max())
        if not err <= SELF_CHECK_BOUND:
            raise SplitNotFound(f"split output differs from the model's own call by {err:.2g} (bound {SELF_CHECK_BOUND:g})")
        log.info("full model split at its style code (%s; self-check max abs %.2g)", split.where, err)
        _SPLITS[handle] = split
    except SplitNotFound as exc:
        _SPLITS[handle] = str(exc)
    except Exception as exc:  # a graph we do not understand: same outcome, never a crash
        _SPLITS[handle] = f"cannot split the model ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
    return _SPLITS[handle]


def _first(result: Any) -> Any:
    return result[0] if isinstance(result, (list, tuple)) else result


class HubStylizer(Stylizer):
    """The full Magenta network: style code once per style, transfer per frame (or, when the module
    cannot be split, the module's own call per frame)."""

    name = "hub"

    def __init__(
        self,
        handle: str,
        cache_dir: Path,
        device: str = "auto",
        threads: int = 0,
        precision: str = "float32",
        jit: bool = False,
        download: bool = True,
    ) -> None:
        if not download:
            refuse_download(handle, cache_dir)  # before TensorFlow's seconds of import
        import tensorflow as tf

        self._tf = tf
        self.handle = handle
        self._device = configure_tensorflow(device, threads)
        self._module = load_hub_module(handle, cache_dir, download)
        split = find_split(handle, self._module)
        self.split: Optional[HubSplit] = split if isinstance(split, HubSplit) else None
        self.fallback_reason = "" if self.split else str(split)
        self.mixable_codes = self.split is not None
        self.jit = jit and self.split is not None
        self.precision = precision
        if precision == "bf16":
            log.warning("--precision bf16 is for the lite model (tf and openvino backends); the full model runs float32")
            self.precision = precision = "float32"
        if self.split is None:
            log.warning("full model: %s; running its style network on every frame (no strength, blends or crossfades)", split)
            self._style_src: Optional[np.ndarray] = None  # the code the cached tensor was made from
            self._style_tensor = None
            return
        if precision == "mixed":
            if self._device.startswith("GPU"):
                # The pruned graph is float32; TensorFlow's graph rewrite runs it in float16 on the GPU.
                tf.config.optimizer.set_experimental_options({"auto_mixed_precision": True})
            else:
                log.warning("mixed precision needs a GPU; running float32 on %s", self._device)
                self.precision = "float32"
        image_fn = self.split.image_fn

        def float_fn(images: Any, codes: Any) -> Any:
            return _first(image_fn(images, tf.reshape(codes, [-1, 1, 1, CODE_SIZE])))

        def uint8_fn(frames: Any, codes: Any) -> Any:
            out = float_fn(tf.cast(frames, tf.float32) * (1.0 / 255.0), codes)
            return tf.cast(tf.clip_by_value(out * 255.0 + 0.5, 0.0, 255.0), tf.uint8)

        sig = [tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, CODE_SIZE], tf.float32)]
        self._float_fn = tf.function(float_fn, input_signature=sig, jit_compile=self.jit or None)
        sig_u8 = [tf.TensorSpec([None, None, None, 3], tf.uint8), sig[1]]
        self._uint8_fn = tf.function(uint8_fn, input_signature=sig_u8, jit_compile=self.jit or None)

    @property
    def device(self) -> str:
        if self.split is None:
            return self._device + ", full model, style network per frame"
        extra = (", mixed precision" if self.precision == "mixed" else "") + (", XLA" if self.jit else "")
        return self._device + ", full model, precomputed style" + extra

    @property
    def style_model_id(self) -> str:
        return ("hub-split:" if self.split else "hub:") + self.handle

    def style_code(self, style_rgb: np.ndarray) -> np.ndarray:
        image = style_input(style_rgb)  # [1,256,256,3] in [0,1], the size the style network was trained at
        if self.split is None:
            return image[0]  # the module takes the image itself
        code = _first(self.split.style_fn(self._tf.constant(image)))
        return np.asarray(code, np.float32).reshape(CODE_SIZE)

    def transfer(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        if self.split is None:
            return self._call_whole(images, codes)
        codes = batch_codes(codes, images.shape[0])
        return self._float_fn(np.asarray(images, np.float32), codes).numpy()

    def stylize(self, frames: np.ndarray, codes: np.ndarray) -> np.ndarray:
        check_frames(frames)
        if self.split is None:
            return super().stylize(frames, codes)
        return self._uint8_fn(frames, batch_codes(codes, frames.shape[0])).numpy()

    def warmup(self, width: int, height: int, batch: int = 1) -> None:
        frames = np.zeros((batch, height, width, 3), np.uint8)
        code = np.zeros(CODE_SIZE if self.split else (256, 256, 3), np.float32)
        self.stylize(frames, code)

    # -- the module's own call (fallback) ----------------------------------------------------------

    def _style(self, code: np.ndarray) -> Any:
        # Identity, not id(): holding the array keeps its id from being reused by a new one.
        if code is not self._style_src:
            arr = np.asarray(code, np.float32)
            self._style_tensor = self._tf.constant(arr.reshape((1,) + arr.shape[-3:]))
            self._style_src = code
        return self._style_tensor

    def _call_whole(self, images: np.ndarray, codes: np.ndarray) -> np.ndarray:
        style = self._style(codes)
        out = [np.asarray(_first(self._module(self._tf.constant(images[i : i + 1], self._tf.float32), style)))[0] for i in range(images.shape[0])]
        return np.stack(out).astype(np.float32)
