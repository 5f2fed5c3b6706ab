"""Open Sound Control (``stylize live --osc [HOST:]PORT``): every controller action over UDP.

Why OSC: lighting desks, DAWs, TouchOSC on a tablet and Max/MSP speak it, and a performer steers the
picture from the same surface as the sound.  The address table is *generated* from the controller's
actions (like the key help), so an action cannot exist without an address, nor an address without
its typed, range-checked arguments:

* ``/realtime/<action> [args...]``: the action's ``Param``s as positional OSC arguments, in order
  (``/realtime/set_strength 0.7``, ``/realtime/set_style waves``); ``/realtime/tempo BPM`` is
  ``set_tempo``.  Numbers are taken as the parameter needs them (a fader's 1.0 is an int 1, a
  button's 1/0 a bool, an int an index for a text parameter), and the controller checks the range.
* ``/realtime/subscribe [port]``: send every change back to the sender's host, at ``port`` (default:
  the port it sent from), as ``/realtime/state/<field> value`` (and ``/realtime/state/style NAME``
  with a style change); the whole state is sent once at once.  ``/realtime/unsubscribe [port]``.
* ``/realtime/status [port]``: replies ``/realtime/status JSON`` (one string: the same object as the
  web page's ``/api/status``).

A bad message (unknown address, wrong type or count, out of range) is logged once per address --
a fader sending 60 bad values a second must not flood the log -- and ignored.  OSC has no password:
the server listens on 127.0.0.1 unless told otherwise.  The server thread (python-osc's
``BlockingOSCUDPServer``: messages handled one at a time, in order) starts and stops with the show.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, Optional

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_server import BlockingOSCUDPServer

from ..core.controller import ACTIONS, ActionError, Controller, LiveState, Param
from ..core.events import OSC, ControlEvent
from ..errors import UserError

log = logging.getLogger(__name__)

PREFIX = "/realtime"
ALIASES = {"tempo": "set_tempo"}  # short addresses the issue asked for: /realtime/tempo BPM
# What a UDP sender (no password) may not choose: files go to the configured folder.
NOT_FROM_OSC = {"start_recording": "path"}
OSC_DOCS = {"start_recording": "start recording (a timestamped file in the configured folder)"}
MAX_SUBSCRIBERS = 32
MAX_WARNED = 256  # distinct bad addresses remembered (a hostile sender must not grow memory)
STATE_FIELDS = tuple(f.name for f in dataclasses.fields(LiveState))


def parse_osc(value: str) -> tuple[str, int]:
    """``--osc`` value: ``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); host 127.0.0.1 by default."""
    text = str(value).strip()
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"--osc must be PORT or HOST:PORT (e.g. 9000 or 0.0.0.0:9000), got {value!r}")
    return host, int(port)


# -- the address table (generated) ----------------------------------------------------------------
def osc_params(name: str) -> tuple[Param, ...]:
    """The arguments an OSC message may give to action ``name`` (those in NOT_FROM_OSC left out)."""
    return tuple(p for p in ACTIONS[name].params if NOT_FROM_OSC.get(name) != p.name)


def _kind_text(p: Param) -> str:
    """``float in 0..2``: what a value of ``p`` must be."""
    kind = {"str": "string", "bool": "bool (T/F or 1/0)", "int": "int", "float": "float"}[p.kind.__name__]
    if p.kind in (int, float) and (p.low is not None or p.high is not None):
        kind += f" {p.range_text()}"
    return kind


def _param_text(p: Param) -> str:
    text = f"{p.name}: {_kind_text(p)}"
    return f"[{text}]" if p.optional else text


def osc_table() -> list[tuple[str, str, str]]:
    """(address, arguments, what it does): every action, then the addresses of the protocol itself.
    ``--osc-help`` prints it and the control page serves it at ``/osc``."""
    rows = []
    for name, spec in ACTIONS.items():
        args = ", ".join(_param_text(p) for p in osc_params(name)) or "-"
        doc = OSC_DOCS.get(name, spec.doc)
        rows.append((f"{PREFIX}/{name}", args, doc))
    for alias, name in ALIASES.items():
        rows.append((f"{PREFIX}/{alias}", ", ".join(_param_text(p) for p in osc_params(name)), f"the same as {PREFIX}/{name}"))
    rows += [
        (f"{PREFIX}/subscribe", "[port: int]", "send every change to the sender's host at port (default: the sender's port), "
                                               f"as {PREFIX}/state/<field> value; the whole state is sent at once"),
        (f"{PREFIX}/unsubscribe", "[port: int]", "stop sending changes there"),
        (f"{PREFIX}/status", "[port: int]", f"reply {PREFIX}/status with the status as one JSON string"),
        (f"{PREFIX}/state/<field>", "value", "sent to subscribers: " + ", ".join(STATE_FIELDS + ("style", "styles"))),
    ]
    return rows


def osc_help_lines() -> list[str]:
    """The table as aligned text lines (``stylize live --osc-help``)."""
    rows = osc_table()
    width = max(len(a) for a, _, _ in rows)
    awidth = min(48, max(len(g) for _, g, _ in rows))
    return [f"{a:<{width}}  {g:<{awidth}}  {d}" for a, g, d in rows]


# -- arguments --------------------------------------------------------------------------------------
def coerce(p: Param, value: Any) -> Any:
    """An OSC argument as the parameter's type; the controller checks the range.  Raises
    :class:`ActionError` for a value of the wrong kind."""
    kind = p.kind
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if number and value in (0, 1):
            return bool(value)
    elif kind is int:
        if number and float(value).is_integer():
            return int(value)
    elif kind is float:
        if number:
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    kind = _kind_text(p)
    raise ActionError(f"'{p.name}' must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {value!r}")


def _json_safe(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


class OscServer:
    """The OSC surface of one show: a UDP socket bound at construction (a port in use is a one-line
    error before the camera opens), a server thread from :meth:`start` to :meth:`stop`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9000) -> None:
        self.controller: Optional[Controller] = None
        dispatcher = Dispatcher(strict_timing=False)  # a bundle timed for later must not hold the thread
        dispatcher.set_default_handler(self._handle, needs_reply_address=True)
        try:
            self._server = BlockingOSCUDPServer((host, port), dispatcher)
        except OSError as exc:
            raise UserError(f"cannot listen for OSC on {host}:{port}: {exc.strerror or exc}") from exc
        self._server.handle_error = self._handle_error  # type: ignore[method-assign]
        self._lock = threading.Lock()
        self._subscribers: set[tuple[str, int]] = set()
        self._warned: set[str] = set()
        self._thread: Optional[threading.Thread] = None
        self.handled = 0  # messages that ran an action (tests, status)
        self.ignored = 0

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    # -- life ------------------------------------------------------------------------------------
    def start(self, controller: Controller) -> None:
        """Serve the show's ``controller`` (once it exists: the port was taken before the camera)."""
        self.controller = controller
        controller.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="realtime-osc", daemon=True)
        self._thread.start()
        host, port = self.address
        log.info("OSC on udp://%s:%d (%s/<action>; stylize live --osc-help lists them)", host, port, PREFIX)

    def stop(self) -> None:
        """Stop serving and wait for the thread (a message being handled finishes first)."""
        if self.controller is not None:
            self.controller.unsubscribe(self._on_event)
        if self._thread is not None:
            self._server.shutdown()  # serve_forever returns within its poll interval
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                log.warning("the OSC thread did not end within 5 s")
            self._thread = None
        self._server.server_close()

    # -- receiving -------------------------------------------------------------------------------
    def _handle(self, client: tuple[str, int], address: str, *args: Any) -> None:
        """One message (on the server thread): never raises, a bad one is logged once per address."""
        if self.controller is None:
            return
        try:
            self._dispatch(client, address, args)
            self.handled += 1
        except ActionError as exc:
            self._ignore(address, str(exc))
        except UserError as exc:  # the show said no (no such style, a backend without mixing)
            self._ignore(address, str(exc))
        except Exception as exc:  # noqa: BLE001 - no message may end the surface
            log.debug("OSC %s failed", address, exc_info=True)
            self._ignore(address, f"failed: {exc}")

    def _dispatch(self, client: tuple[str, int], address: str, args: tuple[Any, ...]) -> None:
        if not address.startswith(PREFIX + "/"):
            raise ActionError("unknown address (the addresses start with /realtime/; stylize live --osc-help lists them)")
        name = address[len(PREFIX) + 1:]
        if name in ("subscribe", "unsubscribe", "status"):
            return self._protocol(name, client, args)
        name = ALIASES.get(name, name)
        if name not in ACTIONS:
            raise ActionError("unknown address (stylize live --osc-help lists them)")
        params = osc_params(name)
        required = sum(not p.optional for p in params)
        if not required <= len(args) <= len(params):
            want = f"{required}" if required == len(params) else f"{required}..{len(params)}"
            raise ActionError(f"takes {want} argument(s) ({', '.join(map(_param_text, params)) or 'none'}), got {len(args)}")
        values = {p.name: coerce(p, v) for p, v in zip(params, args)}
        self.controller.do(name, origin=OSC, **values)  # a main-thread action's Future: the live loop logs a failure

    def _protocol(self, name: str, client: tuple[str, int], args: tuple[Any, ...]) -> None:
        if len(args) > 1:
            raise ActionError(f"takes at most 1 argument (port: int), got {len(args)}")
        port = coerce(Param("port", int), args[0]) if args else client[1]
        if not 1 <= port <= 65535:
            raise ActionError(f"'port' must be in 1..65535, got {port}")
        target = (client[0], port)
        if name == "status":
            status = {k: _json_safe(v) for k, v in self.controller.status().items()}
            self._send(target, f"{PREFIX}/status", [json.dumps(status)])
        elif name == "unsubscribe":
            with self._lock:
                self._subscribers.discard(target)
        else:
            with self._lock:
                if target not in self._subscribers and len(self._subscribers) >= MAX_SUBSCRIBERS:
                    raise ActionError(f"{MAX_SUBSCRIBERS} subscribers already")
                self._subscribers.add(target)
            log.info("OSC: sending changes to %s:%d", *target)
            for msg in self._state_messages(self.controller.state, STATE_FIELDS + ("styles",)):
                self._send(target, *msg)

    def _ignore(self, address: str, why: str) -> None:
        self.ignored += 1
        with self._lock:
            first = address not in self._warned and len(self._warned) < MAX_WARNED
            if first:
                self._warned.add(address)
        if first:
            log.warning("OSC %s ignored: %s (further bad messages to this address are not logged)", address[:80], why)
        else:
            log.debug("OSC %s ignored: %s", address[:80], why)

    def _handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver's hook for an exception outside our handler (python-osc's parsing): a
        debug line, not a traceback on stderr."""
        log.debug("OSC datagram from %s could not be handled", client_address, exc_info=True)

    # -- sending ---------------------------------------------------------------------------------
    def _state_messages(self, state: LiveState, fields: Any) -> Iterator[tuple[str, list[Any]]]:
        for field in sorted(fields):
            if field in STATE_FIELDS:
                value = getattr(state, field)
            elif field == "styles":
                value = len(self.controller.styles)
            else:  # e.g. "recording": a figure of the live loop's status, if it has one
                value = self.controller.status().get(field)
            if isinstance(value, (bool, int, float, str)):
                yield f"{PREFIX}/state/{field}", [value]
            if field == "style_index":
                names = self.controller.style_names
                if 0 <= state.style_index < len(names):
                    yield f"{PREFIX}/state/style", [names[state.style_index]]

    def _on_event(self, event: ControlEvent) -> None:
        """A change (on the thread that made it): one datagram per field to every subscriber.
        UDP sends do not wait for the receiver, so this stays quick."""
        with self._lock:
            targets = list(self._subscribers)
        if not targets:
            return
        messages = list(self._state_messages(event.state, event.changed))
        for target in targets:
            for msg in messages:
                self._send(target, *msg)

    def _send(self, target: tuple[str, int], address: str, args: list[Any]) -> None:
        try:
            self._server.socket.sendto(build_msg(address, args).dgram, target)
        except OSError as exc:  # a host gone from the network: the show goes on
            self._ignore(f"send to {target[0]}:{target[1]}", str(exc))
