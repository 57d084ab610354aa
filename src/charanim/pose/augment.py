"""Training-time pose augmentation against identity leakage (DreamActor-M2 stage 1).

The driving skeleton carries the driving body's proportions; a model trained on
exact skeletons learns to copy them. Scaling every bone by U(0.8, 1.2), the same
factor in every frame, from the root outwards, and jittering the skeleton's box,
keeps the motion and breaks the proportions.
"""

from __future__ import annotations

import numpy as np

from charanim.pose.skeleton import TREES, rescale_bones


def bone_length_jitter(
    points: np.ndarray,
    body_format: str,
    rng: np.random.Generator,
    low: float = 0.8,
    high: float = 1.2,
    symmetric: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale each bone by U(low, high), the same in every frame of ``[F, K, 3]`` points.

    With ``symmetric`` the left and right copies of a bone share a factor (a longer left
    arm than right arm is rarely what a character has). Returns the points and the
    per-edge factors.
    """
    tree = TREES[body_format]
    scales = rng.uniform(low, high, len(tree.edges))
    if symmetric:
        index = {edge: i for i, edge in enumerate(tree.edges)}
        for i, (parent, child) in enumerate(tree.edges):
            mirror = (parent.replace("left", "right"), child.replace("left", "right"))
            if "left" in parent + child and mirror in index:
                scales[index[mirror]] = scales[i]
    return rescale_bones(tree, points, scales), scales


def box_jitter(
    points: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    scale: float = 0.1,
    shift: float = 0.08,
) -> np.ndarray:
    """Scale the whole skeleton about its mean by U(1 - scale, 1 + scale) and move it by up
    to ``shift`` of the frame, the same for every frame."""
    present = points[..., 2] > 0
    if not present.any():
        return points.copy()
    centre = points[present][:, :2].mean(0)
    factor = rng.uniform(1 - scale, 1 + scale)
    offset = rng.uniform(-shift, shift, 2) * np.asarray(size, np.float64)
    out = points.copy()
    out[..., :2] = np.where(
        present[..., None], (points[..., :2] - centre) * factor + centre + offset, points[..., :2]
    )
    return out
