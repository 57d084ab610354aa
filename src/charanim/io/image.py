"""Reading reference images: every common PIL mode becomes 8-bit RGB plus an optional alpha mask."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from charanim.errors import InputFileError, UnsupportedFormatError

DEFAULT_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class LoadedImage:
    """An image as the engine sees it.

    ``rgb`` is ``uint8 [H, W, 3]``, already turned upright by its EXIF orientation
    and composited over ``background`` where it had transparency; ``alpha`` is the
    original transparency as ``uint8 [H, W]`` (255 = opaque), or ``None`` when the
    file had none. Conditioners may use ``alpha`` as the character's mask.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    path: Path | None
    source_mode: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.shape[1], self.rgb.shape[0]


def read_image(
    path: str | os.PathLike[str], background: tuple[int, int, int] = DEFAULT_BACKGROUND
) -> LoadedImage:
    """Read any image PIL can open (PNG, JPEG, WebP, GIF first frame, TIFF, BMP...).

    Palette, grayscale, 16-bit and float images are converted to 8-bit RGB; CMYK and
    other colour spaces go through PIL's conversion. Raises :class:`InputFileError`
    for a missing or corrupt file and :class:`UnsupportedFormatError` for a file
    that is not an image.
    """
    file = Path(path)
    if not file.exists():
        raise InputFileError(f"Image '{file}' does not exist.")
    if file.is_dir():
        raise InputFileError(f"'{file}' is a folder, not an image.")
    if file.stat().st_size == 0:
        raise InputFileError(f"Image '{file}' is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened) or opened
                image.load()
    except UnidentifiedImageError:
        raise UnsupportedFormatError(f"'{file}' is not an image format charanim can read.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputFileError(f"Image '{file}' is too large to decode safely.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputFileError(f"Image '{file}' is corrupt or truncated ({exc}).") from None
    rgb, alpha = _to_rgb_and_alpha(image, background)
    return LoadedImage(rgb=rgb, alpha=alpha, path=file, source_mode=image.mode)


def image_from_array(rgb: np.ndarray, alpha: np.ndarray | None = None) -> LoadedImage:
    """Wrap an in-memory ``uint8 [H, W, 3]`` array (Python API users, tests)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("expected a uint8 array of shape [H, W, 3]")
    return LoadedImage(rgb=rgb, alpha=alpha, path=None, source_mode="RGB")


def _to_rgb_and_alpha(
    image: Image.Image, background: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = Image.fromarray(_high_depth_to_uint8(np.asarray(image), mode))
        mode = "L"
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("LA", "PA", "La", "RGBa"):
        image, mode = image.convert("RGBA"), "RGBA"
    if mode == "RGBA":
        rgba = np.asarray(image)
        alpha = rgba[..., 3].copy()
        weight = alpha[..., None].astype(np.float32) / 255.0
        bg = np.asarray(background, dtype=np.float32)
        rgb = rgba[..., :3].astype(np.float32) * weight + bg * (1.0 - weight)
        return np.round(rgb).astype(np.uint8), alpha
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))), None


def _high_depth_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale by the type's range, not by the image's own range, so dark images stay dark."""
    values = values.astype(np.float64)
    if mode == "F":
        full_scale = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
    elif mode.startswith("I;16") or values.max(initial=0.0) > 255:
        full_scale = 65535.0
    else:
        full_scale = 255.0
    return np.clip(np.round(values / full_scale * 255.0), 0, 255).astype(np.uint8)
