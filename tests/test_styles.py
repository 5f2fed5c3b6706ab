import numpy as np
import pytest
from conftest import content_image

from realtime.errors import MediaError, UserError
from realtime.io.images import write_image
from realtime.model.styles import (
    StyleBank,
    StyleCodeCache,
    apply_strength,
    blend_codes,
    build_code,
    find_style_images,
    parse_blend,
)


class CountingStylizer:
    """A stand-in that counts style-network runs (the cache is what is under test)."""

    name = "count"
    mixable_codes = True

    def __init__(self, model_id="m1"):
        self.calls = 0
        self.style_model_id = model_id

    def style_code(self, rgb):
        self.calls += 1
        return np.full(100, rgb.mean() / 255.0, np.float32)


def one_style(tmp_path):
    """A style image, a code cache and a stylizer that counts its calls."""
    style = tmp_path / "s.png"
    write_image(style, content_image(64, 64, 1))
    return style, StyleCodeCache(tmp_path / "codes"), CountingStylizer(), find_style_images(style)[0]


def test_codes_are_cached_by_content_and_model(tmp_path):
    style, cache, st, s = one_style(tmp_path)
    c1 = StyleBank(st, cache).code_for(s)
    c2 = StyleBank(st, cache).code_for(s)
    assert st.calls == 1 and np.array_equal(c1, c2)
    write_image(style, content_image(64, 64, 30))  # changed image -> recomputed
    StyleBank(st, cache).code_for(s)
    assert st.calls == 2
    other = CountingStylizer("m2")  # changed model -> recomputed
    StyleBank(other, cache).code_for(s)
    assert other.calls == 1


def test_a_damaged_cache_entry_is_computed_again(tmp_path, caplog):
    """NaN or huge values gave a black picture with exit 0, a wrong length a traceback."""
    _, cache, st, s = one_style(tmp_path)
    good = StyleBank(st, cache).code_for(s)
    (entry,) = (tmp_path / "codes").glob("*.npy")
    for damage in (np.full(100, np.nan, np.float32), np.full(100, 1e6, np.float32), np.zeros(7, np.float32),
                   np.zeros((10, 10), np.float32), np.arange(100)):
        np.save(entry, damage)
        calls = st.calls
        assert np.array_equal(StyleBank(st, cache).code_for(s), good) and st.calls == calls + 1
    assert "is damaged: computing it again" in caplog.text
    assert st.calls == 6 and np.array_equal(np.load(entry), good)  # mended on disk
    image = np.full((256, 256, 3), 0.5, np.float32)  # the unsplit hub module's "code": its style image
    cache.put("hub", image)
    assert np.array_equal(cache.get("hub"), image)


def test_real_style_codes_differ_between_styles(tf_stylizer, tmp_path):
    from realtime.model.styles import SHIPPED_STYLES, list_styles

    styles = list_styles(SHIPPED_STYLES)
    assert len(styles) >= 3
    bank = StyleBank(tf_stylizer, StyleCodeCache(tmp_path))
    bank.add(styles)
    codes = np.stack(bank.codes)
    assert codes.shape == (len(styles), 100)
    assert np.abs(codes[0] - codes[1]).max() > 0.1


def test_blend_and_strength_arithmetic():
    a, b = np.zeros(100, np.float32), np.ones(100, np.float32)
    assert np.allclose(blend_codes([a, b], [1, 3]), 0.75)
    assert np.allclose(apply_strength(b, a, 0.0), a)
    assert np.allclose(apply_strength(b, a, 1.0), b)
    assert np.allclose(apply_strength(b, a, 1.5), 1.5)
    with pytest.raises(UserError):
        blend_codes([a, b], [0, 0])
    assert parse_blend(["wave:0.5", "ink:10", "C:/styles/x.png:2"]) == [("wave", 0.5), ("ink", 10.0), ("C:/styles/x.png", 2.0)]


@pytest.mark.parametrize("item", ["ink", "ink:", ":0.5", "wave:lots", "ink:1e9", "ink:10.5", "ink:0", "ink:-1", "ink:nan", "ink:inf"])
def test_blend_weights_must_be_given_and_sane(item):
    """Issue 27: `--blend ink:1e9` and `--blend ink` were taken silently (1e9 is ink alone, a missing
    weight meant 1): each is a one-line error that shows the syntax."""
    with pytest.raises(UserError, match=r"STYLE:WEIGHT .* e\.g\. ink:0\.5; got '") as err:
        parse_blend(["wave:0.5", item])
    assert item in str(err.value)


def test_build_code_blend_then_strength(tmp_path):
    s1, s2 = tmp_path / "a.png", tmp_path / "b.png"
    write_image(s1, np.zeros((32, 32, 3), np.uint8))
    write_image(s2, np.full((32, 32, 3), 255, np.uint8))
    bank = StyleBank(CountingStylizer(), StyleCodeCache(None))
    (a,), (b,) = find_style_images(s1), find_style_images(s2)
    code = build_code(bank, a, [(b, 1.0)], strength=0.5, content_code=np.zeros(100, np.float32))
    assert np.allclose(code, 0.25)


def test_style_lookup_by_name_folder_and_errors(tmp_path):
    d = tmp_path / "styles"
    d.mkdir()
    write_image(d / "one.png", np.zeros((32, 32, 3), np.uint8))
    write_image(d / "two.jpg", np.zeros((32, 32, 3), np.uint8))
    assert [s.name for s in find_style_images(d)] == ["one", "two"]
    assert find_style_images("two", d)[0].path == d / "two.jpg"
    with pytest.raises(MediaError, match="style not found: nope .*one, two"):
        find_style_images("nope", d)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="no images"):
        find_style_images(tmp_path / "empty")
