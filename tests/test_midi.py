"""Issue 28, MIDI: the control table (cc, note, program change) driven with ``mido.Message``
objects fed straight into the surface's handler (no hardware), MIDI learn and its bindings across a
restart (the show's state file), no MIDI system as one line, the reader thread, and a virtual port
where the system has one."""

from __future__ import annotations

import json
import logging
import queue
import time

import mido
import pytest
import requests

from realtime.commands import build_parser, live_overrides, load_cfg
from realtime.config import load_config
from realtime.core.controller import ActionError, Controller
from realtime.errors import ConfigError
from realtime.live.memory import ShowMemory
from realtime.live.midi import MidiControl, MidiMapping, load_mapping, open_input, open_midi

STYLES = ["a", "b", "c"]


def cc(control: int, value: int, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=channel)


@pytest.fixture
def shipped() -> MidiMapping:
    return load_mapping("nanokontrol2")


@pytest.fixture
def surface(shipped):
    c = Controller(STYLES)
    events = []
    c.subscribe(events.append)
    return MidiControl(c, shipped), c, events


def test_cc_is_scaled_from_0_127_onto_the_params_range(surface):
    m, c, events = surface
    assert m.handle(cc(0, 127)) == "set_strength" and c.state.strength == 2.0
    m.handle(cc(0, 0))
    assert c.state.strength == 0.0
    m.handle(cc(0, 64))
    assert c.state.strength == pytest.approx(2 * 64 / 127, abs=1e-4)
    m.handle(cc(1, 127, channel=5))  # a plain number in the table: any channel
    assert c.state.stability == 1.0
    m.handle(cc(16, 127))  # the cycle knob: its table range 0..120 s, not the action's 0..86400
    assert c.state.cycle_s == 120.0
    assert {e.origin for e in events} == {"midi"}


def test_notes_and_program_changes_pick_styles(surface):
    m, c, _ = surface
    assert m.handle(mido.Message("note_on", note=37, velocity=90)) == "set_style_index" and c.state.style_index == 1
    assert m.handle(mido.Message("program_change", program=2)) == "set_style_index" and c.state.style_index == 2
    assert m.handle(cc(32, 127)) == "set_style_index" and c.state.style_index == 0  # S button 1
    assert m.handle(mido.Message("program_change", program=99)) is None and c.state.style_index == 0  # no such style


def test_buttons_fire_on_press_and_unknown_messages_are_ignored(surface, caplog):
    m, c, events = surface
    assert m.handle(cc(41, 127)) == "toggle_pause" and c.state.paused
    assert m.handle(cc(41, 0)) is None and c.state.paused  # the release
    assert m.handle(cc(41, 127)) == "toggle_pause" and not c.state.paused
    n = len(events)
    ignored = [mido.Message("note_off", note=36), mido.Message("note_on", note=36, velocity=0), mido.Message("sysex", data=[1, 2]),
               mido.Message("pitchwheel", pitch=100), mido.Message("clock"), cc(99, 127), mido.Message("note_on", note=99),
               "not a message", None, object()]
    assert [m.handle(msg) for msg in ignored] == [None] * len(ignored)
    assert len(events) == n and c.state.style_index == 0


def test_knob_2_sets_the_crossfade_and_a_learned_knob_gets_a_sensible_span(surface):
    m, c, events = surface
    assert m.handle(cc(17, 127)) == "set_crossfade" and c.state.crossfade_s == 10.0  # knob 2: 0..10 s
    m.handle(cc(17, 0))
    assert c.state.crossfade_s == 0.0
    m.learn("set_crossfade")
    m.handle(cc(90, 127))  # learned: the fader span 0..10 s, not the action's 0..60
    assert c.state.crossfade_s == 10.0 and m.learned()["cc"] == {"1:90": "set_crossfade"}


