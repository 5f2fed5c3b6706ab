"""NDI out (``--ndi NAME``) and in (``--source ndi:NAME``).

Everything but the runtime is tested with stand-ins (the name grammar, finding a source by name,
the pixel conversions, the output that never makes the show wait, the source's first frame and its
loss); the last tests do a real round trip through cyndilib's bundled NDI runtime on this machine
(discovery without multicast: an NDI config naming 127.0.0.1) and skip, saying why, where
cyndilib is not installed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import ROOT
from fakes import FakeStylizer, fake_codes

from realtime.io.ndi import (
    INSTALL_HINT, NdiError, bgr_to_bgrx, bgrx_to_bgr, find_source, load_cyndilib, match_source, stream_name,
    write_local_config,
)
from realtime.io.sinks import Outputs
from realtime.io.sinks.ndi import NdiOutput
from realtime.io.sources import NdiSource, SupervisedSource, open_source
from realtime.io.sources.ndi import parse_ndi_spec


def picture(w: int = 64, h: int = 48, shift: int = 0) -> np.ndarray:
    """Smooth gradients (what NDI's compression keeps close): B across, R down, G a constant."""
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (np.arange(w)[None, :] * 200 // w + shift) % 256
    img[..., 1] = 90
    img[..., 2] = np.arange(h)[:, None] * 200 // h
    return img


# -- the name grammar and finding a source ---------------------------------------------------------

def test_ndi_specs_parse_and_open_as_supervised_sources():
    assert parse_ndi_spec("ndi:stage") == "stage"
    assert parse_ndi_spec(" NDI:STUDIO (cam 1) ") == "STUDIO (cam 1)"
    assert parse_ndi_spec("/dev/video0") is None and parse_ndi_spec("rtsp://h/x") is None and parse_ndi_spec("ndi.mp4") is None
    with pytest.raises(NdiError, match="needs the NDI source's name"):
        parse_ndi_spec("ndi:")
    with pytest.raises(NdiError):
        open_source("ndi:  ")
    sup = open_source("ndi:stage", reconnect=True, ndi_find_s=7.0)
    assert isinstance(sup, SupervisedSource)
    first, retry = sup._factory(), sup._factory()
    assert (first.find_s, retry.find_s) == (7.0, 1.0)  # reconnect tries are short: the placeholder keeps coming
    plain = open_source("ndi:stage", ndi_find_s=2.5, stall_s=3.0)
    assert isinstance(plain, NdiSource) and (plain.name, plain.find_s, plain.lost_s) == ("stage", 2.5, 3.0)


def test_a_source_is_found_by_its_full_name_or_its_own_part():
    names = ["BOOTH (stage)", "BOOTH (Lights)", "VJ-PC (visuals)", "VJ-PC (stage)"]
    assert stream_name("VJ-PC (visuals)") == "visuals" and stream_name("plain") == "plain"
    assert match_source("VJ-PC (stage)", names) == "VJ-PC (stage)"
    assert match_source("visuals", names) == "VJ-PC (visuals)"
    assert match_source("lights", names) == "BOOTH (Lights)"  # case-insensitive
    assert match_source("nothing", names) is None
    with pytest.raises(NdiError, match="offered by 2 machines.*HOST \\(NAME\\)"):
        match_source("stage", names)


class FakeFinder:
    """Sources appear after ``appear_after`` waits; time is a fake clock moved by the waits."""

    def __init__(self, names, appear_after=0):
        self.names, self.appear_after, self.now, self.waits = names, appear_after, 0.0, 0

    def get_source_names(self):
        return list(self.names) if self.waits >= self.appear_after else []

    def wait_for_sources(self, timeout):
        self.waits += 1
        self.now += timeout

    def update_sources(self):
        return self.get_source_names()

    def get_source(self, name):
        return ("source", name)


def test_finding_waits_for_the_source_then_says_what_it_saw():
    f = FakeFinder(["HOST (cam)"], appear_after=3)
    assert find_source(f, "cam", 5.0, clock=lambda: f.now) == ("source", "HOST (cam)")
    f = FakeFinder(["HOST (cam)", "HOST (other)"])
    with pytest.raises(NdiError) as err:
        find_source(f, "stage", 2.0, clock=lambda: f.now)
    msg = str(err.value)
    assert "'stage' not found within 2 s" in msg and "HOST (cam), HOST (other)" in msg and "\n" not in msg
    assert 1.9 <= f.now <= 2.3  # it waited the timeout, not more
    f = FakeFinder([])
    with pytest.raises(NdiError, match="no NDI source was seen at all"):
        find_source(f, "stage", 0.5, clock=lambda: f.now)


# -- pixels -----------------------------------------------------------------------------------------

def test_bgr_to_bgrx_and_back_with_a_padded_stride():
    img = picture(10, 6)
    x = bgr_to_bgrx(img)
    assert x.shape == (6, 10, 4) and np.array_equal(x[..., :3], img) and (x[..., 3] == 255).all()
    again = bgr_to_bgrx(picture(10, 6, shift=7), x)
    assert again is x and np.array_equal(x[..., :3], picture(10, 6, shift=7))  # the buffer is reused
    stride = 10 * 4 + 24  # rows padded as receivers may hand them over
    padded = np.zeros((6, stride), np.uint8)
    padded[:, :40] = bgr_to_bgrx(img).reshape(6, 40)
    back = bgrx_to_bgr(padded.reshape(-1), 10, 6, stride)
    assert back.shape == (6, 10, 3) and back.flags.c_contiguous and np.array_equal(back, img)
    assert np.array_equal(bgrx_to_bgr(bgr_to_bgrx(img).reshape(-1), 10, 6), img)
    with pytest.raises(ValueError):
        bgrx_to_bgr(np.zeros(100, np.uint8), 10, 6)


# -- the output: never makes the show wait --------------------------------------------------------

class SlowSender:
    """Stands in for cyndilib's Sender: each write waits until ``gate`` is open (a stalled network)."""

    def __init__(self, name, w, h, fps, fail_after=None):
        self.args = (name, w, h, fps)
        self.gate = threading.Event()
        self.frames: list[np.ndarray] = []
        self.closed = False
        self.fail_after = fail_after

    def write_video(self, flat):
        self.gate.wait(5)
        if self.fail_after is not None and len(self.frames) >= self.fail_after:
            raise RuntimeError("network gone")
        self.frames.append(flat.copy())
        return True

    def close(self):
        self.closed = True


def open_senders(made: list, **kw):
    """A ``make_sender`` whose senders never stall (gate open), kept in ``made``."""

    def make(*args):
        s = SlowSender(*args, **kw)
        s.gate.set()
        made.append(s)
        return s

    return make


def test_the_output_never_waits_for_a_stalled_sender_and_sends_the_newest():
    made = []

    def make(*args):
        made.append(SlowSender(*args))
        return made[-1]

    out = NdiOutput("stage", fps=25, make_sender=make)
    t0 = time.monotonic()
    for i in range(40):
        out.write(picture(shift=i), float(i))
    took = time.monotonic() - t0
    sender = made[0]
    assert took < 0.5, f"40 writes to a stalled sender took {took:.2f} s"
    assert sender.args == ("stage", 64, 48, 25) and sender.frames == []
    sender.gate.set()  # the network is back
    deadline = time.monotonic() + 5
    while out.sent < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    out.close()
    assert sender.closed and out.dropped >= 30  # what it had no time for was dropped, not queued
    last = sender.frames[-1].reshape(48, 64, 4)
    assert np.array_equal(last[..., :3], picture(shift=39)) and (last[..., 3] == 255).all()  # the newest, BGRX
    out.close()  # idempotent
    out.write(picture(), 0.0)  # after close: ignored, not an error


def test_frames_of_another_size_are_scaled_into_the_senders():
    senders = []
    with NdiOutput("stage", make_sender=open_senders(senders)) as out:
        out.write(picture(64, 48), 0.0)
        out.write(picture(128, 96), 0.1)  # the idle clip, at its own size
        deadline = time.monotonic() + 5
        while out.sent < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(senders) == 1 and senders[0].args[1:3] == (64, 48)
    assert all(f.size == 64 * 48 * 4 for f in senders[0].frames)


def test_a_sender_that_fails_is_detached_and_the_show_goes_on(caplog):
    outs = Outputs()
    out = outs.add(NdiOutput("stage", make_sender=open_senders([], fail_after=1)))
    deadline = time.monotonic() + 5
    while out in outs.items and time.monotonic() < deadline:
        outs.write(picture(), 0.0)
        time.sleep(0.01)
    assert out not in outs.items
    assert outs.failed and outs.failed[0][0] == "NDI" and "network gone" in outs.failed[0][1]
    outs.write(picture(), 0.0)  # the others carry on
    outs.close()


def test_the_shown_picture_is_what_goes_out():
    from realtime.config import LiveConfig
    from realtime.core.controller import Controller
    from realtime.io.sources import SyntheticSource
    from realtime.live.app import LiveApp
    from realtime.live.keymap import ScriptedKeys
    from realtime.live.pipeline import LivePipeline
    from realtime.pipeline.stage import StylizeStage

    senders = []
    make = open_senders(senders)
    c = Controller(["a", "b"])
    p = LivePipeline(SyntheticSource(96, 64, fps=200), StylizeStage(FakeStylizer(), 32), c, fake_codes(2), 0.0)
    out = NdiOutput("show", fps=25, make_sender=make)
    shown = []
    app = LiveApp(p, LiveConfig(headless=True, max_frames=20), outputs=[out], keys=ScriptedKeys({}))
    orig = app._show
    app._show = lambda item, state: (orig(item, state), shown.append(app._last_view.copy()))
    app.run()
    assert senders[0].args == ("show", 96, 64, 25)
    sent = [f.reshape(64, 96, 4)[..., :3] for f in senders[0].frames]
    assert sent and len(sent) + out.dropped == 20
    assert any(np.array_equal(sent[-1], s) for s in shown[-3:])  # exactly a shown frame, BGR order kept


# -- the source: first frame, loss, supervision ---------------------------------------------------

class FakeReceiver:
    """Stands in for :class:`~realtime.io.sources.ndi.CyndiReceiver`: hands out ``frames`` at ``fps``, then nothing."""

    def __init__(self, frames, fps=25.0):
        self.frames, self.fps = list(frames), fps
        self.full_name = "HOST (stage)"
        self.closed = False

    def read(self, timeout_s):
        if self.frames:
            time.sleep(min(timeout_s, 1 / self.fps))
            return self.frames.pop(0), self.fps
        time.sleep(timeout_s)
        return None

    def close(self):
        self.closed = True


def test_the_source_opens_on_its_first_frame_and_ends_when_it_is_lost(caplog):
    rx = FakeReceiver([picture(), picture(shift=9)])
    src = NdiSource("stage", find_s=1.0, lost_s=0.3, connect=lambda name, find_s: rx)
    src.open()
    assert src.size == (64, 48) and src.fps == 25.0 and "HOST (stage) 64x48" in src.describe()
    assert np.array_equal(src.read(), picture()) and np.array_equal(src.read(), picture(shift=9))
    t0 = time.monotonic()
    assert src.read() is None  # the sender went away: the stream ends (the supervisor reconnects)
    assert 0.25 <= time.monotonic() - t0 < 1.5 and "sent nothing for 0.3 s" in caplog.text
    src.close()
    assert rx.closed


def test_a_silent_source_is_one_line_at_opening():
    rx = FakeReceiver([])
    src = NdiSource("stage", find_s=0.3, connect=lambda name, find_s: rx)
    with pytest.raises(NdiError, match="'HOST \\(stage\\)' was found but sent no picture within 0.3 s"):
        src.open()
    assert rx.closed


def test_a_lost_sender_shows_the_placeholder_and_comes_back():
    rounds = [[picture()] * 3, None, [picture(shift=50)] * 100]  # None: not found at the first try

    def connect(name, find_s):
        frames = rounds.pop(0) if rounds else None
        if frames is None:
            raise NdiError("NDI source 'stage' not found within 0.5 s")
        return FakeReceiver(frames, fps=50)

    sup = SupervisedSource(lambda: NdiSource("stage", find_s=0.5, lost_s=0.2, connect=connect),
                           stall_s=0.2, backoff_s=0.05, name="NDI source stage")
    sup.open()
    try:
        seen_away = back = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not back:
            img = sup.read()
            seen_away |= sup.away
            back = seen_away and not sup.away and np.array_equal(img, picture(shift=50))
        assert seen_away and back and sup.reconnects == 1
    finally:
        sup.close()


# -- without cyndilib: one line, how to install -----------------------------------------------------

def test_without_cyndilib_it_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cyndilib", None)  # import fails as if not installed
    with pytest.raises(NdiError) as err:
        load_cyndilib()
    assert INSTALL_HINT in str(err.value) and "realtime[ndi]" in str(err.value)
    with pytest.raises(NdiError, match="realtime\\[ndi\\]"):
        NdiOutput("x").write(picture(), 0.0)
    with pytest.raises(NdiError, match="realtime\\[ndi\\]"):
        open_source("ndi:x").open()


@pytest.mark.parametrize("flags", [["--source", "synthetic:96x64", "--ndi", "show"], ["--source", "ndi:show"]])
def test_cli_without_cyndilib_is_one_line_and_exit_2(flags):
    code = "import sys; sys.modules['cyndilib'] = None; from realtime.cli import main; sys.exit(main(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-c", code, "live", "--headless", "--max-frames", "1", "--size", "32", *flags],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr and "stylize: error:" in err[-1] and "pip install 'realtime[ndi]'" in err[-1]


def test_config_keys():
    from realtime.config import load_config
    from realtime.errors import ConfigError

    cfg = load_config(overrides={"ndi.name": "booth", "ndi.find_s": 2.0})
    assert (cfg.ndi.name, cfg.ndi.find_s, cfg.ndi.fps) == ("booth", 2.0, 0.0)
    with pytest.raises(ConfigError, match="ndi.name.*a source name"):
        load_config(overrides={"ndi.name": " "})
    with pytest.raises(ConfigError, match="ndi.find_s"):
        load_config(overrides={"ndi.find_s": 0})


# -- the real runtime: a round trip on this machine ---------------------------------------------------

@pytest.fixture
def ndi_runtime(tmp_path, monkeypatch):
    """cyndilib with discovery through 127.0.0.1 (no multicast needed); skips where it is absent."""
    try:
        lib = load_cyndilib()
    except NdiError as exc:
        pytest.skip(f"no NDI runtime: {exc}")
    monkeypatch.setenv("NDI_CONFIG_DIR", str(write_local_config(tmp_path / "ndi").parent))
    return lib


def test_round_trip_through_the_ndi_runtime(ndi_runtime):
    name = f"realtime-test-{time.monotonic_ns() % 10**9}"
    out = NdiOutput(name, fps=30)
    stop = threading.Event()

    def show():  # the show's thread: a moving picture at 30 fps until the receiver has what it needs
        while not stop.is_set():
            out.write(picture(96, 64), time.monotonic())
            time.sleep(1 / 30)

    t = threading.Thread(target=show, name="realtime-test-ndi-show")
    t.start()
    try:
        src = NdiSource(name, find_s=10.0, lost_s=2.0)
        src.open()
        try:
            frames = [src.read() for _ in range(5)]
            assert "realtime-test" in src.describe()
        finally:
            src.close()
    finally:
        stop.set()
        t.join(5)
        out.close()
    assert out.sent >= 5
    for f in frames:
        assert f is not None and f.shape == (64, 96, 3) and f.dtype == np.uint8
        diff = np.abs(f.astype(int) - picture(96, 64).astype(int))
        assert diff.mean() < 6 and np.percentile(diff, 99) < 24, (diff.mean(), diff.max())  # lossy (SpeedHQ), close


def test_a_missing_source_is_one_line_naming_what_was_seen(ndi_runtime):
    src = NdiSource("realtime-no-such-source", find_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(NdiError) as err:
        src.open()
    assert "'realtime-no-such-source' not found within 1 s" in str(err.value) and "\n" not in str(err.value)
    assert time.monotonic() - t0 < 5


def test_live_opens_the_ndi_output_before_the_show(ndi_runtime):
    from realtime.config import load_config
    from realtime.live.run import open_ndi

    assert open_ndi(load_config(), 64, 48, fps=25.0) is None
    out = open_ndi(load_config(overrides={"ndi.name": f"realtime-test-open-{time.monotonic_ns() % 10**9}"}), 64, 48, fps=25.0)
    try:
        assert isinstance(out, NdiOutput) and out.size == (64, 48) and out.fps == 25.0
    finally:
        out.close()
    out = open_ndi(load_config(overrides={"ndi.name": "realtime-test-fps", "ndi.fps": 50.0}), 64, 48, fps=25.0)
    out.close()
    assert out.fps == 50.0
