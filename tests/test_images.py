"""The one image reader (issue 27): sizes read from the header before anything is decoded, one pixel
limit and one style minimum for every way an image arrives (a file, ``--style``, a config style,
an upload from the control page)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from conftest import ROOT
from fakes import FakeStylizer

from realtime.core.controller import Controller
from realtime.errors import MediaError
from realtime.io.images import MAX_PIXELS, MIN_STYLE_SIDE, decode_image, header_size, read_image, write_image
from realtime.model.styles import Style, StyleBank, StyleCodeCache
from realtime.web.library import StyleLibrary, UploadError


def png_declaring(width: int, height: int) -> bytes:
    """A complete, valid PNG of ``width`` x ``height`` black pixels at 1 bit each: 110 KB for
    30000x30000, which OpenCV decodes into 2.7 GB of BGR (and more on the way)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + the packed bits
    idat = b"".join([z.compress(row * 1000) for _ in range(height // 1000)] + [z.compress(row * (height % 1000)), z.flush()])
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("ext, params", [
    (".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", []), (".webp", []),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), (".tif", []), (".gif", []),
])
def test_the_header_gives_the_size_the_decoder_makes(ext, params):
    img = np.random.default_rng(1).integers(0, 255, (37, 53, 3), np.uint8)
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    data = buf.tobytes()
    assert header_size(data) == (53, 37)
    assert decode_image(data, "x", bgr=True).shape == (37, 53, 3)
    assert header_size(data[:8]) is None  # cut short: unknown, never a guess


def test_a_png_declaring_30000x30000_is_refused_by_every_reader_before_decoding(tmp_path):
    """Issue 27: an 875 KB PNG declaring 30000x30000 grew the show by 5.2 GB before it was refused.
    Every reader (a content or closed-hours image, --style and config styles, a web upload) refuses
    it from the header: the process's peak memory grows by less than 60 MB (OpenCV would take 2.7 GB
    for the pixels alone)."""
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_declaring(30000, 30000))
    assert huge.stat().st_size < 200_000 and header_size(huge.read_bytes()) == (30000, 30000)
    script = f"""
import json, resource, sys
sys.path.insert(0, {str(ROOT / 'tests')!r})
from pathlib import Path
from fakes import FakeStylizer
from realtime.core.controller import Controller
from realtime.errors import MediaError
from realtime.io.images import read_image
from realtime.model.styles import Style, StyleBank, StyleCodeCache
from realtime.web.library import StyleLibrary, UploadError
path = Path({str(huge)!r})
bank = StyleBank(FakeStylizer(), StyleCodeCache(None))
library = StyleLibrary(Controller(["red"]), path.parent / "styles", bank.code_for)
library.max_bytes = 10**7
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
errors = []
for read in (lambda: read_image(path, bgr=True), lambda: bank.code_for(Style("huge", path)),
             lambda: library.add(path.read_bytes())):
    try:
        read()
        errors.append(None)
    except (MediaError, UploadError) as exc:
        errors.append(str(exc))
grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({{"errors": errors, "grown_mb": grown_mb}}))
"""
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    for message in out["errors"]:
        assert message and "30000x30000" in message and f"{MAX_PIXELS / 1e6:.0f} MP" in message, out
    assert out["grown_mb"] < 60, out


def test_opencv_has_the_same_limit_as_a_second_guard(tmp_path):
    """OPENCV_IO_MAX_IMAGE_PIXELS is read when cv2 loads: importing realtime first sets it to
    MAX_PIXELS, so even a decode that skipped the header check could not take gigabytes; the reader
    turns OpenCV's refusal into the one-line error."""
    data = png_declaring(8000, 8000)  # 64 MP: over the limit, and small enough to decode if it were not
    script = f"""
import os, sys, realtime, cv2, numpy as np
from realtime.io.images import MAX_PIXELS
assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == str(MAX_PIXELS)
try:
    cv2.imdecode(np.frombuffer(open({str(tmp_path / 'big.png')!r}, "rb").read(), np.uint8), cv2.IMREAD_COLOR)
    print("decoded")
except cv2.error:
    print("refused")
"""
    (tmp_path / "big.png").write_bytes(data)
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "refused"


def test_a_header_that_lies_is_still_held_to_the_limit(monkeypatch):
    """The decoded size is checked too: the rule holds even if a format's header and its decoder disagree."""
    import realtime.io.images as images

    data = cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))[1].tobytes()
    monkeypatch.setattr(images, "MAX_PIXELS", 500)
    monkeypatch.setattr(images, "header_size", lambda d: (10, 10))
    with pytest.raises(MediaError, match="decodes to 30x20 pixels"):
        decode_image(data, "liar.png")


@pytest.mark.parametrize("w, h", [(1, 1), (15, 400), (400, 15)])
def test_a_style_under_16x16_is_refused_for_every_way_a_style_arrives(tmp_path, w, h):
    """Issue 27: a 1x1 style gave a washed-out grey picture with no word (the page alone refused
    under 16x16).  --style and config styles both become codes through StyleBank.code_for: it
    refuses, also when a code for the file is already cached; the upload says the same."""
    tiny = write_image(tmp_path / "tiny.png", np.full((h, w, 3), 200, np.uint8))
    cache = StyleCodeCache(tmp_path / "codes")
    bank = StyleBank(FakeStylizer(), cache)
    with pytest.raises(MediaError, match=f"is {w}x{h} pixels: a style image needs at least 16x16"):
        bank.code_for(Style("tiny", tiny))
    cache.put(cache.key(tiny.read_bytes(), bank.stylizer.style_model_id), np.zeros(100, np.float32))  # an old run's code
    with pytest.raises(MediaError, match="at least 16x16"):
        bank.code_for(Style("tiny", tiny))
    library = StyleLibrary(Controller(["red"]), tmp_path / "styles", bank.code_for)
    with pytest.raises(UploadError, match="at least 16x16") as err:
        library.add(tiny.read_bytes())
    assert err.value.status == 400 and not (tmp_path / "styles").exists()
    assert MIN_STYLE_SIDE == 16
    ok = write_image(tmp_path / "ok.png", np.full((16, 16, 3), 200, np.uint8))
    assert bank.code_for(Style("ok", ok)).shape == (100,)
    assert read_image(tiny).shape == (h, w, 3)  # content images have no minimum: 1x1 is stylized


def test_unknown_and_empty_images_are_one_line_errors(tmp_path):
    for name, data, needle in [("a.ppm", b"P6\n4 4\n255\n" + b"\x00" * 48, "not a readable image"),
                               ("b.png", b"", "empty"),
                               ("c.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + b"\x00" * 8, "0x0 pixels")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(MediaError, match=needle):
            read_image(tmp_path / name)
