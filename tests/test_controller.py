"""The controller (one door for every control surface), the key table, the outputs fan-out and
the supervised source, without threads of a pipeline."""

import threading
import time

import numpy as np
import pytest
from fakes import FakeCamera

from realtime.core.controller import ACTIONS, ActionError, Controller, LiveState
from realtime.io.sinks import Output, Outputs
from realtime.io.sources import SupervisedSource
from realtime.live.keymap import KEYMAP, KeyboardControl, help_lines


def test_actions_validate_arguments_and_names():
    c = Controller(["wave", "ink", "dots"])
    assert c.set_style("ink") == 1 and c.state.style_index == 1
    assert c.set_style("2") == 2
    c.next_style()
    assert c.state.style_index == 0  # wraps
    c.previous_style()
    assert c.state.style_index == 2
    assert c.do("set_strength", value=1.5) == 1.5
    for bad in (
        lambda: c.set_strength(2.5),
        lambda: c.set_strength(float("nan")),
        lambda: c.do("set_strength", value="high"),
        lambda: c.do("set_strength"),
        lambda: c.do("set_strength", value=1, extra=2),
        lambda: c.set_style("mona_lisa"),
        lambda: c.set_style("7"),
        lambda: c.set_style_index(3),
        lambda: c.set_stability(1.5),
        lambda: c.do("launch_rockets"),
    ):
        with pytest.raises(ActionError):
            bad()
    assert c.state.strength == 1.5  # nothing changed by the bad calls


def test_strength_steps_clamp_and_unmixable_backends_refuse():
    c = Controller(["a"], LiveState(strength=1.95))
    c.change_strength(0.1)
    assert c.state.strength == 2.0
    c.change_strength(0.1)
    assert c.state.strength == 2.0
    c.cycle_stability()
    c.cycle_stability()
    assert c.state.stability == 0.8
    c.cycle_stability()
    assert c.state.stability == 0.0
    hub = Controller(["a"], mixable=False)
    with pytest.raises(ActionError, match="no style codes"):
        hub.set_strength(0.5)