class FakeClock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_learn_times_out_and_can_be_cancelled(shipped, caplog):
    """A learn with nothing moved ends unbound after the timeout (a fader moved later does what
    the table says); ``midi_learn_cancel`` ends it at once, through the main-thread door."""
    clock = FakeClock()
    c = Controller(STYLES, clock=clock)
    m = MidiControl(c, shipped, learn_timeout_s=10.0, clock=clock)
    m.learn("set_stability")
    clock.t += 9.9
    assert m.learning == "set_stability" and m.status()["midi_learning"] == "set_stability"
    clock.t += 0.1
    with caplog.at_level(logging.INFO, logger="realtime"):
        assert m.handle(cc(0, 0)) == "set_strength"  # fader 1 after the timeout: the table's, not learned
    assert m.learning is None and m.status()["midi_learning"] is None and m.learned() == {"cc": {}, "note": {}}
    assert c.state.strength == 0.0 and c.state.stability == 0.0
    assert "nothing moved within 10 s, cancelled" in caplog.text

    fut = c.do("midi_learn", action="toggle_pause", origin="web")
    c.run_main_tasks()
    assert fut.result(0) == "toggle_pause" and m.learning == "toggle_pause"
    events = []
    c.subscribe(events.append)
    fut = c.midi_learn_cancel(origin="web")
    c.run_main_tasks()
    assert fut.result(0) == "toggle_pause" and m.learning is None
    assert events[-1].action == "midi_learn_cancel" and c.status()["midi_learning"] is None  # the page hears it
    assert m.handle(cc(41, 127)) == "toggle_pause" and m.learned() == {"cc": {}, "note": {}}  # the table's play button
    with pytest.raises(ConfigError, match="cannot be put"):
        MidiMapping.parse({"cc": {1: "midi_learn_cancel"}}, "test")


def test_the_reader_thread_ends_a_learn_on_time(shipped):
    """The reader thread gives up a learn on its own (the log line and the status when it happens,
    not at the next message)."""
    cfg = load_config(overrides={"midi.enabled": True})
    c = Controller(STYLES)
    port = FakePort()
    m = open_midi(cfg, c, shipped, opener=lambda name: port)
    try:
        m.learn_timeout_s = 0.05
        m.learn("next_style")
        assert m._learning == "next_style"
        wait_for(lambda: m._learning is None, 2.0)
    finally:
        m.close()


def test_channel_keys_and_the_channel_filter():
    c = Controller(STYLES)
    m = MidiControl(c, MidiMapping.parse({"cc": {"2:7": "set_stability", 7: "set_strength"}, "program": None}, "test"))
    m.handle(cc(7, 127, channel=1))  # channel 2 as people count
    assert c.state.stability == 1.0 and c.state.strength == 1.0
    m.handle(cc(7, 0, channel=0))
    assert c.state.strength == 0.0
    assert m.handle(mido.Message("program_change", program=1)) is None  # program: null
    only = MidiControl(c, MidiMapping.parse({"channel": 10, "note": {36: 2}}, "test"))
    assert only.handle(mido.Message("note_on", note=36, channel=0)) is None
    assert only.handle(mido.Message("note_on", note=36, channel=9)) == "set_style_index" and c.state.style_index == 2


@pytest.mark.parametrize("table, words", [
    ({"cc": {1: "no_such_action"}}, "unknown action"),
    ({"note": {1: "set_strength"}}, "not a note"),
    ({"cc": {1: "quit"}}, "cannot be put"),
    ({"cc": {1: "set_style"}}, "arguments"),
    ({"cc": {200: "next_style"}}, "0..127"),
    ({"cc": {"17:1": "next_style"}}, "channel 1-16"),
    ({"cc": {1: {"action": "set_strength", "high": 5}}}, "range"),
    ({"cc": {1: -1}}, "0 or more"),
    ({"cc": [1, 2]}, "must map"),
    ({"program": "next_style"}, "program"),
    ({"channel": 0}, "1..16"),
    ({"knobs": {}}, "unknown key"),
])
def test_a_bad_table_is_one_config_error(table, words):
    with pytest.raises(ConfigError, match=words):
        MidiMapping.parse(table, "test")


