"""Where the time goes: wall time per named step, summed over a run.

Why built in rather than a profiler run: the video job's threads overlap, so "slow" means one stage
holds the others up; per-step sums (decode, convert, resize, infer, encode, and the waits on the
queues between threads) next to each thread's CPU time show which one, on any machine, at a cost
of two clock reads per step.  Each thread keeps its own profile (no lock, nothing shared); a run
merges them at the end.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class Profile:
    """Seconds per step name; :meth:`per_frame_ms` turns them into a table."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds

    @classmethod
    def merged(cls, *profiles: "Profile") -> "Profile":
        """One table from several threads' profiles (each thread keeps its own while it runs)."""
        out = cls()
        for p in profiles:
            for k, v in p.seconds.items():
                out.seconds[k] += v
        return out

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        n = max(frames, 1)
        return {k: round(v * 1000 / n, 2) for k, v in self.seconds.items()}

    def summary(self, frames: int) -> str:
        return ", ".join(f"{k} {v:.1f}" for k, v in self.per_frame_ms(frames).items()) + " ms/frame"
