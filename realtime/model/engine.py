"""The engine a command works with: config, the stylizer backend, and the style bank.

Why one place: ``image``, ``video``, ``live`` and ``bench`` all need the same start-up (resolve and
verify model files, build the backend, log the device, open the style-code cache).  The per-frame
path is :class:`realtime.pipeline.stage.StylizeStage`, shared the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from .backends import Stylizer, create_stylizer
from .styles import Style, StyleBank, StyleCodeCache, find_style_images

log = logging.getLogger(__name__)


@dataclass
class Engine:
    cfg: Config
    stylizer: Stylizer
    bank: StyleBank

    def resolve_styles(self, specs: Sequence[str]) -> list[Style]:
        """--style values (files, folders, names in the styles folder) -> styles, in order."""
        out: list[Style] = []
        for spec in specs:
            out.extend(find_style_images(spec, self.cfg.styles.dir, self.cfg.upload_dir))
        return out


def open_engine(cfg: Config, fixed_size: bool = True) -> Engine:
    """Engine for a job; ``fixed_size=False`` for still images of many sizes (no XLA by default)."""
    stylizer = create_stylizer(cfg, fixed_size=fixed_size)
    cache_dir = Path(cfg.styles.cache_dir) if cfg.styles.cache_dir else cfg.cache_dir / "style_codes"
    return Engine(cfg, stylizer, StyleBank(stylizer, StyleCodeCache(cache_dir)))
