"""What the window draws on the picture: figures with their real precision, the help card's
columns aligned, nothing cut off at the edge, the start-up card."""

from __future__ import annotations

import cv2
import numpy as np
from fakes import FakeStylizer, fake_codes

from realtime.config import LiveConfig
from realtime.core.controller import Controller
from realtime.io.sources import SyntheticSource
from realtime.live.app import LiveApp
from realtime.live.keymap import ScriptedKeys, help_rows
from realtime.live.overlay import FONT, card, draw_panel, panel_layout
from realtime.live.pipeline import LivePipeline
from realtime.pipeline.stage import StylizeStage


def _app(**state) -> LiveApp:
    c = Controller(["a", "b"])
    for name, value in state.items():
        getattr(c, f"set_{name}")(value)
    p = LivePipeline(SyntheticSource(64, 48, fps=100), StylizeStage(FakeStylizer(), 32), c, fake_codes(2), 0.0)
    return LiveApp(p, LiveConfig(headless=True), keys=ScriptedKeys({}))


def test_the_overlay_shows_stability_and_strength_with_two_decimals():
    """Issue 27: stability 0.55 (the default, and key t's first step) read "0.6"."""
    lines = _app(stability=0.55, strength=1.05).overlay_lines()
    style_line = next(line for line in lines if line.startswith("style "))
    assert "stability 0.55" in style_line and "strength 1.05" in style_line, style_line


def test_the_help_card_is_two_aligned_columns():
    """Issue 27: padded with spaces in a proportional font, the descriptions started at ragged x."""
    rows = help_rows()
    assert all(len(r) == 2 for r in rows)
    layout = panel_layout((1280, 720), rows)
    lefts = [at[0] for text, at in layout.cells[1::2]]
    assert len(set(lefts)) == 1, lefts  # every description starts at one x
    widest_key = max(cv2.getTextSize(k, FONT, layout.scale, layout.thick)[0][0] for k, _ in rows)
    assert lefts[0] >= layout.cells[0][1][0] + widest_key + 8  # past the widest key, with a gap
    # Drawn: the ink of the description column starts at the same x (within a glyph's side bearing).
    img = np.zeros((720, 1280, 3), np.uint8)
    draw_panel(img, rows)
    ink_starts = []
    for text, (x, y) in layout.cells[1::2]:
        band = img[y - 10: y + 2, lefts[0] - 4: lefts[0] + 60].max(axis=(0, 2))
        ink_starts.append(int(np.argmax(band > 128)))
    assert max(ink_starts) - min(ink_starts) <= 3, ink_starts


def test_a_panel_never_runs_off_a_small_picture():
    """The overlay on a 320x240 camera was cut off at the right edge: the font shrinks until the
    widest line fits (down to a readable minimum)."""
    lines = _app(stability=0.55).overlay_lines() + ["size 288 for 30 fps: holding (network 31 ms, target 33 ms)"]
    for size in ((320, 240), (640, 360), (1024, 768)):
        layout = panel_layout(size, lines)
        assert layout.box[2] <= size[0]
        for text, (x, y) in layout.cells:
            right = x + cv2.getTextSize(text, FONT, layout.scale, layout.thick)[0][0]
            assert right <= layout.box[2], (size, text, right, layout.box)


def test_kiosk_help_has_the_exit_keys_and_no_quit_key():
    rows = dict(help_rows(kiosk=True, exit_keys="qqq"))
    assert "q / Esc" not in rows and "f" not in rows
    assert rows["qqq within 2 s"] == "end the show"
    assert "q / Esc" in dict(help_rows())


def test_the_start_up_card_is_dark_with_readable_text():
    img = card((640, 360), "loading the network...", ["openvino on CPU", "3 s"])
    assert img.shape == (360, 640, 3) and img.dtype == np.uint8
    bright = img.max(axis=2) > 200
    assert bright.sum() > 500  # the title is there
    ys, xs = np.nonzero(bright)
    assert 8 <= xs.min() and xs.max() < 632 and 0 < ys.min() and ys.max() < 360  # inside, centred
    assert abs((xs.min() + xs.max()) / 2 - 320) < 40
    assert np.median(img) < 40  # dark
    tiny = card((160, 90), "loading the network...", ["a long line that would not fit at this size"])
    assert tiny.shape == (90, 160, 3)


