"""The show's state across restarts (show.remember): written after changes from a controller-event
subscriber, put back at start by name, --fresh ignores it; and the real command killed with SIGKILL
and started again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from realtime.config import load_config
from realtime.core.controller import Controller
from realtime.errors import ConfigError, UserError
from realtime.live.memory import ShowMemory, state_file
from realtime.live.show import AutoCycle, show_surfaces


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def saved(path: Path) -> dict:
    return json.loads(path.read_text())


def test_changes_are_written_after_a_pause_and_the_last_one_at_the_end(tmp_path):
    clock, path = Clock(), tmp_path / "state" / "show.json"
    c = Controller(["dots", "waves", "ink"])
    memory = ShowMemory(c, path, clock=clock)
    memory.tick()
    assert not path.exists() and memory.restored == []  # nothing changed: nothing written
    c.set_style("waves", origin="web")
    c.set_strength(0.4, origin="key")
    memory.tick()
    assert saved(path) | {"saved": None} == {"version": 1, "style": "waves", "strength": 0.4, "stability": 0.0,
                                            "cycle_s": 0.0, "overlay": True, "crossfade_s": 0.5, "bpm": 0.0,
                                            "saved": None}
    c.set_stability(0.8, origin="web")
    c.set_cycle(30, origin="web")
    c.toggle_overlay(origin="key")
    memory.tick()
    assert saved(path)["stability"] == 0.0 and memory.writes == 1  # at most one write a second
    clock.t += 1.0
    memory.tick()
    assert (saved(path)["stability"], saved(path)["cycle_s"], saved(path)["overlay"]) == (0.8, 30.0, False)
    c.set_strength(1.4, origin="attract")  # attract mode's strength is not the show's
    c.set_idle(True, origin="attract")
    c.set_style("ink", origin="auto")  # the cycle's painting is
    c.quit(origin="show")  # the end of the show writes at once, inside the second
    assert saved(path)["style"] == "ink" and saved(path)["strength"] == 0.4 and memory.writes == 3
    assert [p.name for p in path.parent.iterdir()] == ["show.json"]  # atomic: no temp files left


def test_the_saved_state_comes_back_by_name_through_the_actions(tmp_path, caplog):
    path = tmp_path / "show.json"
    path.write_text(json.dumps({"version": 1, "style": "waves", "strength": 0.4, "stability": 0.8, "cycle_s": 45.0,
                                "overlay": False}))
    clock = Clock()
    c = Controller(["ink", "mosaic", "waves"])  # another list: the name counts, not the index
    cycle = AutoCycle(c, cycle_s=10, clock=clock)  # the config's interval, before the saved one
    events = []
    c.subscribe(events.append)
    with caplog.at_level("INFO"):
        memory = ShowMemory(c, path, clock=clock)
    s = c.state
    assert (s.style_index, s.strength, s.stability, s.cycle_s, s.overlay) == (2, 0.4, 0.8, 45.0, False)
    assert {e.origin for e in events} == {"restore"} and "show state from" in caplog.text
    assert memory.restored == ["style waves", "strength 0.4", "stability 0.8", "cycle_s 45", "overlay off"]
    clock.t += 44
    cycle.tick()
    assert c.state.style_index == 2  # restored is not "chosen by hand", and the saved interval runs
    clock.t += 1
    cycle.tick()
    assert c.state.style_index == 0
    memory.close()


def test_the_tempo_and_the_crossfade_survive_a_restart_of_the_state(tmp_path, caplog):
    """#28: the bpm (tapped or set) and set_crossfade's seconds are written like the other settings
    and come back through set_tempo / set_crossfade in the next show; a bad saved bpm is one line."""
    clock, path = Clock(), tmp_path / "show.json"
    c = Controller(["dots", "waves"], clock=clock)
    memory = ShowMemory(c, path, clock=clock)
    for _ in range(4):  # taps at 0.5 s: 120 bpm
        c.tap_tempo(origin="osc")
        clock.t += 0.5
    c.set_crossfade(1.5, origin="midi")
    memory.close()
    assert (saved(path)["bpm"], saved(path)["crossfade_s"]) == (120.0, 1.5)

    again = Controller(["dots", "waves"], clock=clock)  # the next show
    events = []
    again.subscribe(events.append)
    restored = ShowMemory(again, path, clock=clock)
    assert (again.state.bpm, again.state.crossfade_s) == (120.0, 1.5)
    assert "bpm 120" in restored.restored and "crossfade_s 1.5" in restored.restored
    assert {e.origin for e in events} == {"restore"}
    assert again.beat_grid() == (clock.t, 0.5)  # a tempo to time the cycle and the crossfades by
    restored.close()
    fresh = Controller(["dots", "waves"], clock=clock)
    ShowMemory(fresh, path, fresh=True, clock=clock).close()
    assert fresh.state.bpm == 0.0 and saved(path)["bpm"] == 0.0  # --fresh: the config's (no tempo)

    path.write_text(json.dumps({"version": 1, "bpm": 5.0}))
    bad = Controller(["dots"])
    with caplog.at_level("INFO"):
        ShowMemory(bad, path).close()
    assert bad.state.bpm == 0.0 and "saved bpm is ignored" in caplog.text


def test_a_style_that_is_gone_and_bad_values_are_one_line_each(tmp_path, caplog):
    path = tmp_path / "show.json"
    path.write_text(json.dumps({"version": 1, "style": "sunflowers", "strength": 0.5, "stability": 7, "overlay": "yes"}))
    hub = Controller(["dots", "waves"], mixable=False)  # a backend without style codes to mix
    with caplog.at_level("INFO"):
        ShowMemory(hub, path)
    assert "saved style 'sunflowers' is not among the loaded styles: ignored" in caplog.text
    assert "saved strength is ignored" in caplog.text and "saved stability is ignored" in caplog.text
    assert "saved overlay 'yes'" in caplog.text and hub.state == Controller(["a"]).state
    for text in ("{not json", "[1, 2]", json.dumps({"version": 99, "style": "waves"})):
        path.write_text(text)
        caplog.clear()
        c = Controller(["dots", "waves"])
        with caplog.at_level("INFO"):
            ShowMemory(c, path)
        assert "starting from the config" in caplog.text and c.state.style_index == 0


def test_fresh_starts_from_the_config_and_replaces_the_file(tmp_path):
    path = tmp_path / "show.json"
    path.write_text(json.dumps({"version": 1, "style": "waves", "strength": 0.4}))
    c = Controller(["dots", "waves"])
    memory = ShowMemory(c, path, fresh=True)
    assert c.state.style_index == 0 and c.state.strength == 1.0
    memory.tick()
    assert saved(path)["style"] == "dots" and saved(path)["strength"] == 1.0


def test_config_keys_and_the_surface(tmp_path, monkeypatch):
    cfg = load_config()
    assert not cfg.show.remember and not any(type(s).__name__ == "ShowMemory"
                                             for s in show_surfaces(Controller(["a"]), cfg))
    monkeypatch.setenv("REALTIME_CACHE_DIR", str(tmp_path / "cache"))
    on = load_config(overrides={"show.remember": True})
    assert state_file(on) == tmp_path / "cache" / "show-state.json"
    assert type(show_surfaces(Controller(["a"]), on)[-1]).__name__ == "ShowMemory"
    with pytest.raises(ConfigError, match="show.state_file"):
        load_config(overrides={"show.state_file": " "})
    with pytest.raises(ConfigError, match="show.remember"):
        load_config(overrides={"show.remember": "sometimes"})
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    in_a_file = load_config(overrides={"show.remember": True, "show.state_file": str(blocker / "state.json")})
    with pytest.raises(UserError, match="show state folder"):
        show_surfaces(Controller(["a"]), in_a_file)


# -- the real command -------------------------------------------------------------------------------

TOKEN = "memory-test-token-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Live:
    """``stylize live --web`` in a subprocess (openvino: the fastest start with the real models)."""

    def __init__(self, config: Path, log: Path, *flags: str) -> None:
        from conftest import ROOT

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "realtime", "live", "--config", str(config), "--headless", "--backend", "openvino",
                 "--max-frames", "1000000", "--web", f"127.0.0.1:{self.port}", *flags],
                cwd=ROOT, env={**os.environ, "REALTIME_WEB_TOKEN": TOKEN}, stdout=subprocess.PIPE, stderr=err, text=True)
        deadline = time.monotonic() + 90
        line = ""
        while "control page:" not in line and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            assert line or self.proc.poll() is None, log.read_text()
        assert "control page:" in line, log.read_text()

    def status(self) -> dict:
        return requests.get(f"{self.url}/api/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()

    def post(self, name: str, args: dict) -> dict:
        r = requests.post(f"{self.url}/api/actions/{name}", json=args, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
        assert r.status_code == 200, r.text
        return r.json()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.communicate(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        return self.proc.returncode


def test_the_show_comes_back_after_kill_9_and_fresh_starts_over(models_dir, tmp_path):
    state = tmp_path / "var" / "show-state.json"
    config = tmp_path / "show.yaml"
    config.write_text(yaml.safe_dump({
        "live": {"source": "synthetic:96x64", "size": 64},
        "styles": {"crossfade_s": 0.0},
        "show": {"remember": True, "state_file": str(state)},
    }))
    styles = ("--style", "dots", "--style", "waves", "--style", "ink")
    first = Live(config, tmp_path / "first.log", *styles)
    try:
        assert first.status()["style"] == "dots"
        first.post("set_style", {"style": "waves"})
        first.post("set_strength", {"value": 0.4})
        first.post("set_cycle", {"seconds": 600})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if state.is_file() and (saved(state)["style"], saved(state)["strength"], saved(state)["cycle_s"]) == ("waves", 0.4, 600):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the state file never had the change: {state.read_text() if state.is_file() else 'missing'}")
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # no chance to save anything on the way out
    second = Live(config, tmp_path / "second.log", *styles)
    try:
        st = second.status()
        assert (st["style"], st["strength"], st["cycle_s"]) == ("waves", 0.4, 600.0)
    finally:
        assert second.stop() == 143
    assert "show state from" in (tmp_path / "second.log").read_text()
    # The styles changed meanwhile: the saved one is gone, said in one line; the rest comes back.
    third = Live(config, tmp_path / "third.log", "--style", "dots", "--style", "ink")
    try:
        st = third.status()
        assert (st["style"], st["strength"]) == ("dots", 0.4)
    finally:
        third.stop()
    assert "saved style 'waves' is not among the loaded styles: ignored" in (tmp_path / "third.log").read_text()
    fresh = Live(config, tmp_path / "fresh.log", *styles, "--fresh")
    try:
        st = fresh.status()
        assert (st["style"], st["strength"], st["cycle_s"]) == ("dots", 1.0, 0.0)
    finally:
        assert fresh.stop() == 143
    assert saved(state)["style"] == "dots" and saved(state)["strength"] == 1.0  # the fresh show replaced it
    assert "Traceback" not in "".join(p.read_text() for p in tmp_path.glob("*.log"))


def test_the_state_file_is_fsynced_before_its_rename_and_its_folder_after(tmp_path, monkeypatch):
    """A power cut (not only a kill) leaves the old state or the new: the data reaches the disk
    before the rename makes it the state file, and the rename reaches it after (the folder's fsync)."""
    import stat

    import realtime.io.paths as paths

    path = tmp_path / "state" / "show.json"
    path.parent.mkdir()
    path.write_text('{"version": 1, "style": "dots"}')
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync-dir" if stat.S_ISDIR(st.st_mode) else "fsync-file", st.st_size))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", Path(dst).name))
        return real_replace(src, dst)

    monkeypatch.setattr(paths.os, "fsync", fsync)
    monkeypatch.setattr(paths.os, "replace", replace)
    c = Controller(["dots", "waves"])
    memory = ShowMemory(c, path, clock=Clock())
    c.set_style("waves", origin="web")
    memory.tick()
    assert saved(path)["style"] == "waves"
    kinds = [e[0] for e in events]
    assert kinds == ["fsync-file", "rename", "fsync-dir"], events
    assert events[0][1] == len(path.read_bytes())  # the whole new file was on the disk before the rename
