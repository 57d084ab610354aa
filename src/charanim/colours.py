"""Colour names for captions: the nearest of a small named palette, in a perceptual-ish space."""

from __future__ import annotations

import numpy as np

NAMED = {
    "black": (0.08, 0.08, 0.08), "white": (0.95, 0.95, 0.95), "grey": (0.5, 0.5, 0.5),
    "red": (0.8, 0.1, 0.1), "orange": (0.95, 0.55, 0.1), "yellow": (0.95, 0.85, 0.15),
    "green": (0.2, 0.65, 0.2), "teal": (0.1, 0.55, 0.55), "blue": (0.15, 0.3, 0.85),
    "purple": (0.5, 0.2, 0.65), "pink": (0.95, 0.5, 0.7), "brown": (0.5, 0.3, 0.15),
    "beige": (0.85, 0.75, 0.6), "dark blue": (0.08, 0.12, 0.4), "light blue": (0.55, 0.75, 0.95),
    "dark green": (0.08, 0.3, 0.12), "light green": (0.6, 0.9, 0.5),
}  # fmt: skip
_NAMES = list(NAMED)
_VALUES = np.array([NAMED[n] for n in _NAMES], np.float32)


def _to_lab_like(rgb: np.ndarray) -> np.ndarray:
    """A cheap opponent space: lightness, red-green, yellow-blue (enough to name colours)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack([0.3 * r + 0.59 * g + 0.11 * b, (r - g) * 0.8, (r + g) / 2 - b], axis=-1)


def colour_name(rgb) -> str:
    """Name of an RGB colour given in [0, 1] (or 0-255 integers)."""
    value = np.asarray(rgb, np.float32)
    if value.max() > 1.0:
        value = value / 255.0
    distances = np.linalg.norm(_to_lab_like(_VALUES) - _to_lab_like(value[None]), axis=1)
    return _NAMES[int(np.argmin(distances))]
