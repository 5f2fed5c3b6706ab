"""Where the ``stylize`` command's words go: the console, a size-rotated log file, nowhere.

Only the command configures logging handlers (library modules just use ``getLogger(__name__)``):
this module is how, shared by :mod:`realtime.cli` (errors, exit codes) and
:mod:`realtime.commands` (a config's ``log.file``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

from .errors import UserError

#: What keeps native libraries' start-up chatter (TensorFlow's CUDA probing "failed call to cuInit",
#: oneDNN notes, gRPC) out of a user's terminal; read by TensorFlow when it is first imported.
QUIET_NATIVE_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}


def verbosity(argv: list[str]) -> int:
    """How many -v a command line carries (``-v``, ``-vv``, ``--verbose``), before argparse runs."""
    n = 0
    for a in argv:
        if a == "--":
            break
        if a == "--verbose":
            n += 1
        elif a.startswith("-v") and set(a[1:]) == {"v"}:
            n += len(a) - 1
    return n


def quiet_tensorflow(verbose: int = 0) -> None:
    """Set :data:`QUIET_NATIVE_ENV` before anything imports TensorFlow, unless ``-vv`` (debugging,
    where the chatter may help).  A user's own setting wins: only unset variables are filled.

    Why environment variables: TensorFlow reads them once, at import; set later they do nothing.
    (The lines TensorFlow prints before absl's logging is set up ignore them; :func:`silence_native_stderr`
    catches those.)"""
    if verbose >= 2:
        return
    for key, value in QUIET_NATIVE_ENV.items():
        os.environ.setdefault(key, value)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if verbose == 0 else "%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("realtime")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("tensorflow", "absl", "h5py", "libav"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # Libraries that log through the root logger itself (python-osc's module-level logging.warning
    # for a peer's malformed datagram) made logging add its own "WARNING:root:..." handler: theirs
    # go through one of ours instead, warnings and errors only, python-osc's not at all (the OSC
    # surface says once per sender what it could not read).
    top = logging.getLogger()
    for old in [h for h in top.handlers if getattr(h, "realtime_outside", False)]:
        top.removeHandler(old)  # a second main() (tests) writes to today's stderr, not the first's
    if not top.handlers:
        outside = logging.StreamHandler(sys.stderr)
        outside.realtime_outside = True  # type: ignore[attr-defined]
        outside.setLevel(logging.WARNING)
        outside.setFormatter(handler.formatter)
        outside.addFilter(lambda record: "pythonosc" not in record.pathname)
        top.addHandler(outside)


file_handler: Optional[logging.Handler] = None


def log_to_file(log_cfg) -> None:
    """``log.file``: the same lines, with timestamps, in a size-rotated file (installations)."""
    global file_handler
    from logging.handlers import RotatingFileHandler

    from .io.paths import check_output_dir

    if not log_cfg.file or file_handler is not None:
        return
    path = Path(log_cfg.file)
    check_output_dir(path.parent, "log folder")
    try:
        handler = RotatingFileHandler(path, maxBytes=max(1024, int(log_cfg.max_mb * 1024 * 1024)),
                                      backupCount=log_cfg.backups, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot open the log file {path}: {exc.strerror or exc}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("realtime")
    handler.setLevel(root.level)
    root.addHandler(handler)
    file_handler = handler


def close_log_file() -> None:
    global file_handler
    if file_handler is not None:
        logging.getLogger("realtime").removeHandler(file_handler)
        file_handler.close()
        file_handler = None


def fail(message: str) -> None:
    """The one-line error in the log file (what a technician reads) and on standard error, which
    may be gone: after a terminal's hangup a write fails with EIO, and that must not turn the exit
    status of a clean stop into a traceback's 1."""
    if file_handler is not None:
        file_handler.handle(logging.LogRecord("realtime", logging.ERROR, __file__, 0, message, None, None))
    try:
        print(message, file=sys.stderr)
    except (OSError, ValueError):
        pass


def silence_native_stderr() -> None:
    """Send native libraries' direct writes to fd 2 (TF/absl/CUDA probing, XNNPACK, Qt) to /dev/null.

    Python's own stderr (our log lines, errors, tracebacks of bugs) is moved to a duplicate of the
    real stderr first, so nothing of ours is lost.  Skipped with -vv, where the noise may help.
    """
    try:
        real = os.dup(2)
        sys.stderr = os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="replace")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass
