"""The engine a command works with: config, the stylizer backend, and the style bank.

Why one place: ``image``, ``video``, ``live`` and ``bench`` all need the same start-up (resolve and
verify model files, build the backend, log the device, open the style-code cache) and the same
per-frame recipe (resize to the inference size, stylize, resize back to the source size).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .backends import Stylizer, create_stylizer
from .config import Config
from .images import inference_size, resize
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
            out.extend(find_style_images(spec, self.cfg.styles.dir))
        return out

    def inference_size(self, width: int, height: int, short_side: int = 0) -> tuple[int, int]:
        """(w, h) for the network: the requested short side (0 = the source's), capped by max_size."""
        side = short_side or min(width, height)
        side = min(side, self.cfg.engine.max_size)
        return inference_size(width, height, side)

    def stylize_frames(
        self,
        frames: Sequence[np.ndarray],
        codes: np.ndarray,
        size: tuple[int, int],
        post: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
    ) -> list[np.ndarray]:
        """RGB frames of one source size -> stylized RGB frames of the same size.

        ``post(content, styled)`` runs per frame, in order, at the inference size (temporal
        smoothing), before the result is scaled back to the source size.
        """
        batch = np.stack([resize(f, size) for f in frames])
        out = self.stylizer.stylize(batch, codes)
        if post is not None:
            out = [post(c, o) for c, o in zip(batch, out)]
        h, w = frames[0].shape[:2]
        return [resize(o, (w, h)) for o in out]


def open_engine(cfg: Config, fixed_size: bool = True) -> Engine:
    """Engine for a job; ``fixed_size=False`` for still images of many sizes (no XLA by default)."""
    stylizer = create_stylizer(cfg, fixed_size=fixed_size)
    cache_dir = Path(cfg.styles.cache_dir) if cfg.styles.cache_dir else cfg.cache_dir / "style_codes"
    return Engine(cfg, stylizer, StyleBank(stylizer, StyleCodeCache(cache_dir)))
