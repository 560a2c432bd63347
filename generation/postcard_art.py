"""Postcard backgrounds: a colour theme per occasion and the decorative motifs drawn around the text panel."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Theme:
    """Colours and motif for one occasion."""

    top: RGB
    bottom: RGB
    accents: tuple[RGB, ...]
    title: RGB
    text: RGB
    motif: str


_FESTIVE = ((255, 94, 98), (255, 199, 44), (72, 181, 255), (155, 93, 229), (0, 187, 148))
_WINTER = ((255, 255, 255), (200, 225, 255), (255, 215, 120))
_LOVE = ((230, 57, 70), (255, 120, 150), (255, 180, 200), (200, 40, 90))
_SPRING = ((240, 98, 146), (186, 104, 200), (255, 183, 77), (255, 255, 255))

THEMES: dict[str, Theme] = {
    "birthday": Theme((255, 224, 178), (255, 150, 160), _FESTIVE, (196, 30, 90), (60, 30, 45), "balloons"),
    "jubilee": Theme((255, 236, 179), (214, 158, 90), _FESTIVE, (150, 60, 20), (60, 35, 20), "balloons"),
    "new_year": Theme((18, 44, 96), (52, 110, 178), _WINTER, (170, 30, 55), (25, 35, 70), "snow"),
    "christmas": Theme((22, 78, 58), (40, 120, 88), _WINTER, (170, 30, 45), (25, 50, 40), "snow"),
    "march_8": Theme((255, 228, 240), (230, 170, 220), _SPRING, (190, 40, 120), (70, 30, 60), "flowers"),
    "feb_23": Theme((40, 70, 60), (70, 110, 130), ((255, 215, 100), (230, 60, 60), (255, 255, 255)),
                    (140, 30, 30), (30, 40, 45), "stars"),
    "valentine": Theme((255, 205, 215), (235, 90, 120), _LOVE, (200, 30, 70), (70, 20, 35), "hearts"),
    "wedding": Theme((255, 250, 240), (236, 214, 190), ((230, 190, 140), (255, 255, 255), (245, 170, 180)),
                     (150, 100, 60), (70, 55, 45), "flowers"),
    "anniversary": Theme((255, 235, 225), (225, 150, 160), _LOVE, (180, 40, 80), (70, 30, 40), "hearts"),
    "thanks": Theme((255, 245, 200), (255, 200, 120), ((255, 140, 90), (240, 90, 110), (255, 255, 255)),
                    (190, 80, 30), (70, 45, 25), "hearts"),
    "graduation": Theme((30, 50, 110), (90, 80, 160), ((255, 215, 90), (255, 255, 255), (120, 200, 255)),
                        (40, 60, 140), (30, 35, 60), "confetti"),
    "new_baby": Theme((215, 240, 255), (200, 235, 220), ((130, 190, 240), (250, 180, 200), (255, 230, 140)),
                      (60, 120, 180), (40, 60, 80), "bubbles"),
    "retirement": Theme((255, 230, 180), (240, 150, 110), ((255, 200, 80), (255, 255, 230), (230, 110, 80)),
                        (170, 70, 30), (70, 40, 25), "sun"),
    "get_well": Theme((225, 248, 230), (160, 215, 190), ((80, 170, 110), (130, 200, 140), (255, 255, 255)),
                      (40, 120, 80), (30, 60, 45), "leaves"),
    "professional_day": Theme((220, 240, 245), (110, 170, 200), ((255, 200, 80), (255, 255, 255), (60, 120, 170)),
                              (30, 90, 130), (25, 45, 60), "stars"),
    "new_job": Theme((220, 245, 240), (100, 180, 190), _FESTIVE, (20, 110, 120), (25, 50, 55), "confetti"),
    "congratulations": Theme((240, 230, 255), (180, 160, 240), _FESTIVE, (110, 60, 180), (45, 35, 70), "confetti"),
}


def gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    """A diagonal two-colour gradient (vertical and horizontal ramps blended)."""
    vertical = Image.linear_gradient("L").resize(size)
    horizontal = Image.linear_gradient("L").rotate(90).resize(size)
    mask = Image.blend(vertical, horizontal, 0.35)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _edge_point(rng: random.Random, w: float, h: float, keep_out: Box) -> tuple[float, float]:
    """A random point that avoids the text panel most of the time, so decorations frame the text."""
    left, top, right, bottom = keep_out
    x = y = 0.0
    for _ in range(30):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        if not (left < x < right and top < y < bottom):
            return x, y
    return x, y


def _star(cx: float, cy: float, r: float, turn: float, points: int = 5) -> list[tuple[float, float]]:
    return [
        (cx + (r if i % 2 == 0 else r * 0.45) * math.cos(turn + i * math.pi / points),
         cy + (r if i % 2 == 0 else r * 0.45) * math.sin(turn + i * math.pi / points))
        for i in range(points * 2)
    ]


def _heart(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    return [
        (cx + r * 16 * math.sin(t) ** 3 / 16,
         cy - r * (13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)) / 16)
        for t in (i * 2 * math.pi / 60 for i in range(60))
    ]


def _balloons(d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box) -> None:
    _confetti(d, rng, w, h, u * 0.7, t, ko, count=40)
    for side in range(8):
        x = rng.uniform(0.02, 0.12) * w if side % 2 == 0 else rng.uniform(0.88, 0.98) * w
        y = rng.uniform(0.12, 0.75) * h
        rw = rng.uniform(0.055, 0.08) * u * 1.6
        color = rng.choice(t.accents)
        string = [(x + math.sin(k / 3) * rw * 0.15, y + rw * 1.25 + k * rw * 0.12) for k in range(25)]
        d.line(string, fill=(255, 255, 255, 200), width=max(1, int(u * 0.004)))
        d.polygon([(x, y + rw * 1.2), (x - rw * 0.15, y + rw * 1.38), (x + rw * 0.15, y + rw * 1.38)], fill=color)
        d.ellipse((x - rw, y - rw * 1.25, x + rw, y + rw * 1.25), fill=color + (235,))
        d.ellipse((x - rw * 0.55, y - rw * 0.85, x - rw * 0.2, y - rw * 0.3), fill=(255, 255, 255, 110))


def _confetti(
    d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box, count: int = 110
) -> None:
    for _ in range(count):
        x, y = _edge_point(rng, w, h, ko)
        s = rng.uniform(0.006, 0.014) * u
        color = rng.choice(t.accents) + (rng.randint(170, 255),)
        if rng.random() < 0.4:
            d.ellipse((x - s, y - s, x + s, y + s), fill=color)
        else:
            a = rng.uniform(0, math.pi)
            dx, dy = math.cos(a) * s * 1.8, math.sin(a) * s * 1.8
            ex, ey = -math.sin(a) * s * 0.6, math.cos(a) * s * 0.6
            d.polygon([(x - dx - ex, y - dy - ey), (x + dx - ex, y + dy - ey),
                       (x + dx + ex, y + dy + ey), (x - dx + ex, y - dy + ey)], fill=color)


def _snow(d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box) -> None:
    for _ in range(90):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.002, 0.006) * u
        d.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, rng.randint(120, 230)))
    for _ in range(22):
        x, y = _edge_point(rng, w, h, ko)
        r = rng.uniform(0.025, 0.06) * u
        color = rng.choice(t.accents) + (rng.randint(170, 240),)
        width = max(1, int(r * 0.12))
        turn = rng.uniform(0, math.pi / 3)
        for k in range(6):
            a = turn + k * math.pi / 3
            ex, ey = x + r * math.cos(a), y + r * math.sin(a)
            d.line((x, y, ex, ey), fill=color, width=width)
            for frac in (0.55, 0.8):
                bx, by = x + r * frac * math.cos(a), y + r * frac * math.sin(a)
                for side in (-1, 1):
                    b = a + side * math.pi / 4
                    d.line((bx, by, bx + r * 0.25 * math.cos(b), by + r * 0.25 * math.sin(b)), fill=color, width=width)


def _flowers(d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box) -> None:
    for _ in range(18):
        x, y = _edge_point(rng, w, h, ko)
        r = rng.uniform(0.03, 0.06) * u
        color = rng.choice(t.accents) + (225,)
        petals = rng.choice((5, 6))
        turn = rng.uniform(0, math.pi)
        for k in range(petals):
            a = turn + k * 2 * math.pi / petals
            px, py = x + r * 0.55 * math.cos(a), y + r * 0.55 * math.sin(a)
            d.ellipse((px - r * 0.45, py - r * 0.45, px + r * 0.45, py + r * 0.45), fill=color)
        d.ellipse((x - r * 0.3, y - r * 0.3, x + r * 0.3, y + r * 0.3), fill=(255, 210, 90, 255))


def _hearts(d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box) -> None:
    for _ in range(26):
        x, y = _edge_point(rng, w, h, ko)
        d.polygon(_heart(x, y, rng.uniform(0.015, 0.045) * u), fill=rng.choice(t.accents) + (rng.randint(170, 240),))


def _stars(d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box) -> None:
    for _ in range(30):
        x, y = _edge_point(rng, w, h, ko)
        r = rng.uniform(0.012, 0.04) * u
        d.polygon(_star(x, y, r, rng.uniform(0, math.pi)), fill=rng.choice(t.accents) + (rng.randint(170, 240),))


def _bubbles(d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box) -> None:
    for _ in range(40):
        x, y = _edge_point(rng, w, h, ko)
        r = rng.uniform(0.01, 0.05) * u
        color = rng.choice(t.accents)
        d.ellipse((x - r, y - r, x + r, y + r), fill=color + (90,), outline=color + (220,), width=max(1, int(r * 0.1)))
    _stars(d, rng, w, h, u * 0.6, t, ko)


def _leaves(d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box) -> None:
    for _ in range(30):
        x, y = _edge_point(rng, w, h, ko)
        r = rng.uniform(0.025, 0.05) * u
        a = rng.uniform(0, 2 * math.pi)
        outline = [(r * math.cos(s), r * 0.45 * math.sin(s) * abs(math.cos(s / 2))) for s in
                   (i * 2 * math.pi / 40 for i in range(40))]
        cos_a, sin_a = math.cos(a), math.sin(a)
        points = [(x + px * cos_a - py * sin_a, y + px * sin_a + py * cos_a) for px, py in outline]
        d.polygon(points, fill=rng.choice(t.accents) + (rng.randint(170, 230),))


def _sun(d: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, u: float, t: Theme, ko: Box) -> None:
    cx, cy, r = w * 0.92, h * 0.1, 0.12 * u
    for k in range(16):
        a = k * math.pi / 8
        d.polygon([(cx + r * 1.2 * math.cos(a - 0.08), cy + r * 1.2 * math.sin(a - 0.08)),
                   (cx + r * 2.6 * math.cos(a), cy + r * 2.6 * math.sin(a)),
                   (cx + r * 1.2 * math.cos(a + 0.08), cy + r * 1.2 * math.sin(a + 0.08))], fill=(255, 220, 120, 150))
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 200, 80, 240))
    _confetti(d, rng, w, h, u, t, ko, count=50)


MOTIFS: dict[str, Callable[[ImageDraw.ImageDraw, random.Random, int, int, float, Theme, Box], None]] = {
    "balloons": _balloons, "confetti": _confetti, "snow": _snow, "flowers": _flowers, "hearts": _hearts,
    "stars": _stars, "bubbles": _bubbles, "leaves": _leaves, "sun": _sun,
}


def decorate(size: tuple[int, int], theme: Theme, rng: random.Random, keep_out: Box) -> Image.Image:
    """Draw the theme's motif on a transparent layer, supersampled 2× so shapes get smooth edges."""
    w, h = size[0] * 2, size[1] * 2
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = keep_out
    ko = (left * 2, top * 2, right * 2, bottom * 2)
    MOTIFS[theme.motif](draw, rng, w, h, float(min(w, h)), theme, ko)
    return layer.resize(size, Image.Resampling.LANCZOS)
