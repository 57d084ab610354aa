"""A small signed-distance rasteriser: the procedural world's characters, and pose maps.

Parts are capsules (limbs, tapered), ellipses (heads, bodies) and convex polygons
(hats, beaks), drawn back to front. Coverage comes analytically from the signed
distance (a one-pixel ramp), so edges are antialiased without supersampling. Each
part carries local coordinates (along / across it), so stripes and dots move with
the part instead of swimming in screen space. Everything is numpy over the pixel
grid, which at 64x64 renders a character in about a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Fill:
    colour: tuple[float, float, float]
    secondary: tuple[float, float, float] | None = None
    pattern: str = "solid"  # solid | stripes | dots | gradient | bands
    frequency: float = 3.0
    shade: float = 0.18  # darkening towards the rim, for a little volume


@dataclass
class Part:
    kind: str  # capsule | ellipse | polygon
    points: np.ndarray  # capsule: [2, 2]; ellipse: [1, 2] centre; polygon: [N, 2] (pixels)
    radii: tuple[float, ...]  # capsule: (r_a, r_b); ellipse: (rx, ry); polygon: ()
    fill: Fill
    angle: float = 0.0  # ellipse rotation (radians)
    outline: bool = True
    opacity: float = 1.0
    meta: dict = field(default_factory=dict)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs + 0.5, ys + 0.5


def _capsule(part: Part, xs, ys):
    (ax, ay), (bx, by) = part.points
    ra, rb = part.radii
    dx, dy = bx - ax, by - ay
    length2 = np.maximum(dx * dx + dy * dy, 1e-6)  # np: the points may be per-frame columns
    t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0.0, 1.0)
    px, py = xs - (ax + t * dx), ys - (ay + t * dy)
    radius = ra + t * (rb - ra)
    distance = np.sqrt(px * px + py * py)
    across = (px * -dy + py * dx) / np.sqrt(length2) / np.maximum(radius, 1e-3)
    return distance - radius, t, across


def _ellipse(part: Part, xs, ys):
    (cx, cy), (rx, ry) = part.points[0], part.radii
    cos, sin = np.cos(part.angle), np.sin(part.angle)
    lx = ((xs - cx) * cos + (ys - cy) * sin) / max(rx, 1e-3)
    ly = (-(xs - cx) * sin + (ys - cy) * cos) / max(ry, 1e-3)
    k = np.sqrt(lx * lx + ly * ly)
    return (k - 1.0) * min(rx, ry), (lx + 1) / 2, ly


def _polygon(part: Part, xs, ys):
    points = part.points
    centre = points.mean(0)
    distance = np.full(xs.shape, -np.inf, dtype=np.float32)
    for a, b in zip(points, np.roll(points, -1, axis=0), strict=True):
        edge = b - a
        normal = np.array([edge[1], -edge[0]]) / max(np.hypot(*edge), 1e-6)
        if np.dot(centre - a, normal) > 0:  # make the normal point outwards
            normal = -normal
        distance = np.maximum(distance, (xs - a[0]) * normal[0] + (ys - a[1]) * normal[1])
    extent = max(np.ptp(points[:, 1]), 1e-3)
    return distance, (ys - points[:, 1].min()) / extent, (xs - centre[0]) / max(np.ptp(points[:, 0]), 1e-3)


SHAPES = {"capsule": _capsule, "ellipse": _ellipse, "polygon": _polygon}
#: the fills that mix in a secondary colour (anything else is solid)
PATTERNS = ("stripes", "bands", "dots", "gradient")


def _colour(fill: Fill, along: np.ndarray, across: np.ndarray) -> np.ndarray:
    base = np.asarray(fill.colour, np.float32)
    if fill.shade == 0 and fill.pattern not in PATTERNS:  # flat (pose maps): the same values, no work
        return np.broadcast_to(base.astype(np.result_type(base, along)), (*along.shape, 3))
    other = np.asarray(fill.secondary if fill.secondary is not None else fill.colour, np.float32)
    if fill.pattern == "stripes":
        weight = np.clip(np.sin(2 * np.pi * fill.frequency * along) * 3 + 0.5, 0, 1)
    elif fill.pattern == "bands":
        weight = np.clip(np.sin(2 * np.pi * fill.frequency * 0.5 * across) * 3 + 0.5, 0, 1)
    elif fill.pattern == "dots":
        u, v = fill.frequency * along * 2, fill.frequency * across
        d = np.hypot(u - np.round(u), v - np.round(v))
        weight = np.clip((0.3 - d) * 8, 0, 1)
    elif fill.pattern == "gradient":
        weight = np.clip((across + 1) / 2, 0, 1)
    else:
        weight = np.zeros_like(along)
    colour = base * (1 - weight[..., None]) + other * weight[..., None]
    if fill.shade:
        colour = colour * (1 - fill.shade * np.clip(np.abs(across), 0, 1)[..., None] ** 2)
    return colour


def render_parts(
    parts: list[Part],
    background: np.ndarray,
    outline_width: float = 0.0,
    outline_colour: tuple[float, float, float] = (0.08, 0.07, 0.1),
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``parts`` (back to front) over ``background`` (float [H, W, 3] in [0, 1]).

    With ``outline_width`` > 0 every outlined part is first drawn enlarged in the
    outline colour, then all fills on top: one outline around the whole silhouette.
    Returns the image and the character's coverage (float [H, W] in [0, 1]).
    """
    height, width = background.shape[:2]
    xs, ys = _grid(height, width)
    image = background.astype(np.float32).copy()
    coverage = np.zeros((height, width), np.float32)
    shapes = []
    for part in parts:  # evaluate each part only inside its bounding box
        window = _window(part, outline_width, height, width)
        if window is None:
            continue
        distance, along, across = SHAPES[part.kind](part, xs[window], ys[window])
        shapes.append((part, window, distance, along, across))
    if outline_width > 0:
        ink = np.asarray(outline_colour, np.float32)
        for part, window, distance, _, _ in shapes:
            if part.outline:
                alpha = np.clip(0.5 - (distance - outline_width), 0, 1)
                image[window] += (ink - image[window]) * alpha[..., None]
                coverage[window] = np.maximum(coverage[window], alpha)
    for part, window, distance, along, across in shapes:
        alpha = np.clip(0.5 - distance, 0, 1) * part.opacity
        image[window] += (_colour(part.fill, along, across) - image[window]) * alpha[..., None]
        coverage[window] = np.maximum(coverage[window], alpha)
    return np.clip(image, 0, 1), coverage


