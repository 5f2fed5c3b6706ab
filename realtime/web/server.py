"""The web server's life next to the show: a uvicorn thread, started and stopped with it.

Why a thread (not a process): the page steers the live controller and reads the preview in this
process, with no serialisation between them.  The socket is bound here, before the thread starts,
so a port in use is a one-line error before the camera and the network are opened; uvicorn then
serves on it in its own event loop (it installs no signal handlers off the main thread, so Ctrl-C
and SIGTERM still reach the show, which stops the server on its way out).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, Optional
from urllib.parse import quote, urlsplit

from ..errors import UserError

log = logging.getLogger(__name__)


def parse_web(value: str) -> tuple[str, int]:
    """``--web`` value: ``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); host 127.0.0.1 by default."""
    text = str(value).strip()
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"--web must be PORT or HOST:PORT (e.g. 8080 or 0.0.0.0:8080), got {value!r}")
    return host, int(port)


def pick_token(configured: Optional[str]) -> str:
    """The configured token, else ``$REALTIME_WEB_TOKEN``, else a random one for this run."""
    token = configured or os.environ.get("REALTIME_WEB_TOKEN") or secrets.token_urlsafe(16)
    if len(token) < 8:
        raise UserError("the web token must be at least 8 characters (web.token or REALTIME_WEB_TOKEN)")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: Addresses whose route the kernel is asked for (a UDP ``connect`` sends no packet): one through the
#: default route (TEST-NET-3, never a real host), then the private ranges, for a LAN with no default route.
ROUTE_PROBES = ("203.0.113.1", "10.254.254.254", "192.168.254.254", "172.31.254.254")
SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def _usable(ip: str) -> bool:
    """An address another machine could reach: not loopback, link-local (169.254/16) or unspecified."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (a.is_loopback or a.is_link_local or a.is_unspecified or a.is_multicast)


def _outbound_addresses() -> list[str]:
    """The address this machine would send from, per probed route: the interface a phone on the
    same network sees.  ``connect`` on a UDP socket only picks the route; nothing is sent."""
    found = []
    for target in ROUTE_PROBES:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                found.append(s.getsockname()[0])
        except OSError:  # no route that way
            continue
    return found


def _interface_addresses() -> list[str]:
    """Every network interface's own IPv4 address (Linux ioctl; elsewhere none), in interface order."""
    try:
        import fcntl
        import struct

        names = [name for _, name in socket.if_nameindex()]
    except (ImportError, OSError, AttributeError):
        return []
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in names:
            try:
                packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:  # an interface with no IPv4 address
                continue
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def _hostname_addresses() -> list[str]:
    """What the host name resolves to (on Debian usually 127.0.1.1 only: hence the other sources)."""
    found = []
    for name in {socket.gethostname(), socket.getfqdn()}:
        try:
            found += [addr[0] for *_, addr in socket.getaddrinfo(name, None, socket.AF_INET)]
        except OSError:
            continue
    return found


def lan_addresses() -> list[str]:
    """This machine's addresses on its networks, for the printed URL when listening on all
    interfaces: the outbound interface's first (the one a phone on the same Wi-Fi most likely
    shares), then every other interface's, then the host name's; loopback and link-local left out.
    Empty when the machine has no network (then only this machine can open the page)."""
    out: list[str] = []
    for source in (_outbound_addresses, _interface_addresses, _hostname_addresses):
        try:
            found = source()
        except OSError:
            continue
        out += [ip for ip in found if _usable(ip) and ip not in out]
    return out


class WebServer:
    """uvicorn serving an app on ``host:port`` in a thread named ``realtime-web``; the port is
    bound at construction (fail fast), the app is given at :meth:`start`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise UserError(f"cannot listen on {host}:{port} for the control page: {exc.strerror or exc}") from None
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._server: Any = None
        self._thread = threading.Thread(target=self._run, name="realtime-web", daemon=True)
        self.error: Optional[BaseException] = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001 - reported by stop(); the show goes on
            self.error = exc
            log.error("control page server stopped: %s: %s", type(exc).__name__, exc)

    def start(self, app: Any, timeout_s: float = 10.0) -> "WebServer":
        import uvicorn

        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=2, timeout_keep_alive=5)
        self._server = uvicorn.Server(config)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()
            raise UserError(f"the control page server did not start on {self.host}:{self.port}")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(5)
        try:
            self._sock.close()
        except OSError:
            pass

    @property
    def everywhere(self) -> bool:
        """Listening on every interface (``0.0.0.0`` or ``::``)."""
        return self.host in ("0.0.0.0", "::", "")

    def urls(self, token: Optional[str] = None) -> list[str]:
        """The addresses to open the page at, best first: on every interface, this machine's LAN
        addresses (:func:`lan_addresses`), loopback only when it has none; else the host given."""
        hosts = (lan_addresses() or ["127.0.0.1"]) if self.everywhere else [self.host]
        query = f"?token={quote(token, safe='')}" if token else ""
        return [f"http://{f'[{h}]' if ':' in h else h}:{self.port}/{query}" for h in hosts]

    def url(self, token: Optional[str] = None) -> str:
        """The first of :meth:`urls`: the one to print first and to QR-encode."""
        return self.urls(token)[0]

    def __enter__(self) -> "WebServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def print_access(urls: str | Sequence[str], qr: Optional[bool] = None, everywhere: bool = False) -> None:
    """The URL to open (with the token), any other addresses of this machine, and a QR code of the
    first for a phone's camera.  ``qr`` None: a QR code unless the first URL is loopback (a phone
    cannot open that).  ``everywhere``: the server listens on every interface, so a loopback URL
    means this machine has no network address, which is said."""
    urls = [urls] if isinstance(urls, str) else list(urls)
    first = urls[0]
    loopback = is_loopback(urlsplit(first).hostname or "")
    print(f"control page: {first}", flush=True)
    for other in urls[1:]:
        print(f"          or: {other}", flush=True)
    if loopback and everywhere:
        print("(no network address found on this machine: only a browser on this machine can open the page;"
              " connect it to the network phones are on and start again)", flush=True)
    if not (qr if qr is not None else not loopback):
        return
    try:
        import segno

        segno.make(first, error="m").terminal(compact=True)
    except Exception as exc:  # noqa: BLE001 - the URL above is enough
        log.debug("no QR code: %s", exc)
