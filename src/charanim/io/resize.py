"""Fitting frames onto the output grid with the aspect ratio kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

FitMode = Literal["contain", "cover", "stretch"]
FIT_MODES: tuple[str, ...] = ("contain", "cover", "stretch")


@dataclass(frozen=True)
class FitTransform:
    """Maps source pixel coordinates to output pixel coordinates: ``out = src * scale + offset``."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def apply(self, xy: np.ndarray) -> np.ndarray:
        """Transform ``[..., 2]`` points from source to output pixels."""
        return xy * np.array([self.scale_x, self.scale_y]) + np.array([self.offset_x, self.offset_y])

    def invert(self, xy: np.ndarray) -> np.ndarray:
        return (xy - np.array([self.offset_x, self.offset_y])) / np.array([self.scale_x, self.scale_y])


def fit_transform(src_size: tuple[int, int], dst_size: tuple[int, int], mode: FitMode) -> FitTransform:
    """The transform ``fit_frames`` applies, for mapping keypoints the same way."""
    (sw, sh), (dw, dh) = src_size, dst_size
    if mode == "stretch":
        return FitTransform(dw / sw, dh / sh, 0.0, 0.0)
    scale = min(dw / sw, dh / sh) if mode == "contain" else max(dw / sw, dh / sh)
    return FitTransform(scale, scale, (dw - sw * scale) / 2, (dh - sh * scale) / 2)


def fit_frames(
    frames: np.ndarray,
    size: tuple[int, int],
    mode: FitMode = "contain",
    pad_colour: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, FitTransform]:
    """Resize ``uint8 [F, H, W, C]`` frames to ``size`` = (width, height).

    ``contain`` keeps the whole frame and pads the rest (with ``pad_colour``, by default
    the median colour of the first frame's border, so the padding continues the
    background); ``cover`` fills the output and crops the overflow; ``stretch`` ignores
    the aspect ratio. Resizing is antialiased, so downscaled line art does not alias.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"unknown fit mode {mode!r}")
    frames = np.asarray(frames)
    src = (frames.shape[2], frames.shape[1])
    transform = fit_transform(src, size, mode)
    if mode == "stretch":
        return _resize(frames, size), transform
    new_w = max(1, round(src[0] * transform.scale_x))
    new_h = max(1, round(src[1] * transform.scale_y))
    resized = _resize(frames, (new_w, new_h))
    dst_w, dst_h = size
    if mode == "cover":
        left, top = (new_w - dst_w) // 2, (new_h - dst_h) // 2
        return np.ascontiguousarray(resized[:, top : top + dst_h, left : left + dst_w]), _rounded(
            transform, -left, -top
        )
    colour = border_colour(frames[0]) if pad_colour is None else np.asarray(pad_colour, dtype=frames.dtype)
    canvas = np.empty((frames.shape[0], dst_h, dst_w, frames.shape[3]), dtype=frames.dtype)
    canvas[:] = colour
    left, top = (dst_w - new_w) // 2, (dst_h - new_h) // 2
    canvas[:, top : top + new_h, left : left + new_w] = resized
    return canvas, _rounded(transform, left, top)


def border_colour(frame: np.ndarray) -> np.ndarray:
    """Median colour of a frame's one-pixel border: the background, for most character shots."""
    border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    return np.median(border, axis=0).astype(frame.dtype)


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    if frames.shape[2] == width and frames.shape[1] == height:
        return frames.copy()
    array = np.ascontiguousarray(frames)
    if not array.flags.writeable:  # decoded frames can be read-only; torch wants to own them
        array = array.copy()
    tensor = torch.from_numpy(array).permute(0, 3, 1, 2).float()
    downscaling = width < frames.shape[2] or height < frames.shape[1]
    out = F.interpolate(
        tensor, size=(height, width), mode="bilinear", align_corners=False, antialias=downscaling
    )
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _rounded(transform: FitTransform, offset_x: int, offset_y: int) -> FitTransform:
    """The integer offsets actually used, so keypoints land on the drawn pixels."""
    return FitTransform(transform.scale_x, transform.scale_y, float(offset_x), float(offset_y))
