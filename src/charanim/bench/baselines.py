"""The two baselines every bench run includes.

``static``: the reference image, unchanged, for every frame (what a model must beat to
have animated anything). ``skeleton-warp``: an AnimatedDrawings-style geometric
animation: each reference pixel of the character belongs to its nearest bone; the
bone's rigid motion (from the reference pose to the retargeted driving pose) moves it.
No learning, no new pixels: where the character uncovers background, the reference's
background colour fills in.
"""

from __future__ import annotations

import numpy as np

from charanim.bench.cases import BenchCase
from charanim.metrics import background_colour, foreground_mask
from charanim.pose.formats import get_format
from charanim.pose.retarget import retarget


def static(case: BenchCase) -> np.ndarray:
    return np.repeat(case.reference[None], len(case.driving), axis=0)


def _segment_distance(xs, ys, a, b):
    ab = b - a
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / max(float(ab @ ab), 1e-6), 0, 1)
    return np.hypot(xs - (a[0] + t * ab[0]), ys - (a[1] + t * ab[1]))


def _similarity(a0, a1, b0, b1):
    """2x3 matrix mapping segment (a0, a1) onto (b0, b1): rotation, scale, translation."""
    va, vb = a1 - a0, b1 - b0
    scale = np.linalg.norm(vb) / max(np.linalg.norm(va), 1e-6)
    angle = np.arctan2(vb[1], vb[0]) - np.arctan2(va[1], va[0])
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    return np.hstack([rotation, (b0 - rotation @ a0)[:, None]])


def skeleton_warp(case: BenchCase) -> np.ndarray | None:
    """None when the case has no skeletons to warp with."""
    if case.driving_keypoints is None or case.reference_keypoints is None:
        return None
    fmt = case.reference_keypoints.header.body_format
    if case.driving_keypoints.header.body_format != fmt:
        return None
    reference_points = case.reference_keypoints.body_array()[0]
    height, width = case.reference.shape[:2]
    motion = retarget(
        case.driving_keypoints.body_array()[: len(case.driving)],
        reference_points,
        fmt,
        reference_box=(0, 0, width, height),
    )
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    background = background_colour(case.reference)
    mask = (
        case.reference_mask > 0
        if case.reference_mask is not None
        else foreground_mask(case.reference[None], background)[0]
    )
    bones = [
        (a, b) for a, b in get_format(fmt).bones if reference_points[a, 2] > 0 and reference_points[b, 2] > 0
    ]
    if not bones or not mask.any():
        return None
    # every character pixel of the reference belongs to its nearest bone
    distances = np.stack(
        [_segment_distance(xs, ys, reference_points[a, :2], reference_points[b, :2]) for a, b in bones]
    )
    owner = np.where(mask, distances.argmin(0), -1)
    # the reference's own background stays; only the character's pixels are cleared
    plate = np.where(mask[..., None], np.asarray(background, np.float64), case.reference)
    frames = np.empty((len(motion), height, width, 3), np.uint8)
    for index, pose in enumerate(motion):
        # backward mapping: each output pixel takes the reference pixel its nearest moved
        # bone brings there, if that pixel belongs to that bone (no holes, no smearing)
        out = plate.copy()
        best = np.full((height, width), np.inf)
        for bone, (a, b) in enumerate(bones):
            if pose[a, 2] <= 0 or pose[b, 2] <= 0:
                continue
            inverse = _similarity(pose[a, :2], pose[b, :2], reference_points[a, :2], reference_points[b, :2])
            sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
            sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
            ix, iy = np.floor(sx).astype(int), np.floor(sy).astype(int)
            inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
            ix, iy = ix.clip(0, width - 1), iy.clip(0, height - 1)
            mine = inside & (owner[iy, ix] == bone)
            near = _segment_distance(xs, ys, pose[a, :2], pose[b, :2])
            take = mine & (near < best)
            out[take] = case.reference[iy[take], ix[take]]
            best[take] = near[take]
        frames[index] = out.astype(np.uint8)
    return frames
