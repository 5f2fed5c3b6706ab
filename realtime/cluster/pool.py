"""The cluster's workers: connect to Ray, size the pool, start, admit, hand back and kill actors.

Why apart from the scheduler (:mod:`.runner`): what a worker *is* on Ray (its resources, its
start-up that may fail on a machine without model files, its death with its machine) is one
concern; which unit goes where, retries and publishing are another.  Ray is imported only here
and in the runner, and only for ``--cluster``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any, Optional

from ..config import Config
from ..effects.crossfade import Replay
from ..errors import UserError
from ..jobs.video import VideoJob
from ..pipeline.video import VideoOptions

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0  # no worker started and nothing running for this long: the cluster cannot hold one

# Passed on to the workers: where the model files and caches are (a local cluster inherits the
# environment anyway; a remote one gets them through Ray's runtime environment).
FORWARDED_ENV = ("REALTIME_MODEL_DIR", "REALTIME_CACHE_DIR", "XDG_CACHE_HOME")


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--cluster needs Ray: pip install 'realtime[cluster]' (or the lock file)") from None
    return ray



def segment_options(opts: VideoOptions) -> VideoOptions:
    """What every worker encodes with: segments are joined by copying their packets under the first
    one's stream header, so all machines must encode alike, and a worker without NVENC would fall
    back to x264: x264 everywhere."""
    return dataclasses.replace(opts, encoder="x264") if opts.encoder != "x264" else opts

class WorkerPool:
    """Ray actors (:class:`~.worker.UnitWorker`) in three states: ``starting`` (loading the
    engine), ``idle``, and busy in ``inflight`` (result ref -> (actor, task))."""

    def __init__(self, cfg: Config, job: VideoJob) -> None:
        self.cfg, self.job = cfg, job
        self.actors: list[Any] = []
        self.starting: dict[Any, Any] = {}  # info() ref -> a worker still loading
        self.idle: deque[Any] = deque()
        self.inflight: dict[Any, tuple[Any, Any]] = {}
        self.load_s: list[float] = []
        self.n, self.per = 0, {}
        self.style_files: list[Path] = []
        self.replay: Optional[Replay] = None  # a --timeline replay (codes in style_files' order)
        self._progress: Any = None
        self._lost_loading = 0
        self._load_failure = ""
        self._last_news = time.monotonic()
        self._started_ray = False
        self.engines: dict[str, str] = {}  # what each kind of worker runs (worker.engine_words) -> a node running it
        self.pids: dict[int, int] = {}  # id(actor) -> its process id, once loaded (tests tell its machine by it)

    # -- Ray ---------------------------------------------------------------------------------------
    def connect(self) -> None:
        ray = require_ray()

        if ray.is_initialized():
            return
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        address = self.cfg.cluster.address
        # Workers' own output (TensorFlow's start-up lines) only with -vv: their errors come back as results.
        kwargs: dict[str, Any] = {"include_dashboard": False, "runtime_env": {"env_vars": env} if env else None,
                                  "logging_level": logging.ERROR, "log_to_driver": log.isEnabledFor(logging.DEBUG)}
        try:
            with warnings.catch_warnings():  # Ray Client's timeout warning says what the error line says
                warnings.simplefilter("ignore")
                ray.init(address=address or None, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"cannot reach the Ray cluster at {address or 'this machine'}: {str(exc).splitlines()[0]}") from None
        self._started_ray = True

    def open(self, units: int, style_files: list[Path]) -> None:
        """Size the pool for ``units`` and start its workers (and the progress counter)."""
        import ray

        from .worker import Progress

        self.style_files = style_files
        self.n, self.per = self._size(units)
        self._progress = ray.remote(num_cpus=0)(Progress).remote()
        for _ in range(self.n):
            self.start_worker()

    def _size(self, units: int) -> tuple[int, dict[str, float]]:
        import ray

        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        cpus = self.cfg.cluster.worker_cpus
        by_cpu = max(1, int(res.get("CPU", 1) // cpus))
        if gpus and self.cfg.engine.device != "cpu":
            # The network runs on the GPU; the worker's CPUs decode, convert and encode (x264 at
            # 720p needs a few cores to keep up with a GPU).
            per = {"num_gpus": 1, "num_cpus": cpus}
            n = min(gpus, by_cpu)
        else:
            per = {"num_cpus": cpus}
            n = by_cpu
        if self.cfg.cluster.workers:
            n = self.cfg.cluster.workers
        return max(1, min(n, units)), per

    def start_worker(self) -> None:
        import ray

        from .worker import UnitWorker

        cfg, per = self.cfg, self.per
        if "num_gpus" not in per:  # CPU workers: the network and x264 share the worker's cores
            cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, threads=int(per["num_cpus"])))
        opts = VideoOptions.from_config(cfg, switch_every=self.job.switch_every, audio=self.job.audio,
                                        start=self.job.start, end=self.job.end, replay=self.replay,
                                        encoder_threads=int(per["num_cpus"]) if "num_gpus" in per else max(1, int(per["num_cpus"]) // 2))
        opts = segment_options(opts)
        styles = [str(p) for p in self.style_files]
        actor = ray.remote(UnitWorker).options(**per, max_restarts=0).remote(cfg, styles, opts, self._progress)
        self.actors.append(actor)
        self.starting[actor.info.remote()] = actor

    # -- the states --------------------------------------------------------------------------------
    def admit(self, more_work: bool) -> None:
        """Workers that finished loading join the idle ones; one lost while loading is replaced
        (while there is work), and when none at all can start the run ends in one line."""
        import ray

        if not self.starting:
            return
        ready, _ = ray.wait(list(self.starting), num_returns=len(self.starting), timeout=0)
        for ref in ready:
            actor = self.starting.pop(ref)
            loaded = self._ready(ref, actor)
            if loaded is None:
                self.drop(actor)
                self._lost_loading += 1
                if self._lost_loading > self.n * (self.cfg.cluster.retries + 1) and not self.load_s:
                    raise UserError(f"no cluster worker could start: {self._load_failure}")
                if more_work:
                    self.start_worker()
                continue
            self.load_s.append(loaded)
            self.idle.append(actor)
            self._last_news = time.monotonic()

    def _ready(self, ref: Any, actor: Any) -> Optional[float]:
        """A worker's start finished: its load time; None when it died while loading (its machine
        went away: another is started); a one-line error ending the run when it cannot work at all
        (no model files on that machine, a style it cannot read)."""
        import ray
        from ray.exceptions import RayError

        try:
            info = ray.get(ref)
        except RayError as exc:
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            self._load_failure = lines[-1].strip() if lines else type(exc).__name__
            log.warning("a cluster worker was lost while loading: %s", self._load_failure)
            return None
        if info["error"]:
            raise UserError(f"a cluster worker on {info['node']} cannot start: {info['error']}")
        self.note_engine(info.get("engine", ""), info["node"])
        self.pids[id(actor)] = int(info["pid"])
        return float(info["load_s"])

    def note_engine(self, engine: str, node: str) -> None:
        """Warn once a worker runs another engine than the others (``auto`` chose per machine)."""
        if engine and engine not in self.engines:
            if self.engines:
                first, where = next(iter(self.engines.items()))
                log.warning("cluster workers differ: %s on %s, %s on %s; segments made by each may differ where "
                            "they meet: give --backend and --precision to run one everywhere", engine, node, first, where)
            self.engines[engine] = node

    def release_waiting(self) -> None:
        """Nothing left to hand out: free the cluster's idle and loading workers for other work."""
        for actor in list(self.idle) + list(self.starting.values()):
            self.drop(actor)
        self.idle.clear()
        self.starting.clear()

    def check_starting(self) -> None:
        """Nothing runs and workers are still loading: fail once the cluster plainly cannot hold one."""
        if time.monotonic() - self._last_news > START_TIMEOUT_S:
            need = "GPU" if "num_gpus" in self.per else f"{self.per['num_cpus']:g} CPUs"
            raise UserError(f"no cluster worker could start in {START_TIMEOUT_S:.0f} s: the cluster has no free {need} for one")

    def finished(self, bar: Any, total: int) -> list[tuple[Any, Any, Any]]:
        """Wait up to half a second; (ref, actor, task) of the units that ended.  Moves the bar."""
        import ray
        from ray.exceptions import RayError

        ready, _ = ray.wait(list(self.inflight) + list(self.starting), num_returns=1, timeout=0.5)
        try:
            bar.n = min(total, ray.get(self._progress.total.remote(), timeout=5))
            bar.refresh()
        except RayError:  # the progress counter went with its machine: the bar pauses
            pass
        done = []
        for ref in ready:
            if ref in self.inflight:
                actor, task = self.inflight.pop(ref)
                self._last_news = time.monotonic()
                done.append((ref, actor, task))
        return done

    # -- the end -----------------------------------------------------------------------------------
    def drop(self, actor: Any) -> None:
        import ray

        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        if actor in self.actors:
            self.actors.remove(actor)

    def stop_workers(self) -> bool:
        """Kill every worker and the progress counter; True when units were still running."""
        busy = bool(self.inflight)
        for actor in list(self.actors) + ([self._progress] if self._progress is not None else []):
            self.drop(actor)
        self._progress = None
        self.inflight.clear()
        return busy

    def leave(self) -> None:
        """Shut Ray down if this run started it."""
        import ray

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
