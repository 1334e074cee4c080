"""Font discovery for the generator and the glyph prior.

Fonts come from the system font directories (Debian packages installed by
``make setup``: DejaVu, Liberation, FreeFont, Roboto, URW base35; see
docs/data.md for the files and their licences) and from the directories in
``$DREAMTEXT_FONT_DIRS`` (``:``-separated). Symbol and dingbat fonts, and any
font that cannot draw the Latin letters and digits, are left out.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import DatasetError

SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts")
# Fonts whose glyphs are not letters (symbols, dingbats, math/icon fonts).
_EXCLUDE = ("symbol", "dingbat", "d050000l", "standardsymbols", "math", "stix", "emoji", "icons",
            # hairline weights vanish at the tiny preset's 20-px letters
            "-thin", "extralight")
# The plain font of the glyph prior (DESIGN §12), first one found wins.
PLAIN_FONT_NAMES = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "FreeSans.ttf", "Roboto-Regular.ttf")


def _font_dirs() -> list[Path]:
    extra = [d for d in os.environ.get("DREAMTEXT_FONT_DIRS", "").split(":") if d]
    return [Path(d).expanduser() for d in (*extra, *SYSTEM_FONT_DIRS)]


@functools.lru_cache(maxsize=None)
def _draws_latin(path: str) -> bool:
    """True when the font renders 'A', 'g', '5' and '&' as distinct, non-empty glyphs."""
    from PIL import ImageFont

    try:
        font = ImageFont.truetype(path, 24)
        masks = [bytes(font.getmask(ch)) for ch in "Ag5&"]
    except (OSError, ValueError):
        return False
    return all(any(m) for m in masks) and len(set(masks)) == len(masks)


@functools.lru_cache(maxsize=None)
def list_fonts() -> tuple[str, ...]:
    """Paths of the usable .ttf/.otf fonts, sorted (so a seed picks the same font on every machine with the same fonts)."""
    found: set[str] = set()
    for d in _font_dirs():
        if not d.is_dir():
            continue
        for p in d.rglob("*"):
            if p.suffix.lower() not in (".ttf", ".otf") or not p.is_file():
                continue
            if any(x in p.name.lower() for x in _EXCLUDE):
                continue
            found.add(str(p.resolve()))
    # The same file name in two packages (fonts-liberation and fonts-liberation2) is one font.
    by_name: dict[str, str] = {}
    for f in sorted(found):
        by_name.setdefault(Path(f).name, f)
    fonts = tuple(sorted((f for f in by_name.values() if _draws_latin(f)), key=lambda f: (Path(f).name, f)))
    if not fonts:
        raise DatasetError("no usable .ttf/.otf fonts found; run `make fonts` or set DREAMTEXT_FONT_DIRS")
    return fonts


@functools.lru_cache(maxsize=4096)
def load_font(path: str, size: int):
    """A cached ``PIL.ImageFont.FreeTypeFont`` (loading a font costs ~1 ms; the generator reuses them)."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, int(size))
    except OSError as e:
        raise DatasetError(f"cannot load font {path!r}: {e}") from None


@functools.lru_cache(maxsize=None)
def plain_font_path() -> str:
    """The one plain sans-serif font of the glyph prior (the first of PLAIN_FONT_NAMES present)."""
    fonts = list_fonts()
    by_name = {Path(f).name: f for f in fonts}
    for name in PLAIN_FONT_NAMES:
        if name in by_name:
            return by_name[name]
    return fonts[0]
