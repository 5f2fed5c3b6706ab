"""Issue 28, the second camera: ``--style-source SRC`` is read on its own thread, take_style takes its
picture (not the show's), the page shows it small, and a missing or lost one never ends the show.

The show's own source is the moving test pattern (96x64); the style source is a clip of one flat
colour at another size, so a saved picture says which source it came from."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest
import requests
from fakes import FakeCamera, FakeStylizer, fake_codes, fake_engine
from liveshow import AUTH, TOKEN, Show
from test_take import make_show as take_show
from test_take import run_with

from realtime.config import LiveConfig, load_config
from realtime.core.controller import Controller
from realtime.errors import ConfigError, MediaError
from realtime.io.sources import BackgroundSource, FileSource, SupervisedSource, SyntheticSource, open_source
from realtime.live.app import LiveApp
from realtime.live.pipeline import LivePipeline
from realtime.live.run import open_style_source
from realtime.live.take import StyleTaker, TakeError
from realtime.pipeline.stage import StylizeStage

COLOUR = (40, 200, 160)  # BGR: nothing like the pattern's mean
SIZE = (40, 32)


def flat_clip(path, colour=COLOUR, size=SIZE, frames=8, fps=30):
    """A short H.264 clip of one flat colour (4:4:4, near-lossless: the colour survives)."""
    import av

    frame = np.full((size[1], size[0], 3), colour, np.uint8)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv444p"
        vs.codec_context.time_base = Fraction(1, fps)
        vs.options = {"qp": "0"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(frame, format="bgr24").reformat(format="yuv444p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def style_source_of(path, **kw) -> BackgroundSource:
    """As ``stylize live --style-source PATH`` makes it (a file loops)."""
    return BackgroundSource(open_source(str(path), loop=True, keep_pace=True, reconnect=True), label=str(path), **kw).start()


def make_show(tmp_path, style_source, taken_max=2):
    return take_show(tmp_path, taken_max, style_source)


def is_flat_colour(img, colour=COLOUR, size=SIZE, tol=12.0):
    return (img.shape[1], img.shape[0]) == size and np.abs(img.reshape(-1, 3).mean(0) - colour).max() < tol


def test_take_style_takes_the_style_sources_picture_not_the_shows(tmp_path):
    src = style_source_of(flat_clip(tmp_path / "postcard.mp4"))
    app, p = make_show(tmp_path, src, taken_max=2)

    def remote(c):
        wait_for(lambda: src.connected)
        takes = []
        for _ in range(3):
            assert "style source" in c.take_style().result(timeout=10)
            takes.append(app.taker.last.result(timeout=20))
        entry = c.styles[takes[-1].index]
        wait_for(lambda: np.allclose(p.fader._to, entry.code), timeout=5)  # the pipeline crossfades to it
        return takes, entry, c.status()

    takes, entry, status = run_with(app, remote)
    for t in takes:
        saved = cv2.imread(str(t.path))
        assert is_flat_colour(saved), (saved.shape, saved.reshape(-1, 3).mean(0))  # the postcard, not the 96x64 pattern
        assert t.path.parent == tmp_path / "styles" / "taken"
    assert entry.code is not None and entry.code.shape == fake_codes(1)[0].shape
    names = app.controller.style_names
    assert len(names) == 3 + 2 and takes[0].name not in names and takes[0].path.exists()  # taken_max kept
    assert app.controller.state.style_index == takes[-1].index
    assert status["style_source"].startswith("file ") and status["style_source_connected"] is True
    assert not src._thread.is_alive() and not src.connected  # closed with the show
    assert src.cpu_s < 2.0  # a few frames a second of a small clip: a small cost


def test_the_page_shows_the_style_source_and_takes_from_it(tmp_path):
    src = style_source_of(flat_clip(tmp_path / "postcard.mp4"))
    bank = fake_engine(tmp_path / "codes").bank
    show = Show(tmp_path, style_source=src)
    show.app.taker = StyleTaker(show.controller, tmp_path / "taken", bank.code_for, 4)
    show.controller.bind_main("take_style", show.app.take_style)
    try:
        wait_for(lambda: src.connected)
        assert requests.get(f"{show.url}/api/style-source.jpg", timeout=10).status_code == 401
        r = requests.get(f"{show.url}/api/style-source.jpg", headers=AUTH, timeout=10)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
        assert is_flat_colour(cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR))
        big = requests.get(f"{show.url}/api/style-source.jpg?width=64", headers=AUTH, timeout=10)
        assert big.status_code == 200
        assert requests.get(f"{show.url}/api/style-source.jpg?width=9", headers=AUTH, timeout=10).status_code == 400
        status = requests.get(f"{show.url}/api/status", headers=AUTH, timeout=10).json()
        assert status["style_source_connected"] is True and status["style_source"]
        page = requests.get(show.url + "/", headers=AUTH, timeout=10).text
        assert 'id="style-source"' in page and "/api/style-source.jpg" in page
        r = requests.post(f"{show.url}/api/actions/take_style", headers=AUTH, timeout=20)
        assert r.status_code == 200 and "style source" in r.json()["result"], r.text
        taken = show.app.taker.last.result(timeout=20)
        assert is_flat_colour(cv2.imread(str(taken.path)))
    finally:
        show.stop()
    assert not src._thread.is_alive()


def test_a_show_without_a_style_source_says_so(tmp_path):
    show = Show(tmp_path)
    try:
        r = requests.get(f"{show.url}/api/style-source.jpg", headers=AUTH, timeout=10)
        assert r.status_code == 404 and "--style-source" in r.json()["error"]
        status = requests.get(f"{show.url}/api/status", headers=AUTH, timeout=10).json()
        assert status["style_source"] is None and status["style_source_connected"] is False
    finally:
        show.stop()


def test_a_missing_style_source_is_one_line_and_the_show_goes_on(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="realtime")
    src = BackgroundSource(FileSource(tmp_path / "nowhere.mp4", loop=True), label="nowhere.mp4", retry_s=0.05, retry_max_s=0.1).start()
    bank = fake_engine(tmp_path / "codes").bank
    show = Show(tmp_path, style_source=src)
    show.app.taker = StyleTaker(show.controller, tmp_path / "taken", bank.code_for, 4)
    show.controller.bind_main("take_style", show.app.take_style)
    try:
        time.sleep(0.5)  # several tries to open it
        shown = show.app.stats.shown
        r = requests.post(f"{show.url}/api/actions/take_style", headers=AUTH, timeout=20)
        assert r.status_code == 409 and "not connected" in r.json()["error"] and "nowhere.mp4" in r.json()["error"], r.text
        r = requests.get(f"{show.url}/api/style-source.jpg", headers=AUTH, timeout=10)
        card = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert r.status_code == 200 and card.shape[1] == 320 and np.median(card) < 40  # the "not connected" card
        assert requests.get(f"{show.url}/api/status", headers=AUTH, timeout=10).json()["style_source_connected"] is False
        wait_for(lambda: show.app.stats.shown > shown + 5)  # the show goes on
        assert len(show.controller.styles) == 2 and not (tmp_path / "taken").exists()
    finally:
        show.stop()
    lines = [r for r in caplog.records if "not connected" in r.getMessage() and r.name == "realtime.io.sources.background"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]
    assert not src._thread.is_alive()


def test_a_style_camera_unplugged_and_plugged_back(caplog):
    caplog.set_level(logging.INFO, logger="realtime")
    plug = threading.Event()
    plug.set()
    camera = SupervisedSource(lambda: FakeCamera(plug, 48, 32), stall_s=0.3, backoff_s=0.05, reconnect_max_s=0.1, name="style source 7")
    src = BackgroundSource(camera, label="7").start()
    try:
        wait_for(lambda: src.connected)
        assert src.latest().shape == (32, 48, 3)
        plug.clear()
        wait_for(lambda: not src.connected)
        assert src.latest() is None and src.why()
        plug.set()
        wait_for(lambda: src.connected)
        assert src.latest() is not None
    finally:
        src.close()
    assert not src._thread.is_alive() and not src.connected
    lost = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost) == 1 and "style source 7" in lost[0], lost


def test_the_style_source_from_the_config_and_its_errors(tmp_path, caplog):
    assert open_style_source(load_config(None, {})) is None
    src = open_style_source(load_config(None, {"live.style_source": "synthetic:64x48", "live.source": "synthetic"}))
    assert isinstance(src, BackgroundSource) and src.describe() == "synthetic:64x48"
    src.close()  # never started: nothing to join
    camera = open_style_source(load_config(None, {"live.style_source": "3"}))
    assert isinstance(camera.source, SupervisedSource) and camera.source.name == "style source 3"
    with pytest.raises(ConfigError, match="the show.s own camera"):
        open_style_source(load_config(None, {"live.style_source": "0", "live.source": "0"}))
    with pytest.raises(MediaError, match="WxH"):
        open_style_source(load_config(None, {"live.style_source": "synthetic:big"}))
    caplog.set_level(logging.WARNING, logger="realtime")
    missing = open_style_source(load_config(None, {"live.style_source": "/no/such/clip.mp4"}))  # a share not mounted yet
    assert missing is not None and "--style-source /no/such/clip.mp4: no such file (yet)" in caplog.text


def test_stylize_live_style_source_end_to_end(tmp_path):
    """The real command (fake network): --style-source CLIP, a take from the page keeps the clip's
    picture under <upload_dir>/taken, the page's picture is the clip's."""
    from conftest import ROOT
    from test_web import free_port

    clip = flat_clip(tmp_path / "postcard.mp4")
    port, data = free_port(), tmp_path / "data"
    env = {**os.environ, "REALTIME_WEB_TOKEN": TOKEN, "REALTIME_DATA_DIR": str(data), "REALTIME_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_live.py"), "--", "live", "--headless",
                             "--source", "synthetic:96x64", "--size", "32", "--style", "mosaic", "--fresh",
                             "--style-source", str(clip), "--web", f"127.0.0.1:{port}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("control page:"), proc.stderr.read() if proc.poll() is not None else ""
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{url}/api/status", headers=AUTH, timeout=10).json().get("style_source_connected"), 20)
        picture = requests.get(f"{url}/api/style-source.jpg", headers=AUTH, timeout=10).content
        assert is_flat_colour(cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR))
        r = requests.post(f"{url}/api/actions/take_style", headers=AUTH, timeout=20)
        assert r.status_code == 200, r.text
        wait_for(lambda: list((data / "styles" / "taken").glob("taken-*.jpg")), 20)
        requests.post(f"{url}/api/actions/quit", headers=AUTH, timeout=10)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "style source" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    [taken] = (data / "styles" / "taken").glob("taken-*.jpg")
    assert is_flat_colour(cv2.imread(str(taken)))


def test_a_take_while_the_style_source_is_not_connected_is_refused_in_words(tmp_path):
    src = BackgroundSource(SyntheticSource(48, 32), label="synthetic:48x32")  # not started: not connected
    app, _ = make_show(tmp_path, src)
    with pytest.raises(TakeError, match=r"the style source \(synthetic:48x32\) is not connected"):
        app.take_style()
    assert app.taker.last is None and len(app.controller.styles) == 3


def test_the_page_shows_the_style_sources_picture_only_when_there_is_one(tmp_path):
    """In a real browser: the small picture under "take style" is shown and reloaded with a style
    source, hidden and never asked for without one."""
    from test_browser import CHROMIUM, phone_page

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    src = style_source_of(flat_clip(tmp_path / "postcard.mp4"))
    seen = {}
    for name, style_source in (("with", src), ("without", None)):
        (tmp_path / name).mkdir()
        show = Show(tmp_path / name, style_source=style_source)
        requested: list[str] = []
        try:
            with phone_page(requested) as page:
                page.goto(f"{show.url}/?token={TOKEN}", wait_until="domcontentloaded")
                page.wait_for_selector("body[data-events='open']", timeout=15_000)
                page.wait_for_timeout(2600)
                seen[name] = page.evaluate("""() => { const i = document.getElementById('style-source');
                    return {hidden: i.hidden, width: i.naturalWidth, title: document.getElementById('take').title,
                            status: document.getElementById('status').textContent}; }""")
        finally:
            show.stop()
        seen[name]["loads"] = len([u for u in requested if "/api/style-source.jpg" in u])
    assert seen["with"]["hidden"] is False and seen["with"]["width"] == SIZE[0] and seen["with"]["loads"] >= 2, seen
    assert "style source" in seen["with"]["title"] and "style source" in seen["with"]["status"]
    assert seen["without"]["hidden"] is True and seen["without"]["loads"] == 0, seen
    assert "style source" not in seen["without"]["status"]


def test_the_style_camera_rests_while_the_show_is_closed(tmp_path):
    """Closing hours release the second camera with the first, and opening takes it up again."""
    import datetime as dt

    from realtime.live.show import OpeningHours
    from realtime.schedule import Schedule

    plug, opened = threading.Event(), []
    plug.set()

    class CountingCamera(FakeCamera):
        def open(self):
            opened.append(1)
            super().open()

    cams = []
    src = BackgroundSource(SupervisedSource(lambda: cams.append(CountingCamera(plug, 48, 32)) or cams[-1], stall_s=2), label="1").start()

    def camera_open():
        return any(cam._open for cam in cams)

    clock = {"now": dt.datetime(2026, 11, 24, 17, 58)}  # a Tuesday, just before closing
    c = Controller(["a", "b"])
    p = LivePipeline(SyntheticSource(96, 64, fps=60), StylizeStage(FakeStylizer(), 32), c, fake_codes(2), 0.0)
    hours = OpeningHours(c, Schedule.parse("tue-sun 10:00-18:00"), now=lambda: clock["now"])
    app = LiveApp(p, LiveConfig(headless=True), surfaces=[hours], style_source=src)
    log = {}

    def day():
        try:
            wait_for(lambda: app.stats.shown >= 5 and src.connected)
            clock["now"] = dt.datetime(2026, 11, 24, 18, 0)  # closing time
            wait_for(lambda: not src._thread.is_alive())  # closed: its thread ended, its camera released
            log["closed"] = (len(opened), src.connected, camera_open())
            clock["now"] = dt.datetime(2026, 11, 25, 10, 0)  # next morning
            wait_for(lambda: src.connected)
        finally:
            c.quit()

    t = threading.Thread(target=day, name="realtime-test-day")
    t.start()
    app.run()
    t.join(20)
    assert log["closed"] == (1, False, False) and len(opened) == 2 and app.closings == 1
    assert not src._thread.is_alive()


def test_a_style_camera_stuck_in_its_driver_comes_back_after_close_and_start(caplog):
    """close() gives up on a reader stuck in open() (one line, the show does not wait); start()
    again (the show reopening) is not lost: once the driver lets go, a reader runs and connects."""
    release = threading.Event()
    plug = threading.Event()
    plug.set()

    class Stuck(FakeCamera):
        def open(self) -> None:
            release.wait(10)
            super().open()

    src = BackgroundSource(Stuck(plug, 48, 32), label="stuck").start()
    t = time.monotonic()
    src.close(timeout=0.2)
    assert time.monotonic() - t < 1.0
    assert any("did not stop" in r.getMessage() for r in caplog.records)
    src.start()
    release.set()
    try:
        wait_for(lambda: src.connected)
        assert src.latest().shape == (32, 48, 3)
    finally:
        src.close()
    assert not src._thread.is_alive()
