"""Procedural pictures: the styles we ship, a moving test pattern, and media for tests.

Why: tests and demos must work with no camera and no downloaded media, and the project ships a few
styles it made itself (no licence questions).  Everything here is deterministic.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def mosaic(size: int = 512, cells: int = 90, seed: int = 1) -> np.ndarray:
    """Stained-glass cells with dark leading (RGB uint8)."""
    rng = _rng(seed)
    pts = rng.uniform(0, size, (cells, 2)).astype(np.float32)
    palette = np.array([[220, 60, 40], [240, 190, 40], [40, 90, 200], [30, 150, 90], [240, 240, 220], [120, 40, 150]], np.float32)
    colors = palette[rng.integers(0, len(palette), cells)] * rng.uniform(0.7, 1.1, (cells, 1))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d = (xx[..., None] - pts[:, 0]) ** 2 + (yy[..., None] - pts[:, 1]) ** 2
    order = np.argsort(d, axis=-1)
    nearest, second = order[..., 0], order[..., 1]
    d1 = np.take_along_axis(d, nearest[..., None], -1)[..., 0]
    d2 = np.take_along_axis(d, second[..., None], -1)[..., 0]
    img = colors[nearest]
    edge = (np.sqrt(d2) - np.sqrt(d1)) < 3.0
    img[edge] = 25
    return np.clip(img, 0, 255).astype(np.uint8)


def waves(size: int = 512, seed: int = 2) -> np.ndarray:
    """Bold flowing bands of colour, like a poster print."""
    rng = _rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    f = np.sin(12 * yy + 3 * np.sin(6 * xx + 1.3)) + 0.5 * np.sin(25 * xx * yy + rng.uniform(0, 6))
    bands = np.floor((f + 1.5) * 3).astype(int) % 5
    palette = np.array([[15, 30, 80], [40, 110, 190], [240, 230, 200], [230, 120, 40], [160, 30, 40]], np.uint8)
    return palette[bands]


def dots(size: int = 512, seed: int = 3) -> np.ndarray:
    """Pop-art halftone dots on a two-tone background."""
    rng = _rng(seed)
    img = np.zeros((size, size, 3), np.uint8)
    img[: size // 2] = (250, 220, 30)
    img[size // 2 :] = (230, 40, 120)
    step = 24
    for y in range(step // 2, size, step):
        for x in range(step // 2, size, step):
            r = int(step * 0.45 * (0.3 + 0.7 * (0.5 + 0.5 * math.sin(x / 40 + y / 55))))
            color = (20, 20, 60) if (x // step + y // step) % 2 else (250, 250, 250)
            cv2.circle(img, (x, y), max(r, 2), color, -1, cv2.LINE_AA)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def ink(size: int = 512, strokes: int = 900, seed: int = 4) -> np.ndarray:
    """Calligraphic strokes following a flow field on warm paper."""
    rng = _rng(seed)
    img = np.full((size, size, 3), (236, 222, 196), np.uint8)
    for _ in range(strokes):
        x, y = rng.uniform(0, size, 2)
        color = (20, 20, 30) if rng.random() < 0.8 else (170, 40, 30)
        width = int(rng.integers(1, 5))
        for _ in range(int(rng.integers(8, 30))):
            angle = math.sin(x / 60.0) * 2.0 + math.cos(y / 45.0) * 2.0
            nx, ny = x + 4 * math.cos(angle), y + 4 * math.sin(angle)
            cv2.line(img, (int(x), int(y)), (int(nx), int(ny)), color, width, cv2.LINE_AA)
            x, y = nx, ny
    return img


SHIPPED_STYLES = {"mosaic": mosaic, "waves": waves, "dots": dots, "ink": ink}


def pattern_frame(index: int, width: int, height: int, fps: float = 30.0) -> np.ndarray:
    """A moving test scene (RGB uint8): gradient sky, a sliding box, a bouncing ball, a frame counter."""
    t = index / fps
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    r = (80 + 120 * yy + 0 * xx).astype(np.float32)
    g = (120 + 80 * xx + 0 * yy).astype(np.float32)
    b = (200 - 100 * yy + 30 * np.sin(6 * xx + t)).astype(np.float32)
    img = np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)
    bw = max(8, width // 5)
    x0 = int((0.5 + 0.4 * math.sin(t * 1.3)) * (width - bw))
    cv2.rectangle(img, (x0, height // 2), (x0 + bw, height // 2 + bw // 2), (200, 60, 40), -1)
    cx = int((0.5 + 0.4 * math.cos(t * 2.1)) * width)
    cy = int((0.5 + 0.35 * math.sin(t * 1.7)) * height)
    cv2.circle(img, (cx, cy), max(4, min(width, height) // 8), (250, 220, 60), -1, cv2.LINE_AA)
    cv2.putText(img, str(index), (8, max(16, height // 8)), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, height / 400), (255, 255, 255), 2)
    return img


def write_clip(
    path,
    frames: int = 30,
    width: int = 160,
    height: int = 120,
    fps: int = 30,
    audio: bool = True,
    vfr: bool = False,
    codec: str = "libx264",
    rotation: int = 0,
    gop: int = 0,
    audio_codec: str = "aac",
) -> None:
    """Write a test clip with PyAV: the moving pattern, optional sine-tone audio (AAC, or
    ``audio_codec="pcm_s16le"``: raw PCM, which MP4 players do not take), optional variable frame
    rate (alternating 1/fps and 2/fps gaps), rotation metadata and a keyframe every ``gop`` frames
    (0 = the encoder's choice)."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv444p" if (width % 2 or height % 2) else "yuv420p"
        tb = Fraction(1, fps * 2)
        vs.codec_context.time_base = tb
        vs.time_base = tb
        if rotation:
            vs.set_display_rotation(rotation)
        if gop:
            vs.codec_context.gop_size = gop
            vs.options = {"keyint_min": str(gop), "sc_threshold": "0"}
        aus = None
        if audio:
            aus = out.add_stream(audio_codec, rate=48000)
            aus.layout = "mono"
        pts = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, width, height, fps), format="rgb24")
            frame.pts, frame.time_base = pts, tb
            for p in vs.encode(frame):
                out.mux(p)
            pts += 2 if not vfr else (2 if i % 2 == 0 else 4)
        for p in vs.encode(None):
            out.mux(p)
        if aus is not None:
            duration = pts / (fps * 2)
            n = int(duration * 48000)
            t = np.arange(n) / 48000.0
            tone = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = tone[start : start + 1024]
                if audio_codec == "pcm_s16le":
                    af = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
                else:
                    af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                for p in aus.encode(af):
                    out.mux(p)
            for p in aus.encode(None):
                out.mux(p)
