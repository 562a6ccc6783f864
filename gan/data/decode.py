"""Decode one image file into a square RGB uint8 array.

Preprocessing, fixed for every layout (and part of the cache key, see ``PREPROCESSING``):

1. JPEGs decode in draft mode (libjpeg's DCT scaling by 1/2, 1/4 or 1/8), choosing the strongest
   reduction that still leaves the shorter side >= ``size``; other formats decode at full size.
2. EXIF orientation is applied, and any mode becomes RGB: palette and grayscale convert; alpha
   is composited over black (the colour of the vignette around a dermoscopic field of view);
   16-bit grayscale ("I;16", "I") scales to 8 bits as round(v / 257), not clipped; float images
   ("F") are refused.
3. The centred square of side min(width, height) is resized to ``size`` x ``size`` with PIL's
   LANCZOS filter (antialiased). Images whose shorter side is below ``size`` are refused rather
   than upsampled.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

RESIZE = "centre square crop, PIL LANCZOS (JPEG: draft-mode DCT downscale to >= size first)"
PREPROCESSING = {
    "crop": "centre square",
    "resize": "PIL.Image.LANCZOS",
    "jpeg_draft": "DCT scale 1/2/4/8, shorter side >= size",
    "alpha": "composited over black",
    "16bit": "round(v/257)",
    "exif_orientation": "applied",
    "smaller_than_size": "skipped",
}
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# What Pillow raises on broken, truncated or hostile files.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


class Unusable(Exception):
    """The file cannot give a training image; the message says why."""


class Unreadable(Unusable):
    """The file could not be read this time (no permission, an I/O error): a later try may succeed."""


def decode_image(path: Path, size: int) -> np.ndarray:
    """Decode, centre-crop and resize one image (see the module docstring for every step).

    Args:
        path: the image file.
        size: side of the output square in pixels.

    Returns:
        A (size, size, 3) uint8 RGB array.

    Raises:
        Unusable: with the reason, when the file is empty, not an image, corrupt or truncated, a
            decompression bomb, in an unsupported mode, or smaller than ``size``;
            :class:`Unreadable` (a subclass) when the operating system refused or failed to read it.
    """
    try:
        if path.stat().st_size == 0:
            raise Unusable("empty file")
        with Image.open(path) as img:
            w, h = img.size
            limit = Image.MAX_IMAGE_PIXELS
            # Pillow raises above 2x the limit but only warns above 1x; both are refused here.
            if limit is not None and w * h > limit:
                raise Unusable(f"decompression bomb ({w}x{h} px, limit {limit})")
            if min(w, h) < size:
                raise Unusable(f"smaller than {size} px ({w}x{h})")
            img.draft("RGB", (size, size))
            rgb = _to_rgb(img)
    except UnidentifiedImageError:
        raise Unusable("not a readable image") from None
    except Image.DecompressionBombError as e:
        raise Unusable(f"decompression bomb ({e})") from None
    except _DECODE_ERRORS as e:
        # The operating system's errors carry an errno; Pillow's own (truncated, broken data) do not.
        if isinstance(e, OSError) and e.errno is not None:
            raise Unreadable(f"cannot read ({type(e).__name__}: {e.strerror}); tried again on the next load") from None
        raise Unusable(f"cannot decode ({type(e).__name__}: {e})") from None
    w, h = rgb.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    # Crop first: resize(box=...) would let the filter reach pixels outside the square.
    out = rgb.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    return np.array(out)  # writable, so torch can wrap it without a warning


def _to_rgb(img: Image.Image) -> Image.Image:
    """Load ``img`` and return it as RGB (orientation from EXIF applied)."""
    img.load()
    ImageOps.exif_transpose(img, in_place=True)
    if img.mode == "F":
        raise Unusable("floating-point image (mode F): no defined 8-bit scale")
    if img.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own I;16 -> L conversion clips at 255 instead of scaling.
        v = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
        return Image.fromarray(((v * 255 + 32767) // 65535).astype(np.uint8), "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        out = Image.new("RGB", img.size)  # black
        out.paste(img, mask=img.getchannel("A"))
        return out
    return img if img.mode == "RGB" else img.convert("RGB")
