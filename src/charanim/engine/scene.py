"""Keeping the reference's scene where the output still shows it (``animate --scene keep``).

Character animation with a still camera changes only the character; the rest of every
frame is the reference's own scene. A latent model redraws that scene too, through its
autoencoder and its own small errors: blur, speckle that reads as something moving, a
halo of the character's colours around its silhouette. Wherever the reference shows its
scene (not its character) and an output pixel stays near it — within
``KEEP_TOLERANCE / 2`` in every channel, fading out to ``KEEP_TOLERANCE`` — the reference's
pixel replaces the model's (the change measured as detail restoration measures it:
:func:`charanim.engine.detail.frame_change`). A character that moves over the scene differs from it by
more and stays the model's; on the reference's own character nothing is replaced (a
moved limb uncovers scene the reference never showed, and a texture moved by a pixel
stays near its old place without being it). It is inpainting's paste-back outside the
mask (diffusers' ``VaeImageProcessor.apply_overlay``), with the mask the condition's and
the frames' own agreement with the scene.

The reference's character comes from the in-context condition:
``meta["reference_character"]``, a callable ``() -> float32 [H, W]``, 1 on the reference's
character, 0 on its scene, soft in between (the RGB conditioner's, from GrabCut:
:func:`charanim_rgb.flow.character_region`). A condition without one leaves the frames as
the model made them.
"""

from __future__ import annotations

import torch

from charanim.conditioning import Condition
from charanim.engine.detail import frame_change

#: "generate": the model draws the whole frame; "keep": the reference's scene where the
#: output still shows it
SCENES = ("generate", "keep")
#: the largest change ([-1, 1] units, any channel) from the reference's scene that the
#: scene still replaces in part; up to half of it, wholly
KEEP_TOLERANCE = 0.5


def reference_character(condition: Condition | None) -> torch.Tensor | None:
    """``float [H, W]``: where the condition says the reference shows its character (1)
    rather than its scene (0); ``None`` when it does not say."""
    character = None if condition is None else condition.meta.get("reference_character")
    return None if character is None else torch.from_numpy(character()).float()


def keep_scene(frames: torch.Tensor, reference: torch.Tensor, character: torch.Tensor) -> torch.Tensor:
    """``frames`` ``[B, 3, F, H, W]`` with the ``reference`` ``[B, 3, 1, H, W]`` in place
    where it shows its scene (``character`` ``[H, W]`` is 0) and the frames stay near it."""
    near = (2.0 - 2.0 * frame_change(frames, reference) / KEEP_TOLERANCE).clamp(0.0, 1.0)
    keep = (1.0 - character.to(frames)) * near
    return keep * reference + (1.0 - keep) * frames
