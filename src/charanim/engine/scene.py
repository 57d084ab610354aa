"""Keeping the reference's scene where no character is (``animate --scene keep``).

Character animation with a still camera changes only where a character stands or goes;
the rest of every frame is the reference's own scene. A latent model redraws that scene
too, through its autoencoder and its own small errors: a blur, speckle that reads as
something moving, a drifting stripe. Where the condition says nothing can change, the
output takes the reference's pixels instead (as inpainting pipelines paste the original
back outside their mask; here the mask is the condition's).

The condition's region can miss part of a character (segmentation started from the
image's border misses a character that touches it, as in close-ups), so the frames get a
say too: outside the region the reference replaces only what stays near it — the model's
blur and speckle, a change of up to ``KEEP_TOLERANCE`` — and a clear change (a limb the
region missed) stays the model's, fading between the two.

The region comes from the in-context condition: ``meta["motion_region"]``, a callable
``(start, count) -> float32 [count, H, W]``, 1 where the frame may differ from the
reference, 0 where it is the reference (the RGB conditioner's, from the characters it
segments and its optical flow; :meth:`charanim_rgb.flow.ReferenceFlow.region`). A
condition without one leaves the frames as the model made them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from charanim.conditioning import Condition

#: "generate": the model draws the whole frame; "keep": the reference's scene outside
#: the condition's motion region
SCENES = ("generate", "keep")
#: outside the motion region, the largest change ([-1, 1] units, any channel) the
#: reference still replaces in part; from half of it down, wholly
KEEP_TOLERANCE = 0.5


def motion_region(condition: Condition | None, frames: int) -> torch.Tensor | None:
    """``float [frames, H, W]``: where the condition lets frames differ from the
    reference (1) or not (0); ``None`` when it does not say."""
    region = None if condition is None else condition.meta.get("motion_region")
    if region is None:
        return None
    start = int(condition.meta.get("cut", 0))
    return torch.from_numpy(region(start, frames)).float()


def keep_scene(frames: torch.Tensor, reference: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``frames`` ``[B, 3, F, H, W]`` with the ``reference`` ``[B, 3, 1, H, W]`` in place
    outside ``region`` ``[F, H, W]`` (a soft blend across its feathered rim), where the
    frames stay near the reference."""
    change = (frames - reference).abs().amax(1, keepdim=True)
    change = F.max_pool3d(change, kernel_size=(1, 3, 3), stride=1, padding=(0, 1, 1))  # rims count
    near = (2.0 - 2.0 * change / KEEP_TOLERANCE).clamp(0.0, 1.0)
    keep = (1.0 - region.to(frames)[None, None]) * near
    return keep * reference + (1.0 - keep) * frames