def _fake_window(monkeypatch, rect=(0, 0, 1024, 768), screen=(1024, 768)):
    """A WindowOutput with OpenCV's and X11's calls replaced: what imshow was given is kept."""
    import realtime.io.sinks.window as window
    from realtime.io.sinks.x11 import X11Kiosk

    shown = []
    monkeypatch.setenv("DISPLAY", ":99")
    for name in ("namedWindow", "resizeWindow", "setWindowProperty", "destroyAllWindows"):
        monkeypatch.setattr(window.cv2, name, lambda *a: None)
    monkeypatch.setattr(window.cv2, "waitKey", lambda *a: -1)
    monkeypatch.setattr(window.cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(window.cv2, "getWindowImageRect", lambda *a: rect)
    monkeypatch.setattr(window.cv2, "imshow", lambda title, img: shown.append(img))
    monkeypatch.setattr(X11Kiosk, "screen_size", lambda self: screen)
    monkeypatch.setattr(X11Kiosk, "apply", lambda self, cover=True: True)
    return window, shown


def test_the_kiosk_overlay_is_drawn_at_the_screen_size(monkeypatch):
    """Issue 27: the overlay was drawn on the camera's 320x240 picture, then scaled to the screen
    (and cut off).  Now the picture is scaled first, and the overlay drawn on the screen-sized one."""
    window, shown = _fake_window(monkeypatch)
    app = _app(stability=0.55)
    got = []

    def decorate(picture):
        got.append(picture.shape)
        return app._decorate(picture)

    w = window.WindowOutput(fullscreen=True, decorate=decorate, kiosk=True)
    frame = np.full((240, 320, 3), 128, np.uint8)
    w.write(frame, 0.0)
    w.write(frame, 0.1)
    assert got == [(768, 1024, 3)] * 2 and shown[-1].shape == (768, 1024, 3)
    lines = app.overlay_lines()
    layout = panel_layout((1024, 768), lines)
    assert layout.box[2] < 1024 and layout.scale > 0.6  # whole, and large enough to read across a room
    assert (shown[-1][400:, 600:] == 128).all()  # 4:3 into 4:3: the picture fills the screen, no bars
    w.close()


def test_fullscreen_without_x11_draws_at_the_windows_image_area(monkeypatch):
    """Where X11 cannot tell the screen (Wayland, macOS), the fullscreen window's own image area is
    the size; a plain window shows the picture at its own size (the window is sized to it)."""
    from realtime.io.sinks.x11 import X11Kiosk

    window, shown = _fake_window(monkeypatch, rect=(0, 0, 800, 300))
    monkeypatch.setattr(X11Kiosk, "screen_size", lambda self: ())
    w = window.WindowOutput(fullscreen=True, decorate=lambda p: p)
    frame = np.full((240, 320, 3), 200, np.uint8)
    w.write(frame, 0.0)  # the first frame: the window's size is not known yet
    w.write(frame, 0.1)
    assert shown[0].shape == (240, 320, 3) and shown[1].shape == (300, 800, 3)
    assert shown[1][:, :10].max() == 0 and shown[1][:, 400].min() == 200  # bars left and right
    w.close()
    plain = window.WindowOutput(decorate=lambda p: p)
    plain.write(frame, 0.0)
    plain.write(frame, 0.1)
    assert shown[-1].shape == (240, 320, 3)
    plain.close()


def test_fit_keeps_the_aspect_with_black_bars():
    from realtime.io.sinks.window import fit

    pic = np.full((720, 1280, 3), 255, np.uint8)
    out = fit(pic, (1024, 768))
    assert out.shape == (768, 1024, 3)
    assert out[:90].max() == 0 and out[-90:].max() == 0 and out[100:668].min() == 255
    assert fit(pic, None) is pic and fit(pic, (1281, 719)) is pic
