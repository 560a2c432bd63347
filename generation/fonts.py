"""Access to the bundled Cyrillic-capable font (Noto Sans from the fontpkg-noto-sans wheel)."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import fontpkg
from PIL import Image, ImageDraw, ImageFont

FAMILY = "Noto Sans"
_local = threading.local()


@lru_cache(maxsize=1)
def font_file() -> Path:
    """Path of the variable Noto Sans TrueType file (covers Latin, Cyrillic and Greek)."""
    return Path(fontpkg.path(FAMILY, weight=400))


def load_font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """A Noto Sans face at `size` pixels, regular (400) or bold (700) via the variable weight axis.

    Faces are cached per thread: a FreeType face is not safe to share between the executor threads
    that render postcards, and set_variation_by_axes mutates it.
    """
    cache: dict[tuple[int, bool], ImageFont.FreeTypeFont] | None = getattr(_local, "fonts", None)
    if cache is None:
        cache = _local.fonts = {}
    key = (max(1, int(size)), bold)
    font = cache.get(key)
    if font is None:
        font = ImageFont.truetype(str(font_file()), key[0], layout_engine=ImageFont.Layout.BASIC)
        weight = 700.0 if bold else 400.0
        axes = font.get_variation_axes()
        # Axis order comes from the file, so match by name and keep the default for the others (width).
        font.set_variation_by_axes([
            weight if _axis_name(axis) in ("weight", "wght") else float(axis["default"]) for axis in axes
        ])
        if len(cache) > 64:
            cache.clear()
        cache[key] = font
    return font


def _axis_name(axis: dict) -> str:
    name = axis.get("name", "")
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return str(name).strip().lower()


def has_glyph(font: ImageFont.FreeTypeFont, char: str) -> bool:
    """Whether the font draws `char` itself rather than its .notdef box (tofu)."""
    return _render(font, char) != _render(font, "\ue000")


def _render(font: ImageFont.FreeTypeFont, char: str) -> bytes:
    # U+E000 is private use, which Noto Sans leaves unmapped, so it renders the .notdef glyph.
    side = int(font.size * 2) + 4
    image = Image.new("L", (side, side))
    ImageDraw.Draw(image).text((2, 2), char, font=font, fill=255)
    return image.tobytes()
