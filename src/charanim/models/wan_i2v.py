"""Wan 2.x image-to-video diffusers checkpoints as in-context backbones.

A directory saved by diffusers' ``WanImageToVideoPipeline`` (Wan2.1-I2V-14B-480P/720P,
Wan2.2-I2V-A14B with its second, low-noise transformer) loads with
``local_files_only=True``. Its transformer takes 2C + 4 input channels
``[latents, 4 mask channels, condition latents]``; we keep the pretrained meaning of
those channels: the mask says "content given here" (our reference mask M_r, on all 4
channels) and the condition holds the given content (the reference latents) where the
mask is on and the motion signal's latents where it is off. Wan2.1's CLIP image
embedding of the reference goes in as usual.

A base checkpoint has never seen a motion signal in those channels: it needs a LoRA
trained by ``charanim train`` before the output follows the motion.
"""

from __future__ import annotations

from pathlib import Path

import torch

from charanim.engine.layout import Packed
from charanim.errors import ModelLoadError
from charanim.io.pixels import to_uint8
from charanim.models.autoencoder import WanAutoencoder
from charanim.models.backbones import Backbone, BackboneFamily
from charanim.models.config import ModelConfig, SamplerDefaults, read_model_config
from charanim.models.local_components import index_class, load_pipeline_directory
from charanim.models.text import WanPipelineTextEncoder

PIPELINE_CLASSES = ("WanImageToVideoPipeline",)


def default_config(pipe) -> ModelConfig:
    shift = float(
        getattr(pipe.scheduler.config, "flow_shift", None) or getattr(pipe.scheduler.config, "shift", 3.0)
    )
    return ModelConfig(
        backbone=WanI2VFamily.name,
        layout="spatial",
        conditioners=[],
        width=832,
        height=480,
        fps=16.0,
        window_frames=81,
        window_overlap=5,
        reference_timestep_zero=False,
        sampler=SamplerDefaults(name="unipc", steps=30, flow_shift=shift, guidance=5.0, motion_guidance=1.0),
    )


class WanI2VBackbone(Backbone):
    family = "wan-i2v"

    def __init__(self, *args, pipe, **kwargs):
        super().__init__(*args, **kwargs)
        self.pipe = pipe
        boundary = pipe.config.get("boundary_ratio") if hasattr(pipe, "config") else None
        self.boundary_timestep = None if boundary is None else boundary * 1000.0

    def assemble(self, packed: Packed) -> torch.Tensor:
        mask = packed.reference_mask.expand(-1, 4, -1, -1, -1)
        return torch.cat([packed.latents, mask, packed.condition], dim=1)

    def reference_condition(self, reference_latents, reference_motion):
        return reference_latents

    def image_embeds(self, reference_pixels: torch.Tensor) -> torch.Tensor | None:
        """Wan2.1's CLIP embedding of each reference in ``[B, 3, 1, H, W]``."""
        if self.transformer.config.image_dim is None or self.pipe.image_encoder is None:
            return None
        from PIL import Image

        images = []
        for pixels in reference_pixels[:, :, 0]:
            images.append(Image.fromarray(to_uint8(pixels)))
        return self.pipe.encode_image(images, self.device).to(self.dtype)

    def velocity(self, hidden, timestep, text, image_embeds=None):
        transformer = self.transformer
        if self.boundary_timestep is not None and float(timestep.max()) < self.boundary_timestep:
            transformer = self.pipe.transformer_2  # Wan2.2 A14B: low-noise expert
        return transformer(
            hidden_states=hidden.to(self.dtype),
            timestep=timestep,
            encoder_hidden_states=text,
            encoder_hidden_states_image=image_embeds,
            return_dict=False,
        )[0]

    def check_conditioner(self, conditioner):
        if not self.config.conditioners:
            return (
                "this is a base Wan image-to-video checkpoint with no charanim motion weights: the "
                "output will not follow the motion; train a LoRA with 'charanim train' and load it"
            )
        return super().check_conditioner(conditioner)


class WanI2VFamily(BackboneFamily):
    name = "wan-i2v"
    description = "Wan 2.1 / 2.2 image-to-video diffusers directories (WanImageToVideoPipeline)"

    @classmethod
    def can_load(cls, path: Path) -> bool:
        return index_class(path) in PIPELINE_CLASSES

    @classmethod
    def load(cls, path: Path, device: torch.device, dtype: torch.dtype) -> WanI2VBackbone:
        from diffusers import WanImageToVideoPipeline

        pipe = load_pipeline_directory(WanImageToVideoPipeline, path, dtype)
        if pipe.config.get("expand_timesteps"):
            raise ModelLoadError(
                f"'{path}' is a Wan2.2 TI2V checkpoint (expand_timesteps); its 48-channel input has no "
                "condition channels for the in-context layout, so it is not supported as a backbone yet."
            )
        z_dim = pipe.vae.config.z_dim
        if pipe.transformer.config.in_channels != 2 * z_dim + 4:
            raise ModelLoadError(
                f"'{path}': the transformer takes {pipe.transformer.config.in_channels} channels, an "
                f"image-to-video Wan takes {2 * z_dim + 4}."
            )
        pipe.to(device)
        config = read_model_config(path) or default_config(pipe)
        autoencoder = WanAutoencoder(pipe.vae)
        text = WanPipelineTextEncoder(pipe, device, dtype)
        for module in (pipe.transformer, pipe.transformer_2):
            if module is not None:
                module.eval().requires_grad_(False)
        return WanI2VBackbone(config, pipe.transformer, autoencoder, text, path, device, dtype, pipe=pipe)
