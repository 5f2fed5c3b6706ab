"""A headless show with the web server in front of it (fake stylizer, real uvicorn on 127.0.0.1),
shared by the web and browser tests; keys typed from the test reach the live loop like a window's."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from fakes import FakeStylizer, fake_codes

from realtime.config import LiveConfig
from realtime.core.controller import Controller
from realtime.core.styleset import StyleEntry, StyleSet
from realtime.pipeline.stage import StylizeStage
from realtime.io.images import read_image
from realtime.io.sources import SyntheticSource
from realtime.live.app import LiveApp
from realtime.live.pipeline import LivePipeline
from realtime.web.app import build_app
from realtime.web.library import StyleLibrary
from realtime.web.preview import MjpegPreview
from realtime.web.server import WebServer


class QueuedKeys:
    """Keys pressed from the test's thread, read by the live loop between frames (where a window's
    keys are read): the keymap path, origin "key"."""

    def __init__(self) -> None:
        self._keys: queue.Queue[int] = queue.Queue()

    def press(self, key: str | int) -> None:
        self._keys.put(ord(key) if isinstance(key, str) else key)

    def poll(self, wait_ms: int, shown: int) -> int:
        try:
            return self._keys.get(timeout=wait_ms / 1000.0) if wait_ms > 0 else self._keys.get_nowait()
        except queue.Empty:
            return -1


TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Show:
    """A headless show on a worker thread with the web server in front of it."""

    def __init__(self, tmp_path: Path, max_clients: int = 8, upload_bytes: int = 200_000, fps: float = 60.0,
                 keys: Optional[QueuedKeys] = None, style_source=None) -> None:
        """``style_source``: a started :class:`~realtime.io.sources.BackgroundSource` (--style-source)."""
        styles = tmp_path / "styles"
        styles.mkdir()
        paths = []
        for name, colour in (("red", (40, 40, 220)), ("blue", (220, 60, 30))):
            p = styles / f"{name}.png"
            cv2.imwrite(str(p), np.full((64, 64, 3), colour, np.uint8))
            paths.append(p)
        self.styles_dir = styles
        self.stylizer = FakeStylizer()
        codes = fake_codes(2)
        self.controller = Controller(StyleSet(StyleEntry(n, p, c) for n, p, c in zip(("red", "blue"), paths, codes)))
        self.pipeline = LivePipeline(SyntheticSource(96, 64, fps=fps), StylizeStage(self.stylizer, 32), self.controller,
                                     crossfade_s=0.0)
        self.preview = MjpegPreview(width=96, quality=70, max_fps=30, max_clients=max_clients)
        self.controller.add_status(self.preview.status)
        self.library = StyleLibrary(self.controller, styles, lambda s: self.stylizer.style_code(read_image(s.path)), upload_bytes)
        opts = LiveConfig(headless=True, record_dir=str(tmp_path / "rec"), snapshot_dir=str(tmp_path / "snaps"))
        self.keys = keys or QueuedKeys()
        self.app = LiveApp(self.pipeline, opts, keys=self.keys, outputs=[self.preview], style_source=style_source)
        self.server = WebServer("127.0.0.1", 0)
        self.web = build_app(self.controller, TOKEN, self.preview, self.library, style_source)
        self.server.start(self.web)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="realtime-test-show")
        self.thread.start()
        deadline = time.monotonic() + 10
        while self.app.stats.shown < 5 and time.monotonic() < deadline:
            time.sleep(0.01)

    def _run(self) -> None:
        try:
            self.app.run()
        except BaseException as exc:  # noqa: BLE001
            self.error.append(exc)

    def stop(self) -> None:
        self.controller.quit()
        self.thread.join(15)
        self.server.stop()
        assert not self.thread.is_alive() and not self.error, self.error
