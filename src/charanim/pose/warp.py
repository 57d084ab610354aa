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
import torch
import torch.nn.functional as F

from charanim.array_cache import ArrayCache
from charanim.pose.formats import get_format
from charanim.raster import points_box

#: pixels this far from the reference's nearest bone, as a share of its skeleton's extent,
#: move with it in the model's warp input. On the world's characters half the pixels lie
#: within 2 px (of a ~40 px skeleton) of a bone and 80-90 % within 6 px; farther out
#: lies the background as often as the body
NEAR_BONE = 0.15


def _squared_segment_distance(xs, ys, ax, ay, bx, by) -> np.ndarray:
    """Squared distance of point (xs, ys) to segment (ax, ay)-(bx, by), element by element
    (all broadcast together). Squared: only compared, so no square root."""
    dx, dy = bx - ax, by - ay
    px, py = xs - ax, ys - ay
    t = (px * dx + py * dy) / np.maximum(dx * dx + dy * dy, 1e-6)
    np.clip(t, 0, 1, out=t)
    px -= t * dx
    py -= t * dy
    return px * px + py * py


def _similarities(from_a: np.ndarray, from_b: np.ndarray, to_a: np.ndarray, to_b: np.ndarray) -> np.ndarray:
    """``[..., 2, 3]``: the rotation, scale and shift taking segment from_a-from_b onto
    to_a-to_b (points ``[..., 2]``, broadcast together)."""
    va, vb = from_b - from_a, to_b - to_a
    scale = np.hypot(vb[..., 0], vb[..., 1]) / np.maximum(np.hypot(va[..., 0], va[..., 1]), 1e-6)
    angle = np.arctan2(vb[..., 1], vb[..., 0]) - np.arctan2(va[..., 1], va[..., 0])
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    shift_x = to_a[..., 0] - (c * from_a[..., 0] - s * from_a[..., 1])
    shift_y = to_a[..., 1] - (s * from_a[..., 0] + c * from_a[..., 1])
    return np.stack([np.stack([c, -s, shift_x], -1), np.stack([s, c, shift_y], -1)], -2)


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
    return _bone_distances(points, bones, size).min(0) < _near_radius(points, share) ** 2


def _near_radius(points: np.ndarray, share: float) -> float:
    seen = points[points[:, 2] > 0, :2]
    return max(share * float(np.ptp(seen, axis=0).max()), 1.5)


