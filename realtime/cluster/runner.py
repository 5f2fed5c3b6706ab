"""``stylize video --cluster``: a batch of files spread over a Ray cluster, resumable.

The driver (this process) plans the work, hands units to worker actors as they come free, joins
each file's segments when its last one is done and publishes the output atomically.  It keeps
the manifests, so it is the only writer of the work folder's bookkeeping.  Workers only write
their unit file (temp + rename), so a worker killed half-way leaves nothing that looks finished.

Failure rules: a worker that dies (its process or its machine) has its unit retried on a fresh
worker, up to ``cluster.retries`` times; an input that fails (unreadable, damaged) fails alone
and is listed in the summary; Ctrl-C kills the workers and leaves finished segments for a rerun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .. import __version__
from ..config import Config
from ..effects.crossfade import Replay
from ..errors import MediaError, UserError
from ..io.paths import OutputError, check_output_file, publish, temp_path_for
from ..jobs.video import VideoJob, output_pairs, plan_job
from ..pipeline.video import VideoResult
from .join import join_segments
from .manifest import Manifest
from .plan import Unit, plan_units, probe, warmup_frames
from .pool import WorkerPool, require_ray

log = logging.getLogger(__name__)

@dataclass
class _Input:
    """One input file's progress through the batch."""

    src: Path
    dst: Path
    manifest: Optional[Manifest] = None
    status: str = "pending"  # pending | done | skipped | failed
    error: str = ""
    frames: int = 0
    units_left: int = 0
    audio: str = ""


@dataclass
class _Task:
    item: _Input
    unit: Unit
    attempt: int = 0


@dataclass
class ClusterResult:
    """What :func:`run_cluster` did, for the CLI's summary and the tests."""

    inputs: list[_Input]
    frames: int
    seconds: float
    workers: int
    retried: int
    load_s: list[float]

    @property
    def failed(self) -> list[_Input]:
        return [i for i in self.inputs if i.status == "failed"]


def settings_of(cfg: Config, job: VideoJob, style_files: list[Path], warmup: int,
                replay: Optional[Replay] = None) -> dict[str, Any]:
    """Everything that decides an output's pixels, sound and cutting (for the work fingerprint)."""
    return {
        "replay": dataclasses.asdict(replay) if replay is not None else None,
        "engine": {k: v for k, v in dataclasses.asdict(cfg.engine).items() if k != "threads"},
        "video": dataclasses.asdict(cfg.video),
        "models": {"transfer": cfg.models.transfer, "hub": cfg.models.hub_handle},
        "styles": {"strength": cfg.styles.strength, "crossfade_s": cfg.styles.crossfade_s,
                   "files": [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in style_files]},
        "job": {"switch_every": job.switch_every, "audio": job.audio, "start": job.start, "end": job.end},
        "cut": {"segment_s": cfg.cluster.segment_s, "warmup": warmup},
        "version": __version__,
    }


def _plan(cfg: Config, job: VideoJob) -> tuple[list[_Input], list[Path], Optional[Replay]]:
    """The inputs, their outputs (checked before any work), the style files (checked: one line
    here, not from every worker after Ray starts) and a ``--timeline`` replay over them."""
    inputs, styles, replay = plan_job(cfg, job)
    if job.output and Path(job.output).suffix.lower() == ".avi":
        raise UserError(f"--cluster writes MP4, MOV or MKV files (segments are joined by their timestamps): {job.output}")
    # Absolute paths: the workers of a cluster do not run in this folder.
    items = [_Input(src.absolute(), dst.absolute()) for src, dst in output_pairs(job, inputs, styles)]
    return items, [Path(s.path).absolute() for s in styles], replay


def work_dir_for(cfg: Config, job: VideoJob) -> Path:
    if cfg.cluster.work_dir:
        return Path(cfg.cluster.work_dir).absolute()
    base = Path(job.out_dir) if job.out_dir else Path(job.output).parent  # type: ignore[arg-type]
    return base.absolute() / ".realtime-work"


