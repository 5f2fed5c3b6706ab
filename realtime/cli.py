"""The ``stylize`` command: the entry point, and one-line errors.

Only here do exceptions become exit codes: :class:`~realtime.errors.UserError` -> its message on
one line and exit 2; Ctrl-C -> exit 130 and SIGTERM -> 143 after the running job has finished its
files, within 2 s of the signal (threads inside one network call are not waited for, and the
interpreter's teardown is skipped: :func:`_exit_now`).  The subcommands are
:mod:`realtime.commands`; where the words go, :mod:`realtime.logs`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Optional

from . import logs
from .commands import build_parser
from .errors import UserError


#: The exit statuses of an interrupted command (SIGHUP, Ctrl-C, SIGTERM).
INTERRUPTED = (129, 130, 143)


def entry() -> int:
    """Console-script entry point: ``main`` with native libraries' noise silenced unless -vv.

    Why here, first: TensorFlow reads its log level from the environment once, when it is imported,
    and writes some lines straight to file descriptor 2; both must be set up before any command runs."""
    argv = sys.argv[1:]
    verbose = logs.verbosity(argv)
    logs.quiet_tensorflow(verbose)
    if verbose < 2:
        logs.silence_native_stderr()
    code = main(argv)
    if code in INTERRUPTED:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """Leave at once after Ctrl-C or SIGTERM, skipping the interpreter's teardown.

    Why: by the time ``main`` returns, the job has closed its outputs (a recording finalized, a
    partial file removed) and said so; what is left is tearing the interpreter down, which with
    TensorFlow loaded takes a second (measured on two cores; OpenVINO 0.1-0.2 s), and threads left
    inside one native call (see ``pipeline.video._stop_threads``).  Issue 25: exit within 2 s of the
    signal.  Only the console entry does this; ``main`` itself returns normally (tests call it)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM (service managers, ``kill``): unwinds like Ctrl-C, so every job finishes its files."""

    code, said = 143, "terminated (SIGTERM)"


class HungUp(Terminated):
    """SIGHUP (the terminal closed, an ssh session dropped): the same; it killed a show outright,
    its recording left as a temp file for the next run to recover."""

    code, said = 129, "hung up (SIGHUP)"


_stopping = False  # set by the first SIGTERM/SIGHUP: the files are being finished


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    """The first SIGTERM or SIGHUP unwinds the job; later ones (a hangup's SIGHUP then a service
    manager's SIGTERM) must not cut the finishing of its files short: they are let be."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise HungUp() if signum == getattr(signal, "SIGHUP", None) else Terminated()


def _catch_signals() -> list[tuple[int, object]]:
    """SIGTERM, and SIGHUP where it is not ignored (``nohup`` ignores it: that stays), on the main
    thread; returns what to put back."""
    caught = []
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None or (name == "SIGHUP" and signal.getsignal(sig) is signal.SIG_IGN):
            continue
        caught.append((sig, signal.signal(sig, _on_sigterm)))
    return caught


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    logs.quiet_tensorflow(args.verbose)  # before a command imports TensorFlow (tests call main directly)
    logs.setup_logging(args.verbose, args.log_quiet)
    global _stopping
    _stopping = False
    previous = _catch_signals() if threading.current_thread() is threading.main_thread() else []
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        logs.fail(f"stylize: error: {exc}")
        return exc.exit_code
    except Terminated as exc:
        logs.fail(f"stylize: {exc.said}; finished files were kept, partial ones removed")
        return exc.code
    except KeyboardInterrupt:
        logs.fail("stylize: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`stylize models list | head -1`): stop quietly, like other tools.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except OSError as exc:  # the environment said no (disk full, permissions): one line, not a trace
        if args.verbose:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        logs.fail(f"stylize: error: {exc.strerror or exc}{where}")
        return 2
    except Exception:  # a bug: Python prints it; the log file an unattended show is read by gets it too
        if logs.file_handler is not None:
            logs.file_handler.handle(logging.LogRecord("realtime", logging.ERROR, __file__, 0, "stylize: unexpected error",
                                                   None, sys.exc_info()))
        raise
    finally:
        logs.close_log_file()
        for sig, handler in previous:
            signal.signal(sig, handler)