def render_part_sequence(
    sequence: list[list[Part]], background: np.ndarray, visible: np.ndarray | None = None
) -> np.ndarray:
    """``render_parts`` (fills only, no outline) for every frame of ``sequence`` at once:
    each part is evaluated for all frames in one numpy call over the union of its
    windows, instead of once per frame. Pose maps of a clip are the use: same bones in
    every frame, moving. Outside a part's own window its coverage is exactly 0, so the
    frames come out as ``render_parts`` draws them one by one. Every frame must list the
    same parts in the same order (kind, size, fill, opacity; polygons and non-circular
    ellipses are not supported), differing only in where they are. ``visible``
    ``[F, P]`` (0 or 1) leaves part P out of frame F exactly as if that frame had not
    listed it (its points there need only be finite).
    Returns float ``[F, H, W, 3]`` in [0, 1]."""
    height, width = background.shape[:2]
    xs, ys = _grid(height, width)
    images = np.repeat(background.astype(np.float32)[None], len(sequence), axis=0)
    for index, part in enumerate(sequence[0]):
        # in the points' own dtype: float32 keypoints must round as render_parts rounds them
        track = np.stack([np.asarray(frame[index].points) for frame in sequence])  # [F, N, 2]
        drawn = track if visible is None else track[visible[:, index] > 0]
        # one window holding the part in every frame that draws it (coverage beyond a
        # frame's own window is exactly 0, so a larger region changes no pixel)
        reach = (max(part.radii) if part.radii else 0.0) + 1.5
        window = _box(drawn.reshape(-1, 2).astype(np.float64), reach, height, width) if len(drawn) else None
        if window is None:
            continue
        rows, cols = window
        # the part's points per frame, as [F, 1, 1] columns broadcasting over the window
        points = track.transpose(1, 2, 0)[..., None, None]  # [N, 2, F, 1, 1]
        moving = Part(part.kind, points, part.radii, part.fill, part.angle, part.outline, part.opacity)
        distance, along, across = SHAPES[part.kind](moving, xs[rows, cols][None], ys[rows, cols][None])
        alpha = np.clip(0.5 - distance, 0, 1) * part.opacity
        if visible is not None:  # x 0 adds exactly nothing below; x 1 changes nothing
            alpha = alpha * visible[:, index, None, None]
        region = images[:, rows, cols]
        region += (_colour(part.fill, along, across) - region) * alpha[..., None]
    return np.clip(images, 0, 1)


def _window(part: Part, outline: float, height: int, width: int) -> tuple[slice, slice] | None:
    """Rows and columns the part can touch: its points, grown by its size and the AA ramp."""
    reach = (max(part.radii) if part.radii else 0.0) + outline + 1.5
    return _box(np.asarray(part.points, np.float64), reach, height, width)


def _box(points: np.ndarray, reach: float, height: int, width: int) -> tuple[slice, slice] | None:
    """Rows and columns within ``reach`` of ``points`` ``[N, 2]``, on the canvas (None: off
    it, or a point has no finite place: such a part is not drawn)."""
    if not np.isfinite(points).all():
        return None
    x0, y0 = np.floor(points.min(0) - reach).astype(int)
    x1, y1 = np.ceil(points.max(0) + reach).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)
