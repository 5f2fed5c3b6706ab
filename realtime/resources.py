"""Files that ship with the program: the default config (``configs/``), the style images and the
painting catalogue (``styles/``).

Why two places: the product's layout keeps these folders at the top of the source tree, beside
``realtime/`` (users, the README and the service file point there), and git holds them once.  A wheel
carries the same folders *inside* the package, as ``realtime/_data/configs`` and
``realtime/_data/styles`` (``setup.py`` maps the top-level folders there at build time, no copies).
So :func:`shipped` asks :mod:`importlib.resources` for the installed package's ``_data`` first (a
wheel, wherever pip put it), and otherwise takes the folder beside the package (a source checkout,
run in place or installed editable).  Nothing here depends on the current folder.

This module imports nothing of the project: it sits in the bottom layer, beside :mod:`realtime.config`.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Literal

#: Where a wheel keeps the shipped folders, inside the package.
DATA_DIR = "_data"

Shipped = Literal["configs", "styles"]


def shipped(name: Shipped, package: Path | None = None) -> Path:
    """The shipped folder ``name``: inside the installed package (wheel), else beside the package in
    a source checkout (one with its ``pyproject.toml``: never an unrelated folder of site-packages).
    The wheel's path is returned when neither exists, so errors name where it should be.
    ``package``: the ``realtime`` package folder (default: this one, from :mod:`importlib.resources`)."""
    if package is None:
        files = importlib.resources.files(__package__ or "realtime")
        package = files if isinstance(files, Path) else Path(__file__).parent  # pip never installs zipped
    package = package.resolve()
    inside = package / DATA_DIR / name
    if inside.is_dir():
        return inside
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    return inside


SHIPPED_CONFIGS = shipped("configs")
SHIPPED_STYLES = shipped("styles")
DEFAULT_CONFIG_PATH = SHIPPED_CONFIGS / "default.yaml"
DEFAULT_CATALOG = SHIPPED_STYLES / "catalog.yaml"
