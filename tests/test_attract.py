"""Attract mode (nobody in front of the camera), kiosk keys and the log file of an installation."""

import logging
import threading
import time

import numpy as np
import pytest
from fakes import FakeStylizer, fake_codes

from realtime.config import KioskConfig, LiveConfig
from realtime.core.controller import Controller
from realtime.core.motion import MotionMeter
from realtime.pipeline.stage import StylizeStage
from realtime.io.sources.base import FrameSource, Pacer
from realtime.live.app import LiveApp
from realtime.live.keymap import KeyboardControl
from realtime.live.pipeline import LivePipeline
from realtime.live.show import Attract, AutoCycle


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def room(moving_at: float | None, t: float, noise: np.random.Generator | None = None) -> np.ndarray:
    """An empty room (BGR), with a visitor (a dark box) walking across it when ``moving_at`` is set."""
    img = np.full((120, 160, 3), 150, np.uint8)
    img[80:, :] = 90  # the floor
    if noise is not None:  # sensor noise: a few grey levels on every pixel
        img = np.clip(img.astype(int) + noise.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    if moving_at is not None:
        x = int((t - moving_at) * 120) % 140
        img[30:110, x : x + 20] = 20
    return img


def test_motion_meter_sees_visitors_not_sensor_noise():
    clock = Clock(0.0)
    meter = MotionMeter(threshold=2.0, clock=clock)
    rng = np.random.default_rng(1)
    for i in range(40):  # 4 s of an empty room with a noisy sensor, 10 fps
        clock.t = i * 0.1
        meter.update(room(None, clock.t, rng))
    assert meter.level < 1.0 and meter.quiet_s() >= 3.9
    for i in range(40, 50):  # a visitor walks in
        clock.t = i * 0.1
        meter.update(room(4.0, clock.t, rng))
    assert meter.level > 2.0 and meter.quiet_s() < 0.3
    meter.reset()
    assert meter.quiet_s() == 0.0


def test_attract_mode_slows_the_cycle_changes_strength_and_ends_at_the_first_motion():
    clock = Clock()
    quiet = {"s": 0.0}
    c = Controller(["a", "b", "c"], mixable=True)
    c.set_strength(0.8)
    attract = Attract(c, idle_s=60, quiet_s=lambda: quiet["s"], idle_strength=1.4)
    cycle = AutoCycle(c, cycle_s=30, clock=clock, idle_cycle_s=5)
    switches = []
    for step in range(24):  # 2 minutes in 5 s steps; nobody there from the start
        clock.t += 5
        quiet["s"] += 5
        attract.tick()
        before = cycle.switches
        cycle.tick()
        switches.append(cycle.switches - before)
    assert c.state.idle and c.state.strength == 1.4 and attract.entered == 1
    assert sum(switches[:11]) == 1  # 55 s of the normal show: one switch at 30 s
    assert sum(switches[12:]) == 12  # attract mode: a painting every 5 s
    quiet["s"] = 0.0  # somebody walks in
    attract.tick()
    assert not c.state.idle and c.state.strength == 0.8
    c.set_open(False)  # closed hours: attract mode stays out of it
    quiet["s"] = 1e6
    attract.tick()
    assert not c.state.idle


class Room(FrameSource):
    """A fake camera on an empty room; ``visitor.set()`` sends somebody walking through it."""

    live = True

    def __init__(self, visitor: threading.Event) -> None:
        self.visitor = visitor
        self._size, self._fps = (160, 120), 50.0
        self._pacer = Pacer(50.0)
        self._since: float | None = None

    def open(self):
        pass

    def read(self):
        self._pacer.wait()
        now = time.monotonic()
        if self.visitor.is_set() and self._since is None:
            self._since = now
        return room(self._since, now)


class Clip(FrameSource):
    """The prepared idle clip: flat frames of one colour, counted."""

    live = False

    def __init__(self) -> None:
        self._size, self._fps = (160, 120), 100.0
        self.reads = 0
        self.closed = False

    def open(self):
        pass

    def read(self):
        self.reads += 1
        return np.full((120, 160, 3), (0, 200, 0), np.uint8)

    def close(self):
        self.closed = True


def test_an_empty_room_shows_the_idle_clip_and_rests_the_network_until_somebody_walks_in():
    visitor = threading.Event()
    stylizer = FakeStylizer()
    c = Controller(["a", "b"])
    meter = MotionMeter(threshold=2.0)
    p = LivePipeline(Room(visitor), StylizeStage(stylizer, 32), c, fake_codes(2), 0.0, motion=meter, rest_while_idle=True)
    clip = Clip()
    shown_live = []
    app = LiveApp(p, LiveConfig(headless=True), surfaces=[Attract(c, idle_s=0.6, quiet_s=meter.quiet_s)], idle_clip=clip)
    orig = app._show

    def spy(item, state):
        shown_live.append(time.monotonic())
        orig(item, state)

    app._show = spy
    seen = {}

    def visitors():
        deadline = time.monotonic() + 20
        while not c.state.idle and time.monotonic() < deadline:
            time.sleep(0.02)
        seen["idle_after_s"] = time.monotonic() - started
        time.sleep(0.2)
        calls = stylizer.calls
        live = len(shown_live)
        clip0 = app.clip_frames
        time.sleep(0.5)
        seen["clip_in_half_s"] = app.clip_frames - clip0
        seen["calls_while_idle"] = stylizer.calls - calls
        seen["live_while_idle"] = len(shown_live) - live
        seen["clip_frames"] = app.clip_frames
        visitor.set()
        t0 = time.monotonic()
        while c.state.idle and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["woke_in_s"] = time.monotonic() - t0
        n = len(shown_live)
        while len(shown_live) < n + 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        c.quit()

    started = time.monotonic()
    t = threading.Thread(target=visitors, name="realtime-test-visitors")
    t.start()
    app.run()
    t.join(10)
    assert 0.6 <= seen["idle_after_s"] < 5
    assert seen["calls_while_idle"] <= 1 and seen["live_while_idle"] == 0  # the network rests, the clip plays
    assert seen["clip_frames"] >= 10
    assert seen["clip_in_half_s"] >= 30, seen  # at the clip's own 100 fps, not held back by the network's empty queue
    assert seen["woke_in_s"] < 1.0 and not c.state.idle  # motion brings the live show back at once
    assert clip.closed


def test_kiosk_keys_ignore_visitors_but_the_exit_keys_end_the_show():
    clock = Clock()
    c = Controller(["a", "b"])
    keys = KeyboardControl(c, enabled=False, exit_keys="qqq", clock=clock)
    for k in "nn+ q":
        keys.press(ord(k))
        clock.t += 0.1
    assert c.state.style_index == 0 and c.state.running  # nothing a visitor types does anything
    clock.t += 5
    for k in "qq":
        keys.press(ord(k))
        clock.t += 1.5  # too slow: more than 2 s for the three keys
    keys.press(ord("q"))
    assert c.state.running
    for k in "qqq":
        keys.press(ord(k))
        clock.t += 0.3
    assert not c.state.running
    c2 = Controller(["a", "b"])
    KeyboardControl(c2, enabled=True, exit_keys="").press(ord("n"))
    assert c2.state.style_index == 1


def test_kiosk_config_turns_off_keys_in_the_live_loop():
    from realtime.io.sources import SyntheticSource
    from realtime.live.keymap import ScriptedKeys

    c = Controller(["a", "b"])
    p = LivePipeline(SyntheticSource(64, 48, fps=200), StylizeStage(FakeStylizer(), 32), c, fake_codes(2), 0.0)
    script = {5: "n", 6: "p", 7: "n", 10: "x", 11: "y", 12: "x", 13: "y"}
    app = LiveApp(p, LiveConfig(headless=True, max_frames=400), keys=ScriptedKeys(script),
                  kiosk=KioskConfig(enabled=True, keys=False, exit_keys="xyxy"))
    stats = app.run()
    assert c.state.style_index == 0 and stats.shown < 100  # "n" did nothing; the exit keys ended it


def test_log_file_rotates_and_keeps_the_one_line_errors(tmp_path, monkeypatch):
    import realtime.cli as cli
    import realtime.logs as logs

    log_file = tmp_path / "logs" / "show.log"
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"log:\n  file: {log_file}\n  max_mb: 0.002\n  backups: 2\n")
    rc = cli.main(["live", "--config", str(cfg_file), "--headless", "--source", str(tmp_path / "missing.mp4")])
    assert rc == 2
    text = log_file.read_text()
    assert "stylize: error:" in text and "missing.mp4" in text and " ERROR " in text
    assert logs.file_handler is None  # closed at the end of the command
    # Size rotation: a long-running show never fills the disk.
    logs.setup_logging(0, False)
    from realtime.config import LogConfig

    logs.log_to_file(LogConfig(file=str(log_file), max_mb=0.002, backups=2))
    try:
        for i in range(200):
            logging.getLogger("realtime.live.show").info("heartbeat: line %d %s", i, "x" * 40)
    finally:
        logs.close_log_file()
    files = sorted(p.name for p in log_file.parent.iterdir())
    assert files == ["show.log", "show.log.1", "show.log.2"]
    assert all(p.stat().st_size <= 2100 for p in log_file.parent.iterdir())
    assert "line 199" in log_file.read_text()


