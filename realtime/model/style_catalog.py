"""The catalogue of famous paintings (``styles/catalog.yaml``) and ``stylize styles fetch``."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from ..errors import ConfigError, MediaError, UserError
from ..config import load_yaml
from ..io.images import MIN_STYLE_SIDE, read_image
from ..resources import DEFAULT_CATALOG
from .download import download

log = logging.getLogger(__name__)

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


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")  # a plain file name: never a path out of --dest


def load_catalog(path: Path = DEFAULT_CATALOG) -> list[CatalogEntry]:
    """The catalogue's entries, every fault of the file one :class:`ConfigError` line (a number where
    the list goes was a traceback; ``name: ../evil`` was written outside ``--dest``)."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"style catalogue {path}: {why}")

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise bad(f"cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise bad("not UTF-8 text (is it a YAML file?)") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise bad(f"not valid YAML: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from None
    data = {} if data is None else data
    entries = data.get("styles") or [] if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise bad("must be a mapping with a list under 'styles'")
    fields = set(CatalogEntry.__dataclass_fields__)
    out = []
    for i, item in enumerate(entries or []):
        if not isinstance(item, dict):
            raise bad(f"entry {i} is not a mapping")
        unknown = {str(k) for k in item} - fields
        missing = {"name", "url"} - set(item)
        if unknown or missing:
            raise bad(f"entry {i}: unknown keys {sorted(unknown)} / missing {sorted(missing)}")
        for k, v in item.items():
            if isinstance(v, (list, dict, bool)) or (v is None and k in ("name", "url")):
                raise bad(f"entry {i}: '{k}' must be text, got {v!r}")
        name, url = str(item["name"]), str(item["url"])
        if not _NAME.match(name):
            raise bad(f"entry {i}: name {name!r} must be a plain file name (letters, digits, '_', '-', '.')")
        if not url.startswith(("https://", "http://")):
            raise bad(f"entry {i} ({name}): url {url!r} must be http(s)://")
        out.append(CatalogEntry(**{k: (str(item[k]) if item.get(k) is not None else None) if k == "sha256" else str(item.get(k, "")) for k in fields}))
    return out


def _validate_image(path: Path) -> None:
    """What every style image must be (a picture of 16x16 to 50 MP), said as such: a 10000x10000
    painting was "not an image", an 8x8 one "smaller than 64 px" where a style may be 16."""
    try:
        read_image(path, min_side=MIN_STYLE_SIDE)
    except MediaError as exc:
        raise MediaError(f"downloaded file rejected: {exc}") from None


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
