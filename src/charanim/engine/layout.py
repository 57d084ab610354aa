"""Spatiotemporal in-context layout (DreamActor-M2), and the temporal-only ablation.

The denoiser never sees "a reference image plus a pose video" as separate inputs:
both are placed in one latent sequence. With the ``spatial`` layout every frame t is
a side-by-side composite, reference on the left, target on the right::

    latents    [ reference | x_t (noisy target)      ]
    condition  [ ref signal | motion_t (pose map...)  ]
    M_r        [ 1 ........ | 0 ..................... ]   reference given here
    M_m        [ 0 ........ | valid(motion_t) ....... ]   motion signal defined here

so self-attention relates each target token to the reference at the same frame and
position. The ``temporal`` layout instead prepends the reference as frame 0 (the
paper's ablation, and the Wan I2V convention). Both are pure functions of their
inputs with an exact inverse; the reference part is clean and is re-imposed after
every sampler step (``impose_reference``).

All tensors are latents ``[B, C, T, H, W]``; layouts work in whatever space the
backbone denoises (pixels for a pixel-space model).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from charanim.errors import UnknownNameError


@dataclass
class Packed:
    """One in-context sequence. ``condition`` has the motion signal's channels."""

    latents: torch.Tensor
    condition: torch.Tensor
    reference_mask: torch.Tensor
    motion_mask: torch.Tensor
    #: the reference warped to each frame's skeleton, packed like ``latents`` (models with
    #: ``reference_warp_channels``; ``engine.reference_warp``)
    warp: torch.Tensor | None = None


