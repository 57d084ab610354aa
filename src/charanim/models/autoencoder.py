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

    @torch.no_grad()
    def round_trip(self, frames):
        """uint8 frames ``[F, H, W, 3]`` encoded and decoded: what any latent model on this
        autoencoder can at best give back (its ceiling)."""
        from charanim.io.pixels import to_pixels, to_uint8

        return to_uint8(self.decode(self.encode(to_pixels(frames)[None]))[0])

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


class FrameAutoencoder(VideoAutoencoder):
    """diffusers' 2D ``AutoencoderKL`` applied frame by frame: spatial compression only, so
    any frame count works. charanim-tiny uses a small one trained on world frames; its
    per-channel latent statistics (``latents_mean``/``latents_std`` in its config)
    normalise the latents."""

    temporal_factor = 1

    def __init__(self, vae, chunk: int = 64):
        self.vae = vae
        self.chunk = chunk
        config = vae.config
        self.channels = config.latent_channels
        self.spatial_factor = 2 ** (len(config.block_out_channels) - 1)
        mean = config.latents_mean or [0.0] * self.channels
        std = config.latents_std or [1.0] * self.channels
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self._inv_std = 1.0 / torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1, 1)

    def to(self, device=None, dtype=None):
        self.vae.to(**{k: v for k, v in {"device": device, "dtype": dtype}.items() if v is not None})
        return self

    @property
    def latent_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, 1/std) per channel, ``[1, C, 1, 1, 1]``: ``encode`` normalises with them."""
        return self._mean, self._inv_std

    def _frames(self, video: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = video.shape
        return video.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)

    def _video(self, frames: torch.Tensor, batch: int) -> torch.Tensor:
        count, channels, height, width = frames.shape
        return frames.view(batch, count // batch, channels, height, width).permute(0, 2, 1, 3, 4)

    def encode_raw(self, pixels: torch.Tensor, sample: bool = False, generator=None) -> torch.Tensor:
        """Unnormalised latents (training the autoencoder, computing its statistics)."""
        dtype = next(self.vae.parameters()).dtype
        frames = self._frames(pixels).to(dtype)
        out = []
        for chunk in frames.split(self.chunk):
            dist = self.vae.encode(chunk).latent_dist
            out.append(dist.sample(generator) if sample else dist.mode())
        return self._video(torch.cat(out).to(pixels.dtype), pixels.shape[0])

    def encode(self, pixels):
        latents = self.encode_raw(pixels)
        return (latents - self._mean.to(latents)) * self._inv_std.to(latents)

    def decode(self, latents):
        raw = latents / self._inv_std.to(latents) + self._mean.to(latents)
        dtype = next(self.vae.parameters()).dtype
        frames = [self.vae.decode(chunk.to(dtype)).sample for chunk in self._frames(raw).split(self.chunk)]
        return self._video(torch.cat(frames).to(latents.dtype), latents.shape[0]).clamp(-1, 1)

    def downsample_mask(self, mask):
        s = self.spatial_factor
        return F.max_pool3d(mask, kernel_size=(1, s, s)) if s > 1 else mask


def load_autoencoder(folder, dtype=torch.float32) -> VideoAutoencoder:
    """A ``vae/`` folder: Wan's 3D VAE or a per-frame ``AutoencoderKL``, by its config's class."""
    import json
    from pathlib import Path

    from diffusers import AutoencoderKL, AutoencoderKLWan

    from charanim.errors import ModelLoadError

    folder = Path(folder)
    try:
        name = json.loads((folder / "config.json").read_text())["_class_name"]
    except (OSError, KeyError, ValueError):
        raise ModelLoadError(f"'{folder}' is not a diffusers autoencoder folder (no config.json).") from None
    classes = {
        "AutoencoderKLWan": (AutoencoderKLWan, WanAutoencoder),
        "AutoencoderKL": (AutoencoderKL, FrameAutoencoder),
    }
    if name not in classes:
        raise ModelLoadError(
            f"'{folder}': autoencoder class {name} is not supported (use AutoencoderKL or AutoencoderKLWan)."
        )
    model_class, wrapper = classes[name]
    try:
        vae = model_class.from_pretrained(folder, local_files_only=True, use_safetensors=True, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"Could not load the autoencoder in '{folder}': {str(exc).splitlines()[0]}"
        ) from None
    return wrapper(vae.eval().requires_grad_(False))
