"""PNG postcard rendering: themed background, translucent panel, title and wrapped body text that always fits."""

from __future__ import annotations

import hashlib
import io
import random
import re
import threading
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from generation.base import GenerationRequest, normalize_language
from generation.fonts import has_glyph, load_font
from generation.occasions import resolve_occasion
from generation.offline import pick_title
from generation.postcard_art import THEMES, decorate, gradient
from generation.sanitize import MAX_OUTPUT, clean_multiline, clean_user_text

MIN_SIDE, MAX_SIDE = 200, 4000
MIN_BODY_PX = 12
LINE_SPACING = 1.22
_glyphs = threading.local()


@dataclass(frozen=True)
class TextLayout:
    """Wrapped lines and font sizes chosen so the text block fits the panel."""

    title_lines: tuple[str, ...]
    body_lines: tuple[str, ...]
    title_size: int
    body_size: int
    height: int


def _drawable(text: str, font: ImageFont.FreeTypeFont) -> str:
    """Drop characters the font cannot draw (emoji, CJK…) instead of printing tofu boxes."""
    cache: dict[str, bool] = getattr(_glyphs, "cache", None) or {}
    _glyphs.cache = cache
    kept = []
    for ch in text:
        if ch not in cache:
            cache[ch] = ch in "\n " or has_glyph(font, ch)
        if cache[ch]:
            kept.append(ch)
    # A dropped emoji often leaves "кофе ." behind; punctuation never follows a space in either language.
    return re.sub(r"[ ]+([.,!?;:…])", r"\1", re.sub(r"[ ]{2,}", " ", "".join(kept))).strip()


def _tokens(paragraph: str) -> list[str]:
    """Split into wrap units the way Russian typography wants lines broken.

    "8 Марта" stays together, a dash never starts a line and short words ("и", "с", "не")
    are not left hanging at a line end.
    """
    tokens: list[str] = []
    for word in paragraph.split():
        last = tokens[-1].rsplit(" ", 1)[-1] if tokens else ""
        glue = word in ("—", "–") or (last.isdigit() and len(last) <= 4) or (last.isalpha() and len(last) <= 2)
        if tokens and glue:
            tokens[-1] += " " + word
        else:
            tokens.append(word)
    return tokens


def wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Greedy word wrap by rendered width; words wider than the line are broken by characters."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for token in _tokens(paragraph):
            candidate = f"{line} {token}" if line else token
            if font.getlength(candidate) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for ch in token:
                if line and font.getlength(line + ch) > max_width:
                    lines.append(line)
                    line = ""
                line += ch
        if line or not lines or lines[-1]:
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return int((ascent + descent) * LINE_SPACING)


def fit_text(text: str, title: str, width: int, height: int) -> TextLayout:
    """Pick the largest body size (title 1.45× larger) whose wrapped text fits width × height."""
    # Start near the size at which the text would fill the box (average glyph ≈ 0.5 em wide) instead of
    # at the maximum: each size step re-wraps everything, and long texts would otherwise take seconds.
    chars = max(1, len(text) + len(title))
    estimate = int((width * height / (chars * 0.5 * LINE_SPACING)) ** 0.5 * 1.2)
    body_size = max(MIN_BODY_PX, min(64, height // 6, estimate))
    while True:
        title_size = max(MIN_BODY_PX, int(body_size * 1.45))
        title_font, body_font = load_font(title_size, bold=True), load_font(body_size)
        title_lines = wrap(title, title_font, width) if title else []
        body_lines = wrap(text, body_font, width)
        gap = int(body_size * 0.8) if title_lines and body_lines else 0
        used = len(title_lines) * _line_height(title_font) + gap + len(body_lines) * _line_height(body_font)
        if used <= height or body_size <= MIN_BODY_PX:
            break
        body_size -= max(1, body_size // 12)
    if used > height:
        # Even the smallest readable size overflows: keep what fits and mark the cut.
        room = max(1, (height - len(title_lines) * _line_height(title_font) - gap) // _line_height(body_font))
        body_lines = body_lines[:room]
        last = body_lines[-1]
        while last and body_font.getlength(last.rstrip(" .,;:—") + "…") > width:
            last = last[:-1]
        body_lines[-1] = last.rstrip(" .,;:—") + "…"
        used = len(title_lines) * _line_height(title_font) + gap + len(body_lines) * _line_height(body_font)
    return TextLayout(tuple(title_lines), tuple(body_lines), title_size, body_size, used)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError("size must be a (width, height) pair of integers") from None
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise ValueError(f"postcard sides must be between {MIN_SIDE} and {MAX_SIDE} pixels")
    return w, h


def render_postcard(
    text: str, *, title: str | None, occasion: str, language: str, size: tuple[int, int] = (1200, 800)
) -> bytes:
    """Render a PNG postcard; title=None uses the occasion's standard title, "" renders no title.

    CPU-bound (tens of milliseconds); call it from a thread executor in async code.
    """
    w, h = _check_size(size)
    language = normalize_language(language)
    theme = THEMES[resolve_occasion(occasion).key or "congratulations"]
    if title is None:
        title = pick_title(GenerationRequest(occasion=occasion, language=language, seed=0))
    probe = load_font(24)
    title = _drawable(clean_user_text(title, 120), probe)
    body = _drawable(clean_multiline(text, MAX_OUTPUT), probe)
    seed_material = "\x1f".join((body, title, theme.motif, str(w), str(h))).encode("utf-8", "replace")
    rng = random.Random(hashlib.sha256(seed_material).digest())

    mx, my = int(w * 0.09), int(h * 0.11)
    panel = (mx, my, w - mx, h - my)
    image = gradient((w, h), theme.top, theme.bottom).convert("RGBA")
    image.alpha_composite(decorate((w, h), theme, rng, panel))
    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    radius = int(min(w, h) * 0.04)
    ImageDraw.Draw(overlay).rounded_rectangle(panel, radius=radius, fill=(255, 255, 255, 215),
                                              outline=theme.accents[0] + (200,), width=max(2, w // 400))
    image.alpha_composite(overlay)

    pad = int(min(w, h) * 0.05)
    box_w, box_h = panel[2] - panel[0] - 2 * pad, panel[3] - panel[1] - 2 * pad
    layout = fit_text(body, title, box_w, box_h)
    draw = ImageDraw.Draw(image)
    y = panel[1] + pad + (box_h - layout.height) // 2
    for lines, font, color in (
        (layout.title_lines, load_font(layout.title_size, bold=True), theme.title),
        (layout.body_lines, load_font(layout.body_size), theme.text),
    ):
        for line in lines:
            draw.text((w / 2, y), line, font=font, fill=color + (255,), anchor="ma")
            y += _line_height(font)
        if lines is layout.title_lines and lines and layout.body_lines:
            y += int(layout.body_size * 0.8)

    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=False)
    return out.getvalue()