class InContextLayout(ABC):
    name: str

    @abstractmethod
    def pack(
        self,
        reference: torch.Tensor,
        target: torch.Tensor,
        motion: torch.Tensor | None = None,
        motion_valid: torch.Tensor | None = None,
        reference_motion: torch.Tensor | None = None,
    ) -> Packed:
        """Build the sequence.

        reference ``[B, C, 1, h, w]``; target ``[B, C, F, h, w]``; motion ``[B, Cm, F, h, w]``
        (None: no in-context motion); motion_valid ``[B, 1, F, h, w]`` (None: valid
        wherever motion is given); reference_motion ``[B, Cm, 1, h, w]``, the signal
        computed on the reference itself (None: zeros).
        """

    @abstractmethod
    def unpack(self, latents: torch.Tensor, frames: int) -> torch.Tensor:
        """The target part ``[B, C, F, h, w]`` of a packed sequence."""

    @abstractmethod
    def impose_reference(self, latents: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """A copy of ``latents`` whose reference part is exactly ``reference``."""

    @abstractmethod
    def packed_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(T, H, W) of the packed sequence for a target of ``frames x height x width``."""

    @abstractmethod
    def reference_everywhere(self, latents: torch.Tensor) -> torch.Tensor:
        """A tensor shaped like the packed ``latents`` that holds the reference at every
        place: channels a model may take beside the sequence so each target token sees
        the reference at its own position (the Wan I2V way), not only through attention."""


class SpatialLayout(InContextLayout):
    """``[ reference | target ]`` side by side in every frame (DreamActor-M2)."""

    name = "spatial"

    def pack(self, reference, target, motion=None, motion_valid=None, reference_motion=None) -> Packed:
        batch, _, frames, height, width = target.shape
        ref = reference.expand(-1, -1, frames, -1, -1)
        latents = torch.cat([ref, target], dim=-1)
        reference_mask = _half_mask(target, left=1.0, right=0.0)
        motion, motion_valid, reference_motion = _motion_parts(target, motion, motion_valid, reference_motion)
        condition = torch.cat([reference_motion.expand(-1, -1, frames, -1, -1), motion], dim=-1)
        motion_mask = torch.cat([torch.zeros_like(motion_valid), motion_valid], dim=-1)
        return Packed(latents, condition, reference_mask, motion_mask)

    def unpack(self, latents, frames):
        return latents[..., latents.shape[-1] // 2 :]

    def impose_reference(self, latents, reference):
        width = latents.shape[-1] // 2
        out = latents.clone()
        out[..., :width] = reference.expand(-1, -1, latents.shape[2], -1, -1)
        return out

    def packed_size(self, frames, height, width):
        return frames, height, 2 * width

    def reference_everywhere(self, latents):
        reference = latents[..., : latents.shape[-1] // 2]
        return torch.cat([reference, reference], dim=-1)


class TemporalLayout(InContextLayout):
    """The reference as a leading frame: ``[ reference, target_0, ..., target_F-1 ]``."""

    name = "temporal"

    def pack(self, reference, target, motion=None, motion_valid=None, reference_motion=None) -> Packed:
        latents = torch.cat([reference, target], dim=2)
        batch, _, frames, height, width = target.shape
        reference_mask = torch.zeros(
            batch, 1, frames + 1, height, width, dtype=target.dtype, device=target.device
        )
        reference_mask[:, :, 0] = 1.0
        motion, motion_valid, reference_motion = _motion_parts(target, motion, motion_valid, reference_motion)
        condition = torch.cat([reference_motion, motion], dim=2)
        motion_mask = torch.cat([torch.zeros_like(motion_valid[:, :, :1]), motion_valid], dim=2)
        return Packed(latents, condition, reference_mask, motion_mask)

    def unpack(self, latents, frames):
        return latents[:, :, 1:]

    def impose_reference(self, latents, reference):
        out = latents.clone()
        out[:, :, :1] = reference
        return out

    def packed_size(self, frames, height, width):
        return frames + 1, height, width

    def reference_everywhere(self, latents):
        return latents[:, :, :1].expand(-1, -1, latents.shape[2], -1, -1)


LAYOUTS: dict[str, InContextLayout] = {layout.name: layout for layout in (SpatialLayout(), TemporalLayout())}


def get_layout(name: str) -> InContextLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UnknownNameError("layout", name, list(LAYOUTS)) from None


def reference_token_mask(reference_mask: torch.Tensor, patch_size: tuple[int, int, int]) -> torch.Tensor:
    """``[B, tokens]`` booleans, True for tokens of the reference, in the transformer's
    token order (frames, rows, columns after patching). Used to give reference tokens
    timestep 0 through the per-token timestep input."""
    pt, ph, pw = patch_size
    sampled = reference_mask[:, 0, ::pt, ::ph, ::pw]
    return sampled.flatten(1) > 0.5


def per_token_timesteps(timestep: torch.Tensor, reference_tokens: torch.Tensor | None) -> torch.Tensor:
    """The transformer's timestep input, one way for training and sampling: ``timestep``
    (``[B]`` or a scalar), and with ``reference_tokens`` (:func:`reference_token_mask`, for
    models trained with ``reference_timestep_zero``) ``[B, tokens]`` with 0 on the clean
    reference's tokens."""
    timestep = timestep.float().reshape(-1)
    if reference_tokens is None:
        return timestep
    return timestep[:, None] * (~reference_tokens).float()


def _half_mask(target: torch.Tensor, left: float, right: float) -> torch.Tensor:
    batch, _, frames, height, width = target.shape
    mask = torch.empty(batch, 1, frames, height, 2 * width, dtype=target.dtype, device=target.device)
    mask[..., :width] = left
    mask[..., width:] = right
    return mask


def _motion_parts(target, motion, motion_valid, reference_motion):
    batch, _, frames, height, width = target.shape
    if motion is None:  # in-context motion is VAE-encoded, so it has the target's channels
        motion = torch.zeros_like(target)
        motion_valid = target.new_zeros(batch, 1, frames, height, width)
    elif motion_valid is None:
        motion_valid = target.new_ones(batch, 1, frames, height, width)
    if reference_motion is None:
        reference_motion = motion.new_zeros(batch, motion.shape[1], 1, height, width)
    return motion, motion_valid, reference_motion
