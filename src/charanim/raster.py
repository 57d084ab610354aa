"""A small signed-distance rasteriser: the procedural world's characters, and pose maps.

Parts are capsules (limbs, tapered), ellipses (heads, bodies) and convex polygons
(hats, beaks), drawn back to front. Coverage comes analytically from the signed
distance (a one-pixel ramp), so edges are antialiased without supersampling. Each
part carries local coordinates (along / across it), so stripes and dots move with
the part instead of swimming in screen space. Everything is numpy over the pixel
grid, which at 64x64 renders a character in about a millisecond.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (xs, ys) ``[H, W]``; cached (every pose map of a clip reads them), so read-only."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = xs + 0.5, ys + 0.5
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


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


def render_part_tracks(
    parts: list[Part], tracks: np.ndarray, background: np.ndarray, visible: np.ndarray | None = None
) -> np.ndarray:
    """``render_parts`` (fills only, no outline) for every frame of a clip at once: each
    part is given once (``parts``: capsules and circles, their kind, size, fill and
    opacity; their points are not read) with its two points in every frame (``tracks``
    ``[P, F, 2, 2]``, a circle's centre twice, in the keypoints' own dtype: float32
    keypoints must round as render_parts rounds them), and evaluated for all frames in
    one numpy call over the union of its windows instead of once per frame. Pose maps
    of a clip are the use: the same bones in every frame, moving. Outside a part's own
    window its coverage is exactly 0, so the frames come out as ``render_parts`` draws
    them one by one. ``visible`` ``[F, P]`` (0 or 1) leaves part P out of frame F
    exactly as if that frame had not listed it (its points there need only be finite).
    Returns float ``[F, H, W, 3]`` in [0, 1]."""
    height, width = background.shape[:2]
    xs, ys = _grid(height, width)
    # channels first while blending: a part's coverage then broadcasts over whole rows,
    # not over a last axis of 3 (2.5x faster a blend; the same values element by element)
    images = np.repeat(background.astype(np.float32).transpose(2, 0, 1)[None], tracks.shape[1], axis=0)
    # the points per part, as [F, 1, 1] columns broadcasting over its window
    columns = tracks.transpose(0, 2, 3, 1)[..., None, None]  # [P, 2, 2, F, 1, 1]
    # parts left out of some frame (x 1 elsewhere changes nothing, so others skip the product)
    partly = None if visible is None else (visible != 1).any(0)
    for index, (part, window) in enumerate(
        zip(parts, _track_windows(parts, tracks, visible, height, width), strict=True)
    ):
        if window is None:
            continue
        # the window's pixel centres as a row [1, 1, w] and a column [1, h, 1]: what depends
        # on x or y alone is computed on them, and only the rest on the whole window
        window_rows, window_columns = window
        x, y = xs[:1, window_columns][None], ys[window_rows, :1][None]
        flat = part.fill.shade == 0 and part.fill.pattern not in PATTERNS
        if flat and part.kind == "capsule" and part.radii[0] == part.radii[1]:
            distance = _round_capsule_distance(columns[index], part.radii[0], x, y)
        elif flat and part.kind == "ellipse" and part.radii[0] == part.radii[1] and part.angle == 0:
            distance = _circle_distance(columns[index][0], part.radii[0], x, y)
        else:
            x, y = xs[window][None], ys[window][None]
            points = columns[index] if part.kind == "capsule" else columns[index][:1]
            moving = Part(part.kind, points, part.radii, part.fill, part.angle, part.outline, part.opacity)
            distance, along, across = SHAPES[part.kind](moving, x, y)
        alpha = np.clip(0.5 - distance, 0, 1) * part.opacity
        if partly is not None and partly[index]:  # x 0 adds exactly nothing below; x 1 changes nothing
            alpha = alpha * visible[:, index, None, None]
        # a flat fill is one colour: broadcast, the same values _colour would spread out
        colour = (
            np.asarray(part.fill.colour, np.float32).astype(distance.dtype)[:, None, None]
            if flat
            else np.moveaxis(_colour(part.fill, along, across), -1, 1)
        )
        region = images[(slice(None), slice(None), *window)]
        region += (colour - region) * alpha[:, None]
    return np.clip(images, 0, 1).transpose(0, 2, 3, 1)


def _round_capsule_distance(points, radius: float, xs, ys):
    """:func:`_capsule`'s signed distance for equal end radii, without the local
    coordinates a flat fill does not read (the same values: ``ra + t * 0`` is ``ra``).
    ``xs`` and ``ys`` broadcast to the pixels (a row and a column will do)."""
    (ax, ay), (bx, by) = points
    dx, dy = bx - ax, by - ay
    length2 = np.maximum(dx * dx + dy * dy, 1e-6)
    # in place where a temporary would be thrown away (the same operations, in the same order)
    t = (xs - ax) * dx + (ys - ay) * dy
    t /= length2
    np.clip(t, 0.0, 1.0, out=t)
    px, py = xs - (ax + t * dx), ys - (ay + t * dy)
    px *= px
    py *= py
    px += py
    np.sqrt(px, out=px)
    px -= radius  # ra + t * 0 is ra: t is finite wherever px is
    return px


def _circle_distance(centre, radius: float, xs, ys):
    """:func:`_ellipse`'s signed distance for a circle (angle 0), without the local
    coordinates: the same values (it scales by ``np.cos(0)`` and adds ``x * np.sin(0)``,
    in float64, which changes no number). ``xs`` and ``ys`` broadcast to the pixels."""
    cx, cy = centre
    scale = max(radius, 1e-3)
    lx = (xs - cx).astype(np.float64) / scale
    ly = (ys - cy).astype(np.float64) / scale
    return (np.sqrt(lx * lx + ly * ly) - 1.0) * radius


def _track_windows(parts, tracks, visible, height: int, width: int) -> list[tuple[slice, slice] | None]:
    """Per part, one window holding it in every frame that draws it (coverage beyond a
    frame's own window is exactly 0, so a larger region changes no pixel); None where no
    frame draws it on the canvas. :func:`points_box` for all parts in a few numpy calls."""
    drawn = np.ones(tracks.shape[:2], bool) if visible is None else (visible.T > 0)  # [P, F]
    points = tracks.astype(np.float64)
    finite = (
        np.isfinite(points).all((2, 3)) | ~drawn
    )  # points_box: a drawn point with no place hides the part
    low = np.where(drawn[..., None, None], points, np.inf).min((1, 2))
    high = np.where(drawn[..., None, None], points, -np.inf).max((1, 2))
    reach = np.array([(max(p.radii) if p.radii else 0.0) + 1.5 for p in parts])[:, None]
    with np.errstate(invalid="ignore"):  # parts no frame draws: inf - inf
        x0, y0 = np.floor(low - reach).clip(0, None).T
        x1, y1 = (np.ceil(high + reach) + 1).T
    drawable = drawn.any(1) & finite.all(1)
    windows = []
    for index in range(len(parts)):
        if not drawable[index]:
            windows.append(None)
            continue
        left, top = int(x0[index]), int(y0[index])
        right, bottom = min(int(x1[index]), width), min(int(y1[index]), height)
        windows.append(None if left >= right or top >= bottom else (slice(top, bottom), slice(left, right)))
    return windows


def _window(part: Part, outline: float, height: int, width: int) -> tuple[slice, slice] | None:
    """Rows and columns the part can touch: its points, grown by its size and the AA ramp."""
    reach = (max(part.radii) if part.radii else 0.0) + outline + 1.5
    return points_box(np.asarray(part.points, np.float64), reach, height, width)


def points_box(points: np.ndarray, reach: float, height: int, width: int) -> tuple[slice, slice] | None:
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
