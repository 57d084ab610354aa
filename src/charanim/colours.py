"""Colour names for captions: the nearest of a small named palette in CIELAB.

CIELAB is built so that equal distances look about equally different, which a plain RGB
or opponent-axis distance is not: there a dark crimson lies nearer "brown" than "red",
and a light turquoise nearer "light blue" than "teal". The sRGB -> Lab conversion (D65)
is the standard formula, written out here (a dozen lines; no dependency of ours has it).
"""

from __future__ import annotations

import numpy as np

NAMED = {
    "black": (0.08, 0.08, 0.08), "white": (0.95, 0.95, 0.95), "grey": (0.5, 0.5, 0.5),
    "red": (0.8, 0.1, 0.1), "dark red": (0.5, 0.05, 0.12), "orange": (0.95, 0.55, 0.1),
    "yellow": (0.95, 0.85, 0.15), "olive": (0.45, 0.45, 0.1), "green": (0.2, 0.65, 0.2),
    "teal": (0.1, 0.5, 0.5), "turquoise": (0.3, 0.78, 0.72), "blue": (0.15, 0.3, 0.85),
    "purple": (0.5, 0.2, 0.65), "pink": (0.95, 0.5, 0.7), "brown": (0.5, 0.3, 0.15),
    "beige": (0.85, 0.75, 0.6), "dark blue": (0.05, 0.07, 0.45), "light blue": (0.55, 0.75, 0.95),
    "dark green": (0.08, 0.3, 0.12), "light green": (0.6, 0.9, 0.5),
}  # fmt: skip
_NAMES = list(NAMED)

#: linear sRGB -> CIE XYZ, and the D65 white point
_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float64)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1], ``[..., 3]`` -> CIELAB ``[..., 3]`` (L in 0..100)."""
    rgb = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _XYZ.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


_LAB = lab(np.array([NAMED[n] for n in _NAMES]))


def colour_name(rgb) -> str:
    """Name of an RGB colour given in [0, 1] (or 0-255 integers)."""
    value = np.asarray(rgb, np.float32)
    if value.max() > 1.0:
        value = value / 255.0
    distances = np.linalg.norm(_LAB - lab(value[None]), axis=1)
    return _NAMES[int(np.argmin(distances))]
