"""Small pictures for the console's gallery, made on the server with Pillow.

A picture from outside is bounded before it is decoded: its pixel count (a small file can
claim a huge canvas — a decompression bomb) and its bytes (the media store's limit). The
thumbnail is a JPEG whatever the original; animated pictures give their first frame.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

SIZE = 320  # px, the longer side: two columns on a phone, sharp at 2x
MAX_PIXELS = 40_000_000  # a 40-megapixel photo is the largest a phone takes
QUALITY = 80


class NotAPicture(ValueError):
    """The bytes are not a picture Pillow can read, or claim more pixels than allowed."""


def thumbnail(data: bytes, size: int = SIZE) -> bytes:
    """A JPEG of at most `size` × `size` pixels, upright by the photo's EXIF orientation."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                if width * height > MAX_PIXELS:
                    raise NotAPicture(f"{width}x{height} pixels")
                picture.draft("RGB", (size, size))  # JPEG: decode at a fraction of the size
                upright = ImageOps.exif_transpose(picture)
                small = upright.convert("RGB")
                small.thumbnail((size, size))
                out = io.BytesIO()
                small.save(out, format="JPEG", quality=QUALITY, optimize=True)
                return out.getvalue()
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as problem:
        if isinstance(problem, NotAPicture):
            raise
        raise NotAPicture(str(problem)) from None
