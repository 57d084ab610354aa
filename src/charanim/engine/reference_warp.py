"""The reference warped to the driving skeleton, for models with ``reference_warp_channels``.

A pose model is told where each limb goes (the pose map) and what the character looks
like (the reference), and must itself carry the limb's pixels there; a small denoiser
does that poorly (charanim-tiny's limbs land in the right place, blurred). Models trained
with ``reference_warp_channels`` also take, beside every target token, the reference's
own pixels moved bone by bone to that frame's skeleton (:func:`charanim.pose.warp.bone_warp`):
the limb's appearance already where it goes, so the model corrects a warp (seams, the
ghost of where the limb was, uncovered background) instead of drawing the limb.

Built from what the in-context condition carries in ``meta``, the same way in training
and in ``animate``: a pose condition's retargeted keypoints in output pixels and the
reference's, or a ``reference_grid`` — a callable ``(start, count) -> float32 [count, H,
W, 2]`` giving, for every output pixel of those frames, the (x, y) of the reference to
sample there (the RGB conditioner's, from the driver's optical flow). A condition with
neither gives the reference held still, which is also what a dropped motion condition
gives.

What the warp shows where a limb moved away (``behind``, the model's ``warp_behind``):
``reference``, the reference as it is (the limb's ghost, for the model to remove), or
``filled``: where a frame's skeleton carried a pixel away, the reference with the
pixels the warp moves filled from the pixels around them
(:func:`charanim.pose.warp.cleared_of_bones`) — no ghost, roughly the scene; what did
not move keeps the reference's own pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from charanim.conditioning import Condition
from charanim.pose.warp import NEAR_BONE, bone_warp, cleared_of_bones


def warped_reference(
    condition: Condition | None, reference: torch.Tensor, frames: int, behind: str = "reference"
) -> torch.Tensor:
    """``reference`` ``[3, H, W]`` (any range) moved to each of the condition's ``frames``
    skeletons: ``[3, frames, H, W]``, showing ``behind`` (``reference`` or ``filled``)
    where a moved limb stood. A training crop's condition (``meta["cut"]``) is warped over
    its crop's frames."""
    still = reference[:, None].expand(-1, frames, -1, -1)
    meta = condition.meta if condition is not None else {}
    start = int(meta.get("cut", 0))
    if meta.get("reference_grid") is not None:
        return _sampled(reference, meta["reference_grid"](start, frames))
    if meta.get("keypoints") is None or meta.get("reference_keypoints") is None:
        return still.clone()
    motion = np.asarray(meta["keypoints"], np.float64)[start : start + frames]
    if len(motion) < frames:  # a clip shorter than the window holds its last pose
        motion = np.concatenate([motion, np.repeat(motion[-1:], frames - len(motion), axis=0)])
    points = np.asarray(meta["reference_keypoints"], np.float64)
    image = reference.permute(1, 2, 0).cpu().float().numpy()
    vacated = cleared_of_bones(image, points, meta["body_format"]) if behind == "filled" else None
    warped = bone_warp(image, image, NEAR_BONE, points, motion, meta["body_format"], vacated)
    return torch.from_numpy(warped).permute(3, 0, 1, 2).to(reference)


def _sampled(reference: torch.Tensor, grid: np.ndarray) -> torch.Tensor:
    """``reference`` ``[3, H, W]`` sampled at ``grid`` ``[F, H, W, 2]`` (pixel x, y; the
    edge continues past the border): ``[3, F, H, W]``."""
    frames, height, width = grid.shape[:3]
    points = torch.from_numpy(grid).float()
    normalised = torch.stack(
        [(2 * points[..., 0] + 1) / width - 1, (2 * points[..., 1] + 1) / height - 1], -1
    )
    image = reference.cpu().float()[None].expand(frames, -1, -1, -1)
    moved = torch.nn.functional.grid_sample(image, normalised, padding_mode="border", align_corners=False)
    return moved.permute(1, 0, 2, 3).to(reference)
