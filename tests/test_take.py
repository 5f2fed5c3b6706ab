"""Issue 28, a camera that takes styles: take_style from a fake camera, with a fake stylizer and
the real style bank (codes computed from the saved file, off the show's threads)."""

import threading
import time

import numpy as np
import pytest
from fakes import FakeStylizer, fake_codes, fake_engine

from realtime.config import LiveConfig
from realtime.core.controller import ActionError, Controller
from realtime.core.styleset import StyleEntry, StyleSet
from realtime.io.sources import SyntheticSource
from realtime.live.app import LiveApp
from realtime.live.keymap import ScriptedKeys, lookup
from realtime.live.pipeline import LivePipeline
from realtime.live.take import StyleTaker, TakeError
from realtime.pipeline.stage import StylizeStage


def make_show(tmp_path, taken_max=3, style_source=None):
    controller = Controller([f"s{i}" for i in range(3)])
    p = LivePipeline(SyntheticSource(96, 64, fps=60), StylizeStage(FakeStylizer(), short_side=64), controller,
                     fake_codes(3), crossfade_s=0.2)
    bank = fake_engine(tmp_path / "codes").bank
    taker = StyleTaker(controller, tmp_path / "styles" / "taken", bank.code_for, taken_max)
    opts = LiveConfig(headless=True, record_dir=str(tmp_path / "rec"), snapshot_dir=str(tmp_path / "snap"))
    return LiveApp(p, opts, ScriptedKeys({}), taker=taker, style_source=style_source), p


def run_with(app, remote):
    """Run the show with ``remote(controller)`` on another thread; its result or its error."""
    seen = {}

    def body():
        try:
            deadline = time.monotonic() + 20
            while app.stats.shown < 3:
                assert time.monotonic() < deadline, "the show never showed 3 frames"
                time.sleep(0.01)
            seen["result"] = remote(app.controller)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            seen["error"] = exc
        finally:
            app.controller.quit()

    t = threading.Thread(target=body, name="realtime-test-take")
    t.start()
    app.run()
    t.join(20)
    assert not t.is_alive()
    if "error" in seen:
        raise seen["error"]
    return seen["result"]


def take(app, c):
    c.take_style().result(timeout=10)  # the live loop hands the picture over ...
    return app.taker.last.result(timeout=20)  # ... the taker codes it


def test_take_style_codes_saves_and_crossfades_to_the_picture(tmp_path):
    app, p = make_show(tmp_path)

    def remote(c):
        taken = take(app, c)
        entry = c.styles[taken.index]
        to = p.fader._to.copy()  # the target the pipeline sent the fader to
        deadline = time.monotonic() + 5
        while not np.allclose(p.fader._to, entry.code) and time.monotonic() < deadline:
            time.sleep(0.01)  # the inference worker follows the controller before its next frame
        return taken, entry, to, p.fader._to.copy(), c.state.style_index

    taken, entry, _, target, index = run_with(app, remote)
    assert taken.index == 3 and index == 3 and taken.replaced is None
    assert entry.name == taken.name == taken.path.stem and taken.name.startswith("taken-")
    assert taken.path.parent == tmp_path / "styles" / "taken" and taken.path.suffix == ".jpg" and taken.path.exists()
    assert entry.code is not None and entry.code.shape == fake_codes(1)[0].shape
    assert np.allclose(target, entry.code)  # the crossfade goes to the taken style
    assert not app.taker._thread.is_alive()  # joined at the end of the show
    assert not list(taken.path.parent.glob("*.tmp*"))  # written atomically: no temp file left


def test_taken_max_keeps_the_newest_in_the_show_and_every_file(tmp_path):
    app, _ = make_show(tmp_path, taken_max=3)
    takes = run_with(app, lambda c: [take(app, c) for _ in range(5)])
    names = app.controller.style_names
    assert len(names) == 3 + 3  # the show's own 3, and 3 taken
    assert names[:3] == ["s0", "s1", "s2"]
    assert sorted(names[3:]) == sorted(t.name for t in takes[-3:])  # the two oldest left the show
    assert [t.replaced for t in takes] == [None, None, None, takes[0].name, takes[1].name]
    assert app.controller.state.style_index == takes[-1].index == names.index(takes[-1].name)
    assert all(t.path.exists() for t in takes)  # left the show, not the disk
    assert len({t.name for t in takes}) == 5


def test_take_before_any_picture_is_refused(tmp_path):
    app, _ = make_show(tmp_path)
    with pytest.raises(TakeError, match="no camera picture yet"):
        app.take_style()
    fut = app.controller.take_style()
    app.controller.run_main_tasks()
    with pytest.raises(TakeError):
        fut.result(timeout=1)
    assert len(app.controller.styles) == 3 and not (tmp_path / "styles" / "taken").exists()


def test_a_show_without_a_taker_says_so():
    c = Controller(["a"])
    fut = c.take_style()
    c.run_main_tasks()
    with pytest.raises(ActionError, match="not available"):
        fut.result(timeout=1)


def test_styleset_replace_keeps_indices_and_unique_names():
    s = StyleSet.of_names(["a", "b", "c"])
    old = s.replace(1, StyleEntry("x"))
    assert old.name == "b" and s.names() == ["a", "x", "c"]
    with pytest.raises(ValueError):
        s.replace(0, StyleEntry("c"))


def test_the_g_key_takes_a_style():
    assert lookup(ord("g")).action == "take_style"
