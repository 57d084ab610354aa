"""Retargeting: the driving motion in the reference's proportions and place.

1. Every bone of the driving skeleton is rescaled to the reference's length for that
   bone (driving lengths: the 90th percentile over frames, so foreshortened frames do
   not count as the true length).
2. The result is moved so its root starts at the reference's root, and the root's
   travel is scaled by the size ratio of the two skeletons.

Partial transfer keeps the reference's own points outside the transferred part (and
then the root stays put).
"""

from __future__ import annotations

import numpy as np

from charanim.errors import ConditionerInputError
from charanim.pose.formats import get_format
from charanim.pose.skeleton import TREES, bone_lengths, extend, rescale_bones

PARTS = ("body", "upper", "face", "hands")
_UPPER_WORDS = (
    "shoulder",
    "elbow",
    "wrist",
    "nose",
    "eye",
    "ear",
    "neck",
    "front",
    "wing",
    "head",
    "beak",
    "mouth",
)
_FACE_WORDS = ("nose", "eye", "ear", "mouth", "beak", "head")


def part_mask(body_format: str, part: str) -> np.ndarray:
    """Booleans over the format's keypoints: which ones the driving signal controls."""
    names = get_format(body_format).keypoints
    if part == "body":
        return np.ones(len(names), bool)
    if part == "upper":
        return np.array([any(w in n for w in _UPPER_WORDS) for n in names])
    if part == "face":
        return np.array([any(w in n for w in _FACE_WORDS) for n in names])
    if part == "hands":
        return np.array([("wrist" in n or "front_paw" in n or "wing_tip" in n) for n in names])
    raise ConditionerInputError(f"Unknown --transfer part '{part}'; use one of {', '.join(PARTS)}.")


def _root(points: np.ndarray, body_format: str) -> np.ndarray:
    tree = TREES[body_format]
    full = extend(tree, points)
    return full[..., tree.names.index(tree.root), :]


def _anchors(driving: np.ndarray, reference: np.ndarray, body_format: str) -> np.ndarray:
    """Per frame, the point that positions the skeleton: its root when the root is seen
    in the reference too, else the mean of the points both show (close-ups hide hips)."""
    roots = _root(driving, body_format)
    if _root(reference[None], body_format)[0, 2] > 0 and (roots[:, 2] > 0).any():
        return roots
    shared = (reference[:, 2] > 0)[None] & (driving[..., 2] > 0)
    count = shared.sum(-1, keepdims=True)
    xy = (driving[..., :2] * shared[..., None]).sum(-2) / np.maximum(count, 1)
    return np.concatenate([xy, (count > 0).astype(np.float32)], -1)


def _reference_anchor(first: np.ndarray, reference: np.ndarray, body_format: str) -> np.ndarray:
    root = _root(reference[None], body_format)[0]
    if root[2] > 0 and _root(first[None], body_format)[0, 2] > 0:
        return root[:2]
    shared = (reference[:, 2] > 0) & (first[:, 2] > 0)
    return reference[shared, :2].mean(0) if shared.any() else reference[reference[:, 2] > 0, :2].mean(0)


def skeleton_size(points: np.ndarray, body_format: str) -> float:
    """Sum of the tree's bone lengths (over present bones); a robust overall size."""
    lengths = bone_lengths(TREES[body_format], points)
    return float(np.nansum(_percentile(lengths, 90) if lengths.ndim > 1 else lengths))


def _percentile(lengths: np.ndarray, q: float) -> np.ndarray:
    """Per-bone percentile over frames; NaN for bones never seen (without numpy's warning)."""
    seen = np.isfinite(lengths).any(0)
    out = np.full(lengths.shape[1], np.nan)
    if seen.any():
        known = lengths[:, seen]
        # numpy's nanpercentile loops in Python per column; with no gap the plain one is the same
        percentile = np.percentile if np.isfinite(known).all() else np.nanpercentile
        out[seen] = percentile(known, q, axis=0)
    return out


def retarget(driving: np.ndarray, reference: np.ndarray, body_format: str, part: str = "body") -> np.ndarray:
    """``driving`` ``[F, K, 3]`` and ``reference`` ``[K, 3]`` (same format, pixels of the
    output) -> ``[F, K, 3]``: the driving motion on the reference's skeleton."""
    tree = TREES[body_format]
    if not (reference[:, 2] > 0).any():
        raise ConditionerInputError("The reference has no keypoints to retarget onto.")
    if not (driving[..., 2] > 0).any():
        raise ConditionerInputError("The driving video has no keypoints to retarget.")
    drive_lengths = _percentile(bone_lengths(tree, driving), 90)
    reference_lengths = bone_lengths(tree, reference)
    scales = np.where(
        np.isfinite(drive_lengths) & np.isfinite(reference_lengths) & (drive_lengths > 1e-6),
        reference_lengths / np.maximum(drive_lengths, 1e-6),
        1.0,
    )
    out = rescale_bones(tree, driving, np.clip(scales, 0.2, 5.0))
    ratio = skeleton_size(reference, body_format) / max(skeleton_size(driving, body_format), 1e-6)
    anchors = _anchors(out, reference, body_format)
    present = anchors[:, 2] > 0
    first = int(np.argmax(present)) if present.any() else 0
    travel = (
        (anchors[:, :2] - anchors[first, :2]) * ratio if part == "body" else np.zeros_like(anchors[:, :2])
    )
    placed = out.copy()
    # each frame: its own anchor onto the reference's, then the (scaled) travel since frame one
    shift = _reference_anchor(out[first], reference, body_format) - anchors[:, :2] + travel
    placed[..., :2] = np.where(present[:, None, None], out[..., :2] + shift[:, None, :], out[..., :2])
    if part != "body":
        keep = ~part_mask(body_format, part)
        placed[:, keep] = reference[keep]
    return placed
