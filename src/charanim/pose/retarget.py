"""Retargeting: the driving motion in the reference's proportions and place.

1. Every bone of the driving skeleton is rescaled to the reference's length for that
   bone (driving lengths: the 90th percentile over frames, so foreshortened frames do
   not count as the true length).
2. The result is moved so its root starts at the reference's root, and the root's
   travel is scaled by the size ratio of the two skeletons (over the bones both show:
   a close-up driver hides its legs, which must not shrink its size).
3. The reference's skeleton says which limbs the character has: a joint the reference
   does not show at a place its image shows is not drawn (a two-legged blob does not grow
   the driver's four legs; a joint outside the image, cropped, is drawn), and a joint the
   driver never shows while the reference does holds the reference's own pose, carried
   along by its nearest joint the driver shows — its parent, or further up the tree when
   the parent is missing too (a driver without a tail, or a close-up that crops the legs
   or the whole lower body, leaves the reference's tail and legs in place rather than
   removed).

Partial transfer keeps the reference's own points outside the transferred part (and
then the root stays put).
"""

from __future__ import annotations

import functools

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


def size_ratio(driving: np.ndarray, reference: np.ndarray, body_format: str) -> float:
    """Reference size over driving size: sums of the tree's bone lengths over the bones
    both show (driving lengths: 90th percentile over frames); 1 when they share none."""
    return _size_ratio(*_lengths(TREES[body_format], driving, reference))


def _lengths(tree, driving: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bone lengths ``[E]``: the driver's (90th percentile over frames) and the reference's."""
    return _percentile(bone_lengths(tree, driving), 90), bone_lengths(tree, reference)


def _size_ratio(drive_lengths: np.ndarray, reference_lengths: np.ndarray) -> float:
    shared = np.isfinite(drive_lengths) & np.isfinite(reference_lengths)
    drive_size = float(drive_lengths[shared].sum())
    return float(reference_lengths[shared].sum()) / drive_size if drive_size > 1e-6 else 1.0


def _percentile(lengths: np.ndarray, q: float) -> np.ndarray:
    """Per-bone percentile over frames; NaN for bones never seen (without numpy's warning)."""
    seen = np.isfinite(lengths).any(0)
    out = np.full(lengths.shape[1], np.nan)
    if seen.any():
        known = lengths[:, seen]
        if np.isfinite(known).all():
            out[seen] = np.percentile(known, q, axis=0)
        else:  # numpy's nanpercentile loops in Python per column; torch's is one call (same method)
            import torch

            out[seen] = torch.nanquantile(torch.from_numpy(known), q / 100, dim=0).numpy()
    return out


def retarget(
    driving: np.ndarray,
    reference: np.ndarray,
    body_format: str,
    part: str = "body",
    reference_box: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """``driving`` ``[F, K, 3]`` and ``reference`` ``[K, 3]`` (same format, pixels of the
    output) -> ``[F, K, 3]``: the driving motion on the reference's skeleton.

    ``reference_box``: (left, top, right, bottom) of the reference image in those pixels;
    a joint the reference lacks is hidden only where it would lie inside it (without a
    box, wherever it would lie)."""
    tree = TREES[body_format]
    if not (reference[:, 2] > 0).any():
        raise ConditionerInputError("The reference has no keypoints to retarget onto.")
    if not (driving[..., 2] > 0).any():
        raise ConditionerInputError("The driving video has no keypoints to retarget.")
    drive_lengths, reference_lengths = _lengths(tree, driving, reference)
    scales = np.where(
        np.isfinite(drive_lengths) & np.isfinite(reference_lengths) & (drive_lengths > 1e-6),
        reference_lengths / np.maximum(drive_lengths, 1e-6),
        1.0,
    )
    out = rescale_bones(tree, driving, np.clip(scales, 0.2, 5.0))
    ratio = _size_ratio(drive_lengths, reference_lengths)
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
    return _limbs_of_the_reference(placed, reference, tree, reference_box)


def _limbs_of_the_reference(placed: np.ndarray, reference: np.ndarray, tree, box) -> np.ndarray:
    """Hide the joints the reference lacks where its image shows their place; give the
    joints only the reference shows its own pose relative to their nearest present joint
    in the tree (parents first, so whole limbs follow)."""
    names, count = tree.names, len(tree.format)
    # the format's joints only: arrays padded past it (the world's are) would shift the
    # virtual joints extend() appends
    own = reference[:count]
    reference_full = extend(tree, own)
    out = extend(tree, placed[:, :count])
    never_driven = ~(out[:, :count, 2] > 0).any(0)
    for _, child in tree.edges:
        c = names.index(child)
        if c >= count or not never_driven[c] or reference_full[c, 2] <= 0:
            continue
        for anchor in _nearest_joints(tree.format.name, child):
            if (out[:, c, 2] > 0).all():
                break
            if reference_full[anchor, 2] <= 0:
                continue
            # virtual joints (a pelvis) follow the joints held so far
            out = extend(tree, out[:, :count])
            carried = (out[:, anchor, 2] > 0) & ~(out[:, c, 2] > 0)
            out[carried, c, :2] = out[carried, anchor, :2] + (
                reference_full[c, :2] - reference_full[anchor, :2]
            )
            out[carried, c, 2] = reference_full[c, 2]
    held = out[:, :count].copy()
    absent = ~(own[:, 2] > 0)
    if box is not None:
        # a joint outside the reference's image may be a cropped limb, not a missing one
        # (a close-up's arms); where the image shows the place and no joint, there is none
        x, y = own[:, 0], own[:, 1]
        absent &= (x >= box[0]) & (x < box[2]) & (y >= box[1]) & (y < box[3])
    held[:, absent, 2] = 0.0
    return held.astype(placed.dtype)


@functools.cache
def _nearest_joints(body_format: str, name: str) -> tuple[int, ...]:
    """The format tree's other joints by distance from ``name`` (its parent first),
    leaving out the virtual joints made from it: a close-up that crops the hips also loses
    the pelvis, so its hips are carried by the neck instead. Cached: retargeting runs for
    every training sample."""
    tree = TREES[body_format]
    neighbours: dict[str, list[str]] = {}
    for parent, child in tree.edges:
        neighbours.setdefault(child, []).insert(0, parent)
        neighbours.setdefault(parent, []).append(child)
    order, frontier, seen = [], [name], {name}
    while frontier:
        following = []
        for joint in frontier:
            for other in neighbours.get(joint, []):
                if other not in seen:
                    seen.add(other)
                    following.append(other)
        order += following
        frontier = following
    made_of_it = {v for v, parts in tree.virtual.items() if name in parts}
    return tuple(tree.names.index(joint) for joint in order if joint not in made_of_it)
