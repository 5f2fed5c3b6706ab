"""The model catalogue and the store that finds, downloads and verifies model files.

Why: the network weights are not in the repository. Real users download them once into a per-user
cache; tests, CI and offline machines point at a local folder.  Every file is checked against its
published sha256 before use, downloads go to a temp file that is renamed only after the checksum
matches, so a wrong or half-finished download can never be mistaken for a model.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .download import download
from ..errors import ModelError

log = logging.getLogger(__name__)

MODEL_DIR_ENV = "REALTIME_MODEL_DIR"
TFHUB_HANDLE = "https://tfhub.dev/google/magenta/arbitrary-image-stylization-v1-256/2"


@dataclass(frozen=True)
class ModelFile:
    """One downloadable TF Lite file of Magenta's arbitrary-image-stylization network."""

    key: str  # e.g. "int8_prediction"
    filename: str
    size: int
    sha256: str
    hub_handle: str
    description: str

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + "/" + self.filename


def _hub(kind: str, stage: str) -> str:
    return f"https://tfhub.dev/google/lite-model/magenta/arbitrary-image-stylization-v1-256/{kind}/{stage}/1"


CATALOG: dict[str, ModelFile] = {
    m.key: m
    for m in (
        ModelFile(
            "int8_prediction",
            "magenta_arbitrary-image-stylization-v1-256_int8_prediction_1.tflite",
            2_828_838,
            "af6ad4b2e7aeba0675f32636082ab915ced5375229a3f8aff7e714c6213f5ed2",
            _hub("int8", "prediction"),
            "style prediction (MobileNet-v2), int8: style image 256x256 -> 100-number style code",
        ),
        ModelFile(
            "fp16_prediction",
            "magenta_arbitrary-image-stylization-v1-256_fp16_prediction_1.tflite",
            4_708_350,
            "df9578b4141ef1d826f33b5f8e6e8e31bdbbb507b4e1f7ccbd2547ac1299da42",
            _hub("fp16", "prediction"),
            "style prediction, fp16 weights (optional; int8 is used by default)",
        ),
        ModelFile(
            "int8_transfer",
            "magenta_arbitrary-image-stylization-v1-256_int8_transfer_1.tflite",
            284_398,
            "7a1550643cf034a4d813c0aa276976cd15da4141b4f1ec3631db1d0d9c8e2cd1",
            _hub("int8", "transfer"),
            "style transfer network, int8 (tflite backend, transfer=int8)",
        ),
        ModelFile(
            "fp16_transfer",
            "magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite",
            422_086,
            "53b5243ed5aa33e408db7976c8a8e51a90a0f7708fd122a31428cd00fbdf6aa6",
            _hub("fp16", "transfer"),
            "style transfer network, fp16 weights (tf backend's weights; tflite backend default)",
        ),
    )
}

# What the default backends need; fp16_prediction is optional.
REQUIRED = ("int8_prediction", "fp16_transfer", "int8_transfer")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


class ModelStore:
    """Resolves catalogue keys to verified files: a local folder first, then the cache, then a download."""

    def __init__(
        self,
        cache_dir: Path,
        model_dir: Optional[str | os.PathLike] = None,
        base_url: str = "",
        auto_download: bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        env_dir = os.environ.get(MODEL_DIR_ENV)
        if model_dir and not Path(model_dir).is_dir():  # was ignored in silence (and named as where to put files)
            raise ModelError(f"--model-dir {model_dir}: no such folder")
        self.model_dir = Path(model_dir) if model_dir else (Path(env_dir) if env_dir else None)
        self.cache_dir = Path(cache_dir) / "models"
        self.base_url = base_url
        self.auto_download = auto_download
        self.timeout_s = timeout_s
        self._verified: dict[Path, tuple[int, int]] = {}

    # -- lookup -------------------------------------------------------------------------------
    def candidates(self, key: str) -> list[Path]:
        m = self.entry(key)
        out = []
        if self.model_dir is not None:
            out.append(self.model_dir / m.filename)
        out.append(self.cache_dir / m.filename)
        return out

    @staticmethod
    def entry(key: str) -> ModelFile:
        try:
            return CATALOG[key]
        except KeyError:
            raise ModelError(f"unknown model '{key}' (known: {', '.join(CATALOG)})") from None

    def _check(self, path: Path, m: ModelFile) -> None:
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        if self._verified.get(path) == stamp:
            return
        if st.st_size != m.size:
            raise ModelError(
                f"model file {path} has {st.st_size} bytes, expected {m.size}: it is truncated or a "
                f"different file; delete it and run 'stylize models fetch'"
            )
        digest = sha256_file(path)
        if digest != m.sha256:
            raise ModelError(
                f"model file {path} has the wrong sha256 ({digest[:12]}..., expected {m.sha256[:12]}...); "
                f"delete it and run 'stylize models fetch'"
            )
        self._verified[path] = stamp

    def path(self, key: str) -> Path:
        """The verified local path of ``key``, downloading it if allowed."""
        m = self.entry(key)
        p = self.cache_dir / m.filename
        if self.model_dir is not None:
            local = self.model_dir / m.filename
            if local.is_file():
                try:
                    self._check(local, m)
                    return local
                except ModelError as exc:
                    if not p.is_file():  # no good copy to fall back on: delete it and fetch (into the cache)
                        raise
                    # `models fetch` puts a good copy into the cache, which then serves; the bad one is named
                    log.warning("%s; using the verified copy in %s", str(exc).split(";")[0], self.cache_dir)
        if p.is_file():
            self._check(p, m)
            return p
        if not self.auto_download:
            where = self.model_dir or self.cache_dir
            raise ModelError(
                f"model file {m.filename} not found: download {m.url(self.base_url)} and put it in "
                f"{where} (or pass --model-dir DIR / set {MODEL_DIR_ENV})"
            )
        return self.fetch(key)

    # -- download -----------------------------------------------------------------------------
    def fetch(self, key: str, progress: Optional[Callable[[int, Optional[int]], None]] = None) -> Path:
        """Download ``key`` into the cache: temp file, checksum, then atomic rename."""
        m = self.entry(key)
        dest = self.cache_dir / m.filename
        if dest.is_file():
            try:
                self._check(dest, m)
                return dest
            except ModelError:
                log.warning("cached %s is corrupt; downloading it again", dest)
        where = self.model_dir or self.cache_dir
        download(
            m.url(self.base_url),
            dest,
            sha256=m.sha256,
            size=m.size,
            timeout_s=self.timeout_s,
            error=ModelError,
            hint=f"put {m.filename} in {where} or pass --model-dir DIR",
            progress=progress,
        )
        st = dest.stat()
        self._verified[dest] = (st.st_size, st.st_mtime_ns)
        return dest

    def status(self, key: str) -> tuple[str, Optional[Path]]:
        """("ok" | "missing" | "corrupt: ...", path) without downloading: the file :meth:`path`
        would use (a good cache copy serves when the model folder's is corrupt: "ok", the bad one
        still said by :meth:`problems`), else the first bad one."""
        m = self.entry(key)
        bad: Optional[tuple[str, Path]] = None
        for p in self.candidates(key):
            if p.is_file():
                try:
                    self._check(p, m)
                    return "ok", p
                except ModelError as exc:
                    bad = bad or (f"corrupt: {exc}", p)
        return bad or ("missing", None)

    def problems(self, key: str) -> list[str]:
        """Every candidate file of ``key`` that fails its check (one line each)."""
        m, out = self.entry(key), []
        for p in self.candidates(key):
            if p.is_file():
                try:
                    self._check(p, m)
                except ModelError as exc:
                    out.append(str(exc))
        return out
