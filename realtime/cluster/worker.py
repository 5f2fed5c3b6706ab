"""What runs on the cluster's machines: a worker that holds one loaded engine and stylizes units.

Why an actor (a long-lived worker process) rather than a task per unit: loading the network and
computing style codes takes seconds, so each worker pays it once and then takes unit after unit.
Nothing here imports Ray: :mod:`realtime.cluster.runner` wraps these classes with ``ray.remote``,
so this module can be tested, and imported, without Ray.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Optional

from ..config import Config
from ..errors import UserError
from ..pipeline.video import Span, VideoOptions, VideoResult, VideoStylizer

log = logging.getLogger(__name__)


class Progress:
    """Frames encoded across the cluster (a tiny actor the workers report to)."""

    def __init__(self) -> None:
        self.frames = 0

    def add(self, n: int) -> None:
        self.frames += n

    def total(self) -> int:
        return self.frames


def engine_words(stylizer: Any) -> str:
    """What decides a worker's pixels besides the job: backend, precision and style network.

    Why the driver compares them: ``auto`` picks per machine (openvino on a CPU, bf16 where it has
    AMX; tf on a GPU), and runtimes differ slightly (OpenVINO's style codes are about 1% off TF
    Lite's), so a cluster of mixed machines would join segments that differ where they meet."""
    return f"{stylizer.name}, {getattr(stylizer, 'precision', '?')}, style network {stylizer.style_model_id}"


class UnitWorker:
    """One engine, its style codes and the video options; :meth:`run` stylizes one unit."""

    def __init__(self, cfg: Config, styles: list[str], opts: VideoOptions, progress: Any = None) -> None:
        """``styles``: the style image files, absolute (the driver resolved the job's --style values)."""
        from ..model.engine import open_engine
        from ..model.styles import find_style_images

        t = time.perf_counter()
        self.progress = progress
        self.error: Optional[str] = None
        self.video: Optional[VideoStylizer] = None
        self.engine = ""
        try:
            engine = open_engine(cfg)
            self.engine = engine_words(engine.stylizer)
            codes = [engine.bank.code_for(s) for path in styles for s in find_style_images(path)]
            self.video = VideoStylizer(engine, codes, opts)
        except UserError as exc:  # missing model files, a style this machine cannot read: said once, by the driver
            self.error = str(exc)
        self.load_s = time.perf_counter() - t
        log.info("worker %d ready in %.1f s", os.getpid(), self.load_s)

    def info(self) -> dict[str, Any]:
        """Where this worker runs, what its start cost, and why it cannot work (None when it can)."""
        return {"pid": os.getpid(), "node": os.uname().nodename, "load_s": self.load_s, "error": self.error,
                "engine": self.engine}

    def run(self, src: str, dst: str, span: Optional[Span]) -> VideoResult:
        """Stylize ``src`` (all of it, with sound, or ``span`` of it, video only) into ``dst``."""
        if self.video is None:
            raise UserError(self.error or "worker not ready")
        pending = [0]
        last = [time.monotonic()]
        lock = threading.Lock()

        def report(n: int) -> None:
            with lock:
                pending[0] += n
                if self.progress is not None and time.monotonic() - last[0] >= 0.5:
                    self.progress.add.remote(pending[0])
                    pending[0], last[0] = 0, time.monotonic()

        result = self.video.run(Path(src), Path(dst), report, overwrite=True, span=span)
        if self.progress is not None and pending[0]:
            self.progress.add.remote(pending[0])
        return result
