"""uint8 frames to and from the float pixels models read and write.

Every autoencoder, conditioner video and warp here works on channel-first float pixels
in [-1, 1]; media on disk and in numpy are channel-last uint8. One pair of conversions,
shared, so rounding and clamping agree everywhere (an output that is read back and
compared must not drift by a grey level because two sites rounded differently). Not
re-exported by ``charanim.io``: importing it imports torch.
"""

from __future__ import annotations

import numpy as np
import torch


def to_pixels(frames: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` (an image, a clip) -> float32 ``[3, ..., H, W]`` in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames))
    if device is not None:  # move the uint8, 4x fewer bytes than the floats
        tensor = tensor.to(device)
    return tensor.movedim(-1, 0).float() / 127.5 - 1.0


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """float ``[3, ..., H, W]`` in [-1, 1] (clamped) -> uint8 ``[..., H, W, 3]``, rounded."""
    scaled = ((pixels.detach().float().clamp(-1, 1) + 1) * 127.5).round()
    return scaled.to(torch.uint8).movedim(0, -1).cpu().numpy()
