"""Procedural backgrounds for the world: flat, gradient, noise, wallpaper, landscape."""

from __future__ import annotations

import numpy as np


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Value noise: a random coarse grid, bilinearly upsampled, in [0, 1]."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    ys = np.linspace(0, cells, height, dtype=np.float32)
    xs = np.linspace(0, cells, width, dtype=np.float32)
    y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def background(
    rng: np.random.Generator, size: tuple[int, int], kind: str | None = None
) -> tuple[np.ndarray, str]:
    """A random background: flat, gradient, noise, pattern or a simple landscape."""
    width, height = size
    kind = kind or str(
        rng.choice(["flat", "gradient", "noise", "pattern", "landscape"], p=[0.2, 0.2, 0.2, 0.15, 0.25])
    )
    a, b = rng.uniform(0.1, 0.95, 3).astype(np.float32), rng.uniform(0.1, 0.95, 3).astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "flat":
        image = np.broadcast_to(a, (height, width, 3)).copy()
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xs / width + np.sin(angle) * ys / height + 1) / 2
        image = a * (1 - t[..., None]) + b * t[..., None]
    elif kind == "noise":
        noise = _smooth_noise(rng, height, width, int(rng.integers(2, 7))) * 0.7
        noise += _smooth_noise(rng, height, width, int(rng.integers(8, 16))) * 0.3
        image = a * (1 - noise[..., None]) + b * noise[..., None]
    elif kind == "pattern":
        period = rng.uniform(6, 16) * width / 64
        if rng.random() < 0.5:
            mask = (np.floor(xs / period) + np.floor(ys / period)) % 2
        else:
            mask = (np.sin(2 * np.pi * (xs + ys * rng.uniform(-1, 1)) / period) > 0).astype(np.float32)
        b = a * rng.uniform(0.75, 0.9)  # low contrast: wallpaper, not noise
        image = a * (1 - mask[..., None]) + b * mask[..., None]
    else:
        horizon = height * rng.uniform(0.45, 0.75)
        sky_top, sky_bottom = (
            np.array([0.35, 0.55, 0.9]) * rng.uniform(0.7, 1.1),
            np.array([0.75, 0.85, 0.95]),
        )
        t = np.clip(ys / horizon, 0, 1)[..., None]
        image = sky_top * (1 - t) + sky_bottom * t
        hills = horizon - height * 0.12 * (
            0.5 + 0.5 * np.sin(xs / width * rng.uniform(3, 9) + rng.uniform(0, 6))
        )
        hill_colour = np.array([0.3, 0.5, 0.35]) * rng.uniform(0.6, 1.2)
        image = np.where((ys > hills)[..., None], hill_colour, image)
        ground = np.array([0.45, 0.6, 0.3]) * rng.uniform(0.6, 1.3) if rng.random() < 0.6 else b
        texture = _smooth_noise(rng, height, width, 12)[..., None] * 0.15
        image = np.where((ys > horizon)[..., None], ground * (0.9 + texture), image)
    return np.clip(image, 0, 1).astype(np.float32), kind