def test_state_changes_from_many_threads_stay_consistent():
    c = Controller([f"s{i}" for i in range(5)])
    seen = []
    c.subscribe(lambda event: seen.append(event.action))

    def hammer():
        for _ in range(200):
            c.next_style()
            c.toggle_mirror()

    threads = [threading.Thread(target=hammer, name=f"realtime-test-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.state.style_index == (4 * 200) % 5
    assert c.state.mirror is False  # 800 toggles
    assert len(seen) == 1600


def test_main_thread_actions_are_queued_and_answered():
    c = Controller(["a"])
    calls = []
    c.bind_main("snapshot", lambda: calls.append("snap") or ["a.png"])
    fut = c.snapshot()
    assert not fut.done() and calls == []  # nothing runs on the caller's thread
    assert c.run_main_tasks() == 1
    assert fut.result(0) == ["a.png"]
    missing = c.stop_recording()
    c.run_main_tasks()
    with pytest.raises(ActionError, match="not available"):
        missing.result(0)
    late = c.toggle_recording()
    c.quit()
    c.cancel_main_tasks()
    assert late.cancelled() and c.toggle_recording().cancelled()


def test_a_main_thread_action_racing_the_end_of_the_show_is_answered():
    """A page's call that arrives after the loop cancelled its queue, before it said quit, is
    cancelled at once (the page hears "the show is ending"), not left for a loop that is gone."""
    c = Controller(["a"])
    c.cancel_main_tasks()
    fut = c.toggle_recording(origin="web")
    assert fut.cancelled() and c.run_main_tasks() == 0


def test_key_table_covers_help_and_actions():
    assert all(b.action in ACTIONS for b in KEYMAP)
    keys = [k for b in KEYMAP for k in b.keys]
    assert len(keys) == len(set(keys)), "a key bound twice"
    lines = help_lines()
    assert any(line.startswith("q / Esc") for line in lines) and any("strength" in line for line in lines)
    c = Controller(["a", "b", "c"])
    kb = KeyboardControl(c)
    for ch in "n+t m":
        assert kb.press(ord(ch))
    assert not kb.press(ord("z")) and not kb.press(-1)
    assert kb.press(ord("9"))  # no ninth style: logged, not raised
    s = c.state
    assert s.style_index == 1 and s.strength == 1.1 and s.stability == 0.55 and s.paused and s.mirror


def test_status_has_state_and_provider_figures():
    c = Controller(["a", "b"])
    c.add_status(lambda: {"display_fps": 29.5})
    c.add_status(lambda: 1 / 0)  # a broken provider does not break the status
    st = c.status()
    assert st["style"] == "a" and st["display_fps"] == 29.5 and st["uptime_s"] >= 0 and st["running"]


class Keeper(Output):
    name = "keeper"

    def __init__(self):
        self.n, self.closed = 0, 0

    def write(self, frame, t):
        self.n += 1

    def close(self):
        self.closed += 1


def test_outputs_check_frames_and_detach_failures():
    good, bad = Keeper(), Keeper()
    bad.write = lambda frame, t: (_ for _ in ()).throw(OSError("disk full"))
    with Outputs() as outs:
        outs.add(good)
        outs.add(bad)
        frame = np.zeros((8, 8, 3), np.uint8)
        outs.write(frame, 0.0)
        outs.write(frame, 0.1)
        with pytest.raises(ValueError, match="BGR uint8"):
            outs.write(np.zeros((8, 8), np.float32), 0.2)
        assert [o.name for o in outs.items] == ["keeper"] and outs.failed[0][1].startswith("OSError")
    assert good.n == 2 and good.closed == 1 and bad.closed == 1


def read_until_back(src: SupervisedSource, within_s: float = 5.0) -> None:
    """Read until the real picture is back, which must take one reconnect."""
    t0 = time.monotonic()
    while src.away and time.monotonic() - t0 < within_s:
        src.read()
    assert not src.away and src.counters()["reconnects"] == 1


def test_supervised_source_counts_stalls_and_backs_off():
    plug = threading.Event()
    plug.set()
    src = SupervisedSource(lambda: FakeCamera(plug, fps=100), stall_s=0.5, backoff_s=0.05, reconnect_max_s=0.2)
    src.open()
    try:
        assert src.read() is not None and not src.away
        plug.clear()
        t0 = time.monotonic()
        while not src.away and time.monotonic() - t0 < 5:
            img = src.read()
        assert src.away and img.shape == (64, 96, 3) and img.mean() < 40  # the calm placeholder
        time.sleep(0.5)  # several failed reopen attempts, backing off
        src.read()
        plug.set()
        read_until_back(src)
        assert src.counters()["source_lost"] == 1
    finally:
        src.close()


def test_supervised_source_reopened_while_the_camera_is_away_waits_for_it():
    plug = threading.Event()
    plug.set()
    src = SupervisedSource(lambda: FakeCamera(plug, fps=100), stall_s=0.5, backoff_s=0.05, reconnect_max_s=0.1)
    src.open()
    src.close()  # closing hours
    plug.clear()
    try:
        src.reopen()  # opening time, camera unplugged: no error, a placeholder
        img = src.read()
        assert src.away and img.mean() < 40
        plug.set()
        read_until_back(src)
    finally:
        src.close()


class HangingOpen(FakeCamera):
    """A stream server that accepts and never answers: ``open`` holds until ``answer`` is set (FFmpeg
    holds it for its 10 s timeout); it then works, or fails if the camera is unplugged."""

    def __init__(self, plug, answer: threading.Event, opened: list, **kw) -> None:
        super().__init__(plug, **kw)
        self.answer, self.opened, self.closed = answer, opened, False

    def open(self) -> None:
        self.answer.wait(30)
        super().open()
        self.opened.append(self)

    def close(self) -> None:
        self.closed = True
        super().close()


def test_a_hanging_first_open_is_cut_short_by_ctrl_c_and_its_late_source_closed():
    """Ctrl-C and SIGTERM waited 8-9 s for a stream that accepted and never answered."""
    import _thread

    plug, answer, opened = threading.Event(), threading.Event(), []
    plug.set()
    src = SupervisedSource(lambda: HangingOpen(plug, answer, opened, fps=100))
    threading.Timer(0.2, _thread.interrupt_main).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        src.open()
    assert time.monotonic() - t0 < 1.0
    answer.set()  # the server answers at last: what the abandoned open made is closed, not leaked
    t0 = time.monotonic()
    while not (opened and opened[0].closed) and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    assert opened and opened[0].closed


def test_a_hanging_reconnect_never_holds_the_picture():
    """While a reconnect hangs the placeholder keeps coming at the source's rate (a stuck reopen once
    froze the show and its recording for 10 s more); the reconnect is taken when it answers."""
    plug, answer, opened = threading.Event(), threading.Event(), []
    plug.set()
    answer.set()
    src = SupervisedSource(lambda: HangingOpen(plug, answer, opened, fps=50), stall_s=5.0, backoff_s=0.05)
    src.open()
    try:
        assert src.read() is not None and not src.away
        answer.clear()  # every reopen from now on hangs ...
        plug.clear()  # ... and the camera goes: reads fail
        t0 = time.monotonic()
        while not src.away:
            src.read()
        assert time.monotonic() - t0 < 1.0  # a failed read: lost at once
        times = []
        while len(times) < 25:
            src.read()
            times.append(time.monotonic())
        assert src.away and max(b - a for a, b in zip(times, times[1:])) < 0.3  # 50 fps pacing, never the 30 s hang
        plug.set()
        answer.set()
        read_until_back(src)
    finally:
        src.close()


def test_every_change_is_one_event_with_its_action_fields_and_origin():
    from realtime.core.events import ORIGINS, ControlEvent

    c = Controller(["wave", "ink", "dots"])
    events: list[ControlEvent] = []
    c.subscribe(events.append)
    c.do("next_style", origin="key")
    c.set_strength(0.5, origin="web")
    c.change_strength(0.1, origin="key")
    c.toggle_mirror()  # Python callers that name no surface
    assert [(e.action, e.changed, e.origin) for e in events] == [
        ("next_style", frozenset({"style_index"}), "key"),
        ("set_strength", frozenset({"strength"}), "web"),
        ("change_strength", frozenset({"strength"}), "key"),
        ("toggle_mirror", frozenset({"mirror"}), "api"),
    ]
    assert events[0].state.style_index == 1 and events[2].state.strength == 0.6 and events[3].state.mirror
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[1].to_json() == {"action": "set_strength", "changed": ["strength"], "origin": "web", "seq": 2}
    with pytest.raises(ActionError, match="unknown origin 'telepathy'"):
        c.do("next_style", origin="telepathy")
    with pytest.raises(ActionError, match="unknown origin"):
        c.toggle_pause(origin="visitor")
    assert len(events) == 4 and not c.state.paused  # a refused call is no change and no event
    # Main-thread actions: the event comes when the live loop has done the work, with the caller's origin.
    c.bind_main("snapshot", lambda: ["a.png"])
    c.bind_main("toggle_recording", lambda: "rec.mp4")
    c.bind_main("stop_recording", lambda: 1 / 0)
    fut = c.snapshot(origin="web")
    c.toggle_recording(origin="key")
    c.stop_recording(origin="web")
    assert len(events) == 4
    c.run_main_tasks()
    assert fut.result(0) == ["a.png"]
    assert [(e.action, e.changed, e.origin) for e in events[4:]] == [
        ("snapshot", frozenset(), "web"), ("toggle_recording", frozenset({"recording"}), "key")]  # the failure: none
    assert c.add_style("new", origin="web") == 3
    assert (events[-1].action, events[-1].changed, events[-1].origin) == ("add_style", frozenset({"styles"}), "web")
    c.unsubscribe(events.append)
    c.next_style()
    assert events[-1].action == "add_style"
    assert {"key", "web", "schedule", "auto", "attract", "restore", "show", "api", "osc", "midi"} == ORIGINS


def test_events_from_many_threads_arrive_with_the_states_in_order():
    """Relative changes (next style, toggles) are worked out under the lock: none is lost, and the
    events' sequence numbers put the states in the order they were made."""
    c = Controller([f"s{i}" for i in range(5)])
    seen = []
    lock = threading.Lock()

    def note(event):
        with lock:
            seen.append((event.seq, event.state.style_index))

    c.subscribe(note)

    def hammer():
        for _ in range(300):
            c.do("next_style", origin="web")

    threads = [threading.Thread(target=hammer, name=f"realtime-test-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen.sort()
    assert [s for s, _ in seen] == list(range(1, 1201))
    assert [i for _, i in seen] == [n % 5 for n in range(1, 1201)]


def test_the_style_set_is_appended_whole_and_read_as_snapshots():
    """One set of (name, path, code, thumbnail): an upload joins it whole, readers keep their snapshot."""
    from pathlib import Path

    from realtime.core.styleset import StyleEntry, StyleSet

    s = StyleSet([StyleEntry("a", Path("a.png"), np.zeros(100)), StyleEntry("b", Path("b.png"), np.ones(100))])
    c = Controller(s)
    events = []
    c.subscribe(events.append)
    before = s.snapshot()
    assert c.add_style(StyleEntry("up", Path("up.png"), np.full(100, 2.0)), origin="web") == 2
    assert len(before) == 2 and len(s) == 3 and s[2].code[0] == 2.0  # the old snapshot is untouched
    assert c.style_names == ["a", "b", "up"] and events[-1].changed == frozenset({"styles"})
    assert c.add_style(StyleEntry("up", Path("other.png"), np.zeros(100))) == 2 and len(s) == 3  # one name, one style
    assert len(events) == 1
    s.update(0, thumbnail=b"jpeg")
    assert s[0].thumbnail == b"jpeg" and s[0].code is before[0].code
    c.set_style("up")
    assert c.state.style_index == 2
    with pytest.raises(ValueError):
        StyleSet.of_names(["x"]).give_codes([np.zeros(100), np.zeros(100)])


def test_a_range_open_at_one_end_is_a_clear_error():
    """Issue 27: set_style_index -1 failed formatting its own message (the range has no top) and the
    web answered 500; every one-sided range says what it allows."""
    from realtime.core.controller import ActionError, Param

    c = Controller(["a", "b"])
    with pytest.raises(ActionError, match=r"'index' must be >= 0, got -1"):
        c.set_style_index(-1)
    with pytest.raises(ActionError, match=r"'x' must be <= 5, got 6"):
        Param("x", int, None, 5).check("act", 6)
    with pytest.raises(ActionError, match=r"must be in 0\.\.2, got 3"):
        c.set_strength(3)
    for text in ("\u00b2", "9" * 5000, "\u0661"):  # digits to str.isdigit, not to the index rule
        with pytest.raises(ActionError, match="unknown style"):
            c.set_style(text)
    with pytest.raises(ActionError, match="unexpected argument 'name'"):
        c.do("set_style", name="a")


def test_the_performers_actions_stand_at_their_places_in_the_one_table():
    """core/performer.py's actions (tempo, crossfade, take_style, MIDI learn) are the Controller's
    like any other and keep their places in the table the page, OSC and /api/actions list."""
    from realtime.core.performer import TABLE_PLACES, PerformerActions

    names = list(ACTIONS)
    assert names[names.index("set_cycle") + 1:names.index("set_cycle") + 4] == ["tap_tempo", "set_tempo", "set_crossfade"]
    assert names[-4:] == ["snapshot", "take_style", "midi_learn", "midi_learn_cancel"]
    assert names[0] == "next_style" and len(names) == len(set(names))
    for name, after in TABLE_PLACES.items():
        assert names.index(name) == names.index(after) + 1
        assert getattr(Controller, name) is getattr(PerformerActions, name)


def test_set_crossfade_is_a_checked_action_in_the_state_and_the_status():
    c = Controller(["a", "b"], LiveState(crossfade_s=2.0))
    assert c.status()["crossfade_s"] == 2.0
    events = []
    c.subscribe(events.append)
    assert c.do("set_crossfade", seconds=0.25, origin="osc") == 0.25 and c.state.crossfade_s == 0.25
    assert events[-1].changed == {"crossfade_s"} and events[-1].origin == "osc"
    for bad in (-0.1, 60.5, float("inf"), "slow", True):
        with pytest.raises(ActionError, match="set_crossfade"):
            c.set_crossfade(bad)
    assert c.state.crossfade_s == 0.25 and len(events) == 1
    assert c.crossfade_seconds(4) == 0.25  # beats without a tempo: the seconds
    c.set_tempo(120)
    assert c.crossfade_seconds(4) == 2.0 and c.crossfade_seconds(0) == 0.25 and c.crossfade_seconds(1000) == 60.0
