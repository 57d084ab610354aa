"""Moving an image's pixels with its skeleton, bone by bone (AnimatedDrawings-style).

Each movable pixel of the image belongs to its nearest bone of the image's own
skeleton; each bone's rigid motion (rotation, scale, translation from its place in the
image's skeleton to its place in a frame's) carries those pixels along. Backward
mapping: every output pixel takes the image pixel its nearest moved bone brings there,
if that pixel belongs to that bone, so there are no holes and no smearing; where no
bone brings anything the output keeps ``base``.

Two users: the bench's ``skeleton-warp`` baseline (the character's mask movable, the
background behind it cleared) and, for models trained with ``reference_warp_channels``,
the reference warped to every frame's skeleton as input channels beside the target
(the pixels near the reference's bones movable, nothing cleared: a hint the model
corrects, drawn the same way in training and in ``animate``, where no mask exists).
Written here: no library we depend on warps an image by a 2D skeleton.
"""

from __future__ import annotations

import numpy as np

from charanim.pose.formats import get_format

#: pixels this far from the reference's nearest bone, as a share of its skeleton's extent,
#: move with it in the model's warp input. On the world's characters half the pixels lie
#: within 2 px (of a ~40 px skeleton) of a bone and 80-90 % within 6 px; farther out
#: lies the background as often as the body
NEAR_BONE = 0.15


