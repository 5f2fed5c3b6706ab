"""``stylize video``: several files in turn, one bad file does not stop the rest.

The job only plans (inputs, outputs, styles, checks that need no network) and reports; each file
runs through :class:`~realtime.pipeline.video.VideoStylizer`.  ``--cluster`` runs the same job on
Ray (:mod:`realtime.cluster`, chosen by the command line), with the same planning functions.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..config import Config
from ..errors import MediaError, UserError
from ..io.media.decode import VIDEO_EXTS, VideoFile
from ..io.media.h264 import OUTPUT_EXTS
from ..io.paths import check_distinct_outputs, check_output_dir, derived_name, check_output_file, output_label
from ..model.engine import open_engine
from ..effects.crossfade import Replay
from ..io.sinks.timeline import read_timeline
from ..model.styles import Style, check_style_files, find_style_images
from ..pipeline.video import VideoOptions, VideoResult, VideoStylizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoJob:
    """What ``stylize video`` was asked to do, beyond the config (validated by the CLI layer)."""

    inputs: tuple[str, ...]
    styles: tuple[str, ...]
    output: Optional[str] = None
    out_dir: Optional[str] = None
    switch_every: float = 0.0
    audio: bool = True
    start: Optional[float] = None
    end: Optional[float] = None
    overwrite: bool = False
    progress: bool = True
    timeline: Optional[str] = None  # replay a live recording's timeline (issue #28) instead of --style


def expand_inputs(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_EXTS)
            if not found:
                raise MediaError(f"no video files in folder {p}")
            out.extend(found)
        else:
            out.append(p)
    return out


def _frames_estimate(path: Path, opts: VideoOptions) -> Optional[int]:
    try:
        reader = VideoFile(path).open()
    except MediaError:
        return None
    with reader:
        n, rate, dur = reader.frame_count(), reader.fps, reader.duration
        if n and rate and (opts.start or opts.end is not None):
            end = opts.end if opts.end is not None else dur
            n = max(0, int((end - (opts.start or 0)) * rate))
        return n or None


def timeline_source(path: str) -> Path:
    """The raw video a timeline names (``source``: the camera's frames a live recording kept with
    ``--record-source``), for ``stylize video --timeline NAME.timeline.json`` with no input."""
    doc = read_timeline(Path(path))
    if doc.source is None:
        raise UserError(f"timeline {path} names no source video (the show was recorded without --record-source): "
                        "give the raw video before --timeline")
    if not doc.source.is_file():
        raise MediaError(f"timeline {path}: its source video {doc.source} is not there")
    return doc.source


def timeline_replay(cfg: Config, path: str) -> tuple[list[Style], Replay]:
    """The styles a timeline uses and its schedule over them.  A style is found by the path the
    show used while that file is still there (the same image, even if another took its name), else
    by its name through the usual --style lookup; one that is gone is an error that names it."""
    doc = read_timeline(Path(path))
    styles: list[Style] = []
    index: dict[tuple[str, Optional[str]], int] = {}
    for s in doc.states:
        key = (s.style, s.style_path)
        if key in index:
            continue
        if s.style_path and Path(s.style_path).is_file():
            style = Style(s.style, Path(s.style_path))
        else:
            try:
                style = find_style_images(s.style, cfg.styles.dir, cfg.upload_dir)[0]
            except MediaError:
                where = f" (was {s.style_path})" if s.style_path else ""
                raise MediaError(f"timeline {path}: style {s.style!r}{where} at {s.t:.3f} s no longer exists") from None
        index[key] = len(styles)
        styles.append(style)
    replay = Replay(
        times=tuple(s.t for s in doc.states), styles=tuple(index[(s.style, s.style_path)] for s in doc.states),
        strengths=tuple(s.strength for s in doc.states), stabilities=tuple(s.stability for s in doc.states),
        crossfade_s=doc.crossfade_s, crossfades=tuple(s.crossfade_s for s in doc.states))
    return styles, replay


def plan_job(cfg: Config, job: VideoJob) -> tuple[list[Path], list[Style], Optional[Replay]]:
    """The inputs, the styles (checked) and, with ``--timeline``, the replay over them: one place
    for the one-process run and the cluster's driver, so both stylize the same thing."""
    inputs = expand_inputs(job.inputs) if job.inputs or not job.timeline else [timeline_source(job.timeline)]
    replay: Optional[Replay] = None
    if job.timeline:
        if len(inputs) != 1:
            raise UserError("--timeline replays one recording: give one input")
        styles, replay = timeline_replay(cfg, job.timeline)
    else:
        styles = job_styles(cfg, job)
    check_style_files(styles)  # a bad style image: one line now, not after the network loads
    return inputs, styles, replay