def fill_from_around(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``image`` ``[H, W, C]`` with its ``hole`` pixels (``bool [H, W]``) replaced by a
    smooth fill from the pixels around them (push-pull: the known pixels averaged over
    coarser and coarser grids, then each level's missing pixels taken from the next
    coarser one, upsampled). Unchanged when nothing around is known. Written here: no
    library we depend on inpaints (OpenCV is the RGB plugin's, not the core's)."""
    if not hole.any() or hole.all():
        return image.copy()
    values = torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]
    known = torch.from_numpy(~hole).float()[None, None]
    levels = [(values * known, known)]
    while levels[-1][1].min() == 0 and min(levels[-1][1].shape[-2:]) > 1:  # push
        total, weight = levels[-1]
        levels.append((F.avg_pool2d(total, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    total, weight = levels[-1]
    filled = total / weight.clamp_min(1e-6)
    for total, weight in reversed(levels[:-1]):  # pull
        coarse = F.interpolate(filled, size=total.shape[-2:], mode="bilinear", align_corners=False)
        share = weight.clamp(0, 1)
        filled = share * (total / weight.clamp_min(1e-6)) + (1 - share) * coarse
    out = image.copy()
    out[hole] = filled[0].permute(1, 2, 0).numpy()[hole].astype(image.dtype)
    return out


def cleared_of_bones(
    image: np.ndarray, points: np.ndarray, body_format: str, share: float = NEAR_BONE
) -> np.ndarray:
    """``image`` ``[H, W, C]`` with the pixels :func:`bone_warp` moves for ``share``
    (those near the skeleton ``points``' bones) filled from the pixels around them: the
    scene behind the character, roughly, where a limb that moves away leaves nothing."""
    height, width = image.shape[:2]
    return fill_from_around(image, near_bones(points, body_format, (width, height), share))


Box = tuple[slice, slice]


def _bone_distances(
    points: np.ndarray, bones: list[tuple[int, int]], size: tuple[int, int], box: Box | None = None
) -> np.ndarray:
    """``[bones, h, w]``: the squared distance of each pixel of ``box`` (rows, columns;
    default the whole ``size``) to each bone of ``points``."""
    width, height = size
    rows, columns = box or (slice(0, height), slice(0, width))
    ys, xs = np.mgrid[rows, columns].astype(np.float64) + 0.5  # pixel centres
    ends = np.array([(points[a, :2], points[b, :2]) for a, b in bones], np.float64)[..., None, None]
    return _squared_segment_distance(xs, ys, ends[:, 0, 0], ends[:, 0, 1], ends[:, 1, 0], ends[:, 1, 1])


def _mask_box(mask: np.ndarray) -> Box:
    rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)


def _ownership(
    points: np.ndarray, bones: list[tuple[int, int]], size: tuple[int, int], movable: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Which bone each pixel moves with: ``owner`` (flat ``[H·W]``, -1 where it stays put:
    not ``movable``, a mask or a share as in :func:`near_bones`) and, per bone, its
    pixels' count and box ``[bones, 5]``: (count, top, left, bottom, right), exclusive ends."""
    width, height = size
    # the bones' distances only where pixels may move: the mask's box, or near the skeleton
    if isinstance(movable, np.ndarray):
        box = _mask_box(movable)
        distances = _bone_distances(points, bones, size, box)
        movable_there = movable[box]
    else:
        radius = _near_radius(points, movable)
        # a pixel to spare; a skeleton off the canvas or with no place: every pixel, as exact
        ends = points[np.array(bones).ravel(), :2].astype(np.float64)
        box = points_box(ends, radius + 1, height, width) or (slice(0, height), slice(0, width))
        distances = _bone_distances(points, bones, size, box)
        movable_there = distances.min(0) < radius**2
    owner = np.full((height, width), -1, np.int8 if len(bones) < 128 else np.int16)  # small: cached
    owner[box] = np.where(movable_there, distances.argmin(0), -1)
    rows, columns = np.nonzero(owner >= 0)
    ids = owner[rows, columns]
    owned = np.empty((len(bones), 5), np.intp)
    owned[:, 0] = np.bincount(ids, minlength=len(bones))
    owned[:, 1:3] = (height, width)
    owned[:, 3:5] = 0
    np.minimum.at(owned[:, 1], ids, rows)
    np.minimum.at(owned[:, 2], ids, columns)
    np.maximum.at(owned[:, 3], ids, rows + 1)
    np.maximum.at(owned[:, 4], ids, columns + 1)
    return owner.ravel(), owned


#: which bone each pixel near a reference's bones moves with, per reference skeleton (a
#: 64x64 frame's takes about 4.5 KB: the training world's 6,000 references fit)
OWNERSHIP_CACHE = ArrayCache(64 * 2**20)


def bone_warp(
    image: np.ndarray,
    base: np.ndarray,
    movable: np.ndarray | float,
    reference_points: np.ndarray,
    motion: np.ndarray,
    body_format: str,
    vacated: np.ndarray | None = None,
) -> np.ndarray:
    """``image`` ``[H, W, 3]`` warped to each frame of ``motion`` ``[F, K, 3]`` (output
    pixels, like ``reference_points`` ``[K, 3]``): ``[F, H, W, 3]`` of ``base``'s dtype.
    Pixels where ``movable`` (``bool [H, W]``, or a share as in :func:`near_bones`) is False
    stay put; output pixels no bone reaches keep ``base`` ``[H, W, 3]``, or ``vacated``
    ``[H, W, 3]`` where given and, in that frame, their own bone carried the pixel a pixel
    or more away (what shows behind a limb that left). A bone hidden in a frame moves
    nothing in it."""
    height, width = image.shape[:2]
    frames = np.repeat(base[None], len(motion), axis=0)
    bones = seen_bones(reference_points, body_format)
    if not bones:
        return frames
    if isinstance(movable, np.ndarray):
        if not movable.any():
            return frames
        flat_owner, owned = _ownership(reference_points, bones, (width, height), movable)
    else:  # depends on the reference's skeleton alone: once per reference (training repeats them)
        skeleton = np.ascontiguousarray(reference_points)
        # the bones too: two formats may have as many keypoints (COCO-17 and AP-10K's 17)
        key = (skeleton.tobytes(), skeleton.dtype.str, tuple(bones), (width, height), float(movable))
        flat_owner, owned = OWNERSHIP_CACHE.get(
            key, lambda: _ownership(reference_points, bones, (width, height), movable)
        )
    first, second = np.array(bones).T
    points, moving = reference_points[:, :2].astype(np.float64), motion[..., :2].astype(np.float64)
    shown = (motion[:, first, 2] > 0) & (motion[:, second, 2] > 0)  # [F, bones]
    # each bone's map from a frame back onto the reference, and its own (reference -> frame)
    inverse = _similarities(moving[:, first], moving[:, second], points[first], points[second])
    forward = _similarities(points[first], points[second], moving[:, first], moving[:, second])
    if vacated is not None:
        _show_vacated(frames, vacated, flat_owner, forward, shown)
    windows = _landing_boxes(forward, inverse, shown, owned, (width, height))
    columns, rows = np.arange(width) + 0.5, (np.arange(height) + 0.5)[:, None]  # pixel centres
    # per output pixel the image pixel it takes (-1: none) and its squared distance to the
    # bone that brings it, flat; the pixels are gathered once at the end
    taken = np.full(len(motion) * height * width, -1)
    best = np.full(len(taken), np.inf)
    ends_a, ends_b = moving[:, first], moving[:, second]  # [F, bones, 2]
    for bone, window in enumerate(windows):
        if window is None:
            continue
        (top, bottom), (left, right) = window
        x, y = columns[left:right], rows[top:bottom]
        m = inverse[:, bone, :, :, None, None]  # [F, 2, 3, 1, 1]
        ix = np.floor(m[:, 0, 0] * x + m[:, 0, 1] * y + m[:, 0, 2]).astype(np.intp)
        iy = np.floor(m[:, 1, 0] * x + m[:, 1, 1] * y + m[:, 1, 2]).astype(np.intp)
        inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height) & shown[:, bone, None, None]
        source = np.where(inside, iy * width + ix, 0)
        frame, r, c = np.nonzero(inside & (flat_owner[source] == bone))  # in the window
        # the bone nearest to an output pixel wins it, as in the reference image
        a, b = ends_a[frame, bone], ends_b[frame, bone]
        near = _squared_segment_distance(x[c], y[r, 0], a[:, 0], a[:, 1], b[:, 0], b[:, 1])
        target = (frame * height + r + top) * width + c + left
        take = near < best[target]
        target = target[take]
        best[target] = near[take]
        taken[target] = source[frame[take], r[take], c[take]]
    moved = np.flatnonzero(taken >= 0)
    flat = frames.reshape(-1, frames.shape[-1])  # a view: np.repeat's output is contiguous
    flat[moved] = image.reshape(-1, image.shape[-1])[taken[moved]]
    return frames


def _show_vacated(
    frames: np.ndarray, vacated: np.ndarray, flat_owner: np.ndarray, forward: np.ndarray, shown: np.ndarray
) -> None:
    """In place: each movable pixel of ``frames`` ``[F, H, W, C]`` takes ``vacated``'s in
    the frames where its bone (``flat_owner``) is ``shown`` and its map ``forward``
    ``[F, bones, 2, 3]`` carries the pixel's centre a pixel or more away."""
    count, height, width = frames.shape[:3]
    pixels = np.flatnonzero(flat_owner >= 0)
    bone = flat_owner[pixels]
    y, x = np.divmod(pixels, width)
    x, y = x + 0.5, y + 0.5
    m = forward[:, bone]  # [F, N, 2, 3]
    dx = m[..., 0, 0] * x + m[..., 0, 1] * y + m[..., 0, 2] - x
    dy = m[..., 1, 0] * x + m[..., 1, 1] * y + m[..., 1, 2] - y
    frame, index = np.nonzero((dx * dx + dy * dy >= 1.0) & shown[:, bone])
    flat = frames.reshape(count, height * width, -1)
    flat[frame, pixels[index]] = vacated.reshape(height * width, -1)[pixels[index]]


def _landing_boxes(
    forward: np.ndarray,
    inverse: np.ndarray,
    shown: np.ndarray,
    owned: np.ndarray,
    size: tuple[int, int],
) -> list[tuple[tuple[int, int], tuple[int, int]] | None]:
    """Per bone, ((top, bottom), (left, right)) of the output holding every pixel its maps
    ``forward`` ``[F, bones, 2, 3]`` carry the box of its own pixels (``owned``, from
    :func:`_ownership`) to, in the frames it is ``shown`` (a pixel margin for rounding);
    None if it moves nothing there. Only those output pixels can take the bone's pixels:
    a limb is a small part of the frame."""
    width, height = size
    count, low_row, low_column, high_row, high_column = owned.T
    windows: list = [None] * len(owned)
    # where the maps carry those boxes' corners in the frames each bone is shown
    x0, x1 = low_column.astype(np.float64), high_column.astype(np.float64)
    y0, y1 = low_row.astype(np.float64), high_row.astype(np.float64)
    corner_x, corner_y = np.stack([x0, x1, x0, x1], -1), np.stack([y0, y0, y1, y1], -1)  # [bones, 4]
    hidden = ~shown[..., None]  # [F, bones, 1]
    spans = []
    for axis in (0, 1):
        m = forward[:, :, axis, :, None]  # [F, bones, 3, 1]
        landed = m[:, :, 0] * corner_x + m[:, :, 1] * corner_y + m[:, :, 2]  # [F, bones, 4]
        low = np.where(hidden, np.inf, landed).min((0, 2))
        high = np.where(hidden, -np.inf, landed).max((0, 2))
        spans.append((low, high))
    (left, right), (top, bottom) = spans
    # a bone of no length in the reference: any pixel may land anywhere
    scale = inverse[:, :, 0, 0] ** 2 + inverse[:, :, 1, 0] ** 2  # [F, bones]
    degenerate = np.where(shown, scale, np.inf).min(0) < 1e-9
    for bone in np.flatnonzero((count > 0) & shown.any(0)):
        if degenerate[bone]:
            windows[bone] = ((0, height), (0, width))
            continue
        # a pixel of margin for rounding
        box_left, box_top = max(int(np.floor(left[bone])) - 1, 0), max(int(np.floor(top[bone])) - 1, 0)
        box_right = min(int(np.ceil(right[bone])) + 1, width)
        box_bottom = min(int(np.ceil(bottom[bone])) + 1, height)
        if box_left < box_right and box_top < box_bottom:
            windows[bone] = ((box_top, box_bottom), (box_left, box_right))
    return windows
