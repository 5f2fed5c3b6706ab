"""Frame sources behind one interface (:class:`FrameSource`): camera, stream, NDI, file, synthetic.

``open_source`` turns a ``--source`` value into a source; cameras, streams and NDI come wrapped in a
:class:`SupervisedSource` (reconnect with a placeholder) unless supervision is turned off.
"""

from __future__ import annotations

from ...errors import MediaError
from .background import BackgroundSource
from .base import FrameSource
from .camera import CameraSource, StreamSource
from ..media.decode import VideoFile
from .file import FileSource
from .ndi import NdiSource, parse_ndi_spec
from .supervised import SupervisedSource
from .synthetic import SyntheticSource

__all__ = [
    "BackgroundSource", "CameraSource", "FileSource", "FrameSource", "NdiSource", "StreamSource", "SupervisedSource",
    "SyntheticSource",
    "VideoFile", "open_source",
]


RETRY_FIND_S = 1.0  # how long a supervised NDI source's reconnect try looks for it


MAX_CAMERA_INDEX = 9999  # no machine has more; past a C int, OpenCV raised a traceback


def open_source(
    spec: str,
    width: int = 0,
    height: int = 0,
    fps: float = 0.0,
    loop: bool = False,
    keep_pace: bool = False,
    reconnect: bool = False,
    stall_s: float = 5.0,
    reconnect_max_s: float = 10.0,
    ndi_find_s: float = 5.0,
) -> FrameSource:
    """A source from a --source value: index, /dev/videoN, rtsp/http URL, 'ndi:NAME', 'synthetic[:WxH]', or a file.

    ``reconnect``: supervise cameras, streams and NDI (files and the pattern never need it).
    ``ndi_find_s``: how long an NDI source is looked for (and its first frame waited for).
    """
    spec = str(spec).strip()
    if not spec:
        raise MediaError("--source is empty: give a camera number, /dev/videoN, a file, a URL or 'synthetic'")
    if spec.isascii() and spec.isdigit() and int(spec) > MAX_CAMERA_INDEX:  # OpenCV's C int overflowed: a traceback
        raise MediaError(f"camera {spec} does not exist (cameras are numbered 0, 1, 2 ...)")
    if spec == "synthetic" or spec.startswith("synthetic:"):
        w, h = (width or 640), (height or 480)
        if ":" in spec:  # synthetic:WxH
            try:
                w, h = (int(v) for v in spec.split(":", 1)[1].lower().split("x"))
            except ValueError:
                raise MediaError(f"synthetic source size must be WxH, got {spec}") from None
            if not (16 <= w <= 8192 and 16 <= h <= 8192):
                raise MediaError(f"synthetic source size must be 16..8192 pixels a side, got {spec}")
        return SyntheticSource(w, h, fps or 30.0)
    ndi_name = parse_ndi_spec(spec)
    if ndi_name is not None:
        made = [0]

        def make() -> FrameSource:
            # The first open looks for ndi_find_s; a reconnect try for at most a second, so the
            # placeholder keeps coming while the sender is away (the supervisor backs off between tries).
            made[0] += 1
            return NdiSource(ndi_name, find_s=ndi_find_s if made[0] == 1 else min(ndi_find_s, RETRY_FIND_S), lost_s=stall_s)

        name = f"NDI source {ndi_name}"
    elif (spec.isascii() and spec.isdigit()) or spec.startswith("/dev/"):
        device: int | str = int(spec) if spec.isdigit() else spec

        def make() -> FrameSource:
            return CameraSource(device, width, height, fps)

        name = f"camera {spec}"
    elif "://" in spec:
        def make() -> FrameSource:
            return StreamSource(spec)

        name = f"stream {spec}"
    else:
        return FileSource(spec, loop=loop, fps=fps, keep_pace=keep_pace)
    if not reconnect:
        return make()
    return SupervisedSource(make, stall_s=stall_s, reconnect_max_s=reconnect_max_s, name=name)
