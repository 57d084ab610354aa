"""The RGB conditioner: the driving video's own frames are the motion signal.

No skeleton is needed, so animals, cartoons and sprites can drive (DreamActor-M2's
end-to-end stage). The frames are fitted onto the output grid and placed in the
motion half of the in-context layout. Because the driving character's appearance is
in the signal, training must stop the model from copying it: :meth:`augment` jitters
colour (gain, bias, channel mixing, saturation) and geometry (scale and shift),
the same for every frame of a clip so the motion itself is untouched.

For models trained with reference warp channels the condition also carries where the
reference's pixels go in each frame, from the driver's optical flow
(:class:`charanim_rgb.flow.ReferenceFlow`, relative motion: the reference posed as the
clip starts), and which of the reference's pixels are its character rather than scene
(``meta["reference_character"]``, for ``--scene keep``).

``background="remove"`` (or ``person`` / ``motion``, see :mod:`charanim.segmentation`)
greys out everything but the driving character, so a busy background neither
distracts the model nor leaks into the result.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from charanim.conditioning import Condition, Conditioner, Driving, InjectionSite, OutputSpec, Reference
from charanim.errors import ConditionerInputError
from charanim.io.pixels import to_pixels, to_uint8
from charanim.io.resize import fit_frames
from charanim_rgb.flow import ReferenceFlow, character_region


class RGBConditioner(Conditioner):
    name = "rgb"
    kind = "rgb"
    site = InjectionSite.IN_CONTEXT
    needs = frozenset({"video"})
    description = "driving frames as the motion signal (no skeleton needed)"

    #: augmentation strengths (training only)
    max_scale_jitter = 0.15
    max_shift = 0.1
    max_gain_jitter = 0.3
    max_channel_mix = 0.35

    def __init__(self, background: str = "keep"):
        from charanim.segmentation import METHODS

        if background not in ("keep", "remove", *METHODS):
            raise ConditionerInputError(
                f"Unknown driving background policy '{background}'; use keep, remove, person or motion."
            )
        self.background = "auto" if background == "remove" else background

    def prepare(self, driving: Driving, reference: Reference, spec: OutputSpec) -> Condition:
        if driving.video is None or len(driving.video) == 0:
            raise ConditionerInputError("The rgb conditioner needs a driving video.")
        frames = driving.video.frames[: spec.frames]
        if len(frames) < spec.frames:  # a short clip holds its last frame
            frames = np.concatenate([frames, np.repeat(frames[-1:], spec.frames - len(frames), axis=0)])
        fitted, transform = fit_frames(frames, (spec.width, spec.height), spec.fit)
        video = to_pixels(fitted)
        meta = {"fit": transform}
        if self.background != "keep":
            from charanim.segmentation import foreground_masks

            masks, meta["background"] = foreground_masks(fitted, self.background)
            video = video * torch.from_numpy(masks)[None].float()  # background -> mid grey (0)
            meta["foreground_share"] = round(float(masks.mean()), 4)
            fitted = to_uint8(video)
        # where the reference's pixels go (models with warp channels ask; charanim_rgb.flow):
        # computed from the clean frames, so augment's jitter leaves it as it is
        reference_image, _ = fit_frames(reference.image.rgb[None], (spec.width, spec.height), spec.fit)
        meta["reference_grid"] = ReferenceFlow(fitted, reference_image[0])
        # and which of the reference's pixels are its character, not scene (--scene keep)
        meta["reference_character"] = partial(character_region, reference_image[0])
        return Condition(self.name, self.site, video=video, meta=meta)

    def augment(self, condition: Condition, generator: torch.Generator) -> Condition:
        video = condition.video
        valid = condition.valid if condition.valid is not None else torch.ones_like(video[:1])
        video, valid = _random_affine(video, valid, generator, self.max_scale_jitter, self.max_shift)
        video = _random_colour(video, generator, self.max_gain_jitter, self.max_channel_mix)
        return condition.replace(video=video, valid=valid)


def _uniform(generator: torch.Generator, low: float, high: float, shape=()) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def _random_affine(video, valid, generator, max_scale, max_shift):
    """One scale + shift for the whole clip; uncovered border is marked invalid."""
    scale = float(_uniform(generator, 1 - max_scale, 1 + max_scale))
    shift = _uniform(generator, -max_shift, max_shift, (2,))
    theta = torch.tensor(
        [[1 / scale, 0, float(shift[0])], [0, 1 / scale, float(shift[1])]], dtype=video.dtype
    )
    channels, frames, height, width = video.shape
    grid = F.affine_grid(
        theta[None].expand(frames, -1, -1), [frames, channels, height, width], align_corners=False
    )
    warped = F.grid_sample(video.permute(1, 0, 2, 3), grid, padding_mode="zeros", align_corners=False)
    warped_valid = F.grid_sample(valid.permute(1, 0, 2, 3), grid, padding_mode="zeros", align_corners=False)
    return warped.permute(1, 0, 2, 3), (warped_valid.permute(1, 0, 2, 3) > 0.5).to(valid.dtype)


def _random_colour(video, generator, max_gain, max_mix):
    """A random colour transform: per-channel gain and bias plus a mixing of channels."""
    mix = torch.eye(3) + _uniform(generator, -max_mix, max_mix, (3, 3))
    mix = mix / mix.sum(1, keepdim=True).clamp(min=0.3)
    gain = _uniform(generator, 1 - max_gain, 1 + max_gain, (3,))
    bias = _uniform(generator, -max_gain, max_gain, (3,))
    mixed = torch.einsum("ij,jfhw->ifhw", mix.to(video.dtype), video)
    return (mixed * gain.view(3, 1, 1, 1) + bias.view(3, 1, 1, 1)).clamp(-1, 1)