def test_a_log_file_that_cannot_be_written_is_one_line(tmp_path, capsys):
    import realtime.cli as cli

    (tmp_path / "afile").write_text("")
    rc = cli.main(["live", "--headless", "--log-file", str(tmp_path / "afile" / "show.log"), "--source", "synthetic"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "log folder" in err[0]


@pytest.mark.parametrize("bad", ["show:\n  idle_strength: 3\n", "log:\n  backups: 0\n", "kiosk:\n  keyz: false\n"])
def test_bad_installation_keys_name_the_key(tmp_path, bad):
    from realtime.config import load_config
    from realtime.errors import ConfigError

    f = tmp_path / "c.yaml"
    f.write_text(bad)
    with pytest.raises(ConfigError, match=r"idle_strength|log.backups|kiosk.keyz"):
        load_config(f)


def test_a_bad_idle_clip_is_one_line_before_the_show(tmp_path, capsys):
    import realtime.cli as cli

    (tmp_path / "clip.mp4").write_bytes(b"not a video")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"show:\n  idle_s: 30\n  idle_clip: {tmp_path / 'clip.mp4'}\n")
    rc = cli.main(["live", "--config", str(cfg), "--headless", "--source", "synthetic:64x48", "--max-frames", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "clip.mp4" in err[0] and err[0].startswith("stylize: error:")


def test_an_unexpected_error_reaches_the_log_file_with_its_traceback(tmp_path, monkeypatch):
    import pytest

    import realtime.cli as cli
    import realtime.commands as commands
    import realtime.logs as logs

    def broken(args):  # a bug inside a command, after its config (and log file) are set up
        commands.load_cfg(args)
        raise RuntimeError("boom in the show")

    monkeypatch.setattr(commands, "cmd_live", broken)
    log_file = tmp_path / "show.log"
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"log:\n  file: {log_file}\n")
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["live", "--config", str(cfg_file), "--headless"])
    text = log_file.read_text()
    assert "stylize: unexpected error" in text and "Traceback" in text and "boom in the show" in text
    assert logs.file_handler is None


def test_in_kiosk_mode_with_keys_on_only_the_exit_keys_end_the_show():
    """Issue 27: configs/installation.yaml has kiosk.keys: true, and a visitor's single q or Esc
    ended the show.  Visitors still steer styles; quitting and leaving fullscreen are locked."""
    from realtime.live.keymap import ESC

    from realtime.core.controller import LiveState

    clock = Clock()
    c = Controller(["a", "b"], LiveState(fullscreen=True))
    keys = KeyboardControl(c, enabled=True, exit_keys="qqq", clock=clock, kiosk=True)
    for k in (ord("q"), ESC, ord("f"), ord("n")):
        keys.press(k)
        clock.t += 3  # apart: not the exit sequence
    assert c.state.running and c.state.fullscreen  # q, Esc and f did nothing ...
    assert c.state.style_index == 1  # ... while n still steers the show
    for k in "qqq":
        keys.press(ord(k))
        clock.t += 0.3
    assert not c.state.running
    # Outside kiosk mode q is the quit key, as the help says.
    c2 = Controller(["a", "b"])
    KeyboardControl(c2, exit_keys="qqq").press(ord("q"))
    assert not c2.state.running


def test_the_installation_config_runs_a_kiosk_whose_q_key_does_not_quit():
    from realtime.config import load_config
    from realtime.io.sources import SyntheticSource
    from realtime.live.keymap import ScriptedKeys
    from realtime.resources import SHIPPED_CONFIGS

    cfg = load_config(SHIPPED_CONFIGS / "installation.yaml")
    assert cfg.kiosk.enabled and cfg.kiosk.keys  # the case of the issue
    c = Controller(["a", "b"])
    p = LivePipeline(SyntheticSource(64, 48, fps=200), StylizeStage(FakeStylizer(), 32), c, fake_codes(2), 0.0)
    app = LiveApp(p, LiveConfig(headless=True, max_frames=60), keys=ScriptedKeys({5: "q", 6: 27, 7: "n"}), kiosk=cfg.kiosk)
    stats = app.run()
    assert stats.shown == 60 and c.state.style_index == 1  # q and Esc did not end it; n changed the style
