"""``stylize image``: still images, at the content's size, through the same stylize stage as video."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..config import Config
from ..core.workers import call_interruptibly
from ..pipeline.stage import StylizeStage, check_mixable
from ..pipeline.state import StreamState
from ..errors import MediaError, UserError
from ..io.images import read_image, write_image
from ..io.paths import check_output_dir, check_output_file
from ..model.engine import open_engine
from ..model.styles import build_code, parse_blend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageJob:
    """What ``stylize image`` was asked to do, beyond the config."""

    contents: tuple[str, ...]
    style: str
    blend: tuple[str, ...] = ()
    output: Optional[str] = None
    out_dir: Optional[str] = None
    overwrite: bool = False


def run_image(cfg: Config, job: ImageJob) -> int:
    contents = [Path(c) for c in job.contents]
    # Check what we can before loading the network: bad input fails fast, nothing is written.
    for c in contents:
        if c.is_dir():
            raise MediaError(f"content is a folder, not an image: {c}")
        if not c.is_file():
            raise MediaError(f"content image not found: {c}")
    blend_specs = parse_blend(job.blend)
    if job.output:
        out = Path(job.output)
        if out.exists() and any(out.resolve() == c.resolve() for c in contents):
            raise UserError(f"output {out} would overwrite the input")
        check_output_file(out, job.overwrite)
    else:
        check_output_dir(Path(job.out_dir or "."))
    engine = open_engine(cfg, fixed_size=False)
    style = engine.resolve_styles([job.style])[0]
    blend = [(engine.resolve_styles([name])[0], w) for name, w in blend_specs]
    strength = cfg.styles.strength
    check_mixable(engine.stylizer, strength, 1 + len(blend))
    code = build_code(engine.bank, style, blend)
    stage = StylizeStage(engine.stylizer, cfg.image.size, cfg.engine.max_size)
    failures = 0
    for c in contents:
        out = Path(job.output) if job.output else Path(job.out_dir or ".") / f"{c.stem}-{style.name}.png"
        try:
            if out.exists() and out.resolve() == c.resolve():
                raise UserError(f"output {out} would overwrite the input")
            check_output_file(out, job.overwrite)
            bgr = read_image(c, bgr=True)  # BGR in and out, as the stage takes frames: two colour swaps in all
            state = StreamState()  # each image is its own stream: its own content code for the strength
            # on a worker thread: Ctrl-C and SIGTERM need not wait for a large image's network call
            result = call_interruptibly("image", lambda: stage([bgr], stage.strengthen(state, code, strength, bgr), state)[0])
            write_image(out, result, overwrite=job.overwrite, bgr=True)
            w, h = stage.size_for(bgr.shape[1], bgr.shape[0])
            log.info("%s -> %s (inference %dx%d, style %s)", c, out, w, h, style.name)
        except UserError as exc:
            if len(contents) == 1:
                raise
            log.error("%s: %s", c, exc)
            failures += 1
    return 2 if failures else 0
