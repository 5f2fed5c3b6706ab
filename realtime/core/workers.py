"""Thread plumbing shared by the live and video pipelines.

The shutdown rules that keep pipelines from hanging (hangs seen in roboflow/supervision#2022 and abhiTronix/vidgear#344):

* every blocking ``put``/``get`` has a timeout and re-checks a shared stop event;
* every worker sends an end-of-stream marker (:data:`EOS`) downstream in ``finally``, so the next
  stage always learns the stream ended, whether it ended well or not;
* a worker's exception is stored and re-raised on the main thread by :func:`join_all`;
* two buffering policies: :class:`FrameQueue` (bounded, blocking: files, nothing dropped) and
  :class:`LatestSlot` (one slot, newest wins: live sources, drops counted).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

log = logging.getLogger(__name__)

POLL_S = 0.05


class _EndOfStream:
    def __repr__(self) -> str:
        return "EOS"


EOS: Any = _EndOfStream()


class Stopped(Exception):
    """Raised inside a worker when the pipeline's stop event is set while it waits."""


class FrameQueue:
    """Bounded blocking queue whose waits give up when ``stop`` is set (nothing is ever dropped)."""

    def __init__(self, maxsize: int, stop: threading.Event) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._stop = stop

    def put(self, item: Any) -> None:
        while True:
            if self._stop.is_set() and item is not EOS:
                raise Stopped()
            try:
                self._q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                if item is EOS and self._stop.is_set():
                    # Consumer may be gone: make room so the marker always lands.
                    try:
                        self._q.get_nowait()
                    except queue.Empty:
                        pass

    def get(self, timeout: Optional[float] = None) -> Any:
        """Next item; raises Stopped once ``stop`` is set (items still queued are not handed out:
        a stopped pipeline must not spend its shutdown encoding 16 queued frames), queue.Empty
        after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._stop.is_set():
                raise Stopped()
            try:
                return self._q.get(timeout=_poll(deadline))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


def _poll(deadline: Optional[float]) -> float:
    """How long one wait may block: the poll interval (to notice ``stop``), or less, to keep ``deadline``."""
    return POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))


class LatestSlot:
    """One-slot buffer: ``put`` replaces an unread item (counted as dropped); ``get`` waits."""

    def __init__(self, stop: threading.Event) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._has = False
        self._stop = stop
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._has:
                if self._item is EOS:
                    return  # nothing follows end of stream
                if item is not EOS:
                    self.dropped += 1  # the unread frame is replaced by a newer one
            self._item, self._has = item, True
            self._cond.notify_all()

    def get(self, timeout: Optional[float] = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._has:
                if self._stop.is_set():
                    raise Stopped()
                if deadline is not None and time.monotonic() >= deadline:
                    raise queue.Empty()
                self._cond.wait(_poll(deadline))
            item = self._item
            if item is not EOS:  # EOS stays so every later get sees it too
                self._item, self._has = None, False
            return item


class Worker(threading.Thread):
    """A pipeline stage: runs ``body()``, always calls ``on_exit()`` (sends EOS), keeps its exception."""

    def __init__(self, name: str, body: Callable[[], Any], on_exit: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=f"realtime-{name}", daemon=True)
        self._body = body
        self._on_exit = on_exit
        self._stop_event = stop
        self.error: Optional[BaseException] = None
        self.result: Any = None  # what ``body`` returned (read after join: a thread's facts as a message)
        self.cpu_s = 0.0  # CPU time this thread used (not its library's own helper threads)

    def run(self) -> None:
        cpu0 = time.thread_time()
        try:
            self.result = self._body()
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc
            self._stop_event.set()
            log.debug("%s failed", self.name, exc_info=True)
        finally:
            self.cpu_s = time.thread_time() - cpu0
            try:
                self._on_exit()
            except Exception:  # noqa: BLE001 - never mask the real error
                log.debug("%s on_exit failed", self.name, exc_info=True)


def call_interruptibly(name: str, fn: Callable[[], Any], between: Optional[Callable[[], None]] = None) -> Any:
    """``fn()`` on a worker thread while the calling thread waits in :data:`POLL_S` steps; its
    result, or its exception re-raised here.  ``between`` (if given) is the calling thread's work
    while it waits, called instead of each step (it should return within about :data:`POLL_S`):
    the live window's start-up card is drawn and its keys read there.

    Why: Python runs signal handlers on the main thread between bytecodes, so one long native call
    there (a large image through the network, loading the network) holds Ctrl-C and SIGTERM until
    it returns, and a window owned by that thread freezes.  Waiting here, the interrupt is raised at
    once; the call, which touches only what it was given, is left to finish on its own while the
    command exits."""
    worker = Worker(name, fn, lambda: None, threading.Event())
    worker.start()
    while worker.is_alive():
        if between is None:
            worker.join(POLL_S)
        else:
            between()
    if worker.error is not None:
        raise worker.error
    return worker.result


def join_until(workers: Sequence[Worker], timeout: float) -> list[Worker]:
    """Join the workers within one shared ``timeout``; returns those still running.

    Why a shared deadline: after Ctrl-C or SIGTERM the stop event is set and every wait gives up
    within :data:`POLL_S`, but a worker inside one native call (a batch through the network, an
    XLA compile) cannot be told to stop: it ends when the call returns.  The caller decides which
    workers it may leave to finish on their own (those that hold nothing it is about to close)."""
    deadline = time.monotonic() + timeout
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
    return [w for w in workers if w.is_alive()]


def join_all(workers: list[Worker], timeout: float = 10.0) -> None:
    """Join every worker, then re-raise the first error (in pipeline order)."""
    errors = []
    for w in workers:
        w.join(timeout)
        if w.is_alive():
            errors.append(RuntimeError(f"{w.name} did not stop within {timeout:.0f} s"))
        elif w.error is not None:
            errors.append(w.error)
    if errors:
        raise errors[0]
