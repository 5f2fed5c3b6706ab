"""``stylize image``: still images, at the content's size, through the same stylize stage as video.

Several ``--style`` values give one result per style (``-o two.png`` -> ``two-waves.png``,
``two-dots.png``): every output name says which styles made it (a blend: all of them,
``photo-waves+ink.png``), and every name is checked before the network loads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..config import Config
from ..core.workers import call_interruptibly
from ..pipeline.stage import StylizeStage, check_mixable
from ..pipeline.state import StreamState
from ..errors import MediaError, UserError
from ..io.images import check_image_header, read_image, read_image_bytes, write_image
from ..io.paths import check_distinct_outputs, check_output_dir, derived_name, check_output_file, output_label
from ..model.engine import open_engine
from ..model.styles import Style, build_code, check_style_files, find_style_images, parse_blend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageJob:
    """What ``stylize image`` was asked to do, beyond the config."""

    contents: tuple[str, ...]
    styles: tuple[str, ...]  # one result per style (a folder: its first image)
    blend: tuple[str, ...] = ()  # STYLE:WEIGHT, blended into every style
    output: Optional[str] = None
    out_dir: Optional[str] = None
    overwrite: bool = False


@dataclass(frozen=True)
class _Look:
    """One style of the job with the blend mixed in, and the name its outputs carry."""

    style: Style
    label: str


def plan_outputs(job: ImageJob, contents: Sequence[Path], labels: Sequence[str]) -> list[tuple[Path, str, Path]]:
    """(content, style label, output) for every result.  ``-o`` names the result of one style
    exactly; with several styles it is the pattern: ``two.png`` -> ``two-waves.png``, ``two-dots.png``.
    ``--out-dir``: ``CONTENT-LABEL.png``.  Two results with one name are an error now, not a file
    that says "exists" after the first was written."""
    if job.output:
        out = Path(job.output)
        plan = ([(contents[0], labels[0], out)] if len(labels) == 1 else
                [(contents[0], label, derived_name(out.parent, out.stem, label, out.suffix)) for label in labels])
    else:
        folder = Path(job.out_dir or ".")
        plan = [(c, label, derived_name(folder, c.stem, label, ".png")) for c in contents for label in labels]
    check_distinct_outputs([(out, f"{c.name} with {label}") for c, label, out in plan],
                           "give styles or contents with different names")
    return plan


def _style(cfg: Config, spec: str) -> Style:
    """A --style or --blend value -> its style (a folder: the first image), its size checked now."""
    style = find_style_images(spec, cfg.styles.dir)[0]
    check_style_files([style])
    return style


def run_image(cfg: Config, job: ImageJob) -> int:
    contents = [Path(c) for c in job.contents]
    # Check what we can before loading the network: bad input fails fast, nothing is written.
    for c in contents:
        if c.is_dir():
            raise MediaError(f"content is a folder, not an image: {c}")
        if not c.exists():
            raise MediaError(f"content image not found: {c}")
        check_image_header(read_image_bytes(c), str(c))  # a huge or unreadable image: before the network
    blend_specs = parse_blend(job.blend)
    blend = [(_style(cfg, name), w) for name, w in blend_specs]
    looks = [_Look(s, output_label([s.name] + [b.name for b, _ in blend])) for s in (_style(cfg, spec) for spec in job.styles)]
    plan = plan_outputs(job, contents, [look.label for look in looks])
    if job.output:
        for c, _, out in plan:
            if out.exists() and out.resolve() == c.resolve():
                raise UserError(f"output {out} would overwrite the input")
            check_output_file(out, job.overwrite)
    else:
        check_output_dir(Path(job.out_dir or "."))
    engine = open_engine(cfg, fixed_size=False)
    strength = cfg.styles.strength
    check_mixable(engine.stylizer, strength, 1 + len(blend))
    codes = {look.label: build_code(engine.bank, look.style, blend) for look in looks}
    stage = StylizeStage(engine.stylizer, cfg.image.size, cfg.engine.max_size, stability_device=cfg.engine.stability_device)
    failures = 0
    for c in contents:
        results = [(label, out) for content, label, out in plan if content == c]
        try:
            bgr = read_image(c, bgr=True)  # once, however many styles; BGR in and out, as the stage takes frames
        except UserError as exc:
            if len(plan) == 1:
                raise
            log.error("%s: %s", c, exc)
            failures += len(results)
            continue
        for label, out in results:
            try:
                if out.exists() and out.resolve() == c.resolve():
                    raise UserError(f"output {out} would overwrite the input")
                check_output_file(out, job.overwrite)
                state = StreamState()  # each result is its own stream: its own content code for the strength
                code = codes[label]
                # on a worker thread: Ctrl-C and SIGTERM need not wait for a large image's network call
                result = call_interruptibly("image", lambda: stage([bgr], stage.strengthen(state, code, strength, bgr), state)[0])
                write_image(out, result, overwrite=job.overwrite, bgr=True)
                w, h = stage.size_for(bgr.shape[1], bgr.shape[0])
                log.info("%s -> %s (inference %dx%d, style %s)", c, out, w, h, label)
            except UserError as exc:
                if len(plan) == 1:
                    raise
                log.error("%s: %s", out, exc)
                failures += 1
    return 2 if failures else 0
