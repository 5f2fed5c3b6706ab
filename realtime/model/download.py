"""Checked, atomic downloads (models and style images share this).

The file is streamed to a temp file beside the destination and renamed only after its size and
sha256 (when known) match and an optional validator accepts it; anything else is deleted and
reported in one line.  A destination therefore either holds a complete, verified file or nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..io.paths import temp_path_for

log = logging.getLogger(__name__)

USER_AGENT = "realtime-stylize/0.1"
SLOW_WINDOW_S = 30.0  # a download slower than MIN_RATE over this long is stopped
MIN_RATE = 2048  # bytes/s: the 3.5 MB of models in half an hour at worst


def download(
    url: str,
    dest: Path,
    *,
    sha256: Optional[str] = None,
    size: Optional[int] = None,
    max_bytes: int = 200 << 20,
    validate: Optional[Callable[[Path], None]] = None,
    timeout_s: float = 30.0,
    error: type[UserError] = UserError,
    hint: str = "",
    progress: Optional[Callable[[int, Optional[int]], None]] = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically; raise ``error`` (one line) on any failure."""
    limit = size if size is not None else max_bytes
    tmp = temp_path_for(dest)
    hint = f"; {hint}" if hint else ""
    try:
        h = hashlib.sha256()
        done = 0
        try:
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with open(tmp, "wb") as out, urllib.request.urlopen(req, timeout=timeout_s) as resp:
                window_t, window_done = time.monotonic(), 0
                while True:
                    block = resp.read1(1 << 16)  # what has come: a trickle is measured, not waited out
                    if not block:
                        break
                    done += len(block)
                    now = time.monotonic()
                    if now - window_t >= SLOW_WINDOW_S:  # a server that sends a byte a second never times out
                        rate = (done - window_done) / (now - window_t)
                        if rate < MIN_RATE:
                            raise error(f"download of {url} is too slow ({rate:.0f} bytes/s): stopped, try again{hint}")
                        window_t, window_done = now, done
                    if done > limit:
                        raise error(f"download of {url} is larger than the expected {limit} bytes: rejected")
                    out.write(block)
                    h.update(block)
                    if progress:
                        progress(done, size)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
            else:
                reason = getattr(exc, "reason", None) or exc
            raise error(f"cannot download {url} ({reason}){hint}") from None
        if size is not None and done != size:
            raise error(f"download of {url} stopped at {done} of {size} bytes: rejected, try again")
        if sha256 is not None and h.hexdigest() != sha256:
            raise error(
                f"download of {url} has the wrong sha256 ({h.hexdigest()[:12]}..., expected {sha256[:12]}...): rejected"
            )
        if validate is not None:
            validate(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("downloaded %s -> %s (%d bytes)", url, dest, dest.stat().st_size)
    return dest
