"""A denoising loop written directly against diffusers, with no charanim machinery.

It is the yardstick for the engine: tests check that ``AnimatePipeline`` produces the
same video on one window, and ``benchmarks/engine_overhead.py`` times both. It knows
only the tiny pixel-space model with the spatial layout.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler


@torch.no_grad()
def bare_spatial_denoise(
    transformer,
    reference: torch.Tensor,
    motion: torch.Tensor,
    steps: int,
    seed: int,
    shift: float = 1.0,
    reference_timestep_zero: bool = True,
) -> np.ndarray:
    """``reference`` ``[3, H, W]`` and ``motion`` ``[3, F, H, W]`` in [-1, 1] -> uint8 frames."""
    _, frames, height, width = motion.shape
    noise = torch.randn((1, 3, frames, height, width), generator=torch.Generator().manual_seed(seed))
    ref = reference[None, :, None].expand(1, 3, frames, height, width)
    x = torch.cat([ref, noise], dim=-1)
    condition = torch.cat([torch.zeros_like(ref), motion[None]], dim=-1)
    given = torch.cat(
        [torch.ones(1, 1, frames, height, width), torch.zeros(1, 1, frames, height, width)], dim=-1
    )
    valid = 1.0 - given
    text = torch.zeros(1, 1, transformer.config.text_dim)
    _, ph, pw = transformer.config.patch_size
    reference_tokens = given[:, 0, :, ::ph, ::pw].flatten(1)

    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1])
    for t in scheduler.timesteps:
        x[..., :width] = ref
        timestep = t * (1 - reference_tokens) if reference_timestep_zero else t.expand(1)
        hidden = torch.cat([x, condition, given, valid], dim=1)
        v = transformer(hidden, timestep, text, return_dict=False)[0]
        x = scheduler.step(v, t, x, return_dict=False)[0]
    target = x[..., width:]
    return ((target[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
