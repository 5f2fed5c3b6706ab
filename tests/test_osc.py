"""OSC (issue 28): real UDP on 127.0.0.1 with python-osc's client, a small OSC server of the test's
own for the replies, a controller with names only (no camera, no network)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from realtime.commands import build_parser
from realtime.control.osc import OscServer, osc_table, parse_osc
from realtime.core.controller import ACTIONS, Controller
from realtime.errors import UserError


class Replies:
    """The test's own OSC server: every message it gets, in a queue."""

    def __init__(self) -> None:
        self.got: queue.Queue[tuple[str, tuple]] = queue.Queue()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.got.put((address, args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-osc-replies")
        self.thread.start()

    def until(self, address: str, timeout_s: float = 5.0) -> tuple:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                got, args = self.got.get(timeout=0.1)
            except queue.Empty:
                continue
            if got == address:
                return args
        raise AssertionError(f"no {address} within {timeout_s} s")

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()


@pytest.fixture
def osc():
    controller = Controller(["red", "blue", "green"])
    server = OscServer("127.0.0.1", 0)
    server.start(controller)
    replies = Replies()
    client = SimpleUDPClient("127.0.0.1", server.port)
    yield controller, server, client, replies
    replies.close()
    server.stop()


def wait_for(check, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_set_style_strength_and_tempo(osc):
    controller, server, client, _ = osc
    client.send_message("/realtime/set_style", "blue")
    wait_for(lambda: controller.state.style_index == 1)
    client.send_message("/realtime/set_style", 2)  # an int for a text parameter: an index
    wait_for(lambda: controller.state.style_index == 2)
    client.send_message("/realtime/set_strength", 0.25)
    wait_for(lambda: controller.state.strength == 0.25)
    client.send_message("/realtime/set_strength", 1)  # an int fader value for a float
    wait_for(lambda: controller.state.strength == 1.0)
    client.send_message("/realtime/set_style_index", 0.0)  # TouchOSC sends floats: an integral one is an int
    client.send_message("/realtime/set_paused", 1)  # a button's 1
    client.send_message("/realtime/tempo", 128.0)
    client.send_message("/realtime/next_style", [])
    client.send_message("/realtime/set_crossfade", 2)  # seconds, an int from a fader
    client.send_message("/realtime/set_crossfade", 99.0)  # out of range: ignored, logged
    wait_for(lambda: controller.state.bpm == 128.0 and controller.state.paused and controller.state.style_index == 1)
    wait_for(lambda: controller.state.crossfade_s == 2.0 and server.ignored == 1)


def test_subscribe_gets_the_state_then_every_change_and_status_replies(osc):
    controller, server, client, replies = osc
    client.send_message("/realtime/subscribe", replies.port)
    first = {}  # the whole state at once, one message per field ("styles" last)
    while "/realtime/state/styles" not in first:
        address, args = replies.got.get(timeout=5)
        first[address] = args
    assert first["/realtime/state/style"] == ("red",) and first["/realtime/state/strength"] == (1.0,)
    assert first["/realtime/state/paused"] == (False,) and first["/realtime/state/styles"] == (3,)
    controller.set_strength(0.5, origin="web")  # a change from elsewhere reaches the OSC client
    assert replies.until("/realtime/state/strength") == (0.5,)
    client.send_message("/realtime/set_style", "green")
    assert replies.until("/realtime/state/style") == ("green",)
    client.send_message("/realtime/status", replies.port)
    status = json.loads(replies.until("/realtime/status")[0])
    assert status["style"] == "green" and status["strength"] == 0.5 and status["styles"] == 3
    client.send_message("/realtime/unsubscribe", replies.port)
    wait_for(lambda: server.handled >= 4)  # subscribe, set_style, status, unsubscribe
    controller.set_strength(0.75)
    time.sleep(0.3)
    seen = []
    while not replies.got.empty():
        seen.append(replies.got.get())
    assert ("/realtime/state/strength", (0.75,)) not in seen


def test_bad_messages_are_ignored_with_one_log_line_per_address(osc, caplog):
    controller, server, client, _ = osc
    caplog.set_level(logging.DEBUG, logger="realtime.control.osc")
    before = controller.state
    bad = [
        ("/realtime/set_strength", "loud"), ("/realtime/set_strength", 7.0), ("/realtime/set_strength", []),  # type, range, count
        ("/realtime/nonsense", 1), ("/realtime/nonsense", 2), ("/elsewhere", 1.0),  # unknown addresses
        ("/realtime/set_style", "no such style"), ("/realtime/set_style_index", 1.5), ("/realtime/set_style_index", 99),
        ("/realtime/set_paused", 0.5), ("/realtime/tempo", 5.0), ("/realtime/subscribe", 70000),
        ("/realtime/start_recording", "/etc/passwd"),  # a path is not the sender's to choose
    ]
    for address, value in bad:
        client.send_message(address, value)
    wait_for(lambda: server.ignored == len(bad))
    client._sock.sendto(b"not osc at all", ("127.0.0.1", server.port))
    client.send_message("/realtime/set_strength", 0.5)  # still serving
    wait_for(lambda: controller.state.strength == 0.5)
    assert controller.state == type(before)(**{**before.__dict__, "strength": 0.5})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    addresses = sorted({a for a, _ in bad})
    assert len(warnings) == len(addresses), warnings
    for a in addresses:
        assert sum(w.startswith(f"OSC {a} ignored") for w in warnings) == 1, a
    assert any(w.startswith("OSC /realtime/set_strength ignored: 'value' must be a float in 0..2, got 'loud'") for w in warnings)


def test_the_server_thread_is_gone_after_stop():
    server = OscServer("127.0.0.1", 0)
    server.start(Controller(["a"]))
    assert any(t.name == "realtime-osc" for t in threading.enumerate())
    server.stop()
    assert not any(t.name == "realtime-osc" for t in threading.enumerate())
    with pytest.raises(UserError, match="cannot listen for OSC"):  # a port in use: one line
        with BlockingOSCUDPServer(("127.0.0.1", 0), Dispatcher()) as taken:
            OscServer("127.0.0.1", taken.server_address[1])


def test_osc_help_lists_every_action_and_exits_0(capsys):
    args = build_parser().parse_args(["live", "--osc-help"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for name in ACTIONS:
        assert f"/realtime/{name} " in out
    for extra in ("/realtime/tempo", "/realtime/subscribe", "/realtime/status", "/realtime/state/"):
        assert extra in out
    assert "value: float in 0..2" in out  # types and ranges from the Params
    assert "/realtime/set_crossfade" in out and "seconds: float in 0..60" in out and "/realtime/midi_learn_cancel" in out
    assert len(osc_table()) == len(ACTIONS) + 5


def test_osc_flag_and_config():
    from realtime.commands import live_overrides
    from realtime.config import load_config

    args = build_parser().parse_args(["live", "--osc", "0.0.0.0:9100"])
    cfg = load_config(overrides=live_overrides(args))
    assert (cfg.osc.enabled, cfg.osc.host, cfg.osc.port) == (True, "0.0.0.0", 9100)
    assert parse_osc("9000") == ("127.0.0.1", 9000)
    with pytest.raises(UserError):
        parse_osc("nine")
    assert load_config().osc.enabled is False and load_config().osc.host == "127.0.0.1"


def test_the_control_page_serves_the_table_at_osc():
    from realtime.web.app import build_app, osc_page

    page = osc_page()
    for address, _, _ in osc_table():
        assert f"<code>{address.replace('<', '&lt;').replace('>', '&gt;')}</code>" in page
    app = build_app(Controller(["a"]), "test-token-0123456789")
    assert any(getattr(r, "path", None) == "/osc" for r in app.routes)


def test_osc_page_over_http_needs_the_token(tmp_path):
    import requests
    from liveshow import AUTH, Show

    show = Show(tmp_path)
    try:
        assert requests.get(show.url + "/osc", timeout=10).status_code == 401
        r = requests.get(show.url + "/osc", headers=AUTH, timeout=10)
        assert r.status_code == 200 and "/realtime/set_strength" in r.text and "float in 0..2" in r.text
    finally:
        show.stop()
