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
from typing import Any, Optional
from urllib.parse import quote

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


def lan_address() -> Optional[str]:
    """This machine's address on the network, for the printed URL when listening on all interfaces
    (from the host name; no packet is sent anywhere)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return None
    for *_, addr in infos:
        ip = addr[0]
        if not ipaddress.ip_address(ip).is_loopback:
            return ip
    return None


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

    def url(self, token: Optional[str] = None) -> str:
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = lan_address() or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/" + (f"?token={quote(token, safe='')}" if token else "")

    def __enter__(self) -> "WebServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def print_access(url: str, qr: bool = True) -> None:
    """The URL to open (with the token), and a QR code of it for a phone's camera."""
    print(f"control page: {url}", flush=True)
    if not qr:
        return
    try:
        import segno

        segno.make(url, error="m").terminal(compact=True)
    except Exception as exc:  # noqa: BLE001 - the URL above is enough
        log.debug("no QR code: %s", exc)
