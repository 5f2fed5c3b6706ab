"""``stylize image``: still images, at the content's size (inference size settable)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .config import Config
from .engine import open_engine
from .errors import MediaError, UserError
from .images import read_image, write_image
from .styles import build_code, parse_blend

log = logging.getLogger(__name__)


def run_image(cfg: Config, args: argparse.Namespace) -> int:
    contents = [Path(c) for c in args.content]
    # Check what we can before loading the network: bad input fails fast, nothing is written.
    for c in contents:
        if not c.is_file():
            raise MediaError(f"content image not found: {c}")
    if args.size and args.size < 16:
        raise UserError(f"--size must be at least 16 pixels, got {args.size}")
    engine = open_engine(cfg, fixed_size=False)
    style = engine.resolve_styles([args.style])[0]
    blend = [(engine.resolve_styles([name])[0], w) for name, w in parse_blend(args.blend)]
    strength = cfg.styles.strength if args.strength is None else args.strength
    failures = 0
    for c in contents:
        out = Path(args.output) if args.output else Path(args.out_dir) / f"{c.stem}-{style.name}.png"
        try:
            if out.exists() and not args.overwrite:
                raise UserError(f"{out} exists (use --overwrite to replace it)")
            rgb = read_image(c)
            content_code = engine.stylizer.style_code(rgb) if strength != 1.0 else None
            code = build_code(engine.bank, style, blend, strength, content_code)
            h, w = rgb.shape[:2]
            size = engine.inference_size(w, h, args.size)
            result = engine.stylize_frames([rgb], code, size)[0]
            write_image(out, result)
            log.info("%s -> %s (inference %dx%d, style %s)", c, out, size[0], size[1], style.name)
        except UserError as exc:
            if len(contents) == 1:
                raise
            log.error("%s: %s", c, exc)
            failures += 1
    return 2 if failures else 0
