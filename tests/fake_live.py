"""``stylize`` in a child process with a fake engine: no model files, and a start-up as slow as a
test wants.  For window tests (Xvfb), where the real command must run but the network need not.

    python tests/fake_live.py [--load-s S] [--gate FILE] [--delay-s D] [--calls FILE] -- live ARGS...

``--load-s``: the engine takes this long to open; ``--gate``: ... and waits until FILE exists;
``--delay-s``: each network call takes this long; ``--calls``: FILE gets the number of network calls
so far (call 1 is the warm-up), so a test can tell when the first stylized frame was made.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# This checkout's ``realtime`` (a script's folder is on the path, not the current one) and the fakes.
sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from fakes import FakeStylizer, fake_engine  # noqa: E402


class CountingStylizer(FakeStylizer):
    def __init__(self, calls_file: str | None, **kw) -> None:
        super().__init__(**kw)
        self.calls_file = Path(calls_file) if calls_file else None

    def transfer(self, images, codes):
        out = super().transfer(images, codes)
        if self.calls_file is not None:
            self.calls_file.write_text(str(self.calls))
        return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--load-s", type=float, default=0.0)
    ap.add_argument("--gate")
    ap.add_argument("--delay-s", type=float, default=0.0)
    ap.add_argument("--calls")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    opts = ap.parse_args(argv[:split])
    import realtime.model.engine as engine_module

    codes = tempfile.mkdtemp(prefix="fake-live-")

    def open_engine(cfg, fixed_size=True):
        deadline = time.monotonic() + opts.load_s
        while time.monotonic() < deadline or (opts.gate and not Path(opts.gate).exists()):
            time.sleep(0.05)
        return fake_engine(Path(codes), CountingStylizer(opts.calls, delay_s=opts.delay_s))

    engine_module.open_engine = open_engine
    sys.argv = [sys.argv[0], *argv[split + 1:]]
    from realtime.cli import entry

    return entry()


if __name__ == "__main__":
    raise SystemExit(main())
