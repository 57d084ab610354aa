"""Video autoencoders behind one interface: the identity (pixel-space models) and Wan's VAE.

Latents handed to the denoiser are normalised (zero mean, unit variance per channel for
the Wan VAE), so the flow-matching noise scale fits them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F


class VideoAutoencoder(ABC):
    channels: int
    spatial_factor: int
    temporal_factor: int

    @abstractmethod
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, 3, F, H, W]`` in [-1, 1] -> normalised latents ``[B, C, F', H/s, W/s]``."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> pixels in [-1, 1]."""

    def latent_frames(self, frames: int) -> int:
        return frames

    def valid_frames(self, frames: int) -> int:
        """The smallest frame count ≥ ``frames`` that the autoencoder accepts."""
        return frames

    def downsample_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """``[B, 1, F, H, W]`` -> the latent grid; a latent cell is on if any pixel it covers is."""
        return mask

    def to(self, device=None, dtype=None) -> VideoAutoencoder:
        return self


class PixelSpace(VideoAutoencoder):
    """No compression: the denoiser works on RGB pixels (the embedded tiny model)."""

    channels, spatial_factor, temporal_factor = 3, 1, 1

    def encode(self, pixels):
        return pixels

    def decode(self, latents):
        return latents


class WanAutoencoder(VideoAutoencoder):
    """diffusers' ``AutoencoderKLWan``: 8x spatial, 4x temporal (causal: frame 0 alone,
    then groups of 4), so clips have 4k+1 frames."""

    def __init__(self, vae):
        self.vae = vae
        config = vae.config
        self.channels = config.z_dim
        self.spatial_factor = getattr(config, "scale_factor_spatial", 8)
        self.temporal_factor = getattr(config, "scale_factor_temporal", 4)
        self._mean = torch.tensor(config.latents_mean[: config.z_dim]).view(1, -1, 1, 1, 1)
        self._inv_std = 1.0 / torch.tensor(config.latents_std[: config.z_dim]).view(1, -1, 1, 1, 1)

    def to(self, device=None, dtype=None):
        # pass only what is set: diffusers warns about fp32-pinned modules on any dtype argument
        self.vae.to(**{k: v for k, v in {"device": device, "dtype": dtype}.items() if v is not None})
        return self

    def _stats(self, like: torch.Tensor):
        return self._mean.to(like.device, like.dtype), self._inv_std.to(like.device, like.dtype)

    def encode(self, pixels):
        vae_dtype = next(self.vae.parameters()).dtype
        latents = self.vae.encode(pixels.to(vae_dtype)).latent_dist.mode().to(pixels.dtype)
        mean, inv_std = self._stats(latents)
        return (latents - mean) * inv_std

    def decode(self, latents):
        mean, inv_std = self._stats(latents)
        vae_dtype = next(self.vae.parameters()).dtype
        pixels = self.vae.decode((latents / inv_std + mean).to(vae_dtype), return_dict=False)[0]
        return pixels.to(latents.dtype).clamp(-1, 1)

    def latent_frames(self, frames):
        return (frames - 1) // self.temporal_factor + 1

    def valid_frames(self, frames):
        step = self.temporal_factor
        return ((max(frames, 1) - 1 + step - 1) // step) * step + 1

    def downsample_mask(self, mask):
        first = mask[:, :, :1]
        rest = mask[:, :, 1:]
        if rest.shape[2]:
            batch, _, frames, height, width = rest.shape
            rest = rest.view(
                batch, 1, frames // self.temporal_factor, self.temporal_factor, height, width
            ).amax(3)
        grouped = torch.cat([first, rest], dim=2)
        return F.max_pool3d(grouped, kernel_size=(1, self.spatial_factor, self.spatial_factor))