def job_styles(cfg: Config, job: VideoJob) -> list[Style]:
    """The job's styles (one --style may name a folder: its first image is used, as for naming)."""
    styles = [s for spec in job.styles for s in find_style_images(spec, cfg.styles.dir, cfg.upload_dir)]
    return styles[:1] if len(job.styles) == 1 else styles


def output_pairs(job: VideoJob, inputs: Sequence[Path], styles: Sequence[Style]) -> list[tuple[Path, Path]]:
    """(input, output) for each input, with the checks that need neither the network nor the
    files' contents (a wrong folder fails in a second, before anything loads).  ``--out-dir`` names
    carry every style of the run (``clip-waves+dots.mp4`` for ``--switch-every``), not the first."""
    if job.output:
        if len(inputs) > 1:
            raise UserError("-o takes one input; use --out-dir DIR for several")
        if Path(job.output).suffix.lower() not in OUTPUT_EXTS:
            raise UserError(f"output must be an H.264 video file ({', '.join(OUTPUT_EXTS)}): {job.output}")
        return [(inputs[0], Path(job.output))]
    out_dir = Path(job.out_dir)  # type: ignore[arg-type]
    check_output_dir(out_dir)
    label = output_label([s.name for s in styles])
    pairs = [(src, derived_name(out_dir, src.stem, label, ".mp4")) for src in inputs]
    check_distinct_outputs([(dst, src.name) for src, dst in pairs], "rename one of the inputs, or stylize them into two folders")
    return pairs


def run_video(cfg: Config, job: VideoJob) -> int:
    """``stylize video``: several inputs in turn; one bad file does not stop the rest."""
    from tqdm import tqdm

    inputs, styles, replay = plan_job(cfg, job)
    pairs = output_pairs(job, inputs, styles)
    if job.output:
        if Path(job.output).resolve() == inputs[0].resolve():
            raise UserError(f"output {job.output} would overwrite the input")
        check_output_file(Path(job.output), job.overwrite)
    engine = open_engine(cfg)
    codes = [engine.bank.code_for(s) for s in styles]
    opts = VideoOptions.from_config(cfg, switch_every=job.switch_every, audio=job.audio, start=job.start, end=job.end,
                                     replay=replay)
    stylizer = VideoStylizer(engine, codes, opts)
    show = job.progress and sys.stderr.isatty()
    failed: list[str] = []
    done: list[tuple[Path, VideoResult]] = []
    for src, dst in pairs:
        try:
            if dst.resolve() == src.resolve():
                raise UserError(f"output {dst} would overwrite the input")
            check_output_file(dst, job.overwrite)
            with tqdm(total=_frames_estimate(src, opts) if show else None, unit="frame", desc=src.name, disable=not show, leave=False, file=sys.stderr) as bar:
                res = stylizer.run(src, dst, bar.update, overwrite=job.overwrite)
            done.append((dst, res))
            log.info(
                "%s -> %s: %d frames %dx%d (inference %dx%d) in %.1f s (%.1f fps), audio %s",
                src, dst, res.frames, res.width, res.height, *res.inference_size, res.seconds, res.fps, res.audio_mode,
            )
        except UserError as exc:
            if len(inputs) == 1:
                raise
            log.error("failed: %s: %s", src, exc)
            failed.append(f"{src}: {exc}")
    if len(inputs) > 1:
        log.info("summary: %d of %d videos stylized%s", len(done), len(inputs), f", {len(failed)} failed:" if failed else "")
        for line in failed:
            log.info("  failed  %s", line)
    return 2 if failed else 0
