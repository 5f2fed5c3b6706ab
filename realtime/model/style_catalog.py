"""The catalogue of famous paintings (``styles/catalog.yaml``) and ``stylize styles fetch``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from ..errors import ConfigError, MediaError, UserError
from ..io.images import read_image
from ..resources import DEFAULT_CATALOG
from .download import download

log = logging.getLogger(__name__)

MIN_STYLE_SIDE = 64


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    title: str
    artist: str
    year: str
    url: str
    sha256: Optional[str]
    licence: str

    @property
    def filename(self) -> str:
        suffix = Path(self.url.split("?")[0]).suffix.lower() or ".jpg"
        return self.name + suffix


def load_catalog(path: Path = DEFAULT_CATALOG) -> list[CatalogEntry]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read style catalogue {path}: {exc}") from None
    fields = set(CatalogEntry.__dataclass_fields__)
    out = []
    for i, item in enumerate(data.get("styles") or []):
        unknown = set(item) - fields
        missing = {"name", "url"} - set(item)
        if unknown or missing:
            raise ConfigError(f"style catalogue {path} entry {i}: unknown keys {sorted(unknown)} / missing {sorted(missing)}")
        out.append(CatalogEntry(**{k: (str(item[k]) if item.get(k) is not None else None) if k == "sha256" else str(item.get(k, "")) for k in fields}))
    return out


def _validate_image(path: Path) -> None:
    try:
        img = read_image(path)
    except MediaError:
        raise MediaError("downloaded file is not an image: rejected") from None
    if min(img.shape[:2]) < MIN_STYLE_SIDE:
        raise MediaError(f"downloaded image is smaller than {MIN_STYLE_SIDE} px: rejected")


def fetch_styles(dest: Path, names: list[str], catalog: list[CatalogEntry], overwrite: bool = False) -> tuple[list[Path], list[str]]:
    """Download the named entries (all when ``names`` is empty): (written paths, error lines); a
    download that cannot reach its server says where to put the file by hand."""
    by_name = {e.name: e for e in catalog}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UserError(f"not in the style catalogue: {', '.join(unknown)} (known: {', '.join(by_name)})")
    written, errors = [], []
    created = not dest.exists()
    for e in [by_name[n] for n in names] if names else catalog:
        target = dest / e.filename
        if target.exists() and not overwrite:
            log.info("%s already present", target)
            written.append(target)
            continue
        # Offline, the way on is by hand: the folder and the file name it must have (issue 27: the
        # error said only that the download failed).
        by_hand = f"download it in a browser and save it as {target.name} in {dest.resolve()}/"
        try:
            written.append(download(e.url, target, sha256=e.sha256, validate=_validate_image, error=MediaError,
                                    hint=by_hand))
        except UserError as exc:
            errors.append(f"{e.name}: {exc}")
    if created and dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()  # nothing fetched (offline): leave no empty folder behind
    return written, errors
