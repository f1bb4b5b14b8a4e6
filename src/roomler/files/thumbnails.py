"""Reading an uploaded image and making its thumbnail (Pillow), off the event loop."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a browser shows in <img> and Pillow decodes; anything else is a download card.
# (SVG is never one: it can carry script.)
INLINE_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}


@dataclass(frozen=True)
class Picture:
    """An image Pillow read: its real type, size, and its thumbnail."""

    content_type: str
    width: int
    height: int
    thumbnail: bytes
    thumbnail_type: str


def _inline_picture(
    data: bytes, max_pixels: int, shape: Callable[[Image.Image, str, int, int], Picture]
) -> Picture | None:
    """`shape(image, content type, width, height)` of the picture in `data`, or None when it
    is not an image we show inline (unknown format, damaged, or over `max_pixels`)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = INLINE_FORMATS.get(image.format or "")
            width, height = image.size
            if kind is None or width * height > max_pixels:
                return None
            image.seek(0)  # an animation's first frame
            return shape(image, kind, width, height)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def make_thumbnail(data: bytes, longest_side: int, max_pixels: int) -> Picture | None:
    """The picture in `data` with its thumbnail, or None (see `_inline_picture`).
    Blocking: see `read_picture`."""

    def shrink(image: Image.Image, kind: str, width: int, height: int) -> Picture:
        image.thumbnail((longest_side, longest_side))
        return _encoded(image, kind, width, height)

    return _inline_picture(data, max_pixels, shrink)


def _encoded(image: Image.Image, kind: str, width: int, height: int) -> Picture:
    out = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P") and kind != "image/jpeg":
        image.convert("RGBA").save(out, "PNG", optimize=True)
        thumb_type = "image/png"
    else:
        image.convert("RGB").save(out, "JPEG", quality=80)
        thumb_type = "image/jpeg"
    return Picture(kind, width, height, out.getvalue(), thumb_type)


async def read_picture(data: bytes, longest_side: int, max_pixels: int) -> Picture | None:
    return await asyncio.to_thread(make_thumbnail, data, longest_side, max_pixels)


def make_square(data: bytes, side: int, max_pixels: int) -> Picture | None:
    """The picture in `data` cut to its centred square and scaled to `side` pixels (an
    avatar), or None (see `_inline_picture`). Blocking: see `read_square`."""

    def square(image: Image.Image, kind: str, _width: int, _height: int) -> Picture:
        # A phone's photo is stored sideways with an EXIF turn: apply it first.
        upright = ImageOps.exif_transpose(image) or image
        if upright.mode not in ("RGB", "RGBA", "L", "LA"):
            upright = upright.convert("RGBA")  # a palette scales only to its own colours
        fitted = ImageOps.fit(upright, (side, side), Image.Resampling.LANCZOS)
        return _encoded(fitted, kind, side, side)

    return _inline_picture(data, max_pixels, square)


async def read_square(data: bytes, side: int, max_pixels: int) -> Picture | None:
    return await asyncio.to_thread(make_square, data, side, max_pixels)