class ClusterRun:
    """One batch on a cluster: plan, schedule, retry, join, publish (see the module docstring)."""

    def __init__(self, cfg: Config, job: VideoJob, on_dispatch: Optional[Callable[["ClusterRun", Any, _Task], None]] = None) -> None:
        self.cfg, self.job = cfg, job
        self.on_dispatch = on_dispatch  # tests: called as each unit is handed to a worker
        self.retried = 0
        self.style_files: list[Path] = []
        self._items: list[_Input] = []
        self.pool = WorkerPool(cfg, job)

    @property
    def _inflight(self) -> dict[Any, tuple[Any, _Task]]:
        return self.pool.inflight

    # -- planning ------------------------------------------------------------------------------------
    def plan(self) -> tuple[list[_Input], deque[_Task]]:
        cfg, job = self.cfg, self.job
        items, style_files, replay = _plan(cfg, job)
        self.style_files, self._items, self.pool.replay = style_files, items, replay
        # A replay's stability changes over the file: the warm-up is long enough for its highest.
        warmup = warmup_frames(max(cfg.video.stability, *replay.stabilities) if replay is not None else cfg.video.stability)
        settings = settings_of(cfg, job, style_files, warmup, replay)
        work = work_dir_for(cfg, job)
        tasks: deque[_Task] = deque()
        for it in items:
            try:
                if it.dst.resolve() == it.src.resolve():
                    raise UserError(f"output {it.dst} would overwrite the input")
                if not it.src.is_file():
                    raise UserError(f"video not found: {it.src}" if not it.src.exists() else f"not a file: {it.src}")
                m = it.manifest = Manifest.open(work, it.src, it.dst, settings)
                if m.output_current():
                    it.status = "skipped"
                    log.info("%s: already done (%s)", it.src, it.dst)
                    continue
                check_output_file(it.dst, job.overwrite)
                if not m.units:
                    m.units = plan_units(probe(it.src), cfg.cluster.segment_s, warmup, job.start, job.end)
                    m.save()
                todo = [u for u in m.units if not m.is_done(u)]
                if len(todo) < len(m.units):
                    log.info("%s: resuming, %d of %d units already done", it.src, len(m.units) - len(todo), len(m.units))
                it.units_left = len(todo)
                tasks.extend(_Task(it, u) for u in todo)
                if not todo:
                    self._finish(it)
            except UserError as exc:
                self._fail(it, str(exc))
            except OSError as exc:  # unreadable input, a work folder we cannot write
                self._fail(it, f"{exc.strerror or exc}: {exc.filename or it.src}")
        return items, tasks

    # -- the run -------------------------------------------------------------------------------------
    def execute(self) -> ClusterResult:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        t0 = time.perf_counter()
        require_ray()
        items, tasks = self.plan()
        if not tasks:
            return ClusterResult(items, sum(i.frames for i in items), time.perf_counter() - t0, 0, 0, [])
        pool = self.pool
        pool.connect()
        try:
            pool.open(len(tasks), self.style_files)
            log.info("cluster: %d workers (%s each) for %d units of %d files", pool.n,
                     ", ".join(f"{k.removeprefix('num_')}={v:g}" for k, v in pool.per.items()), len(tasks), len(items))
            total = sum(t.unit.frames for t in tasks)
            show = self.job.progress and sys.stderr.isatty()
            # Log lines (a file done, a worker lost) print above the bar instead of through it.
            quiet_bar = logging_redirect_tqdm([logging.getLogger("realtime")]) if show else contextlib.nullcontext()
            with quiet_bar, tqdm(total=total, unit="frame", desc="cluster", disable=not show, file=sys.stderr) as bar:
                while tasks or pool.inflight:
                    if not self._step(pool, tasks, bar, total):
                        break
            frames = sum(i.frames for i in items)
            return ClusterResult(items, frames, time.perf_counter() - t0, pool.n, self.retried, pool.load_s)
        finally:
            self.shutdown()

    def _step(self, pool: WorkerPool, tasks: deque[_Task], bar: Any, total: int) -> bool:
        """One turn of the scheduler: admit loaded workers, hand out units, collect finished ones.
        False when nothing is left to wait for."""
        if any(t.item.status == "failed" for t in tasks):  # a failed input's other units are not run
            kept = [t for t in tasks if t.item.status != "failed"]
            tasks.clear()
            tasks.extend(kept)
        pool.admit(bool(tasks))
        while tasks and pool.idle:
            task = tasks.popleft()
            if task.item.status == "failed":
                continue
            actor = pool.idle.popleft()
            m = task.item.manifest
            ref = actor.run.remote(str(task.item.src), str(m.unit_path(task.unit)), task.unit.span)  # type: ignore[union-attr]
            pool.inflight[ref] = (actor, task)
            if self.on_dispatch:
                self.on_dispatch(self, actor, task)
        if not tasks:  # nothing left to hand out: free the cluster for other work
            pool.release_waiting()
        if not pool.inflight:
            if not pool.starting:
                return False
            pool.check_starting()
        for ref, actor, task in pool.finished(bar, total):
            if self._collect(ref, task, tasks):
                pool.idle.append(actor)
            else:
                pool.drop(actor)
                if tasks:
                    pool.start_worker()
        return True

    def _collect(self, ref: Any, task: _Task, tasks: deque[_Task]) -> bool:
        """Take one finished unit; False when its worker is gone (the unit is queued again)."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        it, unit = task.item, task.unit
        try:
            res = ray.get(ref)
        except RayTaskError as exc:  # the unit's own error (a damaged file): the worker is fine
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            if isinstance(cause, MediaError) and unit.span is not None and "no video frames decoded" in str(cause):
                # A segment that decodes nothing: the file is damaged from there on; the output ends there.
                log.warning("%s %s: no frame decoded: the input is damaged there", it.src.name, unit.name)
                res = VideoResult(truncated=f"{unit.name}: no frame decoded")
            else:
                msg = str(cause) if isinstance(cause, UserError) else f"{type(cause).__name__}: {cause}"
                self._fail(it, msg)
                return True
        except RayError as exc:  # the worker died: its process, its machine, out of memory
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if it.status == "failed":
                pass
            elif task.attempt < self.cfg.cluster.retries:
                self.retried += 1
                log.warning("%s %s: worker lost (%s); retrying on another worker", it.src.name, unit.name, reason)
                tasks.appendleft(_Task(it, unit, task.attempt + 1))
            else:
                self._fail(it, f"{unit.name}: worker lost {task.attempt + 1} times ({reason})")
            return False
        if it.status == "failed":
            return True
        short = res.frames < unit.frames
        if res.truncated:
            log.warning("%s: %s", it.src, res.truncated)
        elif short:
            log.warning("%s %s: decoded %d of %d frames: the input is damaged there", it.src.name, unit.name, res.frames, unit.frames)
        m = it.manifest
        assert m is not None
        if res.frames and not m.unit_path(unit).is_file():
            self._fail(it, f"{unit.name}: the worker's file is not here ({m.unit_path(unit)}): "
                           "the work folder must be on storage every machine shares")
            return True
        try:
            m.mark_done(unit, res.frames, res.first_pts, short, res.audio_mode)
            it.units_left -= 1
            if it.units_left == 0:
                self._finish(it)
        except UserError as exc:
            self._fail(it, str(exc))
        except OSError as exc:  # a full or read-only disk under the work folder or the output
            self._fail(it, f"cannot write {exc.filename or m.folder}: {exc.strerror or exc}")
        return True

    def _finish(self, it: _Input) -> None:
        """All units done: publish the whole-file unit, or join the segments, then tidy up.

        Like the one-process path, a file damaged part-way ends where it stops decoding: segments
        after a short one are left out (the output never jumps over a hole)."""
        m = it.manifest
        assert m is not None
        units = m.units
        if units[0].span is None:
            _move_into(m.unit_path(units[0]), it.dst, self.job.overwrite)
            it.frames = int(m.done[units[0].name]["frames"])
        else:
            kept = []
            for u in units:
                if int(m.done[u.name]["frames"]):
                    kept.append(u)
                if m.done[u.name].get("short"):
                    break
            if len(kept) < len(units):
                log.warning("%s: stylized up to the damage: %d of %d segments kept", it.src, len(kept), len(units))
            if not kept:
                raise UserError(f"{it.src}: no video frames decoded")
            parts = [(m.unit_path(u), int(m.done[u.name]["first_pts"])) for u in kept]
            it.audio = join_segments(it.src, parts, it.dst, origin=units[0].span.origin, start=self.job.start,  # type: ignore[union-attr]
                                     end=self.job.end, audio=self.job.audio, overwrite=self.job.overwrite)
            it.frames = sum(int(m.done[u.name]["frames"]) for u in kept)
        it.audio = it.audio or m.done[units[0].name].get("audio", "")
        m.mark_published()
        it.status = "done"
        log.info("%s -> %s: %d frames in %d unit(s), audio %s", it.src, it.dst, it.frames, len(units), it.audio or "none")

    def _fail(self, it: _Input, msg: str) -> None:
        if it.status != "failed":
            it.status, it.error = "failed", msg
            log.error("failed: %s: %s", it.src, msg)

    def shutdown(self) -> None:
        """Kill the workers (Ctrl-C or the end), remove the temp files of the units they were
        writing, and leave Ray if this run started it."""
        if self.pool.stop_workers():
            time.sleep(0.5)  # ray.kill does not wait: let the killed workers go before tidying after them
        for it in self._items:  # temp files of units whose worker was killed (now, or lost earlier)
            m = it.manifest
            if m is not None and m.folder.is_dir():
                for part in m.folder.glob(".seg-*.part*"):
                    part.unlink(missing_ok=True)
        self.pool.leave()


def _move_into(done: Path, dst: Path, overwrite: bool) -> None:
    """Publish a finished unit file as ``dst``: a rename on one file system, else a copy to a temp
    file beside ``dst`` first (a work folder on other storage), so ``dst`` still appears whole."""
    if done.stat().st_dev != dst.parent.stat().st_dev:
        tmp = temp_path_for(dst)
        try:
            shutil.copyfile(done, tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {dst}: {exc.strerror or exc}") from None
        except BaseException:  # Ctrl-C mid-copy: no partial file beside the outputs
            tmp.unlink(missing_ok=True)
            raise
        publish(tmp, dst, overwrite)
        done.unlink(missing_ok=True)
    else:
        publish(done, dst, overwrite)


def run_cluster(cfg: Config, job: VideoJob) -> int:
    """The ``--cluster`` path of ``stylize video``: exit status 2 when an input failed."""
    if cfg.video.encoder != "x264":  # the pool encodes every segment with x264 (see WorkerPool.start_worker)
        log.warning("--cluster encodes with x264: its segments are joined as they are, so every machine must encode alike")
    res = ClusterRun(cfg, job).execute()
    print_summary(res)
    return 2 if res.failed else 0


def print_summary(res: ClusterResult) -> None:
    fps = res.frames / res.seconds if res.seconds > 0 else 0.0
    log.info("summary: %d of %d videos done (%d skipped, %d failed), %d frames in %.1f s (%.1f frames/s) on %d workers%s",
             sum(i.status in ("done", "skipped") for i in res.inputs), len(res.inputs),
             sum(i.status == "skipped" for i in res.inputs), len(res.failed), res.frames, res.seconds, fps,
             res.workers, f", {res.retried} units retried" if res.retried else "")
    width = max((len(i.src.name) for i in res.inputs), default=5)
    for i in res.inputs:
        detail = i.error if i.status == "failed" else (f"{i.frames} frames -> {i.dst}" if i.status == "done" else str(i.dst))
        log.info("  %-7s %-*s  %s", i.status, width, i.src.name, detail)
