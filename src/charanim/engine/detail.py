"""Keeping the reference's detail where the animation left the picture unchanged.

A latent model's frames come back through its autoencoder, which loses fine detail even
where nothing moves (charanim-tiny's: stripes, eyes, background texture; about 28 dB
against the original frames). Where an output frame still matches the reference's own
reconstruction, that part of the picture stood still, and the detail the autoencoder
lost there (the reference minus its reconstruction) is added back; where the frame
differs (a limb moved in or out), the model's pixels stay as they are.

The weight falls linearly from 1 (no change) to 0 at a change of ``tolerance`` (the
largest channel difference, in [-1, 1] units), after a 3x3 maximum so the rims of moved
parts count as changed. It is the paste-back that inpainting pipelines do outside their
mask (diffusers' ``VaeImageProcessor.apply_overlay``), with the mask found from the
frames instead of given; written here because no library we use derives it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def restore_detail(
    frames: torch.Tensor, reference: torch.Tensor, reconstruction: torch.Tensor, tolerance: float
) -> torch.Tensor:
    """``frames`` ``[B, 3, F, H, W]``, ``reference`` and its autoencoder ``reconstruction``
    ``[B, 3, 1, H, W]``, all in [-1, 1] -> the frames with the reference's lost detail
    added back where they match the reconstruction (``tolerance`` 0: unchanged)."""
    if tolerance <= 0:
        return frames
    weight = (1.0 - frame_change(frames, reconstruction) / tolerance).clamp(0.0, 1.0)
    return (frames + weight * (reference - reconstruction)).clamp(-1.0, 1.0)


def frame_change(frames: torch.Tensor, still: torch.Tensor) -> torch.Tensor:
    """``[B, 1, F, H, W]``: how far ``frames`` ``[B, 3, F, H, W]`` stand from ``still``
    ``[B, 3, 1, H, W]`` — the largest channel difference, after a 3x3 maximum so the
    rims of moved parts count as changed."""
    change = (frames - still).abs().amax(1, keepdim=True)
    return F.max_pool3d(change, kernel_size=(1, 3, 3), stride=1, padding=(0, 1, 1))
