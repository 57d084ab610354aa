"""The baselines every bench run includes.

``static``: the reference image, unchanged, for every frame (what a model must beat to
have animated anything). ``skeleton-warp``: an AnimatedDrawings-style geometric
animation: each reference pixel of the character belongs to its nearest bone; the
bone's rigid motion (from the reference pose to the retargeted driving pose) moves it.
No learning, no new pixels: where the character uncovers background, the reference's
background colour fills in. ``flow-warp``: the reference moved by the driving clip's
optical flow, exactly the hint the RGB conditioner gives models with warp channels
(relative motion; run only where the ``rgb`` conditioner is installed): what an RGB
model must beat to have added anything to its input.
"""

from __future__ import annotations

import numpy as np

from charanim.bench.cases import BenchCase
from charanim.metrics import background_colour, foreground_mask
from charanim.pose.retarget import retarget
from charanim.pose.warp import bone_warp, seen_bones


def static(case: BenchCase) -> np.ndarray:
    return np.repeat(case.reference[None], len(case.driving), axis=0)


def flow_warp(case: BenchCase) -> np.ndarray | None:
    """None without the rgb conditioner (or one that gives no reference grid)."""
    from charanim.conditioning import Driving, OutputSpec, Reference
    from charanim.engine.reference_warp import warped_reference
    from charanim.io.image import image_from_array
    from charanim.io.pixels import to_pixels, to_uint8
    from charanim.io.video import Video
    from charanim.plugins import get_plugins

    conditioners = get_plugins().conditioners
    if "rgb" not in conditioners.names():
        return None
    height, width = case.reference.shape[:2]
    frames = len(case.driving)
    video = Video(case.driving, case.fps, case.fps, (width, height), np.arange(frames))
    condition = conditioners.get("rgb")().prepare(
        Driving(video=video),
        Reference(image_from_array(case.reference)),
        OutputSpec(width, height, frames, case.fps),
    )
    if condition.meta.get("reference_grid") is None:
        return None
    return to_uint8(warped_reference(condition, to_pixels(case.reference), frames))


def skeleton_warp(case: BenchCase, fill: np.ndarray | None = None) -> np.ndarray | None:
    """None when the case has no skeletons to warp with. ``fill``: what the character
    uncovers, a colour or ``[H, W, 3]`` (default: the reference's border colour)."""
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
    background = background_colour(case.reference) if fill is None else fill
    mask = (
        case.reference_mask > 0
        if case.reference_mask is not None
        else foreground_mask(case.reference[None], background)[0]
    )
    if not seen_bones(reference_points, fmt) or not mask.any():
        return None
    # the reference's own background stays; only the character's pixels are cleared
    plate = np.where(mask[..., None], np.asarray(background, np.float64), case.reference)
    return bone_warp(case.reference, plate, mask, reference_points, motion, fmt).astype(np.uint8)
