"""The inference watchdog: a backend call that never returns (a stuck driver) is detected after
``live.hang_s``, logged, counted, and the inference worker restarted like a crash, under the same
hourly budget; with none left the show ends with one line and exit status 1.  No model files: a
fake backend that blocks until the test's teardown releases it (so no thread outlives a test)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time

import av
import pytest
from fakes import HangingStylizer, fake_codes, fake_engine

from realtime.config import LiveConfig, load_config
from realtime.core.controller import Controller, LiveState
from realtime.pipeline.stage import StylizeStage
from realtime.errors import ConfigError
from realtime.io.sources import SyntheticSource
from realtime.live.app import LiveApp
from realtime.live.pipeline import LivePipeline, WorkerFailed
from realtime.live.show import StatusFile

HANG_S = 0.5


@pytest.fixture
def release():
    """Set in teardown (before the thread-leak check): the abandoned calls return and their threads end."""
    ev = threading.Event()
    yield ev
    ev.set()


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


@pytest.fixture
def log_lines():
    """The pipeline's log lines (on its own logger: the CLI may have turned propagation off)."""
    logger = logging.getLogger("realtime.live.pipeline")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def make_pipeline(stylizer, restarts: int, state: LiveState | None = None) -> LivePipeline:
    c = Controller(["a", "b"], state or LiveState(style_index=1, strength=0.7))
    return LivePipeline(SyntheticSource(96, 64, fps=100), StylizeStage(stylizer, 64), c, fake_codes(2), 0.0,
                        restarts_per_hour=restarts, hang_s=HANG_S)


def make_app(stylizer, tmp_path, restarts: int, **opts) -> tuple[LiveApp, LivePipeline, StatusFile]:
    p = make_pipeline(stylizer, restarts)
    status = StatusFile(p.controller, tmp_path / "status.json", every_s=0.0)
    return LiveApp(p, LiveConfig(headless=True, **opts), surfaces=[status]), p, status


def abandoned_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("realtime-inference-") and t.name.endswith("-abandoned")]


def test_a_hung_call_is_abandoned_and_the_show_goes_on(tmp_path, release, log_lines):
    stylizer = HangingStylizer(release, hang_calls=(6,))
    app, p, status = make_app(stylizer, tmp_path, restarts=3, max_frames=30)
    stats = app.run()
    assert stats.shown == 30 and stats.repeats == 0  # frames kept coming after the hang
    assert p.hangs == 1 and p.restart_count == 1 and len(p.restarts) == 1
    c = p.controller
    assert c.state.style_index == 1 and c.state.strength == 0.7  # the new worker kept the show's state
    written = json.loads(status.path.read_text())  # the status file a technician reads
    assert written["worker_hangs"] == 1 and written["worker_restarts"] == 1
    hung = [msg for level, msg in log_lines if "hung" in msg]
    assert len(hung) == 1 and all(level == logging.WARNING for level, msg in log_lines if "hung" in msg)
    assert re.search(r"no result for \d+\.\d s \(live\.hang_s 0\.5\)", hung[0]) and "(1 of 3 this hour)" in hung[0]
    stuck = abandoned_threads()
    assert len(stuck) == 1 and stuck[0].daemon and stuck[0].is_alive()  # still in the backend: left, never joined


def test_a_late_result_never_reaches_the_new_worker_and_its_thread_ends(release, log_lines):
    # A slow backend: a late frame put where the main thread reads would be read before the new
    # worker's next frame replaced it.
    stylizer = HangingStylizer(release, hang_calls=(4,), delay_s=0.05)
    p = make_pipeline(stylizer, restarts=2)
    shown: list[int] = []

    def take(until, limit_s: float = 20.0) -> None:
        deadline = time.monotonic() + limit_s
        while not until() and time.monotonic() < deadline:
            item = p.get(timeout=0.05)
            if item is not None:
                shown.append(item.index)
        assert until(), f"timed out; shown {shown}"

    p.start()
    try:
        take(lambda: p.hangs == 1)
        assert HANG_S - 0.05 <= time.monotonic() - stylizer.hung_at < HANG_S + 3  # detected on time
        after = len(shown)
        take(lambda: len(shown) >= after + 5)  # the new worker delivers
        (stuck,) = abandoned_threads()
        release.set()  # the hung call returns now, late
        stuck.join(5)
        assert not stuck.is_alive() and stylizer.late == 1  # it finished its call, then ended
        after = len(shown)
        take(lambda: len(shown) >= after + 5)
    finally:
        p.stop()  # nothing raised: the late worker set no error and no stop
    assert shown == sorted(set(shown))  # the hung frame never showed up after newer ones
    assert p.hangs == 1 and p.restart_count == 1


@pytest.mark.parametrize("restarts, hang, hangs, why", [
    (0, {"hang_calls": (8,)}, 1, r"restarts are off \(show\.worker_restarts_per_hour is 0\)"),
    (2, {"hang_from": 8}, 3, r"2 restarts in the last hour, giving up"),
])
def test_past_the_budget_a_hang_ends_the_show_with_one_line(tmp_path, release, log_lines, restarts, hang, hangs, why):
    stylizer = HangingStylizer(release, **hang)
    rec = tmp_path / "rec.mp4"
    app, p, status = make_app(stylizer, tmp_path, restarts=restarts, record=True, record_path=str(rec))
    with pytest.raises(WorkerFailed, match=r"^inference worker hung: no result for \d+\.\d s \(live\.hang_s 0\.5\); " + why) as err:
        app.run()
    assert err.value.exit_code == 1 and "\n" not in str(err.value)
    assert p.hangs == hangs and p.restart_count == restarts
    assert p.controller.status()["worker_hangs"] == hangs
    assert len([msg for level, msg in log_lines if level == logging.WARNING and "hung" in msg]) == hangs
    assert len(abandoned_threads()) == hangs  # each abandoned, none waited for (no 10 s join at the end)
    with av.open(str(rec)) as f:  # the recording was finished, as for any other end
        assert sum(1 for _ in f.decode(video=0)) == app.stats.shown >= 1


def test_stylize_live_ends_a_hung_show_with_one_line_and_status_1(tmp_path, release, monkeypatch, capsys):
    import realtime.cli as cli
    import realtime.model.engine as engine_module

    stylizer = HangingStylizer(release, hang_from=6)  # call 1 is the warm-up
    monkeypatch.setattr(engine_module, "open_engine", lambda cfg, fixed_size=True: fake_engine(tmp_path, stylizer))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"live:\n  hang_s: {HANG_S}\n")
    rc = cli.main(["live", "--config", str(cfg), "--headless", "--source", "synthetic:96x64", "--size", "64",
                   "--style", "mosaic", "--max-frames", "500"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("stylize: error:")]
    assert rc == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("stylize: error: inference worker hung: no result for") and "restarts are off" in errors[0]
    assert "inference hung: no result for" in err  # the warning line came first


def test_hang_s_is_a_validated_config_key():
    assert load_config(None).live.hang_s == 10.0
    assert load_config(None, {"live.hang_s": 0}).live.hang_s == 0  # off
    with pytest.raises(ConfigError, match=r"live\.hang_s"):
        load_config(None, {"live.hang_s": -1})