def test_the_config_the_flag_and_the_shipped_table(tmp_path):
    assert not load_config().midi.enabled
    args = build_parser().parse_args(["live", "--midi"])
    cfg = load_cfg(args, live_overrides(args))
    assert cfg.midi.enabled and cfg.midi.port is None and cfg.midi.mapping == "nanokontrol2"
    args = build_parser().parse_args(["live", "--midi", "nanoKONTROL2"])
    assert load_cfg(args, live_overrides(args)).midi.port == "nanoKONTROL2"
    with pytest.raises(ConfigError, match="cannot read"):
        load_mapping(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("cc: {1: [")
    with pytest.raises(ConfigError, match="not a YAML table"):
        load_mapping(str(tmp_path / "bad.yaml"))


def test_learn_binds_the_next_message_and_survives_a_restart(tmp_path, shipped):
    path = tmp_path / "state.json"
    c = Controller(STYLES)
    memory = ShowMemory(c, path)
    m = MidiControl(c, shipped, memory)
    with pytest.raises(ActionError, match="cannot be put"):
        m.learn("quit")
    assert m.learn("set_stability") == "set_stability" and m.status()["midi_learning"] == "set_stability"
    assert m.handle(mido.Message("note_on", note=60)) is None and m.learning == "set_stability"  # a note cannot steer a value
    assert m.handle(cc(77, 127, channel=2)) == "set_stability" and c.state.stability == 1.0 and m.learning is None
    m.learn("2")  # a number: that style
    m.handle(mido.Message("note_on", note=60, channel=2))
    assert c.state.style_index == 2
    m.learn("toggle_pause")
    m.handle(cc(0, 127))  # learned bindings come on top of the table: fader 1 no longer sets the strength
    assert c.state.paused and c.state.strength == 1.0
    memory.close()
    saved = json.loads(path.read_text())["midi"]
    assert saved == {"cc": {"3:77": "set_stability", "1:0": "toggle_pause"}, "note": {"3:60": 2}}

    # A show without MIDI keeps the bindings in the file ...
    c2 = Controller(STYLES)
    plain = ShowMemory(c2, path)
    c2.set_strength(0.5)
    plain.close()
    assert json.loads(path.read_text())["midi"] == saved
    # ... and the next show with MIDI has them back; --fresh does not.
    c3 = Controller(STYLES)
    m3 = MidiControl(c3, shipped, ShowMemory(c3, path))
    m3.handle(cc(77, 0, channel=2))
    m3.handle(mido.Message("note_on", note=60, channel=2))
    assert c3.state.stability == 0.0 and c3.state.style_index == 2
    c4 = Controller(STYLES)
    m4 = MidiControl(c4, shipped, ShowMemory(c4, path, fresh=True))
    assert m4.handle(cc(77, 127, channel=2)) is None and m4.learned() == {"cc": {}, "note": {}}


def test_a_broken_saved_binding_is_one_line(tmp_path, shipped, caplog):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "midi": {"cc": {"1:5": "no_such_action"}}}))
    c = Controller(STYLES)
    with caplog.at_level(logging.WARNING):
        m = MidiControl(c, shipped, ShowMemory(c, path))
    assert m.learned() == {"cc": {}, "note": {}}
    lines = [r.getMessage() for r in caplog.records if "MIDI" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(lines) == 1 and lines[0].startswith("the saved MIDI bindings are ignored: saved MIDI cc 1:5: unknown action 'no_such_action'")


def test_no_midi_system_is_one_line_and_the_show_goes_on(shipped, caplog):
    cfg = load_config(overrides={"midi.enabled": True})
    c = Controller(STYLES)

    def no_alsa(port):
        raise SystemError("MidiInAlsa::initialize: error creating ALSA sequencer client object.\nmore")

    with caplog.at_level(logging.WARNING, logger="realtime"):
        assert open_midi(cfg, c, shipped, opener=no_alsa) is None
        assert open_midi(cfg, c, shipped, opener=lambda port: (_ for _ in ()).throw(OSError("no MIDI input port"))) is None
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["MIDI: MidiInAlsa::initialize: error creating ALSA sequencer client object.: the show goes on without it",
                     "MIDI: no MIDI input port: the show goes on without it"]
    assert open_midi(load_config(), c, None) is None  # not asked for: nothing, not a word
    fut = c.do("midi_learn", action="set_strength")  # the show goes on; learning says there is no MIDI
    c.run_main_tasks()
    with pytest.raises(ActionError, match="not available"):
        fut.result(0)
    c.next_style()
    assert c.state.style_index == 1


def test_the_real_opener_here_fails_in_one_line_or_opens(caplog):
    """This machine's own MIDI system (a container: no /dev/snd/seq): one line, no ALSA noise."""
    try:
        port = open_input(None)
    except Exception as exc:  # noqa: BLE001
        assert "\n" not in str(exc).strip()
    else:
        port.close()


class FakePort:
    name = "fake nanoKONTROL2"

    def __init__(self) -> None:
        self.inbox: queue.Queue = queue.Queue()
        self.closed = False

    def iter_pending(self):
        while True:
            try:
                yield self.inbox.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        self.closed = True


def wait_for(check, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_the_reader_thread_reads_the_port_and_is_joined(shipped):
    cfg = load_config(overrides={"midi.enabled": True})
    c = Controller(STYLES)
    port = FakePort()
    m = open_midi(cfg, c, shipped, opener=lambda name: port)
    assert m is not None and c.status()["midi"] == "fake nanoKONTROL2"
    port.inbox.put(cc(0, 0))
    port.inbox.put(mido.Message("sysex", data=[0]))
    port.inbox.put(mido.Message("note_on", note=38))
    wait_for(lambda: c.state.style_index == 2)
    assert c.state.strength == 0.0
    thread = m._thread
    m.close()
    assert thread is not None and not thread.is_alive() and port.closed
    m.close()  # twice is fine


def test_an_unplugged_port_ends_the_reader_not_the_show(shipped, caplog):
    class Unplugged(FakePort):
        def iter_pending(self):
            raise OSError("device gone")

    c = Controller(STYLES)
    with caplog.at_level(logging.WARNING):
        m = open_midi(load_config(overrides={"midi.enabled": True}), c, shipped, opener=lambda name: Unplugged())
        wait_for(lambda: not m._thread.is_alive())
    m.close()
    assert any("device gone" in r.getMessage() for r in caplog.records)
    c.next_style()


def test_a_virtual_port_round_trip(shipped):
    """Where the system has MIDI (ALSA sequencer, CoreMIDI): a virtual output read by the surface."""
    try:
        out = mido.open_output("realtime-test-midi", virtual=True)
    except Exception as exc:  # noqa: BLE001 - no sequencer here: nothing to test
        pytest.skip(f"no virtual MIDI ports here: {str(exc).splitlines()[0]}")
    try:
        c = Controller(STYLES)
        m = open_midi(load_config(overrides={"midi.enabled": True, "midi.port": "realtime-test-midi"}), c, shipped)
        assert m is not None
        try:
            out.send(cc(0, 0))
            wait_for(lambda: c.state.strength == 0.0)
        finally:
            m.close()
    finally:
        out.close()


def test_learn_from_the_control_page(tmp_path, shipped):
    from liveshow import AUTH, Show

    show = Show(tmp_path)
    try:
        url = f"{show.url}/api/midi/learn"
        r = requests.post(url, json={"action": "set_strength"}, headers=AUTH, timeout=20)
        assert r.status_code == 400 and "not available in this show" in r.json()["error"]  # no --midi
        m = MidiControl(show.controller, shipped)
        r = requests.post(url, json={"action": "set_stability"}, headers=AUTH, timeout=20)
        assert r.status_code == 200 and r.json()["state"]["midi_learning"] == "set_stability"
        assert requests.post(url, json={"action": "quit"}, headers=AUTH, timeout=20).status_code == 400
        assert requests.post(url, json={"action": 3}, headers=AUTH, timeout=20).status_code == 400
        assert requests.post(url, json={"action": "set_stability"}, timeout=20).status_code == 401
        m.handle(cc(9, 127))
        assert show.controller.state.stability == 1.0 and m.learned()["cc"] == {"1:9": "set_stability"}
        page = requests.get(show.url + "/", headers=AUTH, timeout=20).text
        assert 'data-action="set_strength"' in page and "/api/midi/learn" in page
        assert 'data-action="set_crossfade"' in page and '"midi_learn_cancel"' in page and 'href="/osc"' in page
    finally:
        show.stop()
