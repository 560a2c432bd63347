"""Postcard rendering: valid PNGs of the requested size, a real Cyrillic TrueType font, text that fits."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw, ImageFont, ImageStat

from generation import OCCASIONS, GenerationRequest, render_postcard
from generation.fonts import font_file, has_glyph, load_font
from generation.offline import compose
from generation.postcard import fit_text, wrap


def _decode(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_font_is_a_real_truetype_file_with_cyrillic():
    path = font_file()
    assert path.is_file() and path.suffix == ".ttf" and path.stat().st_size > 100_000
    for bold in (False, True):
        font = load_font(48, bold=bold)
        assert isinstance(font, ImageFont.FreeTypeFont), "must not be Pillow's bitmap fallback"
        assert font.path == str(path)
        left, top, right, bottom = font.getbbox("Ж")
        assert right - left > 10 and bottom - top > 10
        for char in "ЖжЁёЩЪЫЭЮЯ«»—№":
            assert has_glyph(font, char), char
    assert not has_glyph(load_font(48), "\ue000")


def test_bold_is_heavier_than_regular():
    def ink(font: ImageFont.FreeTypeFont) -> float:
        image = Image.new("L", (400, 100))
        ImageDraw.Draw(image).text((5, 5), "Жизнь", font=font, fill=255)
        return ImageStat.Stat(image).sum[0]

    assert ink(load_font(48, bold=True)) > ink(load_font(48)) * 1.15


@pytest.mark.parametrize("occasion", [*OCCASIONS, "новоселье"])
def test_every_occasion_renders_a_valid_png(occasion):
    result = compose(GenerationRequest(kind="card", occasion=occasion, recipient_name="Анна", seed=1))
    image = _decode(render_postcard(result.text, title=result.title, occasion=occasion, language="ru"))
    assert image.format == "PNG" and image.size == (1200, 800) and image.mode == "RGB"
    # A designed background, not a flat fill: plenty of distinct colours.
    assert len(image.getcolors(maxcolors=1_000_000) or []) > 500


@pytest.mark.parametrize("size", [(800, 1000), (200, 200), (1600, 900)])
def test_requested_size(size):
    image = _decode(render_postcard("Happy birthday!", title="Hi", occasion="birthday", language="en", size=size))
    assert image.size == size


def test_rendering_is_deterministic_and_text_dependent():
    args = dict(title="С днём рождения!", occasion="birthday", language="ru")
    first = render_postcard("Анна, с днём рождения!", **args)
    assert render_postcard("Анна, с днём рождения!", **args) == first
    assert render_postcard("Олег, с днём рождения!", **args) != first


def test_title_defaults_and_can_be_omitted():
    with_default = render_postcard("Текст", title=None, occasion="new_year", language="ru")
    without = render_postcard("Текст", title="", occasion="new_year", language="ru")
    assert with_default != without


def test_long_text_fits_the_box():
    text = "Очень длинное поздравление с множеством слов. " * 120 + "Сверхдлинноесловобезпробелов" * 10
    layout = fit_text(text, "С днём рождения, дорогой человек!", 900, 500)
    assert layout.height <= 500
    title_font, body_font = load_font(layout.title_size, bold=True), load_font(layout.body_size)
    assert all(title_font.getlength(line) <= 900 for line in layout.title_lines)
    assert all(body_font.getlength(line) <= 900 for line in layout.body_lines)
    assert layout.body_lines[-1].endswith("…")
    _decode(render_postcard(text, title="Заголовок " * 20, occasion="birthday", language="ru", size=(400, 300)))


def test_short_text_uses_large_font():
    layout = fit_text("Спасибо!", "Спасибо!", 900, 500)
    assert layout.body_size >= 48 and layout.title_size > layout.body_size


def test_wrap_keeps_typographic_pairs_together():
    font = load_font(30)
    text = "Поздравляю с 8 Марта и желаю всего самого лучшего — счастья и любви в каждом дне года"
    for width in range(200, 700, 37):
        lines = wrap(text, font, width)
        assert not any(line.startswith("—") for line in lines)
        assert not any(line.endswith((" 8", " и", " с", " в")) for line in lines)
        assert " ".join(lines) == text


def test_emoji_and_unsupported_characters_are_dropped():
    image = _decode(render_postcard("Ура 🎉🎂 中文 кофе 😀.", title="Праздник 🎈", occasion="birthday", language="ru"))
    assert image.size == (1200, 800)


@pytest.mark.parametrize("size", [(10, 10), (5000, 800), ("a", 3), (100,)])
def test_invalid_size_is_rejected(size):
    with pytest.raises(ValueError):
        render_postcard("x", title=None, occasion="birthday", language="ru", size=size)


def test_any_string_input_renders():
    for value in ["", "\x00\ud800", "{" * 100, "\n" * 50, "‮" * 10, "ё" * 5000]:
        image = _decode(render_postcard(value, title=value, occasion=value, language=value, size=(300, 200)))
        assert image.size == (300, 200) and image.mode in ("RGB", "RGBA")
        # A real card, not a blank canvas: the background and decoration draw several colours.
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 1