def segment_distance(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of every (xs, ys) point to the segment a-b; a, b ``[2]`` or ``[N, 2]``
    (then xs/ys broadcast against ``[N, 1, 1]``)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ax, ay = a[..., 0, None, None], a[..., 1, None, None]
    bx, by = b[..., 0, None, None], b[..., 1, None, None]
    dx, dy = bx - ax, by - ay
    t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
    return np.hypot(xs - (ax + t * dx), ys - (ay + t * dy))


def _inverse_similarities(pose: np.ndarray, reference: np.ndarray, a: int, b: int) -> np.ndarray:
    """``[F, 2, 3]``: per frame, the map taking bone a-b from its place in ``pose``
    ``[F, K, 3]`` back onto its place in ``reference`` ``[K, 3]``."""
    a0, a1 = pose[:, a, :2].astype(np.float64), pose[:, b, :2].astype(np.float64)
    b0, b1 = reference[a, :2].astype(np.float64), reference[b, :2].astype(np.float64)
    va, vb = a1 - a0, b1 - b0
    scale = np.linalg.norm(vb) / np.maximum(np.linalg.norm(va, axis=-1), 1e-6)
    angle = np.arctan2(vb[1], vb[0]) - np.arctan2(va[:, 1], va[:, 0])
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    rotation = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # [F, 2, 2]
    shift = b0 - np.einsum("fij,fj->fi", rotation, a0)
    return np.concatenate([rotation, shift[..., None]], -1)


def seen_bones(points: np.ndarray, body_format: str) -> list[tuple[int, int]]:
    """The format's bones whose two ends ``points`` ``[K, 3]`` shows."""
    return [(a, b) for a, b in get_format(body_format).bones if points[a, 2] > 0 and points[b, 2] > 0]


def near_bones(
    points: np.ndarray, body_format: str, size: tuple[int, int], share: float = NEAR_BONE
) -> np.ndarray:
    """``bool [H, W]``: pixels within ``share`` of the skeleton's extent of one of its bones."""
    width, height = size
    bones = seen_bones(points, body_format)
    if not bones:
        return np.zeros((height, width), bool)
    return _bone_distances(points, bones, size).min(0) < _near_radius(points, share)


def _near_radius(points: np.ndarray, share: float) -> float:
    seen = points[points[:, 2] > 0, :2]
    return max(share * float(np.ptp(seen, axis=0).max()), 1.5)


def _pixel_centres(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) ``[H, W]``: every pixel's centre."""
    width, height = size
    return np.mgrid[0:height, 0:width].astype(np.float64) + 0.5


def _bone_distances(points: np.ndarray, bones: list[tuple[int, int]], size: tuple[int, int]) -> np.ndarray:
    """``[bones, H, W]``: each pixel's distance to each bone of ``points``."""
    ys, xs = _pixel_centres(size)
    ends = np.array([(points[a, :2], points[b, :2]) for a, b in bones], np.float64)
    return segment_distance(xs, ys, ends[:, 0], ends[:, 1])


def bone_warp(
    image: np.ndarray,
    base: np.ndarray,
    movable: np.ndarray | float,
    reference_points: np.ndarray,
    motion: np.ndarray,
    body_format: str,
) -> np.ndarray:
    """``image`` ``[H, W, 3]`` warped to each frame of ``motion`` ``[F, K, 3]`` (output
    pixels, like ``reference_points`` ``[K, 3]``): ``[F, H, W, 3]`` of ``base``'s dtype.
    Pixels where ``movable`` (``bool [H, W]``, or a share as in :func:`near_bones`) is False
    stay put; output pixels no bone reaches keep ``base`` ``[H, W, 3]``. A bone hidden in a
    frame moves nothing in it."""
    height, width = image.shape[:2]
    frames = np.repeat(base[None], len(motion), axis=0)
    bones = seen_bones(reference_points, body_format)
    if not bones:
        return frames
    ys, xs = _pixel_centres((width, height))
    distances = _bone_distances(reference_points, bones, (width, height))  # once, for both uses
    if not isinstance(movable, np.ndarray):
        movable = distances.min(0) < _near_radius(reference_points, movable)
    if not movable.any():
        return frames
    owner = np.where(movable, distances.argmin(0), -1)
    best = np.full((len(motion), height, width), np.inf)
    for bone, (a, b) in enumerate(bones):
        shown = (motion[:, a, 2] > 0) & (motion[:, b, 2] > 0)  # [F]
        owned = owner == bone
        if not shown.any() or not owned.any():
            continue
        inverse = _inverse_similarities(motion, reference_points, a, b)
        # only the output pixels the bone's own pixels can land on (a limb is a small part
        # of the frame): the box its pixels' box is carried to, over all frames
        window = _landing_box(inverse[shown], owned, (width, height))
        if window is None:
            continue
        x_cut, y_cut = xs[window], ys[window]
        inverse = inverse[..., None, None]  # [F, 2, 3, 1, 1]
        sx = inverse[:, 0, 0] * x_cut + inverse[:, 0, 1] * y_cut + inverse[:, 0, 2]
        sy = inverse[:, 1, 0] * x_cut + inverse[:, 1, 1] * y_cut + inverse[:, 1, 2]
        ix, iy = np.floor(sx).astype(int), np.floor(sy).astype(int)
        inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        ix, iy = ix.clip(0, width - 1), iy.clip(0, height - 1)
        mine = inside & (owner[iy, ix] == bone) & shown[:, None, None]
        near = segment_distance(x_cut, y_cut, motion[:, a, :2], motion[:, b, :2])
        cut_best, cut_frames = best[(slice(None), *window)], frames[(slice(None), *window)]
        take = mine & (near < cut_best)
        cut_frames[take] = image[iy[take], ix[take]]
        cut_best[take] = near[take]
    return frames


def _landing_box(inverse: np.ndarray, owned: np.ndarray, size: tuple[int, int]) -> tuple[slice, slice] | None:
    """(rows, columns) of the output holding every pixel the maps ``inverse`` ``[F, 2, 3]``
    send into the box of ``owned`` (a pixel margin for rounding), or None if off-frame."""
    width, height = size
    rows, columns = np.nonzero(owned)
    x0, x1, y0, y1 = columns.min(), columns.max() + 1, rows.min(), rows.max() + 1
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64)
    rotation, shift = inverse[:, :, :2], inverse[:, :, 2]
    if np.abs(np.linalg.det(rotation)).min() < 1e-9:  # a bone of no length in the reference
        return slice(0, height), slice(0, width)
    forward = np.linalg.inv(rotation)  # the bone's own map, reference -> frame
    landed = np.einsum("fij,fcj->fci", forward, corners[None] - shift[:, None])  # [F, 4, 2]
    left, top = np.floor(landed.min((0, 1))).astype(int) - 1
    right, bottom = np.ceil(landed.max((0, 1))).astype(int) + 1
    left, top, right, bottom = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if left >= right or top >= bottom:
        return None
    return slice(top, bottom), slice(left, right)
