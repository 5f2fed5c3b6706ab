"""Temporal smoothing: less flicker on still scenes, no smearing where things move, off means off."""

import numpy as np
from conftest import content_image

from realtime.effects.temporal import TemporalSmoother, shimmer


def noisy_sequence(n=8, seed=0):
    rng = np.random.default_rng(seed)
    base = content_image(128, 96, 3).astype(np.int16)
    return [np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def test_smoothing_reduces_flicker_of_the_real_network(tf_stylizer):
    frames = noisy_sequence()
    code = tf_stylizer.style_code(content_image(256, 256, 40))
    raw = [tf_stylizer.stylize(f[None], code)[0] for f in frames]
    sm = TemporalSmoother(0.8)
    smooth = [sm(f, o) for f, o in zip(frames, raw)]
    f_raw, f_smooth = shimmer(raw), shimmer(smooth)
    assert f_raw > 2.0  # camera-like noise makes the network's output shimmer
    assert f_smooth < 0.5 * f_raw


def test_off_is_the_raw_output_and_motion_is_not_smeared():
    a = np.zeros((32, 32, 3), np.uint8)
    b = np.full((32, 32, 3), 255, np.uint8)  # everything changed: a cut or fast motion
    s_a, s_b = np.full_like(a, 10), np.full_like(a, 200)
    off = TemporalSmoother(0.0)
    assert off(a, s_a) is s_a and off(b, s_b) is s_b
    on = TemporalSmoother(0.9)
    on(a, s_a)
    assert np.abs(on(b, s_b).astype(int) - 200).max() <= 1
    still = TemporalSmoother(0.9)
    still(a, s_a)
    assert np.abs(still(a, s_b).astype(int) - (200 + 0.9 * (10 - 200))).max() <= 1
